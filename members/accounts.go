package members

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/internal/validation"
)

// Members running their own accounts: sign-up by email, claiming an account a
// partner enrolled, and password reset. Each sends a one-time link to an
// email address; using the link (UseLink) proves the person reads that
// mailbox, sets the password and, for a sign-up, makes the member. The
// requests answer the same whether or not the address or card is on file:
// what happens next is told only to the mailbox.

// Link errors.
var (
	// ErrLinkExpired: the link's time ran out; ask for a new one.
	ErrLinkExpired = errors.New("link expired")
	// ErrLinkUsed: the link was used, or a newer link or a password change
	// replaced it.
	ErrLinkUsed = errors.New("link used or replaced")
	// ErrMailThrottled: too many links asked for one account (or address);
	// wraps a *throttle.LimitedError saying how long to wait.
	ErrMailThrottled = errors.New("too many emails asked for this account")
)

// LinkPurpose is what a link does when used.
type LinkPurpose string

// Link purposes.
const (
	LinkSignup LinkPurpose = "signup" // makes the member (or claims the one already on file)
	LinkClaim  LinkPurpose = "claim"  // first password of an account a partner enrolled
	LinkReset  LinkPurpose = "reset"  // a forgotten password
)

// How long links live. A reset link is short-lived (it replaces a password
// in force); a sign-up or claim link gives a day to find the mail.
const (
	SignupLinkTTL = 24 * time.Hour
	ClaimLinkTTL  = 24 * time.Hour
	ResetLinkTTL  = time.Hour
)

// MailPolicy throttles the links one account (or one address that names no
// account) may be sent: three at once, then one every ten minutes, across
// every hub process. A mailbox is not flooded, and a refusal looks the same
// for an address on file and one that is not.
var MailPolicy = throttle.Policy{Burst: 3, Interval: 10 * time.Minute}

// SignupRequest is a person without a card joining by email.
type SignupRequest struct {
	Email      string
	GivenName  string
	FamilyName string
	Locale     string
	Marketing  bool
}

// ClaimRequest names the account to claim by its card number or by an
// email address on file; exactly one is given.
type ClaimRequest struct {
	CardNumber string
	Email      string
}

// LinkInfo is what a link's page shows before it is used.
type LinkInfo struct {
	Purpose   LinkPurpose
	Email     string
	ExpiresAt time.Time
}

// Redeemed is the account a used link set the password of.
type Redeemed struct {
	Purpose    LinkPurpose
	MemberID   int64
	Email      string // the sign-in email
	CardNumber string
	Created    bool // a sign-up made this member
}

const linkTimeFormat = "2 Jan 2006 15:04 UTC"

