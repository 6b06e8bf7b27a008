package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

// stormDeadline bounds every stormAnswer of a consent storm: a request that has
// not been answered by then counts as hung.
const stormDeadline = 10 * time.Second

// stormAnswer is what one request of a storm got back.
type stormAnswer struct {
	status int
	code   string
	err    error
}

// post sends body to path with tok and a fresh Idempotency-Key, giving up
// when ctx ends.
func (e *hubEnv) post(ctx context.Context, path, tok string, body any) stormAnswer {
	j, err := json.Marshal(body)
	if err != nil {
		return stormAnswer{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+path, bytes.NewReader(j))
	if err != nil {
		return stormAnswer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("storm-%d", e.keys.Add(1)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return stormAnswer{err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return stormAnswer{status: res.StatusCode, err: err}
	}
	var p Problem
	_ = json.Unmarshal(raw, &p)
	return stormAnswer{status: res.StatusCode, code: p.Code}
}

// setTestPIN gives the member pin, hashed at bcrypt.MinCost so that the
// storm measures serialisation rather than bcrypt's CPU on a shared machine.
func (e *hubEnv) setTestPIN(member int64, pin string) {
	e.t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pin), bcrypt.MinCost)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.Exec(`INSERT INTO member_pins (member_id, pin_hash, updated_at) VALUES (?, ?, now())`, member, string(hash)).Error; err != nil {
		e.t.Fatal(err)
	}
}

// consentStorm sends wrong PIN burns and one right PIN burn for member at
// once (and extra, unrelated requests alongside), and checks what the
// partner API promises: every request is answered before its deadline;
// exactly MaxFailures wrong PINs are consent_invalid and the rest
// consent_locked; the right PIN either burned (it came before the lockout)
// or was consent_locked; the failures are recorded; the right PIN is refused
// afterwards; nothing leaked from the pool; the ledger audits clean.
func consentStorm(t *testing.T, e *hubEnv, tok string, member int64, wrong int, extra func(ctx context.Context) stormAnswer) {
	t.Helper()
	const right = "4821"
	e.setTestPIN(member, right)
	burn := func(pin string) map[string]any {
		return map[string]any{"member_id": member, "points": 10, "pin": pin}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stormDeadline)
	defer cancel()
	start := make(chan struct{})
	var wg sync.WaitGroup
	wrongAnswers := make([]stormAnswer, wrong)
	var rightAnswer stormAnswer
	extraAnswers := make([]stormAnswer, wrong)
	began := time.Now()
	for i := 0; i <= wrong; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch {
			case i == wrong/2:
				rightAnswer = e.post(ctx, "/v1/burns", tok, burn(right))
			case i < wrong/2:
				wrongAnswers[i] = e.post(ctx, "/v1/burns", tok, burn(fmt.Sprintf("%04d", 1000+i)))
			default:
				wrongAnswers[i-1] = e.post(ctx, "/v1/burns", tok, burn(fmt.Sprintf("%04d", 1000+i)))
			}
		}()
		if extra != nil && i < wrong {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				extraAnswers[i] = extra(ctx)
			}()
		}
	}
	close(start)
	wg.Wait()
	t.Logf("%d wrong PINs, one right PIN: all answered in %v", wrong, time.Since(began).Round(time.Millisecond))

	counts := map[string]int{}
	for i, a := range wrongAnswers {
		switch {
		case a.err != nil:
			t.Errorf("wrong PIN %d: no stormAnswer within %v: %v", i, stormDeadline, a.err)
		case a.status == http.StatusForbidden && a.code == "consent_invalid",
			a.status == http.StatusTooManyRequests && a.code == "consent_locked":
			counts[a.code]++
		default:
			t.Errorf("wrong PIN %d: %d %s; want 403 consent_invalid or 429 consent_locked", i, a.status, a.code)
		}
	}
	max := members.DefaultConsentPolicy.MaxFailures
	if counts["consent_invalid"] != max || counts["consent_locked"] != wrong-max {
		t.Errorf("wrong PINs answered %v; want exactly %d consent_invalid and the other %d consent_locked", counts, max, wrong-max)
	}
	burned := ledger.Points(0)
	switch {
	case rightAnswer.err != nil:
		t.Errorf("right PIN: no stormAnswer within %v: %v", stormDeadline, rightAnswer.err)
	case rightAnswer.status == http.StatusCreated:
		burned = 10
	case rightAnswer.status == http.StatusTooManyRequests && rightAnswer.code == "consent_locked":
	default:
		t.Errorf("right PIN: %d %s; want 201 (before the lockout) or 429 consent_locked", rightAnswer.status, rightAnswer.code)
	}
	for i, a := range extraAnswers {
		if extra != nil && i < wrong && (a.err != nil || a.status >= 300) {
			t.Errorf("unrelated request %d during the storm: %d %s %v; want a 2xx within %v", i, a.status, a.code, a.err, stormDeadline)
		}
	}
	var failures int64
	if err := e.db.Raw(`SELECT count(*) FROM member_consent_failures WHERE member_id = ?`, member).Scan(&failures).Error; err != nil {
		t.Fatal(err)
	}
	if failures != int64(max) {
		t.Errorf("member_consent_failures holds %d rows for the member; want %d", failures, max)
	}

	// Locked: the right PIN is refused now, whatever happened in the storm.
	after, cancelAfter := context.WithTimeout(context.Background(), stormDeadline)
	defer cancelAfter()
	if a := e.post(after, "/v1/burns", tok, burn(right)); a.status != http.StatusTooManyRequests || a.code != "consent_locked" {
		t.Errorf("right PIN after the storm: %d %s %v; want 429 consent_locked", a.status, a.code, a.err)
	}
	if b, err := e.led.Balance(e.ctx, member); err != nil || b.Total != 50000-burned || b.Held != 0 {
		t.Errorf("balance after the storm %+v %v; want %d total, none held", b, err, 50000-burned)
	}
	// The pool is healthy: another request goes through and no connection
	// is left in use.
	other := e.abuseMember(tok, fmt.Sprintf("STORM-AFTER-%d", member))
	if b, err := e.led.Balance(e.ctx, other); err != nil || b.Total != 50000 {
		t.Errorf("a member enrolled and credited after the storm: %+v %v", b, err)
	}
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if st := sqlDB.Stats(); st.InUse != 0 {
		t.Errorf("after the storm %d pool connections are still in use (%+v); want none", st.InUse, st)
	}
	e.audit()
}

