package catalog_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
)

func (e *env) operatorReward(tune func(*catalog.RewardInput)) catalog.Reward {
	e.t.Helper()
	in := catalog.RewardInput{Title: "Cinema ticket", Category: catalog.CategoryVoucher, PricePoints: 2000,
		Value: money.Money{Minor: 900, Currency: "EUR"}}
	if tune != nil {
		tune(&in)
	}
	r, err := e.svc.CreateOperatorReward(e.ctx, "ops@hub.test", in)
	if err != nil {
		e.t.Fatalf("create operator reward: %v", err)
	}
	return r
}

func codes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// Concurrent orders of an operator reward while staff add stock: stock never
// goes below zero, every fulfilled order has its own code, the remaining
// stock is exactly what was set, added and ordered, and each capture goes to
// operator_redeemed with no partner (the operator bears the cost).
func TestOperatorRewardStockAndVouchersUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	airline := e.partner("Skyways", partners.SectorAirline, true)
	r := e.operatorReward(func(in *catalog.RewardInput) { in.StockTotal = ptr(int64(12)) })
	if r.Owner != catalog.OwnerOperator || r.PartnerID != 0 || r.Fulfilment != catalog.FulfilmentInstant {
		t.Fatalf("operator reward %+v: want owner operator, no partner, instant", r)
	}
	if up, err := e.svc.UploadOperatorVouchers(e.ctx, "ops@hub.test", r.ID, codes("CIN", 20)); err != nil || up.Added != 20 {
		t.Fatalf("upload: %+v %v", up, err)
	}
	const n, adds = 30, 5
	ms := make([]members.Member, n)
	for i := range ms {
		ms[i] = e.member(airline.ID, 2500)
	}
	var wg sync.WaitGroup
	orders := make([]catalog.Order, n)
	errs := make([]error, n)
	addErrs := make([]error, adds)
	for i := range ms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			orders[i], errs[i] = e.svc.PlaceOrder(e.ctx, ms[i].ID, "k", catalog.OrderInput{RewardID: r.ID})
		}(i)
	}
	for i := range adds {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, addErrs[i] = e.svc.ChangeStock(e.ctx, "ops@hub.test", r.ID, catalog.StockChange{Adjust: ptr(int64(1)), Reason: "delivery"})
		}(i)
	}
	wg.Wait()
	for i, err := range addErrs {
		if err != nil {
			t.Fatalf("stock adjustment %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	won := 0
	for i := range ms {
		switch {
		case errs[i] == nil:
			o := orders[i]
			if o.Status != catalog.OrderFulfilled || o.Reference == "" || seen[o.Reference] || o.PartnerID != 0 {
				t.Fatalf("order %+v: want fulfilled with a code of its own and no partner", o)
			}
			seen[o.Reference] = true
			won++
			e.wantBalance(ms[i].ID, 500, 0)
			tx, err := e.ledger.Get(e.ctx, o.CaptureTransactionID)
			if err != nil {
				t.Fatal(err)
			}
			if tx.PartnerID != 0 || len(tx.Entries) != 2 || tx.Entries[1].Kind != ledger.KindOperatorRedeemed {
				t.Fatalf("capture %+v: want member -> operator_redeemed, no partner", tx)
			}
		case errors.Is(errs[i], catalog.ErrOutOfStock):
			e.wantBalance(ms[i].ID, 2500, 0)
		default:
			t.Fatalf("member %d: %v", ms[i].ID, errs[i])
		}
	}
	left := e.stock(r.ID)
	if won > 12+adds || left < 0 || left != int64(12+adds-won) {
		t.Fatalf("%d orders won, %d units left; want won + left = %d", won, left, 12+adds)
	}
	got, err := e.svc.Reward(e.ctx, r.ID)
	if err != nil || got.VouchersAvailable != int64(20-won) {
		t.Fatalf("free codes %d (%v); want %d", got.VouchersAvailable, err, 20-won)
	}
	evs, err := e.svc.Events(e.ctx, r.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	adjusted := 0
	for _, ev := range evs {
		if ev.Kind == "stock_adjusted" && ev.Actor == "ops@hub.test" && ev.Reason == "delivery" && ev.StockDelta != nil && *ev.StockDelta == 1 {
			adjusted++
		}
		if b := fmt.Sprint(ev.Detail); strings.Contains(b, "CIN-") {
			t.Fatalf("event %+v carries a voucher code", ev)
		}
	}
	if adjusted != adds {
		t.Fatalf("%d stock_adjusted events, want %d: %+v", adjusted, adds, evs)
	}
	e.audit()
}

// With unlimited stock the voucher pool is the limit: n members racing for
// fewer codes get each code once, the others keep their points.
func TestOperatorVouchersNeverHandedOutTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bank := e.partner("Bank", partners.SectorBank, true)
	r := e.operatorReward(nil)
	if _, err := e.svc.UploadOperatorVouchers(e.ctx, "ops@hub.test", r.ID, codes("V", 7)); err != nil {
		t.Fatal(err)
	}
	const n = 20
	ms := make([]members.Member, n)
	for i := range ms {
		ms[i] = e.member(bank.ID, 2000)
	}
	var wg sync.WaitGroup
	refs := make([]string, n)
	errs := make([]error, n)
	for i := range ms {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o, err := e.svc.PlaceOrder(e.ctx, ms[i].ID, "v", catalog.OrderInput{RewardID: r.ID})
			refs[i], errs[i] = o.Reference, err
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range ms {
		if errs[i] != nil {
			if !errors.Is(errs[i], catalog.ErrOutOfStock) {
				t.Fatalf("member %d: %v", ms[i].ID, errs[i])
			}
			e.wantBalance(ms[i].ID, 2000, 0)
			continue
		}
		if seen[refs[i]] {
			t.Fatalf("code %q handed out twice", refs[i])
		}
		seen[refs[i]] = true
	}
	if len(seen) != 7 {
		t.Fatalf("%d codes handed out, want 7", len(seen))
	}
	e.audit()
}

func TestOperatorRewardRulesAndTrail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hotel := e.partner("Hotel", partners.SectorHotel, false)
	partnerReward := e.reward(hotel.ID, nil)
	r := e.operatorReward(func(in *catalog.RewardInput) { in.StockTotal = ptr(int64(3)) })

	var ve *validation.Error
	if _, err := e.svc.CreateOperatorReward(e.ctx, "ops", catalog.RewardInput{Title: "Gift", Category: catalog.CategoryCharity,
		PricePoints: 1, Value: money.Money{Currency: "EUR"}}); !errors.As(err, &ve) || ve.Fields[0].Field != "category" {
		t.Fatalf("charity operator reward: %v; want a validation error on category", err)
	}
	if _, err := e.svc.CreateOperatorReward(e.ctx, "ops", catalog.RewardInput{Title: "Gift", Category: catalog.CategoryVoucher,
		PricePoints: 1, Value: money.Money{Currency: "EUR"}, Fulfilment: catalog.FulfilmentAsync}); !errors.As(err, &ve) || ve.Fields[0].Field != "fulfilment" {
		t.Fatalf("async operator reward: %v; want a validation error on fulfilment", err)
	}
	// Staff cannot edit, stock or retire a partner's reward; partners cannot touch the operator's.
	if _, err := e.svc.UpdateOperatorReward(e.ctx, "ops", partnerReward.ID, catalog.RewardInput{Title: "X",
		Category: catalog.CategoryVoucher, PricePoints: 1, Value: money.Money{Currency: "EUR"}}); !errors.Is(err, catalog.ErrRewardNotFound) {
		t.Fatalf("edit a partner's reward as operator: %v", err)
	}
	if _, err := e.svc.ChangeStock(e.ctx, "ops", partnerReward.ID, catalog.StockChange{Set: ptr(int64(1)), Reason: "x"}); !errors.Is(err, catalog.ErrRewardNotFound) {
		t.Fatalf("stock of a partner's reward: %v", err)
	}
	if _, err := e.svc.UploadVouchers(e.ctx, hotel.ID, r.ID, []string{"X"}); !errors.Is(err, catalog.ErrRewardNotFound) {
		t.Fatalf("partner uploads to the operator's reward: %v", err)
	}
	// Stock: set, take out more than there is (refused), reason required.
	if _, err := e.svc.ChangeStock(e.ctx, "ops", r.ID, catalog.StockChange{Set: ptr(int64(10))}); !errors.As(err, &ve) || ve.Fields[0].Field != "reason" {
		t.Fatalf("stock without a reason: %v", err)
	}
	got, err := e.svc.ChangeStock(e.ctx, "ops", r.ID, catalog.StockChange{Set: ptr(int64(10)), Reason: "count"})
	if err != nil || *got.StockRemaining != 10 {
		t.Fatalf("set stock: %+v %v", got.StockRemaining, err)
	}
	if _, err := e.svc.ChangeStock(e.ctx, "ops", r.ID, catalog.StockChange{Adjust: ptr(int64(-11)), Reason: "loss"}); !errors.As(err, &ve) || ve.Fields[0].Field != "adjust" {
		t.Fatalf("take out 11 of 10: %v; want a validation error on adjust", err)
	}
	if e.stock(r.ID) != 10 {
		t.Fatalf("refused adjustment changed the stock to %d", e.stock(r.ID))
	}
	// Moderation needs a reason to suspend; approval clears it.
	if _, err := e.svc.Moderate(e.ctx, "ops", partnerReward.ID, catalog.Moderation{Visibility: ptr(catalog.VisibilitySuspended)}); !errors.As(err, &ve) {
		t.Fatalf("suspend without a reason: %v", err)
	}
	sus, err := e.svc.Moderate(e.ctx, "ops", partnerReward.ID, catalog.Moderation{Visibility: ptr(catalog.VisibilitySuspended), Reason: "photo is not the room"})
	if err != nil || sus.ModerationReason != "photo is not the room" {
		t.Fatalf("reject: %+v %v", sus, err)
	}
	ok, err := e.svc.Moderate(e.ctx, "ops", partnerReward.ID, catalog.Moderation{Visibility: ptr(catalog.VisibilityVisible)})
	if err != nil || ok.ModerationReason != "" || ok.Visibility != catalog.VisibilityVisible {
		t.Fatalf("approve: %+v %v", ok, err)
	}
	// Images: type from the bytes, size bounded.
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 64)...)
	withImg, err := e.svc.SetImage(e.ctx, "ops", r.ID, "image/png", png)
	if err != nil || !strings.HasPrefix(withImg.ImageURL, fmt.Sprintf("/catalog/images/%d?v=", r.ID)) {
		t.Fatalf("set image: %+v %v", withImg.ImageURL, err)
	}
	for name, c := range map[string]struct {
		ct   string
		data []byte
	}{
		"svg":        {"image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)},
		"html":       {"image/png", []byte("<html><body>hi</body></html>")},
		"mislabeled": {"image/jpeg", png},
		"too large":  {"image/png", append(png, make([]byte, catalog.MaxImageBytes)...)},
		"empty":      {"image/png", nil},
	} {
		if _, err := e.svc.SetImage(e.ctx, "ops", r.ID, c.ct, c.data); !errors.As(err, &ve) || ve.Fields[0].Field != "image" {
			t.Errorf("%s image: %v; want a validation error on image", name, err)
		}
	}
	img, err := e.svc.Image(e.ctx, r.ID)
	if err != nil || img.ContentType != "image/png" || !bytes.Equal(img.Data, png) {
		t.Fatalf("stored image %q %d bytes, %v", img.ContentType, len(img.Data), err)
	}
	// Retire: no longer orderable or editable.
	if _, err := e.svc.RetireReward(e.ctx, "ops", r.ID, "season over"); err != nil {
		t.Fatal(err)
	}
	m := e.member(hotel.ID, 5000)
	if _, err := e.svc.PlaceOrder(e.ctx, m.ID, "r", catalog.OrderInput{RewardID: r.ID}); !errors.Is(err, catalog.ErrRewardUnavailable) {
		t.Fatalf("order a retired reward: %v", err)
	}
	if _, err := e.svc.ChangeStock(e.ctx, "ops", r.ID, catalog.StockChange{Adjust: ptr(int64(1)), Reason: "x"}); !errors.Is(err, catalog.ErrRewardRetired) {
		t.Fatalf("stock of a retired reward: %v", err)
	}
	evs, err := e.svc.Events(e.ctx, r.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	if want := "retired image_set stock_set created"; strings.Join(kinds, " ") != want {
		t.Fatalf("trail %v; want %s", kinds, want)
	}
	e.audit()
}
