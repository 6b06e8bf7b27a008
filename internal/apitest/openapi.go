// Package apitest checks HTTP responses against the hub's OpenAPI document,
// so every end-to-end test doubles as a contract test.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const docURL = "https://hub.local/openapi.json"

// Validator validates responses against one OpenAPI document.
type Validator struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	cache    map[string]*jsonschema.Schema
	routes   []route
}

type route struct {
	template string
	re       *regexp.Regexp
}

// New parses the OpenAPI JSON document.
func New(spec []byte) (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, err
	}
	v := &Validator{doc: doc.(map[string]any), compiler: c, cache: map[string]*jsonschema.Schema{}}
	paths, _ := v.doc["paths"].(map[string]any)
	for p := range paths {
		re := "^" + regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
		v.routes = append(v.routes, route{template: p, re: regexp.MustCompile(re)})
	}
	return v, nil
}

func escape(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }

// match finds the path template of a concrete path; a literal template wins over one with parameters.
func (v *Validator) match(path string) (string, bool) {
	best := ""
	for _, r := range v.routes {
		if r.re.MatchString(path) && (best == "" || strings.Count(r.template, "{") < strings.Count(best, "{")) {
			best = r.template
		}
	}
	return best, best != ""
}

// Check validates status, content type and body of a response to method path.
// It returns an error describing any mismatch with the document.
func (v *Validator) Check(method, path string, status int, contentType string, body []byte) error {
	tpl, ok := v.match(path)
	if !ok {
		return fmt.Errorf("%s %s: path not in the OpenAPI document", method, path)
	}
	op, ok := v.doc["paths"].(map[string]any)[tpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s: method not in the OpenAPI document", method, tpl)
	}
	responses, _ := op["responses"].(map[string]any)
	code := strconv.Itoa(status)
	resp, ok := responses[code].(map[string]any)
	ptr := "#/paths/" + escape(tpl) + "/" + strings.ToLower(method) + "/responses/" + code
	if !ok {
		return fmt.Errorf("%s %s answered %d, which the document does not list", method, tpl, status)
	}
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp = v.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) != 0 {
			return fmt.Errorf("%s %s %d: the document describes no body, but the answer has one: %s", method, tpl, status, body)
		}
		return nil
	}
	mt := strings.TrimSpace(strings.Split(contentType, ";")[0])
	media, ok := content[mt].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s %d: content type %q not documented", method, tpl, status, mt)
	}
	if _, ok := media["schema"]; !ok {
		return nil
	}
	schemaURL := docURL + ptr + "/content/" + escape(mt) + "/schema"
	v.mu.Lock()
	sch, ok := v.cache[schemaURL]
	if !ok {
		var err error
		sch, err = v.compiler.Compile(schemaURL)
		if err != nil {
			v.mu.Unlock()
			return fmt.Errorf("compile %s: %w", schemaURL, err)
		}
		v.cache[schemaURL] = sch
	}
	v.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s %d: body is not JSON: %v", method, tpl, status, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s %s %d: body does not match the OpenAPI schema: %v\nbody: %s", method, tpl, status, err, body)
	}
	return nil
}

// Transport wraps an http.RoundTripper and fails the test on any response that
// does not match the document. Use it as the Transport of every client in an
// end-to-end test.
type Transport struct {
	T    testing.TB
	V    *Validator
	Next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := tr.Next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := tr.V.Check(req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
		tr.T.Errorf("OpenAPI contract: %v", err)
	}
	return resp, nil
}

// MustJSON is a test helper that marshals v.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
