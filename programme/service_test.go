package programme_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type env struct {
	t       *testing.T
	db      *gorm.DB
	clk     *clock
	ledger  *ledger.Service
	members *members.Service
	reg     *partners.Service
	rules   *rules.Service
	tx      *points.Transactions
	prog    *programme.Service
}

func newEnv(t *testing.T, start time.Time) *env {
	t.Helper()
	return newEnvOn(t, testdb.New(t), start)
}

// newEnvOn is newEnv on a database the test opened (testdb.NewCounting).
func newEnvOn(t *testing.T, db *gorm.DB, start time.Time) *env {
	t.Helper()
	clk := &clock{t: start}
	l := ledger.NewService(db, clk.Now)
	m := members.NewService(db, l, clk.Now)
	c := members.NewBurnConsent(db, clk.Now, members.DefaultConsentPolicy)
	reg := partners.NewService(db, clk.Now)
	r := rules.NewService(db, clk.Now)
	tx := points.NewTransactions(db, l, m, c, reg, r, clk.Now)
	p := programme.NewService(db, l, m, c, clk.Now)
	tx.Programme = p
	return &env{t: t, db: db, clk: clk, ledger: l, members: m, reg: reg, rules: r, tx: tx, prog: p}
}

func (e *env) audit() {
	e.t.Helper()
	rep, err := ledger.Audit(context.Background(), e.db, programme.AuditQueries()...)
	if err != nil {
		e.t.Fatalf("audit: %v", err)
	}
	if !rep.OK() {
		e.t.Fatalf("ledger audit failed: %+v", rep)
	}
}

// putTiers defines the tiers, in order.
func (e *env) putTiers(tiers []programme.Tier) {
	e.t.Helper()
	for _, tier := range tiers {
		if _, err := e.prog.PutTier(context.Background(), tier); err != nil {
			e.t.Fatalf("put tier %s: %v", tier.Code, err)
		}
	}
}

func (e *env) member(email, birth string) members.Member {
	e.t.Helper()
	m, _, err := e.members.Enrol(context.Background(), members.EnrolRequest{
		Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile:    members.Profile{GivenName: "Test", FamilyName: "Member", BirthDate: birth}, Actor: "test"})
	if err != nil {
		e.t.Fatalf("enrol %s: %v", email, err)
	}
	return m
}

// partner creates an earn-and-burn partner paying 1 point per EUR, no pending days.
func (e *env) partner(name string) partners.Partner {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.reg.CreatePartner(ctx, partners.NewPartner{Name: name, Sector: partners.SectorAirline, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		e.t.Fatalf("create partner: %v", err)
	}
	from := e.clk.Now()
	if _, err := e.reg.PublishContract(ctx, p.ID, partners.NewContract{EffectiveFrom: from, Earn: true, Burn: true,
		IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.008"),
		Currency: "EUR", Billing: partners.BillingPostpaid}, "test"); err != nil {
		e.t.Fatalf("publish contract: %v", err)
	}
	def := rules.RuleDefinition{Description: "1 point per EUR",
		Earn:        []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Rate: decimal.RequireFromString("1"), Currency: "EUR", PerMinor: 100}},
		Multipliers: rules.Multipliers{Tier: []rules.TierMultiplier{{Tier: "gold", Rate: decimal.RequireFromString("2")}}}}
	if _, err := e.rules.PublishRule(ctx, p.ID, def, from, "test"); err != nil {
		e.t.Fatalf("publish rule: %v", err)
	}
	return p
}

func (e *env) setPolicy(change func(*programme.Policy)) {
	e.t.Helper()
	p, err := e.prog.Policy(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	change(&p)
	if _, err := e.prog.SetPolicy(context.Background(), p); err != nil {
		e.t.Fatalf("set policy: %v", err)
	}
}

func (e *env) earnDirect(memberID int64, points int64, key string) ledger.Transaction {
	e.t.Helper()
	ctx := context.Background()
	exp, err := e.prog.EarnExpiry(ctx, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	tr, err := e.ledger.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: key}, MemberID: memberID,
		OperatorFunded: ledger.Points(points), ExpiresAt: exp})
	if err != nil {
		e.t.Fatalf("earn: %v", err)
	}
	return tr
}

