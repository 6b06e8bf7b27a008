package members

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/validation"
)

func TestLuhn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		number string
		valid  bool
	}{
		{"79927398713", true}, // the textbook example
		{"79927398710", false},
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"7301000000000001", true},
		{"7301000000000009", false},
		{"0", false},
		{"", false},
		{"73010000000000a6", false},
	}
	for _, c := range cases {
		if got := LuhnValid(c.number); got != c.valid {
			t.Errorf("LuhnValid(%q) = %v, want %v", c.number, got, c.valid)
		}
	}
	if d, ok := LuhnCheckDigit("7992739871"); !ok || d != '3' {
		t.Errorf("LuhnCheckDigit(7992739871) = %q,%v, want '3',true", d, ok)
	}
}

func TestNewCardNumber(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		n, err := NewCardNumber()
		if err != nil {
			t.Fatal(err)
		}
		id, err := ParseIdentifier("card", n, 0)
		if err != nil || id.Value != n {
			t.Fatalf("generated card %q does not parse back: %v", n, err)
		}
		seen[n] = true
	}
	// 10^11 possible numbers: 1000 draws colliding means the generator is broken.
	if len(seen) < 999 {
		t.Errorf("1000 card numbers gave only %d distinct ones", len(seen))
	}
}

func TestParseIdentifier(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		typ       string
		value     string
		partnerID int64
		want      Identifier
		badField  string // non-empty: a validation error naming this field
	}{
		{"card plain", "card", "7301000000000001", 0, Identifier{Type: IdentifierCard, Value: "7301000000000001"}, ""},
		{"card with spaces and dashes", "card", " 7301 0000-0000 0001 ", 0, Identifier{Type: IdentifierCard, Value: "7301000000000001"}, ""},
		{"card bad check digit", "card", "7301000000000009", 0, Identifier{}, "value"},
		{"card wrong prefix", "card", "4111111111111111", 0, Identifier{}, "value"},
		{"card too short", "card", "730100000000006", 0, Identifier{}, "value"},
		{"card letters", "card", "7301-ABCD-0000-0001", 0, Identifier{}, "value"},
		{"card with partner", "card", "7301000000000001", 5, Identifier{}, "partner_id"},
		{"email normalised", "email", "  Ana.Silva@Example.COM ", 0, Identifier{Type: IdentifierEmail, Value: "ana.silva@example.com"}, ""},
		{"email plus tag", "email", "a+b@mail.example.org", 0, Identifier{Type: IdentifierEmail, Value: "a+b@mail.example.org"}, ""},
		{"email no at", "email", "ana.example.com", 0, Identifier{}, "value"},
		{"email two ats", "email", "a@b@example.com", 0, Identifier{}, "value"},
		{"email no tld", "email", "ana@localhost", 0, Identifier{}, "value"},
		{"email space inside", "email", "ana silva@example.com", 0, Identifier{}, "value"},
		{"email display name", "email", "Ana <ana@example.com>", 0, Identifier{}, "value"},
		{"email empty", "email", "  ", 0, Identifier{}, "value"},
		{"email non-ascii", "email", "zoë@example.com", 0, Identifier{}, "value"},
		{"email double dot domain", "email", "ana@example..com", 0, Identifier{}, "value"},
		{"phone E.164", "phone", "+44 20 7946 0958", 0, Identifier{Type: IdentifierPhone, Value: "+442079460958"}, ""},
		{"phone punctuation", "phone", "+1 (415) 555-0100", 0, Identifier{Type: IdentifierPhone, Value: "+14155550100"}, ""},
		{"phone 00 prefix", "phone", "0049 30 1234567", 0, Identifier{Type: IdentifierPhone, Value: "+49301234567"}, ""},
		{"phone no country code", "phone", "020 7946 0958", 0, Identifier{}, "value"},
		{"phone too long", "phone", "+1234567890123456", 0, Identifier{}, "value"},
		{"phone too short", "phone", "+12345", 0, Identifier{}, "value"},
		{"phone letters", "phone", "+44 20 CALL ME", 0, Identifier{}, "value"},
		{"phone plus in middle", "phone", "44+2079460958", 0, Identifier{}, "value"},
		{"phone country code zero", "phone", "+0442079460958", 0, Identifier{}, "value"},
		{"partner ref", "partner_ref", " AB-123.45_x ", 7, Identifier{Type: IdentifierPartnerRef, Value: "AB-123.45_x", PartnerID: 7}, ""},
		{"partner ref without partner", "partner_ref", "AB123", 0, Identifier{}, "partner_id"},
		{"partner ref bad chars", "partner_ref", "AB 123", 7, Identifier{}, "value"},
		{"partner ref too long", "partner_ref", strings.Repeat("A", 65), 7, Identifier{}, "value"},
		{"unknown type", "passport", "X1", 0, Identifier{}, "type"},
		{"empty type", "", "X1", 0, Identifier{}, "type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseIdentifier(c.typ, c.value, c.partnerID)
			if c.badField == "" {
				if err != nil {
					t.Fatalf("ParseIdentifier(%q, %q, %d): unexpected error %v", c.typ, c.value, c.partnerID, err)
				}
				if got != c.want {
					t.Fatalf("ParseIdentifier(%q, %q, %d) = %+v, want %+v", c.typ, c.value, c.partnerID, got, c.want)
				}
				return
			}
			var ve *validation.Error
			if !errors.As(err, &ve) {
				t.Fatalf("ParseIdentifier(%q, %q, %d) = %+v, %v; want a validation error on %q", c.typ, c.value, c.partnerID, got, err, c.badField)
			}
			if !hasField(ve, c.badField) {
				t.Fatalf("validation error %v does not name field %q", ve, c.badField)
			}
		})
	}
}

