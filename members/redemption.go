package members

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/validation"
)

// Burn consent errors.
var (
	// ErrConsentRequired: a burn came without a redemption code or PIN.
	ErrConsentRequired = errors.New("member consent required: a redemption code or PIN")
	// ErrConsentInvalid: the code is wrong, expired or already used, or the PIN is wrong.
	ErrConsentInvalid = errors.New("redemption code or PIN is not valid")
	// ErrConsentLocked: too many failed attempts; consent checks are refused for a while.
	ErrConsentLocked = errors.New("too many failed redemption attempts")
)

// LockedError is ErrConsentLocked with the time left until the lock ends:
// until enough of the failures leave the policy's window.
type LockedError struct{ Wait time.Duration }

func (e *LockedError) Error() string { return ErrConsentLocked.Error() }
func (e *LockedError) Unwrap() error { return ErrConsentLocked }

// RetryAfter is how long to wait before a check can pass.
func (e *LockedError) RetryAfter() time.Duration { return e.Wait }

// ConsentPolicy bounds redemption codes and failed attempts.
type ConsentPolicy struct {
	CodeTTL     time.Duration // how long a code is valid (5 minutes)
	MaxFailures int           // failures within Window before locking (5)
	Window      time.Duration // the counting window and lock length (15 minutes)
}

// DefaultConsentPolicy is what the partner API documents.
var DefaultConsentPolicy = ConsentPolicy{CodeTTL: 5 * time.Minute, MaxFailures: 5, Window: 15 * time.Minute}

// BurnConsent checks and issues the member's consent to spend points at a
// partner's till: one-time codes from the portal, or a PIN.
type BurnConsent struct {
	db     *gorm.DB
	now    func() time.Time
	policy ConsentPolicy
}

// NewBurnConsent builds the consent checker.
func NewBurnConsent(db *gorm.DB, now func() time.Time, policy ConsentPolicy) *BurnConsent {
	return &BurnConsent{db: db, now: now, policy: policy}
}

// RedemptionCode is a freshly issued code, shown to the member once.
type RedemptionCode struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

func codeHash(memberID int64, code string) []byte {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(memberID))
	h.Write(b[:])
	h.Write([]byte(code))
	return h.Sum(nil)
}

// IssueCode creates a 6-digit single-use code for the member and revokes
// the member's earlier live codes, so only the newest works.
func (c *BurnConsent) IssueCode(ctx context.Context, memberID int64) (RedemptionCode, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return RedemptionCode{}, err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := c.now().UTC()
	exp := now.Add(c.policy.CodeTTL)
	err = c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var status string
		if err := tx.Raw(`SELECT status FROM members WHERE id = ?`, memberID).Scan(&status).Error; err != nil {
			return err
		}
		if status == "" {
			return fmt.Errorf("member %d: %w", memberID, ErrNotFound)
		}
		if status != string(StatusActive) {
			return fmt.Errorf("member %d is %s: %w", memberID, status, ErrMemberInactive)
		}
		if err := tx.Exec(`UPDATE member_redemption_codes SET revoked_at = ? WHERE member_id = ? AND used_at IS NULL AND revoked_at IS NULL`,
			now, memberID).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO member_redemption_codes (member_id, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			memberID, codeHash(memberID, code), now, exp).Error
	})
	if err != nil {
		return RedemptionCode{}, fmt.Errorf("issue redemption code: %w", err)
	}
	return RedemptionCode{Code: code, ExpiresAt: exp}, nil
}

// SetPIN sets the member's PIN (4 to 6 digits), stored as a bcrypt hash.
func (c *BurnConsent) SetPIN(ctx context.Context, memberID int64, pin string) error {
	if !validPIN(pin) {
		return validation.New("pin", pinRule)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pin), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	return c.db.WithContext(ctx).Exec(`INSERT INTO member_pins (member_id, pin_hash, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (member_id) DO UPDATE SET pin_hash = EXCLUDED.pin_hash, updated_at = EXCLUDED.updated_at`,
		memberID, string(hash), c.now().UTC()).Error
}

// PINSetAt is when the member last set a PIN (nil: no PIN yet).
func (c *BurnConsent) PINSetAt(ctx context.Context, memberID int64) (*time.Time, error) {
	var at []time.Time
	if err := c.db.WithContext(ctx).Raw(`SELECT updated_at FROM member_pins WHERE member_id = ?`, memberID).Scan(&at).Error; err != nil {
		return nil, fmt.Errorf("PIN of member %d: %w", memberID, err)
	}
	if len(at) == 0 {
		return nil, nil
	}
	t := at[0].UTC()
	return &t, nil
}

const (
	codeRule = "must be the 6 digits of a redemption code"
	pinRule  = "must be 4 to 6 digits"
)

func validCode(code string) bool { return len(code) == 6 && isDigits(code) }
func validPIN(pin string) bool   { return len(pin) >= 4 && len(pin) <= 6 && isDigits(pin) }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CheckConsentFormat adds to v a redemption code that is not 6 digits or a
// PIN that is not 4 to 6 digits (empty ones are left to the caller: either
// may be absent). Such a value cannot be anyone's code or PIN, so it is
// refused as bad input before any check and never counts as a failure.
func CheckConsentFormat(v *validation.Error, code, pin string) {
	if code != "" {
		v.Check(validCode(code), "redemption_code", codeRule)
	}
	if pin != "" {
		v.Check(validPIN(pin), "pin", pinRule)
	}
}