// TestConcurrentWrongPINsLockWithoutExhaustingThePool sends 50 wrong PINs and
// the right one for a member at the same moment through POST /v1/burns:
// every stormAnswer comes back in time, exactly 5 wrong PINs are consent_invalid
// and the other 45 consent_locked, the right PIN cannot slip in after the
// fifth failure, and the pool is intact afterwards.
func TestConcurrentWrongPINsLockWithoutExhaustingThePool(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Storm Hotels", e.clock.Now().AddDate(0, -1, 0))
	mid := e.abuseMember(tok, "STORM-1")
	consentStorm(t, e, tok, mid, 50, nil)
}

// TestConsentStormOnASmallPool is the same storm on a pool of 3 connections,
// fewer than the requests waiting for the member, with an earn for another
// member alongside each burn: nothing deadlocks and every request is
// answered in time.
func TestConsentStormOnASmallPool(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Small Pool Hotels", e.clock.Now().AddDate(0, -1, 0))
	mid := e.abuseMember(tok, "SMALL-1")
	other := e.abuseMember(tok, "SMALL-2")
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(3)
	sqlDB.SetMaxIdleConns(3)
	consentStorm(t, e, tok, mid, 50, func(ctx context.Context) stormAnswer {
		return e.post(ctx, "/v1/earn", tok, map[string]any{"member_id": other,
			"amount": map[string]any{"minor": 100, "currency": "EUR"}})
	})
}

