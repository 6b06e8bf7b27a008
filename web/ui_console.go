package web

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/settlement"
)

// The operator console: staff sign in with their role (admin, finance,
// support) and manage partners, contracts, API clients, members, catalog
// moderation, settlement, reconciliation and jobs. Every POST is checked
// for CSRF and its role, and recorded in the audit log (ui_audit.go).

// consoleSession authenticates a console request by its session cookie (a
// staff token naming an open staff session); otherwise it redirects to the
// sign-in page.
func (s *Server) consoleSession() gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, err := c.Cookie(consoleCookie)
		if err != nil || raw == "" {
			c.Redirect(http.StatusSeeOther, "/console/login")
			c.Abort()
			return
		}
		p, err := s.deps.Access.VerifyStaffToken(c.Request.Context(), raw)
		if err != nil && !errors.Is(err, access.ErrInvalidToken) {
			s.pageError(c, "console", err)
			c.Abort()
			return
		}
		if err != nil {
			clearCookie(c, consoleCookie, "/console")
			setFlash(c, "err", "Your session ended. Please sign in again.")
			c.Redirect(http.StatusSeeOther, "/console/login")
			c.Abort()
			return
		}
		c.Set(ctxStaffPrincipal, p)
		c.Set("ui.csrf", csrfToken(raw))
		c.Set("ui.user", p.Email)
		c.Set("ui.role", string(p.Role))
		c.Next()
	}
}

// consoleRole refuses (403 page) a staff member whose role is not in roles.
func (s *Server) consoleRole(roles ...access.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if p, ok := staffPrincipal(c); ok {
			for _, r := range roles {
				if p.Role == r {
					c.Next()
					return
				}
			}
		}
		s.renderStatus(c, http.StatusForbidden, "error", uiPage{Title: "Not allowed", Area: "console",
			Error: "Your role may not open this page or do this. Ask an administrator if you need it."})
		c.Abort()
	}
}

func consolePage(nav, title string, data gin.H) uiPage {
	return uiPage{Title: title, Area: "console", Nav: nav, Data: data}
}

func staff(c *gin.Context) access.StaffPrincipal {
	p, _ := staffPrincipal(c)
	return p
}

func (s *Server) consoleLoginPage(c *gin.Context) {
	if raw, err := c.Cookie(consoleCookie); err == nil && raw != "" {
		if _, err := s.deps.Access.VerifyStaffToken(c.Request.Context(), raw); err == nil {
			c.Redirect(http.StatusSeeOther, "/console")
			return
		}
	}
	p := consolePage("login", "Staff sign in", gin.H{"Email": ""})
	p.CSRF = loginCSRF(c, "/console")
	s.render(c, "console_login", p)
}

