package members_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"gorm.io/gorm"
)

// earn credits points issued by partner, expiring in a year unless expires is set.
func earn(t *testing.T, e env, memberID, partner int64, points ledger.Points, key string) ledger.Transaction {
	t.Helper()
	exp := e.clock.Now().AddDate(1, 0, 0)
	tx, err := e.ledger.Earn(context.Background(), ledger.EarnRequest{
		Idem:     ledger.Idempotency{Scope: fmt.Sprintf("partner:%d", partner), Key: key},
		MemberID: memberID, PartnerID: partner, Points: points,
		OccurredAt: e.clock.Now(), ExpiresAt: &exp, ExternalRef: key,
	})
	if err != nil {
		t.Fatalf("earn %d for member %d: %v", points, memberID, err)
	}
	return tx
}

func balance(t *testing.T, e env, memberID int64) ledger.Points {
	t.Helper()
	b, err := e.ledger.Balance(context.Background(), memberID)
	if err != nil {
		t.Fatalf("balance of %d: %v", memberID, err)
	}
	return b.Total
}

// history is the member's ledger transactions as JSON, to compare snapshots.
func history(t *testing.T, e env, memberID int64) string {
	t.Helper()
	txs, _, err := e.ledger.List(context.Background(), ledger.Filter{MemberID: memberID, Limit: 500})
	if err != nil {
		t.Fatalf("list transactions of %d: %v", memberID, err)
	}
	b, _ := json.Marshal(txs)
	return string(b)
}

func hasIdentifier(m members.Member, typ members.IdentifierType, value string) bool {
	for _, id := range m.Identifiers {
		if id.Type == typ && id.Value == value {
			return true
		}
	}
	return false
}

func TestMergeMovesIdentifiersPointsAndLots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sur := enrol(t, e, mustIdent(t, "email", "ana@example.com", 0), members.Profile{GivenName: "Ana"})
	dup := enrol(t, e, mustIdent(t, "partner_ref", "FF998877", 9), members.Profile{GivenName: "Ana S."})
	if _, err := e.svc.AddIdentifier(ctx, dup.ID, mustIdent(t, "phone", "+351912345678", 0)); err != nil {
		t.Fatal(err)
	}
	earn(t, e, sur.ID, 1, 100, "e-sur")
	earn(t, e, dup.ID, 9, 250, "e-dup")

	e.clock.Add(time.Hour)
	req := members.MergeRequest{SurvivorID: sur.ID, DuplicateID: dup.ID, Actor: "operator:ops", Reason: "same passport"}
	mg, err := e.svc.Merge(ctx, req)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if mg.ID == 0 || mg.IdentifiersMoved != 3 || mg.LedgerTransactionID == 0 || !mg.MergedAt.Equal(e.clock.Now()) {
		t.Fatalf("merge record = %+v; want an id, 3 identifiers moved (ref, phone, card), a ledger transaction", mg)
	}

	got, err := e.svc.Get(ctx, sur.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		typ members.IdentifierType
		v   string
	}{{"email", "ana@example.com"}, {"partner_ref", "FF998877"}, {"phone", "+351912345678"}, {"card", sur.CardNumber}, {"card", dup.CardNumber}} {
		if !hasIdentifier(got, want.typ, want.v) {
			t.Errorf("survivor lacks %s %s after merge: %+v", want.typ, want.v, got.Identifiers)
		}
	}
	if got.CardNumber != sur.CardNumber {
		t.Errorf("survivor's primary card changed to %s, want %s", got.CardNumber, sur.CardNumber)
	}
	// The duplicate's card, still in someone's wallet, finds the survivor.
	if m, err := e.svc.Lookup(ctx, members.Identifier{Type: "card", Value: dup.CardNumber}); err != nil || m.ID != sur.ID {
		t.Errorf("lookup by the duplicate's card = %d, %v; want survivor %d", m.ID, err, sur.ID)
	}
	d, err := e.svc.Get(ctx, dup.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != members.StatusMerged || d.MergedIntoID != sur.ID || len(d.Identifiers) != 0 {
		t.Errorf("duplicate after merge = %+v; want merged into %d without identifiers", d, sur.ID)
	}
	if !errors.Is(members.CanTransact(d), members.ErrMemberInactive) {
		t.Error("a merged member must not transact")
	}

	if b := balance(t, e, sur.ID); b != 350 {
		t.Errorf("survivor balance = %d, want 350", b)
	}
	if b := balance(t, e, dup.ID); b != 0 {
		t.Errorf("duplicate balance = %d, want 0", b)
	}
	lots, err := e.ledger.Lots(ctx, sur.ID)
	if err != nil {
		t.Fatal(err)
	}
	var fromDup ledger.Points
	for _, l := range lots {
		if l.IssuerPartnerID == 9 {
			fromDup += l.Remaining
		}
	}
	if fromDup != 250 {
		t.Errorf("survivor holds %d remaining points issued by partner 9, want 250 (lots keep their issuer): %+v", fromDup, lots)
	}

	// Idempotent: the same merge again returns the same record, moves nothing.
	again, err := e.svc.Merge(ctx, req)
	if err != nil || again.ID != mg.ID || again.LedgerTransactionID != mg.LedgerTransactionID {
		t.Fatalf("repeated merge = %+v, %v; want the original %+v", again, err, mg)
	}
	if n := count(t, e.db, `SELECT count(*) FROM member_merges`); n != 1 {
		t.Fatalf("want 1 merge record, got %d", n)
	}
	if b := balance(t, e, sur.ID); b != 350 {
		t.Errorf("survivor balance after repeated merge = %d, want 350", b)
	}
}

func TestMergeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := enrol(t, e, mustIdent(t, "email", "a@example.com", 0), members.Profile{})
	b := enrol(t, e, mustIdent(t, "email", "b@example.com", 0), members.Profile{})
	c := enrol(t, e, mustIdent(t, "email", "c@example.com", 0), members.Profile{})
	closed := enrol(t, e, mustIdent(t, "email", "d@example.com", 0), members.Profile{})
	if _, err := e.svc.Close(ctx, closed.ID, "member asked", "operator:ops"); err != nil {
		t.Fatal(err)
	}
	merge := func(sur, dup int64) error {
		_, err := e.svc.Merge(ctx, members.MergeRequest{SurvivorID: sur, DuplicateID: dup, Actor: "operator:ops", Reason: "dup"})
		return err
	}
	wantErr(t, merge(a.ID, a.ID), members.ErrInvalidMerge)
	wantErr(t, merge(closed.ID, a.ID), members.ErrInvalidMerge)
	wantErr(t, merge(a.ID, closed.ID), members.ErrInvalidMerge)
	wantErr(t, merge(a.ID, 987654), members.ErrNotFound)
	if err := merge(a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, merge(b.ID, c.ID), members.ErrInvalidMerge) // into a merged member
	wantErr(t, merge(c.ID, b.ID), members.ErrInvalidMerge) // b already merged into a
	_, err := e.svc.Merge(ctx, members.MergeRequest{SurvivorID: a.ID, DuplicateID: c.ID})
	wantFieldError(t, err, "actor")
	if n := count(t, e.db, `SELECT count(*) FROM member_merges`); n != 1 {
		t.Fatalf("refused merges left records: %d, want 1", n)
	}
}

func TestCloseForfeitsPointsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := enrol(t, e, mustIdent(t, "email", "z@example.com", 0), members.Profile{GivenName: "Zed"})
	earn(t, e, m.ID, 3, 500, "e1")

	_, err := e.svc.Close(ctx, m.ID, "", "operator:ops")
	wantFieldError(t, err, "reason")
	closed, err := e.svc.Close(ctx, m.ID, "member asked to leave", "operator:ops")
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	if closed.Status != members.StatusClosed || closed.ClosedAt == nil || closed.StatusReason != "member asked to leave" {
		t.Fatalf("closed member = %+v", closed)
	}
	if !errors.Is(members.CanTransact(closed), members.ErrMemberInactive) {
		t.Fatal("a closed member must not transact")
	}
	if b := balance(t, e, m.ID); b != 0 {
		t.Fatalf("balance after close = %d, want 0 (forfeited)", b)
	}
	forfeits, _, err := e.ledger.List(ctx, ledger.Filter{MemberID: m.ID, Types: []ledger.TxType{ledger.TypeForfeit}})
	if err != nil || len(forfeits) != 1 {
		t.Fatalf("want 1 forfeit transaction, got %d (%v)", len(forfeits), err)
	}

	// Closing again changes nothing.
	if _, err := e.svc.Close(ctx, m.ID, "again", "operator:ops"); err != nil {
		t.Fatalf("second close: %v", err)
	}
	forfeits, _, _ = e.ledger.List(ctx, ledger.Filter{MemberID: m.ID, Types: []ledger.TxType{ledger.TypeForfeit}})
	if len(forfeits) != 1 {
		t.Fatalf("second close made %d forfeits, want still 1", len(forfeits))
	}
	_, err = e.svc.UpdateProfile(ctx, m.ID, members.Profile{GivenName: "New"})
	wantErr(t, err, members.ErrMemberInactive)
	_, err = e.svc.Reactivate(ctx, m.ID, "operator:ops")
	wantErr(t, err, members.ErrMemberInactive)
	_, err = e.svc.SetConsent(ctx, m.ID, members.Consent{Marketing: true, Source: "portal"}, "member:self")
	wantErr(t, err, members.ErrMemberInactive)
}

func TestExportHoldsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m, _, err := e.svc.Enrol(ctx, members.EnrolRequest{Identifier: mustIdent(t, "email", "ana@example.com", 0),
		Profile: members.Profile{GivenName: "Ana", FamilyName: "Silva", BirthDate: "1990-04-01"},
		Consent: members.Consent{Marketing: true, Source: "enrolment"}})
	if err != nil {
		t.Fatal(err)
	}
	dup := enrol(t, e, mustIdent(t, "email", "ana.old@example.com", 0), members.Profile{GivenName: "Ana"})
	earn(t, e, m.ID, 1, 120, "e1")
	earn(t, e, dup.ID, 2, 80, "e2")
	if _, err := e.svc.Merge(ctx, members.MergeRequest{SurvivorID: m.ID, DuplicateID: dup.ID, Actor: "operator:ops", Reason: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetConsent(ctx, m.ID, members.Consent{Marketing: false, Source: "portal"}, "member:self"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetNotification(ctx, m.ID, members.NoticeOrders, false); err != nil {
		t.Fatal(err)
	}

	x, err := e.svc.Export(ctx, m.ID, "operator:dpo")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if x.Member.ID != m.ID || x.Member.Profile.FamilyName != "Silva" || x.Member.Profile.BirthDate != "1990-04-01" {
		t.Errorf("export profile = %+v", x.Member)
	}
	if !hasIdentifier(x.Member, "email", "ana.old@example.com") || !hasIdentifier(x.Member, "card", m.CardNumber) {
		t.Errorf("export identifiers = %+v", x.Member.Identifiers)
	}
	if len(x.Consents) != 2 || !x.Consents[0].Granted || x.Consents[1].Granted {
		t.Errorf("export consents = %+v; want grant then withdrawal", x.Consents)
	}
	if len(x.MailOptOuts) != 1 || x.MailOptOuts[0] != members.NoticeOrders {
		t.Errorf("export mail opt-outs = %v; want orders", x.MailOptOuts)
	}
	// The register holds the consent withdrawal, then this export.
	if n := len(x.Requests); n != 2 || x.Requests[0].Kind != members.DSRConsent || x.Requests[1].Kind != members.DSRExport ||
		x.Requests[1].Actor != "operator:dpo" {
		t.Errorf("export register entries = %+v; want the consent withdrawal and this export", x.Requests)
	}
	if len(x.Merges) != 1 || x.Merges[0].DuplicateID != dup.ID || len(x.MergedMembers) != 1 || x.MergedMembers[0].ID != dup.ID {
		t.Errorf("export merges = %+v, merged members = %+v", x.Merges, x.MergedMembers)
	}
	if x.Balance.Total != 200 {
		t.Errorf("export balance = %+v, want total 200", x.Balance)
	}
	var lotPoints ledger.Points
	for _, l := range x.Lots {
		lotPoints += l.Remaining
	}
	if lotPoints != 200 {
		t.Errorf("export lots hold %d points, want 200", lotPoints)
	}
	types := map[ledger.TxType]int{}
	for _, tx := range x.Transactions {
		types[tx.Type]++
	}
	if types[ledger.TypeEarn] != 2 || types[ledger.TypeMerge] < 1 {
		t.Errorf("export transactions by type = %v; want both earns and the merge", types)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatalf("export is not JSON-serialisable: %v", err)
	}
	for _, want := range []string{`"family_name":"Silva"`, `"ana.old@example.com"`, `"data_subject_requests"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("export JSON lacks %s", want)
		}
	}
	// The register keeps every request.
	if _, err := e.svc.Export(ctx, m.ID, "member:self"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.db, `SELECT count(*) FROM data_subject_requests WHERE member_id = ? AND kind = 'export'`, m.ID); n != 2 {
		t.Errorf("register holds %d exports, want 2", n)
	}
	_, err = e.svc.Export(ctx, 424242, "operator:dpo")
	wantErr(t, err, members.ErrNotFound)
}

func TestEraseRemovesPersonalDataKeepsLedger(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m, _, err := e.svc.Enrol(ctx, members.EnrolRequest{Identifier: mustIdent(t, "email", "ana@example.com", 0),
		Profile: members.Profile{GivenName: "Ana", FamilyName: "Silva", Email: "ana@example.com",
			Phone: "+351912345678", BirthDate: "1990-04-01"},
		Consent: members.Consent{Marketing: true, Source: "enrolment"}})
	if err != nil {
		t.Fatal(err)
	}
	dup := enrol(t, e, mustIdent(t, "phone", "+351911111111", 0), members.Profile{GivenName: "Ana", FamilyName: "Silva"})
	if _, err := e.svc.AddIdentifier(ctx, m.ID, mustIdent(t, "partner_ref", "TAP12345", 4)); err != nil {
		t.Fatal(err)
	}
	earn(t, e, m.ID, 1, 300, "e1")
	earn(t, e, dup.ID, 1, 50, "e2")
	if _, err := e.svc.Merge(ctx, members.MergeRequest{SurvivorID: m.ID, DuplicateID: dup.ID, Actor: "operator:ops", Reason: "dup"}); err != nil {
		t.Fatal(err)
	}

	_, err = e.svc.Erase(ctx, m.ID, "operator:dpo")
	wantErr(t, err, members.ErrNotClosed)
	if _, err := e.svc.Close(ctx, m.ID, "erasure requested", "operator:dpo"); err != nil {
		t.Fatal(err)
	}
	before := history(t, e, m.ID) + history(t, e, dup.ID)
	balBefore := balance(t, e, m.ID)
	// Mail to her: one sent, one still queued; and one to someone else.
	var sentID, queuedID, otherID int64
	if err := e.db.Transaction(func(tx *gorm.DB) (err error) {
		msg := func(to string) mail.Message {
			return mail.Message{Template: "claim", To: to, Name: "Ana Silva", Data: map[string]any{"url": "x"}}
		}
		if sentID, err = mail.Queue(tx, msg("ana@example.com")); err != nil {
			return err
		}
		if queuedID, err = mail.Queue(tx, msg("ANA@example.com")); err != nil {
			return err
		}
		otherID, err = mail.Queue(tx, msg("bo@example.org"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Exec(`UPDATE outbound_mail SET sent_at = now(), data = '{}' WHERE id = ?`, sentID).Error; err != nil {
		t.Fatal(err)
	}

	e.clock.Add(time.Minute)
	erased, err := e.svc.Erase(ctx, m.ID, "operator:dpo")
	if err != nil {
		t.Fatalf("erase: %v", err)
	}
	if erased.ErasedAt == nil || erased.Profile.GivenName != "" || erased.MarketingConsent {
		t.Fatalf("erased member = %+v", erased)
	}

	// No personal data left in the members and identifier rows, for the
	// member and the record merged into it.
	var rows []string
	if err := e.db.Raw(`SELECT row_to_json(m)::text FROM members m WHERE id IN ? UNION ALL
		SELECT row_to_json(i)::text FROM member_identifiers i WHERE member_id IN ?`,
		[]int64{m.ID, dup.ID}, []int64{m.ID, dup.ID}).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	all := strings.ToLower(strings.Join(rows, "\n"))
	// Random card numbers may contain any digit run; they are pseudonyms, not PII.
	all = strings.NewReplacer(m.CardNumber, "<card>", dup.CardNumber, "<card>").Replace(all)
	for _, pii := range []string{"ana", "silva", "example.com", "351", "1990", "tap12345"} {
		if strings.Contains(all, pii) {
			t.Errorf("personal data %q left after erasure:\n%s", pii, all)
		}
	}
	if n := count(t, e.db, `SELECT count(*) FROM member_identifiers WHERE member_id = ? AND type = 'card'`, m.ID); n != 2 {
		t.Errorf("want both cards kept as pseudonyms, got %d", n)
	}
	// Her address is gone from the mail she was sent, and the mail still
	// queued will never go out; someone else's mail is untouched.
	var mails []struct {
		ID        int64
		Recipient string
		Name      string `gorm:"column:recipient_name"`
		Data      string
		Unsent    bool
	}
	if err := e.db.Raw(`SELECT id, recipient, recipient_name, data::text AS data,
		sent_at IS NULL AND failed_at IS NULL AS unsent FROM outbound_mail WHERE id IN ? ORDER BY id`,
		[]int64{sentID, queuedID, otherID}).Scan(&mails).Error; err != nil || len(mails) != 3 {
		t.Fatalf("mail rows %+v (%v); want 3", mails, err)
	}
	for _, r := range mails[:2] {
		if r.Recipient != mail.ErasedRecipient || r.Name != "" || r.Data != "{}" || r.Unsent {
			t.Errorf("mail %d after erasure: %+v; want recipient %s, no name or data, not to be sent", r.ID, r, mail.ErasedRecipient)
		}
	}
	if r := mails[2]; r.Recipient != "bo@example.org" || !r.Unsent {
		t.Errorf("someone else's mail after erasure: %+v; want it untouched", r)
	}
	if n := count(t, e.db, `SELECT count(*) FROM members WHERE erased_at IS NOT NULL`); n != 2 {
		t.Errorf("want the member and its merged duplicate erased, got %d", n)
	}
	if n := count(t, e.db, `SELECT count(*) FROM data_subject_requests WHERE kind = 'erasure'`); n != 2 {
		t.Errorf("want 2 erasure register entries (member and duplicate), got %d", n)
	}
	if n := count(t, e.db, `SELECT count(*) FROM consent_events WHERE member_id = ? AND NOT granted AND source = 'erasure'`, m.ID); n != 1 {
		t.Errorf("want the consent withdrawal recorded, got %d", n)
	}

	// The ledger is untouched.
	if after := history(t, e, m.ID) + history(t, e, dup.ID); after != before {
		t.Errorf("ledger history changed by erasure:\nbefore %s\nafter  %s", before, after)
	}
	if b := balance(t, e, m.ID); b != balBefore {
		t.Errorf("balance changed by erasure: %d -> %d", balBefore, b)
	}

	// Even erased, the row stays: the ledger and the programme refer to it
	// without foreign keys (migration 00220), so the database refuses a delete.
	if err := e.db.Exec(`DELETE FROM members WHERE id = ?`, m.ID).Error; err == nil || !strings.Contains(err.Error(), "never deleted") {
		t.Errorf("deleting an erased member: err = %v, want it refused", err)
	}

	// Idempotent.
	if _, err := e.svc.Erase(ctx, m.ID, "operator:dpo"); err != nil {
		t.Fatalf("second erase: %v", err)
	}
	if n := count(t, e.db, `SELECT count(*) FROM data_subject_requests WHERE kind = 'erasure'`); n != 2 {
		t.Errorf("second erase added register entries: %d", n)
	}
	// The freed identifiers can be used by a new member.
	if _, created, err := e.svc.Enrol(ctx, members.EnrolRequest{Identifier: mustIdent(t, "email", "ana@example.com", 0)}); err != nil || !created {
		t.Errorf("erased email should be free for a new enrolment: created=%v err=%v", created, err)
	}
}

func TestConcurrentMergesOfOnePairMakeOneMerge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := enrol(t, e, mustIdent(t, "email", "a@example.com", 0), members.Profile{})
	b := enrol(t, e, mustIdent(t, "email", "b@example.com", 0), members.Profile{})
	earn(t, e, b.ID, 1, 70, "e1")
	const n = 20
	ids := make(chan int64, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			<-start
			mg, err := e.svc.Merge(ctx, members.MergeRequest{SurvivorID: a.ID, DuplicateID: b.ID, Actor: "operator:ops", Reason: "dup"})
			if err != nil {
				errs <- err
				return
			}
			ids <- mg.ID
		}()
	}
	close(start)
	seen := map[int64]bool{}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			t.Errorf("concurrent merge failed: %v", err)
		case id := <-ids:
			seen[id] = true
		}
	}
	if len(seen) != 1 {
		t.Errorf("concurrent merges returned %d different records, want 1", len(seen))
	}
	if got := balance(t, e, a.ID); got != 70 {
		t.Errorf("survivor balance = %d, want 70 (moved once)", got)
	}
	if c := count(t, e.db, `SELECT count(*) FROM member_merges`); c != 1 {
		t.Errorf("want 1 merge record, got %d", c)
	}
}
