package ledger_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
)

func (f *fixture) holdReq(member, partner int64, pts ledger.Points) ledger.HoldRequest {
	return ledger.HoldRequest{Idem: key(), MemberID: member, PartnerID: partner, Points: pts,
		ExpiresAt: f.clock.Now().Add(time.Hour), Purpose: "pos", ExternalRef: "till-1", Details: []byte(`{"outlet":"A"}`)}
}

func capKey(idem ledger.Idempotency) ledger.Idempotency {
	return ledger.Idempotency{Scope: idem.Scope, Key: idem.Key + "#capture", RequestHash: idem.RequestHash}
}

func (f *fixture) burnHeld(r ledger.HoldRequest) (ledger.Hold, ledger.Transaction, error) {
	return f.svc.BurnHeld(f.ctx, r, capKey(r.Idem), nil)
}

// A one-step burn leaves what a hold and its full capture leave: a captured
// hold pointing at a capture transaction that consumed lots earliest expiry
// first, and reads back (GetHold, Get) exactly as it answered.
func TestBurnHeldPostsACapturedHold(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)                                                                           // no expiry: last
	f.earn(1, 2, 50, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(48 * time.Hour)) }) // first
	f.earn(1, 3, 50, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(96 * time.Hour)) }) // second
	f.clock.Add(time.Minute)
	h, tr, err := f.burnHeld(f.holdReq(1, 9, 120))
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != ledger.HoldCaptured || h.Captured != 120 || h.CaptureTransactionID != tr.ID || h.ClosedAt == nil || h.Replayed {
		t.Fatalf("hold = %+v; want captured 120 by transaction %d", h, tr.ID)
	}
	if tr.Type != ledger.TypeCapture || tr.HoldID != h.ID || tr.Points != 120 || tr.BalanceAfter != 80 || tr.PartnerID != 9 {
		t.Fatalf("transaction = %+v", tr)
	}
	c := tr.Consumptions
	if len(c) != 3 || c[0].IssuerPartnerID != 2 || c[0].Points != 50 || c[1].IssuerPartnerID != 3 || c[1].Points != 50 ||
		c[2].IssuerPartnerID != 1 || c[2].Points != 20 {
		t.Fatalf("consumptions %+v; want 50 of partner 2, 50 of partner 3, 20 of partner 1", c)
	}
	gotHold, err := f.svc.GetHold(f.ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, h), mustJSON(t, gotHold); a != b {
		t.Fatalf("hold answered %s\nreads back %s", a, b)
	}
	gotTx, err := f.svc.Get(f.ctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, tr), mustJSON(t, gotTx); a != b {
		t.Fatalf("transaction answered %s\nreads back %s", a, b)
	}
	f.wantBalance(1, 80, 80)
	// The capture reverses like any capture, recreating the lots.
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: tr.ID, Reason: "refund"}); err != nil {
		t.Fatal(err)
	}
	f.wantBalance(1, 200, 200)
}

// A replay answers the hold as it is now and its transaction, the same as the
// first answer; another body under the key is a mismatch.
func TestBurnHeldReplayAndMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	r := f.holdReq(1, 9, 30)
	r.Idem.RequestHash = []byte("body-1")
	h, tr, err := f.burnHeld(r)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h2, tr2, err := f.svc.BurnHeld(f.ctx, r, capKey(r.Idem), func(*gorm.DB) error { calls++; return errors.New("no consent") })
	if err != nil || !h2.Replayed || !tr2.Replayed || calls != 0 {
		t.Fatalf("replay = %+v %+v %v (authorize called %d times); want a replay without consent", h2, tr2, err, calls)
	}
	h2.Replayed, tr2.Replayed = false, false
	if a, b := mustJSON(t, h), mustJSON(t, h2); a != b {
		t.Fatalf("hold answered %s\nreplayed %s", a, b)
	}
	if a, b := mustJSON(t, tr), mustJSON(t, tr2); a != b {
		t.Fatalf("transaction answered %s\nreplayed %s", a, b)
	}
	other := r
	other.Idem.RequestHash = []byte("body-2")
	other.Points = 31
	_, _, err = f.burnHeld(other)
	wantErr(t, err, ledger.ErrIdempotencyMismatch)
	// The capture's key is the capture's: reusing it for another operation is a mismatch too.
	_, err = f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: capKey(r.Idem), MemberID: 1, PartnerID: 9, Points: 1})
	wantErr(t, err, ledger.ErrIdempotencyMismatch)
	f.wantBalance(1, 70, 70)
}

// The records are those of Hold and Capture: a burn made by the two-step
// path replays through BurnHeld, and a BurnHeld replays through Hold and
// Capture.
func TestBurnHeldRecordsAreThoseOfHoldAndCapture(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	// Two-step first, replayed one-step.
	r := f.holdReq(1, 9, 10)
	h, err := f.svc.Hold(f.ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: capKey(r.Idem), HoldID: h.ID})
	if err != nil {
		t.Fatal(err)
	}
	h2, tr2, err := f.burnHeld(r)
	if err != nil || !h2.Replayed || h2.ID != h.ID || h2.Status != ledger.HoldCaptured || tr2.ID != tr.ID {
		t.Fatalf("one-step replay of a two-step burn = %+v %+v %v", h2, tr2, err)
	}
	// One-step first, replayed two-step.
	r = f.holdReq(1, 9, 20)
	h, tr, err = f.burnHeld(r)
	if err != nil {
		t.Fatal(err)
	}
	h3, err := f.svc.Hold(f.ctx, r)
	if err != nil || !h3.Replayed || h3.ID != h.ID {
		t.Fatalf("Hold replay = %+v %v; want hold %d", h3, err, h.ID)
	}
	tr3, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: capKey(r.Idem), HoldID: h.ID})
	if err != nil || !tr3.Replayed {
		t.Fatalf("Capture replay = %+v %v", tr3, err)
	}
	tr3.Replayed = false
	if a, b := mustJSON(t, tr), mustJSON(t, tr3); a != b {
		t.Fatalf("transaction answered %s\nCapture replayed %s", a, b)
	}
	f.wantBalance(1, 70, 70)
}

