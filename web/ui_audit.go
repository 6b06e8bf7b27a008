package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// The console's read models and its audit log. They are SQL over the
// tables the domains own, read-only, because they are views for the
// operator (counts, sums per partner and month) that no domain use case
// needs; the audit log table (migration 00180) is the console's own.

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

func loadDashboard(ctx context.Context, db *gorm.DB, now time.Time) (dashboard, error) {
	now = now.UTC()
	d := dashboard{MonthStart: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)}
	first := d.MonthStart.AddDate(0, -11, 0)
	q := db.WithContext(ctx)
	scalars := []struct {
		sql  string
		args []any
		dst  []any
	}{
		{`SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status <> 'merged') FROM members`, nil,
			[]any{&d.ActiveMembers, &d.Members}},
		{`SELECT count(*) FILTER (WHERE status = 'active'), count(*) FROM partners`, nil, []any{&d.ActivePartners, &d.Partners}},
		{`SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE kind = 'member'`, nil, []any{&d.Outstanding}},
		{`SELECT coalesce(sum(e.amount), 0), coalesce(sum(e.amount) FILTER (WHERE e.posted_at >= ?), 0)
			FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id WHERE a.kind = 'operator_breakage'`,
			[]any{d.MonthStart}, []any{&d.BreakageTotal, &d.BreakageMonth}},
	}
	for _, s := range scalars {
		if err := q.Raw(s.sql, s.args...).Row().Scan(s.dst...); err != nil {
			return dashboard{}, fmt.Errorf("dashboard: %w", err)
		}
	}
	for _, s := range []struct {
		typ string
		dst *[]partnerPoints
	}{{"earn", &d.Issued}, {"redeem", &d.Redeemed}} {
		if err := q.Raw(`SELECT partner_id, sum(points) AS points FROM ledger_transactions
			WHERE (type = ? OR (? = 'redeem' AND type IN ('burn', 'capture'))) AND partner_id IS NOT NULL AND posted_at >= ?
			GROUP BY partner_id ORDER BY partner_id`, s.typ, s.typ, d.MonthStart).Scan(s.dst).Error; err != nil {
			return dashboard{}, fmt.Errorf("dashboard: %w", err)
		}
	}
	var rows []monthPoints
	if err := q.Raw(`SELECT date_trunc('month', posted_at AT TIME ZONE 'UTC') AS month,
			coalesce(sum(points) FILTER (WHERE type = 'earn'), 0) AS issued,
			coalesce(sum(points) FILTER (WHERE type IN ('burn', 'capture')), 0) AS redeemed
		FROM ledger_transactions WHERE posted_at >= ? GROUP BY 1 ORDER BY 1`, first).Scan(&rows).Error; err != nil {
		return dashboard{}, fmt.Errorf("dashboard trend: %w", err)
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

// recentReconciliations returns the ids of the newest reconciliation uploads.
func recentReconciliations(ctx context.Context, db *gorm.DB, limit int) ([]int64, error) {
	var ids []int64
	if err := db.WithContext(ctx).Raw(`SELECT id FROM settlement_reconciliations ORDER BY id DESC LIMIT ?`, limit).
		Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("recent reconciliations: %w", err)
	}
	return ids, nil
}
