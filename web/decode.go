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
	"sort"
	"strconv"
	"strings"
	"time"

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
func canonicalJSON(body []byte) []byte {
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

// queryTime parses an optional RFC 3339 query parameter.
func queryTime(c *gin.Context, name string, v *validation.Error) time.Time {
	raw := c.Query(name)
	if raw == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, raw)
	v.Check(err == nil, name, "must be an RFC 3339 time")
	return t
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
