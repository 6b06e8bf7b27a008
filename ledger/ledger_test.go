package ledger_test

import (
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
)

func TestEarnThenBurnAttributesToIssuer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earn := f.earn(1, 10, 100, func(r *ledger.EarnRequest) { r.Details = []byte(`{"rule":"v3", "rate":"0.0075"}`) })
	if earn.Points != 100 || earn.BalanceAfter != 100 || len(earn.Entries) != 2 {
		t.Fatalf("earn = %+v, want 100 points, balance 100, 2 entries", earn)
	}
	if string(earn.Details) != `{"rule":"v3", "rate":"0.0075"}` {
		t.Fatalf("details = %s, want them verbatim", earn.Details)
	}
	f.wantBalance(1, 100, 100)
	burn := f.mustBurn(1, 20, 30)
	if burn.BalanceAfter != 70 || len(burn.Consumptions) != 1 || burn.Consumptions[0].IssuerPartnerID != 10 || burn.Consumptions[0].Points != 30 {
		t.Fatalf("burn = %+v, want balance 70 and 30 points consumed from a lot issued by partner 10", burn)
	}
	got, err := f.svc.Get(f.ctx, burn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Points != 30 || got.PartnerID != 20 || len(got.Entries) != 2 || len(got.Consumptions) != 1 || !got.PostedAt.Equal(burn.PostedAt) {
		t.Fatalf("Get = %+v, want the burn as posted %+v", got, burn)
	}
	gotEarn, err := f.svc.Get(f.ctx, earn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotEarn.Details) != string(earn.Details) {
		t.Fatalf("stored details = %s, want %s", gotEarn.Details, earn.Details)
	}
	_, err = f.burn(1, 20, 71)
	wantErr(t, err, ledger.ErrInsufficientPoints)
	f.wantBalance(1, 70, 70)
	_ = time.Second
}

func TestBurnOrderEarliestExpiryThenOldest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	never := f.earn(1, 1, 10) // no expiry: last
	f.clock.Add(time.Hour)
	late := f.earn(1, 2, 10, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(90 * 24 * time.Hour)) }) // later expiry
	f.earn(1, 3, 10, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(30 * 24 * time.Hour)) })
	_ = never
	_ = late
	// Same expiry, but earned earlier: must go before soonNewer.
	soonOlder := f.earn(1, 4, 10, func(r *ledger.EarnRequest) {
		r.OccurredAt = t0.Add(-time.Hour)
		r.ExpiresAt = ptr(t0.Add(30 * 24 * time.Hour))
	})
	_ = soonOlder
	burn := f.mustBurn(1, 9, 35)
	var issuers []int64
	for _, c := range burn.Consumptions {
		issuers = append(issuers, c.IssuerPartnerID)
	}
	want := []int64{4, 3, 2, 1}
	if len(issuers) != 4 || issuers[0] != 4 || issuers[1] != 3 || issuers[2] != 2 || issuers[3] != 1 || burn.Consumptions[3].Points != 5 {
		t.Fatalf("consumed issuers %v (%+v), want %v with 5 from the last", issuers, burn.Consumptions, want)
	}
	lots, err := f.svc.Lots(f.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(lots) != 1 || lots[0].IssuerPartnerID != 1 || lots[0].Remaining != 5 || lots[0].ExpiresAt != nil {
		t.Fatalf("lots = %+v, want the non-expiring lot of partner 1 with 5 left", lots)
	}
}

func TestPendingPointsAreNotSpendable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 40)
	f.earn(1, 1, 60, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(14 * 24 * time.Hour)) })
	b := f.balance(1)
	if b.Total != 100 || b.Pending != 60 || b.Available != 40 {
		t.Fatalf("balance %+v, want total 100, pending 60, available 40", b)
	}
	_, err := f.burn(1, 2, 41)
	wantErr(t, err, ledger.ErrInsufficientPoints)
	f.clock.Add(14 * 24 * time.Hour)
	f.wantBalance(1, 100, 100)
	f.mustBurn(1, 2, 100)
	f.wantBalance(1, 0, 0)
}

