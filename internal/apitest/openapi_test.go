package apitest

import (
	"strings"
	"testing"
)

const testSpec = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/things/{id}": {
      "get": {"responses": {
        "200": {"description": "A thing.", "content": {"application/json": {"schema": {
          "type": "object", "additionalProperties": false, "required": ["id"], "properties": {"id": {"type": "integer"}}}}}},
        "404": {"$ref": "#/components/responses/Problem"}}},
      "delete": {"responses": {"204": {"description": "Gone."}}}
    },
    "/things/new": {"get": {"responses": {"204": {"description": "Nothing new."}}}}
  },
  "components": {"responses": {"Problem": {"description": "A problem.", "content": {"application/problem+json": {"schema": {
    "type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}}}}}}
}`

// Check accepts what the document describes and names what it does not.
func TestCheck(t *testing.T) {
	t.Parallel()
	v, err := New([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		status       int
		ctype, body  string
		wantErr      string // "" means the answer matches the document
	}{
		{"GET", "/things/7", 200, "application/json; charset=utf-8", `{"id":7}`, ""},
		{"GET", "/things/7", 200, "application/json", `{"id":"7"}`, "does not match the OpenAPI schema"},
		{"GET", "/things/7", 200, "application/json", `{"id":7,"extra":1}`, "does not match the OpenAPI schema"},
		{"GET", "/things/7", 200, "text/plain", `7`, `content type "text/plain" not documented`},
		{"GET", "/things/7", 404, "application/problem+json", `{"code":"not_found"}`, ""},
		{"GET", "/things/7", 500, "application/problem+json", `{"code":"internal_error"}`, "answered 500, which the document does not list"},
		{"DELETE", "/things/7", 204, "", ``, ""},
		// A body on an answer the document describes without one.
		{"DELETE", "/things/7", 204, "application/json", `{"deleted":true}`, "describes no body"},
		// A literal path wins over a template.
		{"GET", "/things/new", 204, "", ``, ""},
		{"POST", "/things/7", 200, "application/json", `{}`, "method not in the OpenAPI document"},
		{"GET", "/other", 200, "application/json", `{}`, "path not in the OpenAPI document"},
	} {
		err := v.Check(c.method, c.path, c.status, c.ctype, []byte(c.body))
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s %s %d %s: %v, want no error", c.method, c.path, c.status, c.body, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s %s %d %s: %v, want an error saying %q", c.method, c.path, c.status, c.body, err, c.wantErr)
		}
	}
}
