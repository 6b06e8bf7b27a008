package web

import (
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
