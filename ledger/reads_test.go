package ledger_test

import (
	"testing"
	"time"

	"github.com/coalitionhub/hub/ledger"
)

// ExpiringLots pages through (member, day) groups with its keyset: a page
// of one group at a time visits every group once, in order.
func TestExpiringLotsPagesByMemberAndDay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	day1, day2 := t0.AddDate(0, 0, 3), t0.AddDate(0, 0, 5)
	expires := func(at time.Time) func(*ledger.EarnRequest) {
		return func(r *ledger.EarnRequest) { r.ExpiresAt = &at }
	}
	f.earn(1, 10, 100, expires(day1))
	f.earn(1, 11, 40, expires(day1.Add(time.Hour)))
	f.earn(1, 10, 50, expires(day2))
	f.earn(2, 10, 70, expires(day2))
	f.earn(2, 10, 9, expires(t0.AddDate(0, 0, 30))) // outside the window

	type group struct {
		member int64
		day    string
		points int64
	}
	var got []group
	var afterMember int64
	var afterDay time.Time
	for range 10 {
		page, err := f.svc.ExpiringLots(f.ctx, t0, t0.AddDate(0, 0, 7), afterMember, afterDay, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		g := page[0]
		got = append(got, group{g.MemberID, g.ExpiresOn.Format(time.DateOnly), g.Points})
		afterMember, afterDay = g.MemberID, g.ExpiresOn
	}
	want := []group{{1, day1.Format(time.DateOnly), 140}, {1, day2.Format(time.DateOnly), 50}, {2, day2.Format(time.DateOnly), 70}}
	if len(got) != len(want) {
		t.Fatalf("groups %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("groups %v; want %v", got, want)
		}
	}

	byIssuer, err := f.svc.ExpiringByIssuer(f.ctx, 1, t0, day1)
	if err != nil || len(byIssuer) != 2 || byIssuer[0] != (ledger.IssuerPoints{IssuerPartnerID: 10, Points: 100}) ||
		byIssuer[1] != (ledger.IssuerPoints{IssuerPartnerID: 11, Points: 40}) {
		t.Fatalf("by issuer %v, %v; want 100 of partner 10 and 40 of partner 11", byIssuer, err)
	}
	earned, err := f.svc.EarnedSince(f.ctx, 10, []int64{1, 2, 3}, t0)
	if err != nil || len(earned) != 2 || earned[1] != 150 || earned[2] != 79 {
		t.Fatalf("earned %v, %v; want member 1: 150, member 2: 79", earned, err)
	}
	if ok, err := f.svc.Transacted(f.ctx, 2, 11); err != nil || ok {
		t.Fatalf("member 2 transacted with partner 11: %v, %v; want false", ok, err)
	}
	if ok, err := f.svc.Transacted(f.ctx, 1, 11); err != nil || !ok {
		t.Fatalf("member 1 transacted with partner 11: %v, %v; want true", ok, err)
	}
}
