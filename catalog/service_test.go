package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/webhooks"
)

func TestLastUnitOrderedConcurrentlyHasOneWinner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](1) })
	const n = 24
	ms := make([]members.Member, n)
	for i := range ms {
		ms[i] = e.member(airline.ID, 20000)
	}
	var wg sync.WaitGroup
	results := make([]error, n)
	orders := make([]catalog.Order, n)
	start := make(chan struct{})
	for i := range ms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			orders[i], results[i] = e.svc.PlaceOrder(e.ctx, ms[i].ID, "last-unit", catalog.OrderInput{RewardID: r.ID})
		}(i)
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, err := range results {
		switch {
		case err == nil:
			winners++
			e.wantBalance(ms[i].ID, 20000, 15000)
			if orders[i].Status != catalog.OrderPending {
				t.Errorf("winner's order is %s, want pending", orders[i].Status)
			}
		case errors.Is(err, catalog.ErrOutOfStock):
			e.wantBalance(ms[i].ID, 20000, 0)
		default:
			t.Errorf("member %d: %v; want success or ErrOutOfStock", ms[i].ID, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d orders won the last unit, want exactly 1", winners)
	}
	if got := e.stock(r.ID); got != 0 {
		t.Fatalf("stock remaining %d, want 0", got)
	}
	e.audit()
}

func TestOrderCreationIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	e.subscribe(hotel.ID)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](5) })
	other := e.reward(hotel.ID, nil)
	m := e.member(airline.ID, 40000)

	// Concurrent duplicates: one order, one hold, one unit of stock.
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	replays := 0
	var mu sync.Mutex
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o, err := e.svc.PlaceOrder(e.ctx, m.ID, "order-1", catalog.OrderInput{RewardID: r.ID})
			if err != nil {
				t.Errorf("duplicate %d: %v", i, err)
				return
			}
			ids[i] = o.ID
			mu.Lock()
			if o.Replayed {
				replays++
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("duplicates created orders %v, want one", ids)
		}
	}
	if replays != len(ids)-1 {
		t.Fatalf("%d replays, want %d", replays, len(ids)-1)
	}
	e.wantBalance(m.ID, 40000, 15000)
	if got := e.stock(r.ID); got != 4 {
		t.Fatalf("stock %d, want 4 (one unit reserved)", got)
	}
	if n := e.events(hotel.ID, webhooks.EventOrderCreated); n != 1 {
		t.Fatalf("%d order.created events, want 1", n)
	}
	// A later replay still answers the same order after it changed state.
	if _, err := e.svc.Fulfil(e.ctx, hotel.ID, ids[0], "BK-1"); err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.PlaceOrder(e.ctx, m.ID, "order-1", catalog.OrderInput{RewardID: r.ID})
	if err != nil || again.ID != ids[0] || !again.Replayed || again.Status != catalog.OrderFulfilled {
		t.Fatalf("late replay: %+v, %v; want order %d fulfilled, replayed", again, err, ids[0])
	}
	// Same key, other reward: a conflict, nothing moves.
	if _, err := e.svc.PlaceOrder(e.ctx, m.ID, "order-1", catalog.OrderInput{RewardID: other.ID}); !errors.Is(err, ledger.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other body: %v; want ErrIdempotencyMismatch", err)
	}
	e.wantBalance(m.ID, 25000, 0)
	e.audit()
}