// Other holds' points, pending and expired lots are not spendable; a
// refused burn writes nothing, not even its key, and does not ask for
// consent; blocked accounts are refused before consent too.
func TestBurnHeldRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	f.earn(1, 2, 40, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(24 * time.Hour)) }) // pending
	f.earn(1, 3, 30, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Minute)) })      // expires
	f.clock.Add(2 * time.Minute)
	held, err := f.svc.Hold(f.ctx, f.holdReq(1, 9, 60))
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	ask := func(*gorm.DB) error { asked++; return nil }
	r := f.holdReq(1, 9, 41)
	_, _, err = f.svc.BurnHeld(f.ctx, r, capKey(r.Idem), ask)
	wantErr(t, err, ledger.ErrInsufficientPoints)
	if asked != 0 {
		t.Fatalf("consent asked %d times for a burn that cannot be paid", asked)
	}
	// A refused consent posts nothing.
	no := errors.New("wrong PIN")
	r3 := f.holdReq(1, 9, 1)
	_, _, err = f.svc.BurnHeld(f.ctx, r3, capKey(r3.Idem), func(*gorm.DB) error { return no })
	wantErr(t, err, no)
	// The key was not kept: the same request succeeds once it can be paid.
	if _, err := f.svc.Void(f.ctx, ledger.VoidRequest{Idem: key(), HoldID: held.ID}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.BurnHeld(f.ctx, r, capKey(r.Idem), ask); err != nil || asked != 1 {
		t.Fatalf("burn of 41 once the hold is void = %v (consent asked %d times)", err, asked)
	}
	f.wantBalance(1, 129, 59)
	// A member in clawback debt is refused before consent.
	spent := f.earn(2, 1, 50)
	f.mustBurn(2, 9, 50)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: spent.ID, Reason: "fraud"}); err != nil {
		t.Fatal(err)
	}
	r4 := f.holdReq(2, 9, 1)
	_, _, err = f.svc.BurnHeld(f.ctx, r4, capKey(r4.Idem), ask)
	wantErr(t, err, ledger.ErrAccountBlocked)
	if asked != 1 {
		t.Fatalf("consent asked for a blocked account")
	}
	_, _, err = f.burnHeld(f.holdReq(7, 9, 1)) // a member the ledger has never seen
	wantErr(t, err, ledger.ErrInsufficientPoints)
}

// Joined into a caller's transaction, BurnHeld writes there and nothing
// survives the caller's rollback.
func TestBurnHeldJoinedRollsBackWithTheCaller(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	r := f.holdReq(1, 9, 10)
	boom := errors.New("publish failed")
	err := f.db.Transaction(func(tx *gorm.DB) error {
		if _, _, err := f.svc.Joined(tx).BurnHeld(f.ctx, r, capKey(r.Idem), nil); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom)
	f.wantBalance(1, 100, 100)
	if _, _, err := f.burnHeld(r); err != nil {
		t.Fatalf("the key must be free after the rollback: %v", err)
	}
	f.wantBalance(1, 90, 90)
}

// Hundreds of concurrent one-step burns at one member never spend a point
// twice, and concurrent copies of one request post it once.
func TestConcurrentBurnHeldNeverOverspend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	limitConns(t, f.db, 10)
	f.earn(1, 1, 400)
	f.earn(1, 2, 600, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(24 * time.Hour)) })
	if _, err := f.svc.Hold(f.ctx, f.holdReq(1, 9, 100)); err != nil {
		t.Fatal(err)
	}
	same := f.holdReq(1, 9, 10)
	var ok, insufficient, sameOK atomic.Int64
	ids := sync.Map{}
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.holdReq(1, 9, 10)
			if i%3 == 0 {
				r = same
			}
			h, _, err := f.burnHeld(r)
			switch {
			case err == nil && i%3 == 0:
				sameOK.Add(1)
				ids.Store(h.ID, true)
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ledger.ErrInsufficientPoints):
				insufficient.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected burn error: %v", err)
	}
	n := 0
	ids.Range(func(any, any) bool { n++; return true })
	if sameOK.Load() != 100 || n != 1 {
		t.Fatalf("100 copies of one request: %d answered, %d holds; want 100 answers of one hold", sameOK.Load(), n)
	}
	// 1000 points, 100 held, 10 spent by the repeated request: 89 burns of 10.
	if ok.Load() != 89 || insufficient.Load() != 111 {
		t.Fatalf("%d burns succeeded and %d were refused, want 89 and 111", ok.Load(), insufficient.Load())
	}
	f.wantBalance(1, 100, 0)
}

// limitConns caps the test database's pool: the concurrency tests of several
// packages share one PostgreSQL, and a burn waits for one member's lock anyway.
func limitConns(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(n)
}
