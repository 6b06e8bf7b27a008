package programme

import "github.com/shopspring/decimal"

var decimalOne = decimal.NewFromInt(1)

// mustDecimal parses a numeric the database produced.
func mustDecimal(s string) decimal.Decimal {
	d, err := decimal.NewFromString(s)
	if err != nil {
		panic("programme: bad numeric from the database: " + s)
	}
	return d
}
