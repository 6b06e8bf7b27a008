package points_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
)

// groupEarn is one single earn sent to the group commit.
type groupEarn struct {
	p    access.Principal
	key  string
	hash string // the request's body hash (the key when empty)
	in   points.EarnInput
}

type groupResult struct {
	tr  ledger.Transaction
	err error
}

// inOneBatch sends earns concurrently so that they are posted in one batch,
// without sleeping: a first earn (opener) is held in flight by the group
// commit's hook, the earns queue behind it, and the last of them fills the
// batch (MaxItems = len(earns)), which is posted while the opener is still
// held. It returns the earns' results in input order and the sizes of the
// batches posted.
func inOneBatch(t *testing.T, e *batchEnv, opener groupEarn, earns []groupEarn) []groupResult {
	t.Helper()
	e.tx.GroupCommit = points.GroupCommit{MaxItems: len(earns), Wait: time.Hour}
	started, release := make(chan struct{}), make(chan struct{})
	sizes := make(chan int, 100)
	first := true
	points.SetGroupCommitHook(e.tx, func(n int) {
		sizes <- n
		if first { // only the opener's batch runs before the others are sent
			first = false
			close(started)
			<-release
		}
	})
	send := func(g groupEarn) groupResult {
		h := g.hash
		if h == "" {
			h = g.key
		}
		tr, err := e.tx.Earn(context.Background(), g.p, ledger.Idempotency{Scope: fmt.Sprint("partner:", g.p.PartnerID),
			Key: g.key, RequestHash: []byte(h)}, g.in)
		return groupResult{tr, err}
	}
	openerDone := make(chan groupResult, 1)
	go func() { openerDone <- send(opener) }()
	<-started
	results := make([]chan groupResult, len(earns))
	for i, g := range earns {
		results[i] = make(chan groupResult, 1)
		go func() { results[i] <- send(g) }()
	}
	out := make([]groupResult, len(earns))
	for i := range earns {
		out[i] = <-results[i] // answered while the opener is still held: one batch
	}
	close(release)
	if r := <-openerDone; r.err != nil {
		t.Fatalf("opener: %v", r.err)
	}
	close(sizes)
	var got []int
	for n := range sizes {
		got = append(got, n)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != len(earns) {
		t.Fatalf("batch sizes %v; want the opener alone, then the %d earns in one batch", got, len(earns))
	}
	return out
}

// Concurrent single earns of several partners posted in one batch each get
// their own answer: an unknown member, a prepaid draw-down the balance
// cannot pay and a key reused with another body fail alone; the same request
// twice posts once and replays once.
func TestGroupCommitEachEarnItsOwnAnswer(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	ctx := context.Background()
	shop := e.partner(t, "Shop", nil)
	hotel := e.partner(t, "Hotel", nil)
	prepaid := e.partner(t, "Prepaid", func(c *partners.NewContract) { c.Billing = partners.BillingPrepaid })
	if _, err := e.reg.TopUp(ctx, prepaid.PartnerID, eur(150), "wire-1", "staff:x"); err != nil {
		t.Fatal(err)
	}
	in := func(member int64, minor int64) points.EarnInput {
		return points.EarnInput{MemberID: member, Amount: eur(minor), OccurredAt: time.Now()}
	}
	m := e.members
	earns := []groupEarn{
		{p: shop, key: "a", in: in(m[0], 1000)},
		{p: hotel, key: "b", in: in(m[1], 2000)},
		{p: shop, key: "unknown", in: in(999_999_999, 1000)},
		{p: prepaid, key: "p1", in: in(m[2], 10000)}, // 100 points: 1 EUR of the 1.50
		{p: prepaid, key: "p2", in: in(m[3], 10000)},
		{p: shop, key: "dup", in: in(m[4], 1000)},
		{p: shop, key: "dup", in: in(m[4], 1000)},
		{p: shop, key: "clash", hash: "body-1", in: in(m[5], 1000)},
		{p: shop, key: "clash", hash: "body-2", in: in(m[5], 3000)},
	}
	r := inOneBatch(t, e, groupEarn{p: shop, key: "opener", in: in(m[9], 1000)}, earns)

	if r[0].err != nil || r[0].tr.Points != 10 || r[0].tr.PartnerID != shop.PartnerID {
		t.Errorf("shop's earn: %+v %v; want 10 points at the shop", r[0].tr, r[0].err)
	}
	if r[1].err != nil || r[1].tr.Points != 20 || r[1].tr.PartnerID != hotel.PartnerID {
		t.Errorf("hotel's earn: %+v %v; want 20 points at the hotel", r[1].tr, r[1].err)
	}
	if !errors.Is(r[2].err, members.ErrNotFound) {
		t.Errorf("unknown member: %v; want members.ErrNotFound", r[2].err)
	}
	// Either prepaid earn may come first: one is posted, the other refused.
	okP, refusedP := 0, 0
	for _, x := range r[3:5] {
		switch {
		case x.err == nil && x.tr.Points == 100:
			okP++
		case errors.Is(x.err, partners.ErrPrepaidExhausted):
			refusedP++
		}
	}
	if okP != 1 || refusedP != 1 {
		t.Errorf("prepaid earns: %+v; want one posted, one refused with ErrPrepaidExhausted", r[3:5])
	}
	if r[5].err != nil || r[6].err != nil || r[5].tr.ID != r[6].tr.ID || r[5].tr.Replayed == r[6].tr.Replayed {
		t.Errorf("the same request twice: %+v %v / %+v %v; want one posted, one replaying it", r[5].tr, r[5].err, r[6].tr, r[6].err)
	}
	clashOK, clashRefused := 0, 0
	for _, x := range r[7:9] {
		switch {
		case x.err == nil && !x.tr.Replayed:
			clashOK++
		case errors.Is(x.err, ledger.ErrIdempotencyMismatch):
			clashRefused++
		}
	}
	if clashOK != 1 || clashRefused != 1 {
		t.Errorf("one key, two bodies: %+v; want one posted, one ErrIdempotencyMismatch", r[7:9])
	}
	var n int64
	if err := e.db.Raw(`SELECT count(*) FROM ledger_transactions WHERE type = 'earn'`).Scan(&n).Error; err != nil || n != 6 {
		t.Errorf("%d earns posted (%v); want 6: the opener, shop, hotel, one prepaid, dup once, clash once", n, err)
	}
	var balance int64
	if err := e.db.Raw(`SELECT balance FROM ledger_accounts WHERE kind = 'member' AND owner_id = ?`, m[4]).Scan(&balance).Error; err != nil || balance != 10 {
		t.Errorf("member of the duplicated request holds %d (%v); want 10, credited once", balance, err)
	}
	if b, err := e.reg.PrepaidBalance(ctx, prepaid.PartnerID); err != nil || b.Balance.Minor != 50 {
		t.Errorf("prepaid balance %+v (%v); want 50 (one earn of 1 EUR drawn)", b, err)
	}
}

// An earn that fails validation is answered before it reaches the group
// commit and never holds up or fails the others.
func TestGroupCommitInvalidEarnFailsAlone(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	shop := e.partner(t, "Shop", nil)
	before := e.tx.GroupCommitStats()
	_, err := e.tx.Earn(context.Background(), shop, ledger.Idempotency{Scope: "s", Key: "bad", RequestHash: []byte("bad")},
		points.EarnInput{MemberID: e.members[0], Amount: eur(0), OccurredAt: time.Now()})
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("earn of nothing: %v; want a validation error", err)
	}
	if after := e.tx.GroupCommitStats(); after.Earns != before.Earns {
		t.Fatalf("an invalid earn entered the group commit: %+v -> %+v", before, after)
	}
}

