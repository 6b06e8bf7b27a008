package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strings"
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

// docsPage renders a readable reference of the OpenAPI document on the
// server: no script, no CDN, no build step.
func (s *Server) docsPage(c *gin.Context) {
	var doc struct {
		Info struct {
			Title       string `json:"title"`
			Version     string `json:"version"`
			Description string `json:"description"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			Summary     string         `json:"summary"`
			Description string         `json:"description"`
			Tags        []string       `json:"tags"`
			Responses   map[string]any `json:"responses"`
		} `json:"paths"`
	}
	spec, err := OpenAPIJSON()
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	type op struct {
		Method, Path, Summary, Description, Tag string
		Statuses                                []string
	}
	var ops []op
	for path, methods := range doc.Paths {
		for m, o := range methods {
			tag := ""
			if len(o.Tags) > 0 {
				tag = o.Tags[0]
			}
			var st []string
			for code := range o.Responses {
				st = append(st, code)
			}
			sort.Strings(st)
			ops = append(ops, op{strings.ToUpper(m), path, o.Summary, o.Description, tag, st})
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Tag != ops[j].Tag {
			return ops[i].Tag < ops[j].Tag
		}
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	_ = docsTemplate.Execute(c.Writer, map[string]any{"Info": doc.Info, "Ops": ops})
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Info.Title}} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d232a}
h1{font-size:1.6rem} h2{margin-top:2rem;text-transform:capitalize;border-bottom:1px solid #d6dde3}
.op{margin:1rem 0;padding:.6rem .8rem;border:1px solid #d6dde3;border-radius:6px}
.m{display:inline-block;min-width:4.2rem;font-weight:600;font-family:ui-monospace,monospace}
.GET{color:#0b6bcb}.POST{color:#1a7f37}.DELETE{color:#b42318}.PUT,.PATCH{color:#9a6700}
code,.p{font-family:ui-monospace,monospace} .st{color:#57606a;font-size:.85rem}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.6rem;border-radius:6px}
</style></head><body>
<h1>{{.Info.Title}} <small>v{{.Info.Version}}</small></h1>
<pre>{{.Info.Description}}</pre>
<p>Machine-readable description: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
{{$tag := ""}}{{range .Ops}}{{if ne .Tag $tag}}{{$tag = .Tag}}<h2>{{.Tag}}</h2>{{end}}
<div class="op"><span class="m {{.Method}}">{{.Method}}</span> <span class="p">{{.Path}}</span> — {{.Summary}}
{{if .Description}}<p>{{.Description}}</p>{{end}}<div class="st">responses: {{range .Statuses}}{{.}} {{end}}</div></div>
{{end}}
</body></html>`))
