package programme

import (
	"testing"
	"time"
)

func TestTotalsFrom(t *testing.T) {
	t.Parallel()
	d := func(y int, m time.Month, day, h int) time.Time { return time.Date(y, m, day, h, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		w    TierWindow
		at   time.Time
		want time.Time
	}{
		{"rolling: the month a year ago", WindowRolling12Months, d(2025, 3, 20, 10), d(2024, 3, 1, 0)},
		{"rolling on the first of a month", WindowRolling12Months, d(2025, 3, 1, 0), d(2024, 3, 1, 0)},
		{"rolling from 29 February", WindowRolling12Months, d(2024, 2, 29, 12), d(2023, 3, 1, 0)},
		{"rolling in another zone is UTC", WindowRolling12Months, time.Date(2025, 4, 1, 1, 0, 0, 0, time.FixedZone("CEST", 2*3600)), d(2024, 3, 1, 0)},
		{"calendar year: 1 January", WindowCalendarYear, d(2025, 11, 30, 23), d(2025, 1, 1, 0)},
		{"calendar year on New Year's Day", WindowCalendarYear, d(2026, 1, 1, 0), d(2026, 1, 1, 0)},
	}
	for _, c := range cases {
		if got := totalsFrom(c.w, c.at); !got.Equal(c.want) {
			t.Errorf("%s: totalsFrom = %s, want %s", c.name, got, c.want)
		}
		// Whole months never start after the window itself.
		if from, _ := Window(c.w, c.at, false); totalsFrom(c.w, c.at).After(from) {
			t.Errorf("%s: totals start after the window (%s)", c.name, from)
		}
	}
	if got, want := keepFrom(d(2025, 6, 10, 1)), d(2024, 4, 1, 0); !got.Equal(want) {
		t.Errorf("keepFrom = %s, want %s", got, want)
	}
}
