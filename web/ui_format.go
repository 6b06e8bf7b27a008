package web

import (
	"strings"

	"github.com/coalitionhub/hub/internal/money"
)

// formatMoney is an amount as pages show it: minor units in the currency's
// decimals with thousands separators, "-39,624.20 EUR". The statement files
// (CSV, PDF) and the API keep the plain form of money.Format.
func formatMoney(minor int64, currency string) string {
	s := money.Format(minor, currency)
	num, cur, _ := strings.Cut(s, " ")
	sign := ""
	if strings.HasPrefix(num, "-") {
		sign, num = "-", num[1:]
	}
	whole, frac, hasFrac := strings.Cut(num, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i, ch := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return b.String() + " " + cur
}
