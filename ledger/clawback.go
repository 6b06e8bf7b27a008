package ledger

import (
	"math"
	"time"
)

// The clawback rule, in one place: what a reversal of an earn (and a merge
// that brings debt) takes from a member, and what it leaves alone.
//
// A clawback never voids a hold. Holds belong to a partner that is already
// delivering against them — an exchange programme crediting miles, a catalog
// partner shipping a reward, a point of sale that handed over goods — and
// their capture must go through. Points the clawback cannot find in the
// member's lots become debt (a negative balance); a hold the clawback left
// without cover is captured into that debt (see Capture).
//
// What a clawback takes, in this order (clawbackTake):
//
//  1. the reversed earn's own remaining lots (reverseEarn takes those before
//     calling clawbackTake): the very points being reversed;
//  2. the member's available points — settled, unexpired lots beyond what
//     active holds reserve — earliest expiry first: points no one else has
//     a claim on;
//  3. pending lots (other partners' points still in their return window),
//     earliest expiry first: their issuer may still reverse them, so they
//     come after the member's settled points;
//  4. the settled, unexpired points that cover holds: taken before these
//     only when nothing else is left, so the holds keep their cover;
//  5. expired points not yet moved to breakage: worthless to the member,
//     so they never repay a clawback while real points remain;
//  6. the rest becomes debt.
//
// When the balance stays non-negative the order decides only which lots
// remain; when it goes negative every lot is emptied (the ledger keeps no
// lots beside debt) and the order decides attribution.

// clawbackTake picks need points from lots (a member's live lots in burn
// order) in the clawback order above, steps 2 to 5. taken holds points of
// those lots already taken by the same operation (step 1), which are not
// taken again; held is the member's held total. It returns one slice per lot
// touched, in the order first taken, covering at most need points.
func clawbackTake(lots []lotRow, taken map[int64]int64, held int64, now time.Time, need int64) []slice {
	free := make(map[int64]int64, len(lots))
	var spendable int64
	for _, l := range lots {
		free[l.ID] = max(0, l.Remaining-taken[l.ID])
		if lotSpendable(l, now) {
			spendable += free[l.ID]
		}
	}
	var out []slice
	index := map[int64]int{}
	pass := func(match func(lotRow) bool, limit int64) {
		for _, l := range lots {
			if need == 0 || limit == 0 {
				return
			}
			if !match(l) || free[l.ID] == 0 {
				continue
			}
			k := min(free[l.ID], need, limit)
			free[l.ID] -= k
			need -= k
			limit -= k
			if i, ok := index[l.ID]; ok {
				out[i].Points += k
			} else {
				index[l.ID] = len(out)
				out = append(out, slice{l, k})
			}
		}
	}
	pending := func(l lotRow) bool { return l.AvailableAt.After(now) }
	expired := func(l lotRow) bool { return !pending(l) && !lotSpendable(l, now) }
	spendableLot := func(l lotRow) bool { return lotSpendable(l, now) }
	pass(spendableLot, max(0, spendable-held)) // 2: available points
	pass(pending, math.MaxInt64)               // 3: pending points
	pass(spendableLot, math.MaxInt64)          // 4: points that cover holds
	pass(expired, math.MaxInt64)               // 5: expired points
	return out
}

// lotSpendable reports whether a lot's points may be spent at now: settled
// and not expired (lotsSpendable).
func lotSpendable(l lotRow, now time.Time) bool {
	return !l.AvailableAt.After(now) && (l.ExpiresAt == nil || l.ExpiresAt.After(now))
}

// mergeSlices adds more to slices, one slice per lot.
func mergeSlices(slices, more []slice) []slice {
	for _, m := range more {
		found := false
		for i := range slices {
			if slices[i].Lot.ID == m.Lot.ID {
				slices[i].Points += m.Points
				found = true
				break
			}
		}
		if !found {
			slices = append(slices, m)
		}
	}
	return slices
}
