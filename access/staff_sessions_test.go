package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/partners"
)

func TestStaffSessions(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	now := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	svc, err := access.NewService(db, partners.NewService(db, clock), access.Options{Issuer: "https://hub.test", SecretsKey: make([]byte, 32), Now: clock,
		PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := svc.CreateStaff(ctx, "ops@hub.test", "correct horse battery", access.RoleFinance)
	if err != nil {
		t.Fatal(err)
	}
	login := func() string {
		t.Helper()
		tok, _, err := svc.StaffLogin(ctx, "OPS@hub.test ", "correct horse battery", access.SessionInfo{UserAgent: "curl/8", IP: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	verify := func(tok string) error {
		t.Helper()
		p, err := svc.VerifyStaffToken(ctx, tok)
		if err == nil && (p.StaffID != st.ID || p.Role != access.RoleFinance || p.Email != "ops@hub.test" || p.SessionID == "") {
			t.Fatalf("principal = %+v", p)
		}
		if err != nil && !errors.Is(err, access.ErrInvalidToken) {
			t.Fatalf("verify: %v", err)
		}
		return err
	}
	a, b := login(), login()
	if verify(a) != nil || verify(b) != nil {
		t.Fatal("fresh sessions refused")
	}
	pa, _ := svc.VerifyStaffToken(ctx, a)
	if err := svc.EndStaffSession(ctx, pa); err != nil {
		t.Fatal(err)
	}
	if verify(a) == nil || verify(b) != nil {
		t.Fatal("sign-out: want exactly its own session ended")
	}
	var row struct{ UserAgent, IP, EndReason string }
	db.Raw(`SELECT user_agent, ip, end_reason FROM staff_sessions WHERE ended_at IS NOT NULL`).Scan(&row)
	if row.UserAgent != "curl/8" || row.IP != "192.0.2.1" || row.EndReason != "signed_out" {
		t.Fatalf("ended session row = %+v", row)
	}
	if _, err := svc.SetStaffStatus(ctx, st.ID, "disabled"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetStaffStatus(ctx, st.ID, "active"); err != nil {
		t.Fatal(err)
	}
	if verify(b) == nil {
		t.Fatal("a session from before the account was disabled works again after enabling it")
	}
	c := login()
	now = now.Add(8 * time.Hour)
	if verify(c) == nil {
		t.Fatal("an expired session is accepted")
	}
	now = now.Add(25 * time.Hour)
	if err := access.HandlePruneStaffSessions(svc)(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM staff_sessions`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d staff sessions after pruning, want 0", n)
	}

	// Five wrong passwords, then the right one is throttled too, with the wait.
	for range 5 {
		if _, _, err := svc.StaffLogin(ctx, "ops@hub.test", "wrong", access.SessionInfo{}); !errors.Is(err, access.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	_, _, err = svc.StaffLogin(ctx, "ops@hub.test", "correct horse battery", access.SessionInfo{})
	var lim *throttle.LimitedError
	if !errors.Is(err, access.ErrLoginLocked) || !errors.As(err, &lim) || lim.Wait != throttle.DefaultPolicy.Interval {
		t.Fatalf("right password past the budget: %v; want ErrLoginLocked with a wait of one interval", err)
	}
}
