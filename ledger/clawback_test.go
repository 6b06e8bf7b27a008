package ledger_test

import (
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
)

// wantParts checks that the member's balance has these parts, and that they
// add up to the total.
func (f *fixture) wantParts(member int64, total, available, pending, held, expired, owed ledger.Points) {
	f.t.Helper()
	b := f.balance(member)
	want := ledger.Balance{MemberID: member, Total: total, Available: available, Pending: pending, Held: held,
		Expired: expired, Owed: owed, Blocked: total < 0}
	if b != want {
		f.t.Fatalf("member %d: balance %+v, want %+v", member, b, want)
	}
	if sum := b.Available + b.Pending + b.Held + b.Expired - b.Owed; sum != b.Total {
		f.t.Fatalf("member %d: parts of %+v add up to %d, not the total", member, b, sum)
	}
}

// A clawback never voids a hold: the hold is captured in full, into debt,
// and reversing that capture gives back exactly what it took. The audit
// (at cleanup) holds throughout.
func TestClawbackKeepsHoldsAndTheirCaptureGoesIntoDebt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earn := f.earn(1, 1, 100)
	f.mustBurn(1, 3, 30)
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 60,
		ExpiresAt: t0.Add(time.Hour), Purpose: "exchange", Destination: ledger.KindPartnerExchangeOut})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: earn.ID, Reason: "refund"})
	if err != nil || rev.BalanceAfter != -30 {
		t.Fatalf("reverse = %+v, %v; want balance -30", rev, err)
	}
	if got, _ := f.svc.GetHold(f.ctx, h.ID); got.Status != ledger.HoldActive {
		t.Fatalf("hold %+v after the clawback, want it still active", got)
	}
	f.assertAudit()
	// 30 owed, and the 60 held points that have no cover any more.
	f.wantParts(1, -30, 0, 0, 60, 0, 90)
	_, err = f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 1, ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
	wantErr(t, err, ledger.ErrAccountBlocked)

	c, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID})
	if err != nil || c.Points != 60 || c.BalanceAfter != -90 || len(c.Consumptions) != 0 {
		t.Fatalf("capture = %+v, %v; want 60 points into debt (balance -90), no lot consumed", c, err)
	}
	f.wantParts(1, -90, 0, 0, 0, 0, 90)
	f.assertAudit()

	// Later earns repay the debt; the partner then reverses the capture: the
	// points that went into debt come back as a lot without issuer.
	f.earn(1, 4, 200)
	f.wantParts(1, 110, 110, 0, 0, 0, 0)
	back, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: c.ID, Points: 40})
	if err != nil || back.BalanceAfter != 150 {
		t.Fatalf("reverse capture = %+v, %v; want balance 150", back, err)
	}
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: c.ID}); err != nil {
		t.Fatalf("reverse the rest of the capture: %v", err)
	}
	f.wantParts(1, 170, 170, 0, 0, 0, 0)
	lots, _ := f.svc.Lots(f.ctx, 1)
	var operator ledger.Points
	for _, l := range lots {
		if l.IssuerPartnerID == 0 {
			operator += l.Remaining
		}
	}
	if operator != 60 {
		t.Fatalf("lots %+v: want 60 points without issuer (the capture's part that went into debt)", lots)
	}
}

// A capture of an uncovered hold while still in debt, then reversed: the
// reversal cancels the debt it made and leaves no lot beside debt.
func TestReversingACaptureIntoDebtCancelsThatDebt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earn := f.earn(1, 1, 100)
	f.mustBurn(1, 3, 20)
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 50, ExpiresAt: t0.Add(time.Hour), Purpose: "order"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: earn.ID, Points: 90}); err != nil {
		t.Fatal(err)
	}
	// The clawback emptied the lots and owes 10; the 50 held points have no cover.
	f.wantParts(1, -10, 0, 0, 50, 0, 60)
	c, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID})
	if err != nil || c.BalanceAfter != -60 || len(c.Consumptions) != 0 {
		t.Fatalf("capture = %+v, %v", c, err)
	}
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: c.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, -10, 0, 0, 0, 0, 10)
}

// A clawback of partner A's earn takes A's remaining points, then the
// member's available points, and leaves partner B's pending (return-window)
// points for B; when B then reverses its own earn, its points are there.
func TestClawbackTakesAvailablePointsBeforeAnotherPartnersPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	soon, later := t0.Add(10*24*time.Hour), t0.Add(300*24*time.Hour)
	a := f.earn(1, 1, 100, func(r *ledger.EarnRequest) { r.ExpiresAt = &later })
	f.mustBurn(1, 9, 80)
	c := f.earn(1, 3, 200, func(r *ledger.EarnRequest) { r.ExpiresAt = &later })
	// B's points are pending for a week and expire first: the burn order
	// would take them before C's.
	b := f.earn(1, 2, 50, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(7 * 24 * time.Hour)); r.ExpiresAt = &soon })
	f.wantParts(1, 270, 220, 50, 0, 0, 0)

	rev, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	byIssuer := map[int64]ledger.Points{}
	for _, x := range rev.Consumptions {
		byIssuer[x.IssuerPartnerID] += x.Points
	}
	if len(byIssuer) != 2 || byIssuer[1] != 20 || byIssuer[3] != 80 {
		t.Fatalf("clawback took %v by issuer, want A's own 20 then 80 of C's available points, none of B's pending", byIssuer)
	}
	f.wantParts(1, 170, 120, 50, 0, 0, 0)
	rb, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: b.ID})
	if err != nil || rb.BalanceAfter != 120 {
		t.Fatalf("B's reversal = %+v, %v; want balance 120", rb, err)
	}
	f.wantParts(1, 120, 120, 0, 0, 0, 0)
	if lots, _ := f.svc.Lots(f.ctx, 1); len(lots) != 1 || lots[0].EarnTransactionID != c.ID || lots[0].Remaining != 120 {
		t.Fatalf("lots %+v, want only C's lot with 120 left", lots)
	}
}

