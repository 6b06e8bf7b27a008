package members

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// The register of data-subject requests (data_subject_requests): every
// export, erasure, consent change and access request, with its due date
// (DSRDeadline after the request), its status and who handled it. Exports,
// erasures and consent changes are answered at once and recorded done; an
// access request stays open until an export answers it or the operator
// closes it; a withdrawal of marketing consent schedules the member's
// erasure when the operator's programme says so (WithErasureSchedule), and
// the erasure job (TypeEraseDue) runs it through EraseAccount. An erasure
// that is refused (points on hold) stays open as refused, with the reason,
// and is tried again by the next run.

// ErrRequestNotFound: no such entry in the register.
var ErrRequestNotFound = errors.New("data-subject request not found")

// ErasureSchedule says how many days after consent is withdrawn the member
// is erased; ok false means never.
type ErasureSchedule func(ctx context.Context) (days int, ok bool, err error)

// WithErasureSchedule plugs the operator's erasure schedule (the programme
// policy) into the member base.
func WithErasureSchedule(f ErasureSchedule) Option { return func(s *Service) { s.erasureAfter = f } }

// recordConsent records a consent change in the register and, for a
// withdrawal, schedules the erasure; a grant cancels a scheduled erasure
// that has not run.
func (s *Service) recordConsent(ctx context.Context, tx *gorm.DB, memberID int64, granted bool, actor string, now time.Time) error {
	note := "marketing consent withdrawn"
	if granted {
		note = "marketing consent granted"
	}
	if err := insertDSRNote(tx, memberID, DSRConsent, actor, note, now); err != nil {
		return fmt.Errorf("record consent request: %w", err)
	}
	if granted {
		return tx.Exec(`UPDATE data_subject_requests SET status = 'cancelled', completed_at = ?, updated_at = ?,
			note = 'consent granted again before the scheduled erasure' WHERE member_id = ? AND kind = 'erasure'
			AND status IN ('open', 'refused') AND erase_at IS NOT NULL`, now, now, memberID).Error
	}
	if s.erasureAfter == nil {
		return nil
	}
	days, ok, err := s.erasureAfter(ctx)
	if err != nil || !ok {
		return err
	}
	return tx.Exec(`INSERT INTO data_subject_requests (member_id, kind, actor, requested_at, due_at, status, note,
			erase_at, updated_at)
		VALUES (?, 'erasure', ?, ?, ?, 'open', ?, ?, ?)
		ON CONFLICT (member_id) WHERE kind = 'erasure' AND status <> 'cancelled' DO NOTHING`,
		memberID, actor, now, now.Add(DSRDeadline), fmt.Sprintf("consent withdrawn: erasure scheduled after %d days", days),
		now.AddDate(0, 0, days), now).Error
}

// RecordAccessRequest records a member's request to see the data held
// about them (open until an export answers it or the operator closes it).
func (s *Service) RecordAccessRequest(ctx context.Context, memberID int64, actor, note string) (DataSubjectRequest, error) {
	var v validation.Error
	v.Check(actor != "" && len(actor) <= 200, "actor", "is required (at most 200 characters)")
	v.Check(len(note) <= 500, "note", "is longer than 500 characters")
	if err := v.Err(); err != nil {
		return DataSubjectRequest{}, err
	}
	if _, err := s.Get(ctx, memberID); err != nil {
		return DataSubjectRequest{}, err
	}
	now := s.clock()
	var r dsrRow
	err := s.db.WithContext(ctx).Raw(`INSERT INTO data_subject_requests (member_id, kind, actor, requested_at, due_at,
			status, note, updated_at) VALUES (?, 'access', ?, ?, ?, 'open', ?, ?) RETURNING `+dsrCols,
		memberID, actor, now, now.Add(DSRDeadline), strings.TrimSpace(note), now).Scan(&r).Error
	if err != nil {
		return DataSubjectRequest{}, fmt.Errorf("record access request of member %d: %w", memberID, err)
	}
	return toDSR(r), nil
}

// RequestFilter selects register entries: Due lists the open and refused
// ones by due date (overdue first); otherwise every entry, newest first.
// Offset skips that many entries; Limit is at most 200 (default 50).
type RequestFilter struct {
	Due      bool
	MemberID int64
	Offset   int
	Limit    int
}