func TestFulfilCapturesAsRedemptionAtProvidingPartner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	e.subscribe(hotel.ID)
	r := e.reward(hotel.ID, nil)
	m := e.member(airline.ID, 20000)
	o := e.order(m.ID, r.ID)
	if o.Status != catalog.OrderPending || o.Points != 15000 || o.PartnerID != hotel.ID {
		t.Fatalf("order %+v; want pending for 15000 points at the hotel", o)
	}
	pending, _, err := e.svc.PartnerOrders(e.ctx, hotel.ID, catalog.OrderQuery{Status: catalog.OrderPending})
	if err != nil || len(pending) != 1 || pending[0].ID != o.ID {
		t.Fatalf("pending queue %+v, %v; want the order", pending, err)
	}
	if _, err := e.svc.Fulfil(e.ctx, airline.ID, o.ID, "BK-1"); !errors.Is(err, catalog.ErrOrderNotFound) {
		t.Fatalf("another partner fulfils: %v; want ErrOrderNotFound", err)
	}
	f, err := e.svc.Fulfil(e.ctx, hotel.ID, o.ID, "BK-778")
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != catalog.OrderFulfilled || f.Reference != "BK-778" || f.CaptureTransactionID == 0 {
		t.Fatalf("fulfilled order %+v", f)
	}
	e.wantBalance(m.ID, 5000, 0)
	tr, err := e.ledger.Get(e.ctx, f.CaptureTransactionID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Type != ledger.TypeCapture || tr.PartnerID != hotel.ID || tr.Points != 15000 {
		t.Fatalf("capture %+v; want a 15000-point capture at the hotel", tr)
	}
	var redeemed bool
	for _, en := range tr.Entries {
		redeemed = redeemed || (en.Kind == ledger.KindPartnerRedeemed && en.OwnerID == hotel.ID && en.Points == 15000)
	}
	if !redeemed {
		t.Fatalf("capture entries %+v; want 15000 to the hotel's partner_redeemed account", tr.Entries)
	}
	if len(tr.Consumptions) != 1 || tr.Consumptions[0].IssuerPartnerID != airline.ID {
		t.Fatalf("consumptions %+v; want the airline's lot", tr.Consumptions)
	}
	var d struct {
		Contract struct {
			RedemptionRate string `json:"redemption_rate"`
		} `json:"contract"`
		ReimbursementMinor int64 `json:"reimbursement_minor"`
		RewardID           int64 `json:"reward_id"`
		OrderID            int64 `json:"order_id"`
	}
	if err := json.Unmarshal(tr.Details, &d); err != nil {
		t.Fatal(err)
	}
	if d.Contract.RedemptionRate != "0.005" || d.ReimbursementMinor != 7500 || d.RewardID != r.ID || d.OrderID != o.ID {
		t.Fatalf("capture details %s; want rate 0.005, 7500 cents, reward %d, order %d", tr.Details, r.ID, o.ID)
	}
	// Idempotent by state: the same answer again is a replay, another is refused.
	if again, err := e.svc.Fulfil(e.ctx, hotel.ID, o.ID, "BK-778"); err != nil || !again.Replayed {
		t.Fatalf("repeat fulfil: %+v, %v; want replay", again, err)
	}
	if _, err := e.svc.Fulfil(e.ctx, hotel.ID, o.ID, "BK-999"); !errors.Is(err, catalog.ErrOrderNotPending) {
		t.Fatalf("fulfil with another reference: %v; want ErrOrderNotPending", err)
	}
	if _, err := e.svc.Cancel(e.ctx, m.ID, o.ID); !errors.Is(err, catalog.ErrOrderNotPending) {
		t.Fatalf("cancel after fulfilment: %v; want ErrOrderNotPending", err)
	}
	if e.events(hotel.ID, webhooks.EventOrderFulfilled) != 1 {
		t.Fatal("want one order.fulfilled event")
	}
	e.audit()
}

func TestRejectReleasesPointsAndStock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	e.subscribe(hotel.ID)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](3) })
	m := e.member(airline.ID, 20000)
	o := e.order(m.ID, r.ID)
	e.wantBalance(m.ID, 20000, 15000)
	if _, err := e.svc.Reject(e.ctx, hotel.ID, o.ID, ""); !isFieldError(err, "reason") {
		t.Fatalf("reject without reason: %v; want a validation error on reason", err)
	}
	got, err := e.svc.Reject(e.ctx, hotel.ID, o.ID, "hotel fully booked")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != catalog.OrderRejected || got.Reason != "hotel fully booked" || got.ClosedAt == nil {
		t.Fatalf("rejected order %+v", got)
	}
	e.wantBalance(m.ID, 20000, 0)
	if s := e.stock(r.ID); s != 3 {
		t.Fatalf("stock %d after reject, want 3", s)
	}
	if st := e.holdStatus(o.HoldID); st != ledger.HoldVoided {
		t.Fatalf("hold %s, want voided", st)
	}
	if _, err := e.svc.Fulfil(e.ctx, hotel.ID, o.ID, "BK-1"); !errors.Is(err, catalog.ErrOrderNotPending) {
		t.Fatalf("fulfil after reject: %v; want ErrOrderNotPending", err)
	}
	if again, err := e.svc.Reject(e.ctx, hotel.ID, o.ID, "hotel fully booked"); err != nil || !again.Replayed {
		t.Fatalf("repeat reject: %+v %v; want replay", again, err)
	}
	if e.events(hotel.ID, webhooks.EventOrderCancelled) != 1 {
		t.Fatal("want one order.cancelled event")
	}
	e.audit()
}

