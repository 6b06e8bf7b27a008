package web

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
)

// The member portal: sign in with email and password, then balance, tier,
// expiring points, history, catalog, redemption codes, exchange, transfers,
// linked accounts, consent and a download of the member's data. Every page
// calls the domain services directly with the signed-in member's id.

// portalSession authenticates a portal request by its session cookie (a
// member token naming an open session) and an active member behind it;
// otherwise it redirects to the sign-in page.
func (s *Server) portalSession() gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, err := c.Cookie(portalCookie)
		if err != nil || raw == "" {
			c.Redirect(http.StatusSeeOther, "/portal/login")
			c.Abort()
			return
		}
		p, m, err := s.memberSession(c.Request.Context(), raw)
		if err != nil && !refusedSession(err) {
			s.pageError(c, "portal", err)
			c.Abort()
			return
		}
		if err != nil {
			clearCookie(c, portalCookie, "/portal")
			setFlash(c, "err", "Please sign in again.")
			c.Redirect(http.StatusSeeOther, "/portal/login")
			c.Abort()
			return
		}
		c.Set(memberPrincipalKey, p)
		c.Set("ui.member", m)
		c.Set("ui.csrf", csrfToken(raw))
		c.Set("ui.user", memberName(m))
		c.Next()
	}
}

func memberName(m members.Member) string {
	n := strings.TrimSpace(m.Profile.GivenName + " " + m.Profile.FamilyName)
	if n == "" {
		n = m.Profile.Email
	}
	if n == "" {
		n = "card " + m.CardNumber
	}
	return n
}

func portalPage(nav, title string, data gin.H) uiPage {
	return uiPage{Title: title, Area: "portal", Nav: nav, Data: data}
}

func (s *Server) portalLoginPage(c *gin.Context) {
	if raw, err := c.Cookie(portalCookie); err == nil && raw != "" {
		if _, _, err := s.memberSession(c.Request.Context(), raw); err == nil {
			c.Redirect(http.StatusSeeOther, "/portal")
			return
		}
	}
	p := portalPage("login", "Sign in", gin.H{"Email": c.Query("email")})
	p.CSRF = loginCSRF(c, "/portal")
	s.render(c, "portal_login", p)
}

