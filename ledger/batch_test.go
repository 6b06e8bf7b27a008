package ledger_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

// batchScenario runs the same history on f, posting the requests of the
// batch either with one EarnBatch or with one Earn each (in input order), and
// returns what each request answered, normalised so that the two runs
// compare (ids drawn in another order are left out).
func batchScenario(t *testing.T, f *fixture, batch bool) []string {
	t.Helper()
	// Member 1 owes 100 points of clawback debt.
	e := f.earn(1, 1, 100)
	f.mustBurn(1, 3, 100)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: e.ID, Reason: "refund"}); err != nil {
		t.Fatal(err)
	}
	// Keys used before the batch by single earns.
	single := ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: "before"}, MemberID: 3, PartnerID: 2, Points: 7,
		OccurredAt: t0, ExternalRef: "before"}
	if _, err := f.svc.Earn(f.ctx, single); err != nil {
		t.Fatal(err)
	}
	k := func(s string) ledger.Idempotency { return ledger.Idempotency{Scope: "test", Key: s} }
	exp := t0.AddDate(1, 0, 0)
	avail := t0.AddDate(0, 0, 14)
	mismatch := single
	mismatch.Points = 8
	reqs := []ledger.EarnRequest{
		// Repays 60 of partner 2's lot, then 40 of the operator's.
		{Idem: k("a"), MemberID: 1, PartnerID: 2, Points: 60, OperatorFunded: 50, OccurredAt: t0, ExternalRef: "a",
			Details: []byte(`{"rule": 1, "note": "<&>"}`), ExpiresAt: &exp},
		{Idem: k("b"), MemberID: 2, PartnerID: 2, Points: 10, OccurredAt: t0.Add(-time.Hour), AvailableAt: &avail},
		{Idem: k("c"), MemberID: 1, PartnerID: 1, Points: 30, OccurredAt: t0},
		// The same key and body as the first: a replay of it.
		{Idem: k("a"), MemberID: 1, PartnerID: 2, Points: 60, OperatorFunded: 50, OccurredAt: t0, ExternalRef: "a",
			Details: []byte(`{"rule": 1, "note": "<&>"}`), ExpiresAt: &exp},
		// The same key as the second with another body: a mismatch.
		{Idem: k("b"), MemberID: 2, PartnerID: 2, Points: 11, OccurredAt: t0.Add(-time.Hour)},
		single,   // a replay of the single earn before the batch
		mismatch, // its key with another body
		{Idem: k("bad"), MemberID: 4, PartnerID: 2, Points: 0}, // invalid
		// Invalid first, then valid under the same key: the valid one posts.
		{Idem: k("d"), MemberID: 0, PartnerID: 2, Points: 5},
		{Idem: k("d"), MemberID: 4, OperatorFunded: 5, OccurredAt: t0},
		{Idem: k("e"), MemberID: 2, PartnerID: 1, Points: 1, OccurredAt: t0},
	}
	type outcome struct {
		tr  ledger.Transaction
		err error
	}
	outs := make([]outcome, len(reqs))
	if batch {
		res, err := f.svc.EarnBatch(f.ctx, reqs)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		if len(res) != len(reqs) {
			t.Fatalf("%d outcomes for %d requests", len(res), len(reqs))
		}
		for i, r := range res {
			outs[i] = outcome{r.Transaction, r.Err}
		}
	} else {
		for i, r := range reqs {
			tr, err := f.svc.Earn(f.ctx, r)
			outs[i] = outcome{tr, err}
		}
	}
	var lines []string
	for i, o := range outs {
		if o.err != nil {
			var ve *validation.Error
			switch {
			case errors.As(o.err, &ve):
				lines = append(lines, fmt.Sprintf("%d: invalid %v", i, ve.Fields))
			case errors.Is(o.err, ledger.ErrIdempotencyMismatch):
				lines = append(lines, fmt.Sprintf("%d: mismatch", i))
			default:
				t.Fatalf("request %d: %v", i, o.err)
			}
			continue
		}
		tr := o.tr
		tr.ID = 0
		for j := range tr.Entries {
			tr.Entries[j].AccountID = 0
		}
		for j := range tr.Consumptions {
			tr.Consumptions[j].LotID = 0
		}
		lines = append(lines, fmt.Sprintf("%d: replayed=%v %s", i, tr.Replayed, mustJSON(t, tr)))
	}
	for m := int64(1); m <= 4; m++ {
		lines = append(lines, fmt.Sprintf("member %d: %+v", m, f.balance(m)))
		var lots []struct {
			IssuerPartnerID       *int64
			Amount, Remaining     int64
			EarnedAt, AvailableAt time.Time
			ExpiresAt             *time.Time
			Consumed              int64
		}
		if err := f.db.Raw(`SELECT l.issuer_partner_id, l.amount, l.remaining, l.earned_at, l.available_at, l.expires_at,
			(SELECT coalesce(sum(points), 0) FROM ledger_lot_consumptions c WHERE c.lot_id = l.id) AS consumed
			FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id WHERE a.kind = 'member' AND a.owner_id = ?
			ORDER BY l.id`, m).Scan(&lots).Error; err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("member %d lots: %s", m, mustJSON(t, lots)))
	}
	return lines
}

