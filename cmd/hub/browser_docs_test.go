package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coalitionhub/hub/web"
)

// apiRenderTimeout bounds the API reference's rendering: Redoc parses the
// whole document and renders every operation with its schemas before the
// first one shows, which on a busy two-core machine takes tens of seconds.
const apiRenderTimeout = 3 * time.Minute

// renderedOperation is what the API reference shows for one operation: the
// operationId of its section, and the method and path of its endpoint box.
type renderedOperation struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	Path   string `json:"path"`
}

// renderedOperationsJS collects every operation section Redoc rendered.
// Redoc gives each section the id "operation/<operationId>" and shows the
// method in an element of class http-verb followed by the path.
const renderedOperationsJS = `Array.from(document.querySelectorAll('[id^="operation/"]')).map(function (el) {
  var verb = el.querySelector('.http-verb');
  return {id: el.id.slice('operation/'.length), method: verb ? verb.textContent : '',
    path: verb && verb.nextElementSibling ? verb.nextElementSibling.textContent : ''};
})`

// apiReferenceRendersEveryOperation opens /docs and checks that the page
// shows every operation of the served document, under its operationId, with
// its method and path, and that the page logged no error (a Content Security
// Policy violation included).
func apiReferenceRendersEveryOperation(t *testing.T, b *browserSession) {
	spec, err := web.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]renderedOperation{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains([]string{"get", "put", "post", "delete", "patch"}, method) {
				continue
			}
			var op struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			want[op.OperationID] = renderedOperation{ID: op.OperationID, Method: method, Path: path}
		}
	}

	// The page itself answers before the browser renders it.
	res, err := http.Get(b.url("/docs"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /docs answered %d, want 200", res.StatusCode)
	}

	ctx, cancel := context.WithTimeout(b.ctx, apiRenderTimeout)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(b.url("/docs")),
		chromedp.WaitVisible(chromedp.CSS(`[id^="operation/"] .http-verb`)),
	); err != nil {
		t.Fatalf("open the API reference: %v", err)
	}
	rendered, err := chromedp.Run(ctx, chromedp.Evaluate[[]renderedOperation](renderedOperationsJS))
	if err != nil {
		t.Fatalf("read the rendered operations: %v", err)
	}
	got := map[string]renderedOperation{}
	for _, r := range rendered {
		got[r.ID] = renderedOperation{ID: r.ID, Method: strings.ToLower(strings.TrimSpace(r.Method)), Path: strings.TrimSpace(r.Path)}
	}
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("the API reference does not show %s %s (operationId %s)", strings.ToUpper(w.Method), w.Path, id)
		} else if g != w {
			t.Errorf("the API reference shows operation %s as %s %s, want %s %s", id, g.Method, g.Path, w.Method, w.Path)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("the API reference shows operation %q, which the document does not have", id)
		}
	}
	if len(want) == 0 || len(got) < len(want) {
		t.Errorf("the API reference shows %d operations; the document has %d", len(got), len(want))
	}
	b.assertCleanPage(t, "/docs")
	b.assertNoConsoleErrors(t)
}