func hasField(ve *validation.Error, field string) bool {
	for _, f := range ve.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// FuzzParseIdentifier checks that whatever a partner sends, a parsed
// identifier is in the normal form the database accepts and parsing is
// idempotent (a stored value parses to itself).
func FuzzParseIdentifier(f *testing.F) {
	seeds := []struct {
		typ, value string
		partner    int64
	}{
		{"card", "7301 0000 0000 0001", 0}, {"card", "7301000000000009", 0},
		{"email", " Ana@Example.com", 0}, {"email", "@@", 0},
		{"phone", "+44 (20) 7946-0958", 0}, {"phone", "00", 0},
		{"partner_ref", "FF-123", 3}, {"partner_ref", "", -1}, {"x", "", 0},
	}
	for _, s := range seeds {
		f.Add(s.typ, s.value, s.partner)
	}
	f.Fuzz(func(t *testing.T, typ, value string, partner int64) {
		id, err := ParseIdentifier(typ, value, partner)
		if err != nil {
			var ve *validation.Error
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("error %v is not a validation error with fields", err)
			}
			return
		}
		again, err := ParseIdentifier(string(id.Type), id.Value, id.PartnerID)
		if err != nil || again != id {
			t.Fatalf("parse not idempotent: %+v -> %+v, %v", id, again, err)
		}
		switch id.Type {
		case IdentifierCard:
			if len(id.Value) != 16 || !strings.HasPrefix(id.Value, "7301") || !LuhnValid(id.Value) {
				t.Fatalf("bad card accepted: %q", id.Value)
			}
		case IdentifierEmail:
			if id.Value != strings.ToLower(id.Value) || strings.Count(id.Value, "@") != 1 || len(id.Value) > 254 {
				t.Fatalf("bad email accepted: %q", id.Value)
			}
		case IdentifierPhone:
			if !phoneRE.MatchString(id.Value) {
				t.Fatalf("bad phone accepted: %q", id.Value)
			}
		case IdentifierPartnerRef:
			if id.PartnerID <= 0 || id.Value == "" || len(id.Value) > 64 {
				t.Fatalf("bad partner ref accepted: %+v", id)
			}
		default:
			t.Fatalf("unknown type accepted: %q", id.Type)
		}
	})
}

func TestCanTransact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status Status
		ok     bool
	}{{StatusActive, true}, {StatusSuspended, false}, {StatusClosed, false}, {StatusMerged, false}} {
		err := CanTransact(Member{ID: 1, Status: c.status, MergedIntoID: 2})
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrMemberInactive)) {
			t.Errorf("CanTransact(%s) = %v, want ok=%v (else ErrMemberInactive)", c.status, err, c.ok)
		}
	}
}

func TestNormaliseProfile(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	good, err := normaliseProfile(Profile{GivenName: " Ana ", FamilyName: "Silva", Email: "ANA@Example.com",
		Phone: "+351 912 345 678", BirthDate: "1990-02-28"}, now)
	if err != nil {
		t.Fatalf("valid profile refused: %v", err)
	}
	want := Profile{GivenName: "Ana", FamilyName: "Silva", Email: "ana@example.com", Phone: "+351912345678",
		BirthDate: "1990-02-28", Locale: "en"}
	if good != want {
		t.Fatalf("normalised profile = %+v, want %+v", good, want)
	}
	for _, c := range []struct {
		p     Profile
		field string
	}{
		{Profile{BirthDate: "2027-01-01"}, "profile.birth_date"},
		{Profile{BirthDate: "1899-12-31"}, "profile.birth_date"},
		{Profile{BirthDate: "01/02/1990"}, "profile.birth_date"},
		{Profile{Email: "nope"}, "profile.email"},
		{Profile{Phone: "12345"}, "profile.phone"},
		{Profile{Locale: "english"}, "profile.locale"},
		{Profile{GivenName: strings.Repeat("a", 101)}, "profile.given_name"},
		{Profile{FamilyName: "a\nb"}, "profile.family_name"},
	} {
		_, err := normaliseProfile(c.p, now)
		var ve *validation.Error
		if !errors.As(err, &ve) || !hasField(ve, c.field) {
			t.Errorf("normaliseProfile(%+v) = %v, want a validation error on %s", c.p, err, c.field)
		}
	}
}

var phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
