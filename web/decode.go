package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
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

// decodeJSON reads the request body strictly into dst: a Content-Type
// that is not JSON is a 415; duplicate keys, strings that are not UTF-8 (or
// hold an unpaired surrogate escape or U+0000), unknown fields, wrong
// types, trailing data and malformed JSON are field-named validation
// errors. Every handler that takes a JSON body reads it here. It returns
// the raw body, which idempotency hashes.
func decodeJSON(c *gin.Context, dst any) ([]byte, error) {
	if err := jsonContentType(c.GetHeader("Content-Type")); err != nil {
		return nil, err
	}
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
	if err := checkJSONText(body, dst); err != nil {
		return body, err
	}
	return body, decodeStrict(body, dst)
}

// csvContentType accepts the media type of a CSV upload: text/csv, with no
// charset or utf-8. Anything else, or none, is errUnsupportedMediaType
// naming the header.
func csvContentType(header string) error {
	const want = "must be text/csv, with charset utf-8 if any"
	mt, params, err := mime.ParseMediaType(header)
	switch {
	case header == "":
		return &headerError{errUnsupportedMediaType, "Content-Type", "is missing: the body " + want}
	case err != nil || mt != "text/csv" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")):
		return &headerError{errUnsupportedMediaType, "Content-Type", fmt.Sprintf("%q is not CSV: the body %s", header, want)}
	}
	return nil
}

// multipartContentType accepts a form with a file: multipart/form-data with
// its boundary. Anything else, or none, is errUnsupportedMediaType naming
// the header.
func multipartContentType(header string) error {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return &headerError{errUnsupportedMediaType, "Content-Type",
			fmt.Sprintf("%q is not a form with a file: it must be multipart/form-data with a boundary", header)}
	}
	return nil
}

// jsonContentType accepts the media types of a JSON body:
// application/json and application/*+json, with no charset or utf-8 (JSON
// is UTF-8); other parameters are ignored. Anything else, or none, is
// errUnsupportedMediaType naming the header.
func jsonContentType(header string) error {
	const want = "must be application/json (or application/*+json), with charset utf-8 if any"
	mt, params, err := mime.ParseMediaType(header)
	sub, ok := strings.CutPrefix(mt, "application/")
	switch {
	case header == "":
		return &headerError{errUnsupportedMediaType, "Content-Type", "is missing: the body " + want}
	case err != nil || !ok || (sub != "json" && (len(sub) <= len("+json") || !strings.HasSuffix(sub, "+json"))):
		return &headerError{errUnsupportedMediaType, "Content-Type", fmt.Sprintf("%q is not JSON: it %s", header, want)}
	case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
		return &headerError{errUnsupportedMediaType, "Content-Type", fmt.Sprintf("%q is not JSON: it %s", header, want)}
	}
	return nil
}

// decodeStrict decodes the first JSON value of body into dst: unknown
// fields, wrong types, trailing data and malformed JSON are field-named
// validation errors.
func decodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return locateFieldError(jsonFieldError(err), err, body, dst)
	}
	if dec.More() {
		return validation.New("body", "has data after the JSON object")
	}
	return nil
}

// checkJSONText refuses, naming the path of the value, what encoding/json
// accepts silently: a key given twice in one object, or two keys it folds
// onto one struct field ("points" and "Points": it would keep the last); a
// string that is not valid UTF-8 or holds an escaped UTF-16 surrogate that
// is not half of a pair (it would store U+FFFD); and a string holding
// U+0000 (PostgreSQL text cannot store it). Malformed JSON is left to
// decodeStrict, which names it.
//
// Most bodies are plain (jsonPlain), which a walk of the bytes that
// allocates nothing confirms; the rest are read token by token
// (checkJSONTokens), which names what is wrong.
func checkJSONText(body []byte, dst any) error {
	if jsonPlain(body) {
		return nil
	}
	return checkJSONTokens(body, dst)
}

// jsonPlain reports whether the first JSON value of body is plainly
// clean: every string printable ASCII without escapes, no object with two
// keys equal but for case, at most plainMaxKeys keys per object and
// plainMaxDepth levels of nesting. It answers false for anything else
// (malformed JSON included), and then checkJSONTokens decides: so it may
// only ever say true of a body checkJSONTokens accepts (it is fuzzed
// against it).
func jsonPlain(body []byte) bool {
	_, ok := plainValue(body, skipJSONSpace(body, 0), 0)
	return ok
}

const (
	plainMaxKeys  = 16
	plainMaxDepth = 64
)

