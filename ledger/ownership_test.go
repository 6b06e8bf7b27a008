package ledger_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ledgerTable matches the name of a table the ledger owns.
var ledgerTable = regexp.MustCompile(`\bledger_(accounts|idempotency|holds|transactions|entries|lots|lot_consumptions|settlements)\b`)

// notLedgerCode are the module's folders whose Go files may name the
// ledger's tables although they are not the ledger: the migrations (the
// schema's history) and cmd/hubbench, the load generator, which writes a
// synthetic settlement month of millions of ledger rows in a few set-based
// statements (no API of the ledger could post them as fast) and checks a
// run's acknowledgements against the rows it wrote. Tests (_test.go) are
// also exempt: they corrupt and inspect the tables on purpose.
var notLedgerCode = []string{"ledger", "migrations", filepath.Join("cmd", "hubbench")}

// TestOnlyTheLedgerNamesItsTables fails when a Go file outside the ledger
// has a string literal naming one of the ledger's tables: the ledger's tables
// are read and written only by the ledger, and every other package asks it
// through its functions (reads.go, settlement.go). Identifiers and comments
// do not count, only string literals, where SQL lives.
func TestOnlyTheLedgerNamesItsTables(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{}
	for _, d := range notLedgerCode {
		skip[filepath.Join(root, d)] = true
	}
	var found []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skip[path] || (path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				s = lit.Value
			}
			if m := ledgerTable.FindString(s); m != "" {
				rel, _ := filepath.Rel(root, fset.Position(lit.Pos()).Filename)
				found = append(found, rel+":"+strconv.Itoa(fset.Position(lit.Pos()).Line)+": "+m)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked %d Go files under %s; want the whole module", files, root)
	}
	if len(found) > 0 {
		t.Errorf("string literals outside the ledger name its tables (ask the ledger instead):\n%s", strings.Join(found, "\n"))
	}
}
