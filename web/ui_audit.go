package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The console's read models and its audit log. They are SQL over the
// tables the domains own, read-only, because they are views for the
// operator (counts, sums per partner and month) that no domain use case
// needs; the ledger's figures come from the ledger (ledger.Overview), whose
// tables no other package reads. The audit log table (migration 00180) is
// the console's own.

// auditEntry is one recorded operator action.
type auditEntry struct {
	ID        int64
	At        time.Time
	Actor     string
	Role      string
	Action    string
	Target    string
	Detail    string
	Outcome   string
	RequestID string
}

// audit records a console or admin API action of the signed-in staff
// member with its outcome (err nil: ok). A failure to record is logged, not shown: the
// action itself already happened.
func (s *Server) audit(c *gin.Context, action, target, detail string, err error) {
	p, ok := staffPrincipal(c)
	if !ok || s.deps.DB == nil {
		return
	}
	c.Set(ctxAudited, true)
	if err != nil && strings.HasPrefix(c.FullPath(), "/v1/") && badInput(err) {
		return // bad input to the API writes nothing (web/admin_audit.go)
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	if len(target) > 200 {
		target = target[:200]
	}
	if e := s.deps.DB.WithContext(c.Request.Context()).Exec(`INSERT INTO operator_audit_log
		(at, staff_id, actor, role, action, target, detail, outcome, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.now().UTC(), p.StaffID, staffActor(p), string(p.Role), action, target, detail, outcome, requestID(c)).Error; e != nil {
		s.deps.Log.ErrorContext(c.Request.Context(), "write audit log", "err", e, "action", action, "request_id", requestID(c))
	}
}

// partnerPoints is a points total of one partner.
type partnerPoints struct {
	PartnerID int64
	Points    int64
}

// monthPoints are the points issued and redeemed in one month.
type monthPoints struct {
	Month    time.Time
	Issued   int64
	Redeemed int64
}

// dashboard is what the console's first page shows. Months are calendar
// months in UTC.
type dashboard struct {
	MonthStart       time.Time
	ActiveMembers    int64
	Members          int64
	ActivePartners   int64
	Partners         int64
	Outstanding      int64 // points held by members: the programme's liability
	BreakageTotal    int64
	BreakageMonth    int64
	IssuedMonth      int64
	RedeemedMonth    int64
	Issued, Redeemed []partnerPoints
	Trend            []monthPoints // the last 12 months, oldest first, gaps filled
}

func loadDashboard(ctx context.Context, deps Deps, now time.Time) (dashboard, error) {
	now = now.UTC()
	d := dashboard{MonthStart: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)}
	first := d.MonthStart.AddDate(0, -11, 0)
	mc, err := deps.Members.Totals(ctx)
	if err != nil {
		return dashboard{}, fmt.Errorf("dashboard: %w", err)
	}
	pc, err := deps.Partners.CountPartners(ctx)
	if err != nil {
		return dashboard{}, fmt.Errorf("dashboard: %w", err)
	}
	d.ActiveMembers, d.Members, d.ActivePartners, d.Partners = mc.Active, mc.Members, pc.Active, pc.All
	o, err := deps.Ledger.Overview(ctx, d.MonthStart, first)
	if err != nil {
		return dashboard{}, fmt.Errorf("dashboard: %w", err)
	}
	d.Outstanding, d.BreakageTotal, d.BreakageMonth = o.Outstanding, o.BreakageTotal, o.BreakageSince
	for _, p := range o.Issued {
		d.Issued = append(d.Issued, partnerPoints(p))
	}
	for _, p := range o.Redeemed {
		d.Redeemed = append(d.Redeemed, partnerPoints(p))
	}
	rows := make([]monthPoints, len(o.Months))
	for i, m := range o.Months {
		rows[i] = monthPoints(m)
	}
	byMonth := map[string]monthPoints{}
	for _, r := range rows {
		byMonth[r.Month.Format("2006-01")] = r
	}
	for i := 0; i < 12; i++ {
		m := first.AddDate(0, i, 0)
		r := byMonth[m.Format("2006-01")]
		r.Month = m
		d.Trend = append(d.Trend, r)
	}
	for _, p := range d.Issued {
		d.IssuedMonth += p.Points
	}
	for _, p := range d.Redeemed {
		d.RedeemedMonth += p.Points
	}
	return d, nil
}