// Requests lists the register.
func (s *Service) Requests(ctx context.Context, f RequestFilter) ([]DataSubjectRequest, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Table("data_subject_requests").Select(dsrCols)
	if f.MemberID > 0 {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.Due {
		q = q.Where("status IN ('open', 'refused')").Order("due_at, id")
	} else {
		q = q.Order("id DESC")
	}
	var rows []dsrRow
	if err := q.Offset(f.Offset).Limit(f.Limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list data-subject requests: %w", err)
	}
	out := make([]DataSubjectRequest, len(rows))
	for i, r := range rows {
		out[i] = toDSR(r)
	}
	return out, nil
}

// Request returns one entry. Errors: ErrRequestNotFound.
func (s *Service) Request(ctx context.Context, id int64) (DataSubjectRequest, error) {
	var rows []dsrRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+dsrCols+` FROM data_subject_requests WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return DataSubjectRequest{}, err
	}
	if len(rows) == 0 {
		return DataSubjectRequest{}, fmt.Errorf("request %d: %w", id, ErrRequestNotFound)
	}
	return toDSR(rows[0]), nil
}

// UpdateRequest records the operator's handling of an entry: its status
// (open, done, refused or cancelled) and a note. Closing an erasure by hand
// does not erase: run the erasure (EraseAccount) for that.
func (s *Service) UpdateRequest(ctx context.Context, id int64, status DSRStatus, note, actor string) (DataSubjectRequest, error) {
	var v validation.Error
	v.Check(status == DSROpen || status == DSRDone || status == DSRRefused || status == DSRCancelled, "status",
		"must be open, done, refused or cancelled")
	v.Check(len(note) <= 500, "note", "is longer than 500 characters")
	v.Check(actor != "" && len(actor) <= 200, "actor", "is required (at most 200 characters)")
	v.Check(status != DSRRefused || strings.TrimSpace(note) != "", "note", "is required to refuse: say why")
	if err := v.Err(); err != nil {
		return DataSubjectRequest{}, err
	}
	now := s.clock()
	var completed *time.Time
	if status == DSRDone || status == DSRCancelled {
		completed = &now
	}
	res := s.db.WithContext(ctx).Exec(`UPDATE data_subject_requests SET status = ?, note = ?, handled_by = ?,
		completed_at = ?, updated_at = ? WHERE id = ?`, string(status), strings.TrimSpace(note), actor, completed, now, id)
	if res.Error != nil {
		return DataSubjectRequest{}, fmt.Errorf("update request %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return DataSubjectRequest{}, fmt.Errorf("request %d: %w", id, ErrRequestNotFound)
	}
	return s.Request(ctx, id)
}

// ErasureActor is who the erasure job acts as in the register.
const ErasureActor = "system:erasure-schedule"

// EraseDue runs the scheduled erasures whose time has come, through
// EraseAccount (the account is closed, its points forfeited, the personal
// data pseudonymised). One that is refused stays in the register as
// refused with the reason and is tried again by the next run. It returns
// how many were erased and refused.
func (s *Service) EraseDue(ctx context.Context) (erased, refused int, err error) {
	var due []dsrRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+dsrCols+` FROM data_subject_requests WHERE kind = 'erasure'
		AND status IN ('open', 'refused') AND erase_at <= ? ORDER BY erase_at, id LIMIT 500`, s.clock()).Scan(&due).Error; err != nil {
		return 0, 0, fmt.Errorf("due erasures: %w", err)
	}
	for _, r := range due {
		_, eerr := s.EraseAccount(ctx, r.MemberID, "marketing consent withdrawn: scheduled erasure", ErasureActor)
		if eerr == nil {
			erased++
			continue
		}
		var ve *validation.Error
		if !errors.Is(eerr, ErrErasureBlocked) && !errors.Is(eerr, ErrNotClosed) && !errors.As(eerr, &ve) {
			return erased, refused, eerr
		}
		refused++
		note := eerr.Error()
		if len(note) > 500 {
			note = note[:500]
		}
		now := s.clock()
		if err := s.db.WithContext(ctx).Exec(`UPDATE data_subject_requests SET status = 'refused', note = ?, handled_by = ?,
			updated_at = ? WHERE id = ?`, note, ErasureActor, now, r.ID).Error; err != nil {
			return erased, refused, err
		}
	}
	return erased, refused, nil
}

// TypeEraseDue runs the scheduled erasures (EraseDue). Never renamed.
const TypeEraseDue = "members:erase_due"

// HandleEraseDue handles TypeEraseDue. Idempotent: an erased member's entry
// is done and not run again.
func HandleEraseDue(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		_, _, err := s.EraseDue(ctx)
		return err
	}
}
