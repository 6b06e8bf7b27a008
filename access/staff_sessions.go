package access

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

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

// staffSession returns the account behind session id of staff staffID, or
// ErrInvalidToken when the session is unknown, ended or expired or the
// account is not active. One primary-key read, plus a last_seen_at write at
// most once a minute per session.
func (s *Service) staffSession(ctx context.Context, staffID int64, id string) (staffOfSession, error) {
	db := s.db.WithContext(ctx)
	rows, err := selectStaffSession(db, id)
	if err != nil {
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
		if err := touchStaffSession(db, id, now); err != nil {
			return staffOfSession{}, err
		}
	}
	return rows[0], nil
}

// EndStaffSession signs the session of p out; its token is refused from the
// next request on, in every process. Ending an ended session changes nothing.
func (s *Service) EndStaffSession(ctx context.Context, p StaffPrincipal) error {
	if err := endStaffSession(s.db.WithContext(ctx), p.StaffID, p.SessionID, EndStaffSignedOut, s.now()); err != nil {
		return fmt.Errorf("end session of staff %d: %w", p.StaffID, err)
	}
	return nil
}

// staffSessionRetention is how long ended and expired staff sessions are
// kept before partners:prune_staff_sessions deletes them.
const staffSessionRetention = 24 * time.Hour

// TypePruneStaffSessions deletes staff sessions ended or expired more than a
// day ago. Never renamed (its prefix names the package that first held it).
const TypePruneStaffSessions = "partners:prune_staff_sessions"

// HandlePruneStaffSessions handles TypePruneStaffSessions. Idempotent.
func HandlePruneStaffSessions(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		cutoff := s.now().Add(-staffSessionRetention)
		if err := pruneStaffSessions(s.db.WithContext(ctx), cutoff); err != nil {
			return fmt.Errorf("prune staff sessions: %w", err)
		}
		return nil
	}
}
