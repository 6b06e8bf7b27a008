package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

// decodeJSON reads the request body strictly into dst: unknown fields, wrong
// types, trailing data and malformed JSON are field-named validation errors.
// It returns the raw body, which idempotency hashes.
func decodeJSON(c *gin.Context, dst any) ([]byte, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, validation.New("body", "could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return body, validation.New("body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return body, locateFieldError(jsonFieldError(err), err, body, dst)
	}
	if dec.More() {
		return body, validation.New("body", "has data after the JSON object")
	}
	if bytes.Contains(body, []byte(`\u0000`)) {
		if err := nulField(body); err != nil {
			return body, err
		}
	}
	return body, nil
}

// nulField refuses a string holding U+0000, naming its field: PostgreSQL
// text cannot store it, so it would otherwise fail as a 500 at the insert.
func nulField(body []byte) error {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	var found string
	walkJSON(doc, "", func(path, key string, v any) bool {
		if s, ok := v.(string); ok && strings.ContainsRune(s, 0) {
			found = path
		} else if strings.ContainsRune(key, 0) {
			found = "body"
		}
		return found == ""
	})
	if found == "" {
		return nil
	}
	return validation.New(found, "must not contain the NUL character (U+0000)")
}

var unknownField = regexp.MustCompile(`^json: unknown field "(.+)"$`)

// locateFieldError names the JSON path of errors encoding/json cannot place:
// an unknown field below the top level (json names only the key) and a time
// that is not RFC 3339 (time.Time's decoder knows no field). It walks the
// body for the first such path; when none is found ve is returned as is.
func locateFieldError(ve error, err error, body []byte, dst any) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return ve
	}
	var found string
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		walkJSON(doc, "", func(path, key string, _ any) bool {
			if key == m[1] && found == "" && typeAtPath(reflect.TypeOf(dst), path) == nil {
				found = path
			}
			return found == ""
		})
		if found != "" {
			return validation.New(found, "is not a known field")
		}
		return ve
	}
	var vf *validation.Error
	if !errors.As(ve, &vf) || len(vf.Fields) != 1 || vf.Fields[0].Field != "body" {
		return ve
	}
	timeType := reflect.TypeFor[time.Time]()
	walkJSON(doc, "", func(path, _ string, v any) bool {
		if t := typeAtPath(reflect.TypeOf(dst), path); t == timeType {
			raw, _ := json.Marshal(v)
			var tm time.Time
			if json.Unmarshal(raw, &tm) != nil {
				found = path
			}
		}
		return found == ""
	})
	if found != "" {
		return validation.New(found, "must be an RFC 3339 time (e.g. 2026-11-22T10:00:00Z)")
	}
	return ve
}

// walkJSON visits every value of a decoded JSON document depth first, keys
// in sorted order, with its path (a.b, items[0].c) and key; visit returns
// false to stop.
func walkJSON(v any, path string, visit func(path, key string, v any) bool) bool {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if !visit(p, k, x[k]) || !walkJSON(x[k], p, visit) {
				return false
			}
		}
	case []any:
		for i, e := range x {
			p := fmt.Sprintf("%s[%d]", path, i)
			if !visit(p, "", e) || !walkJSON(e, p, visit) {
				return false
			}
		}
	}
	return true
}

var pathPart = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// typeAtPath resolves a JSON path against the Go type that decodes it (json
// tags, embedded structs, pointers, slices); nil when the path leads nowhere.
func typeAtPath(t reflect.Type, path string) reflect.Type {
	for _, part := range pathPart.FindAllString(path, -1) {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil {
			return nil
		}
		if strings.HasPrefix(part, "[") {
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return nil
			}
			t = t.Elem()
			continue
		}
		t = fieldType(t, part)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldType(t reflect.Type, name string) reflect.Type {
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if got := fieldType(ft, name); got != nil {
				return got
			}
			continue
		}
		if tag == name || (tag == "" && strings.EqualFold(f.Name, name)) {
			return f.Type
		}
	}
	return nil
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var tpe *time.ParseError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return validation.New(field, fmt.Sprintf("must be %s, got %s", jsonKind(te.Type.Kind().String()), te.Value))
	case errors.As(err, &se):
		return validation.New("body", fmt.Sprintf("is not valid JSON (at byte %d)", se.Offset))
	case errors.As(err, &tpe):
		return validation.New("body", "has a time that is not RFC 3339 (e.g. 2026-11-22T10:00:00Z)")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return validation.New("body", "is truncated JSON")
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return validation.New(m[1], "is not a known field")
	}
	return validation.New("body", "could not be decoded: "+err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "int64", "int", "int32":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}

// idempotencyKeyPattern bounds what a key may hold.
var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)

// idempotency builds the ledger idempotency of a point-moving request: the
// Idempotency-Key header (required), scoped to the caller, with a hash of the
// method, route and raw body, so the same key with another body is a 409.
func idempotency(c *gin.Context, scope string, body []byte) (ledger.Idempotency, error) {
	key := c.GetHeader("Idempotency-Key")
	if !idempotencyKeyPattern.MatchString(key) {
		return ledger.Idempotency{}, validation.New("Idempotency-Key", "header is required: 1 to 200 printable ASCII characters, unique per request")
	}
	return ledger.Idempotency{Scope: scope, Key: key, RequestHash: requestHash(c.Request.Method, c.Request.URL.Path, body)}, nil
}

