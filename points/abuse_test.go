package points_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/points"
)

// abuseEarn posts one earn of amount minor (1 point per EUR 1) for member
// under key ref, with a card and an event code.
func (e *earnEnv) abuseEarn(t *testing.T, member int64, ref string, minor int64, card, event string) ledger.Transaction {
	t.Helper()
	tr, err := e.tx.Earn(context.Background(), e.p, ledger.Idempotency{Scope: "abuse", Key: ref, RequestHash: []byte(ref)},
		points.EarnInput{MemberID: member, Amount: money.Money{Minor: minor, Currency: "EUR"}, OccurredAt: time.Now(),
			ExternalRef: ref, Card: card, EventCode: event})
	if err != nil {
		t.Fatalf("earn %s: %v", ref, err)
	}
	return tr
}

func (e *earnEnv) setRules(t *testing.T, r abuse.Rules) *abuse.Service {
	t.Helper()
	svc := abuse.NewService(e.db, ledger.NewService(e.db, time.Now), time.Now)
	if _, err := svc.SetRules(context.Background(), e.p.PartnerID, r, "test"); err != nil {
		t.Fatal(err)
	}
	return svc
}

// heldRules lists the rule of each open flag of the partner, by transaction.
func heldRules(t *testing.T, svc *abuse.Service, partnerID int64) map[int64]string {
	t.Helper()
	fs, err := svc.Flags(context.Background(), abuse.Filter{PartnerID: partnerID, Status: abuse.StatusOpen, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, f := range fs {
		if f.TransactionID != nil {
			out[*f.TransactionID] = f.Rule
		}
	}
	return out
}

// TestAbuseRulesHoldEarns drives each earn rule through the real points API:
// the earns over the limit are posted but held (a flag names the rule), the
// others are not.
func TestAbuseRulesHoldEarns(t *testing.T) {
	t.Parallel()
	type earn struct {
		member int    // index into the env's members
		minor  int64  // EUR cents: 100 = 1 point
		card   string // identifier presented
		event  string
	}
	cases := []struct {
		name  string
		rules abuse.Rules
		earns []earn
		held  map[int]string // index of earn -> rule
	}{
		{"member earns per hour", abuse.Rules{MemberEarnsPerHour: 2},
			[]earn{{0, 100, "", ""}, {0, 100, "", ""}, {1, 100, "", ""}, {0, 100, "", ""}},
			map[int]string{3: "member_earns_per_hour"}},
		{"member points per day", abuse.Rules{MemberPointsPerDay: 500},
			[]earn{{0, 30000, "", ""}, {0, 20000, "", ""}, {0, 100, "", ""}, {1, 40000, "", ""}},
			map[int]string{2: "member_points_per_day"}},
		{"card earns per hour", abuse.Rules{CardEarnsPerHour: 1},
			[]earn{{0, 100, "CARD-1", ""}, {1, 100, "CARD-1", ""}, {1, 100, "CARD-2", ""}, {2, 100, "", ""}},
			map[int]string{1: "card_earns_per_hour"}},
		{"card points per day", abuse.Rules{CardPointsPerDay: 300},
			[]earn{{0, 20000, "CARD-1", ""}, {1, 20000, "CARD-1", ""}, {1, 20000, "CARD-2", ""}},
			map[int]string{1: "card_points_per_day"}},
		{"partner earns per hour", abuse.Rules{PartnerEarnsPerHour: 3},
			[]earn{{0, 100, "", ""}, {1, 100, "", ""}, {2, 100, "", ""}, {3, 100, "", ""}, {4, 100, "", ""}},
			map[int]string{3: "partner_earns_per_hour", 4: "partner_earns_per_hour"}},
		{"partner points per day", abuse.Rules{PartnerPointsPerDay: 250},
			[]earn{{0, 10000, "", ""}, {1, 10000, "", ""}, {2, 10000, "", ""}},
			map[int]string{2: "partner_points_per_day"}},
		{"action cap", abuse.Rules{ActionCaps: []abuse.ActionCap{{EventCode: "health_check", Max: 2, Period: abuse.PeriodMonth}}},
			[]earn{{0, 100, "", "health_check"}, {0, 100, "", "health_check"}, {0, 100, "", "vaccination"},
				{1, 100, "", "health_check"}, {0, 100, "", "health_check"}},
			map[int]string{4: "action_cap:health_check"}},
		{"no rules", abuse.Rules{}, []earn{{0, 100, "", ""}, {0, 100, "", ""}}, map[int]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEarnEnv(t, 5)
			svc := e.setRules(t, tc.rules)
			ids := make([]int64, len(tc.earns))
			for i, er := range tc.earns {
				ids[i] = e.abuseEarn(t, e.members[er.member], fmt.Sprintf("e%d", i), er.minor, er.card, er.event).ID
			}
			got := heldRules(t, svc, e.p.PartnerID)
			for i, id := range ids {
				if got[id] != tc.held[i] {
					t.Errorf("earn %d: held by %q, want %q", i, got[id], tc.held[i])
				}
			}
			if len(got) != len(tc.held) {
				t.Errorf("%d earns held, want %d", len(got), len(tc.held))
			}
		})
	}
}

// TestVelocityHoldsUnderConcurrency fires 40 concurrent earns at one member
// whose partner allows 5 an hour: exactly 5 are spendable and 35 are held,
// whatever the interleaving; a held earn's points cannot be spent until it
// is approved, and a rejected one is reversed.
func TestVelocityHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEarnEnv(t, 1)
	svc := e.setRules(t, abuse.Rules{MemberEarnsPerHour: 5})
	member := e.members[0]
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := fmt.Sprintf("c%d", i)
			_, err := e.tx.Earn(context.Background(), e.p, ledger.Idempotency{Scope: "abuse", Key: ref, RequestHash: []byte(ref)},
				points.EarnInput{MemberID: member, Amount: money.Money{Minor: 1000, Currency: "EUR"}, OccurredAt: time.Now(), ExternalRef: ref})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	held := heldRules(t, svc, e.p.PartnerID)
	if len(held) != n-5 {
		t.Fatalf("%d earns held, want exactly %d", len(held), n-5)
	}
	l := ledger.NewService(e.db, time.Now)
	ctx := context.Background()
	bal, err := l.Balance(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Available != 50 || bal.Pending != 350 {
		t.Fatalf("balance %+v: want 50 available (5 earns of 10) and 350 pending (held)", bal)
	}
	// A replay counts nothing and is not held again.
	e.abuseEarn(t, member, "c0", 1000, "", "")
	if again := heldRules(t, svc, e.p.PartnerID); len(again) != n-5 {
		t.Fatalf("replay changed the held earns: %d", len(again))
	}

	fs, err := svc.Flags(ctx, abuse.Filter{PartnerID: e.p.PartnerID, Status: abuse.StatusOpen})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tx.ReviewFlag(ctx, fs[0].ID, false, "operator:a", ""); err == nil {
		t.Fatal("a rejection without a note was accepted")
	}
	ok, err := e.tx.ReviewFlag(ctx, fs[0].ID, true, "operator:a", "known customer")
	if err != nil || ok.Status != abuse.StatusApproved || ok.ReviewedBy != "operator:a" {
		t.Fatalf("approve: %+v %v", ok, err)
	}
	if _, err := e.tx.ReviewFlag(ctx, fs[0].ID, false, "operator:a", "twice"); !errors.Is(err, abuse.ErrFlagReviewed) {
		t.Fatalf("second review: %v, want ErrFlagReviewed", err)
	}
	no, err := e.tx.ReviewFlag(ctx, fs[1].ID, false, "operator:a", "card sharing")
	if err != nil || no.Status != abuse.StatusRejected {
		t.Fatalf("reject: %+v %v", no, err)
	}
	if bal, err = l.Balance(ctx, member); err != nil {
		t.Fatal(err)
	}
	if bal.Available != 60 || bal.Pending != 330 || bal.Total != 390 {
		t.Fatalf("after review %+v: want 60 available, 330 pending, 390 in total", bal)
	}
	rep, err := ledger.Audit(ctx, e.db)
	if err != nil || !rep.OK() {
		t.Fatalf("audit: %v %+v", err, rep)
	}
}

// TestBurnVelocityUnderConcurrency fires 20 concurrent burns at one member
// whose partner allows 3 an hour: exactly 3 pass, 17 are refused with
// ErrVelocityLimit, and the refused ones wrote nothing.
func TestBurnVelocityUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 1, 1000)
	svc := abuse.NewService(e.db, e.ledger, time.Now)
	if _, err := svc.SetRules(context.Background(), e.p.PartnerID, abuse.Rules{MemberBurnsPerHour: 3}, "test"); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var passed, limited int
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.burn(e.key(), e.members[0], 10, burnPIN)
			mu.Lock()
			defer mu.Unlock()
			var le *abuse.LimitError
			switch {
			case err == nil:
				passed++
			case errors.As(err, &le) && errors.Is(err, abuse.ErrVelocityLimit) && le.RetryAfter() > 0:
				limited++
			default:
				t.Errorf("burn: %v", err)
			}
		}()
	}
	wg.Wait()
	if passed != 3 || limited != n-3 {
		t.Fatalf("%d burns passed and %d were limited; want exactly 3 and %d", passed, limited, n-3)
	}
	bal, err := e.ledger.Balance(context.Background(), e.members[0])
	if err != nil || bal.Total != 970 {
		t.Fatalf("balance %+v %v: want 970 (3 burns of 10)", bal, err)
	}
}

