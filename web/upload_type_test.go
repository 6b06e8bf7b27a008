package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/partners"
)

// Upload routes check Content-Type like the JSON routes: a reconciliation
// file is text/csv (charset utf-8 if any) and the console's upload form is
// multipart/form-data; anything else, or none, is a 415 problem+json
// unsupported_media_type naming Content-Type, and nothing is written.
func TestUploadsNeedTheirContentType(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	p, tok := e.partner("Upload Hotels", e.clock.Now().AddDate(0, -1, 0))
	staff := e.staffToken()
	month := e.clock.Now().AddDate(0, -1, 0).Format("2006-01")
	file := "external_ref,type,points\n"
	paths := []struct{ path, tok string }{
		{"/v1/statements/" + month + "/reconciliation", tok},
		{fmt.Sprintf("/v1/admin/settlement/periods/%s/reconciliations?partner_id=%d", month, p.ID), staff},
	}
	before := calendarCounts(e.count)
	for _, u := range paths {
		for _, ct := range []string{"", "text/plain", "application/json", "text/csv; charset=iso-8859-1",
			"multipart/form-data; boundary=x", "text/csvx", "text/csv;;"} {
			header := []string{"Content-Type", ct}
			status, out, hdr := e.raw("POST", u.path, u.tok, file, header...)
			var pr Problem
			_ = json.Unmarshal(out, &pr)
			if status != http.StatusUnsupportedMediaType || pr.Code != "unsupported_media_type" ||
				!strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") ||
				len(pr.Errors) != 1 || pr.Errors[0].Field != "Content-Type" {
				t.Errorf("POST %s with Content-Type %q: %d %s; want 415 unsupported_media_type naming Content-Type", u.path, ct, status, out)
			}
		}
	}
	if after := calendarCounts(e.count); after != before {
		t.Errorf("refused uploads wrote rows: %s -> %s", before, after)
	}
	// A CSV passes the check (this period has no settlement yet: 404).
	for _, u := range paths {
		for _, ct := range []string{"text/csv", "text/csv; charset=utf-8", "Text/CSV; Charset=\"UTF-8\""} {
			if status, out, _ := e.raw("POST", u.path, u.tok, file, "Content-Type", ct); status == http.StatusUnsupportedMediaType {
				t.Errorf("POST %s with Content-Type %q: %d %s; want it past the media type check", u.path, ct, status, out)
			}
		}
	}
}

// The console's upload form refuses a body that is not multipart/form-data
// (a form without a file) with 415, after the CSRF check passed.
func TestConsoleUploadNeedsAMultipartForm(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	p := e.partner("Upload Shop", partners.SectorRetail)
	e.staffUser("ops@upload.test", access.RoleAdmin)
	staff := e.browser()
	staff.loginConsole("ops@upload.test")
	csrf := csrfOf(t, staff.page("/console/reconciliation"))
	status, body, h := staff.post("/console/reconciliation", url.Values{"csrf": {csrf}, "partner_id": {fmt.Sprint(p.ID)},
		"period": {e.clock.Now().AddDate(0, -1, 0).Format("2006-01")}, "file": {"external_ref,type,points\n"}})
	if status != http.StatusUnsupportedMediaType || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") ||
		!strings.Contains(body, "unsupported_media_type") {
		t.Fatalf("urlencoded upload: %d %q %.300s; want 415 problem+json unsupported_media_type", status, h.Get("Content-Type"), body)
	}
}