func (e *env) balance(memberID int64) ledger.Balance {
	e.t.Helper()
	b, err := e.ledger.Balance(context.Background(), memberID)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func date(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func TestFixedLifetimeExpiryAcrossMonthAndYear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 11, 30, 10))
	e.setPolicy(func(p *programme.Policy) { p.ExpiryMode, p.ExpiryMonths = programme.ExpiryFixedLifetime, 1 })
	m := e.member("exp@example.com", "")
	e.earnDirect(m.ID, 100, "a") // expires 2025-12-30 10:00
	e.clk.Set(date(2025, 12, 15, 10))
	e.earnDirect(m.ID, 40, "b") // expires 2026-01-15 10:00

	e.clk.Set(date(2025, 12, 20, 1))
	for run := 0; run < 2; run++ {
		rep, err := e.prog.RunExpiry(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantNotices := 2
		if run == 1 {
			wantNotices = 0
		}
		if rep.Notices != wantNotices || rep.ExpiredPoints != 0 {
			t.Fatalf("run %d on 20 Dec: %+v, want %d notices and nothing expired", run, rep, wantNotices)
		}
	}
	ns, err := e.prog.Notices(ctx, m.ID)
	if err != nil || len(ns) != 2 || ns[0].Points != 100 || ns[1].Points != 40 {
		t.Fatalf("notices = %+v (%v), want 100 on 30 Dec and 40 on 15 Jan", ns, err)
	}

	// Month boundary passed: the first lot only; a re-run expires nothing more.
	e.clk.Set(date(2025, 12, 31, 1))
	for run, want := range []ledger.Points{100, 0} {
		rep, err := e.prog.RunExpiry(ctx, 1)
		if err != nil || rep.ExpiredPoints != want {
			t.Fatalf("run %d on 31 Dec: %+v (%v), want %d expired", run, rep, err, want)
		}
	}
	if b := e.balance(m.ID); b.Total != 40 {
		t.Fatalf("balance after first expiry = %d, want 40", b.Total)
	}
	// Year boundary passed.
	e.clk.Set(date(2026, 1, 16, 1))
	for run, want := range []ledger.Points{40, 0} {
		rep, err := e.prog.RunExpiry(ctx, 500)
		if err != nil || rep.ExpiredPoints != want {
			t.Fatalf("run %d on 16 Jan: %+v (%v), want %d expired", run, rep, err, want)
		}
	}
	if b := e.balance(m.ID); b.Total != 0 {
		t.Fatalf("balance after year end = %d, want 0", b.Total)
	}
	e.audit()
}

func TestEndOfYearExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2024, 3, 1, 10))
	e.setPolicy(func(p *programme.Policy) { p.ExpiryMode, p.ExpiryYears = programme.ExpiryEndOfYear, 2 })
	m := e.member("eoy@example.com", "")
	e.earnDirect(m.ID, 70, "2024") // expires 2026-01-01
	e.clk.Set(date(2025, 6, 1, 10))
	e.earnDirect(m.ID, 30, "2025") // expires 2027-01-01
	e.clk.Set(date(2025, 12, 31, 23))
	if rep, _ := e.prog.RunExpiry(ctx, 10); rep.ExpiredPoints != 0 {
		t.Fatalf("expired %d on 31 Dec, want 0", rep.ExpiredPoints)
	}
	e.clk.Set(date(2026, 1, 1, 0))
	for run, want := range []ledger.Points{70, 0} {
		if rep, err := e.prog.RunExpiry(ctx, 10); err != nil || rep.ExpiredPoints != want {
			t.Fatalf("run %d on 1 Jan: %+v (%v), want %d", run, rep, err, want)
		}
	}
	if b := e.balance(m.ID); b.Total != 30 {
		t.Fatalf("balance = %d, want 30", b.Total)
	}
	e.audit()
}

func TestInactivityExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 1, 31, 12))
	e.setPolicy(func(p *programme.Policy) { p.ExpiryMode, p.ExpiryMonths = programme.ExpiryInactivity, 12 })
	idle := e.member("idle@example.com", "")
	busy := e.member("busy@example.com", "")
	e.earnDirect(idle.ID, 500, "idle")
	e.earnDirect(busy.ID, 500, "busy")
	e.clk.Set(date(2025, 12, 15, 12))
	e.earnDirect(busy.ID, 10, "busy-again")
	// Within 30 days of the deadline: a notice, nothing expired.
	e.clk.Set(date(2026, 1, 10, 12))
	rep, err := e.prog.RunExpiry(ctx, 1)
	if err != nil || rep.Notices != 1 || rep.Inactive != 0 {
		t.Fatalf("10 Jan: %+v (%v), want one notice", rep, err)
	}
	e.clk.Set(date(2026, 2, 1, 12))
	for run, want := range []int{1, 0} {
		rep, err := e.prog.RunExpiry(ctx, 1)
		if err != nil || rep.Inactive != want {
			t.Fatalf("run %d on 1 Feb: %+v (%v), want %d inactive", run, rep, err, want)
		}
	}
	if b := e.balance(idle.ID); b.Total != 0 {
		t.Errorf("idle member keeps %d points, want 0", b.Total)
	}
	if b := e.balance(busy.ID); b.Total != 510 {
		t.Errorf("busy member has %d points, want 510", b.Total)
	}
	e.audit()
}

func TestBirthdayBonusOncePerYear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 2, 28, 6))
	e.setPolicy(func(p *programme.Policy) { p.BirthdayPoints = 250 })
	leapling := e.member("leap@example.com", "1992-02-29")
	other := e.member("other@example.com", "1990-07-01")
	for run, want := range []int{1, 0} {
		n, err := e.prog.RunBirthdays(ctx)
		if err != nil || n != want {
			t.Fatalf("run %d: %d credited (%v), want %d", run, n, err, want)
		}
	}
	e.clk.Set(date(2025, 3, 1, 6)) // still within the look-back: no second bonus
	if n, err := e.prog.RunBirthdays(ctx); err != nil || n != 0 {
		t.Fatalf("next day: %d credited (%v), want 0", n, err)
	}
	if b := e.balance(leapling.ID); b.Total != 250 {
		t.Errorf("leapling balance = %d, want 250", b.Total)
	}
	if b := e.balance(other.ID); b.Total != 0 {
		t.Errorf("other balance = %d, want 0", b.Total)
	}
	e.clk.Set(date(2026, 2, 28, 6))
	if n, _ := e.prog.RunBirthdays(ctx); n != 1 {
		t.Errorf("next year: %d credited, want 1", n)
	}
	e.audit()
}

func TestTransferWithLimitsAndFee(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 5, 31, 10))
	e.setPolicy(func(p *programme.Policy) {
		p.TransferDaily, p.TransferMonthly, p.TransferFeeFixed = 500, 800, 5
		p.TransferFeeRate = decimal.RequireFromString("0.01")
	})
	a, b := e.member("a@example.com", ""), e.member("b@example.com", "")
	e.earnDirect(a.ID, 2000, "seed")
	idem := func(k string) ledger.Idempotency { return ledger.Idempotency{Scope: "member:1", Key: k} }
	tr, err := e.prog.Transfer(ctx, idem("t1"), a.ID, b.CardNumber, 400)
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if again, err := e.prog.Transfer(ctx, idem("t1"), a.ID, b.CardNumber, 400); err != nil || again.ID != tr.ID {
		t.Fatalf("replay = %d (%v), want %d", again.ID, err, tr.ID)
	}
	if _, err := e.prog.Transfer(ctx, idem("t2"), a.ID, b.CardNumber, 101); !errors.Is(err, ledger.ErrTransferLimit) {
		t.Fatalf("over the daily limit: %v, want ErrTransferLimit", err)
	}
	e.clk.Set(date(2025, 6, 1, 10)) // new day and new month
	if _, err := e.prog.Transfer(ctx, idem("t3"), a.ID, b.CardNumber, 500); err != nil {
		t.Fatalf("next month: %v", err)
	}
	if got, want := e.balance(a.ID).Total, ledger.Points(2000-400-9-500-10); got != want {
		t.Errorf("sender balance = %d, want %d (fees 9 and 10)", got, want)
	}
	if got := e.balance(b.ID).Total; got != 900 {
		t.Errorf("recipient balance = %d, want 900", got)
	}
	e.setPolicy(func(p *programme.Policy) { p.TransfersEnabled = false })
	if _, err := e.prog.Transfer(ctx, idem("t4"), a.ID, b.CardNumber, 10); !errors.Is(err, programme.ErrTransfersDisabled) {
		t.Errorf("disabled: %v, want ErrTransfersDisabled", err)
	}
	e.audit()
}

