// Package money holds the hub's one Money type and converts exact decimal
// amounts to integer minor units with named rounding, per ISO 4217 currency
// exponent.
package money

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Money is an amount in minor units (cents, kopecks) of an ISO 4217 currency.
type Money struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// exponents lists currencies whose minor unit is not the cent (ISO 4217).
var exponents = map[string]int32{
	"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "XAF": 0, "XOF": 0, "HUF": 2,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// Exponent is the number of decimal places of a currency's minor unit.
func Exponent(currency string) int32 {
	if e, ok := exponents[currency]; ok {
		return e
	}
	return 2
}

// MinorHalfEven converts a decimal amount in major units (e.g. 12.345 EUR) to
// minor units, rounding half to even (banker's rounding), the rule for every
// money line in the hub.
func MinorHalfEven(amount decimal.Decimal, currency string) int64 {
	e := Exponent(currency)
	return amount.Shift(e).RoundBank(0).IntPart()
}

// PointsValue is points × price per point, in minor units, rounded half-even.
func PointsValue(points int64, pricePerPoint decimal.Decimal, currency string) int64 {
	return MinorHalfEven(decimal.NewFromInt(points).Mul(pricePerPoint), currency)
}

// Format renders minor units for people: 123456 EUR -> "1234.56 EUR".
func Format(minor int64, currency string) string {
	return fmt.Sprintf("%s %s", decimal.New(minor, -Exponent(currency)).StringFixed(Exponent(currency)), currency)
}