// An earn that arrives when nothing is in flight is posted at once, alone:
// the group commit's wait (an hour here) is never taken.
func TestGroupCommitNoWaitAlone(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	shop := e.partner(t, "Shop", nil)
	e.tx.GroupCommit = points.GroupCommit{MaxItems: 64, Wait: time.Hour}
	for i := 0; i < 3; i++ {
		before := e.tx.GroupCommitStats()
		k := fmt.Sprint("alone-", i)
		tr, err := e.tx.Earn(context.Background(), shop, ledger.Idempotency{Scope: "s", Key: k, RequestHash: []byte(k)},
			points.EarnInput{MemberID: e.members[i], Amount: eur(1000), OccurredAt: time.Now()})
		if err != nil || tr.Points != 10 {
			t.Fatalf("earn %d: %+v %v", i, tr, err)
		}
		after := e.tx.GroupCommitStats()
		if after.Alone != before.Alone+1 || after.Batches != before.Batches+1 || after.Earns != before.Earns+1 {
			t.Fatalf("earn %d: stats %+v -> %+v; want it posted at once, alone, in a batch of its own", i, before, after)
		}
	}
}

// When the database fails a batch as a whole, every earn of it is answered
// and posted again alone: the earn that caused the failure fails alone, the
// others are posted; when every attempt fails, every caller gets the error
// and nothing of the batch is committed.
func TestGroupCommitDatabaseFailure(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	shop := e.partner(t, "Shop", nil)
	m := e.members
	fake := &fakeProgramme{fail: m[1]}
	e.tx.Programme = fake
	in := func(member int64) points.EarnInput {
		return points.EarnInput{MemberID: member, Amount: eur(1000), OccurredAt: time.Now()}
	}
	before := e.tx.GroupCommitStats()
	r := inOneBatch(t, e, groupEarn{p: shop, key: "opener", in: in(m[9])},
		[]groupEarn{{p: shop, key: "x0", in: in(m[0])}, {p: shop, key: "x1", in: in(m[1])}, {p: shop, key: "x2", in: in(m[2])}})
	if r[0].err != nil || r[2].err != nil || r[1].err == nil {
		t.Fatalf("results %+v; want x0 and x2 posted, x1 failed", r)
	}
	if got := e.tx.GroupCommitStats().Retried - before.Retried; got != 3 {
		t.Errorf("%d earns posted again alone; want the batch's 3", got)
	}

	// Every attempt fails: all three callers answered, nothing committed.
	r = inOneBatch(t, e, groupEarn{p: shop, key: "opener-2", in: in(m[9])},
		[]groupEarn{{p: shop, key: "y0", in: in(m[1])}, {p: shop, key: "y1", in: in(m[1])}, {p: shop, key: "y2", in: in(m[1])}})
	for i, x := range r {
		if x.err == nil {
			t.Errorf("earn y%d: posted %+v; want the database's error", i, x.tr)
		}
	}
	var claimed, posted int64
	if err := e.db.Raw(`SELECT (SELECT count(*) FROM ledger_idempotency WHERE key IN ('x1', 'y0', 'y1', 'y2')),
		(SELECT count(*) FROM ledger_transactions WHERE member_id = ?)`, m[1]).Row().Scan(&claimed, &posted); err != nil {
		t.Fatal(err)
	}
	if claimed != 0 || posted != 0 {
		t.Fatalf("%d keys claimed and %d earns posted for the failing member; want none", claimed, posted)
	}
}
