package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// FuzzDecodeEarnRequest sends arbitrary bytes as the body of POST /v1/earn
// (and the same bytes to /v1/earn/quote and /v1/burns) through the real
// router, auth and handlers over a real database, with a valid partner
// token. The hub must never panic or answer 5xx: every answer is a 2xx or a
// 4xx problem+json with a code, and a 400 names at least one field. The
// regression corpus is in testdata/fuzz/FuzzDecodeEarnRequest; explore with
// go test -run '^$' -fuzz FuzzDecodeEarnRequest -fuzztime 30s ./web/.
func FuzzDecodeEarnRequest(f *testing.F) {
	e := newHubEnv(f, func(d *Deps) { d.ClientRate, d.ClientBurst = 1e9, 1<<30 })
	_, tok := e.partner("Fuzz Hotels", e.clock.Now().AddDate(0, -1, 0))
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "FZ-1"}})
	mid := int64(m["id"].(float64))
	f.Add([]byte(fmt.Sprintf(`{"member_id": %d, "amount": {"minor": 1250, "currency": "EUR"}}`, mid)))
	f.Add([]byte(fmt.Sprintf(`{"member_id": %d, "points": 1, "redemption_code": "000000", "expires_at": "x"}`, mid)))
	f.Add([]byte(`{"items": [{"idempotency_key": "k", "member_id": 1, "occurred_at": "bad"}]}`))
	f.Add([]byte(fmt.Sprintf(`{"member_id": %d, "Member_ID": 1, "amount": {"minor": 1, "minor": 2, "currency": "EUR"}}`, mid)))
	f.Add([]byte(fmt.Sprintf(`{"member_id": %d, "amount": {"minor": 100, "currency": "EUR"}, "external_ref": "\ud800\\ud800`+"\xff"+`"}`, mid)))
	f.Add([]byte(`{"items": [{"idempotency_key": "k", "member_id": 1}, {"idempotency_key": "k", "idempotency_key": "\udc00"}]}`))
	f.Cleanup(e.audit)
	var keys atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/earn", "/v1/earn/quote", "/v1/burns", "/v1/earn/batch"} {
			req, err := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("fuzz-%d", keys.Add(1)))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode >= 500 {
				t.Fatalf("%s with %q: %d %s; want never a 5xx", path, body, res.StatusCode, out)
			}
			if res.StatusCode < 400 {
				continue
			}
			var p Problem
			if err := json.Unmarshal(out, &p); err != nil || p.Code == "" ||
				!strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("%s with %q: %d %q %s; want problem+json with a code", path, body, res.StatusCode, res.Header.Get("Content-Type"), out)
			}
			if p.Code == "invalid_request" && len(p.Errors) == 0 {
				t.Fatalf("%s with %q: invalid_request naming no field: %s", path, body, out)
			}
		}
	})
}