func TestExpiredPointsAreNotSpendableAndExpireToBreakage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 30, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(24 * time.Hour)) })
	f.earn(1, 2, 20)
	f.earn(2, 1, 5, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(48 * time.Hour)) })
	f.clock.Add(25 * time.Hour)
	f.wantBalance(1, 50, 20)
	_, err := f.burn(1, 3, 21)
	wantErr(t, err, ledger.ErrInsufficientPoints)

	res, err := f.svc.ExpireLots(f.ctx, f.clock.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lots != 1 || res.Points != 30 || res.Transactions != 1 {
		t.Fatalf("expire = %+v, want 1 lot, 30 points", res)
	}
	again, err := f.svc.ExpireLots(f.ctx, f.clock.Now(), 100)
	if err != nil || again.Lots != 0 {
		t.Fatalf("second expire = %+v, %v; want nothing (idempotent per lot)", again, err)
	}
	f.wantBalance(1, 20, 20)
	f.wantBalance(2, 5, 5)
	txs, _, err := f.svc.List(f.ctx, ledger.Filter{MemberID: 1, Types: []ledger.TxType{ledger.TypeExpiry}})
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 1 || txs[0].Consumptions[0].IssuerPartnerID != 1 || txs[0].Entries[1].Kind != ledger.KindOperatorBreakage {
		t.Fatalf("expiry transactions %+v, want one to breakage attributed to partner 1", txs)
	}
}

func TestExpiryWaitsForActiveHolds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 50, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Hour)) })
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 40, ExpiresAt: t0.Add(3 * time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * time.Hour)
	res, err := f.svc.ExpireLots(f.ctx, f.clock.Now(), 10)
	if err != nil || res.Lots != 0 {
		t.Fatalf("expire with an active hold = %+v, %v; want nothing expired", res, err)
	}
	capt, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID})
	if err != nil || capt.Points != 40 {
		t.Fatalf("capture after lot expiry = %+v, %v; want 40 captured", capt, err)
	}
	res, err = f.svc.ExpireLots(f.ctx, f.clock.Now(), 10)
	if err != nil || res.Points != 10 {
		t.Fatalf("expire after capture = %+v, %v; want the remaining 10 expired", res, err)
	}
	f.wantBalance(1, 0, 0)
}

func TestIdempotentReplayAndMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := key()
	req := ledger.EarnRequest{Idem: k, MemberID: 1, PartnerID: 1, Points: 50, OccurredAt: t0, ExternalRef: "r1",
		Details: []byte(`{"b":1,  "a":2}`)}
	first, err := f.svc.Earn(f.ctx, req)
	if err != nil || first.Replayed {
		t.Fatalf("first earn = %+v, %v", first, err)
	}
	f.clock.Add(time.Minute)
	second, err := f.svc.Earn(f.ctx, req)
	if err != nil || !second.Replayed {
		t.Fatalf("replay = %+v, %v; want the stored result marked replayed", second, err)
	}
	second.Replayed = false
	if a, b := mustJSON(t, first), mustJSON(t, second); a != b {
		t.Fatalf("replay differs from first answer:\n first %s\nreplay %s", a, b)
	}
	f.wantBalance(1, 50, 50)
	req.Points = 51
	_, err = f.svc.Earn(f.ctx, req)
	wantErr(t, err, ledger.ErrIdempotencyMismatch)
	// Same key used for another operation is a mismatch too.
	_, err = f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: k, MemberID: 1, PartnerID: 1, Points: 1})
	wantErr(t, err, ledger.ErrIdempotencyMismatch)
	// A caller-supplied hash decides equality.
	hk := key()
	hk.RequestHash = []byte("body-hash-1")
	if _, err := f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: hk, MemberID: 1, PartnerID: 1, Points: 5}); err != nil {
		t.Fatal(err)
	}
	rep, err := f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: hk, MemberID: 1, PartnerID: 1, Points: 5, OccurredAt: f.clock.Now()})
	if err != nil || !rep.Replayed {
		t.Fatalf("replay with the same caller hash = %+v, %v; want replay", rep, err)
	}
	// A failed operation stores nothing: the retry is evaluated again.
	fk := key()
	_, err = f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: fk, MemberID: 1, PartnerID: 1, Points: 1000})
	wantErr(t, err, ledger.ErrInsufficientPoints)
	f.earn(1, 1, 1000)
	if _, err := f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: fk, MemberID: 1, PartnerID: 1, Points: 1000}); err != nil {
		t.Fatalf("retry after a failure: %v, want success", err)
	}
}

