package members_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

type env struct {
	db     *gorm.DB
	ledger *ledger.Service
	svc    *members.Service
	clock  *clock.Manual
}

func newEnv(t *testing.T) env {
	t.Helper()
	db := testdb.New(t)
	c := clock.New(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	l := ledger.NewService(db, c.Now)
	return env{db: db, ledger: l, svc: members.NewService(db, l, c.Now, members.WithPasswordCost(bcrypt.MinCost)), clock: c}
}

func mustIdent(t *testing.T, typ, value string, partner int64) members.Identifier {
	t.Helper()
	id, err := members.ParseIdentifier(typ, value, partner)
	if err != nil {
		t.Fatalf("ParseIdentifier(%s, %s): %v", typ, value, err)
	}
	return id
}

func enrol(t *testing.T, e env, ident members.Identifier, p members.Profile) members.Member {
	t.Helper()
	m, created, err := e.svc.Enrol(context.Background(), members.EnrolRequest{Identifier: ident, Profile: p, Actor: "test"})
	if err != nil {
		t.Fatalf("enrol %s: %v", ident, err)
	}
	if !created {
		t.Fatalf("enrol %s: expected a new member, got existing %d", ident, m.ID)
	}
	return m
}

func count(t *testing.T, db *gorm.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a validation error on %s", err, field)
	}
	for _, f := range ve.Fields {
		if f.Field == field {
			return
		}
	}
	t.Fatalf("validation error %v does not name %s", ve, field)
}

func TestEnrolAssignsCardAndIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	email := mustIdent(t, "email", "ana@example.com", 0)
	m, created, err := e.svc.Enrol(ctx, members.EnrolRequest{
		Identifier:      members.Identifier{Type: "email", Value: " ANA@example.com "},
		Profile:         members.Profile{GivenName: "Ana", FamilyName: "Silva", BirthDate: "1990-04-01", Locale: "pt-BR"},
		Consent:         members.Consent{Marketing: true, Source: "partner:7"},
		SourcePartnerID: 7,
		Actor:           "partner:7",
	})
	if err != nil || !created {
		t.Fatalf("first enrolment: created=%v err=%v", created, err)
	}
	if m.Status != members.StatusActive || m.Profile.GivenName != "Ana" || m.Profile.BirthDate != "1990-04-01" ||
		m.Profile.Locale != "pt-BR" || m.SourcePartnerID != 7 {
		t.Fatalf("member not stored as sent: %+v", m)
	}
	if _, err := members.ParseIdentifier("card", m.CardNumber, 0); err != nil {
		t.Fatalf("member got no valid card number (%q): %v", m.CardNumber, err)
	}
	if len(m.Identifiers) != 2 {
		t.Fatalf("want email + card identifiers, got %+v", m.Identifiers)
	}
	if !m.MarketingConsent || m.MarketingConsentAt == nil || !m.MarketingConsentAt.Equal(e.clock.Now()) {
		t.Fatalf("marketing consent not recorded with its time: %+v", m)
	}
	if n := count(t, e.db, `SELECT count(*) FROM consent_events WHERE member_id = ? AND granted AND source = 'partner:7'`, m.ID); n != 1 {
		t.Fatalf("want 1 consent event, got %d", n)
	}

	// Same identifier, other profile: the existing member, untouched.
	again, created, err := e.svc.Enrol(ctx, members.EnrolRequest{Identifier: email,
		Profile: members.Profile{GivenName: "Mallory"}})
	if err != nil || created {
		t.Fatalf("second enrolment: created=%v err=%v, want existing member", created, err)
	}
	if again.ID != m.ID || again.Profile.GivenName != "Ana" || again.CardNumber != m.CardNumber {
		t.Fatalf("second enrolment changed or replaced the member: %+v vs %+v", again, m)
	}
	if n := count(t, e.db, `SELECT count(*) FROM members`); n != 1 {
		t.Fatalf("want 1 member row, got %d", n)
	}

	// Lookup by the card and the email find the same member.
	for _, ident := range []members.Identifier{email, {Type: "card", Value: m.CardNumber}} {
		got, err := e.svc.Lookup(ctx, ident)
		if err != nil || got.ID != m.ID {
			t.Fatalf("lookup %s = %d, %v; want member %d", ident, got.ID, err, m.ID)
		}
	}
	_, err = e.svc.Lookup(ctx, mustIdent(t, "email", "nobody@example.com", 0))
	wantErr(t, err, members.ErrNotFound)
}

func TestEnrolRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, _, err := e.svc.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: "card", Value: "7301000000000009"}})
	wantFieldError(t, err, "identifier.value")
	_, _, err = e.svc.Enrol(ctx, members.EnrolRequest{Identifier: mustIdent(t, "phone", "+351912345678", 0),
		Profile: members.Profile{BirthDate: "2099-01-01"}})
	wantFieldError(t, err, "profile.birth_date")
	if n := count(t, e.db, `SELECT count(*) FROM members`); n != 0 {
		t.Fatalf("rejected enrolments left %d members", n)
	}
}

