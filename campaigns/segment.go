package campaigns

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// Definition is a segment's rule: every condition in All must hold. An
// empty All selects every active member.
type Definition struct {
	All []Condition `json:"all"`
}

// Condition is one test of a member: a field, an operator and a value whose
// type the field decides.
//
//	field              op                          value
//	tier               in, not_in                  ["gold", "silver"] (tier codes; the base tier counts)
//	enrolled           before, on_or_after         "2025-01-31" (a UTC day)
//	partners           used_any, used_none         [3, 7] (partner ids; an earn or burn there)
//	last_activity      within_days, not_within_days 90 (days; an earn, burn or capture)
//	balance            at_least, at_most           1000 (points, pending included)
//	marketing_consent  is                          true
type Condition struct {
	Field string          `json:"field"`
	Op    string          `json:"op"`
	Value json.RawMessage `json:"value"`
}

// Fields and their operators, in the order the console lists them.
var fieldOps = map[string][]string{
	"tier":              {"in", "not_in"},
	"enrolled":          {"before", "on_or_after"},
	"partners":          {"used_any", "used_none"},
	"last_activity":     {"within_days", "not_within_days"},
	"balance":           {"at_least", "at_most"},
	"marketing_consent": {"is"},
}

var tierCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// plan is a compiled definition: what each owning package is asked.
type plan struct {
	members  members.Criteria
	ledger   ledger.MemberCriteria
	tierIn   []map[string]bool
	tierOut  map[string]bool
	hasTiers bool
}

// compile checks d and compiles it for the day now (relative conditions such
// as "within 90 days" count back from it). Errors: *validation.Error naming
// definition.all[i].field, .op or .value.
func compile(d Definition, now time.Time) (plan, error) {
	var v validation.Error
	var p plan
	v.Check(len(d.All) <= 20, "definition.all", "must have at most 20 conditions")
	seen := map[string]bool{}
	for i, c := range d.All {
		at := fmt.Sprintf("definition.all[%d]", i)
		ops, ok := fieldOps[c.Field]
		if !v.Check(ok, at+".field", "must be one of tier, enrolled, partners, last_activity, balance, marketing_consent") {
			continue
		}
		if !v.Check(contains(ops, c.Op), at+".op", fmt.Sprintf("must be one of %v for %s", ops, c.Field)) {
			continue
		}
		if !v.Check(!seen[c.Field+" "+c.Op] || c.Field == "tier" || c.Field == "partners", at+".op",
			"repeats an earlier condition; combine them in one") {
			continue
		}
		seen[c.Field+" "+c.Op] = true
		val := at + ".value"
		switch c.Field {
		case "tier":
			var codes []string
			if !v.Check(strict(c.Value, &codes) == nil && len(codes) >= 1 && len(codes) <= 20, val, "must be a list of 1 to 20 tier codes") {
				continue
			}
			set := map[string]bool{}
			for _, code := range codes {
				v.Check(tierCode.MatchString(code), val, fmt.Sprintf("%q is not a tier code", code))
				set[code] = true
			}
			p.hasTiers = true
			if c.Op == "in" {
				p.tierIn = append(p.tierIn, set)
			} else {
				if p.tierOut == nil {
					p.tierOut = map[string]bool{}
				}
				for code := range set {
					p.tierOut[code] = true
				}
			}
		case "enrolled":
			var day string
			var t time.Time
			err := strict(c.Value, &day)
			if err == nil {
				t, err = time.Parse("2006-01-02", day)
			}
			if !v.Check(err == nil && day != "", val, "must be a day, YYYY-MM-DD") {
				continue
			}
			if c.Op == "before" {
				p.members.EnrolledBefore = &t
			} else {
				p.members.EnrolledFrom = &t
			}
		case "partners":
			var ids []int64
			ok := strict(c.Value, &ids) == nil && len(ids) >= 1 && len(ids) <= 50
			for _, id := range ids {
				ok = ok && id > 0
			}
			if !v.Check(ok, val, "must be a list of 1 to 50 partner ids") {
				continue
			}
			if c.Op == "used_any" {
				p.ledger.UsedPartners = append(p.ledger.UsedPartners, ids)
			} else {
				p.ledger.UnusedPartners = append(p.ledger.UnusedPartners, ids...)
			}
		case "last_activity":
			var days int
			if !v.Check(strict(c.Value, &days) == nil && days >= 1 && days <= 3650, val, "must be a whole number of days from 1 to 3650") {
				continue
			}
			since := now.UTC().AddDate(0, 0, -days)
			if c.Op == "within_days" {
				p.ledger.ActiveSince = &since
			} else {
				p.ledger.InactiveSince = &since
			}
		case "balance":
			var n int64
			if !v.Check(strict(c.Value, &n) == nil && n >= 0 && n <= 1_000_000_000, val, "must be a whole number of points from 0 to 1000000000") {
				continue
			}
			pts := ledger.Points(n)
			if c.Op == "at_least" {
				p.ledger.MinBalance = &pts
			} else {
				p.ledger.MaxBalance = &pts
			}
		case "marketing_consent":
			var b bool
			if !v.Check(strict(c.Value, &b) == nil, val, "must be true or false") {
				continue
			}
			p.members.Consent = &b
		}
	}
	return p, v.Err()
}

// strict decodes raw into out refusing anything of another type (a string
// for a number, a float for an integer, null).
func strict(raw json.RawMessage, out any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fmt.Errorf("no value")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// keepTier reports whether a member of tier code passes the tier conditions.
func (p plan) keepTier(code string) bool {
	if p.tierOut[code] {
		return false
	}
	for _, set := range p.tierIn {
		if !set[code] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Validate checks d as compile does. Errors: *validation.Error.
func (d Definition) Validate() error {
	_, err := compile(d, time.Now())
	return err
}