func (s *Server) consoleLogin(c *gin.Context) {
	email := strings.TrimSpace(c.PostForm("email"))
	refuse := func(status int, msg string) {
		p := consolePage("login", "Staff sign in", gin.H{"Email": email})
		p.CSRF = loginCSRF(c, "/console")
		p.Error = msg
		s.renderStatus(c, status, "console_login", p)
	}
	if !checkLoginCSRF(c) {
		refuse(http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	if wait, ok := s.loginLimits.allow(c.ClientIP()); !ok {
		retryAfter(c, wait)
		refuse(http.StatusTooManyRequests, "Too many sign-in attempts. Please wait a minute and try again.")
		return
	}
	tok, _, err := s.deps.Access.StaffLogin(c.Request.Context(), email, c.PostForm("password"), sessionInfo(c))
	if err != nil {
		p, _ := problemFor(err)
		setRetryAfter(c, err)
		refuse(max(p.Status, 400), s.friendly(c, err))
		return
	}
	setCookie(c, consoleCookie, tok.AccessToken, "/console", tok.ExpiresIn)
	clearCookie(c, loginCSRFCookie, "/console")
	c.Redirect(http.StatusSeeOther, "/console")
}

// consoleLogout ends the staff session server-side, so the cookie is
// refused from now on wherever it is replayed, and clears it.
func (s *Server) consoleLogout(c *gin.Context) {
	if err := s.deps.Access.EndStaffSession(c.Request.Context(), staff(c)); err != nil {
		s.failBack(c, "/console", err)
		return
	}
	clearCookie(c, consoleCookie, "/console")
	okBack(c, "/console/login", "You are signed out.")
}

// ---- dashboard

// replicaView is the read replica as the dashboard shows it.
type replicaView struct {
	Lag       string // measured lag, or "unknown"
	OnReplica bool   // stale-tolerant reads go to it now
	MaxLag    string
}

// replicaStatus is nil without a read replica (HUB_DATABASE_READ_URL unset).
func replicaStatus(r *database.Reads) *replicaView {
	if r == nil || !r.Configured() {
		return nil
	}
	v := &replicaView{Lag: "unknown", OnReplica: r.OnReplica(), MaxLag: r.MaxLag().String()}
	if lag, ok := r.Lag(); ok {
		v.Lag = lag.Round(time.Millisecond).String()
	}
	return v
}

func (s *Server) consoleDashboard(c *gin.Context) {
	st, err := loadDashboard(c.Request.Context(), s.deps, s.now())
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	names := s.partnerNames(c)
	issued := make([]chartBar, len(st.Issued))
	for i, x := range st.Issued {
		issued[i] = chartBar{Label: names[x.PartnerID], Value: x.Points}
	}
	redeemed := make([]chartBar, len(st.Redeemed))
	for i, x := range st.Redeemed {
		redeemed[i] = chartBar{Label: names[x.PartnerID], Value: x.Points}
	}
	labels := make([]string, len(st.Trend))
	earned, spent := make([]int64, len(st.Trend)), make([]int64, len(st.Trend))
	for i, m := range st.Trend {
		labels[i], earned[i], spent[i] = m.Month.Format("Jan 06"), m.Issued, m.Redeemed
	}
	month := st.MonthStart.Format("January 2006")
	s.render(c, "console_dashboard", consolePage("dashboard", "Dashboard", gin.H{"Stats": st, "Month": month,
		"Replica":       replicaStatus(s.deps.Reads),
		"IssuedChart":   svgBars("Points issued per partner, "+month, issued),
		"RedeemedChart": svgBars("Points redeemed per partner, "+month, redeemed),
		"TrendChart": svgLine("Points issued and redeemed, last 12 months", labels, []chartSeries{
			{Name: "Issued", Values: earned, Class: "series-a"}, {Name: "Redeemed", Values: spent, Class: "series-b"}}),
	}))
}

// ---- partners, contracts, API clients

var consoleSectors = []partners.Sector{partners.SectorAirline, partners.SectorHotel, partners.SectorBank, partners.SectorRestaurant,
	partners.SectorRetail, partners.SectorFuel, partners.SectorTelecom, partners.SectorCharity}

var consoleScopes = []access.Scope{access.ScopeMembersRead, access.ScopeMembersWrite, access.ScopePointsEarn,
	access.ScopePointsBurn, access.ScopePointsReverse, access.ScopeCatalogManage, access.ScopeOrdersFulfil,
	access.ScopeExchange, access.ScopeSettlementRead}

func (s *Server) consolePartners(c *gin.Context) {
	list, err := s.deps.Partners.Partners(c.Request.Context(), partners.Page{Limit: 200})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	s.render(c, "console_partners", consolePage("partners", "Partners", gin.H{"Partners": list, "Sectors": consoleSectors}))
}

func (s *Server) consoleCreatePartner(c *gin.Context) {
	p, err := s.createPartner(c, partners.NewPartner{Name: strings.TrimSpace(c.PostForm("name")),
		Sector: partners.Sector(c.PostForm("sector")), SettlementCurrency: strings.ToUpper(strings.TrimSpace(c.PostForm("currency"))),
		TimeZone: strings.TrimSpace(c.PostForm("time_zone")), Market: c.PostForm("market"), Category: c.PostForm("category"),
		OverrideOverlap: c.PostForm("override_overlap") == "on"})
	if err != nil {
		s.failBack(c, "/console/partners", err)
		return
	}
	okBack(c, fmt.Sprintf("/console/partners/%d", p.ID), "Partner "+p.Name+" created.")
}

func (s *Server) consolePartnerStatus(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	back := fmt.Sprintf("/console/partners/%d", id)
	_, err := s.deps.Partners.SetPartnerStatus(c.Request.Context(), id, partners.Status(c.PostForm("status")))
	s.audit(c, "partner.status", "partner:"+c.Param("id"), c.PostForm("status"), err)
	if err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, back, "Status changed to "+c.PostForm("status")+".")
}

func formDecimal(s, field string, v *validation.Error) decimal.Decimal {
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		v.Add(field, "must be a decimal number like 0.0075")
	}
	return d
}

