package programme

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestLotExpiry(t *testing.T) {
	t.Parallel()
	d := func(y int, m time.Month, day, h int) time.Time { return time.Date(y, m, day, h, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		p    Policy
		at   time.Time
		want *time.Time
	}{
		{"never", Policy{ExpiryMode: ExpiryNever}, d(2025, 5, 1, 0), nil},
		{"inactivity has no lot expiry", Policy{ExpiryMode: ExpiryInactivity, ExpiryMonths: 18}, d(2025, 5, 1, 0), nil},
		{"fixed 24 months", Policy{ExpiryMode: ExpiryFixedLifetime, ExpiryMonths: 24}, d(2025, 5, 1, 9), ptime(d(2027, 5, 1, 9))},
		{"fixed across a year end", Policy{ExpiryMode: ExpiryFixedLifetime, ExpiryMonths: 2}, d(2025, 12, 15, 9), ptime(d(2026, 2, 15, 9))},
		{"fixed from 31 Jan normalises", Policy{ExpiryMode: ExpiryFixedLifetime, ExpiryMonths: 1}, d(2025, 1, 31, 0), ptime(d(2025, 3, 3, 0))},
		{"end of 1st year", Policy{ExpiryMode: ExpiryEndOfYear, ExpiryYears: 1}, d(2025, 12, 31, 23), ptime(d(2026, 1, 1, 0))},
		{"end of 3rd year", Policy{ExpiryMode: ExpiryEndOfYear, ExpiryYears: 3}, d(2025, 1, 1, 0), ptime(d(2028, 1, 1, 0))},
	}
	for _, c := range cases {
		got := LotExpiry(c.p, c.at)
		if (got == nil) != (c.want == nil) || (got != nil && !got.Equal(*c.want)) {
			t.Errorf("%s: LotExpiry = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBirthday(t *testing.T) {
	t.Parallel()
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		birth, day time.Time
		want       bool
	}{
		{d(1990, 6, 15), d(2025, 6, 15), true},
		{d(1990, 6, 15), d(2025, 6, 16), false},
		{d(1992, 2, 29), d(2025, 2, 28), true},  // common year: 28 Feb
		{d(1992, 2, 29), d(2024, 2, 28), false}, // leap year: wait for the 29th
		{d(1992, 2, 29), d(2024, 2, 29), true},
		{d(1990, 2, 28), d(2025, 2, 28), true},
	}
	for _, c := range cases {
		if got := Birthday(c.birth, c.day); got != c.want {
			t.Errorf("Birthday(%s, %s) = %v, want %v", c.birth.Format("2006-01-02"), c.day.Format("2006-01-02"), got, c.want)
		}
	}
}

func TestTransferFeeAndShares(t *testing.T) {
	t.Parallel()
	p := Policy{TransferFeeFixed: 10, TransferFeeRate: decimal.RequireFromString("0.015")}
	for _, c := range []struct{ points, want int64 }{{1000, 25}, {1001, 26}, {1, 11}} {
		if got := TransferFee(p, c.points); got != c.want {
			t.Errorf("TransferFee(%d) = %d, want %d", c.points, got, c.want)
		}
	}
	// Three partial reversals of 1/3 each take back exactly the original.
	var sum int64
	for i := int64(0); i < 3; i++ {
		sum += takeBack(10, 300, i*100, (i+1)*100)
	}
	if sum != 10 {
		t.Errorf("three thirds took back %d of 10", sum)
	}
	if got := takeBack(7, 100, 0, 50); got != 3 {
		t.Errorf("half of 7 = %d, want 3 (floor)", got)
	}
}

func TestLevelForAndCompanyPoints(t *testing.T) {
	t.Parallel()
	levels := []CompanyLevel{
		{Code: "l5", MinSpendMinor: 0, Rate: decimal.RequireFromString("0.05")},
		{Code: "l6", MinSpendMinor: 300_000_000, Rate: decimal.RequireFromString("0.06")},
		{Code: "l7", MinSpendMinor: 500_000_001, Rate: decimal.RequireFromString("0.07")},
	}
	for _, c := range []struct {
		spend int64
		want  string
	}{{0, "l5"}, {299_999_999, "l5"}, {300_000_000, "l6"}, {500_000_000, "l6"}, {500_000_001, "l7"}} {
		if l, _ := LevelFor(levels, c.spend); l.Code != c.want {
			t.Errorf("LevelFor(%d) = %s, want %s", c.spend, l.Code, c.want)
		}
	}
	if _, ok := LevelFor(nil, 10); ok {
		t.Error("LevelFor(no levels) ok = true")
	}
	// 5% of a 10,000.99 EUR ticket = 500.0495 points, rounded down.
	if got := CompanyPoints(1_000_099, 2, decimal.RequireFromString("0.05")); got != 500 {
		t.Errorf("CompanyPoints = %d, want 500", got)
	}
}
