package members_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/members"
)

const pw = "correct horse battery"

// signedUp enrols a member with an email and a password.
func signedUp(t *testing.T, e env, email string) members.Member {
	t.Helper()
	m := enrol(t, e, mustIdent(t, "email", email, 0), members.Profile{Email: email})
	if err := e.svc.SetPassword(context.Background(), m.ID, pw); err != nil {
		t.Fatal(err)
	}
	return m
}

func signIn(t *testing.T, e env, email, password string) members.Session {
	t.Helper()
	_, s, err := e.svc.SignIn(context.Background(), email, password, members.SessionInfo{UserAgent: "Firefox", IP: "203.0.113.9"})
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return s
}

func open(t *testing.T, e env, s members.Session) bool {
	t.Helper()
	err := e.svc.CheckSession(context.Background(), s.MemberID, s.ID)
	if err != nil && !errors.Is(err, members.ErrSessionEnded) {
		t.Fatalf("check session: %v", err)
	}
	return err == nil
}

func TestSessionsEndWithSignOutPasswordAndAccountChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := signedUp(t, e, "ada@example.test")

	a := signIn(t, e, "ada@example.test", pw)
	if a.MemberID != m.ID || !a.ExpiresAt.Equal(e.clock.Now().Add(members.SessionTTL)) || a.UserAgent != "Firefox" || a.IP != "203.0.113.9" {
		t.Fatalf("session = %+v", a)
	}
	if !open(t, e, a) {
		t.Fatal("a new session is not open")
	}
	if err := e.svc.CheckSession(ctx, m.ID+1, a.ID); !errors.Is(err, members.ErrSessionEnded) {
		t.Fatalf("session checked for another member: %v, want ErrSessionEnded", err)
	}
	// Signing out ends this session only.
	b := signIn(t, e, "ada@example.test", pw)
	if err := e.svc.EndSession(ctx, m.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if open(t, e, a) || !open(t, e, b) {
		t.Fatal("sign-out did not end exactly its own session")
	}

	// The member's own password change keeps the session it came from.
	c := signIn(t, e, "ada@example.test", pw)
	if err := e.svc.ChangePassword(ctx, m.ID, "wrong password!", "a brand new secret", c.ID); !errors.Is(err, members.ErrInvalidLogin) {
		t.Fatalf("change with a wrong current password: %v, want ErrInvalidLogin", err)
	}
	if !open(t, e, b) {
		t.Fatal("a refused password change ended a session")
	}
	if err := e.svc.ChangePassword(ctx, m.ID, pw, "a brand new secret", c.ID); err != nil {
		t.Fatal(err)
	}
	if open(t, e, b) || !open(t, e, c) {
		t.Fatal("password change: want other sessions ended and its own kept")
	}
	if _, _, err := e.svc.SignIn(ctx, "ada@example.test", pw, members.SessionInfo{}); !errors.Is(err, members.ErrInvalidLogin) {
		t.Fatalf("old password: %v, want ErrInvalidLogin", err)
	}
	// The operator's reset ends every session.
	if err := e.svc.SetPassword(ctx, m.ID, pw); err != nil {
		t.Fatal(err)
	}
	if open(t, e, c) {
		t.Fatal("a password reset left a session open")
	}

	// Suspension ends sessions; lifting it revives none.
	d := signIn(t, e, "ada@example.test", pw)
	if _, err := e.svc.Suspend(ctx, m.ID, "fraud review", "staff:x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reactivate(ctx, m.ID, "staff:x"); err != nil {
		t.Fatal(err)
	}
	if open(t, e, d) {
		t.Fatal("a session from before the suspension is open again after reactivation")
	}

	// Expiry.
	f := signIn(t, e, "ada@example.test", pw)
	e.clock.Add(members.SessionTTL)
	if open(t, e, f) {
		t.Fatal("an expired session is open")
	}

	// The export lists sessions; closure ends them; erasure deletes them.
	g := signIn(t, e, "ada@example.test", pw)
	x, err := e.svc.Export(ctx, m.ID, "member:self")
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Sessions) != 6 || x.Sessions[0].UserAgent != "Firefox" || x.Sessions[0].EndedAt != nil {
		t.Fatalf("export sessions = %+v, want the 6 sessions, newest (open) first", x.Sessions)
	}
	if _, err := e.svc.Close(ctx, m.ID, "member asked", "staff:x"); err != nil {
		t.Fatal(err)
	}
	if open(t, e, g) {
		t.Fatal("closing the account left a session open")
	}
	if _, err := e.svc.Erase(ctx, m.ID, "staff:dpo"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.db, `SELECT count(*) FROM member_sessions WHERE member_id = ?`, m.ID); n != 0 {
		t.Fatalf("%d sessions left after erasure, want none", n)
	}
}

func TestMergeEndsTheDuplicatesSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sur := signedUp(t, e, "sur@example.test")
	dup := signedUp(t, e, "dup@example.test")
	s := signIn(t, e, "sur@example.test", pw)
	d := signIn(t, e, "dup@example.test", pw)
	if _, err := e.svc.Merge(ctx, members.MergeRequest{SurvivorID: sur.ID, DuplicateID: dup.ID, Actor: "staff:x", Reason: "same person"}); err != nil {
		t.Fatal(err)
	}
	if open(t, e, d) || !open(t, e, s) {
		t.Fatal("merge: want the duplicate's session ended and the survivor's kept")
	}
}

func TestPruneSessionsKeepsADay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	signedUp(t, e, "ada@example.test")
	old := signIn(t, e, "ada@example.test", pw)
	e.clock.Add(members.SessionTTL + 23*time.Hour)
	recent := signIn(t, e, "ada@example.test", pw)
	if err := members.HandlePruneSessions(e.svc)(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Hour)
	if err := members.HandlePruneSessions(e.svc)(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	e.db.Raw(`SELECT id FROM member_sessions`).Scan(&ids)
	if len(ids) != 1 || ids[0] != recent.ID || ids[0] == old.ID {
		t.Fatalf("sessions after pruning: %v, want only the recent one", ids)
	}
}

// Sign-in attempts on one account are throttled whoever sends them and
// however many arrive at once: exactly the burst has its password checked,
// the rest are refused with how long to wait, the right password too, and an
// unknown email is throttled the same way.
func TestSignInThrottledPerAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := signedUp(t, e, "ada@example.test")
	for _, email := range []string{"ada@example.test", "nobody@example.test"} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		invalid, locked := 0, 0
		for range 20 {
			wg.Go(func() {
				_, _, err := e.svc.SignIn(ctx, email, "wrong password!", members.SessionInfo{})
				mu.Lock()
				defer mu.Unlock()
				var lim *throttle.LimitedError
				switch {
				case errors.Is(err, members.ErrInvalidLogin):
					invalid++
				case errors.Is(err, members.ErrLoginLocked) && errors.As(err, &lim) && lim.Wait == throttle.DefaultPolicy.Interval:
					locked++
				default:
					t.Errorf("%s: %v", email, err)
				}
			})
		}
		wg.Wait()
		if invalid != throttle.DefaultPolicy.Burst || locked != 20-throttle.DefaultPolicy.Burst {
			t.Fatalf("%s: 20 concurrent wrong passwords: %d checked, %d throttled; want %d and %d", email,
				invalid, locked, throttle.DefaultPolicy.Burst, 20-throttle.DefaultPolicy.Burst)
		}
	}
	if _, _, err := e.svc.SignIn(ctx, "ada@example.test", pw, members.SessionInfo{}); !errors.Is(err, members.ErrLoginLocked) {
		t.Fatalf("right password while throttled: %v, want ErrLoginLocked", err)
	}
	// A wrong current password in a password change counts against the same budget.
	if err := e.svc.ChangePassword(ctx, m.ID, "guess", "a brand new secret", ""); !errors.Is(err, members.ErrLoginLocked) {
		t.Fatalf("password change while throttled: %v, want ErrLoginLocked", err)
	}
	e.clock.Add(throttle.DefaultPolicy.Interval)
	signIn(t, e, "ada@example.test", pw)
	// A successful sign-in costs nothing: the next one goes through too.
	signIn(t, e, "ada@example.test", pw)
}
