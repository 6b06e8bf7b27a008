package migrations_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// owners names the package that owns each table, by exact name or, for a
// name ending in "*", by prefix. Only the owner's Go code (and code in
// folders below it) may name a table in SQL; every other package asks the
// owner through its functions. A table the migrations create that no entry
// covers fails TestEveryTableHasOneOwner: a new table gets its owner here.
var owners = map[string]string{
	"ledger_*":                "ledger",
	"members":                 "members",
	"member_*":                "members",
	"consent_events":          "members",
	"data_subject_requests":   "members",
	"partners":                "partners",
	"partner_contracts":       "partners",
	"partner_outlets":         "partners",
	"prepaid_*":               "partners",
	"partner_config_versions": "points", // the points API's configuration stamp, bumped by triggers
	"api_clients":             "access",
	"client_assertion_jtis":   "access",
	"signing_keys":            "access",
	"staff_users":             "access",
	"staff_sessions":          "access",
	"earn_rules":              "rules",
	"promotions":              "rules",
	"webhook_*":               "webhooks",
	"catalog_*":               "catalog",
	"settlement_*":            "settlement",
	"exchanges":               "exchange",
	"exchange_*":              "exchange",
	"programme_*":             "programme",
	"outbox":                  "internal/outbox",
	"outbound_mail":           "internal/mail",
	"job_runs":                "internal/jobs",
	"login_throttle":          "internal/throttle",
	"operator_audit_log":      "web",
	"hub_meta":                "cmd/hub",
	"abuse_*":                 "abuse",
	"segments":                "campaigns",
	"campaigns":               "campaigns",
	"campaign_*":              "campaigns",
	"export_*":                "exports",
}

// exempt are the module's folders whose Go files may name any table: the
// load generator, which writes a synthetic settlement month of millions of
// ledger rows in a few set-based statements (no API could post them as fast)
// and checks a run's acknowledgements against the rows it wrote. Tests
// (_test.go) are exempt too: they corrupt and inspect tables on purpose.
var exempt = []string{filepath.Join("cmd", "hubbench")}

func ownerOf(table string) (string, bool) {
	if o, ok := owners[table]; ok {
		return o, true
	}
	best, owner := "", ""
	for k, o := range owners {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(table, p) && len(p) > len(best) {
			best, owner = p, o
		}
	}
	return owner, owner != ""
}

// tables are the tables the migrations create (after their renames).
func tables(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	create := regexp.MustCompile(`(?i)\bcreate\s+table\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*)`)
	rename := regexp.MustCompile(`(?i)\balter\s+table\s+(?:if\s+exists\s+)?([a-z_][a-z0-9_]*)\s+rename\s+to\s+([a-z_][a-z0-9_]*)`)
	drop := regexp.MustCompile(`(?i)\bdrop\s+table\s+(?:if\s+exists\s+)?([a-z_][a-z0-9_]*)`)
	set := map[string]bool{}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		for _, m := range create.FindAllStringSubmatch(up, -1) {
			set[strings.ToLower(m[1])] = true
		}
		for _, m := range rename.FindAllStringSubmatch(up, -1) {
			delete(set, strings.ToLower(m[1]))
			set[strings.ToLower(m[2])] = true
		}
		for _, m := range drop.FindAllStringSubmatch(up, -1) {
			delete(set, strings.ToLower(m[1]))
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEveryTableHasOneOwner(t *testing.T) {
	t.Parallel()
	all := tables(t)
	if len(all) < 50 {
		t.Fatalf("found %d tables in the migrations; want the whole schema", len(all))
	}
	for _, tb := range all {
		if _, ok := ownerOf(tb); !ok {
			t.Errorf("table %s has no owner: add it to owners", tb)
		}
	}
}

// TestOnlyTheOwnerNamesItsTables fails when a Go file outside a table's
// owner has a string literal naming the table after FROM, JOIN, INTO,
// UPDATE, TABLE or EXISTS (SQL keywords are written in capitals here): each package owns its tables, and the others ask
// it. Identifiers and comments do not count, only string literals, where SQL
// lives.
func TestOnlyTheOwnerNamesItsTables(t *testing.T) {
	t.Parallel()
	all := tables(t)
	byLen := append([]string(nil), all...)
	sort.Slice(byLen, func(i, j int) bool { return len(byLen[i]) > len(byLen[j]) })
	sqlName := regexp.MustCompile(`\b(?:FROM|JOIN|INTO|UPDATE|TABLE|EXISTS)\s+(` + strings.Join(byLen, "|") + `)\b`)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{filepath.Join(root, "migrations"): true}
	for _, d := range exempt {
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
		rel, _ := filepath.Rel(root, filepath.Dir(path))
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
			for _, m := range sqlName.FindAllStringSubmatch(s, -1) {
				table := strings.ToLower(m[1])
				owner, _ := ownerOf(table)
				if rel == owner || strings.HasPrefix(rel, owner+string(filepath.Separator)) {
					continue
				}
				file, _ := filepath.Rel(root, path)
				found = append(found, file+":"+strconv.Itoa(fset.Position(lit.Pos()).Line)+": "+table+" (owned by "+owner+")")
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("walked %d Go files under %s; want the whole module", files, root)
	}
	if len(found) > 0 {
		t.Errorf("string literals name tables another package owns (ask the owner instead):\n%s", strings.Join(found, "\n"))
	}
}
