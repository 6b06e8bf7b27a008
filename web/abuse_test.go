package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/members"
)

// abuseMember enrols a member with 50000 points through partner tok.
func (e *hubEnv) abuseMember(tok, ref string) int64 {
	e.t.Helper()
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": ref}})
	id := int64(m["id"].(float64))
	e.must(201, "POST", "/v1/earn", tok, map[string]any{"member_id": id,
		"amount": map[string]any{"minor": 5000000, "currency": "EUR"}, "external_ref": "seed-" + ref})
	return id
}

// TestRedemptionCodeGuessingLocks guesses a member's redemption code through
// POST /v1/burns: each wrong guess is a 403 consent_invalid, and after the
// policy's 5 failures even the right code is refused with 429
// consent_locked, Retry-After saying the lock's remaining 15 minutes; no
// burn or hold was written.
func TestRedemptionCodeGuessingLocks(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Guess Hotels", e.clock.Now().AddDate(0, -1, 0))
	mid := e.abuseMember(tok, "G-1")
	consent := members.NewBurnConsent(e.db, e.clock.Now, members.DefaultConsentPolicy)
	rc, err := consent.IssueCode(e.ctx, mid)
	if err != nil {
		t.Fatal(err)
	}
	before := e.rowCounts()
	for i := 0; i < members.DefaultConsentPolicy.MaxFailures; i++ {
		guess := fmt.Sprintf("%06d", 100000+i)
		if guess == rc.Code {
			guess = "999999"
		}
		code, out := e.call("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 100, "redemption_code": guess})
		if code != http.StatusForbidden || out["code"] != "consent_invalid" {
			t.Fatalf("guess %d: %d %v; want 403 consent_invalid", i+1, code, out)
		}
	}
	status, body, hdr := e.raw("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 100, "redemption_code": rc.Code})
	var p Problem
	_ = json.Unmarshal(body, &p)
	if status != http.StatusTooManyRequests || p.Code != "consent_locked" || hdr.Get("Retry-After") != "900" {
		t.Fatalf("the right code after 5 wrong guesses: %d %s (Retry-After %q); want 429 consent_locked with Retry-After 900", status, body, hdr.Get("Retry-After"))
	}
	if after := e.rowCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("guessing wrote rows: before %v, after %v", before, after)
	}
	if b, _ := e.led.Balance(e.ctx, mid); b.Total != 50000 || b.Held != 0 {
		t.Errorf("balance after guessing %+v; want 50000 total, none held", b)
	}
	e.audit()
}

// TestClientRateLimitAnswers429 drives one API client past its token bucket:
// the excess requests get 429 problem+json rate_limited with a whole-second
// Retry-After, and the requests within the burst succeed.
func TestClientRateLimitAnswers429(t *testing.T) {
	t.Parallel()
	// One token per 1,000 s: however slowly a loaded machine sends the
	// twelve requests, the bucket does not refill while they run.
	e := newHubEnv(t, func(d *Deps) { d.ClientRate, d.ClientBurst = 0.001, 5 })
	_, tok := e.partner("Busy Hotels", e.clock.Now().AddDate(0, -1, 0))
	ok, limited := 0, 0
	for i := 0; i < 12; i++ {
		status, body, hdr := e.raw("GET", "/v1/transactions", tok, nil)
		switch status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			var p Problem
			_ = json.Unmarshal(body, &p)
			ra, err := strconv.Atoi(hdr.Get("Retry-After"))
			if p.Code != "rate_limited" || err != nil || ra < 1 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") {
				t.Errorf("429 answer: %s, Retry-After %q, Content-Type %q; want problem+json rate_limited with Retry-After >= 1",
					body, hdr.Get("Retry-After"), hdr.Get("Content-Type"))
			}
		default:
			t.Errorf("request %d: %d %s; want 200 or 429", i, status, body)
		}
	}
	if ok != 4 || limited != 8 { // the token request took one of the 5
		t.Errorf("%d answered, %d limited of 12 with a burst of 5; want the burst served and the rest limited", ok, limited)
	}
}

// TestOversizedBodyIsRefused posts a body just over 1 MiB to POST /v1/earn,
// once with Content-Length (refused before reading) and once chunked (refused
// while reading): both 413 problem+json body_too_large, nothing written.
func TestOversizedBodyIsRefused(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Big Body Hotels", e.clock.Now().AddDate(0, -1, 0))
	mid := e.abuseMember(tok, "BB-1")
	before := e.rowCounts()
	big := fmt.Sprintf(`{"member_id": %d, "amount": {"minor": 100, "currency": "EUR"}, "external_ref": "%s"}`, mid, strings.Repeat("x", 1<<20))
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // hides the length: sent chunked
		}
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/earn", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("big-%v", chunked))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var p Problem
		_ = json.Unmarshal(out, &p)
		if res.StatusCode != http.StatusRequestEntityTooLarge || p.Code != "body_too_large" ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("chunked=%v: %d %q %s; want 413 problem+json body_too_large", chunked, res.StatusCode, res.Header.Get("Content-Type"), out)
		}
	}
	if after := e.rowCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("an oversized body wrote rows: before %v, after %v", before, after)
	}
}

