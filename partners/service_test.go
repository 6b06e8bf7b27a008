package partners

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
)

func newTestService(t *testing.T) (*Service, *gorm.DB, *clock.Manual) {
	t.Helper()
	db := testdb.New(t)
	clk := clock.New(time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC))
	return NewService(db, clk.Now), db, clk
}

func mustPartner(t *testing.T, svc *Service, name string) Partner {
	t.Helper()
	p, err := svc.CreatePartner(context.Background(), NewPartner{Name: name, Sector: SectorHotel, SettlementCurrency: "EUR", TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatalf("create partner: %v", err)
	}
	return p
}

func contractInput(from time.Time, price string) NewContract {
	return NewContract{EffectiveFrom: from, Earn: true, Burn: true, IssuePrice: decimal.RequireFromString(price),
		RedemptionRate: decimal.RequireFromString("0.005"), Billing: BillingPostpaid, PendingDays: 14,
		BreakageShare: decimal.RequireFromString("0.3")}
}

func TestContractAtSelectsVersionByDate(t *testing.T) {
	t.Parallel()
	svc, _, _ := newTestService(t)
	ctx := context.Background()
	p := mustPartner(t, svc, "Hotel A")
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := svc.PublishContract(ctx, p.ID, contractInput(jan, "0.0075"), "test"); err != nil {
		t.Fatal(err)
	}
	// Later versions must not be in the past: take effect after the clock.
	apr := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	jun := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := svc.PublishContract(ctx, p.ID, contractInput(apr, "0.008"), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PublishContract(ctx, p.ID, contractInput(jun, "0.009"), "test"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		at      time.Time
		version int
		price   string
		err     error
	}{
		{"before any contract", jan.Add(-time.Second), 0, "", ErrNoContract},
		{"exactly at v1", jan, 1, "0.0075", nil},
		{"inside v1", time.Date(2025, 3, 31, 23, 59, 59, 0, time.UTC), 1, "0.0075", nil},
		{"exactly at v2", apr, 2, "0.008", nil},
		{"inside v2", time.Date(2025, 5, 15, 0, 0, 0, 0, time.UTC), 2, "0.008", nil},
		{"at v3 and after", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 3, "0.009", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := svc.ContractAt(ctx, p.ID, tc.at)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ContractAt(%s) error = %v, want %v", tc.at, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ContractAt(%s): %v", tc.at, err)
			}
			if c.Version != tc.version || c.IssuePrice.String() != tc.price {
				t.Fatalf("ContractAt(%s) = v%d price %s, want v%d price %s", tc.at, c.Version, c.IssuePrice, tc.version, tc.price)
			}
		})
	}
}

func TestPublishContractRefusesBadVersions(t *testing.T) {
	t.Parallel()
	svc, _, clk := newTestService(t)
	ctx := context.Background()
	p := mustPartner(t, svc, "Hotel B")
	if _, err := svc.PublishContract(ctx, p.ID, contractInput(clk.Now().Add(-48*time.Hour), "0.0075"), "test"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		in    NewContract
		field string
	}{
		"retroactive":       {contractInput(clk.Now().Add(-time.Hour), "0.008"), "effective_from"},
		"too many decimals": {contractInput(clk.Now().Add(time.Hour), "0.000000001"), "issue_price"},
		"other currency":    {func() NewContract { c := contractInput(clk.Now().Add(time.Hour), "0.01"); c.Currency = "USD"; return c }(), "currency"},
		"no role": {func() NewContract {
			c := contractInput(clk.Now().Add(time.Hour), "0.01")
			c.Earn, c.Burn = false, false
			return c
		}(), "roles"},
		"breakage above 1": {func() NewContract {
			c := contractInput(clk.Now().Add(time.Hour), "0.01")
			c.BreakageShare = decimal.NewFromInt(2)
			return c
		}(), "breakage_share"},
	}
	for name, tc := range cases {
		_, err := svc.PublishContract(ctx, p.ID, tc.in, "test")
		var ve *validation.Error
		if !errors.As(err, &ve) || ve.Fields[0].Field != tc.field {
			t.Errorf("%s: error = %v, want a validation error on %s", name, err, tc.field)
		}
	}
	if _, err := svc.PublishContract(ctx, 999999, contractInput(clk.Now(), "0.01"), "test"); !errors.Is(err, ErrPartnerNotFound) {
		t.Errorf("unknown partner: error = %v, want ErrPartnerNotFound", err)
	}
}