// consoleCreateClient creates an API client and shows its secret once, on
// this response only.
func (s *Server) consoleCreateClient(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var scopes []access.Scope
	for _, sc := range c.PostFormArray("scope") {
		scopes = append(scopes, access.Scope(sc))
	}
	cs, err := s.deps.Access.CreateClient(c.Request.Context(), id, access.NewClient{Name: strings.TrimSpace(c.PostForm("name")), Scopes: scopes})
	s.audit(c, "client.create", "partner:"+c.Param("id"), cs.Client.ClientID, err)
	if err != nil {
		s.failBack(c, fmt.Sprintf("/console/partners/%d", id), err)
		return
	}
	s.render(c, "console_secret", consolePage("partners", "API client created", gin.H{"Secret": cs, "PartnerID": id}))
}

func (s *Server) consoleRotateSecret(c *gin.Context) {
	clientID := c.Param("client_id")
	cs, err := s.deps.Access.RotateClientSecret(c.Request.Context(), clientID)
	s.audit(c, "client.rotate_secret", "client:"+clientID, "", err)
	if err != nil {
		back := "/console/partners"
		if cs.Client.PartnerID > 0 {
			back = fmt.Sprintf("/console/partners/%d", cs.Client.PartnerID)
		}
		s.failBack(c, back, err)
		return
	}
	s.render(c, "console_secret", consolePage("partners", "Client secret rotated", gin.H{"Secret": cs, "PartnerID": cs.Client.PartnerID}))
}

func (s *Server) consoleRevokeClient(c *gin.Context) {
	clientID := c.Param("client_id")
	cl, err := s.deps.Access.RevokeClient(c.Request.Context(), clientID)
	s.audit(c, "client.revoke", "client:"+clientID, "", err)
	if err != nil {
		s.failBack(c, "/console/partners", err)
		return
	}
	okBack(c, fmt.Sprintf("/console/partners/%d", cl.PartnerID), "Client "+clientID+" revoked.")
}

// ---- members

func (s *Server) consoleMembers(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	data := gin.H{"Q": q, "Status": c.Query("status")}
	p := consolePage("members", "Members", data)
	list, next, err := s.deps.Members.Search(c.Request.Context(), members.Query{Text: q, Status: members.Status(c.Query("status")),
		Cursor: c.Query("cursor"), Limit: 50})
	if err != nil {
		p.Error = s.friendly(c, err)
		s.renderStatus(c, http.StatusBadRequest, "console_members", p)
		return
	}
	data["Members"] = list
	if next != "" {
		data["Next"] = "/console/members?" + url.Values{"q": {q}, "status": {c.Query("status")}, "cursor": {next}}.Encode()
	}
	s.render(c, "console_members", p)
}

func (s *Server) consoleMember(c *gin.Context) {
	ctx := c.Request.Context()
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	m, err := s.deps.Members.Get(ctx, id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	bal, err := s.deps.Ledger.Balance(ctx, id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	list, next, err := s.deps.Ledger.List(ctx, ledger.Filter{MemberID: id, Cursor: c.Query("cursor"), Limit: 50})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	names := s.partnerNames(c)
	rows := make([]historyRow, len(list))
	for i, t := range list {
		points := int64(t.Points)
		for _, e := range t.Entries {
			if e.Kind == ledger.KindMember && e.OwnerID == id {
				points = int64(e.Points)
			}
		}
		rows[i] = historyRow{ID: t.ID, When: t.PostedAt, Type: string(t.Type), Partner: names[t.PartnerID], Points: points,
			Balance: int64(t.BalanceAfter), Reason: t.Reason}
	}
	data := gin.H{"Member": m, "Balance": bal, "Rows": rows, "Partners": names, "Key": randomString(16), "Name": memberName(m)}
	if err := s.member360(ctx, id, data); err != nil {
		s.pageError(c, "console", err)
		return
	}
	if next != "" {
		data["Next"] = fmt.Sprintf("/console/members/%d?cursor=%s", id, next)
	}
	s.render(c, "console_member", consolePage("members", "Member "+strconv.FormatInt(id, 10), data))
}

func (s *Server) consoleAdjust(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	back := fmt.Sprintf("/console/members/%d", id)
	pts, perr := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(c.PostForm("points")), ",", ""), 10, 64)
	reason := strings.TrimSpace(c.PostForm("reason"))
	var err error
	if perr != nil {
		err = validation.New("points", "must be a whole number, negative to deduct")
		s.audit(c, "member.adjust", memberTarget(id), fmt.Sprintf("%s points: %s", c.PostForm("points"), reason), err)
	} else {
		key := c.PostForm("key")
		if key == "" {
			key = randomString(16)
		}
		// The form's key is the console's Idempotency-Key, in the same
		// per-staff scope as the API's (prefixed so the two never collide).
		h := sha256.Sum256([]byte(fmt.Sprintf("console adjust\n%d\n%d\n%s", id, pts, reason)))
		_, err = s.adjustMember(c, ledger.Idempotency{Scope: staffScope(c), Key: "console-" + key, RequestHash: h[:]}, id, pts, reason)
	}
	if err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, back, fmt.Sprintf("Adjusted by %s points.", formatPoints(pts)))
}