func (s *Server) portalLogin(c *gin.Context) {
	email := strings.TrimSpace(c.PostForm("email"))
	refuse := func(status int, msg string) {
		p := portalPage("login", "Sign in", gin.H{"Email": email})
		p.CSRF = loginCSRF(c, "/portal")
		p.Error = msg
		s.renderStatus(c, status, "portal_login", p)
	}
	if !checkLoginCSRF(c) {
		refuse(http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	if wait, ok := s.loginLimits.allow("member:" + c.ClientIP()); !ok {
		retryAfter(c, wait)
		refuse(http.StatusTooManyRequests, "Too many sign-in attempts. Please wait a minute and try again.")
		return
	}
	ctx := c.Request.Context()
	_, sess, err := s.deps.Members.SignIn(ctx, email, c.PostForm("password"), sessionInfo(c))
	if err != nil {
		p, _ := problemFor(err)
		setRetryAfter(c, err)
		refuse(max(p.Status, 400), s.friendly(c, err))
		return
	}
	tok, err := s.deps.Access.IssueMemberToken(ctx, sess)
	if err != nil {
		refuse(http.StatusInternalServerError, s.friendly(c, err))
		return
	}
	setCookie(c, portalCookie, tok.AccessToken, "/portal", tok.ExpiresIn)
	clearCookie(c, loginCSRFCookie, "/portal")
	c.Redirect(http.StatusSeeOther, "/portal")
}

// portalLogout ends the session server-side, so the cookie is refused from
// now on wherever it is replayed (portal or /v1/me), and clears it.
func (s *Server) portalLogout(c *gin.Context) {
	p, _ := memberPrincipal(c)
	if err := s.deps.Members.EndSession(c.Request.Context(), p.MemberID, p.SessionID); err != nil {
		s.failBack(c, "/portal", err)
		return
	}
	clearCookie(c, portalCookie, "/portal")
	okBack(c, "/portal/login", "You are signed out.")
}

// tierProgress describes the way to the next tier: the best of its
// thresholds (they combine with OR) as a percentage.
type tierProgress struct {
	Next    string
	Metric  string
	Have    int64
	Need    int64
	Percent int
}

func nextTier(tiers []programme.Tier, st programme.Status) *tierProgress {
	sort.Slice(tiers, func(i, j int) bool { return tiers[i].Rank < tiers[j].Rank })
	for _, t := range tiers {
		if t.Rank <= st.Rank || t.InvitationOnly || len(t.Thresholds) == 0 {
			continue
		}
		var best *tierProgress
		for metric, need := range t.Thresholds {
			if need <= 0 {
				continue
			}
			have := st.Credits[metric]
			pct := int(min(100, have*100/need))
			if best == nil || pct > best.Percent || (pct == best.Percent && string(metric) < best.Metric) {
				best = &tierProgress{Next: t.Name, Metric: string(metric), Have: have, Need: need, Percent: pct}
			}
		}
		if best != nil {
			best.Metric = strings.ReplaceAll(best.Metric, "_", " ")
			return best
		}
	}
	return nil
}

func (s *Server) portalHome(c *gin.Context) {
	ctx := c.Request.Context()
	id := me(c)
	bal, err := s.deps.Ledger.Balance(ctx, id)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	data := gin.H{"Balance": bal}
	if s.deps.Programme != nil {
		st, err := s.deps.Programme.Status(ctx, id)
		if err != nil {
			s.pageError(c, "portal", err)
			return
		}
		tiers, err := s.deps.Programme.Tiers(ctx)
		if err != nil {
			s.pageError(c, "portal", err)
			return
		}
		data["Status"] = st
		data["Progress"] = nextTier(tiers, st)
	}
	lots, err := s.deps.Ledger.Lots(ctx, id)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	data["Expiring"] = expiringSoon(lots, s.now(), 30)
	recent, _, err := s.deps.Ledger.List(ctx, ledger.Filter{MemberID: id, Limit: 5})
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	data["Recent"] = historyRows(recent, id, s.partnerNames(c))
	m, _ := c.Get("ui.member")
	data["Member"] = m
	if mem, ok := m.(members.Member); ok {
		data["CardQR"] = cardQR(mem.CardNumber)
	}
	s.render(c, "portal_home", portalPage("home", "My points", data))
}

// historyRow is one line of a member's history.
type historyRow struct {
	ID      int64
	When    time.Time
	Type    string
	Partner string
	Points  int64
	Balance int64
	Reason  string
}

func (s *Server) portalHistory(c *gin.Context) {
	ctx := c.Request.Context()
	var v validation.Error
	f := ledger.Filter{MemberID: me(c), Cursor: c.Query("cursor"), Limit: 25}
	typ := c.Query("type")
	if typ != "" {
		f.Types = []ledger.TxType{ledger.TxType(typ)}
	}
	f.From = formDate(c.Query("from"), "from", &v)
	if to := formDate(c.Query("to"), "to", &v); !to.IsZero() {
		f.To = to.AddDate(0, 0, 1) // the "to" day is included
	}
	data := gin.H{"Type": typ, "From": c.Query("from"), "To": c.Query("to"), "Types": memberTxTypes}
	p := portalPage("history", "History", data)
	if err := v.Err(); err != nil {
		p.Error = s.friendly(c, err)
		s.renderStatus(c, http.StatusBadRequest, "portal_history", p)
		return
	}
	list, next, err := s.deps.Ledger.List(ctx, f)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	data["Rows"] = historyRows(list, f.MemberID, s.partnerNames(c))
	if next != "" {
		q := c.Request.URL.Query()
		q.Set("cursor", next)
		data["Next"] = "/portal/history?" + q.Encode()
	}
	s.render(c, "portal_history", p)
}

// historyRows turns ledger transactions into the member's lines: the points
// are the member's own side of the move (a transfer's credit or debit).
func historyRows(list []ledger.Transaction, memberID int64, names map[int64]string) []historyRow {
	rows := make([]historyRow, len(list))
	for i, t := range list {
		points := int64(t.Points)
		for _, e := range t.Entries {
			if e.Kind == ledger.KindMember && e.OwnerID == memberID {
				points = int64(e.Points)
			}
		}
		rows[i] = historyRow{ID: t.ID, When: t.OccurredAt, Type: string(t.Type), Partner: names[t.PartnerID],
			Points: points, Balance: int64(t.BalanceAfter), Reason: t.Reason}
	}
	return rows
}

var memberTxTypes = []ledger.TxType{ledger.TypeEarn, ledger.TypeCapture, ledger.TypeBurn, ledger.TypeReversal,
	ledger.TypeTransfer, ledger.TypeAdjustment, ledger.TypeExpiry, ledger.TypeMerge}

// partnerNames maps partner ids to names for display (0: the operator).
func (s *Server) partnerNames(c *gin.Context) map[int64]string {
	out := map[int64]string{0: "Coalition"}
	var after int64
	for {
		list, err := s.deps.Partners.Partners(c.Request.Context(), partners.Page{After: after, Limit: 200})
		if err != nil || len(list) == 0 {
			return out
		}
		for _, p := range list {
			out[p.ID] = p.Name
		}
		if len(list) < 200 {
			return out
		}
		after = list[len(list)-1].ID
	}
}

func (s *Server) portalCatalog(c *gin.Context) {
	ctx := c.Request.Context()
	offers, next, err := s.deps.Catalog.Browse(ctx, me(c), catalog.BrowseQuery{Cursor: c.Query("cursor"), Limit: 24,
		Affordable: c.Query("affordable") == "1"})
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	orders, _, err := s.deps.Catalog.MemberOrders(ctx, me(c), catalog.OrderQuery{Limit: 20})
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	bal, err := s.deps.Ledger.Balance(ctx, me(c))
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	data := gin.H{"Offers": offers, "Orders": orders, "Balance": bal, "Partners": s.partnerNames(c),
		"Key": randomString(16), "Affordable": c.Query("affordable") == "1"}
	if next != "" {
		data["Next"] = "/portal/catalog?cursor=" + next
	}
	s.render(c, "portal_catalog", portalPage("catalog", "Catalog", data))
}

func (s *Server) portalOrder(c *gin.Context) {
	rewardID, _ := strconv.ParseInt(c.PostForm("reward_id"), 10, 64)
	key := c.PostForm("key")
	if key == "" {
		key = randomString(16)
	}
	o, err := s.deps.Catalog.PlaceOrder(c.Request.Context(), me(c), "portal-"+key,
		catalog.OrderInput{RewardID: rewardID, ServiceDate: strings.TrimSpace(c.PostForm("service_date"))})
	if err != nil {
		s.failBack(c, "/portal/catalog", err)
		return
	}
	okBack(c, "/portal/catalog", fmt.Sprintf("Ordered %s for %s points (order #%d).", o.RewardTitle, formatPoints(o.Points), o.ID))
}

func (s *Server) portalCancelOrder(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	o, err := s.deps.Catalog.Cancel(c.Request.Context(), me(c), id)
	if err != nil {
		s.failBack(c, "/portal/catalog", err)
		return
	}
	okBack(c, "/portal/catalog", fmt.Sprintf("Order #%d for %s is cancelled; the points are available again.", o.ID, o.RewardTitle))
}

func (s *Server) portalRedeemPage(c *gin.Context) {
	data, err := s.redeemData(c)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	s.render(c, "portal_redeem", portalPage("redeem", "Pay with points", data))
}

// redeemData is what the pay-with-points page shows besides a code: the
// points a code can spend and whether a PIN is set.
func (s *Server) redeemData(c *gin.Context) (gin.H, error) {
	bal, err := s.deps.Ledger.Balance(c.Request.Context(), me(c))
	if err != nil {
		return nil, err
	}
	pinAt, err := s.deps.Consent.PINSetAt(c.Request.Context(), me(c))
	if err != nil {
		return nil, err
	}
	return gin.H{"Balance": bal, "PINSetAt": pinAt}, nil
}

// portalRedeem issues a one-time code and shows it at once (never stored
// in a redirect or cookie), large, with its expiry counting down.
func (s *Server) portalRedeem(c *gin.Context) {
	data, err := s.redeemData(c)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	rc, err := s.deps.Consent.IssueCode(c.Request.Context(), me(c))
	if err != nil {
		p := portalPage("redeem", "Pay with points", data)
		p.Error = s.friendly(c, err)
		s.renderStatus(c, http.StatusOK, "portal_redeem", p)
		return
	}
	data["Code"] = rc
	data["Minutes"] = int(rc.ExpiresAt.Sub(s.now()).Round(time.Minute).Minutes())
	s.render(c, "portal_redeem", portalPage("redeem", "Pay with points", data))
}

func (s *Server) portalExchange(c *gin.Context) {
	ctx := c.Request.Context()
	progs, err := s.deps.Exchange.Programmes(ctx, 0)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	links, err := s.deps.Exchange.Links(ctx, me(c))
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	list, err := s.deps.Exchange.List(ctx, exchange.Filter{MemberID: me(c), Limit: 20})
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	names := map[int64]string{}
	linked := map[int64]string{}
	for _, p := range progs {
		names[p.ID] = p.Name
	}
	for _, l := range links {
		linked[l.ProgrammeID] = l.Account
	}
	s.render(c, "portal_exchange", portalPage("exchange", "Exchange", gin.H{"Programmes": progs, "Links": links,
		"Linked": linked, "Exchanges": list, "Names": names}))
}

func (s *Server) portalLink(c *gin.Context) {
	pid, _ := strconv.ParseInt(c.PostForm("programme_id"), 10, 64)
	l, err := s.deps.Exchange.Link(c.Request.Context(), me(c), pid, strings.TrimSpace(c.PostForm("account")))
	if err != nil {
		s.failBack(c, "/portal/exchange", err)
		return
	}
	okBack(c, "/portal/exchange", "Account "+l.Account+" is linked.")
}

func (s *Server) portalQuote(c *gin.Context) {
	ctx := c.Request.Context()
	pid, _ := strconv.ParseInt(c.PostForm("programme_id"), 10, 64)
	pts, _ := strconv.ParseInt(strings.ReplaceAll(c.PostForm("points"), ",", ""), 10, 64)
	q, err := s.deps.Exchange.Quote(ctx, me(c), pid, pts)
	if err != nil {
		s.failBack(c, "/portal/exchange", err)
		return
	}
	prog, err := s.deps.Exchange.Programme(ctx, pid)
	if err != nil {
		s.failBack(c, "/portal/exchange", err)
		return
	}
	s.render(c, "portal_quote", portalPage("exchange", "Confirm exchange", gin.H{"Quote": q, "Programme": prog}))
}

func (s *Server) portalConfirm(c *gin.Context) {
	x, err := s.deps.Exchange.Confirm(c.Request.Context(), me(c), c.PostForm("quote_id"))
	if err != nil {
		s.failBack(c, "/portal/exchange", err)
		return
	}
	okBack(c, "/portal/exchange", fmt.Sprintf("Exchange %s of %s points is %s.", x.PublicID, formatPoints(x.Points),
		strings.ReplaceAll(string(x.Status), "_", " ")))
}

func (s *Server) portalTransfers(c *gin.Context) {
	s.transfersPage(c, http.StatusOK, gin.H{"Key": randomString(16)}, "")
}

// transfersPage renders the transfers page: the programme's transfer rules
// (minimum, fee, limits) above the form, the form filled with form (after an
// error: what the member typed, and the same idempotency key), and the
// member's recent transfers.
func (s *Server) transfersPage(c *gin.Context, status int, form gin.H, errText string) {
	ctx := c.Request.Context()
	list, _, err := s.deps.Ledger.List(ctx, ledger.Filter{MemberID: me(c),
		Types: []ledger.TxType{ledger.TypeTransfer}, Limit: 20})
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	form["Rows"] = historyRows(list, me(c), nil)
	if s.deps.Programme != nil {
		pol, err := s.deps.Programme.Policy(ctx)
		if err != nil {
			s.pageError(c, "portal", err)
			return
		}
		form["Policy"] = pol
		form["FeeRate"] = pol.TransferFeeRate.Mul(decimal.NewFromInt(100)).String()
		bal, err := s.deps.Ledger.Balance(ctx, me(c))
		if err != nil {
			s.pageError(c, "portal", err)
			return
		}
		form["Available"] = int64(bal.Available)
	}
	p := portalPage("transfers", "Transfers", form)
	p.Error = errText
	s.renderStatus(c, status, "portal_transfers", p)
}

// portalTransfer sends points to another card. A refused transfer shows the
// page again with the error and the member's input kept (not a redirect).
func (s *Server) portalTransfer(c *gin.Context) {
	key := c.PostForm("key")
	if key == "" {
		key = randomString(16)
	}
	form := gin.H{"Key": key, "ToCard": c.PostForm("to_card"), "Points": c.PostForm("points")}
	fail := func(err error) {
		status := http.StatusInternalServerError
		if p, known := problemFor(err); known {
			status = p.Status
		}
		s.transfersPage(c, status, form, s.friendly(c, err))
	}
	if s.deps.Programme == nil {
		fail(programme.ErrTransfersDisabled)
		return
	}
	card := strings.ReplaceAll(strings.TrimSpace(c.PostForm("to_card")), " ", "")
	pts, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(c.PostForm("points")), ",", ""), 10, 64)
	if err != nil || pts <= 0 {
		fail(validation.New("points", "must be a whole number above zero"))
		return
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("portal transfer\n%s\n%d", card, pts)))
	idem := ledger.Idempotency{Scope: "member:" + strconv.FormatInt(me(c), 10), Key: "portal-" + key, RequestHash: h[:]}
	tr, err := s.deps.Programme.Transfer(c.Request.Context(), idem, me(c), card, pts)
	if err != nil {
		fail(err)
		return
	}
	okBack(c, "/portal/transfers", fmt.Sprintf("Sent %s points to card %s.", formatPoints(int64(tr.Points)), card))
}