// Signup asks for a sign-up link to r.Email. When the address is already on
// file (an email identifier, or the contact email a partner enrolled) the
// mailbox gets a link to claim that account instead, so nobody is enrolled
// twice and the answer does not tell whether the address is known. Errors:
// *validation.Error (email, given_name, family_name, locale),
// ErrMailThrottled.
func (s *Service) Signup(ctx context.Context, r SignupRequest) error {
	p, err := normaliseProfile(Profile{GivenName: r.GivenName, FamilyName: r.FamilyName, Email: r.Email, Locale: r.Locale}, s.clock())
	if err != nil {
		return unprefix(err, "profile.")
	}
	if p.Email == "" {
		return validation.New("email", "is required")
	}
	m, found, err := s.memberByEmail(s.db.WithContext(ctx), p.Email)
	if err != nil {
		return fmt.Errorf("sign up: %w", err)
	}
	if err := s.takeMail(ctx, m.ID, p.Email); err != nil {
		return err
	}
	if found {
		if CanTransact(m) != nil {
			return nil
		}
		return s.sendLink(ctx, LinkClaim, m, p.Email, nil, "signup_existing")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	consent := Consent{Marketing: r.Marketing, Source: "portal-signup"}
	cb, _ := json.Marshal(consent)
	return s.sendLink(ctx, LinkSignup, Member{Profile: p}, p.Email, json.RawMessage(`{"profile":`+string(b)+`,"consent":`+string(cb)+`}`), "signup_verify")
}

// Claim asks for a claim link for the account holding a card number or an
// email address. The link goes to the email on file (an email identifier,
// else the contact email), never to an address the requester chooses, so a
// card number (and whatever else is printed on it) is not enough to take an
// account over. Nothing is sent for an unknown card or address, an account
// without an email on file, or one that is not active; the answer is the
// same. Errors: *validation.Error (card_number, email), ErrMailThrottled.
func (s *Service) Claim(ctx context.Context, r ClaimRequest) error {
	card, email := strings.TrimSpace(r.CardNumber), strings.TrimSpace(r.Email)
	if (card == "") == (email == "") {
		ve := &validation.Error{}
		ve.Add("card_number", "give either the card number or the email address on file (exactly one)")
		return ve
	}
	db := s.db.WithContext(ctx)
	var m Member
	var found bool
	key := ""
	if card != "" {
		ident, err := ParseIdentifier(string(IdentifierCard), card, 0)
		if err != nil {
			return unprefix(err, "value", "card_number")
		}
		key = "card:" + ident.Value
		id, err := memberIDByIdentifier(db, ident)
		switch {
		case err == nil:
			if m, err = loadMember(db, id); err != nil {
				return fmt.Errorf("claim: %w", err)
			}
			found = true
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("claim: %w", err)
		}
	} else {
		v, msg := normaliseEmail(email)
		if msg != "" {
			return validation.New("email", msg)
		}
		key = v
		var err error
		if m, found, err = s.memberByEmail(db, v); err != nil {
			return fmt.Errorf("claim: %w", err)
		}
	}
	if err := s.takeMail(ctx, m.ID, key); err != nil {
		return err
	}
	if !found || CanTransact(m) != nil {
		return nil
	}
	to := emailOnFile(m)
	if email != "" {
		to, _ = normaliseEmail(email) // on file: it found the member
	}
	if to == "" {
		return nil
	}
	return s.sendLink(ctx, LinkClaim, m, to, nil, "claim")
}

// RequestPasswordReset sends a reset link to email when it is on file for
// an active account, and nothing otherwise; the answer is the same.
// Errors: *validation.Error (email), ErrMailThrottled.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	v, msg := normaliseEmail(email)
	if msg != "" {
		return validation.New("email", msg)
	}
	m, found, err := s.memberByEmail(s.db.WithContext(ctx), v)
	if err != nil {
		return fmt.Errorf("password reset: %w", err)
	}
	if err := s.takeMail(ctx, m.ID, v); err != nil {
		return err
	}
	if !found || CanTransact(m) != nil {
		return nil
	}
	return s.sendLink(ctx, LinkReset, m, v, nil, "password_reset")
}

// takeMail counts one mail against the account's budget (the member when
// known, else the address or card asked about, so an unknown one is
// throttled exactly like a known one).
func (s *Service) takeMail(ctx context.Context, memberID int64, key string) error {
	if err := s.mails.Take(ctx, throttleKey(memberID, key)); err != nil {
		var lim *throttle.LimitedError
		if errors.As(err, &lim) {
			return fmt.Errorf("%w (%w)", ErrMailThrottled, lim)
		}
		return err
	}
	return nil
}

