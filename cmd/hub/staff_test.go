package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/partners"
)

// runHubStdin runs a hub subcommand with stdin and returns its combined
// output and exit code.
func runHubStdin(t *testing.T, env []string, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "HUB_RUN_AS_HUB=1"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("hub %v: %v", args, err)
	return "", 0
}

// TestStaffCreateBootstrapsTheFirstAdmin runs `hub staff create` against a
// fresh migrated database with no staff: the admin it creates signs in, the
// password never comes from argv, and mistakes are refused with the field
// named and nothing written.
func TestStaffCreateBootstrapsTheFirstAdmin(t *testing.T) {
	t.Parallel()
	db, dbURL := testdb.NewWithURL(t)
	env := []string{"HUB_DATABASE_URL=" + dbURL, "HUB_SECRETS_KEY=" + testSecretsKey}
	staffRows := func() int64 {
		var n int64
		if err := db.Raw(`SELECT count(*) FROM staff_users`).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := staffRows(); n != 0 {
		t.Fatalf("a fresh database holds %d staff accounts; want none", n)
	}
	const password = "a long admin password"

	// Refusals first: none writes a row.
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		exit  int
		want  string
	}{
		{"password in argv", password + "\n", []string{"staff", "create", "--email", "ops@example.com", "--role", "admin", "--password", password}, 2, "flag provided but not defined: -password"},
		{"no subcommand", "", []string{"staff"}, 2, "usage: hub staff create"},
		{"no email", password + "\n", []string{"staff", "create", "--role", "admin"}, 2, "usage: hub staff create"},
		{"unknown role", password + "\n", []string{"staff", "create", "--email", "ops@example.com", "--role", "owner"}, 1, "role must be admin, finance or support"},
		{"short password", "short\n", []string{"staff", "create", "--email", "ops@example.com", "--role", "admin"}, 1, "password must be 12 to 72 characters"},
		{"no password", "", []string{"staff", "create", "--email", "ops@example.com", "--role", "admin"}, 1, "no password on standard input"},
	} {
		out, code := runHubStdin(t, env, c.stdin, c.args...)
		if code != c.exit || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d\n%s\nwant exit %d mentioning %q", c.name, code, out, c.exit, c.want)
		}
		if strings.Contains(out, password) {
			t.Errorf("%s: the output shows the password:\n%s", c.name, out)
		}
	}
	if n := staffRows(); n != 0 {
		t.Fatalf("refused commands wrote %d staff accounts; want none", n)
	}

	// The first admin, from a password on stdin.
	out, code := runHubStdin(t, env, password+"\n", "staff", "create", "--email", "Ops@Example.com", "--role", "admin")
	if code != 0 || !strings.Contains(out, "created admin staff account ops@example.com") || strings.Contains(out, password) {
		t.Fatalf("staff create: exit %d\n%s", code, out)
	}
	var row struct {
		Role, Status, PasswordHash string
	}
	if err := db.Raw(`SELECT role, status, password_hash FROM staff_users WHERE email = 'ops@example.com'`).Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	if row.Role != "admin" || row.Status != "active" || bcrypt.CompareHashAndPassword([]byte(row.PasswordHash), []byte(password)) != nil {
		t.Fatalf("created account: %+v; want an active admin with the password from stdin", row)
	}
	ps := partners.NewService(db, nil)
	acc, err := access.NewService(db, ps, access.Options{Issuer: "http://hub.test", SecretsKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if _, st, err := acc.StaffLogin(context.Background(), "ops@example.com", password, access.SessionInfo{UserAgent: "test"}); err != nil || st.Role != access.RoleAdmin {
		t.Fatalf("the new admin signs in: %v %+v", err, st)
	}

	// The same email again is refused; the first account is untouched.
	out, code = runHubStdin(t, env, "another long password\n", "staff", "create", "--email", "ops@example.com", "--role", "support")
	if code != 1 || !strings.Contains(out, "exists already") {
		t.Fatalf("duplicate: exit %d\n%s\nwant exit 1 saying it exists", code, out)
	}
	if n := staffRows(); n != 1 {
		t.Fatalf("%d staff accounts; want the one admin", n)
	}
}
