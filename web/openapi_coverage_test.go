package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// openapiUndocumented lists routes that are deliberately not in the OpenAPI
// document: operations endpoints, the document itself, and HTML pages with
// their assets (the API reference under /docs among them).
func openapiUndocumented(path string) bool {
	switch path {
	case "/", "/metrics", "/healthz", "/readyz", "/openapi.json":
		return true
	}
	for _, prefix := range []string{"/console", "/portal", "/docs"} {
		if path == prefix || strings.HasPrefix(path, prefix+"/") {
			return true
		}
	}
	return false
}

var ginParam = regexp.MustCompile(`[:*]([^/]+)`)

// openapiPath turns a gin route pattern (/v1/burns/:id) into an OpenAPI path
// template (/v1/burns/{id}).
func openapiPath(route string) string { return ginParam.ReplaceAllString(route, "{$1}") }

// routedOperations returns "METHOD /openapi/{path}" for every route of the
// router; unless all, only those the document must describe.
func routedOperations(t *testing.T, all bool) map[string]bool {
	t.Helper()
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ops := map[string]bool{}
	for _, r := range s.engine().Routes() {
		if !all && openapiUndocumented(r.Path) {
			continue
		}
		ops[r.Method+" "+openapiPath(r.Path)] = true
	}
	if len(ops) == 0 {
		t.Fatal("the router has no routes to check")
	}
	return ops
}

// documentedOperations returns "METHOD /path" for every operation of the
// merged document.
func documentedOperations(t *testing.T) map[string]bool {
	t.Helper()
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatalf("merge the OpenAPI fragments: %v", err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	return ops
}

func missingFrom(want, have map[string]bool) []string {
	var out []string
	for op := range want {
		if !have[op] {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// Every route the hub serves (except operations endpoints and HTML pages) is
// described in the OpenAPI document with its method. A new endpoint without
// its description fails here, whatever area it belongs to.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	if missing := missingFrom(routedOperations(t, false), documentedOperations(t)); len(missing) > 0 {
		t.Errorf("%d routes are not described in web/openapi/*.yaml (add the path and method to the area's fragment):\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// Every operation in the document is served (operations endpoints such as
// /healthz may be described too): a typo in a path template or an operation
// for a route that was removed fails here.
func TestOpenAPIDescribesOnlyServedRoutes(t *testing.T) {
	t.Parallel()
	if extra := missingFrom(documentedOperations(t), routedOperations(t, true)); len(extra) > 0 {
		t.Errorf("%d operations in web/openapi/*.yaml have no route in web/server.go:\n  %s",
			len(extra), strings.Join(extra, "\n  "))
	}
}

// The route-to-template conversion the coverage tests rely on.
func TestOpenAPIPathFromGinRoute(t *testing.T) {
	t.Parallel()
	for route, want := range map[string]string{
		"/v1/admin/partners":                  "/v1/admin/partners",
		"/v1/burns/:id/capture":               "/v1/burns/{id}/capture",
		"/v1/admin/clients/:client_id/secret": "/v1/admin/clients/{client_id}/secret",
		"/v1/a/:x/b/:y":                       "/v1/a/{x}/b/{y}",
		"/files/*path":                        "/files/{path}",
	} {
		if got := openapiPath(route); got != want {
			t.Errorf("openapiPath(%q) = %q; want %q", route, got, want)
		}
	}
	for path, want := range map[string]bool{"/metrics": true, "/console": true, "/console/partners": true,
		"/portal/": true, "/consoles": false, "/v1/admin/partners": false, "/docs": true, "/docs/static/redoc.standalone.js": true,
		"/docsx": false} {
		if got := openapiUndocumented(path); got != want {
			t.Errorf("openapiUndocumented(%q) = %v; want %v", path, got, want)
		}
	}
}