// sendLink makes a link and queues its mail in one transaction; earlier live
// links of the same purpose and account (or sign-up address) are revoked,
// so only the newest works.
func (s *Service) sendLink(ctx context.Context, purpose LinkPurpose, m Member, to string, signup json.RawMessage, template string) error {
	token, hash, err := newLinkToken()
	if err != nil {
		return err
	}
	now := s.clock()
	ttl := map[LinkPurpose]time.Duration{LinkSignup: SignupLinkTTL, LinkClaim: ClaimLinkTTL, LinkReset: ResetLinkTTL}[purpose]
	exp := now.Add(ttl)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var memberID *int64
		revoke := tx.Where("purpose = ? AND used_at IS NULL AND revoked_at IS NULL", string(purpose))
		if purpose == LinkSignup {
			revoke = revoke.Where("email = ?", to)
		} else {
			memberID = &m.ID
			revoke = revoke.Where("member_id = ?", m.ID)
		}
		if err := revoke.Table("member_links").Update("revoked_at", now).Error; err != nil {
			return err
		}
		var signupArg any
		if signup != nil {
			signupArg = string(signup)
		}
		if err := tx.Exec(`INSERT INTO member_links (purpose, token_hash, member_id, email, signup, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, string(purpose), hash, memberID, to, signupArg, now, exp).Error; err != nil {
			return err
		}
		_, err := mail.Queue(tx, mail.Message{To: to, Name: strings.TrimSpace(m.Profile.GivenName + " " + m.Profile.FamilyName),
			Locale: m.Profile.Locale, Template: template, Data: map[string]any{
				"name": m.Profile.GivenName, "token": token, "expires": exp.Format(linkTimeFormat),
				"card_last4": last4(m.CardNumber)}})
		return err
	})
	if err != nil {
		return fmt.Errorf("send %s link: %w", purpose, err)
	}
	return nil
}

// Link describes a link without using it (the page that asks for the new
// password). Errors: *validation.Error (token) for a link the hub never
// sent, ErrLinkUsed and ErrLinkExpired (blamed on token).
func (s *Service) Link(ctx context.Context, token string) (LinkInfo, error) {
	info, err := s.link(ctx, token)
	if err == nil && info.Purpose == LinkEmailChange {
		return LinkInfo{}, errEmailChangeLink
	}
	return info, err
}

// errEmailChangeLink: a change-of-email link given where a password is set.
var errEmailChangeLink = validation.New("token", "confirms an email address: open it from its mail")

func (s *Service) link(ctx context.Context, token string) (LinkInfo, error) {
	hash, err := linkHash(token)
	if err != nil {
		return LinkInfo{}, err
	}
	r, err := linkByHash(s.db.WithContext(ctx), hash, false)
	if err != nil {
		return LinkInfo{}, err
	}
	if err := s.usable(r); err != nil {
		return LinkInfo{}, err
	}
	return LinkInfo{Purpose: LinkPurpose(r.Purpose), Email: r.Email, ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// UseLink uses a link once: it sets password as the account's password,
// ends every session of the account, and revokes its other live links. A
// sign-up link makes the member (with a new card, the email as its sign-in
// identifier, and the consent given at sign-up) unless the address is on
// file by then, in which case that account is claimed. A claim or sign-up
// makes the email the account's sign-in identifier. Errors, none of which
// uses the link or changes anything: *validation.Error (token, password),
// ErrLinkUsed and ErrLinkExpired (blamed on token), ErrMemberInactive,
// ErrIdentifierTaken.
func (s *Service) UseLink(ctx context.Context, token, password string) (Redeemed, error) {
	ve := &validation.Error{}
	hash, err := linkHash(token)
	if err != nil {
		ve.Add("token", "is not a link this hub sent")
	}
	if msg := passwordRule(password); msg != "" {
		ve.Add("password", msg)
	}
	if err := ve.Err(); err != nil {
		return Redeemed{}, err
	}
	pw, err := bcrypt.GenerateFromPassword([]byte(password), s.passwordCost)
	if err != nil {
		return Redeemed{}, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		out, err := s.useLink(ctx, hash, pw)
		if errors.Is(err, errLostRace) {
			continue
		}
		if err != nil {
			return Redeemed{}, fmt.Errorf("use link: %w", err)
		}
		return out, nil
	}
	return Redeemed{}, fmt.Errorf("use link: %w", errLostRace)
}

func (s *Service) useLink(ctx context.Context, hash []byte, pw []byte) (Redeemed, error) {
	var out Redeemed
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Locks in one order, so that uses of links of one address or one
		// account wait for each other instead of deadlocking: the address
		// (an advisory lock), the account, then the link. A password change
		// takes the account first too.
		peek, err := linkByHash(tx, hash, false)
		if err != nil {
			return err
		}
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('member-link'), hashtext(?))`, peek.Email).Error; err != nil {
			return err
		}
		if peek.MemberID != nil {
			if _, err := getMemberRow(tx, *peek.MemberID, true); err != nil {
				return err
			}
		}
		r, err := linkByHash(tx, hash, true)
		if err != nil {
			return err
		}
		if LinkPurpose(r.Purpose) == LinkEmailChange {
			return errEmailChangeLink
		}
		if err := s.usable(r); err != nil {
			return err
		}
		now := s.clock()
		out = Redeemed{Purpose: LinkPurpose(r.Purpose), Email: r.Email}
		memberID := database.Deref(r.MemberID)
		if r.Purpose == string(LinkSignup) {
			m, found, err := s.memberByEmail(tx, r.Email)
			if err != nil {
				return err
			}
			if found {
				memberID = m.ID
			} else if memberID, err = createFromSignup(tx, r, now); err != nil {
				return err
			} else {
				out.Created = true
			}
		}
		row, err := getMemberRow(tx, memberID, true)
		if err != nil {
			return err
		}
		if Status(row.Status) != StatusActive {
			return fmt.Errorf("member %d is %s: %w", memberID, row.Status, ErrMemberInactive)
		}
		if err := tx.Exec(`UPDATE member_links SET used_at = ? WHERE id = ?`, now, r.ID).Error; err != nil {
			return err
		}
		// The address just proved is the sign-in identifier from now on.
		ident := Identifier{Type: IdentifierEmail, Value: r.Email}
		ok, err := insertIdentifier(tx, memberID, ident, false, now)
		if err != nil {
			return err
		}
		if !ok {
			holder, err := memberIDByIdentifier(tx, ident)
			if err != nil {
				return err
			}
			if holder != memberID {
				if out.Created {
					return errLostRace // a concurrent sign-up of this address made the member first
				}
				return ErrIdentifierTaken
			}
		}
		if err := tx.Exec(`INSERT INTO member_credentials (member_id, password_hash, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (member_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = EXCLUDED.updated_at`,
			memberID, string(pw), now).Error; err != nil {
			return err
		}
		if err := endSessions(tx, memberID, "", EndPasswordReset, now); err != nil {
			return err
		}
		if err := revokeLinks(tx, memberID, r.Email, now); err != nil {
			return err
		}
		if r.Purpose == string(LinkReset) {
			if err := s.notifyPasswordChanged(ctx, tx, memberID, now); err != nil {
				return err
			}
		}
		m, err := loadMember(tx, memberID)
		if err != nil {
			return err
		}
		out.MemberID, out.CardNumber = memberID, m.CardNumber
		return nil
	})
	return out, err
}