func TestUnfulfilledOrdersExpireAtTheDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](2); in.FulfilmentHours = 48 })
	m := e.member(airline.ID, 40000)
	late := e.order(m.ID, r.ID)
	e.clock.Add(24 * time.Hour)
	early := e.order(m.ID, r.ID)
	if n, err := e.svc.ExpireOrders(e.ctx, 10); err != nil || n != 0 {
		t.Fatalf("expire before any deadline: %d, %v; want 0", n, err)
	}
	e.clock.Add(24 * time.Hour) // the first order's deadline
	if _, err := e.svc.Fulfil(e.ctx, hotel.ID, late.ID, "BK-1"); !errors.Is(err, catalog.ErrDeadlinePassed) {
		t.Fatalf("fulfil at the deadline: %v; want ErrDeadlinePassed", err)
	}
	if err := catalog.HandleExpireOrders(e.svc)(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.MemberOrder(e.ctx, m.ID, late.ID)
	if err != nil || got.Status != catalog.OrderExpired {
		t.Fatalf("late order %+v, %v; want expired", got, err)
	}
	if got, _ := e.svc.MemberOrder(e.ctx, m.ID, early.ID); got.Status != catalog.OrderPending {
		t.Fatalf("order within its deadline is %s, want pending", got.Status)
	}
	e.wantBalance(m.ID, 40000, 15000)
	if s := e.stock(r.ID); s != 1 {
		t.Fatalf("stock %d, want 1 (expired unit returned)", s)
	}
	if n, err := e.svc.ExpireOrders(e.ctx, 10); err != nil || n != 0 {
		t.Fatalf("second run: %d, %v; want nothing to do", n, err)
	}
	e.audit()
}

func TestExpiryAfterLedgerSweptTheHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.FulfilmentHours = 1 })
	m := e.member(airline.ID, 20000)
	o := e.order(m.ID, r.ID)
	e.clock.Add(48 * time.Hour) // past deadline and grace: the ledger sweep gets there first
	if _, err := e.ledger.ExpireHolds(e.ctx, 10); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.ExpireOrders(e.ctx, 10); err != nil || n != 1 {
		t.Fatalf("expire: %d, %v; want 1", n, err)
	}
	if got, _ := e.svc.MemberOrder(e.ctx, m.ID, o.ID); got.Status != catalog.OrderExpired {
		t.Fatalf("order %s, want expired", got.Status)
	}
	e.wantBalance(m.ID, 20000, 0)
	e.audit()
}

func TestMemberCancelsPendingOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	e.subscribe(hotel.ID)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](1) })
	m := e.member(airline.ID, 20000)
	stranger := e.member(airline.ID, 0)
	o := e.order(m.ID, r.ID)
	if _, err := e.svc.Cancel(e.ctx, stranger.ID, o.ID); !errors.Is(err, catalog.ErrOrderNotFound) {
		t.Fatalf("another member cancels: %v; want ErrOrderNotFound", err)
	}
	got, err := e.svc.Cancel(e.ctx, m.ID, o.ID)
	if err != nil || got.Status != catalog.OrderCancelled {
		t.Fatalf("cancel: %+v, %v", got, err)
	}
	e.wantBalance(m.ID, 20000, 0)
	if s := e.stock(r.ID); s != 1 {
		t.Fatalf("stock %d, want the unit back", s)
	}
	if e.events(hotel.ID, webhooks.EventOrderCancelled) != 1 {
		t.Fatal("want one order.cancelled event")
	}
	// The unit is orderable again.
	o2 := e.order(m.ID, r.ID)
	if o2.Status != catalog.OrderPending {
		t.Fatalf("re-order %+v", o2)
	}
	e.audit()
}