// A batch answers and writes exactly what the same requests sent one by one
// in input order answer and write: debt repayment across both lots, repeated
// members, a duplicate key inside the batch (replay of the first), a key
// reused with another body (mismatch), a replay and a mismatch of a key used
// by a single earn, invalid requests, pending and expiring points, details
// stored verbatim.
func TestEarnBatchEqualsSingleEarnsInOrder(t *testing.T) {
	t.Parallel()
	single := batchScenario(t, newFixture(t), false)
	f := newFixture(t)
	batch := batchScenario(t, f, true)
	if a, b := strings.Join(single, "\n"), strings.Join(batch, "\n"); a != b {
		t.Fatalf("batch differs from single earns:\nsingle:\n%s\n\nbatch:\n%s", a, b)
	}
	for _, l := range batch[:11] {
		t.Log(l)
	}
	var details string
	if err := f.db.Raw(`SELECT details::text FROM ledger_transactions WHERE idempotency_key = 'a'`).Scan(&details).Error; err != nil ||
		details != `{"rule": 1, "note": "<&>"}` {
		t.Fatalf("details stored as %q, %v; want them verbatim", details, err)
	}
}

// Keys posted by a batch replay as single earns and as a batch, with the
// transaction the batch answered; a batch sent twice posts nothing twice.
func TestEarnBatchReplays(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var reqs []ledger.EarnRequest
	for i := 0; i < 50; i++ {
		reqs = append(reqs, ledger.EarnRequest{Idem: key(), MemberID: int64(1 + i%7), PartnerID: int64(1 + i%3),
			Points: ledger.Points(10 + i), OperatorFunded: ledger.Points(i % 2), OccurredAt: t0, ExternalRef: fmt.Sprint(i)})
	}
	first, err := f.svc.EarnBatch(f.ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.EarnBatch(f.ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if first[i].Err != nil || first[i].Transaction.Replayed || !again[i].Transaction.Replayed {
			t.Fatalf("item %d: first %+v, again %+v", i, first[i], again[i])
		}
		single, err := f.svc.Earn(f.ctx, reqs[i])
		if err != nil || !single.Replayed {
			t.Fatalf("item %d as a single earn: %+v, %v", i, single, err)
		}
		a := first[i].Transaction
		for _, b := range []ledger.Transaction{again[i].Transaction, single} {
			b.Replayed = false
			if mustJSON(t, a) != mustJSON(t, b) {
				t.Fatalf("item %d replays differently:\n first %s\nreplay %s", i, mustJSON(t, a), mustJSON(t, b))
			}
		}
	}
	var n int64
	f.db.Raw(`SELECT count(*) FROM ledger_transactions`).Scan(&n)
	if n != 50 {
		t.Fatalf("%d transactions, want 50", n)
	}
	var want ledger.Points
	for _, r := range reqs {
		if r.MemberID == 1 {
			want += r.Points + r.OperatorFunded
		}
	}
	f.wantBalance(1, want, want)
}

// A batch composed into a caller's transaction (Joined) commits or rolls
// back with it.
func TestEarnBatchJoinedRollsBackWithCaller(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reqs := []ledger.EarnRequest{{Idem: key(), MemberID: 1, PartnerID: 1, Points: 10, OccurredAt: t0}}
	boom := errors.New("boom")
	err := f.db.Transaction(func(tx *gorm.DB) error {
		out, err := f.svc.Joined(tx).EarnBatch(f.ctx, reqs)
		if err != nil || out[0].Err != nil {
			t.Fatalf("batch: %v %+v", err, out)
		}
		return boom
	})
	wantErr(t, err, boom)
	out, err := f.svc.EarnBatch(f.ctx, reqs)
	if err != nil || out[0].Err != nil || out[0].Transaction.Replayed {
		t.Fatalf("after rollback the key posts afresh: %+v %v", out, err)
	}
	f.wantBalance(1, 10, 10)
}

// Concurrent batches over the same members (in different orders), with
// single earns and burns of those members in between, never deadlock and
// leave exact balances; a batch's statement count does not grow with its size.
func TestEarnBatchConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const members, batches, size = 20, 12, 100
	for m := int64(1); m <= members; m++ {
		f.earn(m, 1, 1000)
	}
	var stmts atomic.Int64
	count := func(*gorm.DB) { stmts.Add(1) }
	_ = f.db.Callback().Raw().After("gorm:raw").Register("test:count", count)
	_ = f.db.Callback().Row().After("gorm:row").Register("test:count", count)
	_ = f.db.Callback().Query().After("gorm:query").Register("test:count", count)
	var wg sync.WaitGroup
	errs := make(chan error, batches*2)
	for b := 0; b < batches; b++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			var reqs []ledger.EarnRequest
			for i := 0; i < size; i++ {
				m := int64(1 + (i*(b+1)+b)%members) // each batch visits the members in its own order
				reqs = append(reqs, ledger.EarnRequest{Idem: key(), MemberID: m, PartnerID: int64(1 + b%3), Points: 2,
					OccurredAt: t0})
			}
			out, err := f.svc.EarnBatch(f.ctx, reqs)
			if err != nil {
				errs <- err
				return
			}
			for _, o := range out {
				if o.Err != nil {
					errs <- o.Err
				}
			}
		}()
		go func() {
			defer wg.Done()
			m := int64(1 + b%members)
			if _, err := f.svc.Earn(f.ctx, ledger.EarnRequest{Idem: key(), MemberID: m, PartnerID: 2, Points: 3, OccurredAt: t0}); err != nil {
				errs <- err
			}
			if _, err := f.burn(m, 3, 1); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent batch: %v", err)
	}
	var total int64
	for m := int64(1); m <= members; m++ {
		total += int64(f.balance(m).Total)
	}
	if want := int64(members*1000 + batches*size*2 + batches*(3-1)); total != want {
		t.Fatalf("balances sum to %d, want %d", total, want)
	}
	// 4 statements per batch (accounts, claim, lock, write); single earns
	// and burns send their own.
	one := stmts.Load()
	stmts.Store(0)
	var reqs []ledger.EarnRequest
	for i := 0; i < 500; i++ {
		reqs = append(reqs, ledger.EarnRequest{Idem: key(), MemberID: int64(1 + i%members), PartnerID: 1, Points: 1, OccurredAt: t0})
	}
	if _, err := f.svc.EarnBatch(f.ctx, reqs); err != nil {
		t.Fatal(err)
	}
	if n := stmts.Load(); n > 4 {
		t.Fatalf("a batch of 500 sent %d statements (all concurrent work: %d), want 4", n, one)
	}
}

// TakenKeys names the keys that have a record in the scope.
func TestTakenKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 10, func(r *ledger.EarnRequest) { r.Idem = ledger.Idempotency{Scope: "s1", Key: "k\"1"} })
	f.earn(1, 1, 10, func(r *ledger.EarnRequest) { r.Idem = ledger.Idempotency{Scope: "s2", Key: "k2"} })
	got, err := f.svc.TakenKeys(f.ctx, "s1", []string{"k\"1", "k2", "k3"})
	if err != nil || len(got) != 1 || !got["k\"1"] {
		t.Fatalf("taken = %v, %v; want only k\"1", got, err)
	}
}
