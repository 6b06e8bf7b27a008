package members

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/validation"
)

// IdentifierType says what kind of key an identifier is.
type IdentifierType string

// Identifier types. Values are unique per type; partner references are
// unique per (partner, value).
const (
	IdentifierCard       IdentifierType = "card"        // coalition card number, issued by the hub
	IdentifierEmail      IdentifierType = "email"       // lower-cased address
	IdentifierPhone      IdentifierType = "phone"       // "+" and 7..15 digits (E.164)
	IdentifierPartnerRef IdentifierType = "partner_ref" // partner-issued, e.g. a frequent-flyer number
)

// CardPrefix starts every coalition card number (an issuer range of our own).
const CardPrefix = "7301"

// cardLength is the number of digits of a card number, check digit included.
const cardLength = 16

// Identifier is one normalised key of a member. Build it with ParseIdentifier.
type Identifier struct {
	Type      IdentifierType `json:"type"`
	Value     string         `json:"value"`
	PartnerID int64          `json:"partner_id,omitempty"` // only for partner_ref
	// Primary marks the card issued at enrolment (cards moved in by a merge
	// are not primary). Ignored on input.
	Primary   bool       `json:"primary,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

func (id Identifier) String() string {
	if id.Type == IdentifierPartnerRef {
		return fmt.Sprintf("partner_ref:%d:%s", id.PartnerID, id.Value)
	}
	return string(id.Type) + ":" + id.Value
}

// ParseIdentifier validates and normalises an identifier as a partner or the
// console typed it:
//   - card: spaces and dashes dropped; 16 digits starting with 7301 whose last
//     digit is the Luhn check digit;
//   - email: trimmed and lower-cased; printable ASCII (internationalised
//     domains arrive punycoded), one "@", a non-empty local part and a dotted
//     domain, at most 254 characters;
//   - phone: spaces, dashes, dots and parentheses dropped; a leading "00" is
//     read as "+"; then "+" and 7 to 15 digits not starting with 0 (numbers
//     without a country code are refused: the hub does not guess a region);
//   - partner_ref: trimmed; 1 to 64 characters of letters, digits, ".", "_"
//     and "-", kept as given; partnerID must be positive.
//
// partnerID must be 0 for every type but partner_ref. Bad input yields a
// *validation.Error naming "type", "value" or "partner_id".
func ParseIdentifier(typ, value string, partnerID int64) (Identifier, error) {
	t := IdentifierType(strings.TrimSpace(typ))
	id := Identifier{Type: t}
	switch t {
	case IdentifierCard:
		v, msg := normaliseCard(value)
		if msg != "" {
			return Identifier{}, validation.New("value", msg)
		}
		id.Value = v
	case IdentifierEmail:
		v, msg := normaliseEmail(value)
		if msg != "" {
			return Identifier{}, validation.New("value", msg)
		}
		id.Value = v
	case IdentifierPhone:
		v, msg := normalisePhone(value)
		if msg != "" {
			return Identifier{}, validation.New("value", msg)
		}
		id.Value = v
	case IdentifierPartnerRef:
		ve := &validation.Error{}
		v := strings.TrimSpace(value)
		ve.Check(v != "" && len(v) <= 64 && isRefChars(v), "value",
			"must be 1 to 64 letters, digits, '.', '_' or '-'")
		ve.Check(partnerID > 0, "partner_id", "is required for a partner reference")
		if err := ve.Err(); err != nil {
			return Identifier{}, err
		}
		id.Value, id.PartnerID = v, partnerID
		return id, nil
	default:
		return Identifier{}, validation.New("type", "must be one of card, email, phone, partner_ref")
	}
	if partnerID != 0 {
		return Identifier{}, validation.New("partner_id", "only a partner reference has a partner")
	}
	return id, nil
}

func isRefChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func normaliseCard(raw string) (string, string) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(raw) {
		switch {
		case r == ' ' || r == '-':
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", "a card number has digits only"
		}
	}
	v := b.String()
	switch {
	case len(v) != cardLength:
		return "", fmt.Sprintf("a card number has %d digits", cardLength)
	case !strings.HasPrefix(v, CardPrefix):
		return "", "not a coalition card number (must start with " + CardPrefix + ")"
	case !LuhnValid(v):
		return "", "check digit does not match; the number was mistyped"
	}
	return v, ""
}

func normaliseEmail(raw string) (string, string) {
	v := strings.ToLower(strings.TrimSpace(raw))
	if v == "" {
		return "", "is required"
	}
	if len(v) > 254 {
		return "", "is not a valid email address"
	}
	at := strings.IndexByte(v, '@')
	if at <= 0 || at != strings.LastIndexByte(v, '@') {
		return "", "is not a valid email address"
	}
	local, domain := v[:at], v[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	if len(local) > 64 || dot <= 0 || len(domain)-dot-1 < 2 ||
		strings.HasPrefix(domain, ".") || strings.Contains(domain, "..") {
		return "", "is not a valid email address"
	}
	for _, r := range v {
		if r <= ' ' || r >= 0x7f || r == '<' || r == '>' || r == ',' || r == ';' || r == '"' || r == '(' || r == ')' || r == '\\' {
			return "", "is not a valid email address"
		}
	}
	return v, ""
}

func normalisePhone(raw string) (string, string) {
	v := strings.TrimSpace(raw)
	var b strings.Builder
	for i, r := range v {
		switch {
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", "a phone number has digits, spaces and an optional leading '+' only"
		}
	}
	digits := b.String()
	switch {
	case strings.HasPrefix(v, "+"):
	case strings.HasPrefix(digits, "00"):
		digits = digits[2:]
	default:
		return "", "needs the country code, e.g. +44 20 7946 0958"
	}
	if len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return "", "must be a country code and number of 7 to 15 digits"
	}
	return "+" + digits, ""
}

// LuhnValid reports whether the decimal string s ends in a correct Luhn check
// digit. Non-digits make it false.
func LuhnValid(s string) bool {
	if len(s) < 2 {
		return false
	}
	d, ok := luhnDigit(s[:len(s)-1])
	return ok && s[len(s)-1] == d
}

// LuhnCheckDigit returns the digit that, appended to the decimal payload,
// makes a Luhn-valid number. ok is false when payload has a non-digit.
func LuhnCheckDigit(payload string) (digit byte, ok bool) {
	return luhnDigit(payload)
}

func luhnDigit(payload string) (byte, bool) {
	sum := 0
	double := true // the digit left of the check digit is doubled
	for i := len(payload) - 1; i >= 0; i-- {
		c := payload[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n := int(c - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return byte('0' + (10-sum%10)%10), true
}

// NewCardNumber returns a random, Luhn-valid coalition card number. It is
// unique with high probability only; the store retries on a collision.
func NewCardNumber() (string, error) {
	body := cardLength - len(CardPrefix) - 1
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(body)), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("card number: %w", err)
	}
	payload := fmt.Sprintf("%s%0*d", CardPrefix, body, n.Int64())
	d, _ := luhnDigit(payload)
	return payload + string(d), nil
}
