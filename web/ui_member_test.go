package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
)

// TestConsoleMember360: the member page shows the member's tier and its
// progress, lots with their expiry, holds, portal sessions and the staff
// actions on the member, each in its own section.
func TestConsoleMember360(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	m := e.member("sam@example.test", air.ID, 4000)
	if _, err := e.led.Hold(e.ctx, ledger.HoldRequest{Idem: ledger.Idempotency{Scope: "t", Key: "h1"}, MemberID: m.ID, PartnerID: air.ID,
		Points: 250, ExpiresAt: e.clock.Now().Add(time.Hour), Purpose: "pos", ExternalRef: "TILL-1"}); err != nil {
		t.Fatal(err)
	}
	mb := e.browser()
	mb.loginPortal("sam@example.test")
	e.staffUser("admin@hub.test", access.RoleAdmin)
	b := e.browser()
	b.loginConsole("admin@hub.test")
	path := "/console/members/" + itoa(m.ID)
	page := b.page(path)
	if st, _, _ := b.post(path+"/adjustments", url.Values{"csrf": {csrfOf(t, page)}, "points": {"100"}, "reason": {"goodwill"}}); st != http.StatusSeeOther {
		t.Fatalf("adjust = %d", st)
	}
	page = b.page(path)
	section := func(id string) string {
		i := strings.Index(page, `id="`+id+`"`)
		if i < 0 {
			t.Fatalf("member page lacks #%s:\n%s", id, page)
		}
		end := strings.Index(page[i:], "</table>")
		if end < 0 {
			end = min(len(page)-i, 2000)
		}
		return page[i : i+end]
	}
	if s := section("member-lots"); !strings.Contains(s, "4,000") || !strings.Contains(s, "Sky Air") {
		t.Errorf("lots: want the 4,000-point lot issued by Sky Air:\n%s", s)
	}
	if s := section("member-holds"); !strings.Contains(s, "250") || !strings.Contains(s, "status-active") {
		t.Errorf("holds: want the active 250-point hold:\n%s", s)
	}
	if s := section("member-sessions"); !regexp.MustCompile(`expires `).MatchString(s) {
		t.Errorf("sessions: want the open portal session:\n%s", s)
	}
	if s := section("member-staff-actions"); !strings.Contains(s, "member.adjust") || !strings.Contains(s, "admin@hub.test") {
		t.Errorf("staff actions: want the adjustment by admin@hub.test:\n%s", s)
	}
	for _, id := range []string{"member-tier", "orders-empty", "exchanges-empty", "member-sections"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("member page lacks #%s", id)
		}
	}
}