func TestPrepaidDrawDownRefusesWhenEmpty(t *testing.T) {
	t.Parallel()
	svc, db, clk := newTestService(t)
	ctx := context.Background()
	p := mustPartner(t, svc, "Cafe C")
	in := contractInput(clk.Now(), "0.01")
	in.Billing, in.PrepaidAlertThreshold = BillingPrepaid, 500
	if _, err := svc.PublishContract(ctx, p.ID, in, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.TopUp(ctx, p.ID, money.Money{Minor: 1000, Currency: "EUR"}, "wire-1", "staff:x"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.TopUp(ctx, p.ID, money.Money{Minor: 1000, Currency: "EUR"}, "wire-1", "staff:x"); !errors.Is(err, ErrDuplicateRef) {
		t.Fatalf("repeated top-up ref: error = %v, want ErrDuplicateRef", err)
	}
	var bal PrepaidBalance
	err := db.Transaction(func(tx *gorm.DB) error {
		var err error
		bal, err = svc.DrawDown(tx, p.ID, money.Money{Minor: 600, Currency: "EUR"}, "earn-1")
		return err
	})
	if err != nil || bal.Balance.Minor != 400 {
		t.Fatalf("draw 600 of 1000: balance %d, err %v; want 400, nil", bal.Balance.Minor, err)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		_, err := svc.DrawDown(tx, p.ID, money.Money{Minor: 401, Currency: "EUR"}, "earn-2")
		return err
	})
	if !errors.Is(err, ErrPrepaidExhausted) {
		t.Fatalf("draw 401 of 400: error = %v, want ErrPrepaidExhausted", err)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		_, err := svc.DrawDown(tx, p.ID, money.Money{Minor: 1, Currency: "USD"}, "earn-3")
		return err
	})
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("draw in USD from an EUR account: error = %v, want validation error", err)
	}
	got, err := svc.PrepaidBalance(ctx, p.ID)
	if err != nil || got.Balance.Minor != 400 {
		t.Fatalf("balance = %d, %v; want 400", got.Balance.Minor, err)
	}
	var sum int64
	db.Raw(`SELECT coalesce(sum(amount_minor), 0) FROM prepaid_movements WHERE partner_id = ?`, p.ID).Scan(&sum)
	if sum != got.Balance.Minor {
		t.Fatalf("sum of movements %d != balance %d", sum, got.Balance.Minor)
	}

	post := mustPartner(t, svc, "Postpaid D")
	if _, err := svc.PrepaidBalance(ctx, post.ID); !errors.Is(err, ErrNotPrepaid) {
		t.Fatalf("postpaid partner balance: error = %v, want ErrNotPrepaid", err)
	}
}

// 50 concurrent draw-downs of 1 against a balance of 20: exactly 20 pass.
func TestPrepaidDrawDownConcurrent(t *testing.T) {
	t.Parallel()
	svc, db, clk := newTestService(t)
	ctx := context.Background()
	p := mustPartner(t, svc, "Fuel E")
	in := contractInput(clk.Now(), "0.01")
	in.Billing = BillingPrepaid
	if _, err := svc.PublishContract(ctx, p.ID, in, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.TopUp(ctx, p.ID, money.Money{Minor: 20, Currency: "EUR"}, "wire-1", "test"); err != nil {
		t.Fatal(err)
	}
	var ok, exhausted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := db.Transaction(func(tx *gorm.DB) error {
				_, err := svc.DrawDown(tx, p.ID, money.Money{Minor: 1, Currency: "EUR"}, "earn-"+string(rune('A'+i/26))+string(rune('a'+i%26)))
				return err
			})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrPrepaidExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("draw-down: unexpected error %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 20 || exhausted.Load() != 30 {
		t.Fatalf("passed %d, exhausted %d; want exactly 20 and 30", ok.Load(), exhausted.Load())
	}
	b, _ := svc.PrepaidBalance(ctx, p.ID)
	var n int64
	db.Raw(`SELECT count(*) FROM prepaid_movements WHERE partner_id = ? AND kind = 'draw_down'`, p.ID).Scan(&n)
	if b.Balance.Minor != 0 || n != 20 {
		t.Fatalf("balance %d with %d draw-down rows; want 0 and 20", b.Balance.Minor, n)
	}
}

func TestPartnerRegistry(t *testing.T) {
	t.Parallel()
	svc, _, _ := newTestService(t)
	ctx := context.Background()
	p := mustPartner(t, svc, "Air F")
	if _, err := svc.CreatePartner(ctx, NewPartner{Name: "air f", Sector: SectorAirline, SettlementCurrency: "EUR", TimeZone: "UTC"}); !errors.Is(err, ErrPartnerExists) {
		t.Fatalf("duplicate name: error = %v, want ErrPartnerExists", err)
	}
	_, err := svc.CreatePartner(ctx, NewPartner{Name: "", Sector: "casino", SettlementCurrency: "eur", TimeZone: "Mars/Base"})
	var ve *validation.Error
	if !errors.As(err, &ve) || len(ve.Fields) != 4 {
		t.Fatalf("bad partner: error = %v, want 4 field errors", err)
	}
	if _, err := svc.CreateOutlet(ctx, p.ID, NewOutlet{Code: "TXL-1", Name: "Desk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOutlet(ctx, p.ID, NewOutlet{Code: "TXL-1", Name: "Desk 2"}); !errors.Is(err, ErrOutletExists) {
		t.Fatalf("duplicate outlet: error = %v, want ErrOutletExists", err)
	}
	if _, err := svc.SetPartnerStatus(ctx, p.ID, StatusTerminated); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetPartnerStatus(ctx, p.ID, StatusActive); !errors.As(err, &ve) {
		t.Fatalf("reactivating a terminated partner: error = %v, want validation error", err)
	}
	list, err := svc.Partners(ctx, Page{Limit: 10})
	if err != nil || len(list) != 1 || list[0].Status != StatusTerminated {
		t.Fatalf("Partners = %+v, %v; want the one terminated partner", list, err)
	}
}
