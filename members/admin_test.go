package members_test

import (
	"context"
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// EraseAccount waits while points are held, then closes an open account
// (forfeiting its points) and erases it, keeping the ledger; a second call
// changes nothing.
func TestEraseAccountWaitsForHoldsThenClosesAndErases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := enrol(t, e, mustIdent(t, "email", "ana@example.com", 0), members.Profile{GivenName: "Ana", Email: "ana@example.com"})
	earn(t, e, m.ID, 1, 500, "e1")
	e.clock.Add(time.Minute)
	h, err := e.ledger.Hold(ctx, ledger.HoldRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: "h1"}, MemberID: m.ID,
		PartnerID: 1, Points: 120, ExpiresAt: e.clock.Now().Add(time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}

	wantFieldError(t, func() error { _, err := e.svc.EraseAccount(ctx, m.ID, " ", "operator:dpo"); return err }(), "reason")
	_, err = e.svc.EraseAccount(ctx, m.ID, "request DSR-7", "operator:dpo")
	wantErr(t, err, members.ErrErasureBlocked)
	if got, _ := e.svc.Get(ctx, m.ID); got.Status != members.StatusActive || got.ErasedAt != nil || got.Profile.GivenName != "Ana" {
		t.Fatalf("a refused erasure changed the member: %+v", got)
	}

	if _, err := e.ledger.Void(ctx, ledger.VoidRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: "v1"}, HoldID: h.ID}); err != nil {
		t.Fatal(err)
	}
	before := history(t, e, m.ID)
	erased, err := e.svc.EraseAccount(ctx, m.ID, "request DSR-7", "operator:dpo")
	if err != nil {
		t.Fatalf("erase: %v", err)
	}
	if erased.Status != members.StatusClosed || erased.ErasedAt == nil || erased.Profile.GivenName != "" || erased.Profile.Email != "" {
		t.Fatalf("erased member = %+v; want closed, erased, no personal data", erased)
	}
	if b := balance(t, e, m.ID); b != 0 {
		t.Fatalf("balance after erasure = %d; want 0 (forfeited on closure)", b)
	}
	after := history(t, e, m.ID)
	if len(after) <= len(before) {
		t.Fatalf("ledger history after erasure:\n%s\nbefore:\n%s\nwant the earn kept and the forfeit added", after, before)
	}
	e.clock.Add(time.Minute)
	again, err := e.svc.EraseAccount(ctx, m.ID, "request DSR-7", "operator:dpo")
	if err != nil || !again.ErasedAt.Equal(*erased.ErasedAt) || history(t, e, m.ID) != after {
		t.Fatalf("second erasure: %+v %v; want nothing changed", again, err)
	}
}