// One purchase by an employee at a corporate partner credits the employee
// (rule points) and the company (its level's share of the spend) exactly
// once, even when the partner retries; a reversal takes both back, and the
// qualifying credits with them.
func TestDualAccrualAndTiers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 4, 10, 9))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "gold", Name: "Gold", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricFlights: 10, programme.MetricSpend: 500_000},
			Entitlements: []programme.Entitlement{{Code: "lounge", Value: "unlimited"}}},
	})
	for _, l := range []programme.CompanyLevel{
		{Code: "base", Name: "Up to 3M", MinSpendMinor: 0, Rate: decimal.RequireFromString("0.05")},
		{Code: "mid", Name: "3M to 5M", MinSpendMinor: 300_000_000, Rate: decimal.RequireFromString("0.06")},
		{Code: "top", Name: "Over 5M", MinSpendMinor: 500_000_001, Rate: decimal.RequireFromString("0.07")},
	} {
		if _, err := e.prog.PutCompanyLevel(ctx, l); err != nil {
			t.Fatalf("put level: %v", err)
		}
	}
	air := e.partner("Air")
	if err := e.prog.AddCorporatePartner(ctx, air.ID); err != nil {
		t.Fatal(err)
	}
	co, err := e.prog.CreateCompany(ctx, "Acme Travel", "travel@acme.example")
	if err != nil {
		t.Fatalf("create company: %v", err)
	}
	emp := e.member("emp@example.com", "")
	if err := e.prog.AddEmployee(ctx, co.ID, emp.ID, true); err != nil {
		t.Fatal(err)
	}
	in := points.EarnInput{MemberID: emp.ID, Amount: money.Money{Minor: 600_000, Currency: "EUR"},
		Activity: []rules.Activity{{Unit: "segment", Quantity: 2}}, OccurredAt: e.clk.Now(), ExternalRef: "PNR1"}
	// As the web layer does: the hash of the request body identifies the request.
	idem := ledger.Idempotency{Scope: "partner:" + itoa(air.ID), Key: "ticket-1", RequestHash: []byte("body of ticket-1")}
	pr := access.Principal{PartnerID: air.ID}
	tr, err := e.tx.Earn(ctx, pr, idem, in)
	if err != nil {
		t.Fatalf("earn: %v", err)
	}
	if _, err := e.tx.Earn(ctx, pr, idem, in); err != nil { // the partner retries
		t.Fatalf("replayed earn: %v", err)
	}
	if got := e.balance(emp.ID).Total; got != 6000 {
		t.Errorf("employee balance = %d, want 6000 (1 point per EUR)", got)
	}
	if got := e.balance(co.AccountMemberID).Total; got != 300 {
		t.Errorf("company balance = %d, want 300 (5%% of 6000 EUR)", got)
	}
	var credits int64
	e.db.Raw(`SELECT count(*) FROM programme_company_credits`).Scan(&credits)
	if credits != 1 {
		t.Errorf("%d company credits, want exactly 1", credits)
	}
	st, err := e.prog.Status(ctx, emp.ID)
	if err != nil || st.Tier != "gold" || len(st.Entitlements) != 1 || st.Credits[programme.MetricFlights] != 2 {
		t.Fatalf("status = %+v (%v), want gold by spend with 2 flights", st, err)
	}
	// Gold doubles the next earn through the earn rule's tier multiplier.
	in2 := in
	in2.ExternalRef, in2.Amount.Minor = "PNR2", 10_000
	tr2, err := e.tx.Earn(ctx, pr, ledger.Idempotency{Scope: idem.Scope, Key: "ticket-2"}, in2)
	if err != nil || tr2.Points != 200 {
		t.Fatalf("gold earn = %d points (%v), want 200", tr2.Points, err)
	}
	// The first ticket is refunded: employee, company and qualifying credits go back.
	if _, err := e.tx.Reverse(ctx, pr, ledger.Idempotency{Scope: idem.Scope, Key: "refund-1"}, tr.ID, 0, "refund", "PNR1"); err != nil {
		t.Fatalf("reverse: %v", err)
	}
	if got := e.balance(co.AccountMemberID).Total; got != 5 {
		t.Errorf("company balance after refund = %d, want 5 (5%% of the second ticket's 100 EUR)", got)
	}
	st, _ = e.prog.Status(ctx, emp.ID)
	if st.Credits[programme.MetricSpend] != 10_000 || st.Credits[programme.MetricFlights] != 2 || st.Tier != "gold" {
		t.Errorf("after refund: %+v, want spend 10000, 2 flights, still gold until the review", st)
	}
	// The yearly review (calendar window 2025 had only the second ticket) downgrades.
	e.setPolicy(func(p *programme.Policy) { p.TierWindow = programme.WindowCalendarYear })
	for run, want := range []int{1, 0} {
		if n, err := e.prog.ReviewTiers(ctx, date(2026, 1, 1, 2), 10); err != nil || n != want {
			t.Fatalf("review run %d: %d changed (%v), want %d", run, n, err, want)
		}
	}
	if tier, _ := e.prog.MemberTier(ctx, emp.ID); tier != "blue" {
		t.Errorf("after review tier = %q, want blue", tier)
	}
	// A designated employee gets a code for the company account.
	if c, code, err := e.prog.IssueCompanyCode(ctx, emp.ID); err != nil || c.ID != co.ID || code.Code == "" {
		t.Errorf("company code = %v %v (%v)", c, code, err)
	}
	e.audit()
}

