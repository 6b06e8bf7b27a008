package members

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/database"
)

// Criteria select members by what the member base holds, for segments:
// only active members are ever selected; the zero value selects them all.
// EnrolledFrom is inclusive and EnrolledBefore exclusive, on the enrolment
// time; Consent, when set, is the current marketing consent.
type Criteria struct {
	EnrolledFrom   *time.Time
	EnrolledBefore *time.Time
	Consent        *bool
}

// compile turns c into the WHERE clause over members m and its arguments.
// It is the one place a segment's member-base conditions become SQL.
func (c Criteria) compile() (string, []any) {
	where := []string{"m.status = 'active'"}
	var args []any
	if c.EnrolledFrom != nil {
		where, args = append(where, "m.created_at >= ?"), append(args, *c.EnrolledFrom)
	}
	if c.EnrolledBefore != nil {
		where, args = append(where, "m.created_at < ?"), append(args, *c.EnrolledBefore)
	}
	if c.Consent != nil {
		where, args = append(where, "m.marketing_consent = ?"), append(args, *c.Consent)
	}
	return strings.Join(where, " AND "), args
}

// Select returns up to limit ids of the members c selects with an id above
// after, in id order: a segment is paged through in batches this way.
func (s *Service) Select(ctx context.Context, c Criteria, after int64, limit int) ([]int64, error) {
	where, args := c.compile()
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT m.id FROM members m WHERE `+where+` AND m.id > ? ORDER BY m.id LIMIT ?`,
		append(args, after, limit)...).Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("select members: %w", err)
	}
	return ids, nil
}

// Count returns how many members c selects.
func (s *Service) Count(ctx context.Context, c Criteria) (int64, error) {
	where, args := c.compile()
	var n int64
	if err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM members m WHERE `+where, args...).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count members: %w", err)
	}
	return n, nil
}

// Page returns up to limit members with an id above after, in id order,
// whatever their status (exports of the whole base).
func (s *Service) Page(ctx context.Context, after int64, limit int) ([]Member, error) {
	var rows []memberRow
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT `+memberColumns+` FROM members WHERE id > ? ORDER BY id LIMIT ?`, after, limit).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("page members: %w", err)
	}
	return withIdentifiers(db, rows)
}

// Many returns the members of ids in that order; ids that name no member are
// left out.
func (s *Service) Many(ctx context.Context, ids []int64) ([]Member, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []memberRow
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT `+memberColumns+` FROM members WHERE id = ANY(CAST(? AS bigint[])) ORDER BY id`,
		database.Int64Array(ids)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	return withIdentifiers(db, rows)
}

// CountAll returns how many member records there are, whatever their status.
func (s *Service) CountAll(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM members`).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count members: %w", err)
	}
	return n, nil
}