func (s *Server) portalAccounts(c *gin.Context) {
	m, _ := c.Get("ui.member")
	links, err := s.deps.Exchange.Links(c.Request.Context(), me(c))
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	progs, err := s.deps.Exchange.Programmes(c.Request.Context(), 0)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	names := map[int64]string{}
	for _, p := range progs {
		names[p.ID] = p.Name
	}
	s.render(c, "portal_accounts", portalPage("accounts", "Linked accounts", gin.H{"Member": m, "Links": links,
		"Names": names, "Partners": s.partnerNames(c)}))
}

func (s *Server) portalConsent(c *gin.Context) {
	m, _ := c.Get("ui.member")
	p, _ := memberPrincipal(c)
	sessions, err := s.deps.Members.OpenSessions(c.Request.Context(), p.MemberID)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	on, err := s.deps.Members.Notifications(c.Request.Context(), p.MemberID)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	type choice struct {
		Kind, Label string
		Marketing   bool
		On          bool
	}
	var mails []choice
	for _, k := range members.NoticeKinds {
		mails = append(mails, choice{Kind: string(k), Label: k.Label(), Marketing: k.Marketing(), On: on[k]})
	}
	s.render(c, "portal_consent", portalPage("consent", "Privacy and security", gin.H{"Member": m,
		"Sessions": sessions, "Current": p.SessionID, "Mails": mails}))
}