func (s *Server) consoleMemberStatus(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	back := fmt.Sprintf("/console/members/%d", id)
	action := c.PostForm("action")
	status := map[string]members.Status{"suspend": members.StatusSuspended, "reactivate": members.StatusActive}[action]
	if status == "" {
		err := validation.New("action", "must be suspend or reactivate")
		s.audit(c, "member.invalid", memberTarget(id), "", err)
		s.failBack(c, back, err)
		return
	}
	if _, err := s.setMemberStatus(c, id, status, strings.TrimSpace(c.PostForm("reason"))); err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, back, "Member "+action+"d.")
}

func (s *Server) consoleMerge(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	back := fmt.Sprintf("/console/members/%d", id)
	dup, _ := strconv.ParseInt(strings.TrimSpace(c.PostForm("duplicate_id")), 10, 64)
	if _, err := s.mergeMember(c, id, dup, strings.TrimSpace(c.PostForm("reason"))); err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, back, fmt.Sprintf("Member %d merged into this one.", dup))
}

// ---- catalog moderation

// ---- settlement

// consoleSettlement lists the periods. The previous month is always listed
// (Period creates it open if no transaction did yet), so it can be closed;
// ?month= jumps to any month.
func (s *Server) consoleSettlement(c *gin.Context) {
	var v validation.Error
	if m := optionalMonth(strings.TrimSpace(c.Query("month")), "month", &v); m != "" {
		c.Redirect(http.StatusSeeOther, "/console/settlement/"+m)
		return
	}
	if err := v.Err(); err != nil {
		s.pageError(c, "console", err)
		return
	}
	now := s.now().UTC()
	prev := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	if _, err := s.deps.Settlement.Period(c.Request.Context(), prev.Format("2006-01")); err != nil {
		s.pageError(c, "console", err)
		return
	}
	list, err := s.deps.Settlement.Periods(c.Request.Context(), 24)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	s.render(c, "console_settlement", consolePage("settlement", "Settlement periods", gin.H{"Periods": list}))
}

// consoleClosePeriod starts closing the period as a job run (the same call as
// POST /v1/admin/settlement/periods/:month/close) and goes back to the
// period's page, which shows the run's progress.
func (s *Server) consoleClosePeriod(c *gin.Context) {
	month, err := pathMonth(c, "month")
	started := false
	if err == nil {
		_, started, err = s.deps.Settlement.StartClose(c.Request.Context(), month, staffActor(staff(c)))
	}
	s.audit(c, "period.close", "period:"+c.Param("month"), "", err)
	if err != nil {
		s.failBack(c, "/console/settlement", err)
		return
	}
	msg := "Closing " + month + " has started: its statements are drafted as it goes."
	if !started {
		msg = "Closing " + month + " is already under way."
	}
	okBack(c, "/console/settlement/"+month, msg)
}

func (s *Server) consolePeriod(c *gin.Context) {
	ctx := c.Request.Context()
	month, err := pathMonth(c, "month")
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	per, err := s.deps.Settlement.Period(ctx, month)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	sts, err := s.deps.Settlement.Statements(ctx, settlement.StatementFilter{Period: month, Limit: 200})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	names := s.partnerNames(c)
	data := gin.H{"Period": per, "Statements": sts, "Partners": names}
	if run, found, err := s.runs().Latest(ctx, settlement.KindClose, month); err != nil {
		s.pageError(c, "console", err)
		return
	} else if found {
		data["CloseRun"] = closeRunView(run)
	}
	if per.Status == settlement.PeriodClosed {
		rep, err := s.deps.Settlement.Report(ctx, month)
		if err != nil {
			s.pageError(c, "console", err)
			return
		}
		rows, cols, cells := matrixGrid(rep.Matrix, names)
		data["Report"] = rep
		data["Heatmap"] = heatmapTable("Cross-partner liability, "+month+" (points)", rows, cols, cells)
	}
	s.render(c, "console_period", consolePage("settlement", "Settlement "+month, data))
}

