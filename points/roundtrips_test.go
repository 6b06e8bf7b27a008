package points_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/partners"
)

// hotPathFixture is what the round-trip pins of earn and burn start from: a
// database counting its round trips, one active partner with an earn-and-burn
// contract from start, and nMembers members.
type hotPathFixture struct {
	db      *gorm.DB
	stmts   *atomic.Int64
	start   time.Time
	clock   func() time.Time
	reg     *partners.Service
	partner partners.Partner
	members []int64
}

func newHotPathFixture(tb testing.TB, name string, nMembers int) hotPathFixture {
	tb.Helper()
	f := hotPathFixture{start: time.Now().UTC()}
	f.db, f.stmts = testdb.NewCounting(tb)
	f.clock = func() time.Time { return f.start.Add(-time.Minute) }
	ctx := context.Background()
	var err error
	f.reg = partners.NewService(f.db, f.clock)
	if f.partner, err = f.reg.CreatePartner(ctx, partners.NewPartner{Name: name, Sector: partners.SectorRetail, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.reg.SetPartnerStatus(ctx, f.partner.ID, partners.StatusActive); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.reg.PublishContract(ctx, f.partner.ID, partners.NewContract{EffectiveFrom: f.start, Earn: true, Burn: true,
		IssuePrice: decimal.RequireFromString("0.01"), RedemptionRate: decimal.RequireFromString("0.007"),
		Currency: "EUR", Billing: partners.BillingPostpaid}, "test"); err != nil {
		tb.Fatal(err)
	}
	if err := f.db.Exec(`INSERT INTO members (given_name, created_at, updated_at) SELECT 'B', now(), now() FROM generate_series(1, ?)`, nMembers).Error; err != nil {
		tb.Fatal(err)
	}
	if err := f.db.Raw(`SELECT id FROM members ORDER BY id`).Scan(&f.members).Error; err != nil {
		tb.Fatal(err)
	}
	return f
}
