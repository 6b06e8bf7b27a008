package exchange_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/exchange"
)

func TestRatioConvertRoundsDown(t *testing.T) {
	t.Parallel()
	cases := []struct {
		r    exchange.Ratio
		n    int64
		want int64
	}{
		{exchange.Ratio{From: 1000, To: 700}, 1000, 700},
		{exchange.Ratio{From: 1000, To: 700}, 1999, 1399},
		{exchange.Ratio{From: 250, To: 200}, 1000, 800},
		{exchange.Ratio{From: 3, To: 1}, 60000, 20000},
		{exchange.Ratio{From: 3, To: 1}, 2, 0},
		{exchange.Ratio{From: 1000, To: 1500}, 999_999_000, 1_499_998_500},
	}
	for _, c := range cases {
		if got := c.r.Convert(c.n); got != c.want {
			t.Errorf("%d:%d of %d = %d, want %d", c.r.From, c.r.To, c.n, got, c.want)
		}
	}
}

func TestPriceOutbound(t *testing.T) {
	t.Parallel()
	p := exchange.Programme{Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MinPoints: 1000, MaxPoints: 200000,
		BonusBands: []exchange.BonusBand{{FromPoints: 60000, Percent: decimal.NewFromInt(25)},
			{FromPoints: 100000, Percent: decimal.RequireFromString("37.5")}}}
	cases := []struct {
		points      int64
		base, bonus int64
		wantErr     bool
	}{
		{1000, 700, 0, false},
		{59000, 41300, 0, false},
		{60000, 42000, 10500, false},
		{100000, 70000, 26250, false},
		{500, 0, 0, true},    // below minimum
		{1500, 0, 0, true},   // not an increment
		{201000, 0, 0, true}, // above maximum
	}
	for _, c := range cases {
		base, bonus, err := exchange.PriceOutbound(p, c.points)
		if (err != nil) != c.wantErr {
			t.Errorf("%d points: err = %v, want error %v", c.points, err, c.wantErr)
			continue
		}
		if base != c.base || bonus != c.bonus {
			t.Errorf("%d points: %d + %d bonus units, want %d + %d", c.points, base, bonus, c.base, c.bonus)
		}
	}
	if _, _, err := exchange.PriceOutbound(exchange.Programme{In: &exchange.Ratio{From: 1, To: 1}}, 1000); err != exchange.ErrDirectionClosed {
		t.Errorf("inbound-only programme: err = %v, want ErrDirectionClosed", err)
	}
}

func TestPriceInbound(t *testing.T) {
	t.Parallel()
	p := exchange.Programme{In: &exchange.Ratio{From: 1000, To: 800}, MinPoints: 100, MaxPoints: 100000}
	if got, err := exchange.PriceInbound(p, 10000); err != nil || got != 8000 {
		t.Errorf("10000 units = %d (%v), want 8000 points", got, err)
	}
	if got, err := exchange.PriceInbound(p, 1001); err != nil || got != 800 {
		t.Errorf("1001 units = %d (%v), want 800 points (rounded down)", got, err)
	}
	if _, err := exchange.PriceInbound(p, 100); err == nil {
		t.Error("100 units (80 points, below minimum): want an error")
	}
	if _, err := exchange.PriceInbound(p, 0); err == nil {
		t.Error("0 units: want an error")
	}
}
