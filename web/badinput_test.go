package web

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

// writeTables are the tables a refused request must leave untouched.
var writeTables = []string{"ledger_transactions", "ledger_entries", "ledger_holds", "ledger_idempotency", "members",
	"member_identifiers", "outbox", "catalog_orders", "exchange_quotes", "exchanges"}

// rowCounts is the row count of every table in writeTables.
func (e *hubEnv) rowCounts() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for _, tb := range writeTables {
		out[tb] = e.count(tb)
	}
	return out
}

// badInputFixture is a partner with a rich member (points, an open hold,
// a posted earn), a member token, a visible reward, an exchange
// programme and transfers enabled: every bad request below would have
// something to move if the hub let it through.
type badInputFixture struct {
	e                    *hubEnv
	tok, memberTok       string
	memberID             int64
	holdID, txID, reward string
	otherCard            string // a real card of another member
	programmeID          int64
	consent              *members.BurnConsent
}

func newBadInputFixture(t *testing.T) *badInputFixture {
	t.Helper()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Bad Input Hotels", e.clock.Now().AddDate(0, -1, 0))
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{
		"identifier": map[string]string{"type": "partner_ref", "value": "BI-1"}, "profile": map[string]string{"given_name": "Ana"}})
	mID := int64(m["id"].(float64))
	other := e.must(201, "POST", "/v1/members", tok, map[string]any{
		"identifier": map[string]string{"type": "partner_ref", "value": "BI-2"}, "profile": map[string]string{"given_name": "Bo"}})
	earn := e.must(201, "POST", "/v1/earn", tok, map[string]any{"member_id": mID,
		"amount": map[string]any{"minor": 5000000, "currency": "EUR"}, "external_ref": "folio-1"})
	mtok := signedInToken(t, e.mem, e.acc, mID)
	consent := members.NewBurnConsent(e.db, e.clock.Now, members.DefaultConsentPolicy)
	rc, err := consent.IssueCode(e.ctx, mID)
	if err != nil {
		t.Fatal(err)
	}
	hold := e.must(201, "POST", "/v1/burns", tok, map[string]any{"member_id": mID, "points": 100,
		"redemption_code": rc.Code, "capture": false})
	reward := e.must(201, "POST", "/v1/catalog/rewards", tok, map[string]any{"title": "Free night", "category": "hotel_night",
		"price_points": 1000, "value": map[string]any{"minor": 9000, "currency": "EUR"}, "fulfilment": "async"})
	rid := int64(reward["id"].(float64))
	visible := catalog.VisibilityVisible
	if _, err := e.cat.Moderate(e.ctx, "ops@test", rid, catalog.Moderation{Visibility: &visible}); err != nil {
		t.Fatal(err)
	}
	sim := httptest.NewServer(partnersim.New(partnersim.Config{APIKey: "k"}).Handler())
	t.Cleanup(sim.Close)
	var partnerID int64
	if err := e.db.Raw(`SELECT id FROM partners WHERE name = 'Bad Input Hotels'`).Scan(&partnerID).Error; err != nil {
		t.Fatal(err)
	}
	prog, err := e.xch.CreateProgramme(e.ctx, exchange.NewProgramme{PartnerID: partnerID, Code: "bipts", Name: "BI", Unit: "pts",
		Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MaxPoints: 90000, EndpointURL: sim.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	prg := programme.NewService(e.db, e.led, e.mem, consent, e.clock.Now)
	pol, err := prg.Policy(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	pol.TransfersEnabled, pol.TransferMin, pol.TransferPerTransfer, pol.TransferDaily, pol.TransferMonthly = true, 1, 10000, 20000, 40000
	if _, err := prg.SetPolicy(e.ctx, pol); err != nil {
		t.Fatal(err)
	}
	return &badInputFixture{e: e, tok: tok, memberTok: mtok, memberID: mID, holdID: idStr(t, hold["id"]),
		txID: idStr(t, earn["id"]), reward: fmt.Sprint(rid), otherCard: other["card_number"].(string), programmeID: prog.ID, consent: consent}
}

// code issues a fresh redemption code, so burn cases fail on their input
// and not on consent.
func (f *badInputFixture) code() string {
	f.e.t.Helper()
	rc, err := f.consent.IssueCode(f.e.ctx, f.memberID)
	if err != nil {
		f.e.t.Fatal(err)
	}
	return rc.Code
}

// badCase is one refused request: the answer must be 400 or 422
// problem+json with code, and (when field is set) errors[].field naming
// the offending field.
type badCase struct {
	name   string
	method string
	path   string
	member bool // member token instead of the partner's
	body   any  // string: sent as is
	status int  // 400 or 422
	code   string
	field  string
}

// TestBadInputIsRefusedAndWritesNothing sends malformed JSON, wrong types,
// negative/zero/huge amounts, unknown fields, invalid currencies and dates to
// every point-moving partner endpoint and the member endpoints that move
// points, and checks each is refused with a 400/422 problem naming the field,
// and that no row was written anywhere a request could write.
func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	f := newBadInputFixture(t)
	e := f.e
	mid := f.memberID
	const maxInt = "9223372036854775807"
	amount := func(minor any, cur any) map[string]any {
		return map[string]any{"member_id": mid, "amount": map[string]any{"minor": minor, "currency": cur}}
	}
	raw := func(format string, a ...any) string { return fmt.Sprintf(format, a...) }
	const inv = "invalid_request"
	cases := []badCase{
		// POST /v1/earn
		{"earn: malformed JSON", "POST", "/v1/earn", false, `{"member_id": 1,`, 400, inv, "body"},
		{"earn: not an object", "POST", "/v1/earn", false, `[1,2]`, 400, inv, "body"},
		{"earn: empty body", "POST", "/v1/earn", false, ``, 400, inv, "body"},
		{"earn: trailing data", "POST", "/v1/earn", false, raw(`{"member_id": %d} {}`, mid), 400, inv, "body"},
		{"earn: member_id a string", "POST", "/v1/earn", false, `{"member_id": "abc", "amount": {"minor": 100, "currency": "EUR"}}`, 400, inv, "member_id"},
		{"earn: member_id fractional", "POST", "/v1/earn", false, `{"member_id": 1.5, "amount": {"minor": 100, "currency": "EUR"}}`, 400, inv, "member_id"},
		{"earn: member_id zero", "POST", "/v1/earn", false, amountJSON(0, 100, "EUR"), 400, inv, "member_id"},
		{"earn: member_id negative", "POST", "/v1/earn", false, amountJSON(-7, 100, "EUR"), 400, inv, "member_id"},
		{"earn: amount a string", "POST", "/v1/earn", false, amount("100", "EUR"), 400, inv, "amount.minor"},
		{"earn: amount 1e30", "POST", "/v1/earn", false, raw(`{"member_id": %d, "amount": {"minor": 1e30, "currency": "EUR"}}`, mid), 400, inv, "amount.minor"},
		{"earn: amount past int64", "POST", "/v1/earn", false, raw(`{"member_id": %d, "amount": {"minor": 9223372036854775808, "currency": "EUR"}}`, mid), 400, inv, "amount.minor"},
		{"earn: amount max int64", "POST", "/v1/earn", false, raw(`{"member_id": %d, "amount": {"minor": %s, "currency": "EUR"}}`, mid, maxInt), 400, inv, "amount.minor"},
		{"earn: amount negative", "POST", "/v1/earn", false, amount(-100, "EUR"), 400, inv, "amount.minor"},
		{"earn: amount zero", "POST", "/v1/earn", false, amount(0, "EUR"), 400, inv, "amount.minor"},
		{"earn: amount earns nothing", "POST", "/v1/earn", false, amount(50, "EUR"), 422, "nothing_to_earn", ""},
		{"earn: currency EU", "POST", "/v1/earn", false, amount(100, "EU"), 400, inv, "amount.currency"},
		{"earn: currency eur", "POST", "/v1/earn", false, amount(100, "eur"), 400, inv, "amount.currency"},
		{"earn: currency XXX (no rule earns in it)", "POST", "/v1/earn", false, amount(100, "XXX"), 422, "currency_not_earned", ""},
		{"earn: currency a number", "POST", "/v1/earn", false, amount(100, 978), 400, inv, "amount.currency"},
		{"earn: unknown field", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "bonus_points": 100000}, 400, inv, "bonus_points"},
		{"earn: unknown nested field", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR", "points": 9}}, 400, inv, "amount.points"},
		{"earn: occurred_at not a date", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "occurred_at": "yesterday"}, 400, inv, "occurred_at"},
		{"earn: occurred_at impossible date", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "occurred_at": "2026-02-30T10:00:00Z"}, 400, inv, "occurred_at"},
		{"earn: occurred_at a number", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "occurred_at": 1700000000}, 400, inv, "occurred_at"},
		{"earn: negative line", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "lines": []any{map[string]any{"sku": "A", "amount": -5000}}, "amount": map[string]any{"minor": 100, "currency": "EUR"}}, 400, inv, "lines[0].amount"},
		{"earn: negative activity", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "activity": []any{map[string]any{"unit": "night", "quantity": -3}}}, 400, inv, "activity[0].quantity"},
		{"earn: promo_codes not a list", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "promo_codes": "SPRING"}, 400, inv, "promo_codes"},
		{"earn: external_ref an object", "POST", "/v1/earn", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "external_ref": map[string]any{}}, 400, inv, "external_ref"},
		// POST /v1/earn/quote
		{"quote: malformed JSON", "POST", "/v1/earn/quote", false, `{"amount":`, 400, inv, "body"},
		{"quote: amount negative", "POST", "/v1/earn/quote", false, amount(-1, "EUR"), 400, inv, "amount.minor"},
		{"quote: amount 1e30", "POST", "/v1/earn/quote", false, raw(`{"member_id": %d, "amount": {"minor": 1e30, "currency": "EUR"}}`, mid), 400, inv, "amount.minor"},
		{"quote: currency eur", "POST", "/v1/earn/quote", false, amount(100, "eur"), 400, inv, "amount.currency"},
		{"quote: unknown field", "POST", "/v1/earn/quote", false, map[string]any{"member_id": mid, "amount": map[string]any{"minor": 100, "currency": "EUR"}, "x": 1}, 400, inv, "x"},
		// POST /v1/earn/batch
		{"batch: malformed JSON", "POST", "/v1/earn/batch", false, `{"items": [`, 400, inv, "body"},
		{"batch: items not a list", "POST", "/v1/earn/batch", false, `{"items": {}}`, 400, inv, "items"},
		{"batch: no items", "POST", "/v1/earn/batch", false, `{"items": []}`, 400, inv, "items"},
		{"batch: too many items", "POST", "/v1/earn/batch", false, `{"items": [` + strings.TrimSuffix(strings.Repeat(`{},`, MaxBatch+1), ",") + `]}`, 400, inv, "items"},
		{"batch: unknown field", "POST", "/v1/earn/batch", false, `{"items": [{}], "dry_run": true}`, 400, inv, "dry_run"},
		// POST /v1/burns
		{"burn: malformed JSON", "POST", "/v1/burns", false, `{"points": }`, 400, inv, "body"},
		{"burn: points a string", "POST", "/v1/burns", false, func() any { return map[string]any{"member_id": mid, "points": "100", "redemption_code": f.code()} }, 400, inv, "points"},
		{"burn: points zero", "POST", "/v1/burns", false, func() any { return map[string]any{"member_id": mid, "points": 0, "redemption_code": f.code()} }, 400, inv, "points"},
		{"burn: points negative", "POST", "/v1/burns", false, func() any { return map[string]any{"member_id": mid, "points": -500, "redemption_code": f.code()} }, 400, inv, "points"},
		{"burn: points 1e30", "POST", "/v1/burns", false, func() any {
			return raw(`{"member_id": %d, "points": 1e30, "redemption_code": %q}`, mid, f.code())
		}, 400, inv, "points"},
		{"burn: points max int64", "POST", "/v1/burns", false, func() any {
			return raw(`{"member_id": %d, "points": %s, "redemption_code": %q}`, mid, maxInt, f.code())
		}, 422, "insufficient_points", ""},
		{"burn: capture not a bool", "POST", "/v1/burns", false, func() any {
			return map[string]any{"member_id": mid, "points": 10, "redemption_code": f.code(), "capture": "yes"}
		}, 400, inv, "capture"},
		{"burn: expires_at not a date", "POST", "/v1/burns", false, func() any {
			return map[string]any{"member_id": mid, "points": 10, "redemption_code": f.code(), "capture": false, "expires_at": "31/12/2030"}
		}, 400, inv, "expires_at"},
		{"burn: unknown field", "POST", "/v1/burns", false, func() any {
			return map[string]any{"member_id": mid, "points": 10, "redemption_code": f.code(), "force": true}
		}, 400, inv, "force"},
		{"burn: member_id zero", "POST", "/v1/burns", false, map[string]any{"member_id": 0, "points": 10, "redemption_code": "123456"}, 400, inv, "member_id"},
		// POST /v1/burns/{id}/capture
		{"capture: malformed JSON", "POST", "/v1/burns/" + f.holdID + "/capture", false, `{"points"`, 400, inv, "body"},
		{"capture: points negative", "POST", "/v1/burns/" + f.holdID + "/capture", false, map[string]any{"points": -1}, 400, inv, "points"},
		{"capture: points a string", "POST", "/v1/burns/" + f.holdID + "/capture", false, map[string]any{"points": "all"}, 400, inv, "points"},
		{"capture: points 1e30", "POST", "/v1/burns/" + f.holdID + "/capture", false, `{"points": 1e30}`, 400, inv, "points"},
		{"capture: points over the hold", "POST", "/v1/burns/" + f.holdID + "/capture", false, raw(`{"points": %s}`, maxInt), 400, inv, "points"},
		{"capture: unknown field", "POST", "/v1/burns/" + f.holdID + "/capture", false, map[string]any{"points": 10, "amount": 1}, 400, inv, "amount"},
		// POST /v1/transactions/{id}/reversals
		{"reversal: malformed JSON", "POST", "/v1/transactions/" + f.txID + "/reversals", false, `{`, 400, inv, "body"},
		{"reversal: points negative", "POST", "/v1/transactions/" + f.txID + "/reversals", false, map[string]any{"points": -5, "reason": "x"}, 400, inv, "points"},
		{"reversal: points 1e30", "POST", "/v1/transactions/" + f.txID + "/reversals", false, `{"points": 1e30, "reason": "x"}`, 400, inv, "points"},
		{"reversal: points max int64", "POST", "/v1/transactions/" + f.txID + "/reversals", false, raw(`{"points": %s, "reason": "x"}`, maxInt), 422, "reversal_exceeds_original", ""},
		{"reversal: reason a number", "POST", "/v1/transactions/" + f.txID + "/reversals", false, map[string]any{"points": 5, "reason": 42}, 400, inv, "reason"},
		{"reversal: unknown field", "POST", "/v1/transactions/" + f.txID + "/reversals", false, map[string]any{"points": 5, "reason": "x", "member_id": mid}, 400, inv, "member_id"},
		// POST /v1/members
		{"enrol: malformed JSON", "POST", "/v1/members", false, `{"identifier": {"type": "email"`, 400, inv, "body"},
		{"enrol: no identifier", "POST", "/v1/members", false, map[string]any{"profile": map[string]any{"given_name": "X"}}, 400, inv, "identifier"},
		{"enrol: identifier a string", "POST", "/v1/members", false, map[string]any{"identifier": "email:a@example.com"}, 400, inv, "identifier"},
		{"enrol: unknown identifier type", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "passport", "value": "X1"}}, 400, inv, "identifier.type"},
		{"enrol: bad email", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "email", "value": "not-an-email"}}, 400, inv, "identifier.value"},
		{"enrol: bad card", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "card", "value": "1234"}}, 400, inv, "identifier.value"},
		{"enrol: bad birth date", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": "BI-9"}, "profile": map[string]any{"birth_date": "2001-13-45"}}, 400, inv, "profile.birth_date"},
		{"enrol: bad locale", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": "BI-9"}, "profile": map[string]any{"locale": "english please"}}, 400, inv, "profile.locale"},
		{"enrol: unknown profile field", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": "BI-9"}, "profile": map[string]any{"tier": "gold"}}, 400, inv, "profile.tier"},
		{"enrol: consent not a bool", "POST", "/v1/members", false, map[string]any{"identifier": map[string]any{"type": "partner_ref", "value": "BI-9"}, "marketing_consent": "yes"}, 400, inv, "marketing_consent"},
		// POST /v1/me/transfers
		{"transfer: malformed JSON", "POST", "/v1/me/transfers", true, `{"to_card": `, 400, inv, "body"},
		{"transfer: points zero", "POST", "/v1/me/transfers", true, map[string]any{"to_card": "7301000000000003", "points": 0}, 400, inv, "points"},
		{"transfer: points negative", "POST", "/v1/me/transfers", true, map[string]any{"to_card": "7301000000000003", "points": -100}, 400, inv, "points"},
		{"transfer: points 1e30", "POST", "/v1/me/transfers", true, `{"to_card": "7301000000000003", "points": 1e30}`, 400, inv, "points"},
		{"transfer: points max int64", "POST", "/v1/me/transfers", true, raw(`{"to_card": %q, "points": %s}`, f.otherCard, maxInt), 422, "", ""},
		{"transfer: bad card", "POST", "/v1/me/transfers", true, map[string]any{"to_card": "abc", "points": 10}, 400, inv, "to_card"},
		{"transfer: card a number", "POST", "/v1/me/transfers", true, map[string]any{"to_card": 7301000000000003, "points": 10}, 400, inv, "to_card"},
		{"transfer: unknown field", "POST", "/v1/me/transfers", true, map[string]any{"to_card": "7301000000000003", "points": 10, "fee": 0}, 400, inv, "fee"},
		// POST /v1/me/orders
		{"order: malformed JSON", "POST", "/v1/me/orders", true, `{"reward_id": 1`, 400, inv, "body"},
		{"order: reward_id a string", "POST", "/v1/me/orders", true, map[string]any{"reward_id": "night"}, 400, inv, "reward_id"},
		{"order: reward_id 1e30", "POST", "/v1/me/orders", true, `{"reward_id": 1e30}`, 400, inv, "reward_id"},
		{"order: reward_id negative", "POST", "/v1/me/orders", true, map[string]any{"reward_id": -1}, 400, inv, "reward_id"},
		{"order: bad service date", "POST", "/v1/me/orders", true, map[string]any{"reward_id": json.Number(f.reward), "service_date": "tomorrow"}, 400, inv, "service_date"},
		{"order: impossible service date", "POST", "/v1/me/orders", true, map[string]any{"reward_id": json.Number(f.reward), "service_date": "2026-02-30"}, 400, inv, "service_date"},
		{"order: unknown field", "POST", "/v1/me/orders", true, map[string]any{"reward_id": json.Number(f.reward), "price_points": 1}, 400, inv, "price_points"},
		// POST /v1/me/exchange-quotes
		{"exchange quote: malformed JSON", "POST", "/v1/me/exchange-quotes", true, `{"points": 1000`, 400, inv, "body"},
		{"exchange quote: points zero", "POST", "/v1/me/exchange-quotes", true, map[string]any{"programme_id": f.programmeID, "points": 0}, 400, inv, "points"},
		{"exchange quote: points negative", "POST", "/v1/me/exchange-quotes", true, map[string]any{"programme_id": f.programmeID, "points": -1000}, 400, inv, "points"},
		{"exchange quote: points 1e30", "POST", "/v1/me/exchange-quotes", true, raw(`{"programme_id": %d, "points": 1e30}`, f.programmeID), 400, inv, "points"},
		{"exchange quote: points max int64", "POST", "/v1/me/exchange-quotes", true, raw(`{"programme_id": %d, "points": %s}`, f.programmeID, maxInt), 400, inv, "points"},
		{"exchange quote: programme a string", "POST", "/v1/me/exchange-quotes", true, map[string]any{"programme_id": "bipts", "points": 1000}, 400, inv, "programme_id"},
		{"exchange quote: unknown field", "POST", "/v1/me/exchange-quotes", true, map[string]any{"programme_id": f.programmeID, "points": 1000, "rate": "1"}, 400, inv, "rate"},
	}
	before := e.rowCounts()
	balance, err := e.led.Balance(e.ctx, mid)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		body := c.body
		if fn, ok := body.(func() any); ok {
			body = fn()
		}
		tok := f.tok
		if c.member {
			tok = f.memberTok
		}
		status, out, hdr := e.raw(c.method, c.path, tok, body)
		var p Problem
		_ = json.Unmarshal(out, &p)
		switch {
		case status != c.status || (c.code != "" && p.Code != c.code):
			t.Errorf("%s: %d %s; want %d %s", c.name, status, out, c.status, c.code)
			continue
		case !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json"):
			t.Errorf("%s: Content-Type %q; want application/problem+json", c.name, hdr.Get("Content-Type"))
		}
		if c.field != "" {
			var fields []string
			for _, fe := range p.Errors {
				fields = append(fields, fe.Field)
			}
			if !containsStr(fields, c.field) {
				t.Errorf("%s: errors name %v; want field %q (answer %s)", c.name, fields, c.field, out)
			}
		}
		if after := e.rowCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s: a refused request wrote rows: before %v, after %v", c.name, before, after)
			before = after
		}
	}
	if b, _ := e.led.Balance(e.ctx, mid); b != balance {
		t.Errorf("member balance moved from %+v to %+v on refused requests", balance, b)
	}
	e.audit()
}

func amountJSON(memberID int64, minor int64, currency string) string {
	return fmt.Sprintf(`{"member_id": %d, "amount": {"minor": %d, "currency": %q}}`, memberID, minor, currency)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
