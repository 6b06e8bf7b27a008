package members

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// Sign-in errors.
var (
	// ErrInvalidLogin: unknown email, wrong password, no password set, or an
	// account that cannot sign in. One error for all, so nothing can be probed.
	ErrInvalidLogin = errors.New("invalid email or password")
	// ErrLoginLocked: too many failed sign-ins; try again later.
	ErrLoginLocked = errors.New("too many failed sign-ins")
)

// Principal is the member behind a portal or app request.
type Principal struct {
	MemberID int64
}

// Sign-in lockout: this many failures in a row lock sign-in for LoginLockout.
const (
	LoginMaxFailures = 5
	LoginLockout     = 15 * time.Minute
)

// SetPassword sets the member's portal password (10 to 72 characters,
// stored as a bcrypt hash) and clears any lockout.
func (s *Service) SetPassword(ctx context.Context, memberID int64, password string) error {
	if len(password) < 10 || len(password) > 72 {
		return validation.New("password", "must be 10 to 72 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if _, err := s.Get(ctx, memberID); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Exec(`INSERT INTO member_credentials (member_id, password_hash, updated_at)
		VALUES (?, ?, ?) ON CONFLICT (member_id) DO UPDATE
		SET password_hash = EXCLUDED.password_hash, updated_at = EXCLUDED.updated_at, failed_logins = 0, locked_until = NULL`,
		memberID, string(hash), s.clock()).Error
}

// Authenticate checks an email and password and returns the member. The
// email is looked up as an identifier; only active members sign in.
// ErrInvalidLogin for any mismatch, ErrLoginLocked while locked.
func (s *Service) Authenticate(ctx context.Context, email, password string) (Member, error) {
	ident, err := ParseIdentifier(string(IdentifierEmail), email, 0)
	if err != nil {
		return Member{}, ErrInvalidLogin
	}
	m, err := s.Lookup(ctx, ident)
	if errors.Is(err, ErrNotFound) {
		// Spend the time a real check would, so timing reveals nothing.
		_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z1ubE9Xjs7ZpUKVN8HgA5D1K"), []byte(password))
		return Member{}, ErrInvalidLogin
	}
	if err != nil {
		return Member{}, err
	}
	now := s.clock()
	var cred struct {
		PasswordHash string
		FailedLogins int
		LockedUntil  *time.Time
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT password_hash, failed_logins, locked_until FROM member_credentials WHERE member_id = ?`,
		m.ID).Scan(&cred).Error; err != nil {
		return Member{}, err
	}
	if cred.LockedUntil != nil && cred.LockedUntil.After(now) {
		return Member{}, fmt.Errorf("member %d: %w", m.ID, ErrLoginLocked)
	}
	if cred.PasswordHash == "" || bcrypt.CompareHashAndPassword([]byte(cred.PasswordHash), []byte(password)) != nil {
		if cred.PasswordHash != "" {
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				return tx.Exec(`UPDATE member_credentials SET failed_logins = failed_logins + 1,
					locked_until = CASE WHEN failed_logins + 1 >= ? THEN ?::timestamptz ELSE locked_until END
					WHERE member_id = ?`, LoginMaxFailures, now.Add(LoginLockout), m.ID).Error
			})
			if err != nil {
				return Member{}, err
			}
		}
		return Member{}, ErrInvalidLogin
	}
	if err := CanTransact(m); err != nil {
		return Member{}, ErrInvalidLogin
	}
	if err := s.db.WithContext(ctx).Exec(`UPDATE member_credentials SET failed_logins = 0, locked_until = NULL WHERE member_id = ?`,
		m.ID).Error; err != nil {
		return Member{}, err
	}
	return m, nil
}
