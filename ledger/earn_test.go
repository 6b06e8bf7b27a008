package ledger_test

import (
	"strconv"
	"testing"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
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

// EarnThen sends its follow-up with every posting statement; the follow-up
// finds the transaction just posted in PostedEarnSetting, also on a member's
// first earn (the posting is sent again once the account exists), and not on
// a replay.
func TestEarnThenFollowUpSeesThePostedTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	earnThen := func(req ledger.EarnRequest) (ledger.Transaction, *string) {
		t.Helper()
		var posted *string
		var tr ledger.Transaction
		err := database.Transaction(f.ctx, f.db, func(tx *gorm.DB) error {
			var err error
			tr, err = f.svc.Joined(tx).EarnThen(f.ctx, req, &database.Follow{
				SQL:  `SELECT nullif(current_setting('` + ledger.PostedEarnSetting + `', true), '')`,
				Dest: []any{&posted}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return tr, posted
	}
	req := ledger.EarnRequest{Idem: key(), MemberID: 7, PartnerID: 2, Points: 40, OccurredAt: t0, ExternalRef: "then"}
	// Member 7's first earn: no account yet.
	first, posted := earnThen(req)
	if posted == nil || *posted != strconv.FormatInt(first.ID, 10) {
		t.Fatalf("the follow-up of a first earn saw %v, want transaction %d", posted, first.ID)
	}
	second, posted := earnThen(ledger.EarnRequest{Idem: key(), MemberID: 7, PartnerID: 2, Points: 5, OccurredAt: t0, ExternalRef: "then-2"})
	if second.Replayed || posted == nil || *posted != strconv.FormatInt(second.ID, 10) {
		t.Fatalf("the follow-up of an earn saw %v, want transaction %d", posted, second.ID)
	}
	again, posted := earnThen(req)
	if !again.Replayed || again.ID != first.ID || posted != nil {
		t.Fatalf("replay %+v: the follow-up saw %v, want nothing", again, posted)
	}
	f.wantBalance(7, 45, 45)
}
