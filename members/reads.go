package members

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"gorm.io/gorm"
)

// The reads below answer other packages' questions about members, so that
// no other package reads the members' tables.

// KnownTo reports whether the member enrolled through the partner or holds
// one of its references (a frequent-flyer number).
func (s *Service) KnownTo(ctx context.Context, memberID, partnerID int64) (bool, error) {
	var ok bool
	err := s.db.WithContext(ctx).Raw(`SELECT
		EXISTS (SELECT 1 FROM members WHERE id = ? AND source_partner_id = ?)
		OR EXISTS (SELECT 1 FROM member_identifiers WHERE member_id = ? AND partner_id = ?)`,
		memberID, partnerID, memberID, partnerID).Scan(&ok).Error
	return ok, err
}

// IDRange is the lowest and highest member id; ok is false when there are
// no members.
func (s *Service) IDRange(ctx context.Context) (first, last int64, ok bool, err error) {
	var ids struct{ First, Last *int64 }
	if err := s.db.WithContext(ctx).Raw(`SELECT min(id) AS first, max(id) AS last FROM members`).Scan(&ids).Error; err != nil {
		return 0, 0, false, fmt.Errorf("member ids: %w", err)
	}
	if ids.First == nil || ids.Last == nil {
		return 0, 0, false, nil
	}
	return *ids.First, *ids.Last, true, nil
}

// Missing returns those of ids that name no member (the audit of other
// packages' references to members, which runs without a Service).
func Missing(ctx context.Context, db *gorm.DB, ids []int64) ([]int64, error) {
	var out []int64
	err := db.WithContext(ctx).Raw(`SELECT id FROM unnest(CAST(? AS bigint[])) AS i(id)
		WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = i.id) ORDER BY id`, database.Int64Array(ids)).Scan(&out).Error
	return out, err
}

// BirthdayMember is an active member born on a given day of the year.
type BirthdayMember struct {
	ID        int64
	BirthDate time.Time
}

// BornOn returns up to limit active members after id after whose birth date
// falls in month on one of days, in id order.
func (s *Service) BornOn(ctx context.Context, month time.Month, days []int, after int64, limit int) ([]BirthdayMember, error) {
	var rows []BirthdayMember
	err := s.db.WithContext(ctx).Raw(`SELECT m.id, m.birth_date FROM members m
		WHERE m.status = 'active' AND m.birth_date IS NOT NULL AND m.id > ?
		AND extract(month FROM m.birth_date) = ? AND extract(day FROM m.birth_date) IN ?
		ORDER BY m.id LIMIT ?`, after, int(month), days, limit).Scan(&rows).Error
	return rows, err
}

// Counts are how many members are active and how many are not merged away.
type Counts struct{ Active, Members int64 }

// Totals counts the members.
func (s *Service) Totals(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.WithContext(ctx).Raw(`SELECT count(*) FILTER (WHERE status = 'active') AS active,
		count(*) FILTER (WHERE status <> 'merged') AS members FROM members`).Scan(&c).Error
	return c, err
}

// TransactingCheck is the statement that reads whether each of ids may
// transact, for a caller to send in its own pipeline (database.Pipeline)
// beside statements of its own, in one round trip. Once the pipeline has
// run, Result holds each id that may not, with its error (ErrNotFound,
// ErrMemberInactive).
type TransactingCheck struct {
	Stmt   database.Stmt
	found  map[int64]bool
	errs   map[int64]error
	ids    []int64
	closed bool
}

// CheckTransacting builds the TransactingCheck of ids.
func CheckTransacting(ids []int64) *TransactingCheck {
	c := &TransactingCheck{found: make(map[int64]bool, len(ids)), errs: map[int64]error{}, ids: ids}
	// One member (every single earn and burn alone) is compared with "=",
	// not "= ANY(array)": PostgreSQL cannot know an array parameter's
	// length when it weighs its generic plan, so with ANY it planned the
	// statement afresh on most executions (~0.15 ms each).
	match, arg := "id = ANY($1::bigint[])", any(ids)
	if len(ids) == 1 {
		match, arg = "id = $1::bigint", ids[0]
	}
	c.Stmt = database.Stmt{Name: "members", SQL: `SELECT id, status, merged_into_id FROM members WHERE ` + match,
		Args: []any{arg}, Scan: func(row database.Row) error {
			var id int64
			var status string
			var merged sql.NullInt64
			if err := row.Scan(&id, &status, &merged); err != nil {
				return err
			}
			c.found[id] = true
			if err := CanTransact(Member{ID: id, Status: Status(status), MergedIntoID: merged.Int64}); err != nil {
				c.errs[id] = err
			}
			return nil
		}}
	return c
}

// Result returns, once the statement has run, each member that may not
// transact with its error.
func (c *TransactingCheck) Result() map[int64]error {
	if !c.closed {
		c.closed = true
		for _, id := range c.ids {
			if !c.found[id] {
				c.errs[id] = fmt.Errorf("get member %d: %w", id, ErrNotFound)
			}
		}
	}
	return c.errs
}

// EmailMember is a member with its email address.
type EmailMember struct {
	ID    int64
	Email string
}

// WithEmailDomain returns up to limit members whose email address is at
// domain (and, when status is not empty, whose status it is), in id order:
// the demo seed finds its own members this way.
func (s *Service) WithEmailDomain(ctx context.Context, domain string, status Status, limit int) ([]EmailMember, error) {
	var rows []EmailMember
	err := s.db.WithContext(ctx).Raw(`SELECT m.id, i.value AS email FROM members m
		JOIN member_identifiers i ON i.member_id = m.id AND i.type = 'email'
		WHERE i.value LIKE ? AND (? = '' OR m.status = ?) ORDER BY m.id LIMIT ?`,
		"%@"+likeEscape(strings.ToLower(domain)), string(status), string(status), limit).Scan(&rows).Error
	return rows, err
}