// requestHash identifies a request for idempotency: method, route and the
// canonical form of its JSON body.
func requestHash(method, path string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	h.Write(canonicalJSON(body))
	return h.Sum(nil)
}

// canonicalJSON re-encodes a JSON document with sorted keys and no
// insignificant whitespace, so a retry that re-serialises the same object
// differently still matches.
//
// Its output is stored (hashed) in the database, so it must stay
// byte-identical to canonicalJSONSlow, the original decode-into-any and
// json.Marshal form: only the first JSON value counts (trailing data is
// ignored), invalid JSON is returned as is, keys are sorted byte-wise after
// unescaping with the last duplicate winning, numbers keep their literal
// text, and strings are re-escaped exactly as json.Marshal escapes them. It
// walks the bytes once instead; whatever it does not accept (invalid JSON,
// very deep nesting) is handed to canonicalJSONSlow, which decides.
func canonicalJSON(body []byte) []byte {
	s := &canonState{out: make([]byte, 0, len(body))}
	_, ok := s.value(body, skipJSONSpace(body, 0), 0)
	if !ok {
		return canonicalJSONSlow(body)
	}
	return s.out
}

// canonicalJSONSlow is the reference form of canonicalJSON; it also takes
// every input the fast walker refuses.
func canonicalJSONSlow(body []byte) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// canonMaxDepth bounds the walker's nesting; deeper documents go to
// canonicalJSONSlow (encoding/json allows 10000 levels).
const canonMaxDepth = 500

// canonState holds the walker's buffers for one call.
type canonState struct {
	out     []byte       // the canonical form being built
	entries []canonEntry // members of the objects being walked, innermost last
	keys    []byte       // unescaped keys of those members
	scratch []byte       // an object's members while they are reordered
	str     []byte       // an unescaped string before it is re-escaped
}

// canonEntry is one object member: its unescaped key in canonState.keys and
// its canonical `"key":value` text in canonState.out.
type canonEntry struct {
	keyStart, keyEnd int
	start, end       int
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// value appends the canonical form of the JSON value starting at b[i] and
// returns the index just past it; false for anything encoding/json's
// scanner would reject, or nesting deeper than canonMaxDepth.
func (s *canonState) value(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		return s.object(b, i+1, depth+1)
	case c == '[':
		return s.array(b, i+1, depth+1)
	case c == '"':
		return s.string(b, i, false)
	case c == 't':
		return s.literal(b, i, "true")
	case c == 'f':
		return s.literal(b, i, "false")
	case c == 'n':
		return s.literal(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number(b, i)
	}
	return i, false
}

func (s *canonState) literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	s.out = append(s.out, lit...)
	return i + len(lit), true
}

// number copies a number literal as written (json.Number keeps it so):
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, stopping where the grammar
// ends as encoding/json's scanner does.
func (s *canonState) number(b []byte, i int) (int, bool) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return i, false
		}
		i = j
	}
	s.out = append(s.out, b[start:i]...)
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func (s *canonState) array(b []byte, i, depth int) (int, bool) {
	if depth > canonMaxDepth {
		return i, false
	}
	s.out = append(s.out, '[')
	i = skipJSONSpace(b, i)
	if i < len(b) && b[i] == ']' {
		s.out = append(s.out, ']')
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = s.value(b, i, depth); !ok {
			return i, false
		}
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			s.out = append(s.out, ',')
			i = skipJSONSpace(b, i+1)
		case ']':
			s.out = append(s.out, ']')
			return i + 1, true
		default:
			return i, false
		}
	}
}

func (s *canonState) object(b []byte, i, depth int) (int, bool) {
	if depth > canonMaxDepth {
		return i, false
	}
	open := len(s.out)
	s.out = append(s.out, '{')
	base, keyBase := len(s.entries), len(s.keys)
	i = skipJSONSpace(b, i)
	if i < len(b) && b[i] == '}' {
		s.out = append(s.out, '}')
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		e := canonEntry{keyStart: len(s.keys), start: len(s.out)}
		var ok bool
		if i, ok = s.string(b, i, true); !ok {
			return i, false
		}
		e.keyEnd = len(s.keys)
		i = skipJSONSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		s.out = append(s.out, ':')
		if i, ok = s.value(b, skipJSONSpace(b, i+1), depth); !ok {
			return i, false
		}
		e.end = len(s.out)
		s.entries = append(s.entries, e)
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		if b[i] == ',' {
			s.out = append(s.out, ',')
			i = skipJSONSpace(b, i+1)
			continue
		}
		if b[i] != '}' {
			return i, false
		}
		s.sortMembers(open, base)
		s.entries, s.keys = s.entries[:base], s.keys[:keyBase]
		s.out = append(s.out, '}')
		return i + 1, true
	}
}

