// Package validation carries "this input is wrong, and here is which field"
// from the domain services to the HTTP layer, which renders it as an RFC 9457
// problem with code invalid_request and one entry per offending field.
package validation

import (
	"strings"
	"unicode/utf8"
)

// FieldError names one bad field (JSON path, e.g. "items[3].amount") and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a set of field errors. The zero value is empty and usable.
type Error struct {
	Fields []FieldError
}

// Add records that field is wrong.
func (e *Error) Add(field, message string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: message})
}

// Check adds the error when ok is false, and reports ok.
func (e *Error) Check(ok bool, field, message string) bool {
	if !ok {
		e.Add(field, message)
	}
	return ok
}

// Err returns e as an error, or nil when no field is wrong.
func (e *Error) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// New returns an error for a single field.
func New(field, message string) error {
	e := &Error{}
	e.Add(field, message)
	return e
}

// Clip makes informational text (a user agent, an address) storable in a
// text column of at most n bytes without refusing the request it came with:
// invalid UTF-8 and NUL bytes are dropped and the rest is cut on a rune
// boundary.
func Clip(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Cause is a domain error blamed on one field (a link that expired, say):
// the HTTP layer answers with the status and code of the sentinel Err and
// names Field in the problem's errors, as it does for bad input.
type Cause struct {
	Field   string
	Message string
	Err     error
}

// Blame returns err blamed on field.
func Blame(field, message string, err error) error {
	return &Cause{Field: field, Message: message, Err: err}
}

func (c *Cause) Error() string { return c.Field + " " + c.Message + ": " + c.Err.Error() }
func (c *Cause) Unwrap() error { return c.Err }
