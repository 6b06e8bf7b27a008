package programme

import (
	"time"

	"github.com/shopspring/decimal"
)

// LotExpiry returns when points earned at occurred expire under p, or nil
// when they carry no expiry of their own (never, and inactivity, which
// expires a member's points as a whole). Fixed lifetime adds ExpiryMonths
// calendar months (Go's AddDate normalisation: 31 Jan + 1 month = 3 Mar).
// End of year is the first instant of year(occurred)+ExpiryYears, UTC.
func LotExpiry(p Policy, occurred time.Time) *time.Time {
	occurred = occurred.UTC()
	var t time.Time
	switch p.ExpiryMode {
	case ExpiryFixedLifetime:
		t = occurred.AddDate(0, p.ExpiryMonths, 0)
	case ExpiryEndOfYear:
		t = time.Date(occurred.Year()+p.ExpiryYears, 1, 1, 0, 0, 0, 0, time.UTC)
	default:
		return nil
	}
	return &t
}

// InactivityDeadline is when a member whose last earn or burn was at last
// loses all points under the inactivity policy.
func InactivityDeadline(p Policy, last time.Time) time.Time {
	return last.UTC().AddDate(0, p.ExpiryMonths, 0)
}

// TransferFee is the fee in points for transferring points under p: the
// fixed fee plus the rate times the points, rounded up to a whole point (the
// operator never undercharges by a fraction).
func TransferFee(p Policy, points int64) int64 {
	fee := decimal.NewFromInt(points).Mul(p.TransferFeeRate).Ceil().IntPart()
	return p.TransferFeeFixed + fee
}

// Birthday reports whether a member born on birth (YYYY-MM-DD, any year)
// celebrates on day d (UTC). Members born on 29 February celebrate on 28
// February in common years.
func Birthday(birth, d time.Time) bool {
	m, day := birth.Month(), birth.Day()
	if m == time.February && day == 29 && !leap(d.Year()) {
		day = 28
	}
	return d.Month() == m && d.Day() == day
}

func leap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// LevelFor returns the company level for a yearly spend: the level with the
// highest MinSpendMinor not above spend. ok is false when none applies.
func LevelFor(levels []CompanyLevel, spendMinor int64) (CompanyLevel, bool) {
	var best CompanyLevel
	ok := false
	for _, l := range levels {
		if l.MinSpendMinor <= spendMinor && (!ok || l.MinSpendMinor > best.MinSpendMinor) {
			best, ok = l, true
		}
	}
	return best, ok
}

// CompanyPoints is what a company earns on spendMinor (minor units of a
// currency with exponent exp) at rate points per currency unit: rounded
// down, like every award.
func CompanyPoints(spendMinor int64, exp int32, rate decimal.Decimal) int64 {
	return decimal.New(spendMinor, -exp).Mul(rate).Floor().IntPart()
}

// takeBack is how much of an original amount orig a reversal takes back when
// cumulative reversals reach cum of total: orig·cum/total (floor), minus what
// earlier reversals took. A full reversal takes back exactly orig.
func takeBack(orig, total, cumBefore, cumAfter int64) int64 {
	if total <= 0 {
		return 0
	}
	cumAfter = min(cumAfter, total)
	return share(orig, cumAfter, total) - share(orig, cumBefore, total)
}

func share(orig, part, total int64) int64 {
	return decimal.NewFromInt(orig).Mul(decimal.NewFromInt(part)).Div(decimal.NewFromInt(total)).Floor().IntPart()
}
