package web

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/internal/validation"
)

// TestCheckJSONText checks the scan on its own, and its token reader alone:
// the path it names for duplicates, case-folded duplicates (refused for
// struct fields, which encoding/json matches without regard to case,
// allowed as map keys, which are data), strings that are not UTF-8 or hold
// lone surrogates, and that it leaves malformed JSON and trailing data to
// the decoder.
func TestCheckJSONText(t *testing.T) {
	type line struct {
		SKU    string `json:"sku"`
		Amount int64  `json:"amount"`
	}
	type doc struct {
		Name   string           `json:"name"`
		Lines  []line           `json:"lines"`
		Prices map[string]int64 `json:"prices"`
		Extra  any              `json:"extra"`
		Nested struct {
			Points int64 `json:"points"`
		} `json:"nested"`
	}
	for _, c := range []struct {
		body  string
		field string // "" when the scan accepts the body
	}{
		{`{"name":"a","lines":[{"sku":"x","amount":1}],"prices":{"gold":1},"nested":{"points":2}}`, ""},
		{`{"name":"a","name":"b"}`, "name"},
		{`{"name":"a","Name":"b"}`, "Name"},
		{`{"NAME":"a","name":"b"}`, "name"},
		{`{"nested":{"points":1,"points":2}}`, "nested.points"},
		{`{"nested":{"points":1,"POINTS":2}}`, "nested.POINTS"},
		{`{"lines":[{"sku":"x"},{"sku":"y"},{"sku":"z","amount":1,"amount":2}]}`, "lines[2].amount"},
		{`{"lines":[{"sku":"x"}],"lines":[]}`, "lines"},
		{`{"prices":{"gold":1,"Gold":2}}`, ""},
		{`{"prices":{"gold":1,"gold":2}}`, "prices.gold"},
		{`{"extra":{"a":{"k":1,"K":2}}}`, ""}, // inside an interface, keys are data
		{`{"extra":[{"k":1,"k":2}]}`, "extra[0].k"},
		{`{"name":"\ud800"}`, "name"},
		{`{"name":"\ud83d\ude00"}`, ""},
		{`{"name":"\\ud800"}`, ""},
		{`{"name":"\\\ud800"}`, "name"},
		{`{"lines":[{"sku":"ok"},{"sku":"` + "\xff" + `"}]}`, "lines[1].sku"},
		{`{"name":"a\u0000"}`, "name"},
		{`{"name":"a",`, ""},                         // malformed: the decoder names it
		{`{"name":"a"} {"name":"a","name":"b"}`, ""}, // trailing data: the decoder refuses it
		{`["\ud800"]`, "[0]"},
		{`"\ud800"`, "body"},
		{`{"` + "\xff" + `":1}`, "body"},
		{`{"prices":{` + manyPrices(40) + `,"p7":1}}`, "prices.p7"},
		{`{"prices":{` + manyPrices(40) + `,"P7":1,"K39":2,"\u212a39":3}}`, ""}, // Kelvin sign folds with k
		{`{"prices":{` + manyPrices(40) + `,"P7":1,"P7":2}}`, "prices.P7"},
		{`{"extra":{"a":[{` + manyPrices(40) + `,"P7":1}]}}`, ""},
		{`{"nested":{"points":1,` + manyPrices(40) + `,"\u212aey":1,"key":2}}`, "nested.key"},
	} {
		for name, check := range map[string]func([]byte, any) error{"checkJSONText": checkJSONText, "checkJSONTokens": checkJSONTokens} {
			err := check([]byte(c.body), &doc{})
			var ve *validation.Error
			switch {
			case c.field == "" && err != nil:
				t.Errorf("%s(%s): %v; want accepted", name, c.body, err)
			case c.field != "" && (!errors.As(err, &ve) || ve.Fields[0].Field != c.field):
				t.Errorf("%s(%s): %v; want an error naming %s", name, c.body, err, c.field)
			}
		}
	}
	for _, plain := range []string{typicalEarnBody, `{}`, `[]`, `[1,-2.5e+3,true,false,null,"a"]`, ` {"a" : [ {"b":1} , {"b":2} ] } `} {
		if !jsonPlain([]byte(plain)) {
			t.Errorf("jsonPlain(%s) = false; want the fast walk to take it", plain)
		}
	}
}

// FuzzJSONPlain checks the fast walk against the token reader: whatever
// jsonPlain calls plain, checkJSONTokens accepts (whatever the struct it
// decodes into), so the fast walk never lets a duplicate key or a bad
// string through. Explore with
// go test -run '^$' -fuzz FuzzJSONPlain -fuzztime 60s ./web/.
func FuzzJSONPlain(f *testing.F) {
	for _, s := range []string{typicalEarnBody, `{"a":1,"A":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `{"a":"\u0041","a":1}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}`,
		`[[[[{"x":"y","x":"z"}]]]]`, `{"a":tru,"a":1}`, "{\"a\":\"\xff\"}", `{"a":1}{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !jsonPlain(body) {
			return
		}
		if err := checkJSONTokens(body, &struct{}{}); err != nil {
			t.Fatalf("jsonPlain(%q) = true, but checkJSONTokens refuses it: %v", body, err)
		}
	})
}

// manyPrices is n members "p0":0 ... and "k<n-1>", beyond the short list
// of keys checkJSONText keeps per object.
func manyPrices(n int) string {
	var b strings.Builder
	for i := range n - 1 {
		fmt.Fprintf(&b, `"p%d":%d,`, i, i)
	}
	fmt.Fprintf(&b, `"k%d":%d`, n-1, n-1)
	return b.String()
}

// typicalEarnBody is an earn as a point of sale sends it.
const typicalEarnBody = `{"member_id":48213,"amount":{"minor":2599,"currency":"EUR"},"external_ref":"pos-7-receipt-55310",` +
	`"occurred_at":"2026-12-03T08:00:00Z","outlet":"lisbon-01","lines":[{"sku":"A-100","category":"fuel","amount":2599,"quantity":1}]}`

// BenchmarkDecodeEarnBody measures decoding a typical earn body: the scan
// (checkJSONText, which takes the fast walk), its token reader
// (checkJSONTokens, which bodies with escapes or non-ASCII text take), the
// strict decode alone, and scan and decode as decodeJSON runs them.
func BenchmarkDecodeEarnBody(b *testing.B) {
	body := []byte(typicalEarnBody)
	if strings.Count(typicalEarnBody, `"`)%2 != 0 {
		b.Fatal("unbalanced quotes")
	}
	for _, bc := range []struct {
		name string
		fn   func() error
	}{
		{"scan", func() error { return checkJSONText(body, &earnRequest{}) }},
		{"tokens", func() error { return checkJSONTokens(body, &earnRequest{}) }},
		{"decode", func() error { var r earnRequest; return decodeStrict(body, &r) }},
		{"both", func() error {
			var r earnRequest
			if err := checkJSONText(body, &r); err != nil {
				return err
			}
			return decodeStrict(body, &r)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := bc.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
