package members_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// TestRegisterRecordsDueDatesAndStatuses: each kind of request lands in the
// register with its due date 30 days on; an access request stays open until
// an export answers it; the operator's update records status and handler.
func TestRegisterRecordsDueDatesAndStatuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := enrol(t, e, mustIdent(t, "email", "reg@example.com", 0), members.Profile{GivenName: "Reg", Email: "reg@example.com"})
	now := e.clock.Now()
	if _, err := e.svc.SetConsent(ctx, m.ID, members.Consent{Marketing: true, Source: "portal"}, "member"); err != nil {
		t.Fatal(err)
	}
	acc, err := e.svc.RecordAccessRequest(ctx, m.ID, "operator:dpo", "by email")
	if err != nil || acc.Status != members.DSROpen || !acc.DueAt.Equal(now.Add(30*24*time.Hour)) {
		t.Fatalf("access request %+v %v: want open, due in 30 days", acc, err)
	}
	e.clock.Add(31 * 24 * time.Hour)
	due, err := e.svc.Requests(ctx, members.RequestFilter{Due: true})
	if err != nil || len(due) != 1 || due[0].ID != acc.ID || !e.clock.Now().After(due[0].DueAt) {
		t.Fatalf("due %+v %v: want the overdue access request alone", due, err)
	}
	if _, err := e.svc.Export(ctx, m.ID, "operator:dpo"); err != nil {
		t.Fatal(err)
	}
	all, err := e.svc.Requests(ctx, members.RequestFilter{MemberID: m.ID})
	if err != nil || len(all) != 3 {
		t.Fatalf("register %+v %v: want consent, access and export", all, err)
	}
	kinds := map[members.DSRKind]members.DataSubjectRequest{}
	for _, r := range all {
		kinds[r.Kind] = r
	}
	if r := kinds[members.DSRAccess]; r.Status != members.DSRDone || r.HandledBy != "operator:dpo" || r.CompletedAt == nil {
		t.Errorf("access request after the export: %+v; want done by operator:dpo", r)
	}
	if r := kinds[members.DSRConsent]; r.Status != members.DSRDone || r.Note != "marketing consent granted" || !r.DueAt.Equal(now.Add(members.DSRDeadline)) {
		t.Errorf("consent entry %+v", r)
	}
	if r := kinds[members.DSRExport]; r.Status != members.DSRDone || !r.DueAt.Equal(e.clock.Now().Add(members.DSRDeadline)) {
		t.Errorf("export entry %+v", r)
	}
	if _, err := e.svc.UpdateRequest(ctx, acc.ID, members.DSRRefused, "", "operator:dpo"); err == nil {
		t.Error("a refusal without a note was accepted")
	}
	up, err := e.svc.UpdateRequest(ctx, acc.ID, members.DSROpen, "reopened: member asked again", "operator:b")
	if err != nil || up.Status != members.DSROpen || up.CompletedAt != nil || up.HandledBy != "operator:b" {
		t.Fatalf("update %+v %v", up, err)
	}
	if _, err := e.svc.UpdateRequest(ctx, 999999, members.DSRDone, "", "operator:b"); err == nil {
		t.Error("an unknown request was updated")
	}
}