func TestHoldCapturePartialReleasesRest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 60,
		ExpiresAt: t0.Add(time.Hour), Purpose: "order"})
	if err != nil {
		t.Fatal(err)
	}
	b := f.balance(1)
	if b.Held != 60 || b.Available != 40 || b.Total != 100 {
		t.Fatalf("after hold: %+v, want held 60, available 40", b)
	}
	_, err = f.burn(1, 2, 41)
	wantErr(t, err, ledger.ErrInsufficientPoints)
	_, err = f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID, Points: 61})
	if err == nil {
		t.Fatal("capture above the hold succeeded")
	}
	tx, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID, Points: 25})
	if err != nil || tx.Points != 25 || tx.HoldID != h.ID || tx.PartnerID != 7 {
		t.Fatalf("capture = %+v, %v", tx, err)
	}
	f.wantBalance(1, 75, 75)
	got, err := f.svc.GetHold(f.ctx, h.ID)
	if err != nil || got.Status != ledger.HoldCaptured || got.Captured != 25 || got.CaptureTransactionID != tx.ID {
		t.Fatalf("hold = %+v, %v; want captured 25", got, err)
	}
	_, err = f.svc.Void(f.ctx, ledger.VoidRequest{Idem: key(), HoldID: h.ID})
	wantErr(t, err, ledger.ErrHoldNotActive)
	_, err = f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: 999999})
	wantErr(t, err, ledger.ErrNotFound)
}

func TestHoldVoidAndExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	h1, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 30, ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 50, ExpiresAt: t0.Add(2 * time.Hour), Purpose: "exchange",
		Destination: ledger.KindPartnerExchangeOut})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 21, ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
	wantErr(t, err, ledger.ErrInsufficientPoints)
	v, err := f.svc.Void(f.ctx, ledger.VoidRequest{Idem: key(), HoldID: h1.ID})
	if err != nil || v.Status != ledger.HoldVoided {
		t.Fatalf("void = %+v, %v", v, err)
	}
	f.wantBalance(1, 100, 50)
	f.clock.Add(2 * time.Hour)
	_, err = f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h2.ID})
	wantErr(t, err, ledger.ErrHoldNotActive)
	n, err := f.svc.ExpireHolds(f.ctx, 10)
	if err != nil || n != 1 {
		t.Fatalf("ExpireHolds = %d, %v; want 1", n, err)
	}
	got, _ := f.svc.GetHold(f.ctx, h2.ID)
	if got.Status != ledger.HoldExpired {
		t.Fatalf("hold status %s, want expired", got.Status)
	}
	f.wantBalance(1, 100, 100)
}

func TestReverseEarnClawsBackAndBlocksBurns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earn := f.earn(1, 1, 100)
	f.earn(1, 2, 10)
	f.mustBurn(1, 3, 90)
	rev, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: earn.ID, Reason: "refund"})
	if err != nil || rev.Points != 100 || rev.ReversesID != earn.ID || rev.BalanceAfter != -80 {
		t.Fatalf("reverse = %+v, %v; want 100 reversed, balance -80", rev, err)
	}
	b := f.balance(1)
	if !b.Blocked || b.Total != -80 || b.Available != 0 {
		t.Fatalf("balance %+v, want blocked at -80", b)
	}
	f.earn(1, 4, 50)
	_, err = f.burn(1, 3, 1)
	wantErr(t, err, ledger.ErrAccountBlocked)
	f.wantBalance(1, -30, 0)
	f.earn(1, 4, 50)
	f.wantBalance(1, 20, 20)
	_, err = f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: earn.ID, Points: 1})
	wantErr(t, err, ledger.ErrReversalExceedsOriginal)
}

func TestPartialReversalsAreCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	exp := t0.Add(100 * 24 * time.Hour)
	f.earn(1, 5, 100, func(r *ledger.EarnRequest) { r.ExpiresAt = &exp })
	burn := f.mustBurn(1, 6, 60)
	f.wantBalance(1, 40, 40)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: burn.ID, Points: 20}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: burn.ID, Points: 41})
	wantErr(t, err, ledger.ErrReversalExceedsOriginal)
	rest, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: burn.ID})
	if err != nil || rest.Points != 40 {
		t.Fatalf("reverse the rest = %+v, %v; want 40", rest, err)
	}
	f.wantBalance(1, 100, 100)
	lots, _ := f.svc.Lots(f.ctx, 1)
	for _, l := range lots {
		if l.IssuerPartnerID != 5 || l.ExpiresAt == nil || !l.ExpiresAt.Equal(exp) {
			t.Fatalf("lot %+v: restored points must keep issuer 5 and expiry %s", l, exp)
		}
	}
	_, err = f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: rest.ID})
	wantErr(t, err, ledger.ErrNotReversible)
}

func TestTransferMovesLotsWithFeeAndLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 3, 100, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Hour * 24 * 30)) })
	lim := ledger.TransferLimits{PerTransfer: 50, Daily: 60, Monthly: 70}
	tx, err := f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 1, ToMember: 2, Points: 40, Fee: 2, Limits: lim})
	if err != nil || tx.CounterMemberID != 2 {
		t.Fatalf("transfer = %+v, %v", tx, err)
	}
	f.wantBalance(1, 58, 58)
	f.wantBalance(2, 40, 40)
	lots, _ := f.svc.Lots(f.ctx, 2)
	if len(lots) != 1 || lots[0].IssuerPartnerID != 3 || lots[0].ExpiresAt == nil {
		t.Fatalf("recipient lots %+v, want one lot issued by partner 3 with its expiry", lots)
	}
	for _, tc := range []struct {
		pts  ledger.Points
		want error
	}{{51, ledger.ErrTransferLimit}, {21, ledger.ErrTransferLimit}} {
		_, err := f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 1, ToMember: 2, Points: tc.pts, Limits: lim})
		wantErr(t, err, tc.want)
	}
	f.clock.Add(24 * time.Hour)
	_, err = f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 1, ToMember: 2, Points: 31, Limits: lim})
	wantErr(t, err, ledger.ErrTransferLimit) // monthly: 40 + 31 > 70
	_, err = f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 1, ToMember: 1, Points: 1})
	wantErr(t, err, ledger.ErrSameMember)
	_, err = f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 2, ToMember: 1, Points: 41})
	wantErr(t, err, ledger.ErrInsufficientPoints)
}

func TestAdjust(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.svc.Adjust(f.ctx, ledger.AdjustRequest{Idem: key(), MemberID: 1, Points: 10})
	wantValidation(t, err, "reason")
	if _, err := f.svc.Adjust(f.ctx, ledger.AdjustRequest{Idem: key(), MemberID: 1, Points: 25, Reason: "goodwill", Actor: "ops@x"}); err != nil {
		t.Fatal(err)
	}
	f.wantBalance(1, 25, 25)
	tx, err := f.svc.Adjust(f.ctx, ledger.AdjustRequest{Idem: key(), MemberID: 1, Points: -5, Reason: "correction", Actor: "ops@x"})
	if err != nil || tx.Points != -5 || tx.Reason != "correction" || tx.Actor != "ops@x" {
		t.Fatalf("debit = %+v, %v", tx, err)
	}
	_, err = f.svc.Adjust(f.ctx, ledger.AdjustRequest{Idem: key(), MemberID: 1, Points: -21, Reason: "too much"})
	wantErr(t, err, ledger.ErrInsufficientPoints)
	f.wantBalance(1, 20, 20)
}

