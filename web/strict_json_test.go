package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// allCounts is the row count of every table of the database, for checks
// that a refused request wrote nothing anywhere.
func (e *hubEnv) allCounts() string {
	e.t.Helper()
	var tables []string
	if err := e.db.Raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`).Scan(&tables).Error; err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&b, "%s=%d ", tb, e.count(tb))
	}
	return b.String()
}

// refusal is one request the hub must refuse: status, problem code and the
// field errors[] must name.
type refusal struct {
	name   string
	method string
	path   string
	tok    string
	body   any // a string or []byte is sent as is
	header []string
	status int
	code   string
	field  string
}

// expectRefusals sends each case and checks its answer is problem+json with
// the status, code and field, and that the member's balance and every
// table the hub writes are unchanged.
func (f *badInputFixture) expectRefusals(t *testing.T, cases []refusal) {
	t.Helper()
	e := f.e
	balance, err := e.led.Balance(e.ctx, f.memberID)
	if err != nil {
		t.Fatal(err)
	}
	before := e.allCounts()
	for _, c := range cases {
		status, out, hdr := e.raw(c.method, c.path, c.tok, c.body, c.header...)
		var p Problem
		_ = json.Unmarshal(out, &p)
		var fields []string
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field)
		}
		switch {
		case status != c.status || p.Code != c.code:
			t.Errorf("%s: %d %s; want %d %s naming %q", c.name, status, out, c.status, c.code, c.field)
		case !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json"):
			t.Errorf("%s: Content-Type %q; want application/problem+json", c.name, hdr.Get("Content-Type"))
		case !containsStr(fields, c.field):
			t.Errorf("%s: errors name %v; want %q (%s)", c.name, fields, c.field, out)
		}
		if after := e.allCounts(); after != before {
			t.Errorf("%s: a refused request wrote rows:\n%s\n%s", c.name, before, after)
			before = after
		}
	}
	if b, _ := e.led.Balance(e.ctx, f.memberID); b != balance {
		t.Errorf("member balance moved from %+v to %+v on refused requests", balance, b)
	}
	e.audit()
}

// TestDuplicateKeysAreRefused sends JSON objects that give a key twice (at
// the top, in nested objects, in array elements such as batch items) or
// give two spellings encoding/json folds onto one field: encoding/json
// would keep the last, so {"points":999999,...,"points":10} burnt 10. Each
// is a 400 naming the duplicated field by its path, and nothing is written
// (not even the batch's other, valid items).
func TestDuplicateKeysAreRefused(t *testing.T) {
	t.Parallel()
	f := newBadInputFixture(t)
	mid := f.memberID
	earn := func(extra string) string {
		return fmt.Sprintf(`{"member_id":%d,"amount":{"minor":1000,"currency":"EUR"}%s}`, mid, extra)
	}
	item := func(k, extra string) string {
		return fmt.Sprintf(`{"idempotency_key":%q,"member_id":%d,"amount":{"minor":1000,"currency":"EUR"}%s}`, k, mid, extra)
	}
	const inv = "invalid_request"
	cases := []refusal{
		{name: "burn: points twice", method: "POST", path: "/v1/burns", tok: f.tok, body: func() string {
			return fmt.Sprintf(`{"points":999999,"member_id":%d,"points":10,"redemption_code":%q}`, mid, f.code())
		}(), status: 400, code: inv, field: "points"},
		{name: "earn: member_id twice", method: "POST", path: "/v1/earn", tok: f.tok, body: earn(fmt.Sprintf(`,"member_id":%d`, mid)), status: 400, code: inv, field: "member_id"},
		{name: "earn: amount.minor twice", method: "POST", path: "/v1/earn", tok: f.tok,
			body: fmt.Sprintf(`{"member_id":%d,"amount":{"minor":1,"currency":"EUR","minor":100000}}`, mid), status: 400, code: inv, field: "amount.minor"},
		{name: "earn: lines[1].amount twice", method: "POST", path: "/v1/earn", tok: f.tok,
			body: earn(`,"lines":[{"sku":"a","amount":500},{"sku":"b","amount":1,"amount":500}]`), status: 400, code: inv, field: "lines[1].amount"},
		{name: "earn: a key spelt twice in two cases", method: "POST", path: "/v1/earn", tok: f.tok, body: earn(`,"External_Ref":"x","external_ref":"y"`), status: 400, code: inv, field: "external_ref"},
		{name: "earn: the same key escaped", method: "POST", path: "/v1/earn", tok: f.tok, body: earn(`,"external_ref":"x","external\u005fref":"y"`), status: 400, code: inv, field: "external_ref"},
		{name: "quote: amount twice", method: "POST", path: "/v1/earn/quote", tok: f.tok, body: earn(`,"amount":{"minor":1,"currency":"EUR"}`), status: 400, code: inv, field: "amount"},
		{name: "batch: items[3].amount.minor twice", method: "POST", path: "/v1/earn/batch", tok: f.tok,
			body: `{"items":[` + item("d1", "") + "," + item("d2", "") + "," + item("d3", "") + "," +
				fmt.Sprintf(`{"idempotency_key":"d4","member_id":%d,"amount":{"minor":1,"currency":"EUR","minor":900000}}`, mid) + `]}`,
			status: 400, code: inv, field: "items[3].amount.minor"},
		{name: "batch: items[1].idempotency_key twice", method: "POST", path: "/v1/earn/batch", tok: f.tok,
			body: `{"items":[` + item("d5", "") + "," + item("d6", `,"idempotency_key":"d7"`) + `]}`, status: 400, code: inv, field: "items[1].idempotency_key"},
		{name: "batch: items twice", method: "POST", path: "/v1/earn/batch", tok: f.tok,
			body: `{"items":[` + item("d8", "") + `],"items":[` + item("d9", "") + `]}`, status: 400, code: inv, field: "items"},
		{name: "capture: points twice", method: "POST", path: "/v1/burns/" + f.holdID + "/capture", tok: f.tok, body: `{"points":10,"points":100}`, status: 400, code: inv, field: "points"},
		{name: "reversal: points twice", method: "POST", path: "/v1/transactions/" + f.txID + "/reversals", tok: f.tok, body: `{"points":1,"reason":"r","points":100}`, status: 400, code: inv, field: "points"},
		{name: "enrol: profile.given_name twice", method: "POST", path: "/v1/members", tok: f.tok,
			body: `{"identifier":{"type":"partner_ref","value":"DUP-1"},"profile":{"given_name":"A","given_name":"B"}}`, status: 400, code: inv, field: "profile.given_name"},
		{name: "transfer: points twice", method: "POST", path: "/v1/me/transfers", tok: f.memberTok,
			body: fmt.Sprintf(`{"to_card":%q,"points":1,"points":5000}`, f.otherCard), status: 400, code: inv, field: "points"},
		{name: "order: reward_id twice", method: "POST", path: "/v1/me/orders", tok: f.memberTok,
			body: fmt.Sprintf(`{"reward_id":%s,"reward_id":%s}`, f.reward, f.reward), status: 400, code: inv, field: "reward_id"},
		{name: "member PIN: pin twice", method: "PUT", path: "/v1/me/pin", tok: f.memberTok, body: `{"pin":"1234","pin":"9876"}`, status: 400, code: inv, field: "pin"},
	}
	f.expectRefusals(t, cases)
}

// TestInvalidUTF8AndLoneSurrogatesAreRefused sends string fields holding
// bytes that are not UTF-8 (ff fe, an overlong encoding, a surrogate
// encoded in UTF-8) and escaped UTF-16 surrogates that are not a pair:
// encoding/json would store each as U+FFFD and answer 201. Each is a 400
// naming the field, and nothing is written. A real pair and an escaped
// backslash that only looks like an escape are accepted and stored as
// sent.
func TestInvalidUTF8AndLoneSurrogatesAreRefused(t *testing.T) {
	t.Parallel()
	f := newBadInputFixture(t)
	mid := f.memberID
	earn := func(ref string) string {
		return fmt.Sprintf(`{"member_id":%d,"amount":{"minor":1000,"currency":"EUR"},"external_ref":"%s"}`, mid, ref)
	}
	const inv = "invalid_request"
	var cases []refusal
	for _, bad := range []struct{ name, raw string }{
		{"bytes ff fe", "ref-\xff\xfe"},
		{"an overlong slash", "ref-\xc0\xaf"},
		{"a surrogate encoded in UTF-8", "ref-\xed\xa0\x80"},
		{"a truncated sequence", "ref-\xe2\x82"},
		{"a lone high surrogate", `ref-\ud800`},
		{"a lone high surrogate at the end", `\uD83D`},
		{"a lone low surrogate", `\udc00-ref`},
		{"a high surrogate before a letter", `\ud800\u0041`},
		{"two high surrogates", `\ud83d\ud83d`},
		{"a reversed pair", `\ude00\ud83d`},
	} {
		cases = append(cases, refusal{name: "earn external_ref: " + bad.name, method: "POST", path: "/v1/earn", tok: f.tok,
			body: earn(bad.raw), status: 400, code: inv, field: "external_ref"})
	}
	cases = append(cases,
		refusal{name: "enrol profile.given_name: bytes ff fe", method: "POST", path: "/v1/members", tok: f.tok,
			body: "{\"identifier\":{\"type\":\"partner_ref\",\"value\":\"U8-1\"},\"profile\":{\"given_name\":\"Ana\xff\xfe\"}}", status: 400, code: inv, field: "profile.given_name"},
		refusal{name: "enrol identifier.value: a lone surrogate", method: "POST", path: "/v1/members", tok: f.tok,
			body: `{"identifier":{"type":"partner_ref","value":"U8-\udfff"}}`, status: 400, code: inv, field: "identifier.value"},
		refusal{name: "earn promo_codes[1]: bytes ff fe", method: "POST", path: "/v1/earn", tok: f.tok,
			body: fmt.Sprintf("{\"member_id\":%d,\"amount\":{\"minor\":1000,\"currency\":\"EUR\"},\"promo_codes\":[\"A\",\"B\xff\"]}", mid), status: 400, code: inv, field: "promo_codes[1]"},
		refusal{name: "batch items[2].external_ref: a lone surrogate", method: "POST", path: "/v1/earn/batch", tok: f.tok,
			body: fmt.Sprintf(`{"items":[{"idempotency_key":"u1","member_id":%d,"amount":{"minor":1000,"currency":"EUR"}},`+
				`{"idempotency_key":"u2","member_id":%d,"amount":{"minor":1000,"currency":"EUR"}},`+
				`{"idempotency_key":"u3","member_id":%d,"amount":{"minor":1000,"currency":"EUR"},"external_ref":"\ud800"}]}`, mid, mid, mid),
			status: 400, code: inv, field: "items[2].external_ref"},
		refusal{name: "burn redemption_code: bytes ff fe", method: "POST", path: "/v1/burns", tok: f.tok,
			body: fmt.Sprintf("{\"member_id\":%d,\"points\":10,\"redemption_code\":\"12\xff\xfe56\"}", mid), status: 400, code: inv, field: "redemption_code"},
		refusal{name: "reversal reason: a lone surrogate", method: "POST", path: "/v1/transactions/" + f.txID + "/reversals", tok: f.tok,
			body: `{"points":1,"reason":"returned \ud800"}`, status: 400, code: inv, field: "reason"},
		refusal{name: "a key that is not UTF-8", method: "POST", path: "/v1/earn", tok: f.tok,
			body: fmt.Sprintf("{\"member_id\":%d,\"amount\":{\"minor\":1000,\"currency\":\"EUR\",\"\xff\":1}}", mid), status: 400, code: inv, field: "amount"},
		refusal{name: "a NUL in a key", method: "POST", path: "/v1/earn", tok: f.tok,
			body: fmt.Sprintf(`{"member_id":%d,"amount":{"minor":1000,"currency":"EUR"},"a\u0000":1}`, mid), status: 400, code: inv, field: "body"},
	)
	f.expectRefusals(t, cases)

	// What is well-formed is stored as sent.
	for _, ok := range []struct{ raw, want string }{
		{`pair-\ud83d\ude00`, "pair-\U0001F600"},
		{`esc-\\ud800`, `esc-\ud800`},
		{"utf8-\u00e9\u4e2d\U0001F600", "utf8-\u00e9\u4e2d\U0001F600"},
	} {
		out := f.e.must(201, "POST", "/v1/earn", f.tok, earn(ok.raw))
		if out["external_ref"] != ok.want {
			t.Errorf("earn with external_ref %s stored %q; want %q", ok.raw, out["external_ref"], ok.want)
		}
	}
}

// sendWithContentType posts body with exactly the given Content-Type
// header (none when omit), a bearer token and a fresh Idempotency-Key.
func (e *hubEnv) sendWithContentType(method, path, tok, body, ct string, omit bool) (int, []byte, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if !omit {
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Idempotency-Key", fmt.Sprintf("ct-%d", e.keys.Add(1)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out, res.Header
}

// TestJSONBodiesNeedAJSONContentType sends valid JSON bodies to earn, burn,
// transfer and order with no Content-Type or another one (text/plain, a
// form, JSON in another charset, look-alikes): each is a 415 problem+json
// unsupported_media_type naming Content-Type, and nothing is written. JSON
// types with a utf-8 charset, in any case, and application/*+json are
// accepted. Then every operation of the OpenAPI document that takes a JSON
// body is sent a text/plain body: each answers 415 (the check is in the
// one decoder every JSON handler uses).
func TestJSONBodiesNeedAJSONContentType(t *testing.T) {
	t.Parallel()
	f := newBadInputFixture(t)
	e := f.e
	mid := f.memberID
	bodies := []struct{ name, path, tok, body string }{
		{"earn", "/v1/earn", f.tok, fmt.Sprintf(`{"member_id":%d,"amount":{"minor":1000,"currency":"EUR"}}`, mid)},
		{"burn", "/v1/burns", f.tok, fmt.Sprintf(`{"member_id":%d,"points":10,"redemption_code":%q}`, mid, f.code())},
		{"transfer", "/v1/me/transfers", f.memberTok, fmt.Sprintf(`{"to_card":%q,"points":10}`, f.otherCard)},
		{"order", "/v1/me/orders", f.memberTok, fmt.Sprintf(`{"reward_id":%s}`, f.reward)},
	}
	before := e.allCounts()
	balance, _ := e.led.Balance(e.ctx, mid)
	for _, b := range bodies {
		for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
			"multipart/form-data; boundary=x", "application/json; charset=iso-8859-1", "application/json; charset=utf-16",
			"application/jsonx", "application/json-seq", "text/json", "application/+json", "json", "application/json;;", "*/*"} {
			status, out, hdr := e.sendWithContentType("POST", b.path, b.tok, b.body, ct, ct == "")
			var p Problem
			_ = json.Unmarshal(out, &p)
			if status != http.StatusUnsupportedMediaType || p.Code != "unsupported_media_type" ||
				!strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") ||
				len(p.Errors) != 1 || p.Errors[0].Field != "Content-Type" {
				t.Errorf("%s with Content-Type %q: %d %q %s; want 415 problem+json unsupported_media_type naming Content-Type",
					b.name, ct, status, hdr.Get("Content-Type"), out)
			}
		}
	}
	if after := e.allCounts(); after != before {
		t.Errorf("refused bodies wrote rows:\n%s\n%s", before, after)
	}
	if got, _ := e.led.Balance(e.ctx, mid); got != balance {
		t.Errorf("balance moved from %+v to %+v", balance, got)
	}
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;Charset=\"UTF-8\"",
		"application/vnd.partner.earn+json", "application/json; profile=earn"} {
		body := fmt.Sprintf(`{"member_id":%d,"amount":{"minor":1000,"currency":"EUR"},"external_ref":"ct-ok-%d"}`, mid, i)
		if status, out, _ := e.sendWithContentType("POST", "/v1/earn", f.tok, body, ct, false); status != http.StatusCreated {
			t.Errorf("earn with Content-Type %q: %d %s; want 201", ct, status, out)
		}
	}
	// Capture and void without a body need no Content-Type.
	if status, out, _ := e.sendWithContentType("POST", "/v1/burns/"+f.holdID+"/capture", f.tok, "", "", true); status != http.StatusOK {
		t.Errorf("capture without a body: %d %s; want 200", status, out)
	}

	// Every documented JSON body.
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	staff := e.staffToken()
	param := regexp.MustCompile(`\{[^}]+\}`)
	var ops []string
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				RequestBody *struct {
					Content map[string]json.RawMessage `json:"content"`
				} `json:"requestBody"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if method == "parameters" || json.Unmarshal(raw, &op) != nil || op.RequestBody == nil ||
				op.RequestBody.Content["application/json"] == nil {
				continue
			}
			if op.Responses["415"] == nil {
				t.Errorf("%s %s takes a JSON body but does not document its 415", strings.ToUpper(method), path)
			}
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	if len(ops) < 40 {
		t.Fatalf("only %d documented operations take a JSON body", len(ops))
	}
	before = e.allCounts()
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		tok := f.tok
		switch {
		case strings.HasPrefix(path, "/v1/admin/"):
			tok = staff
		case path == "/v1/me" || strings.HasPrefix(path, "/v1/me/"):
			tok = f.memberTok
		}
		path = param.ReplaceAllStringFunc(path, func(p string) string {
			if p == "{month}" {
				return "2026-01"
			}
			return "1"
		})
		status, out, _ := e.sendWithContentType(method, path, tok, `{}`, "text/plain", false)
		if status != http.StatusUnsupportedMediaType {
			t.Errorf("%s with text/plain: %d %s; want 415", op, status, out)
		}
	}
	if after := e.allCounts(); after != before {
		t.Errorf("refused bodies wrote rows:\n%s\n%s", before, after)
	}
}

