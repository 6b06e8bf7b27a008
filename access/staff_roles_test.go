package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// TestLastActiveAdminStays checks that neither a role change nor disabling
// can leave the coalition without an active admin, and that the refusal
// names the field the request changed.
func TestLastActiveAdminStays(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	clock := func() time.Time { return time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC) }
	svc, err := access.NewService(db, partners.NewService(db, clock), access.Options{Issuer: "https://hub.test",
		SecretsKey: make([]byte, 32), Now: clock, PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(email string, role access.Role) access.Staff {
		t.Helper()
		st, err := svc.CreateStaff(ctx, email, "correct horse battery", role)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	refused := func(what, field string, err error) {
		t.Helper()
		var c *validation.Cause
		if !errors.Is(err, access.ErrLastAdmin) || !errors.As(err, &c) || c.Field != field {
			t.Fatalf("%s: err = %v; want ErrLastAdmin blamed on %s", what, err, field)
		}
	}
	root := create("root@hub.test", access.RoleAdmin)
	fin := create("fin@hub.test", access.RoleFinance)

	_, err = svc.SetStaffStatus(ctx, root.ID, "disabled")
	refused("disable the only admin", "status", err)
	_, err = svc.SetStaffRole(ctx, root.ID, access.RoleSupport)
	refused("demote the only admin", "role", err)
	if _, err := svc.SetStaffStatus(ctx, fin.ID, "disabled"); err != nil {
		t.Fatalf("disable a finance account: %v", err)
	}

	// A second active admin lets the first go; then the second is the last.
	second := create("second@hub.test", access.RoleAdmin)
	if st, err := svc.SetStaffStatus(ctx, root.ID, "disabled"); err != nil || st.Status != "disabled" {
		t.Fatalf("disable root beside another admin = %+v, %v", st, err)
	}
	_, err = svc.SetStaffStatus(ctx, second.ID, "disabled")
	refused("disable the second admin once root is disabled", "status", err)
	_, err = svc.SetStaffRole(ctx, second.ID, access.RoleFinance)
	refused("demote the second admin once root is disabled", "role", err)

	// A disabled admin does not count, and may itself be changed freely.
	if _, err := svc.SetStaffRole(ctx, root.ID, access.RoleSupport); err != nil {
		t.Fatalf("demote a disabled admin: %v", err)
	}
	if _, err := svc.SetStaffStatus(ctx, second.ID, "active"); err != nil {
		t.Fatalf("enable the active admin again: %v", err)
	}
	if _, err := svc.SetStaffStatus(ctx, 987654, "disabled"); !errors.Is(err, access.ErrStaffNotFound) {
		t.Fatalf("unknown staff: %v; want ErrStaffNotFound", err)
	}
}
