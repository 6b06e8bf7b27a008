package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// Console forms that answer a refusal on the same page: what the operator
// typed stays in the form, and each field the server named (the problem's
// errors[].field) gets its message next to the input. Templates read both
// from two maps keyed "form.field": Data.V (values) and Data.E (messages).

// formState is the values and field messages of the forms of one page.
type formState struct {
	V    map[string]string
	E    map[string]string
	Open string // the form that was refused, shown open
}

func newFormState() formState {
	return formState{V: map[string]string{}, E: map[string]string{}}
}

// set gives field of form a default value.
func (f formState) set(form, field, value string) { f.V[form+"."+field] = value }

// refused puts the posted values of form back and places err's field
// messages on the form's inputs. aliases maps a server field (indexes and a
// "definition." prefix removed, e.g. "earn.rate") to an input name; a field
// named by neither an alias nor an input stays in the page's message only.
func (f *formState) refused(form string, posted url.Values, err error, aliases map[string]string) {
	f.Open = form
	// The form's defaults give way to what was posted; an unchecked box is
	// not posted at all, so it must not keep a default "on".
	for k := range f.V {
		if strings.HasPrefix(k, form+".") {
			delete(f.V, k)
		}
	}
	for k, vs := range posted {
		if k != csrfField && len(vs) > 0 {
			f.V[form+"."+k] = strings.Join(vs, "\n")
		}
	}
	p, _ := problemFor(err)
	for _, fe := range p.Errors {
		name := normalField(fe.Field)
		if a, ok := aliases[name]; ok {
			name = a
		} else if _, ok := posted[name]; !ok {
			if i := strings.LastIndex(name, "."); i >= 0 {
				name = name[i+1:]
			}
			if _, ok := posted[name]; !ok {
				continue
			}
		}
		key := form + "." + name
		if f.E[key] == "" {
			f.E[key] = fe.Message
		}
	}
}

var fieldIndex = regexp.MustCompile(`\[\d+\]`)

func normalField(f string) string {
	return strings.TrimPrefix(fieldIndex.ReplaceAllString(f, ""), "definition.")
}

// refusedStatus is the status of a page re-rendered after err.
func refusedStatus(err error) int {
	if p, known := problemFor(err); known && p.Status >= 400 {
		return p.Status
	}
	return http.StatusInternalServerError
}

// formMinor reads an amount in major units ("1250.50") as minor units of
// currency; empty is 0.
func formMinor(raw, currency, field string, v *validation.Error) int64 {
	raw = strings.ReplaceAll(strings.TrimSpace(raw), ",", "")
	if raw == "" {
		return 0
	}
	d, err := decimal.NewFromString(raw)
	if err != nil {
		v.Add(field, "must be an amount like 1250.50")
		return 0
	}
	if d.Exponent() < -money.Exponent(currency) {
		v.Add(field, "has more decimals than "+currency+" allows")
		return 0
	}
	return money.MinorHalfEven(d, currency)
}

// majorUnits writes minor units of currency as a plain decimal for an input.
func majorUnits(minor int64, currency string) string {
	return decimal.New(minor, -money.Exponent(currency)).StringFixed(money.Exponent(currency))
}

// formPage is the common data of a page with refusable forms.
func formData(f formState, data gin.H) gin.H {
	data["V"], data["E"], data["Open"] = f.V, f.E, f.Open
	return data
}
