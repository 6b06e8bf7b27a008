package programme

import (
	"testing"
	"time"
)

func ptime(t time.Time) *time.Time { return &t }

func hotelTiers() []Tier {
	return []Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[Metric]int64{MetricStays: 10, MetricNights: 15}},
		{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[Metric]int64{MetricStays: 20, MetricNights: 30, MetricPoints: 50000}},
		{Code: "platinum", Name: "Platinum", Rank: 3, InvitationOnly: true},
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		in         EvalInput
		want       string
		changed    bool
		wantReason string
	}{
		{"no credits stays base", EvalInput{Current: "", Credits: Credits{}}, "blue", false, ""},
		{"stays threshold alone qualifies (OR)", EvalInput{Current: "blue", Credits: Credits{MetricStays: 10}}, "silver", true, "upgrade"},
		{"nights threshold alone qualifies (OR)", EvalInput{Current: "blue", Credits: Credits{MetricNights: 15, MetricStays: 2}}, "silver", true, "upgrade"},
		{"one below every threshold does not qualify", EvalInput{Current: "blue", Credits: Credits{MetricNights: 14, MetricStays: 9}}, "blue", false, ""},
		{"jumps two levels at once", EvalInput{Current: "blue", Credits: Credits{MetricPoints: 50000}}, "gold", true, "upgrade"},
		{"invitation-only level is never qualified into", EvalInput{Current: "gold", Credits: Credits{MetricPoints: 1e9, MetricStays: 1e6}}, "gold", false, ""},
		{"no downgrade outside the review", EvalInput{Current: "gold", Credits: Credits{}}, "gold", false, ""},
		{"review downgrades to qualified", EvalInput{Current: "gold", Credits: Credits{}, Review: true, Downgrade: DowngradeToQualified}, "blue", true, "review"},
		{"review downgrades one level at a time", EvalInput{Current: "gold", Credits: Credits{}, Review: true, Downgrade: DowngradeOneLevel}, "silver", true, "review"},
		{"review keeps a still qualified tier", EvalInput{Current: "silver", Credits: Credits{MetricNights: 20}, Review: true}, "silver", false, ""},
		{"review upgrades when qualified higher", EvalInput{Current: "silver", Credits: Credits{MetricStays: 25}, Review: true}, "gold", true, "review"},
		{"active grant lifts to invitation-only tier", EvalInput{Current: "blue", Grants: []Grant{{TierCode: "platinum", StartsAt: at.AddDate(0, -1, 0), EndsAt: ptime(at.AddDate(0, 1, 0))}}}, "platinum", true, "grant"},
		{"ended grant is no floor at review", EvalInput{Current: "platinum", Review: true, Grants: []Grant{{TierCode: "platinum", StartsAt: at.AddDate(-1, 0, 0), EndsAt: ptime(at.AddDate(0, 0, -1))}}}, "blue", true, "review"},
		{"ended grant keeps tier until review", EvalInput{Current: "platinum", Grants: []Grant{{TierCode: "platinum", StartsAt: at.AddDate(-1, 0, 0), EndsAt: ptime(at.AddDate(0, 0, -1))}}}, "platinum", false, ""},
		{"future grant not yet in force", EvalInput{Current: "blue", Grants: []Grant{{TierCode: "gold", StartsAt: at.AddDate(0, 0, 1)}}}, "blue", false, ""},
		{"lifetime grant is a floor at every review", EvalInput{Current: "gold", Review: true, Grants: []Grant{{TierCode: "gold", StartsAt: at.AddDate(-10, 0, 0)}}}, "gold", false, ""},
		{"lifetime silver, qualified gold", EvalInput{Current: "silver", Credits: Credits{MetricStays: 20}, Grants: []Grant{{TierCode: "silver", StartsAt: at.AddDate(-10, 0, 0)}}}, "gold", true, "upgrade"},
		{"one-level review stops at a grant floor", EvalInput{Current: "platinum", Review: true, Downgrade: DowngradeOneLevel, Grants: []Grant{{TierCode: "silver", StartsAt: at.AddDate(-1, 0, 0)}}}, "gold", true, "review"},
		{"unknown current tier counts as base", EvalInput{Current: "retired", Credits: Credits{MetricStays: 10}}, "silver", true, "upgrade"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.At = at
			d := Evaluate(hotelTiers(), c.in)
			if d.Tier.Code != c.want || d.Changed != c.changed || d.Reason != c.wantReason {
				t.Errorf("Evaluate = (%s, changed %v, %q), want (%s, changed %v, %q)",
					d.Tier.Code, d.Changed, d.Reason, c.want, c.changed, c.wantReason)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	at := time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		w        TierWindow
		at       time.Time
		review   bool
		from, to time.Time
	}{
		{"rolling is the last 12 months", WindowRolling12Months, at, false, at.AddDate(-1, 0, 0), at},
		{"rolling review is the same", WindowRolling12Months, at, true, at.AddDate(-1, 0, 0), at},
		{"calendar year to date", WindowCalendarYear, at, false, d(2025, 1, 1), at},
		{"calendar review looks at last year", WindowCalendarYear, d(2025, 1, 1), true, d(2024, 1, 1), d(2025, 1, 1)},
		{"calendar review later in January still last year", WindowCalendarYear, d(2025, 1, 20), true, d(2024, 1, 1), d(2025, 1, 1)},
		{"leap day rolling window", WindowRolling12Months, d(2024, 2, 29), false, d(2023, 3, 1), d(2024, 2, 29)},
	}
	for _, c := range cases {
		from, to := Window(c.w, c.at, c.review)
		if !from.Equal(c.from) || !to.Equal(c.to) {
			t.Errorf("%s: Window = [%s, %s), want [%s, %s)", c.name, from, to, c.from, c.to)
		}
	}
}

func TestQualifyEmptyAndUnordered(t *testing.T) {
	t.Parallel()
	if got := Qualify(nil, Credits{MetricPoints: 1}); got.Code != "" {
		t.Errorf("Qualify(no tiers) = %q, want empty", got.Code)
	}
	ts := hotelTiers()
	ts[0], ts[2] = ts[2], ts[0]
	if got := Qualify(ts, Credits{MetricNights: 30}); got.Code != "gold" {
		t.Errorf("Qualify(unordered, 30 nights) = %q, want gold", got.Code)
	}
}
