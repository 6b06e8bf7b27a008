package database

import (
	"reflect"
	"strings"
	"testing"
)

func TestCompileNamed(t *testing.T) {
	q := CompileNamed(`SELECT @a::bigint, @b_2, @a WHERE x = @b_2 AND y = CAST(@c AS date)`)
	if want := `SELECT $1::bigint, $2, $1 WHERE x = $2 AND y = CAST($3 AS date)`; q.SQL != want {
		t.Fatalf("SQL = %q, want %q", q.SQL, want)
	}
	args, err := q.Args(map[string]any{"a": 1, "b_2": "two", "c": 3, "unused": 4})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(args, []any{1, "two", 3}) {
		t.Fatalf("args = %v", args)
	}
	if _, err := q.Args(map[string]any{"a": 1, "c": 3}); err == nil || !strings.Contains(err.Error(), "@b_2") {
		t.Fatalf("missing value: err = %v, want it named", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a lone @ compiled")
		}
	}()
	CompileNamed(`SELECT tags @> $1`)
}
