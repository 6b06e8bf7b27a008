package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// Reading the audit log: GET /v1/admin/audit (JSON pages or CSV) and the
// console's /console/audit, both over auditFilter and auditQuery. The log is
// the console's own table (web/ui_audit.go).

// auditFilter selects audit entries: by who (actor, "staff:email"), what
// (action, exactly), the object acted on (target, a part of it) and when
// (From inclusive to To exclusive, UTC), newest first before the id cursor.
type auditFilter struct {
	Actor, Action, Target string
	From, To              time.Time
	Before                int64
	Limit                 int
	// Member selects the actions on one member, by the console
	// (member:ID) or the admin API (members/ID/...): the member page's.
	Member int64
}

// auditFilterOf reads the filter from the query string: actor, action,
// target, from and to (dates, YYYY-MM-DD, UTC; to is the last day
// included), cursor and limit.
func auditFilterOf(c *gin.Context, v *validation.Error) auditFilter {
	f := auditFilter{Actor: strings.TrimSpace(c.Query("actor")), Action: strings.TrimSpace(c.Query("action")),
		Target: strings.TrimSpace(c.Query("target")), Before: queryCursorID(c, v), Limit: queryLimit(c, 100, 500, v)}
	v.Check(len(f.Actor) <= 200, "actor", "must be at most 200 characters")
	v.Check(len(f.Action) <= 64, "action", "must be at most 64 characters")
	v.Check(len(f.Target) <= 200, "target", "must be at most 200 characters")
	f.From = formDate(c.Query("from"), "from", v)
	if to := formDate(c.Query("to"), "to", v); !to.IsZero() {
		f.To = to.AddDate(0, 0, 1)
	}
	v.Check(f.From.IsZero() || f.To.IsZero() || f.From.Before(f.To), "to", "must not be before from")
	return f
}

// query renders the filter as the query string of a page of it.
func (f auditFilter) query() url.Values {
	q := url.Values{}
	for k, val := range map[string]string{"actor": f.Actor, "action": f.Action, "target": f.Target} {
		if val != "" {
			q.Set(k, val)
		}
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.Format("2006-01-02"))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.AddDate(0, 0, -1).Format("2006-01-02"))
	}
	return q
}

// auditQuery pages the audit log by f, newest first.
func auditQuery(ctx context.Context, db *gorm.DB, f auditFilter) ([]auditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := db.WithContext(ctx).Table("operator_audit_log").
		Select("id, at, actor, role, action, target, detail, outcome, request_id").Order("id DESC").Limit(f.Limit)
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.Target != "" {
		q = q.Where(`target ILIKE ? ESCAPE '\'`, "%"+likeEscape(f.Target)+"%")
	}
	if f.Member > 0 {
		id := strconv.FormatInt(f.Member, 10)
		q = q.Where("(target = ? OR target = ? OR target LIKE ?)", memberTarget(f.Member), "members/"+id, "members/"+id+"/%")
	}
	if !f.From.IsZero() {
		q = q.Where("at >= ?", f.From)
	}
	if !f.To.IsZero() {
		q = q.Where("at < ?", f.To)
	}
	var out []auditEntry
	if err := q.Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}

// likeEscape escapes the LIKE wildcards of s.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// auditChoices are the actors and actions the log holds, for the console's
// filter menus.
func auditChoices(ctx context.Context, db *gorm.DB) (actors, actions []string, err error) {
	if err = db.WithContext(ctx).Raw(`SELECT DISTINCT actor FROM operator_audit_log ORDER BY 1`).Scan(&actors).Error; err != nil {
		return nil, nil, err
	}
	err = db.WithContext(ctx).Raw(`SELECT DISTINCT action FROM operator_audit_log ORDER BY 1`).Scan(&actions).Error
	return actors, actions, err
}

// auditView is an audit entry as the API answers it.
type auditView struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Role      string    `json:"role"`
	Action    string    `json:"action"`
	Target    string    `json:"target"`
	Detail    string    `json:"detail"`
	Outcome   string    `json:"outcome"`
	RequestID string    `json:"request_id"`
}

// adminAuditLog is GET /v1/admin/audit: the audit log by staff user,
// action, object and date range, a page at a time, or every entry as CSV
// with format=csv.
func (s *Server) adminAuditLog(c *gin.Context) {
	var v validation.Error
	f := auditFilterOf(c, &v)
	format := c.DefaultQuery("format", "json")
	v.Check(format == "json" || format == "csv", "format", "must be json or csv")
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if format == "csv" {
		s.auditCSV(c, f)
		return
	}
	list, err := auditQuery(c.Request.Context(), s.deps.DB, f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]auditView, len(list))
	for i, e := range list {
		out[i] = auditView(e)
	}
	next := ""
	if len(list) == f.Limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	c.JSON(http.StatusOK, gin.H{"data": out, "next_cursor": next})
}

// auditCSV writes every entry f selects as CSV, newest first, reading the
// log a page at a time. The first page is read before anything is written,
// so a failure is still a problem document.
func (s *Server) auditCSV(c *gin.Context, f auditFilter) {
	f.Before, f.Limit = 0, 1000
	page, err := auditQuery(c.Request.Context(), s.deps.DB, f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="audit-log-`+s.now().UTC().Format("20060102-150405")+`.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"id", "at", "actor", "role", "action", "target", "detail", "outcome", "request_id"})
	for {
		for _, e := range page {
			_ = w.Write([]string{strconv.FormatInt(e.ID, 10), e.At.Format(time.RFC3339), e.Actor, e.Role, e.Action,
				csvSafe(e.Target), csvSafe(e.Detail), e.Outcome, e.RequestID})
		}
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
		if page, err = auditQuery(c.Request.Context(), s.deps.DB, f); err != nil {
			s.deps.Log.Error("audit CSV cut short", "err", err)
			break
		}
	}
	w.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula: text that
// starts with = + - @ gets a leading apostrophe. Details and targets hold
// what staff typed.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// consoleAudit is the console's audit log: filters by staff user, action,
// object and dates, 100 entries a page, and the CSV of everything the
// filters select (the same query as GET /v1/admin/audit).
func (s *Server) consoleAudit(c *gin.Context) {
	var v validation.Error
	f := auditFilterOf(c, &v)
	f.Limit = 100
	if err := v.Err(); err != nil {
		s.pageError(c, "console", err)
		return
	}
	if c.Query("format") == "csv" {
		s.auditCSV(c, f)
		return
	}
	ctx := c.Request.Context()
	list, err := auditQuery(ctx, s.deps.DB, f)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	actors, actions, err := auditChoices(ctx, s.deps.DB)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	q := f.query()
	data := gin.H{"Entries": list, "Filter": f, "Actors": actors, "Actions": actions, "Filtered": len(q) > 0,
		"From": c.Query("from"), "To": c.Query("to")}
	csvQ := f.query()
	csvQ.Set("format", "csv")
	data["CSV"] = "/console/audit?" + csvQ.Encode()
	if len(list) == f.Limit {
		q.Set("cursor", strconv.FormatInt(list[len(list)-1].ID, 10))
		data["Next"] = "/console/audit?" + q.Encode()
	}
	s.render(c, "console_audit", consolePage("audit", "Audit log", data))
}
