package ledger

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The order in which a clawback takes a member's points (clawback.go).
func TestClawbackTakeOrder(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	at := func(h int) *time.Time { v := now.Add(time.Duration(h) * time.Hour); return &v }
	// lot: id, remaining, available in hours from now (> 0: pending), expiry
	// in hours (nil: none). Lots are listed in burn order, as pickLots gives them.
	lot := func(id, remaining int64, availableIn int, expiresIn *time.Time) lotRow {
		return lotRow{ID: id, Remaining: remaining, AvailableAt: now.Add(time.Duration(availableIn) * time.Hour), ExpiresAt: expiresIn}
	}
	cases := []struct {
		name  string
		lots  []lotRow
		taken map[int64]int64
		held  int64
		need  int64
		want  string // lot:points, in the order first taken
	}{
		{"available points before another partner's pending ones",
			[]lotRow{lot(1, 500, 48, at(72)), lot(2, 1000, -1, nil)}, nil, 0, 300, "2:300"},
		{"pending points when the available ones run out",
			[]lotRow{lot(1, 500, 48, at(72)), lot(2, 1000, -1, nil)}, nil, 0, 1200, "2:1000 1:200"},
		{"points that cover holds come after pending ones",
			[]lotRow{lot(1, 100, 48, at(72)), lot(2, 1000, -1, nil)}, nil, 800, 500, "2:400 1:100"},
		{"available points beyond holds only, then pending",
			[]lotRow{lot(2, 1000, -1, nil), lot(3, 500, 48, nil)}, nil, 800, 400, "2:200 3:200"},
		{"expired points last, even when they expire first",
			[]lotRow{lot(4, 300, -100, at(-1)), lot(2, 500, -1, nil), lot(3, 50, 48, nil)}, nil, 0, 600, "2:500 3:50 4:50"},
		{"earliest expiry first among available points",
			[]lotRow{lot(5, 100, -1, at(10)), lot(6, 100, -1, at(20)), lot(7, 100, -1, nil)}, nil, 0, 150, "5:100 6:50"},
		{"what the operation already took is not taken again",
			[]lotRow{lot(1, 1000, -1, nil), lot(2, 300, -1, nil)}, map[int64]int64{1: 600}, 0, 500, "1:400 2:100"},
		{"holds covered partly by expired points leave nothing available",
			[]lotRow{lot(4, 300, -100, at(-1)), lot(2, 200, -1, nil), lot(3, 100, 48, nil)}, nil, 400, 250, "3:100 2:150"},
		{"more than the member has: everything, the rest is debt",
			[]lotRow{lot(4, 30, -100, at(-1)), lot(2, 200, -1, nil), lot(3, 100, 48, nil)}, nil, 150, 1000, "2:200 3:100 4:30"}, // one slice per lot
		{"nothing to take", nil, nil, 0, 100, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := clawbackTake(c.lots, c.taken, c.held, now, c.need)
			var parts []string
			var sum int64
			for _, s := range got {
				parts = append(parts, fmt.Sprintf("%d:%d", s.Lot.ID, s.Points))
				sum += s.Points
			}
			if g := strings.Join(parts, " "); g != c.want {
				t.Fatalf("took %q, want %q", g, c.want)
			}
			if sum > c.need {
				t.Fatalf("took %d points, more than the %d needed", sum, c.need)
			}
		})
	}
}

// The parts of a balance add up in every state, and each is what the
// ledger lets the member do.
func TestSplitBalanceAddsUp(t *testing.T) {
	cases := []struct {
		name                                     string
		total, held, pending, spendable, expired int64
		available, wantExpired, owed             int64
	}{
		{"empty", 0, 0, 0, 0, 0, 0, 0, 0},
		{"settled and pending", 1500, 0, 500, 1000, 0, 1000, 0, 0},
		{"a hold on settled points", 1500, 400, 500, 1000, 0, 600, 0, 0},
		{"expired points not yet swept", 1300, 0, 0, 1000, 300, 1000, 300, 0},
		{"a hold beyond the spendable points takes expired ones", 1300, 1100, 0, 1000, 300, 0, 200, 0},
		{"clawback debt", -800, 0, 0, 0, 0, 0, 0, 800},
		{"clawback debt and a hold it left uncovered", -800, 1000, 0, 0, 0, 0, 0, 1800},
		{"a positive balance below a hold a clawback uncovered", 800, 1000, 500, 300, 0, 0, 0, 700},
		{"uncovered hold partly covered by expired points", 400, 1000, 0, 300, 100, 0, 0, 600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := splitBalance(1, c.total, c.held, c.pending, c.spendable, c.expired)
			if int64(b.Available) != c.available || int64(b.Expired) != c.wantExpired || int64(b.Owed) != c.owed ||
				int64(b.Held) != c.held || int64(b.Pending) != c.pending {
				t.Fatalf("balance %+v, want available %d, expired %d, owed %d", b, c.available, c.wantExpired, c.owed)
			}
			if sum := b.Available + b.Pending + b.Held + b.Expired - b.Owed; sum != b.Total {
				t.Fatalf("parts of %+v add up to %d, want total %d", b, sum, b.Total)
			}
			if b.Blocked != (c.total < 0) {
				t.Fatalf("blocked %v for total %d", b.Blocked, c.total)
			}
		})
	}
}
