package web

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// canonicalCases are inputs where canonicalJSON must match the original
// decode-into-any and json.Marshal form byte for byte: stored idempotency
// hashes depend on it. They also seed FuzzCanonicalJSON.
var canonicalCases = []string{
	// Typical bodies.
	canonicalEarnItem,
	`{"items":[` + canonicalEarnItem + `,` + canonicalEarnItem + `]}`,
	"{\n  \"b\": 1,\n  \"a\": [1, 2, {\"d\": null, \"c\": true}],\n  \"e\": false\n}\n",
	`{"a":1,"b":2,"c":3}`,
	// Whitespace everywhere.
	" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] } \n",
	// Scalars at the top level.
	`"x"`, `true`, `false`, `null`, `0`, `-0`, `12`, `  "a b"  `,
	// Numbers keep their literal text.
	`[-0,0,1e10,1E10,1e+10,1e-10,1.50,-1.0e-0,123456789012345678901234567890,0.000000000000000000001,1.7976931348623157e309]`,
	`{"n":-0.0,"m":100,"o":2.50E+03}`,
	// Escapes, unicode, HTML characters, separators.
	`{"s":"a\"b\\c\/d\be\ff\ng\rh\ti"}`,
	`{"s":"\u0000\u0001\u001f\u007f\u0080 \u00e9 \u20ac"}`,
	`{"s":"<b>&amp;</b>","<k>":"&"}`,
	`{"s":"\u003c\u003e\u0026 \u2028 \u2029 ` + "\u2028\u2029" + `"}`,
	`{"s":"héllo wörld 日本語 🎉","é":1,"e":2,"z":3}`,
	`{"s":"\ud83c\udf89 \ud83c \udf89 \ud83cx \ud83c\u0041 \uDBFF\uDFFF"}`,
	`{"s":"\uD800\uD800\uDC00"}`,
	`{"s":"\uFFFD ` + "\uFFFD" + `"}`,
	// Invalid UTF-8 (including UTF-8-encoded surrogates, truncated sequences).
	"{\"s\":\"a\xffb\xc3\x28c\xed\xa0\x80d\xe2\x82\"}",
	"{\"\xff\":1,\"\xfe\":2,\"\":3}",
	"\"\xe2\x80\"",
	// Keys: sorting by the unescaped key, duplicates (the last wins).
	`{"b":1,"a":2,"b":3}`,
	`{"a":{"x":1},"a":[2],"a":"3"}`,
	`{"\u0062":1,"a":2,"b":3}`,
	`{"B":1,"a":2,"_":3,"A":4,"aa":5,"a\u0000":6,"":7}`,
	`{"a\"":1,"a":2,"a\\":3,"a<":4}`,
	`{"k10":1,"k9":2,"k1":3,"k0":4,"k2":5,"k3":6,"k4":7,"k5":8,"k6":9,"k7":10,"k8":11,"k11":12,"k12":13,"k13":14,"k14":15,"k15":16,"k16":17,"k17":18,"k18":19,"k19":20,"k20":21,"k21":22,"k22":23,"k23":24,"k24":25,"k25":26,"k26":27,"k27":28,"k28":29,"k29":30,"k30":31,"k31":32,"k32":33,"k33":34,"k9":35,"k0":36}`,
	// Nesting.
	`[[[[]]],{},[{}],{"a":[{"b":[{"c":{}}]}]}]`,
	`{"z":{"y":{"x":{"w":1,"v":2}}},"a":[{"d":1,"c":2},{"b":[3,{"f":4,"e":5}]}]}`,
	// Trailing data after the first value is ignored.
	`{"b":1,"a":2}{"c":3}`, `{"a":1}}`, `{"a":1} garbage`, `[1]]`, `"a""b"`,
	`01`, `-01`, `1.5.3`, `123abc`, `truex`, `nullnull`, `0x10`, `1 2`, `1e5e5`,
	// Invalid JSON is returned as is.
	``, ` `, "\n\t", `{`, `}`, `[`, `]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`,
	`{a:1}`, `{'a':1}`, `tru`, `nul`, `-`, `1.`, `1e`, `1e+`, `.5`, `+1`, `-a`, `01.`, `1.e5`,
	`"abc`, `"\x"`, `"\'"`, `"\u12"`, `"\u12g4"`, `"\`, "\"a\tb\"", "\"a\nb\"", "\"\x00\"",
	`{"a":1 "b":2}`, `[1 2]`, `{"a" 1}`, `{"a":tru}`, `[1}`, `{"a":1]`,
	"\xef\xbb\xbf{}", `NaN`, `Infinity`, `[-]`, `{"a":-}`, `{"a":01}`, `[01]`, `[1.5.3]`,
	`{"a":truex}`,
	// Deep nesting, inside and beyond the walker's limit and encoding/json's.
	strings.Repeat("[", 400) + strings.Repeat("]", 400),
	strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat("[", 700),
}

const canonicalEarnItem = `{"idempotency_key":"k-1","member_id":123,"amount":{"minor":2599,"currency":"EUR"},"occurred_at":"2026-12-03T08:00:00Z","external_ref":"ref-1","lines":[{"sku":"A","category":"fuel","amount":{"minor":100,"currency":"EUR"}}]}`

func TestCanonicalJSONMatchesSlow(t *testing.T) {
	for _, in := range canonicalCases {
		got, want := canonicalJSON([]byte(in)), canonicalJSONSlow([]byte(in))
		if !bytes.Equal(got, want) {
			t.Errorf("canonicalJSON(%.200q) = %.200q; want %.200q", in, got, want)
		}
	}
}

// canonicalWalk runs the fast walker alone, without the fallback.
func canonicalWalk(body []byte) ([]byte, bool) {
	var s canonState
	_, ok := s.value(body, skipJSONSpace(body, 0), 0)
	return s.out, ok
}

// checkCanonicalWalk fails when the fast walker refuses a body that
// encoding/json decodes (unless it nests beyond canonMaxDepth), so the
// fallback stays for invalid JSON only, or when it accepts one it refuses.
func checkCanonicalWalk(t *testing.T, body []byte) {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	valid := dec.Decode(&v) == nil
	out, ok := canonicalWalk(body)
	switch {
	case ok && !valid:
		t.Errorf("walker accepts %.200q, which encoding/json refuses (gave %.200q)", body, out)
	case !ok && valid && bytes.Count(body, []byte("["))+bytes.Count(body, []byte("{")) <= canonMaxDepth:
		t.Errorf("walker refuses %.200q, which encoding/json decodes", body)
	}
}

func TestCanonicalJSONWalker(t *testing.T) {
	for _, in := range canonicalCases {
		checkCanonicalWalk(t, []byte(in))
	}
}

func TestCanonicalJSONExamples(t *testing.T) {
	for in, want := range map[string]string{
		canonicalEarnItem:              `{"amount":{"currency":"EUR","minor":2599},"external_ref":"ref-1","idempotency_key":"k-1","lines":[{"amount":{"currency":"EUR","minor":100},"category":"fuel","sku":"A"}],"member_id":123,"occurred_at":"2026-12-03T08:00:00Z"}`,
		`{"b":1,"a":2,"b":3} trailing`: `{"a":2,"b":3}`,
		`{"s":"<\u00e9>"}`:             `{"s":"\u003cé\u003e"}`,
		"\"a\xffb\"":                   "\"a\uFFFDb\"",
		`{"a":1,}`:                     `{"a":1,}`,
	} {
		if got := canonicalJSON([]byte(in)); string(got) != want {
			t.Errorf("canonicalJSON(%q) = %q; want %q", in, got, want)
		}
	}
}

// Each result is the caller's own: a later call does not change it.
func TestCanonicalJSONResultIsOwned(t *testing.T) {
	first := canonicalJSON([]byte(`{"b":1,"a":2}`))
	_ = canonicalJSON([]byte(`{"d":3,"c":4}`))
	if string(first) != `{"a":2,"b":1}` {
		t.Fatalf("first result changed to %q", first)
	}
}

// FuzzCanonicalJSON checks that canonicalJSON is byte-identical to the
// original form for any input; explore with
// go test -run '^$' -fuzz FuzzCanonicalJSON -fuzztime 60s ./web/.
func FuzzCanonicalJSON(f *testing.F) {
	for _, in := range canonicalCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, want := canonicalJSON(body), canonicalJSONSlow(body)
		if !bytes.Equal(got, want) {
			t.Fatalf("canonicalJSON(%q) = %q; want %q", body, got, want)
		}
		checkCanonicalWalk(t, body)
	})
}

func BenchmarkCanonicalJSON(b *testing.B) {
	body := []byte(canonicalEarnItem)
	for _, bc := range []struct {
		name string
		fn   func([]byte) []byte
	}{{"fast", canonicalJSON}, {"slow", canonicalJSONSlow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				bc.fn(body)
			}
		})
	}
}
