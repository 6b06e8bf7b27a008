package access

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/members"
)

// A staff session is one sign-in of a staff account (console cookie or admin
// API token). staff_sessions owns them; a staff token names its row in the
// sid claim and is honoured only while the row is open, unexpired and the
// account active.

// SessionInfo describes the client a session was started from; staff and
// member sessions record the same.
type SessionInfo = members.SessionInfo

// Why staff sessions end.
const (
	EndStaffSignedOut = "signed_out"
	EndStaffDisabled  = "disabled"
)

// lastSeenEvery bounds how often a session's last_seen_at is written: at
// most once a minute per session, so checking a session stays a read.
const lastSeenEvery = time.Minute

type staffSessionRow struct {
	ID        string
	StaffID   int64
	CreatedAt time.Time
	ExpiresAt time.Time
}

func startStaffSession(tx *gorm.DB, staffID int64, expiresAt time.Time, info SessionInfo, now time.Time) (staffSessionRow, error) {
	now = now.UTC().Truncate(time.Microsecond)
	r := staffSessionRow{ID: randomToken(16), StaffID: staffID, CreatedAt: now, ExpiresAt: expiresAt.UTC().Truncate(time.Microsecond)}
	err := tx.Exec(`INSERT INTO staff_sessions (id, staff_id, created_at, last_seen_at, expires_at, user_agent, ip)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, staffID, r.CreatedAt, r.CreatedAt, r.ExpiresAt,
		validation.Clip(info.UserAgent, 256), validation.Clip(info.IP, 45)).Error
	return r, err
}

// staffOfSession is a session joined to its account.
type staffOfSession struct {
	ID         string
	StaffID    int64
	LastSeenAt time.Time
	ExpiresAt  time.Time
	EndedAt    *time.Time
	Email      string
	Role       string
	Status     string
}

// staffSession returns the account behind session id of staff staffID, or
// ErrInvalidToken when the session is unknown, ended or expired or the
// account is not active. One primary-key read, plus a last_seen_at write at
// most once a minute per session.
func (s *Service) staffSession(ctx context.Context, staffID int64, id string) (staffOfSession, error) {
	db := s.db.WithContext(ctx)
	var rows []staffOfSession
	if err := db.Raw(`SELECT s.id, s.staff_id, s.last_seen_at, s.expires_at, s.ended_at, u.email, u.role, u.status
		FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_id WHERE s.id = ?`, id).Scan(&rows).Error; err != nil {
		return staffOfSession{}, err
	}
	now := s.now()
	switch {
	case len(rows) == 0 || rows[0].StaffID != staffID:
		return staffOfSession{}, fmt.Errorf("%w: unknown session", ErrInvalidToken)
	case rows[0].EndedAt != nil:
		return staffOfSession{}, fmt.Errorf("%w: session ended", ErrInvalidToken)
	case !now.Before(rows[0].ExpiresAt):
		return staffOfSession{}, fmt.Errorf("%w: session expired", ErrInvalidToken)
	case rows[0].Status != "active":
		return staffOfSession{}, fmt.Errorf("%w: staff account disabled", ErrInvalidToken)
	}
	if now.Sub(rows[0].LastSeenAt) >= lastSeenEvery {
		if err := db.Exec(`UPDATE staff_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`,
			now, id, now).Error; err != nil {
			return staffOfSession{}, err
		}
	}
	return rows[0], nil
}

// EndStaffSession signs the session of p out; its token is refused from the
// next request on, in every process. Ending an ended session changes nothing.
func (s *Service) EndStaffSession(ctx context.Context, p StaffPrincipal) error {
	err := s.db.WithContext(ctx).Exec(`UPDATE staff_sessions SET ended_at = ?, end_reason = ?
		WHERE id = ? AND staff_id = ? AND ended_at IS NULL`, s.now(), EndStaffSignedOut, p.SessionID, p.StaffID).Error
	if err != nil {
		return fmt.Errorf("end session of staff %d: %w", p.StaffID, err)
	}
	return nil
}

// endStaffSessions ends every open session of a staff account, in tx.
func endStaffSessions(tx *gorm.DB, staffID int64, why string, now time.Time) error {
	return tx.Exec(`UPDATE staff_sessions SET ended_at = ?, end_reason = ? WHERE staff_id = ? AND ended_at IS NULL`,
		now, why, staffID).Error
}

// staffSessionRetention is how long ended and expired staff sessions are
// kept before partners:prune_staff_sessions deletes them.
const staffSessionRetention = 24 * time.Hour

// TypePruneStaffSessions deletes staff sessions ended or expired more than a
// day ago. Never renamed.
const TypePruneStaffSessions = "partners:prune_staff_sessions"

// HandlePruneStaffSessions handles TypePruneStaffSessions. Idempotent.
func HandlePruneStaffSessions(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		cutoff := s.now().Add(-staffSessionRetention)
		if err := s.db.WithContext(ctx).Exec(`DELETE FROM staff_sessions WHERE expires_at < ? OR ended_at < ?`,
			cutoff, cutoff).Error; err != nil {
			return fmt.Errorf("prune staff sessions: %w", err)
		}
		return nil
	}
}
