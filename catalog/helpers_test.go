package catalog_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// env is the catalog over a fresh database with every real service it uses.
type env struct {
	t       testing.TB
	ctx     context.Context
	db      *gorm.DB
	clock   *clock.Manual
	ledger  *ledger.Service
	members *members.Service
	reg     *partners.Service
	rules   *rules.Service
	tx      *points.Transactions
	svc     *catalog.Service
	tiers   sync.Map // member id -> tier
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := testdb.New(t)
	c := clock.New(t0)
	reg := partners.NewService(db, c.Now)
	l := ledger.NewService(db, c.Now)
	m := members.NewService(db, l, c.Now)
	consent := members.NewBurnConsent(db, c.Now, members.DefaultConsentPolicy)
	rs := rules.NewService(db, c.Now)
	e := &env{t: t, ctx: context.Background(), db: db, clock: c, ledger: l, members: m, reg: reg, rules: rs,
		tx: points.NewTransactions(db, l, m, consent, reg, rs, c.Now), svc: catalog.NewService(db, l, m, reg, c.Now)}
	e.svc.TierOf = func(_ context.Context, id int64) (string, error) {
		if v, ok := e.tiers.Load(id); ok {
			return v.(string), nil
		}
		return "", nil
	}
	return e
}

// audit runs every ledger invariant check and fails the test on a breach.
func (e *env) audit() {
	e.t.Helper()
	rep, err := ledger.Audit(e.ctx, e.db)
	if err != nil {
		e.t.Fatalf("ledger audit: %v", err)
	}
	if !rep.OK() {
		e.t.Fatalf("ledger audit failed: %+v", rep)
	}
}

// partner creates an active partner with a contract in force (burn role at
// redemption rate 0.005 EUR/point; earn too when earn is true).
func (e *env) partner(name string, sector partners.Sector, earn bool) partners.Partner {
	e.t.Helper()
	p, err := e.reg.CreatePartner(e.ctx, partners.NewPartner{Name: name, Sector: sector, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
	if err != nil {
		e.t.Fatal(err)
	}
	if p, err = e.reg.SetPartnerStatus(e.ctx, p.ID, partners.StatusActive); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.PublishContract(e.ctx, p.ID, partners.NewContract{EffectiveFrom: t0.AddDate(0, -1, 0), Earn: earn,
		Burn: true, IssuePrice: decimal.RequireFromString("0.008"), RedemptionRate: decimal.RequireFromString("0.005"),
		Billing: partners.BillingPostpaid}, "staff:test"); err != nil {
		e.t.Fatal(err)
	}
	return p
}

var seq atomic.Int64

// member enrols a member and credits pts earned at issuer (0: none).
func (e *env) member(issuer int64, pts int64) members.Member {
	e.t.Helper()
	m, _, err := e.members.Enrol(e.ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail,
		Value: fmt.Sprintf("m%d@example.com", seq.Add(1))}, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	if pts > 0 {
		e.credit(m.ID, issuer, pts)
	}
	return m
}

func (e *env) credit(memberID, issuer, pts int64) {
	e.t.Helper()
	if _, err := e.ledger.Earn(e.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: fmt.Sprintf("earn-%d", seq.Add(1))},
		MemberID: memberID, PartnerID: issuer, Points: ledger.Points(pts), OccurredAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reward(partnerID int64, tune func(*catalog.RewardInput)) catalog.Reward {
	e.t.Helper()
	in := catalog.RewardInput{Title: "Free night", Category: catalog.CategoryHotelNight, PricePoints: 15000,
		Value: money.Money{Minor: 12000, Currency: "EUR"}, Fulfilment: catalog.FulfilmentAsync}
	if tune != nil {
		tune(&in)
	}
	r, err := e.svc.CreateReward(e.ctx, partnerID, in)
	if err != nil {
		e.t.Fatalf("create reward: %v", err)
	}
	return r
}

func (e *env) order(memberID, rewardID int64) catalog.Order {
	e.t.Helper()
	o, err := e.svc.PlaceOrder(e.ctx, memberID, fmt.Sprintf("key-%d", seq.Add(1)), catalog.OrderInput{RewardID: rewardID})
	if err != nil {
		e.t.Fatalf("order reward %d for member %d: %v", rewardID, memberID, err)
	}
	return o
}

func (e *env) balance(memberID int64) ledger.Balance {
	e.t.Helper()
	b, err := e.ledger.Balance(e.ctx, memberID)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) wantBalance(memberID int64, total, held int64) {
	e.t.Helper()
	b := e.balance(memberID)
	if int64(b.Total) != total || int64(b.Held) != held {
		e.t.Fatalf("member %d balance total %d held %d; want total %d held %d", memberID, b.Total, b.Held, total, held)
	}
}

func (e *env) stock(rewardID int64) int64 {
	e.t.Helper()
	r, err := e.svc.Reward(e.ctx, rewardID)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.StockRemaining == nil {
		e.t.Fatalf("reward %d has unlimited stock", rewardID)
	}
	return *r.StockRemaining
}

func (e *env) holdStatus(id int64) ledger.HoldStatus {
	e.t.Helper()
	h, err := e.ledger.GetHold(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Status
}

// events counts webhook events of a type recorded for a partner.
func (e *env) events(partnerID int64, typ string) int {
	e.t.Helper()
	var n int
	if err := e.db.Raw(`SELECT count(*) FROM webhook_events WHERE partner_id = ? AND type = ?`, partnerID, typ).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// subscribe registers a webhook endpoint for every event of the partner.
func (e *env) subscribe(partnerID int64) {
	e.t.Helper()
	box, err := access.NewSecretBox(make([]byte, 32))
	if err != nil {
		e.t.Fatal(err)
	}
	wh := webhooks.NewService(e.db, box, netguard.Policy{}, e.clock.Now)
	if _, _, err := wh.CreateEndpoint(e.ctx, partnerID, "https://partner.example/hooks", []string{"*"}); err != nil {
		e.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