// TestEarnQuoteValidatesAmountLikeEarn sends an amount of 0, -0, null or
// none to the quote, the earn and a batch item, which share one
// validation: each is a 400 naming amount.minor (the quote answered 200
// with 0 points). An amount of 0 beside activity or an event code is
// something to price, and is quoted.
func TestEarnQuoteValidatesAmountLikeEarn(t *testing.T) {
	t.Parallel()
	f := newBadInputFixture(t)
	mid := f.memberID
	const inv = "invalid_request"
	var cases []refusal
	for _, amount := range []struct{ name, json string }{
		{"0", `{"minor":0,"currency":"EUR"}`},
		{"-0", `{"minor":-0,"currency":"EUR"}`},
		{"null", `{"minor":null,"currency":"EUR"}`},
		{"absent", `{"currency":"EUR"}`},
	} {
		body := fmt.Sprintf(`{"member_id":%d,"amount":%s}`, mid, amount.json)
		cases = append(cases,
			refusal{name: "quote: minor " + amount.name, method: "POST", path: "/v1/earn/quote", tok: f.tok, body: body, status: 400, code: inv, field: "amount.minor"},
			refusal{name: "earn: minor " + amount.name, method: "POST", path: "/v1/earn", tok: f.tok, body: body, status: 400, code: inv, field: "amount.minor"},
		)
	}
	f.expectRefusals(t, cases)
	code, out, _ := f.e.raw("POST", "/v1/earn/batch", f.tok, fmt.Sprintf(`{"items":[{"idempotency_key":"q1","member_id":%d,"amount":{"minor":-0,"currency":"EUR"}}]}`, mid))
	if code != 200 || !strings.Contains(string(out), `"status":400`) || !strings.Contains(string(out), `"field":"items[0].amount.minor"`) {
		t.Errorf("batch item with minor -0: %d %s; want the item refused naming items[0].amount.minor", code, out)
	}
	q := f.e.must(200, "POST", "/v1/earn/quote", f.tok, map[string]any{"member_id": mid,
		"amount": map[string]any{"minor": 0, "currency": "EUR"}, "event_code": "CHECKIN"})
	if q["points"] != float64(0) {
		t.Errorf("quote of an event: %v; want 0 points (no rule prices the event)", q)
	}
}

