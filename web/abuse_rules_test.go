package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestFraudRulesThroughTheAPI: the operator sets a partner's rules through
// the admin API; the partner's earn over the member limit is held (its
// points pending, not spendable), shows in GET /v1/flags and the review
// queue; a burn over the burn limit is 429 velocity_limit with Retry-After;
// approving the flag makes the points spendable, and every review is in the
// audit log.
func TestFraudRulesThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	p, tok := e.partner("Fraud Hotels", e.clock.Now().AddDate(0, -1, 0))
	staff := e.staffToken()
	path := fmt.Sprintf("/v1/admin/partners/%d/abuse-rules", p.ID)
	if code, body := e.call("PUT", path, staff, map[string]any{"member_earns_per_hour": -1}); code != 400 {
		t.Fatalf("negative limit: %d %v, want 400", code, body)
	}
	r := e.must(200, "PUT", path, staff, map[string]any{"member_earns_per_hour": 2, "member_burns_per_hour": 1,
		"refund_share": "0.5", "action_caps": []map[string]any{{"event_code": "check_in", "max": 1, "period": "day"}}})
	if r["member_earns_per_hour"].(float64) != 2 || r["refund_share"] != "0.5" || r["updated_by"] == "" {
		t.Fatalf("rules answered %v", r)
	}
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "F-1"}})
	mid := int64(m["id"].(float64))
	pin := "2468"
	e.setTestPIN(mid, pin)
	var held map[string]any
	for i := range 3 {
		held = e.must(201, "POST", "/v1/earn", tok, map[string]any{"member_id": mid,
			"amount": map[string]any{"minor": 10000, "currency": "EUR"}, "external_ref": fmt.Sprintf("f-%d", i), "card": "4000-1"})
	}
	flags := e.must(200, "GET", "/v1/flags?status=open", tok, nil)["data"].([]any)
	if len(flags) != 1 {
		t.Fatalf("partner flags %v: want the third earn", flags)
	}
	flag := flags[0].(map[string]any)
	if flag["rule"] != "member_earns_per_hour" || flag["transaction_id"] != held["id"] {
		t.Fatalf("flag %v: want member_earns_per_hour on transaction %v", flag, held["id"])
	}
	bal, err := e.led.Balance(e.ctx, mid)
	if err != nil || bal.Available != 200 || bal.Pending != 100 {
		t.Fatalf("balance %+v %v: want 200 available and the held 100 pending", bal, err)
	}
	// The held points cannot be spent: 250 is more than is available.
	if code, body := e.call("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 250, "pin": pin}); code != 422 || body["code"] != "insufficient_points" {
		t.Fatalf("burn of held points: %d %v, want 422 insufficient_points", code, body)
	}
	e.must(201, "POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 10, "pin": pin})
	code, b, h := e.raw("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 10, "pin": pin})
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !contains(b, `"velocity_limit"`) {
		t.Fatalf("second burn in the hour: %d %s (Retry-After %q), want 429 velocity_limit", code, b, h.Get("Retry-After"))
	}

	queue := e.must(200, "GET", fmt.Sprintf("/v1/admin/flags?status=open&partner_id=%d", p.ID), staff, nil)["data"].([]any)
	if len(queue) != 1 {
		t.Fatalf("review queue %v", queue)
	}
	id := int64(flag["id"].(float64))
	if code, body := e.call("POST", fmt.Sprintf("/v1/admin/flags/%d/review", id), staff, map[string]any{"decision": "maybe"}); code != 400 {
		t.Fatalf("bad decision: %d %v", code, body)
	}
	done := e.must(200, "POST", fmt.Sprintf("/v1/admin/flags/%d/review", id), staff, map[string]any{"decision": "approve", "note": "regular guest"})
	if done["status"] != "approved" {
		t.Fatalf("reviewed %v", done)
	}
	if code, body := e.call("POST", fmt.Sprintf("/v1/admin/flags/%d/review", id), staff, map[string]any{"decision": "reject", "note": "x"}); code != 409 || body["code"] != "flag_reviewed" {
		t.Fatalf("second review: %d %v, want 409 flag_reviewed", code, body)
	}
	if bal, _ = e.led.Balance(e.ctx, mid); bal.Available != 290 || bal.Pending != 0 {
		t.Fatalf("after approval %+v: want 290 available", bal)
	}
	var audited int64
	e.db.Raw(`SELECT count(*) FROM operator_audit_log WHERE action IN ('flag.approve', 'flag.reject') AND target = ?`,
		fmt.Sprintf("flag:%d", id)).Scan(&audited)
	if audited != 2 { // the approval, and the refused second review
		t.Fatalf("%d review entries in the audit log, want 2", audited)
	}
	e.audit()
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
