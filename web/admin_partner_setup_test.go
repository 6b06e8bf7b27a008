package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

// TestAdminEarnQuoteAndWebhookReplay: the admin quote prices a purchase
// with the rule in force or with a draft (a bad draft is a 400 naming the
// field), and a partner's failed webhook delivery is listed and replayed
// by an admin only; every answer matches the OpenAPI document.
func TestAdminEarnQuoteAndWebhookReplay(t *testing.T) {
	t.Parallel()
	var wh *webhooks.Service
	e := newContractEnv(t, func(d *Deps) {
		d.Rules = rules.NewService(d.DB, time.Now)
		wh = webhooks.NewService(d.DB, d.Access.SecretBox(), netguard.Policy{AllowLoopback: true}, time.Now)
		d.Webhooks = wh
	})
	admin := e.login("root@hub.test", access.RoleAdmin)
	support := e.login("help@hub.test", access.RoleSupport)
	ctx := context.Background()
	p, err := e.svc.CreatePartner(ctx, partners.NewPartner{Name: "Fuel Co", Sector: partners.SectorFuel, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("/v1/admin/partners/%d", p.ID)
	purchase := map[string]any{"amount": map[string]any{"minor": 12550, "currency": "EUR"},
		"lines": []map[string]any{{"category": "fuel", "amount": 12550}}}
	e.expect(422, "no_earn_rule", http.MethodPost, base+"/earn-rules/quote", support, purchase)

	draft := map[string]any{"earn": []map[string]any{{"kind": "per_currency_unit", "rate": "1", "currency": "EUR", "per_minor": 100}},
		"multipliers": map[string]any{"category": []map[string]any{{"category": "fuel", "rate": "2"}}}}
	withDraft := map[string]any{"definition": draft, "amount": purchase["amount"], "lines": purchase["lines"]}
	if q := e.expect(200, "", http.MethodPost, base+"/earn-rules/quote", support, withDraft); q["total"] != float64(250) {
		t.Fatalf("draft quote %v, want 250 points", q)
	}
	bad := map[string]any{"definition": map[string]any{"earn": []map[string]any{{"kind": "per_currency_unit", "rate": "0", "currency": "EUR", "per_minor": 100}}},
		"amount": purchase["amount"]}
	if out := e.expect(400, "invalid_request", http.MethodPost, base+"/earn-rules/quote", support, bad); !strings.Contains(fmt.Sprint(out["errors"]), "earn[0].rate") {
		t.Fatalf("bad draft: %v; want the field earn[0].rate named", out)
	}
	e.expect(201, "", http.MethodPost, base+"/earn-rules", admin, map[string]any{"definition": draft})
	if q := e.expect(200, "", http.MethodPost, base+"/earn-rules/quote", support, purchase); q["total"] != float64(250) || q["rule_version"] != float64(1) {
		t.Fatalf("quote with the rule in force %v, want 250 points by version 1", q)
	}
	e.expect(404, "partner_not_found", http.MethodPost, "/v1/admin/partners/99999/earn-rules/quote", support, withDraft)

	// A failed delivery, listed and replayed.
	if _, _, err := wh.CreateEndpoint(ctx, p.ID, "http://127.0.0.1:1/hooks", []string{"*"}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Transaction(func(tx *gorm.DB) error {
		_, err := webhooks.Publish(tx, time.Now(), p.ID, webhooks.EventStatementReady, map[string]any{"period": "2026-10"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var id int64
	e.db.Raw(`UPDATE webhook_deliveries SET state = 'failed', attempts = 33, last_error = 'receiver answered 503' WHERE partner_id = ? RETURNING id`, p.ID).Scan(&id)
	list := e.expect(200, "", http.MethodGet, base+"/webhooks", support, nil)
	if eps, failed := list["endpoints"].([]any), list["failed_deliveries"].([]any); len(eps) != 1 || len(failed) != 1 {
		t.Fatalf("webhooks %v, want one endpoint and one failed delivery", list)
	}
	replay := fmt.Sprintf("%s/webhook-deliveries/%d/replay", base, id)
	e.expect(403, "forbidden", http.MethodPost, replay, support, nil)
	if d := e.expect(200, "", http.MethodPost, replay, admin, nil); d["state"] != "pending" {
		t.Fatalf("replayed delivery %v, want pending", d)
	}
	e.expect(409, "webhook_delivery_not_failed", http.MethodPost, replay, admin, nil)
	e.expect(404, "webhook_delivery_not_found", http.MethodPost, fmt.Sprintf("/v1/admin/partners/%d/webhook-deliveries/%d/replay", p.ID+1, id), admin, nil)
}
