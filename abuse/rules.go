package abuse

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/validation"
)

// Rules are a partner's fraud and abuse rules. A zero limit is no limit.
// Hours are UTC clock hours and days UTC calendar days (fixed windows: a
// limit of 10 per hour lets 10 through at 10:59 and 10 more at 11:00).
type Rules struct {
	PartnerID           int64           `json:"partner_id"`
	MemberEarnsPerHour  int64           `json:"member_earns_per_hour"`
	MemberPointsPerDay  int64           `json:"member_points_per_day"`
	MemberBurnsPerHour  int64           `json:"member_burns_per_hour"`
	CardEarnsPerHour    int64           `json:"card_earns_per_hour"`
	CardPointsPerDay    int64           `json:"card_points_per_day"`
	CardBurnsPerHour    int64           `json:"card_burns_per_hour"`
	PartnerEarnsPerHour int64           `json:"partner_earns_per_hour"`
	PartnerPointsPerDay int64           `json:"partner_points_per_day"`
	PartnerBurnsPerHour int64           `json:"partner_burns_per_hour"`
	RefundShare         decimal.Decimal `json:"refund_share"`
	RefundMinPoints     int64           `json:"refund_min_points"`
	ActionCaps          []ActionCap     `json:"action_caps"`
	UpdatedAt           *time.Time      `json:"updated_at,omitempty"`
	UpdatedBy           string          `json:"updated_by,omitempty"`
}

// ActionCap rewards one non-purchase action (an earn's event_code) at most
// Max times per member and Period.
type ActionCap struct {
	EventCode string `json:"event_code"`
	Max       int64  `json:"max"`
	Period    Period `json:"period"`
}

// Period is an action cap's window: a UTC day, ISO week (from Monday),
// calendar month or calendar year.
type Period string

// Periods of action caps.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
	PeriodYear  Period = "year"
)

// start returns the first instant of the period holding t (UTC).
func (p Period) start(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case PeriodWeek:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case PeriodYear:
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return day
}

// end returns the first instant after the period holding t.
func (p Period) end(t time.Time) time.Time {
	s := p.start(t)
	switch p {
	case PeriodWeek:
		return s.AddDate(0, 0, 7)
	case PeriodMonth:
		return s.AddDate(0, 1, 0)
	case PeriodYear:
		return s.AddDate(1, 0, 0)
	}
	return s.AddDate(0, 0, 1)
}

// Earns reports whether any rule concerns earns (the points API then
// counts them inside the posting transaction).
func (r Rules) Earns() bool {
	return r.MemberEarnsPerHour > 0 || r.MemberPointsPerDay > 0 || r.CardEarnsPerHour > 0 || r.CardPointsPerDay > 0 ||
		r.PartnerEarnsPerHour > 0 || r.PartnerPointsPerDay > 0 || r.RefundShare.IsPositive() || len(r.ActionCaps) > 0
}

// Burns reports whether any rule limits burns.
func (r Rules) Burns() bool {
	return r.MemberBurnsPerHour > 0 || r.CardBurnsPerHour > 0 || r.PartnerBurnsPerHour > 0
}

// Validate checks the rules; errors name the field.
func (r Rules) Validate() error {
	var v validation.Error
	for _, f := range []struct {
		name string
		n    int64
	}{{"member_earns_per_hour", r.MemberEarnsPerHour}, {"member_points_per_day", r.MemberPointsPerDay},
		{"member_burns_per_hour", r.MemberBurnsPerHour}, {"card_earns_per_hour", r.CardEarnsPerHour},
		{"card_points_per_day", r.CardPointsPerDay}, {"card_burns_per_hour", r.CardBurnsPerHour},
		{"partner_earns_per_hour", r.PartnerEarnsPerHour}, {"partner_points_per_day", r.PartnerPointsPerDay},
		{"partner_burns_per_hour", r.PartnerBurnsPerHour}, {"refund_min_points", r.RefundMinPoints}} {
		v.Check(f.n >= 0 && f.n <= 1e12, f.name, "must be 0 (no limit) or a positive whole number")
	}
	v.Check(!r.RefundShare.IsNegative() && r.RefundShare.LessThanOrEqual(decimal.NewFromInt(1)) &&
		r.RefundShare.Equal(r.RefundShare.Truncate(4)), "refund_share", "must be between 0 (off) and 1, at most 4 decimals")
	seen := map[string]bool{}
	for i, c := range r.ActionCaps {
		f := "action_caps[" + strconv.Itoa(i) + "]"
		code := strings.TrimSpace(c.EventCode)
		v.Check(code != "" && len(code) <= 64, f+".event_code", "is required (at most 64 characters)")
		v.Check(!seen[code], f+".event_code", "appears twice")
		seen[code] = true
		v.Check(c.Max > 0 && c.Max <= 1e6, f+".max", "must be a positive whole number")
		v.Check(c.Period == PeriodDay || c.Period == PeriodWeek || c.Period == PeriodMonth || c.Period == PeriodYear,
			f+".period", "must be day, week, month or year")
	}
	return v.Err()
}

// subject is what a counter counts: a member, a card, the partner or a
// member's action, and whether earns, earned points or burns.
func memberSubject(id int64, what string) string { return "m" + strconv.FormatInt(id, 10) + "/" + what }
func partnerSubject(what string) string          { return "p/" + what }
func actionSubject(code string, member int64) string {
	return "a/" + strconv.FormatInt(member, 10) + "/" + code
}

// cardSubject keys a card by a digest, so that counters hold no card numbers.
func cardSubject(card, what string) string {
	sum := sha256.Sum256([]byte(card))
	return "c" + hex.EncodeToString(sum[:12]) + "/" + what
}

func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
func dayOf(t time.Time) time.Time  { return PeriodDay.start(t) }