// matrixGrid lays matrix cells out as issuer rows × redeemer columns, in
// partner id order, for the heatmap.
func matrixGrid(m []settlement.MatrixCell, names map[int64]string) ([]string, []string, [][]int64) {
	var issuers, redeemers []int64
	seenI, seenR := map[int64]int{}, map[int64]int{}
	for _, c := range m {
		if _, ok := seenI[c.IssuerPartnerID]; !ok {
			seenI[c.IssuerPartnerID] = 0
			issuers = append(issuers, c.IssuerPartnerID)
		}
		if _, ok := seenR[c.RedeemerPartnerID]; !ok {
			seenR[c.RedeemerPartnerID] = 0
			redeemers = append(redeemers, c.RedeemerPartnerID)
		}
	}
	sortInt64(issuers)
	sortInt64(redeemers)
	rows, cols := make([]string, len(issuers)), make([]string, len(redeemers))
	for i, id := range issuers {
		seenI[id], rows[i] = i, partnerLabel(names, id)
	}
	for j, id := range redeemers {
		seenR[id], cols[j] = j, partnerLabel(names, id)
	}
	cells := make([][]int64, len(rows))
	for i := range cells {
		cells[i] = make([]int64, len(cols))
	}
	for _, c := range m {
		cells[seenI[c.IssuerPartnerID]][seenR[c.RedeemerPartnerID]] += c.Points
	}
	return rows, cols, cells
}

func partnerLabel(names map[int64]string, id int64) string {
	if n, ok := names[id]; ok && n != "" {
		return n
	}
	return "Partner " + strconv.FormatInt(id, 10)
}

func sortInt64(a []int64) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func (s *Server) consoleStatement(c *gin.Context) { s.statementPage(c, http.StatusOK, "", nil, nil) }

