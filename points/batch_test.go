package points_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

// batchEnv is the points API wired as cmd/hub wires it (with the
// programme), partners with the contract the test gives, and 10 members.
type batchEnv struct {
	db      *gorm.DB
	reg     *partners.Service
	tx      *points.Transactions
	members []int64
	stmts   *atomic.Int64
	start   time.Time
}

func newBatchEnv(t *testing.T) *batchEnv {
	t.Helper()
	// Counted at the driver: the batch statements bypass gorm
	// (database.Query), so gorm callbacks would not see them.
	db, stmts := testdb.NewCounting(t)
	start := time.Now().UTC()
	clock := func() time.Time { return start.Add(-time.Minute) }
	reg := partners.NewService(db, clock)
	if err := db.Exec(`INSERT INTO members (given_name, created_at, updated_at) SELECT 'B', now(), now() FROM generate_series(1, 10)`).Error; err != nil {
		t.Fatal(err)
	}
	var ids []int64
	if err := db.Raw(`SELECT id FROM members ORDER BY id`).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	l := ledger.NewService(db, time.Now)
	m := members.NewService(db, l, time.Now)
	c := members.NewBurnConsent(db, time.Now, members.DefaultConsentPolicy)
	tx := points.NewTransactions(db, l, m, c, reg, rules.NewService(db, time.Now), time.Now)
	tx.Programme = programme.NewService(db, l, m, c, time.Now)
	return &batchEnv{db: db, reg: reg, tx: tx, members: ids, stmts: stmts, start: start}
}

// partner creates an active partner with the contract (changed by edit) and
// a rule of 1 point per EUR.
func (e *batchEnv) partner(t *testing.T, name string, edit func(*partners.NewContract)) access.Principal {
	t.Helper()
	return e.partnerRule(t, name, edit, nil)
}