// A company's email that already belongs to a member must not hand that
// member's account to the company (enrolment is idempotent by identifier).
func TestCreateCompanyRefusesAMembersEmail(t *testing.T) {
	t.Parallel()
	env := newEnv(t, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	ctx := context.Background()
	if _, err := env.prog.PutCompanyLevel(ctx, programme.CompanyLevel{Code: "base", Name: "Base", Rate: decimal.RequireFromString("0.05")}); err != nil {
		t.Fatal(err)
	}
	_, _, err := env.members.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: "ana@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.prog.CreateCompany(ctx, "Acme", "ana@example.com"); !errors.Is(err, members.ErrIdentifierTaken) {
		t.Fatalf("company with a member's email: got %v, want ErrIdentifierTaken", err)
	}
	if _, err := env.prog.CreateCompany(ctx, "Acme", "travel@acme.example"); err != nil {
		t.Fatalf("company with its own email: %v", err)
	}
	if _, err := env.prog.CompanyLevel(ctx, "nope"); !errors.Is(err, programme.ErrUnknownCompanyLevel) {
		t.Fatalf("unknown level: got %v", err)
	}
}

// newFlightTiers is an environment with tiers blue and gold (10 flights) and
// a partner "Air" whose rule doubles gold members' points: its principal and
// idempotency scope.
func newFlightTiers(t *testing.T) (*env, access.Principal, string) {
	t.Helper()
	e := newEnv(t, date(2025, 4, 10, 9))
	e.putTiers([]programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "gold", Name: "Gold", Rank: 1, Thresholds: map[programme.Metric]int64{programme.MetricFlights: 10}},
	})
	air := e.partner("Air")
	return e, access.Principal{PartnerID: air.ID}, "partner:" + itoa(air.ID)
}