func TestInstantRewardsAssignDistinctVouchers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	shop := e.partner("Giftshop", partners.SectorRetail, false)
	r := e.reward(shop.ID, func(in *catalog.RewardInput) {
		in.Title, in.Category, in.PricePoints, in.Fulfilment = "USD 25 gift card", catalog.CategoryVoucher, 5000, catalog.FulfilmentInstant
	})
	up, err := e.svc.UploadVouchers(e.ctx, shop.ID, r.ID, []string{"GC-1", "GC-2", "GC-3", " GC-1 "})
	if err != nil || up.Added != 3 || up.Duplicates != 1 || up.Available != 3 {
		t.Fatalf("upload: %+v, %v; want 3 added, 1 duplicate", up, err)
	}
	if _, err := e.svc.UploadVouchers(e.ctx, airline.ID, r.ID, []string{"X"}); !errors.Is(err, catalog.ErrRewardNotFound) {
		t.Fatalf("upload to another partner's reward: %v; want ErrRewardNotFound", err)
	}
	const n = 5
	ms := make([]members.Member, n)
	for i := range ms {
		ms[i] = e.member(airline.ID, 6000)
	}
	var wg sync.WaitGroup
	orders := make([]catalog.Order, n)
	errs := make([]error, n)
	for i := range ms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			orders[i], errs[i] = e.svc.PlaceOrder(e.ctx, ms[i].ID, "gift", catalog.OrderInput{RewardID: r.ID})
		}(i)
	}
	wg.Wait()
	codes := map[string]bool{}
	for i := range ms {
		switch {
		case errs[i] == nil:
			if orders[i].Status != catalog.OrderFulfilled || codes[orders[i].Reference] || orders[i].Reference == "" {
				t.Fatalf("order %+v: want fulfilled with a fresh code (have %v)", orders[i], codes)
			}
			codes[orders[i].Reference] = true
			e.wantBalance(ms[i].ID, 1000, 0)
		case errors.Is(errs[i], catalog.ErrOutOfStock):
			e.wantBalance(ms[i].ID, 6000, 0)
		default:
			t.Fatalf("member %d: %v", ms[i].ID, errs[i])
		}
	}
	if len(codes) != 3 {
		t.Fatalf("%d vouchers handed out, want all 3", len(codes))
	}
	e.audit()
}

func TestCharityDonationIsARedemptionAtTheCharity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	charity := e.partner("Clean Oceans", partners.SectorCharity, false)
	_, err := e.svc.CreateReward(e.ctx, airline.ID, catalog.RewardInput{Title: "Donate", Category: catalog.CategoryCharity,
		PricePoints: 1000, Value: money.Money{Minor: 500, Currency: "EUR"}, Fulfilment: catalog.FulfilmentInstant})
	if !errors.Is(err, catalog.ErrNotCharity) {
		t.Fatalf("donation reward at an airline: %v; want ErrNotCharity", err)
	}
	r := e.reward(charity.ID, func(in *catalog.RewardInput) {
		in.Title, in.Category, in.PricePoints, in.Fulfilment = "Donate 1000 points", catalog.CategoryCharity, 1000, catalog.FulfilmentInstant
	})
	m := e.member(airline.ID, 2500)
	o := e.order(m.ID, r.ID)
	if o.Status != catalog.OrderFulfilled || o.Reference != fmt.Sprintf("DONATION-%d", o.ID) {
		t.Fatalf("donation %+v; want fulfilled with a donation reference", o)
	}
	tr, err := e.ledger.Get(e.ctx, o.CaptureTransactionID)
	if err != nil || tr.PartnerID != charity.ID || tr.Points != 1000 {
		t.Fatalf("donation capture %+v, %v; want 1000 points at the charity", tr, err)
	}
	e.wantBalance(m.ID, 1500, 0)
	e.audit()
}

func TestOrderRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	gold := e.member(airline.ID, 30000)
	e.tiers.Store(gold.ID, "Gold")
	blue := e.member(airline.ID, 30000)
	poor := e.member(airline.ID, 100)
	suite := e.reward(hotel.ID, func(in *catalog.RewardInput) {
		in.Title, in.EligibleTiers, in.TierPrices = "Suite", []string{"gold"}, map[string]int64{"Gold": 12000}
	})
	limited := e.reward(hotel.ID, func(in *catalog.RewardInput) {
		in.Title, in.Category, in.PricePoints, in.PerMemberLimit, in.BlackoutDates = "Breakfast", catalog.CategoryDining, 1000, 1, []string{"2026-12-24"}
	})
	future := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.ValidFrom = ptr(t0.AddDate(0, 1, 0)) })
	moderated := e.reward(hotel.ID, nil)
	if _, err := e.svc.Moderate(e.ctx, "ops@test", moderated.ID, catalog.Moderation{Visibility: ptr(catalog.VisibilitySuspended), Reason: "misleading"}); err != nil {
		t.Fatal(err)
	}
	place := func(m members.Member, r catalog.Reward, date string) (catalog.Order, error) {
		return e.svc.PlaceOrder(e.ctx, m.ID, fmt.Sprintf("k-%d", seq.Add(1)), catalog.OrderInput{RewardID: r.ID, ServiceDate: date})
	}
	o, err := place(gold, suite, "")
	if err != nil || o.Points != 12000 {
		t.Fatalf("gold orders the suite: %+v, %v; want the gold price 12000", o, err)
	}
	cases := []struct {
		name string
		m    members.Member
		r    catalog.Reward
		date string
		want error
	}{
		{"tier restricted", blue, suite, "", catalog.ErrRewardUnavailable},
		{"not yet valid", blue, future, "", catalog.ErrRewardUnavailable},
		{"suspended", blue, moderated, "", catalog.ErrRewardUnavailable},
		{"blackout date", blue, limited, "2026-12-24", catalog.ErrRewardUnavailable},
		{"insufficient points", poor, limited, "", ledger.ErrInsufficientPoints},
		{"first breakfast", blue, limited, "2026-12-23", nil},
		{"per-member limit", blue, limited, "", catalog.ErrOrderLimit},
	}
	for _, c := range cases {
		if _, err := place(c.m, c.r, c.date); !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	// Browse: blue sees what is offered to it; affordable filters by available points.
	offers, _, err := e.svc.Browse(e.ctx, poor.ID, catalog.BrowseQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 1 || offers[0].ID != limited.ID || offers[0].Affordable {
		t.Fatalf("poor member's catalog %+v; want only the breakfast, unaffordable", offers)
	}
	if offers, _, _ := e.svc.Browse(e.ctx, poor.ID, catalog.BrowseQuery{Affordable: true}); len(offers) != 0 {
		t.Fatalf("affordable for 100 points: %+v; want none", offers)
	}
	offers, _, _ = e.svc.Browse(e.ctx, gold.ID, catalog.BrowseQuery{Affordable: true, Category: catalog.CategoryHotelNight})
	if len(offers) != 1 || offers[0].ID != suite.ID || offers[0].Price != 12000 {
		t.Fatalf("gold's affordable hotel nights %+v; want the suite at 12000 (18000 available)", offers)
	}
	e.audit()
}

func TestRewardValidationAndStockChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	_, err := e.svc.CreateReward(e.ctx, hotel.ID, catalog.RewardInput{Title: "", Category: "spa", PricePoints: 0,
		Value: money.Money{Currency: "eur"}, Fulfilment: "later", BlackoutDates: []string{"24/12"}})
	for _, f := range []string{"title", "category", "price_points", "value.currency", "fulfilment", "blackout_dates[0]"} {
		if !isFieldError(err, f) {
			t.Errorf("invalid reward: %v; want a field error on %s", err, f)
		}
	}
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.StockTotal = ptr[int64](2) })
	m := e.member(airline.ID, 20000)
	e.order(m.ID, r.ID)
	in := catalog.RewardInput{Title: r.Title, Category: r.Category, PricePoints: r.PricePoints, Value: r.Value,
		Fulfilment: r.Fulfilment, StockTotal: ptr[int64](0)}
	if _, err := e.svc.UpdateReward(e.ctx, hotel.ID, r.ID, in); !isFieldError(err, "stock_total") {
		t.Fatalf("stock below what is ordered: %v; want a field error", err)
	}
	in.StockTotal = ptr[int64](5)
	up, err := e.svc.UpdateReward(e.ctx, hotel.ID, r.ID, in)
	if err != nil || *up.StockRemaining != 4 {
		t.Fatalf("raise stock to 5: %+v, %v; want 4 remaining", up, err)
	}
	if _, err := e.svc.UpdateReward(e.ctx, airline.ID, r.ID, in); !errors.Is(err, catalog.ErrRewardNotFound) {
		t.Fatalf("another partner updates: %v; want ErrRewardNotFound", err)
	}
	e.audit()
}

func isFieldError(err error, field string) bool {
	var ve *validation.Error
	if !errors.As(err, &ve) {
		return false
	}
	for _, f := range ve.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// An order holds one pool connection at a time: on a pool of one, orders
// placed at once are each answered in time (the member, tier, partner and
// contract are read before the order's transaction, not beside it).
func TestOrdersNeedOneConnectionAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	hotel := e.partner("Grand Hotels", partners.SectorHotel, false)
	r := e.reward(hotel.ID, func(in *catalog.RewardInput) { in.PricePoints = 100 })
	const n = 6
	ms := make([]members.Member, n)
	for i := range ms {
		ms[i] = e.member(airline.ID, 1000)
	}
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = e.svc.PlaceOrder(ctx, ms[i].ID, "one-conn", catalog.OrderInput{RewardID: r.ID})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("order of member %d on a one-connection pool: %v; want it placed in time", ms[i].ID, err)
		}
	}
	e.audit()
}