// sortMembers rewrites the members of the object opened at s.out[open] in
// the order json.Marshal gives a map[string]any: by unescaped key, byte-wise,
// keeping only the last of duplicate keys (as decoding into a map does).
func (s *canonState) sortMembers(open, base int) {
	es := s.entries[base:]
	sorted := true
	for k := 1; k < len(es) && sorted; k++ {
		sorted = s.compareKeys(es[k-1], es[k]) < 0
	}
	if sorted {
		return
	}
	if len(es) <= 32 {
		// Stable insertion sort: duplicates stay in document order.
		for k := 1; k < len(es); k++ {
			for j := k; j > 0 && s.compareKeys(es[j-1], es[j]) > 0; j-- {
				es[j-1], es[j] = es[j], es[j-1]
			}
		}
	} else {
		slices.SortStableFunc(es, s.compareKeys)
	}
	s.scratch = append(s.scratch[:0], s.out[open+1:]...)
	s.out = s.out[:open+1]
	first := true
	for k, e := range es {
		if k+1 < len(es) && s.compareKeys(e, es[k+1]) == 0 {
			continue // a later duplicate wins
		}
		if !first {
			s.out = append(s.out, ',')
		}
		first = false
		s.out = append(s.out, s.scratch[e.start-open-1:e.end-open-1]...)
	}
}

func (s *canonState) compareKeys(a, b canonEntry) int {
	return bytes.Compare(s.keys[a.keyStart:a.keyEnd], s.keys[b.keyStart:b.keyEnd])
}

// canonPlain marks the bytes a string may hold that json.Marshal writes
// unchanged and unquoting leaves unchanged: printable ASCII (and DEL) but
// for the quote, the backslash and the HTML-escaped <, > and &.
var canonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// string appends the string starting at b[i] (the opening quote) as
// json.Marshal writes it after json.Unmarshal has unquoted it; for a key the
// unquoted text is also appended to s.keys.
func (s *canonState) string(b []byte, i int, key bool) (int, bool) {
	j := i + 1
	for j < len(b) && canonPlain[b[j]] {
		j++
	}
	if j < len(b) && b[j] == '"' {
		s.out = append(s.out, b[i:j+1]...)
		if key {
			s.keys = append(s.keys, b[i+1:j]...)
		}
		return j + 1, true
	}
	// Unquote as encoding/json's unquoteBytes does, validating as its
	// scanner does (it refuses control characters and unknown escapes).
	u := append(s.str[:0], b[i+1:j]...)
	for {
		if j >= len(b) {
			return j, false
		}
		switch c := b[j]; {
		case c == '"':
			s.str = u
			if key {
				s.keys = append(s.keys, u...)
			}
			s.out = appendMarshalString(s.out, u)
			return j + 1, true
		case c == '\\':
			if j+1 >= len(b) {
				return j, false
			}
			switch b[j+1] {
			case '"', '\\', '/':
				u = append(u, b[j+1])
			case 'b':
				u = append(u, '\b')
			case 'f':
				u = append(u, '\f')
			case 'n':
				u = append(u, '\n')
			case 'r':
				u = append(u, '\r')
			case 't':
				u = append(u, '\t')
			case 'u':
				rr := getu4(b[j:])
				if rr < 0 {
					return j, false
				}
				j += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(b[j:])); dec != unicode.ReplacementChar {
						// A valid pair; consume.
						u = utf8.AppendRune(u, dec)
						j += 6
						continue
					}
					// Invalid surrogate; fall back to replacement rune.
					rr = unicode.ReplacementChar
				}
				u = utf8.AppendRune(u, rr)
				continue
			default:
				return j, false
			}
			j += 2
		case c < ' ':
			return j, false
		case c < utf8.RuneSelf:
			u = append(u, c)
			j++
		default:
			// Coerce to well-formed UTF-8: an invalid byte becomes U+FFFD.
			// (The closing quote cannot continue a sequence, so decoding
			// past it changes nothing.)
			rr, size := utf8.DecodeRune(b[j:])
			u = utf8.AppendRune(u, rr)
			j += size
		}
	}
}

// getu4 decodes \uXXXX from the beginning of s, returning the hex value,
// or it returns -1 (encoding/json's getu4).
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendMarshalString is encoding/json's appendString with escapeHTML set,
// as json.Marshal writes a string.
func appendMarshalString(dst, src []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			if canonPlain[b] {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Bytes < 0x20 but for \b, \f, \n, \r and \t, and <, > and &.
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(src[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR are escaped.
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	dst = append(dst, '"')
	return dst
}

// replayed marks a response that repeats an earlier one for the same key.
func replayed(c *gin.Context, was bool) {
	if was {
		c.Header("Idempotent-Replayed", "true")
	}
}

// pathID parses a positive integer path parameter.
func pathID(c *gin.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

// queryLimit parses ?limit= (1..max, default def).
func queryLimit(c *gin.Context, def, max int, v *validation.Error) int {
	raw := c.Query("limit")
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if !v.Check(err == nil && n >= 1 && n <= max, "limit", fmt.Sprintf("must be an integer from 1 to %d", max)) {
		return def
	}
	return n
}