// createFromSignup makes the member a sign-up link asked for: its profile
// and consent, the email as identifier, a new card.
func createFromSignup(tx *gorm.DB, r linkRow, now time.Time) (int64, error) {
	var su struct {
		Profile Profile `json:"profile"`
		Consent Consent `json:"consent"`
	}
	if err := json.Unmarshal(r.Signup, &su); err != nil {
		return 0, fmt.Errorf("sign-up link %d: %w", r.ID, err)
	}
	id, err := insertMember(tx, su.Profile, Consent{}, 0, now)
	if err != nil {
		return 0, err
	}
	ok, err := insertIdentifier(tx, id, Identifier{Type: IdentifierEmail, Value: r.Email}, false, now)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errLostRace
	}
	if _, err := issueCard(tx, id, now); err != nil {
		return 0, err
	}
	if su.Consent.Marketing {
		if err := insertConsent(tx, id, true, orDefault(su.Consent.Source, "portal-signup"), "member:"+strconv.FormatInt(id, 10), now); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// usable refuses a used, revoked or expired link, blaming the token.
func (s *Service) usable(r linkRow) error {
	switch {
	case r.UsedAt != nil || r.RevokedAt != nil:
		return validation.Blame("token", "was used already or replaced by a newer link; ask for a new one", ErrLinkUsed)
	case !s.clock().Before(r.ExpiresAt):
		return validation.Blame("token", "has expired; ask for a new one", ErrLinkExpired)
	}
	return nil
}

// revokeLinks ends the live links of a member (and the sign-up links of its
// address): a password set one way makes every other way obsolete.
func revokeLinks(tx *gorm.DB, memberID int64, email string, now time.Time) error {
	return tx.Exec(`UPDATE member_links SET revoked_at = ? WHERE used_at IS NULL AND revoked_at IS NULL
		AND (member_id = ? OR (purpose = 'signup' AND email = ?))`, now, memberID, email).Error
}

// memberByEmail finds the member an address is on file for: the holder of
// the email identifier, else the oldest member (not merged) whose contact
// email it is. found is false when there is none.
func (s *Service) memberByEmail(db *gorm.DB, email string) (Member, bool, error) {
	id, err := memberIDByIdentifier(db, Identifier{Type: IdentifierEmail, Value: email})
	if errors.Is(err, ErrNotFound) {
		var ids []int64
		if err := db.Raw(`SELECT id FROM members WHERE email = ? AND status <> 'merged' ORDER BY id LIMIT 1`, email).
			Scan(&ids).Error; err != nil {
			return Member{}, false, err
		}
		if len(ids) == 0 {
			return Member{}, false, nil
		}
		id, err = ids[0], nil
	}
	if err != nil {
		return Member{}, false, err
	}
	m, err := loadMember(db, id)
	if err != nil {
		return Member{}, false, err
	}
	return m, true, nil
}

// emailOnFile is where a claim link for m goes: its first email identifier,
// else its contact email ("" when it has neither).
func emailOnFile(m Member) string {
	for _, id := range m.Identifiers {
		if id.Type == IdentifierEmail {
			return id.Value
		}
	}
	return m.Profile.Email
}

func last4(card string) string {
	if len(card) < 4 {
		return card
	}
	return card[len(card)-4:]
}

// newLinkToken draws a link's secret (32 random bytes, base64url) and its
// stored hash.
func newLinkToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(tok))
	return tok, h[:], nil
}