// consoleStatementFile downloads a statement as CSV or PDF.
func (s *Server) consoleStatementFile(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	st, err := s.deps.Settlement.Statement(c.Request.Context(), id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	format := c.Param("format")
	var buf strings.Builder
	var ctype string
	switch format {
	case "csv":
		ctype, err = "text/csv; charset=utf-8", st.WriteCSV(&buf)
	case "pdf":
		ctype, err = "application/pdf", st.WritePDF(&buf)
	default:
		s.pageError(c, "console", errNotFound)
		return
	}
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="statement-%s-%d-%d.%s"`, st.Period, st.PartnerID, st.ID, format))
	c.Data(http.StatusOK, ctype, []byte(buf.String()))
}

func (s *Server) consoleStatementAction(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	back := fmt.Sprintf("/console/statements/%d", id)
	ctx := c.Request.Context()
	action := c.Param("action")
	var err error
	switch action {
	case "approve":
		_, err = s.deps.Settlement.Approve(ctx, id, staffActor(staff(c)))
	case "send":
		_, err = s.deps.Settlement.Send(ctx, id, staffActor(staff(c)))
	case "payment":
		s.consoleRecordPayment(c, id)
		return
	default:
		s.pageError(c, "console", errNotFound)
		return
	}
	s.audit(c, "statement."+action, "statement:"+c.Param("id"), "", err)
	if err != nil {
		s.failBack(c, back, err)
		return
	}
	msg := map[string]string{"approve": "Statement approved.", "send": "Statement sent to the partner."}[action]
	okBack(c, back, msg)
}

// ---- reconciliation

func (s *Server) consoleReconciliation(c *gin.Context) {
	ctx := c.Request.Context()
	ids, err := s.deps.Settlement.RecentReconciliations(ctx, 30)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	recs := make([]settlement.Reconciliation, 0, len(ids))
	for _, id := range ids {
		r, err := s.deps.Settlement.Reconciliation(ctx, id)
		if err != nil {
			s.pageError(c, "console", err)
			return
		}
		recs = append(recs, r)
	}
	list, err := s.deps.Partners.Partners(ctx, partners.Page{Limit: 200})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	s.render(c, "console_reconciliation", consolePage("reconciliation", "Reconciliation", gin.H{"Recs": recs,
		"PartnerList": list, "Partners": s.partnerNames(c)}))
}

func (s *Server) consoleUploadReconciliation(c *gin.Context) {
	if err := multipartContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	pid, _ := strconv.ParseInt(c.PostForm("partner_id"), 10, 64)
	var v validation.Error
	month := optionalMonth(strings.TrimSpace(c.PostForm("period")), "period", &v)
	fh, err := c.FormFile("file")
	if err != nil {
		v.Add("file", "choose the partner's CSV file")
	}
	if err := v.Err(); err != nil {
		s.audit(c, "reconciliation.upload", "partner:"+c.PostForm("partner_id"), c.PostForm("period"), err)
		s.failBack(c, "/console/reconciliation", err)
		return
	}
	f, err := fh.Open()
	if err != nil {
		s.failBack(c, "/console/reconciliation", err)
		return
	}
	defer f.Close()
	r, err := s.deps.Settlement.Upload(c.Request.Context(), pid, month, f)
	s.audit(c, "reconciliation.upload", "partner:"+c.PostForm("partner_id"), month+" "+fh.Filename, err)
	if err != nil {
		s.failBack(c, "/console/reconciliation", err)
		return
	}
	okBack(c, fmt.Sprintf("/console/reconciliations/%d", r.ID), "File received; matching runs in the background. Refresh to see the outcome.")
}

func (s *Server) consoleReconciliationDetail(c *gin.Context) {
	ctx := c.Request.Context()
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	r, err := s.deps.Settlement.Reconciliation(ctx, id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	outcome := c.Query("outcome")
	var v validation.Error
	v.Check(outcome == "" || outcome == "all" || reconOutcomes[outcome], "outcome", "must be all, matched, missing_in_hub, missing_in_file or amount_mismatch")
	after := queryCursorID(c, &v)
	if err := v.Err(); err != nil {
		s.pageError(c, "console", err)
		return
	}
	const page = 200
	lines, err := s.deps.Settlement.ReconLines(ctx, id, outcome, after, page)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	next := ""
	if len(lines) == page {
		next = fmt.Sprintf("/console/reconciliations/%d?outcome=%s&cursor=%d", id, outcome, lines[len(lines)-1].ID)
	}
	names := s.partnerNames(c)
	s.render(c, "console_recon", consolePage("reconciliation", fmt.Sprintf("Reconciliation %d · %s · %s", r.ID, r.Period, partnerLabel(names, r.PartnerID)),
		gin.H{"Rec": r, "Lines": lines, "Outcome": outcome, "Filters": reconFilters(r), "Next": next}))
}

func (s *Server) consoleResolve(c *gin.Context) {
	lineID, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	back := "/console/reconciliations/" + c.PostForm("reconciliation_id")
	accept := c.PostForm("decision") == "accept"
	l, err := s.deps.Settlement.Resolve(c.Request.Context(), lineID, settlement.Resolution{Accept: accept,
		Note: strings.TrimSpace(c.PostForm("note")), Actor: staffActor(staff(c))})
	s.audit(c, "reconciliation.resolve", "recon_line:"+c.Param("id"), c.PostForm("decision")+" "+c.PostForm("note"), err)
	if err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/reconciliations/%d", l.ReconciliationID), "Line "+l.ExternalRef+" resolved: "+l.Resolution+".")
}

// ---- jobs and audit

func (s *Server) consoleJobs(c *gin.Context) {
	data := gin.H{"Configured": s.deps.Jobs != nil}
	if s.deps.Jobs != nil {
		ctx := c.Request.Context()
		qs, err := s.deps.Jobs.Queues(ctx)
		if err != nil {
			s.pageError(c, "console", fmt.Errorf("%w: job queue: %v", errUnavailable, err))
			return
		}
		var failed []FailedTask
		for _, q := range qs {
			f, err := s.deps.Jobs.FailedTasks(ctx, q.Queue, 50)
			if err != nil {
				s.pageError(c, "console", fmt.Errorf("%w: job queue: %v", errUnavailable, err))
				return
			}
			failed = append(failed, f...)
		}
		data["Queues"], data["Failed"] = qs, failed
	}
	runs, err := s.runs().List(c.Request.Context(), jobs.Filter{Limit: 20})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	data["Runs"] = runs
	s.render(c, "console_jobs", consolePage("jobs", "Jobs", data))
}

func (s *Server) consoleRetryJob(c *gin.Context) {
	id := c.PostForm("task_id")
	if err := s.retryJob(c, c.PostForm("queue"), id); err != nil {
		s.failBack(c, "/console/jobs", err)
		return
	}
	okBack(c, "/console/jobs", "Task "+id+" queued to run again.")
}