// plainValue walks the value at b[i] and returns the index past it.
func plainValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > plainMaxDepth {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		return plainObject(b, i+1, depth+1)
	case c == '[':
		return plainArray(b, i+1, depth+1)
	case c == '"':
		_, end, ok := plainString(b, i)
		return end, ok
	case c == 't' || c == 'f' || c == 'n' || c == '-' || ('0' <= c && c <= '9'):
		// A literal or a number runs to the next delimiter; decodeStrict
		// checks its spelling.
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || ('0' <= b[j] && b[j] <= '9') || ('a' <= b[j] && b[j] <= 'z') || b[j] == 'E') {
			j++
		}
		return j, true
	}
	return i, false
}

// plainString returns the contents of the string at b[i] (its opening
// quote) and the index past it; false when it holds an escape, a byte
// outside printable ASCII, or does not end.
func plainString(b []byte, i int) ([]byte, int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

func plainObject(b []byte, i, depth int) (int, bool) {
	var keys [plainMaxKeys][]byte
	n := 0
	i = skipJSONSpace(b, i)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' || n == len(keys) {
			return i, false
		}
		k, end, ok := plainString(b, i)
		if !ok {
			return i, false
		}
		for _, prev := range keys[:n] {
			if bytes.EqualFold(prev, k) {
				return i, false
			}
		}
		keys[n] = k
		n++
		i = skipJSONSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		if i, ok = plainValue(b, skipJSONSpace(b, i+1), depth); !ok {
			return i, false
		}
		switch i = skipJSONSpace(b, i); {
		case i < len(b) && b[i] == ',':
			i = skipJSONSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func plainArray(b []byte, i, depth int) (int, bool) {
	i = skipJSONSpace(b, i)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = plainValue(b, i, depth); !ok {
			return i, false
		}
		switch i = skipJSONSpace(b, i); {
		case i < len(b) && b[i] == ',':
			i = skipJSONSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// checkJSONTokens is checkJSONText for any body: it reads the first JSON
// value token by token (encoding/json's Decoder.Token), checking each
// string's raw bytes, which the decoder does not show.
func checkJSONTokens(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var sc jsonScan
	var off int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		end := dec.InputOffset()
		raw := body[off:end] // the token, after the separators and space before it
		off = end
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				if len(sc.frames) >= maxJSONDepth {
					return nil // decodeStrict refuses it
				}
				sc.frames = append(sc.frames, jsonFrame{array: t == '[', wantKey: t == '{'})
				continue
			}
			sc.frames = sc.frames[:len(sc.frames)-1]
		case string:
			if n := len(sc.frames); n > 0 && sc.frames[n-1].wantKey {
				if err := sc.key(t, raw, dst); err != nil {
					return err
				}
				continue
			}
			if msg := badJSONString(t, raw); msg != "" {
				return validation.New(sc.path(len(sc.frames), ""), msg)
			}
		}
		if sc.valueDone() {
			return nil
		}
	}
}

// maxJSONDepth is encoding/json's nesting limit; checkJSONText leaves
// deeper documents to it.
const maxJSONDepth = 10000

// jsonScan is checkJSONText's position in the document: the objects and
// arrays it is inside, outermost first.
type jsonScan struct {
	frames []jsonFrame
}

type jsonFrame struct {
	array   bool
	wantKey bool   // an object about to read a key
	index   int    // an array's current element
	key     string // an object's current member
	// An object's keys so far: a list while short, then maps of the keys
	// and of their case-folded forms, so a large object costs no more
	// than one lookup per key.
	keys   []string
	exact  map[string]struct{}
	folded map[string]string
	// anyKeys caches holdsAnyKeys for the object: 0 not asked yet, 1 its
	// keys are data, -1 they are struct fields.
	anyKeys int8
}

// manyKeys is where an object's keys move from the list to the maps.
const manyKeys = 16

// sameKey returns an earlier key of f that k repeats exactly, or else one
// it equals but for case, and whether there was one.
func (f *jsonFrame) sameKey(k string) (prev string, exact, found bool) {
	if f.exact == nil {
		for _, p := range f.keys {
			if p == k {
				return p, true, true
			}
		}
		for _, p := range f.keys {
			if strings.EqualFold(p, k) {
				return p, false, true
			}
		}
		return "", false, false
	}
	if _, ok := f.exact[k]; ok {
		return k, true, true
	}
	prev, found = f.folded[foldKey(k)]
	return prev, false, found
}

// addKey records k as one of f's keys.
func (f *jsonFrame) addKey(k string) {
	if f.exact == nil && len(f.keys) < manyKeys {
		f.keys = append(f.keys, k)
		return
	}
	if f.exact == nil {
		f.exact, f.folded = map[string]struct{}{}, map[string]string{}
		for _, p := range f.keys {
			f.exact[p] = struct{}{}
			f.folded[foldKey(p)] = p
		}
		f.keys = nil
	}
	f.exact[k] = struct{}{}
	if _, ok := f.folded[foldKey(k)]; !ok {
		f.folded[foldKey(k)] = k
	}
}

// foldKey maps every string strings.EqualFold takes for s to one string:
// each rune becomes the smallest of its simple case folding orbit (as
// encoding/json folds field names).
func foldKey(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b = utf8.AppendRune(b, least)
	}
	return string(b)
}

