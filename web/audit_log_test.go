package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
)

// seedAudit writes audit entries straight into the log: the writer is
// tested with the actions that write it (TestAdminRoleMatrix); here the
// subject is reading it.
func seedAudit(t *testing.T, db *gorm.DB, staffID int64) {
	t.Helper()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 10, 0, 0, 0, time.UTC) }
	for _, e := range []struct {
		at                          time.Time
		actor, role, action, target string
		detail, outcome             string
	}{
		{day(1), "staff:ann@hub.test", "finance", "period.close", "period:2026-10", "", "ok"},
		{day(2), "staff:ann@hub.test", "finance", "member.adjust", "member:12", "=HYPERLINK(\"x\")", "ok"},
		{day(3), "staff:bob@hub.test", "admin", "member.suspend", "member:12", "fraud check", "ok"},
		{day(4), "staff:bob@hub.test", "admin", "member.adjust", "member:13", "goodwill", "failed"},
		{day(5), "staff:ann@hub.test", "finance", "period.close", "period:2026-11", "", "ok"},
	} {
		if err := db.Exec(`INSERT INTO operator_audit_log (at, staff_id, actor, role, action, target, detail, outcome, request_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'req')`, e.at, staffID, e.actor, e.role, e.action, e.target, e.detail, e.outcome).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditLogFilters: the admin API filters the audit log by staff user,
// action, object and date range, pages it, and exports what it selects as
// CSV; bad filters are refused naming the parameter.
func TestAuditLogFilters(t *testing.T) {
	t.Parallel()
	e := newContractEnv(t, nil)
	admin := e.login("root@hub.test", access.RoleAdmin)
	var staffID int64
	e.db.Raw(`SELECT id FROM staff_users WHERE email = 'root@hub.test'`).Scan(&staffID)
	seedAudit(t, e.db, staffID)
	get := func(q string) []map[string]any {
		t.Helper()
		return items(t, e.expect(200, "", http.MethodGet, "/v1/admin/audit?"+q, admin, nil))
	}
	targets := func(list []map[string]any) string {
		var out []string
		for _, x := range list {
			if x["target"] != "" && strings.HasPrefix(fmt.Sprint(x["actor"]), "staff:") && x["actor"] != "staff:root@hub.test" {
				out = append(out, fmt.Sprint(x["target"]))
			}
		}
		return strings.Join(out, " ")
	}
	for q, want := range map[string]string{
		"actor=" + url.QueryEscape("staff:bob@hub.test"):              "member:13 member:12",
		"action=member.adjust":                                        "member:13 member:12",
		"target=MEMBER:12":                                            "member:12 member:12",
		"from=2026-11-02&to=2026-11-03":                               "member:12 member:12",
		"action=period.close&from=2026-11-05":                         "period:2026-11",
		"actor=" + url.QueryEscape("staff:ann@hub.test") + "&limit=2": "period:2026-11 member:12",
		"target=" + url.QueryEscape("%"):                              "",
	} {
		if got := targets(get(q)); got != want {
			t.Errorf("audit ?%s: targets %q; want %q", q, got, want)
		}
	}
	page := e.expect(200, "", http.MethodGet, "/v1/admin/audit?action=member.adjust&limit=1", admin, nil)
	older := get("action=member.adjust&limit=1&cursor=" + fmt.Sprint(page["next_cursor"]))
	if targets(older) != "member:12" {
		t.Errorf("second page: %v; want the older member.adjust", older)
	}
	code, body, h := e.raw(http.MethodGet, "/v1/admin/audit?action=member.adjust&format=csv", admin, "", "")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.HasPrefix(body, "id,at,actor,role,action,target,detail,outcome,request_id\n") ||
		strings.Count(body, "\n") != 3 || !strings.Contains(body, `'=HYPERLINK`) {
		t.Errorf("CSV: %d %q; want the header and two entries, the formula defused", code, body)
	}
	for q, field := range map[string]string{"from=2026-13-01": "from", "from=2026-11-05&to=2026-11-01": "to", "format=xml": "format", "limit=0": "limit"} {
		if code, out, _ := e.send(http.MethodGet, "/v1/admin/audit?"+q, admin, nil); code != 400 || !strings.Contains(fmt.Sprint(out["errors"]), field) {
			t.Errorf("audit ?%s: %d %v; want 400 naming %s", q, code, out, field)
		}
	}
	fin := e.login("fin@hub.test", access.RoleFinance)
	e.expect(403, "forbidden", http.MethodGet, "/v1/admin/audit", fin, nil)
}

// TestConsoleAuditFilters: the console's audit page filters with the same
// parameters, keeps them in its CSV link and its next page.
func TestConsoleAuditFilters(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	e.staffUser("root@hub.test", access.RoleAdmin)
	var staffID int64
	e.db.Raw(`SELECT id FROM staff_users WHERE email = 'root@hub.test'`).Scan(&staffID)
	seedAudit(t, e.db, staffID)
	b := e.browser()
	b.loginConsole("root@hub.test")
	page := b.page("/console/audit?action=member.suspend")
	if !strings.Contains(page, "fraud check") || strings.Contains(page, "goodwill") || !strings.Contains(page, `<option selected>member.suspend</option>`) ||
		!strings.Contains(page, `href="/console/audit?action=member.suspend&amp;format=csv" id="audit-csv"`) {
		t.Fatalf("filtered audit page: want only the suspension, its filter kept:\n%s", page)
	}
	st, body, h := b.get("/console/audit?actor=" + url.QueryEscape("staff:bob@hub.test") + "&format=csv")
	if st != http.StatusOK || !strings.Contains(h.Get("Content-Disposition"), "attachment") || strings.Count(body, "\n") != 3 {
		t.Fatalf("console audit CSV = %d %q", st, body)
	}
	if empty := b.page("/console/audit?target=nothing-like-this"); !strings.Contains(empty, "No entries match these filters.") {
		t.Fatalf("no match: want the empty-filter message:\n%s", empty)
	}
	if st, _, _ := b.get("/console/audit?from=yesterday"); st != http.StatusBadRequest {
		t.Fatalf("bad date = %d; want 400", st)
	}
}