// TestEarnStatementCountWithRules: a partner with abuse rules pays one round
// trip more per batch (the counters), inside the posting transaction.
func TestEarnStatementCountWithRules(t *testing.T) {
	t.Parallel()
	e := newEarnEnv(t, 10)
	e.setRules(t, abuse.Rules{MemberEarnsPerHour: 100, RefundShare: decimal.RequireFromString("0.5")})
	e.earn(t, 0)
	e.earn(t, 1)
	e.stmts.Store(0)
	e.earn(t, 11)
	if got := e.stmts.Load(); got != 6 {
		t.Fatalf("one earn with abuse rules took %d round trips, want 6", got)
	}
}

// TestScanRefunds flags a member whose reversals exceed the partner's share
// of earns over 90 days; the member's next earn there is held, and a second
// scan flags nobody twice.
func TestScanRefunds(t *testing.T) {
	t.Parallel()
	e := newEarnEnv(t, 2)
	svc := e.setRules(t, abuse.Rules{RefundShare: decimal.RequireFromString("0.5"), RefundMinPoints: 10})
	ctx := context.Background()
	a := e.abuseEarn(t, e.members[0], "a1", 2000, "", "")
	e.abuseEarn(t, e.members[0], "a2", 1000, "", "")
	e.abuseEarn(t, e.members[1], "b1", 2000, "", "")
	if _, err := e.tx.Reverse(ctx, e.p, ledger.Idempotency{Scope: "abuse", Key: "r1", RequestHash: []byte("r1")}, a.ID, 0, "returned", ""); err != nil {
		t.Fatal(err)
	}
	for run, want := range []int{1, 0} {
		n, err := svc.ScanRefunds(ctx)
		if err != nil || n != want {
			t.Fatalf("scan %d: %d flags %v, want %d", run, n, err, want)
		}
	}
	fs, err := svc.Flags(ctx, abuse.Filter{PartnerID: e.p.PartnerID, Status: abuse.StatusOpen})
	if err != nil || len(fs) != 1 || fs[0].MemberID != e.members[0] || fs[0].Kind != abuse.KindMember {
		t.Fatalf("flags %+v %v: want one member flag for member 0", fs, err)
	}
	next := e.abuseEarn(t, e.members[0], "a3", 100, "", "")
	other := e.abuseEarn(t, e.members[1], "b2", 100, "", "")
	held := heldRules(t, svc, e.p.PartnerID)
	if held[next.ID] != "refund_pattern" || held[other.ID] != "" {
		t.Fatalf("held %v: want only member 0's new earn, by refund_pattern", held)
	}
}