// The parts of the balance add up in every state a member passes through:
// pending, held, expired but not yet swept, expired points covering a hold,
// a hold a clawback uncovered while the balance is still positive, captures
// into debt, and repayment.
func TestBalancePartsAddUpInEveryState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.wantParts(1, 0, 0, 0, 0, 0, 0)
	f.earn(1, 1, 100, func(r *ledger.EarnRequest) { r.ExpiresAt = ptr(t0.Add(time.Hour)) })
	f.earn(1, 2, 50, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(48 * time.Hour)) })
	c := f.earn(1, 3, 200)
	f.wantParts(1, 350, 300, 50, 0, 0, 0)
	h1, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 120, ExpiresAt: t0.Add(24 * time.Hour), Purpose: "order"})
	if err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, 350, 180, 50, 120, 0, 0)
	f.clock.Add(2 * time.Hour) // A's 100 points expire; the expiry run waits for the hold
	f.wantParts(1, 350, 80, 50, 120, 100, 0)
	h2, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 80, ExpiresAt: t0.Add(24 * time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, 350, 0, 50, 200, 100, 0)
	// C takes its 200 back: its own lot. The holds keep going, with 100
	// settled (expired) points under 200 held: 100 owed, balance positive.
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: c.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, 150, 0, 50, 200, 0, 100)
	f.assertAudit()
	// The first capture takes the expired points, then 20 pending ones.
	if _, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h1.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, 30, 0, 30, 80, 0, 80)
	// The second takes the last 30 pending points and owes the other 50.
	if _, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h2.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, -50, 0, 0, 0, 0, 50)
	f.earn(1, 4, 20)
	f.wantParts(1, -30, 0, 0, 0, 0, 30)
	f.earn(1, 4, 40)
	f.wantParts(1, 10, 10, 0, 0, 0, 0)
}

// A merge that brings debt takes the survivor's points in the clawback
// order and keeps the survivor's holds.
func TestMergedDebtKeepsTheSurvivorsHolds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.earn(1, 1, 100)
	f.mustBurn(1, 3, 100)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: e.ID}); err != nil {
		t.Fatal(err)
	}
	f.earn(2, 2, 150)
	f.earn(2, 5, 40, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(48 * time.Hour)) })
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 2, PartnerID: 7, Points: 120, ExpiresAt: t0.Add(time.Hour), Purpose: "order"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.svc.MergeMembers(f.ctx, key(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	// 30 available points, then the 40 pending ones, then 30 of the held.
	byIssuer := map[int64]ledger.Points{}
	for _, x := range m.Consumptions {
		byIssuer[x.IssuerPartnerID] += x.Points
	}
	if byIssuer[2] != 60 || byIssuer[5] != 40 {
		t.Fatalf("merge took %v by issuer, want 60 of partner 2's settled points and 40 of partner 5's pending", byIssuer)
	}
	if got, _ := f.svc.GetHold(f.ctx, h.ID); got.Status != ledger.HoldActive {
		t.Fatalf("hold %+v after the merge, want active", got)
	}
	f.wantParts(2, 90, 0, 0, 120, 0, 30)
}

// The audit allows held points beyond cover only for holds older than a
// clawback: a hold placed after the member's last clawback must be covered.
func TestAuditFindsHeldPointsBeyondCover(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.skipAudit()
	f.earn(1, 1, 100)
	e := f.earn(1, 2, 100)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: e.ID}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 3, Points: 60, ExpiresAt: t0.Add(time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	f.assertAudit()
	// A hold that grew beyond the 100 points there are, after the clawback.
	if err := f.db.Exec(`UPDATE ledger_holds SET points = 160 WHERE id = ?`, h.ID).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.db.Exec(`UPDATE ledger_accounts SET held = 160 WHERE kind = 'member' AND owner_id = 1`).Error; err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.Audit(f.ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Name == "holds within available points" {
			if c.OK || c.Violations != 1 {
				t.Fatalf("audit check %+v, want one violation", c)
			}
			return
		}
	}
	t.Fatalf("no hold check in %+v", rep)
}

// A capture whose hold a clawback uncovered may take pending points; its
// reversal gives them back still pending, not spendable early.
func TestReversedCaptureGivesPendingPointsBackPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.earn(1, 1, 100)
	f.earn(1, 2, 50, func(r *ledger.EarnRequest) { r.AvailableAt = ptr(t0.Add(48 * time.Hour)) })
	c := f.earn(1, 3, 60)
	h, err := f.svc.Hold(f.ctx, ledger.HoldRequest{Idem: key(), MemberID: 1, PartnerID: 7, Points: 150, ExpiresAt: t0.Add(time.Hour), Purpose: "order"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: c.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, 150, 0, 50, 150, 0, 50)
	capture, err := f.svc.Capture(f.ctx, ledger.CaptureRequest{Idem: key(), HoldID: h.ID})
	if err != nil || capture.BalanceAfter != 0 {
		t.Fatalf("capture = %+v, %v; want the settled 100 and the pending 50 taken", capture, err)
	}
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: capture.ID}); err != nil {
		t.Fatal(err)
	}
	f.wantParts(1, 150, 100, 50, 0, 0, 0)
}