// A batch prices each earn with its member's stored tier, read in the batch's
// member check (as a single earn reads it): a gold member's earn is doubled
// by the rule's tier multiplier, a blue member's and a member with no tier
// row yet earn the base rate.
func TestBatchEarnPricesByStoredTier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, pr, scope := newFlightTiers(t)
	gold, blue, fresh := e.member("gold@example.com", ""), e.member("blue@example.com", ""), e.member("new@example.com", "")
	for _, m := range []struct {
		id      int64
		flights int64
	}{{gold.ID, 10}, {blue.ID, 1}} {
		in := points.EarnInput{MemberID: m.id, Amount: money.Money{Minor: 1_000, Currency: "EUR"},
			Activity: []rules.Activity{{Unit: "segment", Quantity: m.flights}}, OccurredAt: e.clk.Now(), ExternalRef: "qualify"}
		if _, err := e.tx.Earn(ctx, pr, ledger.Idempotency{Scope: scope, Key: "qualify-" + itoa(m.id)}, in); err != nil {
			t.Fatalf("qualifying earn: %v", err)
		}
	}
	if st, err := e.prog.Status(ctx, gold.ID); err != nil || st.Tier != "gold" {
		t.Fatalf("status = %+v (%v), want gold", st, err)
	}
	var items []points.BatchEarn
	for i, id := range []int64{gold.ID, blue.ID, fresh.ID} {
		items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: scope, Key: "batch-" + itoa(int64(i)), RequestHash: []byte{byte(i)}},
			Input: points.EarnInput{MemberID: id, Amount: money.Money{Minor: 10_000, Currency: "EUR"}, OccurredAt: e.clk.Now(), ExternalRef: "b"}})
	}
	out, err := e.tx.EarnBatch(ctx, pr, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []ledger.Points{200, 100, 100} {
		if out[i].Err != nil || out[i].Transaction.Points != want {
			t.Errorf("item %d: %d points (%v), want %d", i, out[i].Transaction.Points, out[i].Err, want)
		}
	}
}