// TestCaptureAndReversalRefuseZeroPoints: "points": 0 used to act on the
// whole hold or transaction, so a client's zero default captured or
// reversed everything. 0, negative and null are now a 400 naming points;
// the whole is asked for by leaving points out.
func TestCaptureAndReversalRefuseZeroPoints(t *testing.T) {
	t.Parallel()
	f := newBadInputFixture(t)
	e := f.e
	const inv = "invalid_request"
	capture := "/v1/burns/" + f.holdID + "/capture"
	reverse := "/v1/transactions/" + f.txID + "/reversals"
	var cases []refusal
	for _, pts := range []string{"0", "-0", "-1", "null"} {
		cases = append(cases,
			refusal{name: "capture points " + pts, method: "POST", path: capture, tok: f.tok, body: `{"points":` + pts + `}`, status: 400, code: inv, field: "points"},
			refusal{name: "reversal points " + pts, method: "POST", path: reverse, tok: f.tok, body: `{"points":` + pts + `,"reason":"returned"}`, status: 400, code: inv, field: "points"},
		)
	}
	cases = append(cases,
		refusal{name: "capture points 1.5", method: "POST", path: capture, tok: f.tok, body: `{"points":1.5}`, status: 400, code: inv, field: "points"},
		refusal{name: "reversal points \"all\"", method: "POST", path: reverse, tok: f.tok, body: `{"points":"all","reason":"returned"}`, status: 400, code: inv, field: "points"},
	)
	f.expectRefusals(t, cases)
	burn := e.must(200, "GET", "/v1/burns/"+f.holdID, f.tok, nil)
	if burn["status"] != "authorized" || burn["captured_points"] != float64(0) {
		t.Fatalf("the hold after refused captures: %v; want authorized, nothing captured", burn)
	}
	// Leaving points out asks for the whole.
	burn = e.must(200, "POST", capture, f.tok, map[string]any{})
	if burn["status"] != "captured" || burn["captured_points"] != float64(100) {
		t.Errorf("capture without points: %v; want the whole hold (100) captured", burn)
	}
	tx := e.must(200, "GET", "/v1/transactions/"+f.txID, f.tok, nil)
	rev := e.must(201, "POST", reverse, f.tok, map[string]any{"reason": "returned"})
	if rev["points"] != tx["points"] {
		t.Errorf("reversal without points: %v; want all of the earn's %v points", rev["points"], tx["points"])
	}
	// A positive number still acts on that much.
	e.must(422, "POST", reverse, f.tok, map[string]any{"points": 1, "reason": "again"})
	e.audit()
}
