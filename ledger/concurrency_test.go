package ledger_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
)

func TestConcurrentBurnsNeverOverspend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 400)
	f.earn(1, 2, 600, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Hour * 24)) })
	var ok, insufficient atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.burn(1, 9, 10)
			switch {
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
	if ok.Load() != 100 || insufficient.Load() != 100 {
		t.Fatalf("%d burns succeeded and %d were refused, want exactly 100 and 100", ok.Load(), insufficient.Load())
	}
	f.wantBalance(1, 0, 0)
}

func TestConcurrentIdenticalRequestsMakeOneTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := key()
	req := ledger.EarnRequest{Idem: k, MemberID: 1, PartnerID: 1, Points: 25, OccurredAt: t0, ExternalRef: "pos-1"}
	ids := make(chan int64, 100)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := f.svc.Earn(f.ctx, req)
			if err != nil {
				t.Errorf("earn: %v", err)
				return
			}
			ids <- tx.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int64]int{}
	for id := range ids {
		seen[id]++
	}
	if len(seen) != 1 {
		t.Fatalf("100 identical requests answered with transactions %v, want one", seen)
	}
	var n int64
	f.db.Raw(`SELECT count(*) FROM ledger_transactions`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d transactions posted, want 1", n)
	}
	f.wantBalance(1, 25, 25)
}

func TestConcurrentCaptureAndVoidHaveOneWinner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	for round := 0; round < 10; round++ {
		h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 5,
			ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var capErr, voidErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, capErr = f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID})
		}()
		go func() {
			defer wg.Done()
			_, voidErr = f.svc.Void(f.ctx, ledger.VoidRequest{Idem: key(), HoldID: h.ID})
		}()
		wg.Wait()
		if (capErr == nil) == (voidErr == nil) {
			t.Fatalf("round %d: capture err %v, void err %v; want exactly one winner", round, capErr, voidErr)
		}
		loser := capErr
		if loser == nil {
			loser = voidErr
		}
		wantErr(t, loser, ledger.ErrHoldNotActive)
		got, _ := f.svc.GetHold(f.ctx, h.ID)
		if (capErr == nil && got.Status != ledger.HoldCaptured) || (voidErr == nil && got.Status != ledger.HoldVoided) {
			t.Fatalf("round %d: hold ended %s, not what the winner did", round, got.Status)
		}
	}
	if b := f.balance(1); b.Held != 0 || b.Total != b.Available {
		t.Fatalf("after all rounds %+v, want nothing held", b)
	}
}

// earnStorm runs earns from partners to members concurrently, with burns and
// transfers mixed in, and checks nothing deadlocks or breaks an invariant.
func earnStorm(t *testing.T, partners, members, workers, perWorker int) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	var total atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				n := w*perWorker + i
				partner := int64(n%partners + 1)
				member := int64((n*7)%members + 1)
				_, err := f.svc.Earn(f.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: fmt.Sprintf("partner:%d", partner),
					Key: fmt.Sprintf("e-%d", n)}, MemberID: member, PartnerID: partner, Points: 10, OperatorFunded: ledger.Points(n % 2)})
				if err != nil {
					errs <- fmt.Errorf("earn %d: %w", n, err)
					continue
				}
				total.Add(10 + int64(n%2))
				if n%5 == 0 {
					if _, err := f.burn(member, partner, 3); err != nil && !errors.Is(err, ledger.ErrInsufficientPoints) {
						errs <- fmt.Errorf("burn %d: %w", n, err)
					} else if err == nil {
						total.Add(-3)
					}
				}
				if n%7 == 0 {
					to := member%int64(members) + 1
					if to != member {
						_, err := f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: member, ToMember: to, Points: 2})
						if err != nil && !errors.Is(err, ledger.ErrInsufficientPoints) {
							errs <- fmt.Errorf("transfer %d: %w", n, err)
						}
					}
				}
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("concurrent earns did not finish in 2 minutes: deadlock or lock convoy")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var sum int64
	f.db.Raw(`SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE kind = 'member'`).Scan(&sum)
	if sum != total.Load() {
		t.Fatalf("members hold %d points, want %d", sum, total.Load())
	}
	// Audit runs in the fixture's cleanup.
}

func TestConcurrentEarnsManyPartnersToManyMembers(t *testing.T) {
	t.Parallel()
	earnStorm(t, 20, 50, 16, 25)
}

func TestConcurrentEarnsOnePartnerToManyMembers(t *testing.T) {
	t.Parallel()
	earnStorm(t, 1, 100, 16, 25)
}