// Earns write their running totals in lane 1 before the ledger locks their
// members (migration 00242), and SyncWindows folds them into lane 0: both
// lanes count toward the tier; single earns (gathered by the group commit)
// and batches of one partner for the same members, all at once, neither
// deadlock nor fail; the lanes sum to the credits, and SyncWindows folds them
// without calling that drift.
func TestBatchAndSingleEarnsShareRunningTotals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, pr, scope := newFlightTiers(t)
	flights := func(n int64, ref string) points.EarnInput {
		return points.EarnInput{Amount: money.Money{Minor: 1_000, Currency: "EUR"}, OccurredAt: e.clk.Now(),
			Activity: []rules.Activity{{Unit: "segment", Quantity: n}}, ExternalRef: ref}
	}
	m := e.member("lanes@example.com", "")
	in := flights(6, "single")
	in.MemberID = m.ID
	if _, err := e.tx.Earn(ctx, pr, ledger.Idempotency{Scope: scope, Key: "single-6"}, in); err != nil {
		t.Fatalf("single earn: %v", err)
	}
	in = flights(4, "batch")
	in.MemberID = m.ID
	if out, err := e.tx.EarnBatch(ctx, pr, []points.BatchEarn{{Idem: ledger.Idempotency{Scope: scope, Key: "batch-4",
		RequestHash: []byte("b4")}, Input: in}}); err != nil || out[0].Err != nil {
		t.Fatalf("batch earn: %v %v", err, out)
	}
	if st, err := e.prog.Status(ctx, m.ID); err != nil || st.Tier != "gold" || st.Credits[programme.MetricFlights] != 10 {
		t.Fatalf("status = %+v (%v), want gold with 10 flights from both lanes", st, err)
	}

	// Everyone at once: 4 goroutines of single earns and 4 of batches over
	// the same 10 members.
	var ids []int64
	for i := 0; i < 10; i++ {
		ids = append(ids, e.member(fmt.Sprintf("m%d@example.com", i), "").ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for round := 0; round < 5; round++ {
				key := fmt.Sprintf("g%d-r%d", g, round)
				if g%2 == 0 {
					in := flights(1, key)
					in.MemberID = ids[(g+round)%len(ids)]
					if _, err := e.tx.Earn(ctx, pr, ledger.Idempotency{Scope: scope, Key: key}, in); err != nil {
						errs <- fmt.Errorf("single %s: %w", key, err)
					}
					continue
				}
				var items []points.BatchEarn
				for k, id := range ids {
					in := flights(1, key)
					in.MemberID = id
					items = append(items, points.BatchEarn{Idem: ledger.Idempotency{Scope: scope,
						Key: fmt.Sprintf("%s-%d", key, k), RequestHash: []byte(key)}, Input: in})
				}
				out, err := e.tx.EarnBatch(ctx, pr, items)
				if err != nil {
					errs <- fmt.Errorf("batch %s: %w", key, err)
					continue
				}
				for _, o := range out {
					if o.Err != nil {
						errs <- fmt.Errorf("batch %s item: %w", key, o.Err)
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var lanes struct{ Credits, Totals, Lane1 int64 }
	if err := e.db.Raw(`SELECT (SELECT sum(flights) FROM programme_qualifying_credits) AS credits,
		(SELECT sum(flights) FROM programme_member_windows) AS totals,
		(SELECT count(*) FROM programme_member_windows WHERE lane = 1) AS lane1`).Scan(&lanes).Error; err != nil {
		t.Fatal(err)
	}
	// 10 + 4 goroutines x 5 single earns + 4 x 5 batches x 10 members, one flight each.
	if lanes.Credits != 10+20+200 || lanes.Totals != lanes.Credits || lanes.Lane1 == 0 {
		t.Fatalf("flights: credits %d, running totals %d, %d lane-1 rows; want 230, 230, some", lanes.Credits, lanes.Totals, lanes.Lane1)
	}
	if n, err := e.prog.SyncWindows(ctx, e.clk.Now(), 1000); err != nil || n != 0 {
		t.Fatalf("SyncWindows = %d (%v), want 0: folding the lanes is not drift", n, err)
	}
	if err := e.db.Raw(`SELECT (SELECT sum(flights) FROM programme_member_windows) AS totals,
		(SELECT count(*) FROM programme_member_windows WHERE lane = 1) AS lane1`).Scan(&lanes).Error; err != nil {
		t.Fatal(err)
	}
	if lanes.Totals != 230 || lanes.Lane1 != 0 {
		t.Errorf("after SyncWindows: running totals %d flights in %d lane-1 rows; want 230 in lane 0 only", lanes.Totals, lanes.Lane1)
	}
}

// Each "points expiring" notice mails the member once, in the notice's
// transaction: a re-run of the job mails nothing more, and a member who
// turned expiry mail off gets none.
func TestExpiryNoticesMailTheMember(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, date(2025, 11, 30, 10))
	e.setPolicy(func(p *programme.Policy) { p.ExpiryMode, p.ExpiryMonths = programme.ExpiryFixedLifetime, 1 })
	m := e.member("soon@example.com", "")
	quiet := e.member("quiet@example.com", "")
	e.earnDirect(m.ID, 100, "a")
	e.earnDirect(quiet.ID, 50, "q")
	if err := e.members.SetNotification(ctx, quiet.ID, members.NoticePointsExpiring, false); err != nil {
		t.Fatal(err)
	}
	e.clk.Set(date(2025, 12, 20, 1))
	for run := 0; run < 2; run++ {
		if _, err := e.prog.RunExpiry(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	var mails []struct {
		Recipient string
		Points    string
	}
	if err := e.db.Raw(`SELECT recipient, data->>'points' AS points FROM outbound_mail WHERE template = 'points_expiring'`).
		Scan(&mails).Error; err != nil {
		t.Fatal(err)
	}
	if len(mails) != 1 || mails[0].Recipient != "soon@example.com" || mails[0].Points != "100" {
		t.Fatalf("expiry mails %+v; want one to soon@example.com about 100 points", mails)
	}
}
