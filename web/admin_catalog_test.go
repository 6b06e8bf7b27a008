package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/partners"
)

// send is req with a body of its own type (CSV, an image).
func (e *catalogEnv) send(method, path, token, contentType string, body []byte) (int, []byte, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out, res.Header
}

func (e *catalogEnv) staffRoleToken(email string, role access.Role) string {
	e.t.Helper()
	if _, err := e.acc.EnsureStaff(e.ctx, email, "correct horse battery", role); err != nil {
		e.t.Fatal(err)
	}
	out := e.must(http.StatusOK, http.MethodPost, "/v1/admin/login", "", "", map[string]any{"email": email, "password": "correct horse battery"})
	return out["access_token"].(string)
}

// Staff publish an operator reward over the admin API, give it codes, stock
// and an image; a member orders it and gets one code; support may read but
// not write; the audit log names each action and never a code.
func TestOperatorRewardsOverAdminAPI(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t)
	_, airTok := e.partner("Skyways", partners.SectorAirline, true, access.ScopePointsEarn)
	hotel, hotelTok := e.partner("Grand Hotels", partners.SectorHotel, false, access.ScopeCatalogManage)
	memberID, meTok := e.memberToken("ana@example.com")
	e.must(http.StatusCreated, http.MethodPost, "/v1/earn", airTok, "flight-1", map[string]any{"member_id": memberID,
		"amount": map[string]any{"minor": 500000, "currency": "EUR"}, "occurred_at": e.clock.Now().Format(time.RFC3339), "external_ref": "PNR-1"})
	admin := e.staffToken()
	support := e.staffRoleToken("help@hub.test", access.RoleSupport)

	reward := map[string]any{"title": "Cinema for two", "category": "voucher", "price_points": 2000,
		"value": map[string]any{"minor": 1800, "currency": "EUR"}, "stock_total": 5}
	if code, _, _ := e.req(http.MethodPost, "/v1/admin/catalog/rewards", support, "", reward); code != http.StatusForbidden {
		t.Fatalf("support creates a reward: %d; want 403", code)
	}
	code, bad, _ := e.req(http.MethodPost, "/v1/admin/catalog/rewards", admin, "", map[string]any{"title": "X", "category": "voucher",
		"price_points": 0, "value": map[string]any{"minor": 1, "currency": "EUR"}})
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(bad["errors"]), "price_points") {
		t.Fatalf("bad reward: %d %v; want 400 naming price_points", code, bad)
	}
	r := e.must(http.StatusCreated, http.MethodPost, "/v1/admin/catalog/rewards", admin, "", reward)
	id := num(r["id"])
	if r["owner"] != "operator" || r["partner_id"] != nil || r["fulfilment"] != "instant" {
		t.Fatalf("operator reward %v: want owner operator, partner_id null, instant", r)
	}
	path := fmt.Sprintf("/v1/admin/catalog/rewards/%d", id)
	// A partner cannot see or change it; staff cannot edit a partner's.
	if code, _, _ := e.req(http.MethodGet, fmt.Sprintf("/v1/catalog/rewards/%d", id), hotelTok, "", nil); code != http.StatusNotFound {
		t.Fatalf("partner reads the operator's reward: %d; want 404", code)
	}
	hr := e.must(http.StatusCreated, http.MethodPost, "/v1/catalog/rewards", hotelTok, "", map[string]any{"title": "Night",
		"category": "hotel_night", "price_points": 9000, "value": map[string]any{"minor": 9000, "currency": "EUR"}, "fulfilment": "async"})
	if code, _, _ := e.req(http.MethodPut, fmt.Sprintf("/v1/admin/catalog/rewards/%d", num(hr["id"])), admin, "", reward); code != http.StatusNotFound {
		t.Fatalf("staff edit a partner's reward: %d; want 404", code)
	}
	_ = hotel

	// Voucher codes as CSV.
	if code, _, _ := e.send(http.MethodPost, path+"/vouchers", admin, "application/json", []byte(`{}`)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("vouchers as JSON: %d; want 415", code)
	}
	code, body, _ := e.send(http.MethodPost, path+"/vouchers", admin, "text/csv", []byte("code\nCIN-SECRET-1\nCIN-SECRET-2\n\nCIN-SECRET-3\nCIN-SECRET-1\n"))
	var up map[string]any
	_ = json.Unmarshal(body, &up)
	if code != http.StatusOK || num(up["added"]) != 3 || num(up["duplicates"]) != 1 || num(up["available"]) != 3 {
		t.Fatalf("upload: %d %s; want 3 added, 1 duplicate", code, body)
	}
	// Stock: adjust with a reason; one that would go below zero names adjust.
	e.must(http.StatusOK, http.MethodPost, path+"/stock", admin, "", map[string]any{"adjust": -3, "reason": "damaged"})
	code, bad, _ = e.req(http.MethodPost, path+"/stock", admin, "", map[string]any{"adjust": -3, "reason": "lost"})
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(bad["errors"]), "adjust") {
		t.Fatalf("take out more than remains: %d %v; want 400 naming adjust", code, bad)
	}
	// Image: a PNG is stored and served; SVG is refused.
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 40)...)
	code, body, _ = e.send(http.MethodPut, path+"/image", admin, "image/png", png)
	var withImg map[string]any
	_ = json.Unmarshal(body, &withImg)
	imgURL, _ := withImg["image_url"].(string)
	if code != http.StatusOK || imgURL == "" {
		t.Fatalf("image: %d %s", code, body)
	}
	if code, body, _ := e.send(http.MethodPut, path+"/image", admin, "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)); code != http.StatusBadRequest {
		t.Fatalf("svg image: %d %s; want 400", code, body)
	}
	res, err := http.Get(e.srv.URL + imgURL)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/png" || !bytes.Equal(served, png) ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET %s: %d %q %d bytes", imgURL, res.StatusCode, res.Header.Get("Content-Type"), len(served))
	}

	// The member sees it in the catalog and orders it: one code, no partner.
	offer := e.must(http.StatusOK, http.MethodGet, fmt.Sprintf("/v1/me/catalog/%d", id), meTok, "", nil)
	if offer["owner"] != "operator" || offer["image_url"] != imgURL {
		t.Fatalf("offer %v", offer)
	}
	o := e.must(http.StatusCreated, http.MethodPost, "/v1/me/orders", meTok, "o-1", map[string]any{"reward_id": id})
	if o["status"] != "fulfilled" || !strings.HasPrefix(fmt.Sprint(o["reference"]), "CIN-SECRET-") || o["partner_id"] != nil {
		t.Fatalf("order %v: want fulfilled with a code, no partner", o)
	}
	got := e.must(http.StatusOK, http.MethodGet, path, support, "", nil)
	if num(got["stock_remaining"]) != 1 || num(got["vouchers_available"]) != 2 {
		t.Fatalf("after the order: %v; want 1 unit and 2 codes left", got)
	}
	list := e.must(http.StatusOK, http.MethodGet, "/v1/admin/catalog/rewards?owner=operator", support, "", nil)
	if data := list["data"].([]any); len(data) != 1 || num(data[0].(map[string]any)["id"]) != id {
		t.Fatalf("operator rewards %v; want only %d", list, id)
	}
	evs := e.must(http.StatusOK, http.MethodGet, path+"/events", support, "", nil)
	var kinds []string
	for _, ev := range evs["data"].([]any) {
		kinds = append(kinds, ev.(map[string]any)["kind"].(string))
	}
	if strings.Join(kinds, " ") != "image_set stock_adjusted vouchers_uploaded created" {
		t.Fatalf("trail %v", kinds)
	}
	e.must(http.StatusOK, http.MethodPost, path+"/retire", admin, "", map[string]any{"reason": "season over"})
	if code, _, _ := e.req(http.MethodPut, path, admin, "", reward); code != http.StatusConflict {
		t.Fatalf("edit a retired reward: %d; want 409", code)
	}

	// The audit log names the actions; no code is anywhere in it.
	var actions []string
	if err := e.db.Raw(`SELECT action FROM operator_audit_log WHERE action LIKE 'reward.%' AND outcome = 'ok' ORDER BY id`).Scan(&actions).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, " ") != "reward.create reward.vouchers reward.stock reward.image reward.retire" {
		t.Fatalf("audit actions %v", actions)
	}
	var leaks int64
	if err := e.db.Raw(`SELECT count(*) FROM operator_audit_log WHERE detail LIKE '%CIN-SECRET%' OR target LIKE '%CIN-SECRET%'`).Scan(&leaks).Error; err != nil || leaks != 0 {
		t.Fatalf("%d audit rows carry a voucher code (%v)", leaks, err)
	}
}