// injections are hostile strings: SQL, markup, control and format
// characters, invalid UTF-8 and a very long value.
var injections = []string{
	`' OR '1'='1`,
	`'; DROP TABLE members;--`,
	`"; DELETE FROM ledger_entries; --`,
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	"nul\x00byte",
	"bell\x07\x1b[31mred\u202eevil\u200b",
	"bad utf-8 \xff\xfe",
	`{{.}} ${jndi:ldap://x} %s%n`,
	strings.Repeat("A", 10000),
}

// TestInjectionInEveryStringFieldIsHarmless puts each hostile string into
// every string field of enrol, earn and burn. Each request is either refused
// with 400 naming that field (or another 4xx domain answer), or accepted with
// the value stored verbatim and returned JSON-escaped (no raw markup in the
// answer). Never a 500. Afterwards the tables still exist, nothing a refused
// request carried was written, and the ledger audit passes.
func TestInjectionInEveryStringFieldIsHarmless(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Inject Hotels", e.clock.Now().AddDate(0, -1, 0))
	mid := e.abuseMember(tok, "INJ-1")
	locked := e.abuseMember(tok, "INJ-2") // takes the guessed codes and PINs
	consent := members.NewBurnConsent(e.db, e.clock.Now, members.DefaultConsentPolicy)
	code := func() string {
		rc, err := consent.IssueCode(e.ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		return rc.Code
	}
	type target struct {
		name string
		path string
		body func(s string, n int) map[string]any
		// stored reads back what was stored from the 2xx answer.
		stored func(ans map[string]any) (string, bool)
	}
	str := func(m map[string]any, keys ...string) (string, bool) {
		var v any = m
		for _, k := range keys {
			mm, ok := v.(map[string]any)
			if !ok {
				return "", false
			}
			v = mm[k]
		}
		s, ok := v.(string)
		return s, ok
	}
	enrol := func(field string, set func(body map[string]any, s string)) target {
		return target{name: "enrol " + field, path: "/v1/members", body: func(s string, n int) map[string]any {
			b := map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": fmt.Sprintf("REF-%d", n)},
				"profile": map[string]any{"given_name": "Ana"}}
			set(b, s)
			return b
		}}
	}
	earn := func(field string, set func(body map[string]any, s string)) target {
		return target{name: "earn " + field, path: "/v1/earn", body: func(s string, n int) map[string]any {
			b := map[string]any{"member_id": mid, "amount": map[string]any{"minor": 1000, "currency": "EUR"}, "external_ref": fmt.Sprintf("e-%d", n)}
			set(b, s)
			return b
		}}
	}
	burn := func(field string, member int64, set func(body map[string]any, s string)) target {
		return target{name: "burn " + field, path: "/v1/burns", body: func(s string, n int) map[string]any {
			b := map[string]any{"member_id": member, "points": 1, "external_ref": fmt.Sprintf("b-%d", n)}
			if member == mid {
				b["redemption_code"] = code()
			}
			set(b, s)
			return b
		}}
	}
	profile := func(k string) func(map[string]any, string) {
		return func(b map[string]any, s string) { b["profile"].(map[string]any)[k] = s }
	}
	top := func(k string) func(map[string]any, string) { return func(b map[string]any, s string) { b[k] = s } }
	targets := []target{
		{name: "enrol identifier.value", path: "/v1/members", body: func(s string, _ int) map[string]any {
			return map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": s}}
		}, stored: func(a map[string]any) (string, bool) {
			refs, _ := a["partner_refs"].([]any)
			if len(refs) != 1 {
				return "", false
			}
			s, ok := refs[0].(string)
			return s, ok
		}},
		{name: "enrol identifier.type", path: "/v1/members", body: func(s string, _ int) map[string]any {
			return map[string]any{"identifier": map[string]any{"type": s, "value": "x"}}
		}},
		enrol("profile.given_name", profile("given_name")),
		enrol("profile.family_name", profile("family_name")),
		enrol("profile.email", profile("email")),
		enrol("profile.phone", profile("phone")),
		enrol("profile.birth_date", profile("birth_date")),
		enrol("profile.locale", profile("locale")),
		earn("external_ref", top("external_ref")),
		earn("outlet", top("outlet")),
		earn("event_code", top("event_code")),
		earn("amount.currency", func(b map[string]any, s string) { b["amount"].(map[string]any)["currency"] = s }),
		earn("promo_codes[0]", func(b map[string]any, s string) { b["promo_codes"] = []string{s} }),
		earn("lines[0].sku", func(b map[string]any, s string) { b["lines"] = []any{map[string]any{"sku": s, "amount": 1000}} }),
		earn("lines[0].category", func(b map[string]any, s string) {
			b["lines"] = []any{map[string]any{"category": s, "amount": 1000}}
		}),
		earn("activity[0].unit", func(b map[string]any, s string) { b["activity"] = []any{map[string]any{"unit": s, "quantity": 1}} }),
		burn("external_ref", mid, top("external_ref")),
		burn("outlet", mid, top("outlet")),
		burn("redemption_code", locked, top("redemption_code")),
		burn("pin", locked, top("pin")),
	}
	// Where a 2xx answer reflects the field, it must hold the value verbatim.
	reflects := map[string]func(map[string]any) (string, bool){
		"enrol profile.given_name":  func(a map[string]any) (string, bool) { return str(a, "given_name") },
		"enrol profile.family_name": func(a map[string]any) (string, bool) { return str(a, "family_name") },
		"earn external_ref":         func(a map[string]any) (string, bool) { return str(a, "external_ref") },
		"burn external_ref":         func(a map[string]any) (string, bool) { return str(a, "external_ref") },
	}
	n := 0
	accepted := 0
	for _, tg := range targets {
		for _, s := range injections {
			n++
			before := e.rowCounts()
			status, raw, hdr := e.raw("POST", tg.path, tok, tg.body(s, n))
			label := fmt.Sprintf("%s = %.40q", tg.name, s)
			switch {
			case status >= 500:
				t.Errorf("%s: %d %s; want a 2xx or a 4xx, never a 5xx", label, status, raw)
			case status >= 400:
				var p Problem
				_ = json.Unmarshal(raw, &p)
				if status == http.StatusBadRequest && p.Code == "invalid_request" {
					var fields []string
					for _, f := range p.Errors {
						fields = append(fields, f.Field)
					}
					if !containsStr(fields, tg.name[strings.Index(tg.name, " ")+1:]) && !containsStr(fields, "body") {
						t.Errorf("%s: 400 names %v; want the field", label, fields)
					}
				}
				if after := e.rowCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Errorf("%s: refused with %d but wrote rows: %v -> %v", label, status, before, after)
				}
			default:
				accepted++
				if strings.Contains(string(raw), "<script>") || strings.Contains(string(raw), "<img") {
					t.Errorf("%s: answer carries raw markup: %.200s", label, raw)
				}
				if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("%s: answer Content-Type %q; want application/json", label, ct)
				}
				var ans map[string]any
				if err := json.Unmarshal(raw, &ans); err != nil {
					t.Errorf("%s: answer is not JSON: %v", label, err)
					continue
				}
				get := reflects[tg.name]
				if tg.stored != nil {
					get = tg.stored
				}
				if get != nil {
					if got, ok := get(ans); !ok || got != asSent(s) {
						t.Errorf("%s: stored %.60q; want the value verbatim", label, got)
					}
				}
			}
		}
	}
	if accepted == 0 {
		t.Errorf("every injection was refused; want the free-text fields to store them verbatim")
	}
	for _, tb := range []string{"members", "ledger_entries", "ledger_transactions", "partners", "outbox"} {
		e.count(tb) // fails the test if the table is gone
	}
	// A member enrolled with markup in the name reads back verbatim, escaped.
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": "X-SCRIPT"},
		"profile": map[string]any{"given_name": "<script>alert(1)</script>", "family_name": "'; DROP TABLE members;--"}})
	status, raw, _ := e.raw("GET", "/v1/members/"+idStr(t, m["id"]), tok, nil)
	if status != 200 || strings.Contains(string(raw), "<script>") || !strings.Contains(string(raw), `\u003cscript\u003e`) ||
		!strings.Contains(string(raw), `'; DROP TABLE members;--`) {
		t.Errorf("member read back: %d %s; want the name JSON-escaped and verbatim", status, raw)
	}
	t.Logf("%d hostile requests, %d accepted and stored verbatim", n, accepted)
	e.audit()
}

// asSent is s as the server receives it in a JSON string: encoding/json
// turns each invalid UTF-8 byte into U+FFFD on the way.
func asSent(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