// linkHash checks a token's shape and returns its hash.
func linkHash(token string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 32 {
		return nil, validation.New("token", "is not a link this hub sent")
	}
	h := sha256.Sum256([]byte(token))
	return h[:], nil
}

type linkRow struct {
	ID        int64
	Purpose   string
	MemberID  *int64
	Email     string
	Signup    []byte
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
}

func linkByHash(tx *gorm.DB, hash []byte, lock bool) (linkRow, error) {
	q := `SELECT id, purpose, member_id, email, signup, expires_at, used_at, revoked_at FROM member_links WHERE token_hash = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []linkRow
	if err := tx.Raw(q, hash).Scan(&rows).Error; err != nil {
		return linkRow{}, err
	}
	if len(rows) == 0 {
		return linkRow{}, validation.New("token", "is not a link this hub sent")
	}
	return rows[0], nil
}

// commonPasswords are passwords long enough for the length rule that
// guessers try first. A short list, not a dictionary: it stops the obvious.
var commonPasswords = map[string]bool{
	"1234567890": true, "0123456789": true, "9876543210": true, "12345678910": true, "123456789a": true,
	"1q2w3e4r5t": true, "qwertyuiop": true, "qwerty1234": true, "qwerty12345": true, "asdfghjkl1": true,
	"password12": true, "password123": true, "password1234": true, "passw0rd123": true, "password!!": true,
	"iloveyou12": true, "letmein123": true, "welcome123": true, "football123": true, "abcdefghij": true,
	"abc1234567": true, "monkey1234": true, "sunshine12": true, "princess12": true, "dragon1234": true,
}

// passwordRule says what is wrong with a new password ("" when nothing):
// 10 to 72 characters (bcrypt reads no further), at least 4 different
// characters, and not one of the passwords guessers try first.
func passwordRule(pw string) string {
	if len(pw) < 10 || len(pw) > 72 {
		return "must be 10 to 72 characters"
	}
	distinct := map[rune]bool{}
	for _, r := range pw {
		distinct[r] = true
	}
	if len(distinct) < 4 || commonPasswords[strings.ToLower(pw)] {
		return "is too easy to guess; use a longer phrase"
	}
	return ""
}

// unprefix renames the fields of a validation error (profile.email →
// email), or one field to another when to is given.
func unprefix(err error, prefix string, to ...string) error {
	var ve *validation.Error
	if !errors.As(err, &ve) {
		return err
	}
	out := &validation.Error{}
	for _, f := range ve.Fields {
		name := strings.TrimPrefix(f.Field, prefix)
		if len(to) == 1 && f.Field == prefix {
			name = to[0]
		}
		out.Add(name, f.Message)
	}
	return out
}

// OpenSessions lists the member's sessions that are neither ended nor
// expired, newest first.
func (s *Service) OpenSessions(ctx context.Context, memberID int64) ([]Session, error) {
	all, err := s.Sessions(ctx, memberID)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	out := []Session{}
	for _, x := range all {
		if x.EndedAt == nil && now.Before(x.ExpiresAt) {
			out = append(out, x)
		}
	}
	return out, nil
}

// EndAllSessions signs the member out everywhere, the session asking
// included.
func (s *Service) EndAllSessions(ctx context.Context, memberID int64) error {
	if err := endSessions(s.db.WithContext(ctx), memberID, "", EndSignedOutEverywhere, s.clock()); err != nil {
		return fmt.Errorf("end sessions of member %d: %w", memberID, err)
	}
	return nil
}
