package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
)

// The OpenAPI document is kept as fragments, one per area of the API
// (openapi/00-base.yaml holds info, security and shared components); each
// fragment adds paths and components, and the hub serves their union.
//
//go:embed openapi/*.yaml
var openapiFiles embed.FS

var (
	specOnce sync.Once
	specJSON []byte
	specErr  error
)

// OpenAPIJSON is the API description as one JSON document, merged once from
// the embedded fragments. A path or component defined twice is an error.
// Tests validate responses against it.
func OpenAPIJSON() ([]byte, error) {
	specOnce.Do(func() { specJSON, specErr = mergeSpec() })
	return specJSON, specErr
}

func mergeSpec() ([]byte, error) {
	names, err := fs.Glob(openapiFiles, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var doc map[string]any
	for _, n := range names {
		b, _ := openapiFiles.ReadFile(n)
		js, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		var frag map[string]any
		if err := json.Unmarshal(js, &frag); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if doc == nil {
			doc = frag
			continue
		}
		if err := mergeSection(doc, frag, "paths", n); err != nil {
			return nil, err
		}
		comps, _ := frag["components"].(map[string]any)
		docComps, _ := doc["components"].(map[string]any)
		for kind := range comps {
			if docComps[kind] == nil {
				docComps[kind] = map[string]any{}
			}
			if err := mergeSection(docComps, comps, kind, n); err != nil {
				return nil, err
			}
		}
	}
	documentJSONBodyRefusal(doc)
	return json.Marshal(doc)
}

// documentJSONBodyRefusal lists the 415 of every operation that takes a
// JSON body: decodeJSON refuses any other Content-Type for all of them, so
// the answer is documented here once rather than in every fragment.
func documentJSONBodyRefusal(doc map[string]any) {
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for _, o := range ops {
			op, _ := o.(map[string]any)
			body, _ := op["requestBody"].(map[string]any)
			content, _ := body["content"].(map[string]any)
			responses, _ := op["responses"].(map[string]any)
			if content["application/json"] == nil || responses == nil || responses["415"] != nil {
				continue
			}
			responses["415"] = map[string]any{"$ref": "#/components/responses/Problem"}
		}
	}
}

func mergeSection(dst, src map[string]any, key, file string) error {
	from, _ := src[key].(map[string]any)
	to, _ := dst[key].(map[string]any)
	if to == nil {
		to = map[string]any{}
		dst[key] = to
	}
	for k, v := range from {
		if _, dup := to[k]; dup {
			return fmt.Errorf("%s: %s %q is already defined by another fragment", file, key, k)
		}
		to[k] = v
	}
	return nil
}

func (s *Server) openapi(c *gin.Context) {
	b, err := OpenAPIJSON()
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Data(http.StatusOK, "application/json", b)
}

// docsPage serves the API reference: Redoc's standalone bundle (vendored in
// web/static, so the page works offline) renders /openapi.json in the browser.
// A well-kept renderer follows the document wherever OpenAPI takes it
// (path-level parameters, oneOf, callbacks) where a hand-written one lags;
// docs/openapi.md says how the bundle is pinned and refreshed.
func (s *Server) docsPage(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(docsHTML))
}

// docsHeaders sets the reference page's security headers. Redoc injects its
// styles at run time and builds its search index in a worker it starts from
// a blob, so the policy allows inline styles and blob workers; scripts still
// come from the hub only.
func docsHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", docsContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		c.Next()
	}
}

const docsContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const docsHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Coalition loyalty hub — API reference</title>
<link rel="icon" href="data:,">
</head><body>
<noscript>The API reference needs JavaScript. The OpenAPI 3.1 document itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<redoc spec-url="/openapi.json" expand-responses="200,201" required-props-first="true" hide-hostname="true"></redoc>
<script src="/docs/static/redoc.standalone.js"></script>
</body></html>
`
