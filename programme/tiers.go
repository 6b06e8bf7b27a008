package programme

import (
	"sort"
	"time"
)

// Window returns the period [from, to) whose credits count at time at. A
// rolling window is the 12 months before at. A calendar-year window is the
// year to date, or, for the yearly review (held at the start of a year), the
// whole previous year. Times are UTC.
func Window(w TierWindow, at time.Time, review bool) (from, to time.Time) {
	at = at.UTC()
	if w == WindowCalendarYear {
		start := time.Date(at.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		if review {
			return start.AddDate(-1, 0, 0), start
		}
		return start, at
	}
	return at.AddDate(-1, 0, 0), at
}

// sortTiers returns the tiers by rank, lowest first.
func sortTiers(tiers []Tier) []Tier {
	out := append([]Tier(nil), tiers...)
	sort.Slice(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	return out
}

// Meets reports whether c meets any of t's thresholds (OR). A tier without
// thresholds is met by everyone (the base level).
func (t Tier) Meets(c Credits) bool {
	if len(t.Thresholds) == 0 {
		return true
	}
	for m, min := range t.Thresholds {
		if c[m] >= min {
			return true
		}
	}
	return false
}

// Qualify returns the highest tier c qualifies for: not invitation-only, with
// any threshold met. With no tier qualifying it returns the lowest tier.
func Qualify(tiers []Tier, c Credits) Tier {
	sorted := sortTiers(tiers)
	if len(sorted) == 0 {
		return Tier{}
	}
	best := sorted[0]
	for _, t := range sorted {
		if !t.InvitationOnly && t.Meets(c) {
			best = t
		}
	}
	return best
}

// EvalInput is what Evaluate decides on.
type EvalInput struct {
	Current   string // the member's tier code now ("" = base)
	Credits   Credits
	Grants    []Grant
	At        time.Time
	Review    bool // the yearly review: the only time a tier goes down
	Downgrade Downgrade
}

// Decision is the tier Evaluate chose and why.
type Decision struct {
	Tier    Tier
	Changed bool
	Reason  string // "upgrade", "grant", "review" or "" when unchanged
}

// Evaluate decides a member's tier. The floor is the best of the qualified
// tier and any grant active at At. Outside the review the tier only goes up
// (to the floor, when higher). At the review it becomes the floor, or — with
// DowngradeOneLevel — at most one rank step below the current tier. Unknown
// current codes count as the base tier.
func Evaluate(tiers []Tier, in EvalInput) Decision {
	sorted := sortTiers(tiers)
	if len(sorted) == 0 {
		return Decision{}
	}
	idx := func(code string) int {
		for i, t := range sorted {
			if t.Code == code {
				return i
			}
		}
		return -1
	}
	cur := max(idx(in.Current), 0)
	q := idx(Qualify(sorted, in.Credits).Code)
	floor, reason := q, "upgrade"
	for _, g := range in.Grants {
		if g.Active(in.At) {
			if i := idx(g.TierCode); i > floor {
				floor, reason = i, "grant"
			}
		}
	}
	next := cur
	switch {
	case floor > cur:
		next = floor
		if in.Review {
			reason = "review"
		}
	case in.Review && floor < cur:
		next, reason = floor, "review"
		if in.Downgrade == DowngradeOneLevel {
			next = max(floor, cur-1)
		}
	}
	d := Decision{Tier: sorted[next], Changed: next != cur || in.Current != sorted[next].Code}
	if d.Changed {
		d.Reason = reason
	}
	if in.Current == "" && next == 0 {
		d.Changed, d.Reason = false, ""
	}
	return d
}
