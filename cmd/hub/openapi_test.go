package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/coalitionhub/hub/web"
)

// `hub openapi` prints the document /openapi.json serves (make openapi-lint
// lints its output), indented, and needs no configuration.
func TestOpenAPICommandPrintsTheServedDocument(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := printOpenAPI(&out); err != nil {
		t.Fatal(err)
	}
	served, err := web.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out.Bytes()); err != nil {
		t.Fatalf("hub openapi printed no JSON: %v", err)
	}
	if !bytes.Equal(compact.Bytes(), served) {
		t.Errorf("hub openapi prints another document than /openapi.json serves")
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("{\n  \"")) {
		t.Errorf("hub openapi output is not indented: %.40q", out.String())
	}
}