// TestMalformedConsentIsBadInput sends a redemption code and a PIN that
// cannot be anyone's (the OpenAPI gives their formats) to POST /v1/burns:
// each is a 400 problem naming its field, writes nothing and does not count
// towards the lockout (five well-formed wrong guesses afterwards are still
// each consent_invalid).
func TestMalformedConsentIsBadInput(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Format Hotels", e.clock.Now().AddDate(0, -1, 0))
	mid := e.abuseMember(tok, "FMT-1")
	e.setTestPIN(mid, "4821")
	before := e.rowCounts()
	for _, c := range []struct{ field, value string }{
		{"redemption_code", "12ab"}, {"redemption_code", "12345"}, {"redemption_code", "1234567"}, {"redemption_code", " 123456"},
		{"pin", "12a4"}, {"pin", "123"}, {"pin", "1234567"}, {"pin", "-123"},
	} {
		status, raw, hdr := e.raw("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 10, c.field: c.value})
		var p Problem
		_ = json.Unmarshal(raw, &p)
		named := len(p.Errors) == 1 && p.Errors[0].Field == c.field
		if status != http.StatusBadRequest || p.Code != "invalid_request" || !named ||
			hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %q: %d %s %s; want 400 application/problem+json invalid_request naming %s", c.field, c.value, status,
				hdr.Get("Content-Type"), raw, c.field)
		}
	}
	if after := e.rowCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("malformed consent wrote rows: before %v, after %v", before, after)
	}
	if n := e.count("member_consent_failures"); n != 0 {
		t.Errorf("malformed consent recorded %d failures; want none", n)
	}
	for i := 0; i < members.DefaultConsentPolicy.MaxFailures; i++ {
		code, out := e.call("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 10, "pin": fmt.Sprintf("%04d", i)})
		if code != http.StatusForbidden || out["code"] != "consent_invalid" {
			t.Fatalf("well-formed wrong PIN %d after the malformed ones: %d %v; want 403 consent_invalid", i+1, code, out)
		}
	}
	if code, out := e.call("POST", "/v1/burns", tok, map[string]any{"member_id": mid, "points": 10, "pin": "4821"}); code != http.StatusTooManyRequests {
		t.Fatalf("right PIN after five wrong ones: %d %v; want 429", code, out)
	}
}

// TestPointRequestsOnOneConnection drives an earn under a daily cap, a wrong
// and a right PIN burn and a replay through the API with a pool of one
// connection: each request holds one connection at a time and is answered
// in time (none waits for a second connection beside its transaction).
func TestPointRequestsOnOneConnection(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	p, tok := e.partner("One Conn Hotels", e.clock.Now().AddDate(0, -1, 0))
	if _, err := e.reg.PublishContract(e.ctx, p.ID, partners.NewContract{EffectiveFrom: e.clock.Now().Add(time.Minute), Earn: true, Burn: true,
		IssuePrice: decimal.RequireFromString("0.008"), RedemptionRate: decimal.RequireFromString("0.005"),
		Billing: partners.BillingPostpaid, CapPerMemberDay: 1000}, "staff:test"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Minute)
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "ONE-1"}})
	mid := int64(m["id"].(float64))
	e.setTestPIN(mid, "4821")
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	for _, c := range []struct {
		name, path string
		body       map[string]any
		status     int
	}{
		{"earn under the daily cap", "/v1/earn", map[string]any{"member_id": mid, "amount": map[string]any{"minor": 50000, "currency": "EUR"},
			"occurred_at": e.clock.Now()}, http.StatusCreated},
		{"burn with a wrong PIN", "/v1/burns", map[string]any{"member_id": mid, "points": 10, "pin": "0000"}, http.StatusForbidden},
		{"burn with the right PIN", "/v1/burns", map[string]any{"member_id": mid, "points": 10, "pin": "4821"}, http.StatusCreated},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), stormDeadline)
		if a := e.post(ctx, c.path, tok, c.body); a.err != nil || a.status != c.status {
			t.Errorf("%s on a one-connection pool: %d %s %v; want %d in time", c.name, a.status, a.code, a.err, c.status)
		}
		cancel()
	}
	if b, err := e.led.Balance(e.ctx, mid); err != nil || b.Total != 490 {
		t.Errorf("balance %+v %v; want 500 earned (the cap allows 1000) less 10 burned", b, err)
	}
	e.audit()
}
