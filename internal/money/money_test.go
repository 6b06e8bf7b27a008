package money

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestPointsValueRoundsHalfEven(t *testing.T) {
	t.Parallel()
	cases := []struct {
		points int64
		price  string
		cur    string
		want   int64
	}{
		{1000, "0.0075", "EUR", 750}, // 7.50 EUR
		{1, "0.005", "EUR", 0},       // 0.5 cent -> 0 (half to even)
		{3, "0.005", "EUR", 2},       // 1.5 cents -> 2
		{5, "0.005", "EUR", 2},       // 2.5 cents -> 2
		{7, "0.005", "EUR", 4},       // 3.5 cents -> 4
		{150, "0.5", "JPY", 75},      // no minor unit
		{1, "0.0015", "KWD", 2},      // 1.5 fils -> 2
		{1000000, "0.0075", "EUR", 750000},
	}
	for _, c := range cases {
		if got := PointsValue(c.points, decimal.RequireFromString(c.price), c.cur); got != c.want {
			t.Errorf("%d × %s %s = %d minor, want %d", c.points, c.price, c.cur, got, c.want)
		}
	}
	if got := Format(123456, "EUR"); got != "1234.56 EUR" {
		t.Errorf("Format: %q", got)
	}
}
