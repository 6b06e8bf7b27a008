package settlement

import (
	"fmt"
	"time"

	"github.com/coalitionhub/hub/internal/validation"
)

// month is a calendar month in the operator's time zone.
type month struct {
	year int
	mon  time.Month
	loc  *time.Location
}

// parseMonth reads "YYYY-MM", years 0001 to 9999 (year 0 is not a date
// PostgreSQL stores). Every method that takes a month parses it here before
// any SQL sees it. Errors: *validation.Error naming field.
func parseMonth(s, field string, loc *time.Location) (month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || len(s) != 7 || t.Year() < 1 {
		var v validation.Error
		v.Add(field, "must be a month as YYYY-MM")
		return month{}, v.Err()
	}
	return month{t.Year(), t.Month(), loc}, nil
}

// monthOf is the month containing t in loc.
func monthOf(t time.Time, loc *time.Location) month {
	l := t.In(loc)
	return month{l.Year(), l.Month(), loc}
}

func (m month) String() string   { return fmt.Sprintf("%04d-%02d", m.year, m.mon) }
func (m month) date() string     { return m.String() + "-01" }
func (m month) start() time.Time { return time.Date(m.year, m.mon, 1, 0, 0, 0, 0, m.loc).UTC() }
func (m month) end() time.Time   { return time.Date(m.year, m.mon+1, 1, 0, 0, 0, 0, m.loc).UTC() }
func (m month) previous() month {
	p := time.Date(m.year, m.mon-1, 1, 0, 0, 0, 0, time.UTC)
	return month{p.Year(), p.Month(), m.loc}
}
