package points_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

const burnPIN = "4321"

// burnEnv is the points API wired as cmd/hub wires it, one partner with an
// earn-and-burn contract, and members funded with points and a PIN (hashed at
// bcrypt.MinCost, as the bench does).
type burnEnv struct {
	db      *gorm.DB
	tx      *points.Transactions
	ledger  *ledger.Service
	consent *members.BurnConsent
	p       access.Principal
	members []int64
	stmts   *atomic.Int64
	seq     atomic.Int64
}

func newBurnEnv(tb testing.TB, nMembers int, fund ledger.Points) *burnEnv {
	tb.Helper()
	f := newHotPathFixture(tb, "Till", nMembers)
	ctx := context.Background()
	db, p, ids, start := f.db, f.partner, f.members, f.start
	hash, err := bcrypt.GenerateFromPassword([]byte(burnPIN), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO member_pins (member_id, pin_hash, updated_at) SELECT id, ?, now() FROM members`, string(hash)).Error; err != nil {
		tb.Fatal(err)
	}
	l := ledger.NewService(db, time.Now)
	for i, m := range ids {
		if fund == 0 {
			break
		}
		if _, err := l.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "fund", Key: fmt.Sprint(i)}, MemberID: m,
			PartnerID: p.ID, Points: fund, OccurredAt: start.Add(-time.Hour)}); err != nil {
			tb.Fatal(err)
		}
	}
	m := members.NewService(db, l, time.Now)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	tx := points.NewTransactions(db, l, m, c, f.reg, rules.NewService(db, time.Now), time.Now)
	return &burnEnv{db: db, tx: tx, ledger: l, consent: c, p: access.Principal{PartnerID: p.ID}, members: ids,
		stmts: f.stmts}
}

func (e *burnEnv) key() ledger.Idempotency {
	k := fmt.Sprintf("burn-%d", e.seq.Add(1))
	return ledger.Idempotency{Scope: "partner:test", Key: k, RequestHash: []byte(k)}
}

func (e *burnEnv) burn(idem ledger.Idempotency, member int64, pts int64, pin string) (points.Burn, error) {
	return e.tx.Burn(context.Background(), e.p, idem, points.BurnInput{MemberID: member, Points: pts, PIN: pin,
		Capture: true, ExternalRef: "till-" + idem.Key, Outlet: "store 1"})
}

func (e *burnEnv) audit(tb testing.TB) {
	tb.Helper()
	rep, err := ledger.Audit(context.Background(), e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		var b strings.Builder
		rep.Write(&b)
		tb.Fatalf("audit: %v\n%s", err, b.String())
	}
}

// TestBurnStatementCount pins the SQL statements of one one-step burn
// (capture true, PIN consent), so that a change adding round trips to the
// hot path is seen.
func TestBurnStatementCount(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 3, 1000)
	if _, err := e.burn(e.key(), e.members[0], 5, burnPIN); err != nil { // the partner's first burn creates its account
		t.Fatal(err)
	}
	e.stmts.Store(0)
	if _, err := e.burn(e.key(), e.members[1], 5, burnPIN); err != nil {
		t.Fatal(err)
	}
	got := e.stmts.Load()
	t.Logf("one one-step burn: %d round trips (BEGIN and COMMIT included)", got)
	// 29 before the one-step ledger path; 6 with it and the cached
	// partner configuration: the member check (with the configuration
	// stamp), BEGIN, the key claim with the member's lock, the consent, the
	// posting, COMMIT; 5 once BEGIN travelled with the claim
	// (database.Transaction). Still 5 with the consent first: BEGIN, the
	// member's consent lock and the consent read travel in one round trip,
	// then the claim, the posting and COMMIT. Lower this when a change
	// removes round trips.
	const want = 5
	if got > want {
		t.Fatalf("one burn took %d round trips; want at most %d (run with BENCH_SQL=1 to list them)", got, want)
	}
	e.audit(t)
}

func viewJSON(tb testing.TB, b points.Burn) string {
	tb.Helper()
	v, err := json.Marshal(b.View())
	if err != nil {
		tb.Fatal(err)
	}
	return string(v)
}

// A one-step burn answers captured with its hold and transaction, reads back
// the same (GetBurn), replays the same under its key even after the PIN
// changed, refuses another body under the key, and reverses.
func TestOneStepBurnAnswersReplaysAndReverses(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 1, 1000)
	ctx := context.Background()
	m := e.members[0]
	k := e.key()
	b, err := e.burn(k, m, 120, burnPIN)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != "captured" || b.ID == 0 || b.CapturedPoints != 120 || b.Points != 120 || b.Transaction == nil || b.Replayed ||
		b.Transaction.Type != ledger.TypeCapture || b.Transaction.HoldID != b.ID || b.Transaction.BalanceAfter != 880 {
		t.Fatalf("burn = %+v (transaction %+v)", b, b.Transaction)
	}
	var row struct {
		Status               string
		CaptureTransactionID int64
		Captured             int64
	}
	if err := e.db.Raw(`SELECT status, capture_transaction_id, captured FROM ledger_holds WHERE id = ?`, b.ID).Scan(&row).Error; err != nil ||
		row.Status != "captured" || row.CaptureTransactionID != b.Transaction.ID || row.Captured != 120 {
		t.Fatalf("hold row = %+v %v", row, err)
	}
	got, err := e.tx.GetBurn(ctx, e.p, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, g := viewJSON(t, b), viewJSON(t, got); a != g {
		t.Fatalf("burn answered %s\nreads back %s", a, g)
	}
	if err := e.consent.SetPIN(ctx, m, "9999"); err != nil {
		t.Fatal(err)
	}
	again, err := e.burn(k, m, 120, burnPIN)
	if err != nil || !again.Replayed {
		t.Fatalf("replay after the PIN changed = %+v, %v", again, err)
	}
	if a, g := viewJSON(t, b), viewJSON(t, again); a != g {
		t.Fatalf("burn answered %s\nreplayed %s", a, g)
	}
	other := k
	other.RequestHash = []byte("another body")
	if _, err := e.burn(other, m, 121, "9999"); !errors.Is(err, ledger.ErrIdempotencyMismatch) {
		t.Fatalf("another body under the key: %v, want ErrIdempotencyMismatch", err)
	}
	rev, err := e.tx.Reverse(ctx, e.p, e.key(), b.Transaction.ID, 0, "refund", "")
	if err != nil || rev.BalanceAfter != 1000 {
		t.Fatalf("reverse the capture = %+v, %v", rev, err)
	}
	// Authorise only still answers an authorised hold.
	auth, err := e.tx.Burn(ctx, e.p, e.key(), points.BurnInput{MemberID: m, Points: 10, PIN: "9999"})
	if err != nil || auth.Status != "authorized" || auth.Transaction != nil {
		t.Fatalf("authorisation = %+v, %v", auth, err)
	}
	e.audit(t)
}

// Consent is checked first: a wrong PIN is refused as such (and counts)
// even when the burn could not be paid, so a card number alone learns
// nothing of the balance; the right PIN on a burn that cannot be paid is
// ErrInsufficientPoints and counts nothing; wrong PINs lock the member out.
func TestOneStepBurnConsent(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 1, 100)
	m := e.members[0]
	if _, err := e.burn(e.key(), m, 101, "0000"); !errors.Is(err, members.ErrConsentInvalid) {
		t.Fatalf("unpayable burn with a wrong PIN: %v, want ErrConsentInvalid", err)
	}
	if _, err := e.burn(e.key(), m, 101, burnPIN); !errors.Is(err, ledger.ErrInsufficientPoints) {
		t.Fatalf("unpayable burn with the right PIN: %v, want ErrInsufficientPoints", err)
	}
	for i := 1; i < members.DefaultConsentPolicy.MaxFailures; i++ {
		if _, err := e.burn(e.key(), m, 10, "0000"); !errors.Is(err, members.ErrConsentInvalid) {
			t.Fatalf("wrong PIN %d: %v, want ErrConsentInvalid", i, err)
		}
	}
	if _, err := e.burn(e.key(), m, 10, burnPIN); !errors.Is(err, members.ErrConsentLocked) {
		t.Fatalf("right PIN after %d failures: %v, want ErrConsentLocked", members.DefaultConsentPolicy.MaxFailures, err)
	}
	b, err := e.ledger.Balance(context.Background(), m)
	if err != nil || b.Total != 100 || b.Available != 100 {
		t.Fatalf("balance = %+v, %v; want nothing spent", b, err)
	}
	e.audit(t)
}

// A one-step burn publishes burn.captured to a partner with an endpoint
// (registered after its configuration was cached), and a replay publishes
// nothing.
func TestOneStepBurnPublishes(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 1, 100)
	ctx := context.Background()
	if _, err := e.burn(e.key(), e.members[0], 1, burnPIN); err != nil { // caches the configuration
		t.Fatal(err)
	}
	box, err := access.NewSecretBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := webhooks.NewService(e.db, box, netguard.Policy{}, time.Now).CreateEndpoint(ctx, e.p.PartnerID,
		"https://till.example/hooks", []string{"burn.captured"}); err != nil {
		t.Fatal(err)
	}
	k := e.key()
	b, err := e.burn(k, e.members[0], 2, burnPIN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.burn(k, e.members[0], 2, burnPIN); err != nil {
		t.Fatal(err)
	}
	var payloads []string
	if err := e.db.Raw(`SELECT payload::text FROM webhook_events WHERE partner_id = ? AND type = 'burn.captured'`, e.p.PartnerID).Scan(&payloads).Error; err != nil {
		t.Fatal(err)
	}
	if len(payloads) != 1 || !strings.Contains(payloads[0], fmt.Sprintf(`"id":%d`, b.ID)) {
		t.Fatalf("burn.captured events %v; want one, for burn %d", payloads, b.ID)
	}
}

// Concurrent one-step burns at one member through the points API never spend
// a point twice.
func TestConcurrentOneStepBurnsNeverOverspend(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 1, 300)
	// The packages' concurrency tests share one PostgreSQL; the burns queue
	// on one member's lock anyway.
	if sqlDB, err := e.db.DB(); err == nil {
		sqlDB.SetMaxOpenConns(10)
	}
	m := e.members[0]
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.burn(e.key(), m, 5, burnPIN)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ledger.ErrInsufficientPoints):
				refused.Add(1)
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
	if ok.Load() != 60 || refused.Load() != 40 {
		t.Fatalf("%d burns succeeded, %d refused; want 60 and 40", ok.Load(), refused.Load())
	}
	e.audit(t)
}

// BenchmarkBurn measures one-step burns (PIN at bcrypt.MinCost) end to end
// against the real database, in parallel over many members.
//
//	go test -run '^$' -bench BenchmarkBurn -benchtime 5s ./partners/
func BenchmarkBurn(b *testing.B) {
	e := newBurnEnv(b, 200, 1_000_000)
	var seq atomic.Int64
	e.stmts.Store(0)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := e.burn(e.key(), e.members[int(i)%len(e.members)], 3, burnPIN); err != nil {
				b.Errorf("burn %d: %v", i, err)
				return
			}
		}
	})
	b.ReportMetric(float64(e.stmts.Load())/float64(b.N), "stmts/op")
}

// A burn paid with a redemption code replays under its key with the same,
// now used, code, one-step and authorise-only alike, and the replays count
// no failure: a till retrying after a lost answer does not lock the member.
// A replay is answered even once the member is locked out.
func TestBurnReplayWithUsedCodeCountsNoFailure(t *testing.T) {
	t.Parallel()
	e := newBurnEnv(t, 1, 1000)
	ctx := context.Background()
	m := e.members[0]
	for _, capture := range []bool{true, false} {
		rc, err := e.consent.IssueCode(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		k := e.key()
		in := points.BurnInput{MemberID: m, Points: 10, RedemptionCode: rc.Code, Capture: capture, ExternalRef: "till-" + k.Key}
		first, err := e.tx.Burn(ctx, e.p, k, in)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < members.DefaultConsentPolicy.MaxFailures+1; i++ {
			again, err := e.tx.Burn(ctx, e.p, k, in)
			if err != nil || !again.Replayed || again.ID != first.ID {
				t.Fatalf("capture %v: replay %d = %+v, %v; want burn %d replayed", capture, i, again, err, first.ID)
			}
		}
	}
	var n int64
	if err := e.db.Raw(`SELECT count(*) FROM member_consent_failures`).Scan(&n).Error; err != nil || n != 0 {
		t.Fatalf("replays recorded %d consent failures (%v); want none", n, err)
	}
	// Locked out by wrong PINs since, the member's earlier burn still replays.
	rc, err := e.consent.IssueCode(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	k := e.key()
	in := points.BurnInput{MemberID: m, Points: 10, RedemptionCode: rc.Code, Capture: true}
	first, err := e.tx.Burn(ctx, e.p, k, in)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < members.DefaultConsentPolicy.MaxFailures; i++ {
		if _, err := e.burn(e.key(), m, 10, "0000"); !errors.Is(err, members.ErrConsentInvalid) {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	if _, err := e.burn(e.key(), m, 10, burnPIN); !errors.Is(err, members.ErrConsentLocked) {
		t.Fatalf("right PIN once locked: %v, want ErrConsentLocked", err)
	}
	if again, err := e.tx.Burn(ctx, e.p, k, in); err != nil || !again.Replayed || again.ID != first.ID {
		t.Fatalf("replay once locked = %+v, %v; want burn %d replayed", again, err, first.ID)
	}
	e.audit(t)
}