// partnerRule is partner with the rule's tier multipliers.
func (e *batchEnv) partnerRule(t *testing.T, name string, edit func(*partners.NewContract), tiers []rules.TierMultiplier) access.Principal {
	t.Helper()
	ctx := context.Background()
	p, err := e.reg.CreatePartner(ctx, partners.NewPartner{Name: name, Sector: partners.SectorRetail, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.SetPartnerStatus(ctx, p.ID, partners.StatusActive); err != nil {
		t.Fatal(err)
	}
	nc := partners.NewContract{EffectiveFrom: e.start, Earn: true, Burn: true,
		IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.007"),
		Currency: "EUR", Billing: partners.BillingPostpaid}
	if edit != nil {
		edit(&nc)
	}
	if _, err := e.reg.PublishContract(ctx, p.ID, nc, "test"); err != nil {
		t.Fatal(err)
	}
	rs := rules.NewService(e.db, func() time.Time { return e.start.Add(-time.Minute) })
	def := rules.RuleDefinition{Earn: []rules.EarnComponent{{
		Kind: rules.KindPerCurrencyUnit, Rate: decimal.NewFromInt(1), Currency: "EUR", PerMinor: 100}}}
	def.Multipliers.Tier = tiers
	if _, err := rs.PublishRule(ctx, p.ID, def, e.start, "test"); err != nil {
		t.Fatal(err)
	}
	return access.Principal{PartnerID: p.ID}
}

func eur(minor int64) money.Money { return money.Money{Minor: minor, Currency: "EUR"} }

// batchEarnScenario runs the same history on a fresh environment, posting
// the batch's earns with one EarnBatch or one Earn each, and returns each
// earn's answer (ids and posting times left out) and the members' balances.
func batchEarnScenario(t *testing.T, e *batchEnv, at time.Time, batch bool) []string {
	t.Helper()
	ctx := context.Background()
	p := e.partner(t, "Shop", func(c *partners.NewContract) {
		c.CapPerTransaction, c.CapPerMemberDay, c.PendingDays = 40, 100, 14
	})
	// Points expire 24 months after they are earned.
	if _, err := e.tx.Programme.(*programme.Service).SetPolicy(ctx, programme.Policy{Currency: "EUR",
		ExpiryMode: programme.ExpiryFixedLifetime, ExpiryMonths: 24, NoticeDays: 30, TransferMin: 1,
		TierWindow: programme.WindowRolling12Months, TierDowngrade: programme.DowngradeOneLevel}); err != nil {
		t.Fatal(err)
	}
	scope := fmt.Sprintf("partner:%d", p.PartnerID)
	idem := func(k string, in points.EarnInput) ledger.Idempotency {
		b, _ := json.Marshal(in)
		return ledger.Idempotency{Scope: scope, Key: k, RequestHash: []byte(k + string(b))}
	}
	m := e.members
	if err := e.db.Exec(`UPDATE members SET status = 'suspended' WHERE id = ?`, m[2]).Error; err != nil {
		t.Fatal(err)
	}
	in := func(member int64, minor int64) points.EarnInput {
		return points.EarnInput{MemberID: member, Amount: eur(minor), OccurredAt: at, ExternalRef: fmt.Sprint("ref-", minor)}
	}
	// Earned before the batch: 30 points of member 2's daily 100.
	before := in(m[1], 3000)
	if _, err := e.tx.Earn(ctx, p, idem("before", before), before); err != nil {
		t.Fatal(err)
	}
	withOutlet := in(m[3], 999)
	withOutlet.Outlet = "Shop 1"
	items := []points.BatchEarn{
		{Input: in(m[0], 1234)},   // 0: 12 points
		{Input: before},           // 1: replay of the earn before: not counted twice against the cap
		{Input: in(m[1], 100000)}, // 2: 1000 capped at 40 per transaction
		{Input: in(m[1], 5000)},   // 3: 40 (room 30)... capped by the day
		{Input: in(m[1], 5000)},   // 4: nothing left today
		{Input: in(m[0], 1234)},   // 5: the key of 0, the same body: replay
		{Input: in(m[0], 4321)},   // 6: the key of 0, another body: mismatch
		{Input: in(m[2], 1000)},   // 7: suspended member
		{Input: in(999999, 1000)}, // 8: unknown member
		{Input: in(m[0], 50)},     // 9: nothing to earn (half a euro)
		{Input: points.EarnInput{MemberID: m[0], Amount: eur(100)}}, // 10: no occurred_at
		{Input: withOutlet},    // 11
		{Input: in(m[0], 777)}, // 12
	}
	keys := []string{"k0", "before", "k2", "k3", "k4", "k0", "k0", "k7", "k8", "k9", "k10", "k11", "k12"}
	for i := range items {
		items[i].Idem = idem(keys[i], items[i].Input)
	}
	items[6].Idem.RequestHash = []byte("another body")
	outs := make([]points.BatchOutcome, len(items))
	if batch {
		res, err := e.tx.EarnBatch(ctx, p, items)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		copy(outs, res)
	} else {
		for i, it := range items {
			outs[i].Transaction, outs[i].Err = e.tx.Earn(ctx, p, it.Idem, it.Input)
		}
	}
	var lines []string
	for i, o := range outs {
		if o.Err != nil {
			lines = append(lines, fmt.Sprintf("%d: error %v", i, o.Err))
			continue
		}
		tr := o.Transaction
		tr.ID, tr.PostedAt = 0, time.Time{}
		for j := range tr.Entries {
			tr.Entries[j].AccountID = 0
		}
		for j := range tr.Consumptions {
			tr.Consumptions[j].LotID = 0
		}
		b, _ := json.Marshal(tr)
		lines = append(lines, fmt.Sprintf("%d: replayed=%v %s", i, tr.Replayed, b))
	}
	for _, id := range m[:4] {
		var lots []struct {
			Amount, Remaining      int64
			AvailableAt, ExpiresAt *time.Time
		}
		if err := e.db.Raw(`SELECT l.amount, l.remaining, l.available_at, l.expires_at FROM ledger_lots l
			JOIN ledger_accounts a ON a.id = l.account_id WHERE a.kind = 'member' AND a.owner_id = ? ORDER BY l.id`, id).
			Scan(&lots).Error; err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(lots)
		lines = append(lines, fmt.Sprintf("member #%d lots %s", id-m[0], b))
	}
	return lines
}

// A batch answers exactly what the same earns sent one by one in input
// order answer (the same transactions, details, lots, pending dates and
// errors), including caps per transaction and per day, replays and
// mismatches, inactive and unknown members and invalid input.
func TestEarnBatchEqualsSingleEarns(t *testing.T) {
	t.Parallel()
	one, two := newBatchEnv(t), newBatchEnv(t)
	at := time.Now().UTC()
	single := batchEarnScenario(t, one, at, false)
	batch := batchEarnScenario(t, two, at, true)
	if a, b := strings.Join(single, "\n"), strings.Join(batch, "\n"); a != b {
		t.Fatalf("batch differs from single earns:\nsingle:\n%s\n\nbatch:\n%s", a, b)
	}
	for i, want := range []string{
		0: `"points":12,`, 1: `replayed=true`, 2: `"points":40,`, 3: `"points":30,`, 4: `daily earn cap`,
		5: `replayed=true`, 6: `idempotency key reused`, 7: `is suspended`, 8: `member not found`,
		9: `earns no points`, 10: `occurred_at`, 11: `"outlet":"Shop 1"`,
	} {
		if !strings.Contains(batch[i], want) {
			t.Errorf("item %d: %s\nwant it to contain %s", i, batch[i], want)
		}
	}
	for _, l := range batch {
		t.Log(l)
	}
	for _, e := range []*batchEnv{one, two} {
		rep, err := ledger.Audit(context.Background(), e.db, programme.AuditQueries()...)
		if err != nil || !rep.OK() {
			t.Fatalf("audit: %v %+v", err, rep)
		}
	}
}

// Keys are per partner: two partners may use the same key, and a batch of
// one never replays the other's earn.
func TestEarnBatchKeysArePerPartner(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	ctx := context.Background()
	a, b := e.partner(t, "A", nil), e.partner(t, "B", nil)
	at := time.Now()
	var ids []int64
	for _, p := range []access.Principal{a, b, a} {
		in := points.EarnInput{MemberID: e.members[0], Amount: eur(1000), OccurredAt: at}
		out, err := e.tx.EarnBatch(ctx, p, []points.BatchEarn{{Idem: ledger.Idempotency{
			Scope: fmt.Sprintf("partner:%d", p.PartnerID), Key: "same", RequestHash: []byte("h")}, Input: in}})
		if err != nil || out[0].Err != nil {
			t.Fatalf("batch of partner %d: %v %+v", p.PartnerID, err, out)
		}
		if out[0].Transaction.PartnerID != p.PartnerID {
			t.Fatalf("partner %d got partner %d's transaction", p.PartnerID, out[0].Transaction.PartnerID)
		}
		ids = append(ids, out[0].Transaction.ID)
	}
	if ids[0] == ids[1] || ids[2] != ids[0] {
		t.Fatalf("transactions %v: want A's and B's distinct, A's again on A's replay", ids)
	}
}

// fakeProgramme records how the earn path calls the programme.
type fakeProgramme struct {
	batchTierCalls, credits atomic.Int64
	posted                  atomic.Int64
	tier                    string // every member's
	// fail, when set, fails the credits of earns including this member, as
	// a database error inside the batch's transaction would.
	fail int64
}

func (f *fakeProgramme) EarnExpiry(_ context.Context, occurred time.Time) (*time.Time, error) {
	at := occurred.AddDate(2, 0, 0)
	return &at, nil
}
func (f *fakeProgramme) Reversed(context.Context, *gorm.DB, ledger.Transaction) error { return nil }
func (f *fakeProgramme) MemberTiers(_ context.Context, ids []int64) (map[int64]string, error) {
	f.batchTierCalls.Add(1)
	out := map[int64]string{}
	for _, id := range ids {
		out[id] = f.tier
	}
	return out, nil
}
func (f *fakeProgramme) CreditEarns(_ context.Context, _ *gorm.DB, earns []points.PostedEarn) (points.EarnedRest, error) {
	for _, e := range earns {
		if f.fail != 0 && e.Transaction.MemberID == f.fail {
			return nil, errors.New("programme: connection lost")
		}
	}
	f.credits.Add(1)
	return func(_ context.Context, _ *gorm.DB, posted []points.PostedEarn) error {
		f.posted.Add(int64(len(posted)))
		return nil
	}, nil
}

// A batch of 200 earns costs the member check and the ledger's four
// statements; the programme is asked once for the tiers (only when the
// price depends on them) and told once of the new earns (not of replays).
func TestEarnBatchStatementsAndProgrammeCalls(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	ctx := context.Background()
	p := e.partner(t, "Shop", nil)
	real := e.tx.Programme
	fake := &fakeProgramme{}
	e.tx.Programme = fake
	batch := func(prefix string, n int) []points.BatchEarn {
		var items []points.BatchEarn
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("%s-%d", prefix, i)
			items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: "s", Key: k, RequestHash: []byte(k)},
				Input: points.EarnInput{MemberID: e.members[i%len(e.members)], Amount: eur(1000), OccurredAt: time.Now(), ExternalRef: k}})
		}
		return items
	}
	run := func(items []points.BatchEarn) int64 {
		t.Helper()
		e.stmts.Store(0)
		out, err := e.tx.EarnBatch(ctx, p, items)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if o.Err != nil {
				t.Fatalf("item %d: %v", i, o.Err)
			}
		}
		return e.stmts.Load()
	}
	run(batch("warm", 10)) // accounts created, configuration cached
	fake.posted.Store(0)
	items := batch("b", 200)
	n := run(items)
	t.Logf("a batch of 200 earns: %d statements, BEGIN and COMMIT included", n)
	if n > 5 {
		t.Errorf("a batch of 200 sent %d statements (BEGIN and COMMIT included), want at most 5 (run with BENCH_SQL=1 to list them)", n)
	}
	if n < 3 {
		t.Errorf("a batch of 200 counted %d statements: the counter does not see the batch's statements", n)
	}
	again := run(append(items[:100:100], batch("c", 100)...)) // half replays
	// The rule does not depend on tiers: no tier is read.
	if fake.batchTierCalls.Load() != 0 || fake.credits.Load() != 3 || fake.posted.Load() != 300 {
		t.Errorf("programme calls: tiers %d, credits %d with %d earns; want 0 3 300",
			fake.batchTierCalls.Load(), fake.credits.Load(), fake.posted.Load())
	}
	t.Logf("half replays: %d statements", again)

	// A rule with a tier multiplier: the tiers of the batch's members, once.
	gold := e.partnerRule(t, "Gold", nil, []rules.TierMultiplier{{Tier: "gold", Rate: decimal.NewFromInt(3)}})
	fake.tier = "gold"
	out, err := e.tx.EarnBatch(ctx, gold, batch("g", 20))
	if err != nil || out[0].Err != nil || out[0].Transaction.Points != 30 || fake.batchTierCalls.Load() != 1 {
		t.Fatalf("gold batch: %v %+v, %d tier reads; want 30 points (10 times 3), one tier read", err, out[0], fake.batchTierCalls.Load())
	}

	// The programme of cmd/hub.
	e.tx.Programme = real
	n = run(batch("r", 200))
	t.Logf("a batch of 200 earns with the programme service: %d statements", n)
}