func TestEnrolByPrePrintedCardKeepsThatCard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	card := mustIdent(t, "card", "7301 0000 0000 0001", 0)
	m := enrol(t, e, card, members.Profile{})
	if m.CardNumber != "7301000000000001" || len(m.Identifiers) != 1 {
		t.Fatalf("enrolment by card should make that card the primary and only card: %+v", m)
	}
}

func TestConcurrentEnrolmentsMakeOneMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ident := mustIdent(t, "partner_ref", "FF123456", 42)
	const n = 50
	ids := make([]int64, n)
	createdCount := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			m, created, err := e.svc.Enrol(context.Background(), members.EnrolRequest{Identifier: ident,
				Profile: members.Profile{GivenName: fmt.Sprintf("Caller %d", i)}, SourcePartnerID: 42})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[i] = m.ID
			if created {
				createdCount++
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("enrolment failed: %v", err)
	}
	if createdCount != 1 {
		t.Errorf("want exactly 1 enrolment to create the member, got %d", createdCount)
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("caller %d got member %d, caller 0 got %d: want one member", i, id, ids[0])
		}
	}
	if c := count(t, e.db, `SELECT count(*) FROM members`); c != 1 {
		t.Fatalf("want 1 member row after %d concurrent enrolments, got %d", n, c)
	}
	if c := count(t, e.db, `SELECT count(*) FROM member_identifiers WHERE type = 'card'`); c != 1 {
		t.Fatalf("want 1 card issued, got %d", c)
	}
}

func TestIdentifiersAreUniquePerType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := enrol(t, e, mustIdent(t, "email", "a@example.com", 0), members.Profile{})
	b := enrol(t, e, mustIdent(t, "phone", "+441234567890", 0), members.Profile{})

	// Taken by another member, in any spelling that normalises the same.
	_, err := e.svc.AddIdentifier(ctx, b.ID, members.Identifier{Type: "email", Value: "A@Example.com"})
	wantErr(t, err, members.ErrIdentifierTaken)
	_, err = e.svc.AddIdentifier(ctx, a.ID, members.Identifier{Type: "phone", Value: "0044 1234 567890"})
	wantErr(t, err, members.ErrIdentifierTaken)

	// The same partner reference at two partners belongs to two members.
	if _, err := e.svc.AddIdentifier(ctx, a.ID, mustIdent(t, "partner_ref", "X1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddIdentifier(ctx, b.ID, mustIdent(t, "partner_ref", "X1", 2)); err != nil {
		t.Fatalf("same ref at another partner should be allowed: %v", err)
	}
	_, err = e.svc.AddIdentifier(ctx, b.ID, mustIdent(t, "partner_ref", "X1", 1))
	wantErr(t, err, members.ErrIdentifierTaken)

	// Adding what the member already holds is a no-op.
	got, err := e.svc.AddIdentifier(ctx, a.ID, mustIdent(t, "partner_ref", "X1", 1))
	if err != nil || len(got.Identifiers) != 3 {
		t.Fatalf("re-adding own identifier: %v, identifiers %+v (want 3)", err, got.Identifiers)
	}

	// Cards are issued, never added or removed by hand.
	_, err = e.svc.AddIdentifier(ctx, a.ID, mustIdent(t, "card", "7301000000000001", 0))
	wantErr(t, err, members.ErrCardRequired)
	_, err = e.svc.RemoveIdentifier(ctx, a.ID, members.Identifier{Type: "card", Value: a.CardNumber})
	wantErr(t, err, members.ErrCardRequired)

	// Removing frees the value for someone else.
	if _, err := e.svc.RemoveIdentifier(ctx, a.ID, mustIdent(t, "email", "a@example.com", 0)); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.RemoveIdentifier(ctx, a.ID, mustIdent(t, "email", "a@example.com", 0))
	wantErr(t, err, members.ErrNotFound)
	if _, err := e.svc.AddIdentifier(ctx, b.ID, mustIdent(t, "email", "a@example.com", 0)); err != nil {
		t.Fatalf("freed email should be addable: %v", err)
	}

	// The database itself refuses a duplicate, whatever the service does.
	err = e.db.Exec(`INSERT INTO member_identifiers (member_id, type, value, created_at) VALUES (?, 'phone', '+441234567890', now())`, a.ID).Error
	if err == nil {
		t.Fatal("database accepted a duplicate phone identifier")
	}
	err = e.db.Exec(`INSERT INTO member_identifiers (member_id, type, value, is_primary, created_at) VALUES (?, 'card', '7301000000000001', true, now())`, a.ID).Error
	if err == nil {
		t.Fatal("database accepted a second primary card")
	}
}

func TestProfileConsentAndStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := enrol(t, e, mustIdent(t, "email", "b@example.com", 0), members.Profile{GivenName: "Bo"})

	e.clock.Add(time.Hour)
	up, err := e.svc.UpdateProfile(ctx, m.ID, members.Profile{GivenName: "Bo", FamilyName: "Berg", Phone: "+46 70 123 45 67"})
	if err != nil {
		t.Fatal(err)
	}
	if up.Profile.FamilyName != "Berg" || up.Profile.Phone != "+46701234567" || !up.UpdatedAt.Equal(e.clock.Now()) {
		t.Fatalf("profile not updated: %+v", up)
	}

	// Consent: grant, withdraw; the history keeps both.
	if got, err := e.svc.SetConsent(ctx, m.ID, members.Consent{Marketing: true, Source: "portal"}, "member:self"); err != nil || !got.MarketingConsent {
		t.Fatalf("grant: %v %+v", err, got)
	}
	e.clock.Add(time.Hour)
	got, err := e.svc.SetConsent(ctx, m.ID, members.Consent{Marketing: false, Source: "email-unsubscribe"}, "member:self")
	if err != nil || got.MarketingConsent || !got.MarketingConsentAt.Equal(e.clock.Now()) {
		t.Fatalf("withdraw: %v %+v", err, got)
	}
	if n := count(t, e.db, `SELECT count(*) FROM consent_events WHERE member_id = ?`, m.ID); n != 2 {
		t.Fatalf("want 2 consent events, got %d", n)
	}
	_, err = e.svc.SetConsent(ctx, m.ID, members.Consent{Marketing: true}, "member:self")
	wantFieldError(t, err, "source")

	// Suspend blocks transacting; reactivate restores it.
	s, err := e.svc.Suspend(ctx, m.ID, "card reported stolen", "operator:ops")
	if err != nil || s.Status != members.StatusSuspended || !errors.Is(members.CanTransact(s), members.ErrMemberInactive) {
		t.Fatalf("suspend: %v %+v", err, s)
	}
	if s, err = e.svc.Suspend(ctx, m.ID, "again", "operator:ops"); err != nil || s.Status != members.StatusSuspended {
		t.Fatalf("suspending a suspended member should be a no-op: %v", err)
	}
	r, err := e.svc.Reactivate(ctx, m.ID, "operator:ops")
	if err != nil || r.Status != members.StatusActive || members.CanTransact(r) != nil {
		t.Fatalf("reactivate: %v %+v", err, r)
	}
	_, err = e.svc.Suspend(ctx, m.ID, "", "operator:ops")
	wantFieldError(t, err, "reason")
	_, err = e.svc.Get(ctx, 999999)
	wantErr(t, err, members.ErrNotFound)
}

func TestSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var smiths []int64
	for i := 0; i < 5; i++ {
		m := enrol(t, e, mustIdent(t, "email", fmt.Sprintf("s%d@example.com", i), 0),
			members.Profile{GivenName: "Jo", FamilyName: "Smith"})
		smiths = append(smiths, m.ID)
	}
	other := enrol(t, e, mustIdent(t, "phone", "+15550001111", 0), members.Profile{GivenName: "Smilla", FamilyName: "Jensen"})
	enrol(t, e, mustIdent(t, "phone", "+15550002222", 0), members.Profile{GivenName: "Ola", FamilyName: "Nordmann"})

	// Name prefix, case-insensitive, given or family name, paged by 2.
	var got []int64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, next, err := e.svc.Search(ctx, members.Query{Text: "SMI", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			got = append(got, m.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := append(append([]int64{}, smiths...), other.ID)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("search SMI = %v, want %v", got, want)
	}

	// An identifier finds its holder exactly.
	page, _, err := e.svc.Search(ctx, members.Query{Text: "+1 555 000 1111"})
	if err != nil || len(page) != 1 || page[0].ID != other.ID {
		t.Fatalf("search by phone = %+v, %v; want member %d", page, err, other.ID)
	}
	page, _, err = e.svc.Search(ctx, members.Query{Text: other.CardNumber})
	if err != nil || len(page) != 1 || page[0].ID != other.ID {
		t.Fatalf("search by card = %+v, %v; want member %d", page, err, other.ID)
	}
	// LIKE wildcards in the text are literal.
	if page, _, err = e.svc.Search(ctx, members.Query{Text: "%"}); err != nil || len(page) != 0 {
		t.Fatalf("search %% = %d members, %v; want none", len(page), err)
	}
	_, _, err = e.svc.Search(ctx, members.Query{Cursor: "abc"})
	wantFieldError(t, err, "cursor")
}
