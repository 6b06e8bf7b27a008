package settlement

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
)

var berlin = func() *time.Location {
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return l
}()

// at is a wall time in Berlin.
func at(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, berlin)
}

// env is a test world: real database, real ledger, partners and settlement
// services on one clock.
type env struct {
	t        testing.TB
	ctx      context.Context
	db       *gorm.DB
	clk      *clock.Manual
	ledger   *ledger.Service
	partners *partners.Service
	svc      *Service
	keys     atomic.Int64
}

func newEnv(t *testing.T, start time.Time) *env { return newEnvTB(t, start) }

func newEnvTB(t testing.TB, start time.Time) *env {
	t.Helper()
	db := testdb.New(t)
	clk := clock.New(start)
	ps := partners.NewService(db, clk.Now)
	return &env{t: t, ctx: context.Background(), db: db, clk: clk, ledger: ledger.NewService(db, clk.Now), partners: ps,
		svc: NewService(db, Options{Location: berlin, BaseCurrency: "EUR", Now: clk.Now})}
}

func (e *env) idem() ledger.Idempotency {
	return ledger.Idempotency{Scope: "test", Key: fmt.Sprintf("k%d", e.keys.Add(1))}
}

func (e *env) partner(name string, sector partners.Sector, cur string) int64 {
	e.t.Helper()
	p, err := e.partners.CreatePartner(e.ctx, partners.NewPartner{Name: name, Sector: sector, SettlementCurrency: cur, TimeZone: "Europe/Berlin"})
	if err != nil {
		e.t.Fatalf("create partner %s: %v", name, err)
	}
	return p.ID
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func (e *env) contract(partnerID int64, from time.Time, issue, redemption, share, fee string, billing partners.Billing) {
	e.t.Helper()
	_, err := e.partners.PublishContract(e.ctx, partnerID, partners.NewContract{EffectiveFrom: from, Earn: true, Burn: billing == partners.BillingPostpaid,
		IssuePrice: dec(issue), RedemptionRate: dec(redemption), Billing: billing, BreakageShare: dec(share), OperatorFeeRate: dec(fee)}, "test")
	if err != nil {
		e.t.Fatalf("publish contract of %d: %v", partnerID, err)
	}
}

// earn posts an earn now (the clock) that occurred at occurred.
func (e *env) earn(now time.Time, member, partner, points int64, occurred time.Time, expires *time.Time, ref string) ledger.Transaction {
	e.t.Helper()
	e.clk.Set(now)
	tr, err := e.ledger.Earn(e.ctx, ledger.EarnRequest{Idem: e.idem(), MemberID: member, PartnerID: partner,
		Points: ledger.Points(points), OccurredAt: occurred, ExpiresAt: expires, ExternalRef: ref})
	if err != nil {
		e.t.Fatalf("earn %d at %d: %v", points, partner, err)
	}
	return tr
}

func (e *env) burn(now time.Time, member, partner, points int64, ref string) ledger.Transaction {
	e.t.Helper()
	e.clk.Set(now)
	tr, err := e.ledger.Burn(e.ctx, ledger.BurnRequest{Idem: e.idem(), MemberID: member, PartnerID: partner,
		Points: ledger.Points(points), OccurredAt: now, ExternalRef: ref})
	if err != nil {
		e.t.Fatalf("burn %d at %d: %v", points, partner, err)
	}
	return tr
}

func (e *env) reverse(now time.Time, txID, points int64, ref string) ledger.Transaction {
	e.t.Helper()
	e.clk.Set(now)
	tr, err := e.ledger.Reverse(e.ctx, ledger.ReverseRequest{Idem: e.idem(), TransactionID: txID, Points: ledger.Points(points),
		Reason: "refund", ExternalRef: ref})
	if err != nil {
		e.t.Fatalf("reverse %d of %d: %v", points, txID, err)
	}
	return tr
}

func (e *env) close(now time.Time, month string) Period {
	e.t.Helper()
	e.clk.Set(now)
	p, err := e.svc.Close(e.ctx, month, "test", nil)
	if err != nil {
		e.t.Fatalf("close %s: %v", month, err)
	}
	if p.Status != PeriodClosed || len(p.ReportSHA256) != 64 {
		e.t.Fatalf("close %s: got %+v; want closed with a report hash", month, p)
	}
	return p
}

func (e *env) audit() {
	e.t.Helper()
	rep, err := ledger.Audit(e.ctx, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK() {
		e.t.Fatalf("ledger audit failed: %+v", rep)
	}
}

func (e *env) statementOf(month string, partnerID int64) Statement {
	e.t.Helper()
	sts, err := e.svc.Statements(e.ctx, StatementFilter{PartnerID: partnerID, Period: month})
	if err != nil || len(sts) != 1 {
		e.t.Fatalf("statement of partner %d for %s: %v (%d found); want exactly one", partnerID, month, err, len(sts))
	}
	return sts[0]
}
