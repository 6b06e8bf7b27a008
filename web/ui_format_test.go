package web

import "testing"

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		minor int64
		cur   string
		want  string
	}{
		{0, "EUR", "0.00 EUR"},
		{-3345, "EUR", "-33.45 EUR"},
		{99999, "EUR", "999.99 EUR"},
		{100000, "EUR", "1,000.00 EUR"},
		{-3962420, "EUR", "-39,624.20 EUR"},
		{123456789012, "USD", "1,234,567,890.12 USD"},
		{1234567, "JPY", "1,234,567 JPY"},
	} {
		if got := formatMoney(c.minor, c.cur); got != c.want {
			t.Errorf("formatMoney(%d, %s) = %q; want %q", c.minor, c.cur, got, c.want)
		}
	}
}