// TestConsentWithdrawalSchedulesErasure: with an erasure schedule of 7
// days, a withdrawal puts an open erasure in the register for day 7; the
// job refuses it while points are held (it stays open as refused, with the
// reason), then erases through EraseAccount; a grant before the day cancels
// the schedule; without a schedule nothing is scheduled.
func TestConsentWithdrawalSchedulesErasure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	days, on := 7, true
	svc := members.NewService(e.db, e.ledger, e.clock.Now, members.WithPasswordCost(bcrypt.MinCost),
		members.WithErasureSchedule(func(context.Context) (int, bool, error) { return days, on, nil }))
	withdraw := func(id int64) {
		t.Helper()
		if _, err := svc.SetConsent(ctx, id, members.Consent{Marketing: false, Source: "portal"}, "member"); err != nil {
			t.Fatal(err)
		}
	}
	a := enrol(t, e, mustIdent(t, "email", "a@example.com", 0), members.Profile{GivenName: "A", Email: "a@example.com"})
	b := enrol(t, e, mustIdent(t, "email", "b@example.com", 0), members.Profile{GivenName: "B", Email: "b@example.com"})
	earn(t, e, a.ID, 1, 500, "e1")
	h, err := e.ledger.Hold(ctx, ledger.HoldRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: "h1"}, MemberID: a.ID,
		PartnerID: 1, Points: 100, ExpiresAt: e.clock.Now().Add(30 * 24 * time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	start := e.clock.Now()
	withdraw(a.ID)
	withdraw(b.ID)
	if _, err := svc.SetConsent(ctx, b.ID, members.Consent{Marketing: true, Source: "portal"}, "member"); err != nil {
		t.Fatal(err)
	}
	erasure := func(id int64) members.DataSubjectRequest {
		t.Helper()
		rs, err := svc.Requests(ctx, members.RequestFilter{MemberID: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Kind == members.DSRErasure {
				return r
			}
		}
		return members.DataSubjectRequest{}
	}
	ra := erasure(a.ID)
	if ra.Status != members.DSROpen || ra.EraseAt == nil || !ra.EraseAt.Equal(start.AddDate(0, 0, 7)) || !ra.DueAt.Equal(start.Add(members.DSRDeadline)) {
		t.Fatalf("scheduled erasure %+v: want open, erase on day 7, due on day 30", ra)
	}
	if rb := erasure(b.ID); rb.Status != members.DSRCancelled {
		t.Fatalf("b's erasure after consent was granted again: %+v; want cancelled", rb)
	}
	// Not yet due.
	if n, r, err := svc.EraseDue(ctx); n != 0 || r != 0 || err != nil {
		t.Fatalf("before the day: %d erased, %d refused, %v", n, r, err)
	}
	e.clock.Add(7 * 24 * time.Hour)
	if n, r, err := svc.EraseDue(ctx); n != 0 || r != 1 || err != nil {
		t.Fatalf("with points held: %d erased, %d refused, %v; want 1 refused", n, r, err)
	}
	if ra = erasure(a.ID); ra.Status != members.DSRRefused || ra.Note == "" || ra.CompletedAt != nil {
		t.Fatalf("refused erasure %+v: want refused, open, with the reason", ra)
	}
	if due, _ := svc.Requests(ctx, members.RequestFilter{Due: true}); len(due) != 1 || due[0].ID != ra.ID {
		t.Fatalf("due list %+v: want the refused erasure", due)
	}
	if _, err := e.ledger.Void(ctx, ledger.VoidRequest{Idem: ledger.Idempotency{Scope: "partner:1", Key: "v1"}, HoldID: h.ID}); err != nil {
		t.Fatal(err)
	}
	if n, r, err := svc.EraseDue(ctx); n != 1 || r != 0 || err != nil {
		t.Fatalf("after the hold: %d erased, %d refused, %v; want 1 erased", n, r, err)
	}
	if got, _ := svc.Get(ctx, a.ID); got.ErasedAt == nil {
		t.Fatal("member a was not erased")
	}
	if ra = erasure(a.ID); ra.Status != members.DSRDone || ra.HandledBy != members.ErasureActor {
		t.Fatalf("erasure %+v: want done by the schedule", ra)
	}
	if n, _, _ := svc.EraseDue(ctx); n != 0 {
		t.Fatal("the job erased twice")
	}
	on = false
	c := enrol(t, e, mustIdent(t, "email", "c@example.com", 0), members.Profile{GivenName: "C", Email: "c@example.com"})
	withdraw(c.ID)
	if rc := erasure(c.ID); rc.ID != 0 {
		t.Fatalf("erasure scheduled without a schedule: %+v", rc)
	}
}
