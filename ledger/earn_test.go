package ledger_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
)

// An earn that repays clawback debt across both of its lots (partner-funded
// first, then the operator's bonus) records the repayment as consumptions of
// the new lots, in the one-statement posting, and its replay renders the same
// answer from the stored transaction.
func TestEarnRepaysDebtAcrossBothLotsAndReplaysIdentically(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earn := f.earn(1, 1, 100)
	f.mustBurn(1, 3, 100)
	if _, err := f.svc.Reverse(f.ctx, ledger.ReverseRequest{Idem: key(), TransactionID: earn.ID, Reason: "refund"}); err != nil {
		t.Fatal(err)
	}
	f.wantBalance(1, -100, 0)
	req := ledger.EarnRequest{Idem: key(), MemberID: 1, PartnerID: 2, Points: 60, OperatorFunded: 50, OccurredAt: t0,
		ExternalRef: "debt", Details: []byte(`{"x":1}`)}
	first, err := f.svc.Earn(f.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.BalanceAfter != 10 || len(first.Entries) != 3 || len(first.Consumptions) != 2 {
		t.Fatalf("earn = %+v; want balance 10, 3 entries, 2 consumptions", first)
	}
	if c := first.Consumptions; c[0].Points != 60 || c[0].IssuerPartnerID != 2 || c[1].Points != 40 || c[1].IssuerPartnerID != 0 {
		t.Fatalf("consumptions %+v; want 60 of partner 2's lot, then 40 of the operator's", c)
	}
	f.wantBalance(1, 10, 10)
	again, err := f.svc.Earn(f.ctx, req)
	if err != nil || !again.Replayed {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	again.Replayed = false
	if a, b := mustJSON(t, first), mustJSON(t, again); a != b {
		t.Fatalf("replay differs:\n first %s\nreplay %s", a, b)
	}
	// Inside a caller's transaction, joined without a savepoint: the same.
	var joined ledger.Transaction
	if err := f.db.Transaction(func(tx *gorm.DB) error {
		var err error
		joined, err = f.svc.Joined(tx).Earn(f.ctx, req)
		return err
	}); err != nil || !joined.Replayed || joined.ID != first.ID {
		t.Fatalf("joined replay = %+v, %v", joined, err)
	}
}
