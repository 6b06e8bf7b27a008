package web

import (
	"encoding/json"
	"testing"

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
