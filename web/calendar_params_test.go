package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/partners"
)

// calendarTables are the tables a request naming a month, a day or an
// instant could write to.
var calendarTables = []string{"settlement_periods", "settlement_exchange_rates", "settlement_reconciliations",
	"partner_contracts", "ledger_transactions"}

func calendarCounts(count func(string) int64) string {
	var b strings.Builder
	for _, tb := range calendarTables {
		fmt.Fprintf(&b, "%s=%d ", tb, count(tb))
	}
	return b.String()
}

// staffToken creates an admin and logs it in through the API.
func (e *hubEnv) staffToken() string {
	e.t.Helper()
	if _, err := e.acc.EnsureStaff(e.ctx, "ops@calendar.test", uiPassword, access.RoleAdmin); err != nil {
		e.t.Fatal(err)
	}
	out := e.must(http.StatusOK, "POST", "/v1/admin/login", "", map[string]any{"email": "ops@calendar.test", "password": uiPassword})
	return out["access_token"].(string)
}

// TestCalendarParametersAreValidated sends months, days and instants that
// do not exist (month 13, month 0, year 0, February 30, a one-digit month,
// text) in every path and query parameter of the admin, partner and member
// APIs that names one. Each is a 400 problem+json invalid_request naming the
// parameter as the API documents it, never a 500 from the database, and
// nothing is written (a named period is created on first read, so a bad one
// must not be).
func TestCalendarParametersAreValidated(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	p, tok := e.partner("Calendar Hotels", e.clock.Now().AddDate(0, -1, 0))
	staff := e.staffToken()
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "CAL-1"}})
	mtok := signedInToken(t, e.mem, e.acc, int64(m["id"].(float64)))
	csv := []string{"Content-Type", "text/csv"}
	rate := map[string]any{"from": "USD", "to": "EUR", "rate": "0.9", "source": "test"}
	type req struct {
		method, path, tok string
		body              any
		header            []string
		field             string
	}
	var cases []req
	for _, month := range []string{"2001-13", "2001-00", "0000-01", "2001-1", "201-01", "2001-011", "abcd-ef", "2001_01", " 2001-01"} {
		mp := "/v1/admin/settlement/periods/" + url.PathEscape(month)
		q := url.QueryEscape(month)
		cases = append(cases,
			req{"GET", mp, staff, nil, nil, "month"},
			req{"GET", mp + "/report", staff, nil, nil, "month"},
			req{"GET", mp + "/rates", staff, nil, nil, "month"},
			req{"PUT", mp + "/rates", staff, rate, nil, "month"},
			req{"POST", mp + "/close", staff, nil, nil, "month"},
			req{"POST", mp + fmt.Sprintf("/reconciliations?partner_id=%d", p.ID), staff, "external_ref,type,points\n", csv, "month"},
			req{"GET", "/v1/admin/settlement/statements?period=" + q, staff, nil, nil, "period"},
			req{"GET", "/v1/statements?period=" + q, tok, nil, nil, "period"},
			req{"POST", "/v1/statements/" + url.PathEscape(month) + "/reconciliation", tok, "external_ref,type,points\n", csv, "id"},
		)
	}
	for _, at := range []string{"2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "2026-01-01", "yesterday", "2026-01-01T25:00:00Z"} {
		q := url.QueryEscape(at)
		cases = append(cases,
			req{"GET", fmt.Sprintf("/v1/admin/partners/%d/contract?at=%s", p.ID, q), staff, nil, nil, "at"},
			req{"GET", "/v1/transactions?from=" + q, tok, nil, nil, "from"},
			req{"GET", "/v1/transactions?to=" + q, tok, nil, nil, "to"},
			req{"GET", "/v1/me/transactions?from=" + q, mtok, nil, nil, "from"},
			req{"GET", "/v1/me/transactions?to=" + q, mtok, nil, nil, "to"},
		)
	}
	before := calendarCounts(e.count)
	for _, c := range cases {
		status, out, hdr := e.raw(c.method, c.path, c.tok, c.body, c.header...)
		var pr Problem
		_ = json.Unmarshal(out, &pr)
		var fields []string
		for _, f := range pr.Errors {
			fields = append(fields, f.Field)
		}
		label := c.method + " " + c.path
		switch {
		case status != http.StatusBadRequest || pr.Code != "invalid_request":
			t.Errorf("%s: %d %s; want 400 invalid_request naming %q", label, status, out, c.field)
		case !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json"):
			t.Errorf("%s: Content-Type %q; want application/problem+json", label, hdr.Get("Content-Type"))
		case !containsStr(fields, c.field):
			t.Errorf("%s: errors name %v; want %q (%s)", label, fields, c.field, out)
		}
		if after := calendarCounts(e.count); after != before {
			t.Errorf("%s: a refused request wrote rows: %s -> %s", label, before, after)
			before = after
		}
	}
	// The same parameters with a real month, day and instant still work.
	for _, ok := range []string{"/v1/admin/settlement/periods/2001-12", "/v1/admin/settlement/periods/2001-12/rates",
		"/v1/admin/settlement/periods/0001-01", "/v1/admin/settlement/periods/9999-12", "/v1/admin/settlement/statements?period=2001-12",
		fmt.Sprintf("/v1/admin/partners/%d/contract?at=%s", p.ID, url.QueryEscape(e.clock.Now().Format("2006-01-02T15:04:05Z07:00")))} {
		if status, out, _ := e.raw("GET", ok, staff, nil); status != http.StatusOK {
			t.Errorf("GET %s: %d %s; want 200", ok, status, out)
		}
	}
	for _, ok := range []string{"/v1/statements?period=2001-12", "/v1/transactions?from=2001-12-01T00:00:00Z&to=2001-12-31T23:59:59%2B01:00"} {
		if status, out, _ := e.raw("GET", ok, tok, nil); status != http.StatusOK {
			t.Errorf("GET %s: %d %s; want 200", ok, status, out)
		}
	}
}

