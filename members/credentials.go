package members

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/internal/validation"
)

// Sign-in errors.
var (
	// ErrInvalidLogin: unknown email, wrong password, no password set, or an
	// account that cannot sign in. One error for all, so nothing can be probed.
	ErrInvalidLogin = errors.New("invalid email or password")
	// ErrLoginLocked: too many failed sign-ins on the account; the error also
	// wraps a *throttle.LimitedError saying how long to wait.
	ErrLoginLocked = errors.New("too many failed sign-ins")
	// ErrSessionEnded: the session behind a member token was signed out,
	// ended by a password change, suspension, closure or merge, or expired.
	ErrSessionEnded = errors.New("session ended")
)

// Principal is the member behind a portal or app request and the session
// it came with.
type Principal struct {
	MemberID  int64
	SessionID string
}

// throttleKey names the account a sign-in attempt is counted against: the
// member when the email belongs to one (so several email identifiers share
// one budget), the address otherwise (so an unknown address is throttled
// exactly like a known one and throttling reveals nothing).
func throttleKey(memberID int64, email string) string {
	if memberID > 0 {
		return "id:" + strconv.FormatInt(memberID, 10)
	}
	return "email:" + email
}

// SetPassword sets the member's portal password (passwordRule: 10 to 72
// characters and not easy to guess; stored as a bcrypt hash) and ends every session of the member: it is the
// operator's reset, so nobody signed in before it stays signed in.
func (s *Service) SetPassword(ctx context.Context, memberID int64, password string) error {
	return s.setPassword(ctx, memberID, password, "")
}

func (s *Service) setPassword(ctx context.Context, memberID int64, password, keepSession string) error {
	if msg := passwordRule(password); msg != "" {
		return validation.New("password", msg)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.passwordCost)
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The account's lock first, as a link's use takes it (no deadlock).
		if _, err := getMemberRow(tx, memberID, true); err != nil {
			return err
		}
		now := s.clock()
		if err := tx.Exec(`INSERT INTO member_credentials (member_id, password_hash, updated_at)
			VALUES (?, ?, ?) ON CONFLICT (member_id) DO UPDATE
			SET password_hash = EXCLUDED.password_hash, updated_at = EXCLUDED.updated_at`,
			memberID, string(hash), now).Error; err != nil {
			return err
		}
		if err := endSessions(tx, memberID, keepSession, EndPasswordChanged, now); err != nil {
			return err
		}
		// A password set here makes emailed reset and claim links obsolete.
		if err := tx.Exec(`UPDATE member_links SET revoked_at = ? WHERE member_id = ? AND used_at IS NULL AND revoked_at IS NULL`,
			now, memberID).Error; err != nil {
			return err
		}
		return s.notifyPasswordChanged(ctx, tx, memberID, now)
	})
	if err != nil {
		return fmt.Errorf("set password of member %d: %w", memberID, err)
	}
	return nil
}

// SignIn checks an email and password and starts a session. The email is
// looked up as an identifier; only active members sign in. Every attempt
// counts against the account's sign-in throttle before the password is
// checked, and a successful one is given back, so concurrent guesses cannot
// exceed the budget. Errors: ErrInvalidLogin for any mismatch, ErrLoginLocked
// (wrapping a *throttle.LimitedError) past the budget.
func (s *Service) SignIn(ctx context.Context, email, password string, info SessionInfo) (Member, Session, error) {
	ident, err := ParseIdentifier(string(IdentifierEmail), email, 0)
	if err != nil {
		return Member{}, Session{}, ErrInvalidLogin
	}
	m, err := s.Lookup(ctx, ident)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Member{}, Session{}, err
	}
	key := throttleKey(m.ID, ident.Value)
	if err := s.checkPassword(ctx, key, m.ID, password); err != nil {
		return Member{}, Session{}, err
	}
	if err := CanTransact(m); err != nil {
		return Member{}, Session{}, ErrInvalidLogin
	}
	sess, err := s.StartSession(ctx, m.ID, info)
	if err != nil {
		return Member{}, Session{}, err
	}
	if err := s.logins.Refund(ctx, key); err != nil {
		return Member{}, Session{}, err
	}
	return m, sess, nil
}

// checkPassword takes an attempt from key's budget and compares password
// with the member's hash (memberID 0: an unknown account, compared with a
// dummy so the answer takes as long). The attempt is not given back here.
func (s *Service) checkPassword(ctx context.Context, key string, memberID int64, password string) error {
	if err := s.logins.Take(ctx, key); err != nil {
		var lim *throttle.LimitedError
		if errors.As(err, &lim) {
			return fmt.Errorf("%w (%w)", ErrLoginLocked, lim)
		}
		return err
	}
	hash := ""
	if memberID > 0 {
		var rows []string
		if err := s.db.WithContext(ctx).Raw(`SELECT password_hash FROM member_credentials WHERE member_id = ?`,
			memberID).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 1 {
			hash = rows[0]
		}
	}
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return ErrInvalidLogin
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return ErrInvalidLogin
	}
	return nil
}

// ChangePassword is the member's own change: current must be the password
// in force (a wrong one counts against the sign-in throttle like a failed
// sign-in: ErrInvalidLogin, ErrLoginLocked), next becomes it, and every
// other session of the member ends; keepSession, the one the change was
// made from, stays signed in.
func (s *Service) ChangePassword(ctx context.Context, memberID int64, current, next, keepSession string) error {
	if msg := passwordRule(next); msg != "" {
		return validation.New("new_password", msg)
	}
	key := throttleKey(memberID, "")
	if err := s.checkPassword(ctx, key, memberID, current); err != nil {
		return fmt.Errorf("change password of member %d: %w", memberID, err)
	}
	if err := s.setPassword(ctx, memberID, next, keepSession); err != nil {
		return err
	}
	return s.logins.Refund(ctx, key)
}

// notifyPasswordChanged queues the security notice of a new password, in
// the transaction that set it.
func (s *Service) notifyPasswordChanged(ctx context.Context, tx *gorm.DB, memberID int64, now time.Time) error {
	_, err := s.Notify(ctx, tx, memberID, Notice{Kind: NoticeSecurity, Template: "password_changed",
		Data: map[string]any{"when": now.Format(linkTimeFormat)}})
	return err
}
