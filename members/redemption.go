package members

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

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
	if !isDigits(pin) || len(pin) < 4 || len(pin) > 6 {
		return validation.New("pin", "must be 4 to 6 digits")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pin), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	return c.db.WithContext(ctx).Exec(`INSERT INTO member_pins (member_id, pin_hash, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (member_id) DO UPDATE SET pin_hash = EXCLUDED.pin_hash, updated_at = EXCLUDED.updated_at`,
		memberID, string(hash), c.now().UTC()).Error
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil && len(s) < 20
}

// Verify checks the member's consent for a burn at partnerID inside the
// burn's transaction tx: a redemption code is consumed there, so if the burn
// rolls back the code stays usable. A failure is recorded outside tx (it must
// count even though the burn rolls back) and, after MaxFailures within Window,
// every check fails with ErrConsentLocked until the window passes.
//
// The failure count and the code (or the PIN hash) are one statement; a PIN
// then costs a bcrypt compare at the cost its hash was made with.
func (c *BurnConsent) Verify(ctx context.Context, tx *gorm.DB, memberID, partnerID int64, code, pin string) error {
	if code == "" && pin == "" {
		return ErrConsentRequired
	}
	now := c.now().UTC()
	since := now.Add(-c.policy.Window)
	db := tx.WithContext(ctx)
	var row struct {
		Failures int64
		Used     int64
		PinHash  *string
	}
	var err error
	useCode := code != "" && isDigits(code) && len(code) == 6
	switch {
	case useCode:
		// The code is taken only while the member is not locked out.
		err = db.Raw(`WITH f AS (SELECT count(*) AS n FROM member_consent_failures WHERE member_id = ? AND failed_at > ?),
			u AS (UPDATE member_redemption_codes SET used_at = ?, used_by_partner_id = ?
			      WHERE member_id = ? AND code_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?
			        AND (SELECT n FROM f) < ? RETURNING 1)
			SELECT (SELECT n FROM f) AS failures, (SELECT count(*) FROM u) AS used`,
			memberID, since, now, partnerID, memberID, codeHash(memberID, code), now, c.policy.MaxFailures).Find(&row).Error
	case pin != "":
		err = db.Raw(`SELECT (SELECT count(*) FROM member_consent_failures WHERE member_id = ? AND failed_at > ?) AS failures,
			(SELECT pin_hash FROM member_pins WHERE member_id = ?) AS pin_hash`, memberID, since, memberID).Find(&row).Error
	default:
		err = db.Raw(`SELECT count(*) AS failures FROM member_consent_failures WHERE member_id = ? AND failed_at > ?`,
			memberID, since).Find(&row).Error
	}
	if err != nil {
		return err
	}
	if row.Failures >= int64(c.policy.MaxFailures) {
		return fmt.Errorf("member %d: %w", memberID, ErrConsentLocked)
	}
	ok := false
	switch {
	case useCode:
		ok = row.Used == 1
	case pin != "":
		ok = row.PinHash != nil && *row.PinHash != "" && bcrypt.CompareHashAndPassword([]byte(*row.PinHash), []byte(pin)) == nil
	}
	if ok {
		return nil
	}
	if err := c.db.WithContext(ctx).Exec(`INSERT INTO member_consent_failures (member_id, partner_id, failed_at) VALUES (?, ?, ?)`,
		memberID, partnerID, now).Error; err != nil {
		return err
	}
	return fmt.Errorf("member %d: %w", memberID, ErrConsentInvalid)
}