// TestCalendarFormsAndPagesAreValidated does the same through the console
// and the portal: a month in a page's path or ?month=, the period of a
// reconciliation upload, a contract's effective date and the portal
// history's from/to days. A page answers 400 showing the field; a form
// returns to its page with the field named in the error message; nothing
// is written.
func TestCalendarFormsAndPagesAreValidated(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	p := e.partner("Calendar Shop", partners.SectorRetail)
	e.staffUser("ops@calendar.test", access.RoleAdmin)
	e.member("ada@calendar.test", p.ID, 100)
	count := func(table string) int64 {
		var n int64
		if err := e.db.Raw(`SELECT count(*) FROM ` + table).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	staff := e.browser()
	staff.loginConsole("ops@calendar.test")
	member := e.browser()
	member.loginPortal("ada@calendar.test")
	csrf := csrfOf(t, staff.page("/console/settlement"))
	before := calendarCounts(count)
	// Pages: 400 with the field named.
	for _, pg := range []struct {
		b     *browser
		path  string
		field string
	}{
		{staff, "/console/settlement/2001-13", "month"},
		{staff, "/console/settlement/0000-01", "month"},
		{staff, "/console/settlement/2001-1", "month"},
		{staff, "/console/settlement?month=2001-13", "month"},
		{staff, "/console/settlement?month=0000-01", "month"},
		{member, "/portal/history?from=2026-02-30", "from"},
		{member, "/portal/history?from=0000-01-01", "from"},
		{member, "/portal/history?to=2026-13-01", "to"},
	} {
		status, body, _ := pg.b.get(pg.path)
		if status != http.StatusBadRequest || !strings.Contains(body, pg.field+" must be") {
			i := strings.Index(body, `id="error"`)
			t.Errorf("GET %s: %d %.300s; want 400 naming %q", pg.path, status, body[max(i, 0):], pg.field)
		}
	}
	// Forms: back to the page with the field named, either redirected there
	// (303) or answered with the refused form itself, its input kept (400).
	form := func(path string, v url.Values) (int, string) {
		v.Set("csrf", csrf)
		status, body, h := staff.post(path, v)
		if status != http.StatusSeeOther {
			return status, body
		}
		_, body, _ = staff.get(h.Get("Location"))
		return status, body
	}
	for _, f := range []struct {
		path  string
		form  url.Values
		field string
	}{
		{"/console/settlement/0000-01/close", url.Values{}, "month"},
		{"/console/settlement/2001-13/close", url.Values{}, "month"},
		{fmt.Sprintf("/console/partners/%d/contracts", p.ID), url.Values{"effective_from": {"0000-01-01"}, "earn": {"on"},
			"issue_price": {"0.01"}, "redemption_rate": {"0.005"}, "billing": {"postpaid"}}, "effective from"},
		{fmt.Sprintf("/console/partners/%d/contracts", p.ID), url.Values{"effective_from": {"2026-02-30"}, "earn": {"on"},
			"issue_price": {"0.01"}, "redemption_rate": {"0.005"}, "billing": {"postpaid"}}, "effective from"},
	} {
		status, body := form(f.path, f.form)
		// A redirect shows the problem's detail ("<field> must be ..."); a
		// refused form names the field at the top and holds the message
		// under its input.
		named := strings.Contains(body, f.field+" must be") ||
			(status == http.StatusBadRequest && strings.Contains(body, "Please check: "+f.field) && strings.Contains(body, `class="field-err"`))
		if (status != http.StatusSeeOther && status != http.StatusBadRequest) || !named {
			i := strings.Index(body, `id="error"`)
			t.Errorf("POST %s %v: %d %.300s; want back with %q named", f.path, f.form, status, body[max(i, 0):], f.field)
		}
	}
	for _, month := range []string{"0000-01", "2001-13"} {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf", csrf)
		_ = mw.WriteField("partner_id", fmt.Sprint(p.ID))
		_ = mw.WriteField("period", month)
		fw, _ := mw.CreateFormFile("file", "log.csv")
		_, _ = fw.Write([]byte("external_ref,type,points\n"))
		_ = mw.Close()
		rq, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/reconciliation", &buf)
		rq.Header.Set("Content-Type", mw.FormDataContentType())
		status, _, h := staff.do(rq)
		_, body, _ := staff.get(h.Get("Location"))
		if status != http.StatusSeeOther || !strings.Contains(body, "period must be") {
			i := strings.Index(body, `id="error"`)
			t.Errorf("upload for %s: %d %.300s; want back with period named", month, status, body[max(i, 0):])
		}
	}
	if after := calendarCounts(count); after != before {
		t.Errorf("refused pages and forms wrote rows: %s -> %s", before, after)
	}
}
