package web

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A *gin.Context must never be handed to a service as its context.Context:
// gin recycles it when the handler returns, while database/sql may still be
// watching it (a data race the race detector catches only under load).
// Handlers pass c.Request.Context() instead; this test keeps it that way.
func TestHandlersPassRequestContextToServices(t *testing.T) {
	t.Parallel()
	bad := regexp.MustCompile(`s\.deps\.[A-Za-z]+\.[A-Za-z]+\(c\s*[,)]`)
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if bad.MatchString(line) {
				t.Errorf("%s:%d passes the gin context to a service; use c.Request.Context(): %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// Every route that may carry a large upload is a real route of the table, so
// a renamed route cannot silently fall back to the 1 MiB limit.
func TestUploadRoutesExist(t *testing.T) {
	t.Parallel()
	s := New(Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	found := map[string]bool{}
	for _, r := range s.engine().Routes() {
		if r.Method == http.MethodPost {
			found[r.Path] = true
		}
	}
	for path := range uploadRoutes {
		if !found[path] {
			t.Errorf("upload route %s is not in the route table", path)
		}
	}
}
