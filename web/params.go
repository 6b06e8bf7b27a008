package web

import (
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
)

// A month, a day or an instant named in a path, a query or a form is parsed
// by parseCalendar alone, so each refuses a date that does not exist the
// same way: a 400 naming the parameter, before anything reaches the
// database (which would refuse month 13 or year 0 with a 500).

// calendarKind is what a parameter names.
type calendarKind struct {
	layout string
	want   string // the message when the value is not one
}

var (
	calMonth   = calendarKind{"2006-01", "must be a month as YYYY-MM (month 01 to 12, year 0001 to 9999)"}
	calDay     = calendarKind{"2006-01-02", "must be a date like 2026-01-31 (year 0001 to 9999)"}
	calInstant = calendarKind{time.RFC3339, "must be an RFC 3339 time like 2026-01-31T10:00:00Z (year 0001 to 9999)"}
)

// parseCalendar parses raw as kind: the exact layout, a date that exists,
// a year from 1 to 9999 (year 0 is not a date PostgreSQL stores). When raw
// is not one, it adds field to v and returns the zero time and false.
func parseCalendar(raw, field string, kind calendarKind, v *validation.Error) (time.Time, bool) {
	t, err := time.Parse(kind.layout, raw)
	if err != nil || t.Year() < 1 || (kind != calInstant && len(raw) != len(kind.layout)) {
		v.Add(field, kind.want)
		return time.Time{}, false
	}
	return t, true
}

// pathMonth is the month the path parameter name holds, as YYYY-MM.
// Errors: *validation.Error naming the parameter.
func pathMonth(c *gin.Context, name string) (string, error) {
	var v validation.Error
	t, ok := parseCalendar(c.Param(name), name, calMonth, &v)
	if !ok {
		return "", v.Err()
	}
	return t.Format(calMonth.layout), nil
}

// optionalMonth parses an optional month (a query or form value): "" when
// raw is empty or not a month (then field is added to v).
func optionalMonth(raw, field string, v *validation.Error) string {
	if raw == "" {
		return ""
	}
	t, ok := parseCalendar(raw, field, calMonth, v)
	if !ok {
		return ""
	}
	return t.Format(calMonth.layout)
}

// queryTime parses an optional RFC 3339 query parameter; the zero time
// when it is absent or bad (then it is added to v).
func queryTime(c *gin.Context, name string, v *validation.Error) time.Time {
	raw := c.Query(name)
	if raw == "" {
		return time.Time{}
	}
	t, _ := parseCalendar(raw, name, calInstant, v)
	return t
}

// formDate parses an optional YYYY-MM-DD query or form value (UTC
// midnight); the zero time when it is empty or bad (then it is added to v).
func formDate(raw, field string, v *validation.Error) time.Time {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return time.Time{}
	}
	t, _ := parseCalendar(raw, field, calDay, v)
	return t
}