func TestOperatorFundedBonusHasOwnLot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tx := f.earn(1, 8, 100, func(r *ledger.EarnRequest) { r.OperatorFunded = 20 })
	if tx.Points != 120 || len(tx.Entries) != 3 {
		t.Fatalf("earn = %+v, want 120 points in 3 entries", tx)
	}
	lots, _ := f.svc.Lots(f.ctx, 1)
	if len(lots) != 2 {
		t.Fatalf("lots = %+v, want a partner lot and an operator lot", lots)
	}
	rev, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: tx.ID, Points: 110})
	if err != nil {
		t.Fatal(err)
	}
	var toPartner, toOperator ledger.Points
	for _, e := range rev.Entries {
		switch e.Kind {
		case ledger.KindPartnerIssued:
			toPartner += e.Points
		case ledger.KindOperatorPromotions:
			toOperator += e.Points
		}
	}
	if toPartner != 100 || toOperator != 10 {
		t.Fatalf("reversal gave %d to the partner and %d to promotions, want 100 and 10", toPartner, toOperator)
	}
	f.wantBalance(1, 10, 10)
}

func TestForfeitAndMerge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 70, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Hour * 24 * 10)) })
	f.earn(1, 2, 30, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(time.Hour * 24)) })
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 5, Points: 20, ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	f.earn(2, 1, 5)
	m, err := f.svc.MergeMembers(f.ctx, key(), 1, 2)
	if err != nil || m.Points != 100 || m.CounterMemberID != 2 {
		t.Fatalf("merge = %+v, %v", m, err)
	}
	f.wantBalance(1, 0, 0)
	b := f.balance(2)
	if b.Total != 105 || b.Held != 20 || b.Pending != 30 || b.Available != 55 {
		t.Fatalf("merged balance %+v, want total 105, held 20, pending 30, available 55", b)
	}
	if got, _ := f.svc.GetHold(f.ctx, h.ID); got.MemberID != 2 || got.Status != ledger.HoldActive {
		t.Fatalf("hold after merge %+v, want active on member 2", got)
	}
	hist, _, err := f.svc.List(f.ctx, ledger.Filter{MemberID: 2, Types: []ledger.TxType{ledger.TypeMerge}})
	if err != nil || len(hist) != 1 || hist[0].MemberID != 1 {
		t.Fatalf("member 2 history shows %+v, %v; want the merge from member 1", hist, err)
	}
	_, err = f.svc.MergeMembers(f.ctx, key(), 2, 2)
	wantErr(t, err, ledger.ErrSameMember)

	fo, err := f.svc.Forfeit(f.ctx, key(), 2, "account closed")
	if err != nil || fo.Points != 105 {
		t.Fatalf("forfeit = %+v, %v; want 105 forfeited", fo, err)
	}
	if got, _ := f.svc.GetHold(f.ctx, h.ID); got.Status != ledger.HoldVoided {
		t.Fatalf("hold after forfeit %+v, want voided", got)
	}
	f.wantBalance(2, 0, 0)
	empty, err := f.svc.Forfeit(f.ctx, key(), 2, "again")
	if err != nil || empty.ID != 0 || empty.Points != 0 {
		t.Fatalf("forfeit of nothing = %+v, %v; want an empty result", empty, err)
	}
}

func TestListPartnerIsolationAndPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100) // A issues
	f.earn(2, 2, 100) // B issues
	f.mustBurn(1, 2, 10)
	f.mustBurn(2, 2, 10)
	f.mustBurn(2, 3, 10)
	got, _, err := f.svc.List(f.ctx, ledger.Filter{PartnerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Partner 1 sees its earn and the burn at partner 2 of its points.
	if len(got) != 2 || got[0].Type != ledger.TypeBurn || got[1].Type != ledger.TypeEarn {
		t.Fatalf("partner 1 sees %d transactions %+v, want its earn and the burn of its points", len(got), got)
	}
	got, _, _ = f.svc.List(f.ctx, ledger.Filter{PartnerID: 3})
	if len(got) != 1 || got[0].PartnerID != 3 {
		t.Fatalf("partner 3 sees %+v, want only the burn at it", got)
	}
	var all []ledger.Transaction
	cursor := ""
	for i := 0; i < 10; i++ {
		page, next, err := f.svc.List(f.ctx, ledger.Filter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 5 || all[0].ID < all[4].ID {
		t.Fatalf("paged %d transactions, want 5 newest first", len(all))
	}
	_, _, err = f.svc.List(f.ctx, ledger.Filter{Cursor: "x"})
	wantErr(t, err, ledger.ErrInvalidCursor)
}

func TestInComposesWithCallerTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 10)
	// A rolled-back caller transaction leaves no trace.
	tx := f.db.Begin()
	if _, err := f.svc.In(tx).Burn(f.ctx, ledger.BurnRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 10}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	f.wantBalance(1, 10, 10)
	// A failed ledger operation leaves the caller's transaction usable.
	tx = f.db.Begin()
	_, err := f.svc.In(tx).Burn(f.ctx, ledger.BurnRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 11})
	wantErr(t, err, ledger.ErrInsufficientPoints)
	if _, err := f.svc.In(tx).Burn(f.ctx, ledger.BurnRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 4}); err != nil {
		t.Fatalf("burn after a failed one in the same transaction: %v", err)
	}
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	f.wantBalance(1, 6, 6)
}

func TestValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"earn without key", func() error {
			_, err := f.svc.Earn(f.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "s"}, MemberID: 1, PartnerID: 1, Points: 1})
			return err
		}, "idempotency_key"},
		{"earn zero points", func() error {
			_, err := f.svc.Earn(f.ctx, ledger.EarnRequest{Idem: key(), MemberID: 1, PartnerID: 1})
			return err
		}, "points"},
		{"earn without partner", func() error {
			_, err := f.svc.Earn(f.ctx, ledger.EarnRequest{Idem: key(), MemberID: 1, Points: 5})
			return err
		}, "partner_id"},
		{"earn bad details", func() error {
			_, err := f.svc.Earn(f.ctx, ledger.EarnRequest{Idem: key(), MemberID: 1, PartnerID: 1, Points: 5, Details: []byte("{")})
			return err
		}, "details"},
		{"burn negative", func() error {
			_, err := f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: key(), MemberID: 1, PartnerID: 1, Points: -5})
			return err
		}, "points"},
		{"hold in the past", func() error {
			_, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 1, Points: 5, Purpose: "pos", ExpiresAt: t0})
			return err
		}, "expires_at"},
		{"hold bad purpose", func() error {
			_, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 1, Points: 5, Purpose: "gift", ExpiresAt: t0.Add(time.Hour)})
			return err
		}, "purpose"},
		{"key too long", func() error {
			k := ledger.Idempotency{Scope: "s", Key: string(make([]byte, 201))}
			_, err := f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: k, MemberID: 1, PartnerID: 1, Points: 5})
			return err
		}, "idempotency_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantValidation(t, tc.call(), tc.field) })
	}
}

func TestReverseCaptureAndDebtRepaidByTransferAndMerge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 40, ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	capt, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: capt.ID, Points: 15}); err != nil {
		t.Fatal(err)
	}
	f.wantBalance(1, 75, 75)

	// Member 2 owes 30 after a clawback; a transfer to it repays the debt first.
	e2 := f.earn(2, 3, 30)
	f.mustBurn(2, 4, 30)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: e2.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantBalance(2, -30, 0)
	tr, err := f.svc.Transfer(f.ctx, ledger.TransferRequest{Idem: key(), FromMember: 1, ToMember: 2, Points: 20})
	if err != nil {
		t.Fatal(err)
	}
	var repaid ledger.Points
	for _, c := range tr.Consumptions {
		repaid += c.Points
	}
	if repaid != 40 { // 20 taken from member 1's lots + 20 of the new lot repaying member 2's debt
		t.Fatalf("transfer consumptions %+v, want 20 from the sender and 20 repaying the debt", tr.Consumptions)
	}
	f.wantBalance(2, -10, 0)
	// Merging the indebted member moves its debt onto the survivor's lots.
	if _, err := f.svc.MergeMembers(f.ctx, key(), 2, 1); err != nil {
		t.Fatal(err)
	}
	f.wantBalance(2, 0, 0)
	f.wantBalance(1, 45, 45)
}