// valueDone moves past a complete value and reports whether it was the
// document's first (outermost) value.
func (sc *jsonScan) valueDone() bool {
	n := len(sc.frames)
	if n == 0 {
		return true
	}
	if f := &sc.frames[n-1]; f.array {
		f.index++
	} else {
		f.wantKey = true
	}
	return false
}

// key checks the key k of the innermost object.
func (sc *jsonScan) key(k string, raw []byte, dst any) error {
	n := len(sc.frames)
	f := &sc.frames[n-1]
	if msg := badJSONString(k, raw); msg != "" {
		return validation.New(sc.path(n-1, ""), "has a key that "+msg)
	}
	switch prev, exact, found := f.sameKey(k); {
	case exact:
		return validation.New(sc.path(n-1, k), "is given twice; send each field once")
	case found && !sc.keysAreData(dst):
		return validation.New(sc.path(n-1, k), fmt.Sprintf("and %q name the same field; send it once", prev))
	}
	f.addKey(k)
	f.key = k
	f.wantKey = false
	return nil
}

// keysAreData reports whether the innermost object's keys are data (it
// decodes into a map or an interface) rather than struct fields.
func (sc *jsonScan) keysAreData(dst any) bool {
	f := &sc.frames[len(sc.frames)-1]
	if f.anyKeys == 0 {
		f.anyKeys = -1
		if holdsAnyKeys(dst, sc.path(len(sc.frames)-1, "")) {
			f.anyKeys = 1
		}
	}
	return f.anyKeys == 1
}

// path is the JSON path (a.b, items[3].c) of the value in the first n
// frames, then key when not empty; "body" for the document itself.
func (sc *jsonScan) path(n int, key string) string {
	var b strings.Builder
	for _, f := range sc.frames[:n] {
		if f.array {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	if key != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// holdsAnyKeys reports whether the object at path decodes into a map or an
// interface (or lies inside one), whose keys are data ("gold" and "Gold"
// are two tiers), not struct fields, which encoding/json matches without
// regard to case.
func holdsAnyKeys(dst any, path string) bool {
	if path == "body" {
		path = ""
	}
	t := reflect.TypeOf(dst)
	for _, part := range pathPart.FindAllString(path, -1) {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t == nil:
			return false
		case t.Kind() == reflect.Interface:
			return true
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case strings.HasPrefix(part, "["):
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return false
			}
			t = t.Elem()
		default:
			t = fieldType(t, part)
		}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t != nil && (t.Kind() == reflect.Map || t.Kind() == reflect.Interface)
}

// badJSONString says what is wrong with the string s, read from raw (its
// JSON text, quotes and escapes included, after any separators): "" when
// nothing is.
func badJSONString(s string, raw []byte) string {
	plain := true // ASCII without escapes: the usual case
	for _, c := range raw {
		if c >= utf8.RuneSelf || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return ""
	}
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	if loneSurrogate(raw) {
		return `holds a UTF-16 surrogate escape (\uD800 to \uDFFF) that is not half of a pair`
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain the NUL character (U+0000)"
	}
	return ""
}

// loneSurrogate reports whether the JSON string text raw escapes a UTF-16
// surrogate that is not a high one followed at once by a low one.
func loneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character; \\ and \" are skipped whole
		r := getu4(raw[i-1:])
		if r < 0 {
			continue
		}
		i += 4
		switch {
		case 0xDC00 <= r && r < 0xE000:
			return true
		case 0xD800 <= r && r < 0xDC00:
			if lo := getu4(raw[i+1:]); lo < 0xDC00 || lo >= 0xE000 {
				return true
			}
			i += 6
		}
	}
	return false
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

// jsonKindOf names the JSON value b as encoding/json's UnmarshalTypeError
// does ("number 1.5", "string", "bool", "array", "object").
func jsonKindOf(b []byte) string {
	switch b = bytes.TrimSpace(b); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '"':
		return "string"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == '[':
		return "array"
	case b[0] == '{':
		return "object"
	}
	return "number " + string(b)
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
