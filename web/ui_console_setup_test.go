package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/netguard"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/webhooks"
)

// TestConsoleSetupPagesRolesAndRefusals: the partner, programme and staff
// pages render for their roles; a refused promotion comes back 400 with
// what was typed and the message under the field the server named, and
// writes nothing; a promotion is created and ended; a failed webhook
// delivery is replayed from the partner page; support may change nothing.
func TestConsoleSetupPagesRolesAndRefusals(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	e.staffUser("admin@hub.test", access.RoleAdmin)
	e.staffUser("fin@hub.test", access.RoleFinance)
	e.staffUser("support@hub.test", access.RoleSupport)
	path := "/console/partners/" + itoa(air.ID)

	admin := e.browser()
	admin.loginConsole("admin@hub.test")
	for _, p := range []string{path, "/console/programme", "/console/staff"} {
		body := admin.page(p)
		for _, nav := range []string{"nav-programme", "nav-staff"} {
			if !strings.Contains(body, `id="`+nav+`"`) {
				t.Errorf("%s lacks navigation link %s", p, nav)
			}
		}
	}

	// The only admin disabling itself is refused, and the staff page says why.
	var adminID int64
	if err := e.db.Raw(`SELECT id FROM staff_users WHERE email = 'admin@hub.test'`).Scan(&adminID).Error; err != nil {
		t.Fatal(err)
	}
	staffCSRF := csrfOf(t, admin.page("/console/staff"))
	if st, _, h := admin.post("/console/staff/"+itoa(adminID)+"/status", url.Values{"csrf": {staffCSRF}, "status": {"disabled"}}); st != http.StatusSeeOther || h.Get("Location") != "/console/staff" {
		t.Fatalf("disable the last admin = %d → %q, want 303 back to the staff page", st, h.Get("Location"))
	}
	if body := admin.page("/console/staff"); !strings.Contains(body, "The last active admin must stay an active admin") {
		t.Errorf("staff page after disabling the last admin does not say why:\n%s", body)
	}

	support := e.browser()
	support.loginConsole("support@hub.test")
	body := support.page(path)
	if strings.Contains(body, `id="outlet-form"`) || strings.Contains(body, `id="rule-form"`) {
		t.Errorf("support sees forms it may not post")
	}
	csrf := csrfOf(t, body)
	if st, _, _ := support.post(path+"/outlets", url.Values{"csrf": {csrf}, "code": {"X1"}, "name": {"X"}}); st != http.StatusForbidden {
		t.Errorf("support adding an outlet = %d, want 403", st)
	}
	if st, _, _ := support.get("/console/staff"); st != http.StatusForbidden {
		t.Errorf("support on the staff page = %d, want 403", st)
	}
	support.page("/console/programme")

	fin := e.browser()
	fin.loginConsole("fin@hub.test")
	csrf = csrfOf(t, fin.page(path))
	now := e.clock.Now().UTC()
	form := url.Values{"csrf": {csrf}, "name": {"Double nights"}, "code": {"NIGHTS2"}, "effect": {"multiplier"},
		"multiplier": {"2"}, "funded_by": {"partner"}, "starts_at": {now.Add(time.Hour).Format("2006-01-02T15:04")},
		"ends_at": {now.Format("2006-01-02T15:04")}}
	st, body, _ := fin.post(path+"/promotions", form)
	if st != http.StatusBadRequest || !strings.Contains(body, `id="pr-end-err">must be after starts_at<`) ||
		!strings.Contains(body, `value="Double nights"`) || !strings.Contains(body, `value="NIGHTS2"`) {
		t.Fatalf("refused promotion = %d, want 400 naming ends_at with the input kept:\n%s", st, body)
	}
	var n int64
	e.db.Raw(`SELECT count(*) FROM promotions`).Scan(&n)
	if n != 0 {
		t.Fatalf("a refused promotion wrote %d rows", n)
	}
	form.Set("ends_at", now.AddDate(0, 1, 0).Format("2006-01-02T15:04"))
	if st, _, h := fin.post(path+"/promotions", form); st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), path) {
		t.Fatalf("promotion = %d → %q, want 303 to the partner page", st, h.Get("Location"))
	}
	var promo int64
	e.db.Raw(`SELECT id FROM promotions WHERE code = 'NIGHTS2'`).Scan(&promo)
	body = fin.page(path)
	if !strings.Contains(body, `id="promo-end-`+itoa(promo)+`"`) {
		t.Fatalf("the partner page lists no end button for promotion %d", promo)
	}
	if st, _, _ := fin.post("/console/promotions/"+itoa(promo)+"/end", url.Values{"csrf": {csrf}, "partner_id": {itoa(air.ID)}}); st != http.StatusSeeOther {
		t.Fatalf("end promotion = %d, want 303", st)
	}
	if body = fin.page(path); !strings.Contains(body, `id="promo-status-`+itoa(promo)+`">ended<`) {
		t.Fatalf("promotion %d not shown ended", promo)
	}

	// A failed delivery, replayed by the admin from the partner page.
	wh := webhooks.NewService(e.db, e.acc.SecretBox(), netguard.Policy{AllowLoopback: true}, e.clock.Now)
	if _, _, err := wh.CreateEndpoint(context.Background(), air.ID, "http://127.0.0.1:1/hooks", []string{"*"}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Transaction(func(tx *gorm.DB) error {
		_, err := webhooks.Publish(tx, now, air.ID, webhooks.EventStatementReady, map[string]any{"period": "2026-10"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var id int64
	e.db.Raw(`UPDATE webhook_deliveries SET state = 'failed', attempts = 33 WHERE partner_id = ? RETURNING id`, air.ID).Scan(&id)
	body = admin.page(path)
	if !strings.Contains(body, `id="replay-`+itoa(id)+`"`) {
		t.Fatalf("the partner page shows no replay button for delivery %d", id)
	}
	st, _, h := admin.post(path+"/webhook-deliveries/"+itoa(id)+"/replay", url.Values{"csrf": {csrfOf(t, body)}})
	if st != http.StatusSeeOther || !strings.HasSuffix(h.Get("Location"), "#webhooks") {
		t.Fatalf("replay = %d → %q, want 303 to the webhooks section", st, h.Get("Location"))
	}
	var state string
	e.db.Raw(`SELECT state FROM webhook_deliveries WHERE id = ?`, id).Scan(&state)
	if state != "pending" {
		t.Fatalf("delivery %d is %s after the replay, want pending", id, state)
	}
	var audited int64
	e.db.Raw(`SELECT count(*) FROM operator_audit_log WHERE action IN ('promotion.create', 'promotion.end', 'webhook.replay')`).Scan(&audited)
	if audited != 4 { // the refused promotion too
		t.Fatalf("%d audit rows for the console actions, want 4", audited)
	}
}