func (s *Server) portalSetConsent(c *gin.Context) {
	actor := "member:" + strconv.FormatInt(me(c), 10)
	marketing := c.PostForm("marketing") == "yes"
	if _, err := s.deps.Members.SetConsent(c.Request.Context(), me(c), members.Consent{Marketing: marketing, Source: "portal"}, actor); err != nil {
		s.failBack(c, "/portal/consent", err)
		return
	}
	msg := "You will not receive marketing messages."
	if marketing {
		msg = "You will receive offers and news from the coalition."
	}
	okBack(c, "/portal/consent", msg)
}

// portalChangePassword changes the member's password (the current one is
// required) and signs out every other session; this one stays.
func (s *Server) portalChangePassword(c *gin.Context) {
	next := c.PostForm("new_password")
	if next != c.PostForm("new_password_again") {
		s.failBack(c, "/portal/consent", validation.New("new_password_again", "must repeat the new password"))
		return
	}
	p, _ := memberPrincipal(c)
	if err := s.deps.Members.ChangePassword(c.Request.Context(), p.MemberID, c.PostForm("current_password"), next, p.SessionID); err != nil {
		s.failBack(c, "/portal/consent", err)
		return
	}
	okBack(c, "/portal/consent", "Your password is changed. Every other session is signed out.")
}

// portalExport downloads everything the hub holds about the member as JSON.
func (s *Server) portalExport(c *gin.Context) {
	x, err := s.deps.Members.Export(c.Request.Context(), me(c), "member:"+strconv.FormatInt(me(c), 10))
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="my-data-%d.json"`, me(c)))
	c.Data(http.StatusOK, "application/json", b)
}
