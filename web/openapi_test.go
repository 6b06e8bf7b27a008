package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalitionhub/hub/internal/apitest"
)

// The merged document parses, is OpenAPI 3.1, loads into the validator and
// lists the main paths. (Schemas compile when a response is checked against
// them; the contract tests do that for every response they receive.)
func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, err %v", doc.OpenAPI, err)
	}
	if _, err := apitest.New(spec); err != nil {
		t.Fatalf("validator: %v", err)
	}
	for _, p := range []string{"/v1/earn", "/v1/burns", "/v1/members", "/v1/me/login", "/oauth/token"} {
		if doc.Paths[p] == nil {
			t.Errorf("path %s missing from the document", p)
		}
	}
}

// The document /openapi.json serves is valid OpenAPI 3.1 as an independent
// implementation reads it: kin-openapi loads it and its Validate passes (a
// description whose comma or colon YAML read as a stray key fails here as an
// "extra sibling field"). make test also lints it with Redocly's CLI.
func TestOpenAPIDocumentValidatesWithKinOpenAPI(t *testing.T) {
	t.Parallel()
	doc := kinDocument(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("kin-openapi reads version %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("kin-openapi refuses the document: %v", err)
	}
}

func kinDocument(t *testing.T) *openapi3.T {
	t.Helper()
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatalf("merge the OpenAPI fragments: %v", err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatalf("kin-openapi cannot load the document: %v", err)
	}
	return doc
}

// Every operation's operationId is the name of the Server method that
// handles its route, so ids are unique, stable and lead to the code; every
// tag an operation uses is declared with a description (the reference page
// groups operations by tag); and every operation that takes input (a
// parameter or a body) lists the 4xx answers bad input gets.
func TestOpenAPIOperationsAreNamedTaggedAndAnswerBadInput(t *testing.T) {
	t.Parallel()
	doc := kinDocument(t)
	handlers := routeHandlers(t)
	declared := map[string]string{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = tag.Description
		if strings.TrimSpace(tag.Description) == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
	}
	ids := map[string]string{}
	for _, path := range slices.Sorted(maps.Keys(doc.Paths.Map())) {
		item := doc.Paths.Value(path)
		for _, method := range slices.Sorted(maps.Keys(item.Operations())) {
			op := item.GetOperation(method)
			where := method + " " + path
			if want := handlers[where]; op.OperationID != want {
				t.Errorf("%s: operationId %q, want %q (the name of its handler in web/server.go)", where, op.OperationID, want)
			}
			if other, dup := ids[op.OperationID]; dup && op.OperationID != "" {
				t.Errorf("%s and %s share operationId %q", where, other, op.OperationID)
			}
			ids[op.OperationID] = where
			if len(op.Tags) == 0 {
				t.Errorf("%s has no tag", where)
			}
			for _, tag := range op.Tags {
				if _, ok := declared[tag]; !ok {
					t.Errorf("%s: tag %q is not declared in web/openapi/00-base.yaml", where, tag)
				}
			}
			takesInput := len(op.Parameters) > 0 || len(item.Parameters) > 0 || op.RequestBody != nil
			has4xx := false
			for code := range op.Responses.Map() {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			if takesInput && !has4xx {
				t.Errorf("%s takes input but lists no 4xx answer", where)
			}
		}
	}
}

var handlerName = regexp.MustCompile(`\.\(\*Server\)\.(\w+)-fm$`)

// routeHandlers maps "METHOD /openapi/{path}" of every route to the name of
// the Server method that handles it.
func routeHandlers(t *testing.T) map[string]string {
	t.Helper()
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	out := map[string]string{}
	for _, r := range s.engine().Routes() {
		if m := handlerName.FindStringSubmatch(r.Handler); m != nil {
			out[r.Method+" "+openapiPath(r.Path)] = m[1]
		}
	}
	return out
}

// /docs serves the API reference page: Redoc's bundle, served by the hub
// itself, renders /openapi.json (cmd/hub's browser test checks in Chromium
// that every operation shows). The page loads nothing from another host.
func TestDocsPageServesTheReference(t *testing.T) {
	t.Parallel()
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(b)
	}
	res, page := get("/docs")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s, want 200 text/html\n%s", res.StatusCode, res.Header.Get("Content-Type"), page)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("GET /docs: Content-Security-Policy %q, want scripts and fetches from the hub only", csp)
	}
	for _, want := range []string{`<redoc spec-url="/openapi.json"`, `<script src="/docs/static/redoc.standalone.js">`} {
		if !strings.Contains(page, want) {
			t.Errorf("GET /docs does not contain %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("GET /docs refers to another host:\n%s", page)
	}
	res, bundle := get("/docs/static/redoc.standalone.js")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || len(bundle) < 500_000 {
		t.Fatalf("GET the Redoc bundle: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(bundle))
	}
	if strings.Contains(bundle, "cdn.redoc.ly") {
		t.Errorf("the vendored Redoc bundle still loads its logo from another host (run make docs-vendor)")
	}
}

// The vendored bundle is the Redoc version pinned in tools/openapi, so the
// lock file says what the page runs.
func TestVendoredRedocIsThePinnedVersion(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../tools/openapi/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	pinned := pkg.DevDependencies["redoc"]
	banner, err := staticFiles.ReadFile("static/redoc.standalone.js.LICENSE.txt")
	if err != nil {
		t.Fatal(err)
	}
	if pinned == "" || !strings.Contains(string(banner), `Version: "`+pinned+`"`) {
		t.Errorf("web/static holds another Redoc than the %q pinned in tools/openapi/package.json (run make docs-vendor)", pinned)
	}
}