// New earns of a partner with a webhook endpoint publish one event each;
// replays publish nothing.
func TestEarnBatchPublishesNewEarns(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	ctx := context.Background()
	p := e.partner(t, "Shop", nil)
	if _, _, err := newWebhooks(t, e.db).CreateEndpoint(ctx, p.PartnerID, "https://partner.example/hooks",
		[]string{webhooks.EventTransactionPosted}); err != nil {
		t.Fatal(err)
	}
	var items []points.BatchEarn
	for i := 0; i < 5; i++ {
		k := fmt.Sprint("k", i%4)
		items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: "s", Key: k, RequestHash: []byte(k)},
			Input: points.EarnInput{MemberID: e.members[i], Amount: eur(1000), OccurredAt: time.Now()}})
	}
	items[4].Input.MemberID = e.members[0] // the same request as item 0: a replay
	if _, err := e.tx.EarnBatch(ctx, p, items); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tx.EarnBatch(ctx, p, items); err != nil {
		t.Fatal(err)
	}
	if got := len(queuedDeliveries(t, e.db)); got != 4 {
		t.Fatalf("%d webhook deliveries queued, want 4 (one per new earn)", got)
	}
}

// A draw-down the prepaid balance cannot pay refuses its earn alone.
func TestEarnBatchPrepaid(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	ctx := context.Background()
	p := e.partner(t, "Prepaid", func(c *partners.NewContract) { c.Billing = partners.BillingPrepaid })
	if _, err := e.reg.TopUp(ctx, p.PartnerID, eur(150), "wire-1", "staff:x"); err != nil {
		t.Fatal(err)
	}
	var items []points.BatchEarn
	for i := 0; i < 2; i++ {
		k := fmt.Sprint("k", i)
		items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: "s", Key: k, RequestHash: []byte(k)},
			Input: points.EarnInput{MemberID: e.members[i], Amount: eur(10000), OccurredAt: time.Now()}}) // 100 points: 1 EUR
	}
	out, err := e.tx.EarnBatch(ctx, p, items)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Err != nil || !errors.Is(out[1].Err, partners.ErrPrepaidExhausted) {
		t.Fatalf("outcomes %+v; want the first posted, the second refused with ErrPrepaidExhausted", out)
	}
}

func newWebhooks(t *testing.T, db *gorm.DB) *webhooks.Service {
	t.Helper()
	box, err := access.NewSecretBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return webhooks.NewService(db, box, netguard.Policy{}, time.Now)
}

// queuedDeliveries returns the outbox rows of webhook deliveries waiting.
func queuedDeliveries(t *testing.T, db *gorm.DB) []int64 {
	t.Helper()
	var ids []int64
	if err := db.Raw(`SELECT id FROM outbox WHERE task_type = ? ORDER BY id`, webhooks.TypeDeliverWebhook).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}
