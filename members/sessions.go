package members

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/validation"
)

// SessionTTL is how long a member session (and the token that names it)
// lives.
const SessionTTL = time.Hour

// lastSeenEvery bounds how often a session's last_seen_at is written: at
// most once a minute per session, so checking a session stays a read.
const lastSeenEvery = time.Minute

// EndReason says why a session ended.
type EndReason string

// Why sessions end.
const (
	EndSignedOut       EndReason = "signed_out"
	EndPasswordChanged EndReason = "password_changed"
	EndSuspended       EndReason = "suspended"
	EndClosed          EndReason = "closed"
	EndMerged          EndReason = "merged"
	// EndPasswordReset: a password set through an emailed link ends every session.
	EndPasswordReset EndReason = "password_reset"
	// EndSignedOutEverywhere: the member's "sign out everywhere".
	EndSignedOutEverywhere EndReason = "signed_out_everywhere"
)

// SessionInfo describes the client a session was started from.
type SessionInfo struct {
	UserAgent string
	IP        string
}

// Session is one signed-in member session: the portal cookie or an app's
// token names it by its id (the token's sid claim).
type Session struct {
	ID         string     `json:"-"`
	MemberID   int64      `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	EndReason  EndReason  `json:"end_reason,omitempty"`
	UserAgent  string     `json:"user_agent"`
	IP         string     `json:"ip"`
}

type sessionRow struct {
	ID         string
	MemberID   int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	EndedAt    *time.Time
	EndReason  *string
	UserAgent  string
	IP         string
}

const sessionColumns = `id, member_id, created_at, last_seen_at, expires_at, ended_at, end_reason, user_agent, ip`

func (r sessionRow) session() Session {
	return Session{ID: r.ID, MemberID: r.MemberID, CreatedAt: r.CreatedAt.UTC(), LastSeenAt: r.LastSeenAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(), EndedAt: utcPtr(r.EndedAt), EndReason: EndReason(database.Deref(r.EndReason)),
		UserAgent: r.UserAgent, IP: r.IP}
}

// StartSession opens a session for a member whose identity the caller has
// established: SignIn does after the password; another sign-in method (a
// one-time code) would too. The session lives SessionTTL.
func (s *Service) StartSession(ctx context.Context, memberID int64, info SessionInfo) (Session, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	now := s.clock()
	r := sessionRow{ID: base64.RawURLEncoding.EncodeToString(b), MemberID: memberID, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(SessionTTL), UserAgent: validation.Clip(info.UserAgent, 256), IP: validation.Clip(info.IP, 45)}
	if err := s.db.WithContext(ctx).Exec(`INSERT INTO member_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
		r.ID, r.MemberID, r.CreatedAt, r.LastSeenAt, r.ExpiresAt, r.UserAgent, r.IP).Error; err != nil {
		return Session{}, fmt.Errorf("start session of member %d: %w", memberID, err)
	}
	return r.session(), nil
}

// CheckSession answers whether session id of member memberID may still be
// used: nil while it is neither ended nor expired, ErrSessionEnded otherwise.
// It is one primary-key read (plus, at most once a minute per session, a
// write of last_seen_at), so it runs on every authenticated request and an
// ending takes effect at once in every process.
func (s *Service) CheckSession(ctx context.Context, memberID int64, id string) error {
	db := s.db.WithContext(ctx)
	var rows []sessionRow
	if err := db.Raw(`SELECT `+sessionColumns+` FROM member_sessions WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return fmt.Errorf("check session of member %d: %w", memberID, err)
	}
	now := s.clock()
	if len(rows) == 0 || rows[0].MemberID != memberID || rows[0].EndedAt != nil || !now.Before(rows[0].ExpiresAt) {
		return fmt.Errorf("member %d: %w", memberID, ErrSessionEnded)
	}
	if now.Sub(rows[0].LastSeenAt) >= lastSeenEvery {
		if err := db.Exec(`UPDATE member_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`,
			now, id, now).Error; err != nil {
			return fmt.Errorf("check session of member %d: %w", memberID, err)
		}
	}
	return nil
}

// EndSession signs a session out. Ending an ended (or unknown) session
// changes nothing.
func (s *Service) EndSession(ctx context.Context, memberID int64, id string) error {
	err := s.db.WithContext(ctx).Exec(`UPDATE member_sessions SET ended_at = ?, end_reason = ?
		WHERE id = ? AND member_id = ? AND ended_at IS NULL`, s.clock(), string(EndSignedOut), id, memberID).Error
	if err != nil {
		return fmt.Errorf("end session of member %d: %w", memberID, err)
	}
	return nil
}

// Sessions lists the member's sessions, newest first: those still open and
// those ended or expired within the last day (older ones are pruned).
func (s *Service) Sessions(ctx context.Context, memberID int64) ([]Session, error) {
	rows, err := sessionRows(s.db.WithContext(ctx), []int64{memberID})
	if err != nil {
		return nil, fmt.Errorf("sessions of member %d: %w", memberID, err)
	}
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = r.session()
	}
	return out, nil
}

func sessionRows(tx *gorm.DB, memberIDs []int64) ([]sessionRow, error) {
	var rows []sessionRow
	err := tx.Raw(`SELECT `+sessionColumns+` FROM member_sessions WHERE member_id IN ? ORDER BY created_at DESC, id`,
		memberIDs).Scan(&rows).Error
	return rows, err
}

// endSessions ends every open session of the member but keep (when not
// empty), in tx: the caller's change and the sign-out commit together.
func endSessions(tx *gorm.DB, memberID int64, keep string, why EndReason, now time.Time) error {
	return tx.Exec(`UPDATE member_sessions SET ended_at = ?, end_reason = ?
		WHERE member_id = ? AND ended_at IS NULL AND id <> ?`, now, string(why), memberID, keep).Error
}

// sessionRetention is how long ended and expired sessions are kept (for a
// member's list of recent sessions) before members:prune_sessions deletes
// them.
const sessionRetention = 24 * time.Hour

// TypePruneSessions deletes sessions ended or expired more than a day ago.
// Never renamed.
const TypePruneSessions = "members:prune_sessions"

// HandlePruneSessions handles TypePruneSessions. Idempotent: a second run
// finds nothing more to delete.
func HandlePruneSessions(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		cutoff := s.clock().Add(-sessionRetention)
		if err := s.db.WithContext(ctx).Exec(`DELETE FROM member_sessions WHERE expires_at < ? OR ended_at < ?`,
			cutoff, cutoff).Error; err != nil {
			return fmt.Errorf("prune member sessions: %w", err)
		}
		return nil
	}
}