// consentLockSQL takes the member's consent lock: a transaction-scoped
// advisory lock, so that the consent checks of one member run one at a time
// across all hub processes and each sees the failures of those before it.
// Member ids beyond the int4 range share a lock with another id, which only
// serialises the two.
const consentLockSQL = `SELECT 1 FROM pg_advisory_xact_lock(hashtext('member-consent'), $1)`

// The failure count and the code (or the PIN hash) are one statement, sent
// in the round trip that takes the lock (and begins the transaction); its
// snapshot is taken once the lock is held.
const (
	verifyCodeSQL = `WITH f AS (SELECT count(*) AS n FROM member_consent_failures WHERE member_id = $1 AND failed_at > $2),
	u AS (UPDATE member_redemption_codes SET used_at = $3, used_by_partner_id = $4
	      WHERE member_id = $1 AND code_hash = $5 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3
	        AND (SELECT n FROM f) < $6 RETURNING 1)
	SELECT (SELECT n FROM f), (SELECT count(*) FROM u)`
	verifyPINSQL = `SELECT (SELECT count(*) FROM member_consent_failures WHERE member_id = $1 AND failed_at > $2),
	(SELECT pin_hash FROM member_pins WHERE member_id = $1)`
)

// lockEndSQL is the failure whose leaving the window ends the lock: the
// MaxFailures-th most recent one.
const lockEndSQL = `SELECT failed_at FROM member_consent_failures WHERE member_id = ? AND failed_at > ?
	ORDER BY failed_at DESC OFFSET ? LIMIT 1`

// locked is the lock's error with the time left until it ends (the whole
// window when that cannot be read).
func (c *BurnConsent) locked(db *gorm.DB, memberID int64, since, now time.Time) error {
	var at []time.Time
	wait := c.policy.Window
	if err := db.Raw(lockEndSQL, memberID, since, c.policy.MaxFailures-1).Scan(&at).Error; err == nil && len(at) == 1 {
		wait = at[0].Add(c.policy.Window).Sub(now)
	}
	return &LockedError{Wait: max(wait, time.Second)}
}

// Verify checks the member's consent to a burn at partnerID. It runs in the
// burn's transaction tx and must be its first statement:
//
//   - It takes the member's consent lock, held until tx ends, so concurrent
//     checks of one member are counted one after the other, whatever their
//     number: the check after the MaxFailures-th failure within Window sees
//     it and answers a *LockedError (ErrConsentLocked) saying how long
//     the lock still lasts.
//   - A right code is consumed in tx (if the burn rolls back, the code stays
//     usable); a right PIN passes (a bcrypt compare at the cost its hash was
//     made with). The redemption code is used when both are given.
//   - A wrong, expired, used or superseded code, or a wrong (or unset) PIN,
//     is written to tx as a failure and answers ErrConsentInvalid. The
//     caller commits tx so that the failure counts, writing nothing else in
//     it. The failure needs no second connection, and the lock is released
//     only once it is committed.
//
// A malformed code or PIN is a *validation.Error (CheckConsentFormat), no
// code and no PIN ErrConsentRequired; neither touches the database.
func (c *BurnConsent) Verify(ctx context.Context, tx *gorm.DB, memberID, partnerID int64, code, pin string) error {
	if code == "" && pin == "" {
		return ErrConsentRequired
	}
	var v validation.Error
	CheckConsentFormat(&v, code, pin)
	if err := v.Err(); err != nil {
		return err
	}
	now := c.now().UTC()
	since := now.Add(-c.policy.Window)
	db := tx.WithContext(ctx)
	var locked int
	var failures, used int64
	var pinHash *string
	then := &database.Follow{SQL: verifyPINSQL, Args: []any{memberID, since}, Dest: []any{&failures, &pinHash}}
	if code != "" {
		then = &database.Follow{SQL: verifyCodeSQL, Args: []any{memberID, since, now, partnerID, codeHash(memberID, code), c.policy.MaxFailures},
			Dest: []any{&failures, &used}}
	}
	if err := database.QueryRowThen(db, consentLockSQL, []any{int32(memberID)}, []any{&locked}, then); err != nil {
		return fmt.Errorf("consent of member %d: %w", memberID, err)
	}
	if failures >= int64(c.policy.MaxFailures) {
		return fmt.Errorf("member %d: %w", memberID, c.locked(db, memberID, since, now))
	}
	if code != "" && used == 1 {
		return nil
	}
	if code == "" && pinHash != nil && *pinHash != "" && bcrypt.CompareHashAndPassword([]byte(*pinHash), []byte(pin)) == nil {
		return nil
	}
	if err := db.Exec(`INSERT INTO member_consent_failures (member_id, partner_id, failed_at) VALUES (?, ?, ?)`,
		memberID, partnerID, now).Error; err != nil {
		return fmt.Errorf("record a consent failure of member %d: %w", memberID, err)
	}
	return fmt.Errorf("member %d: %w", memberID, ErrConsentInvalid)
}
