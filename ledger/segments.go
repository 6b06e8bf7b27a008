package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/database"
)

// MemberCriteria select members by what the ledger knows of them, for
// segments. Every set field must hold; the zero value selects every member.
//
//   - MinBalance, MaxBalance bound the member's total balance (pending points
//     included; a member without an account has 0).
//   - ActiveSince: an earn, burn or capture posted at or after it.
//     InactiveSince: none posted at or after it (never active counts).
//   - UsedPartners: for each list, a transaction at one of its partners (as
//     issuer of an earn or redeemer of a burn). UnusedPartners: none at any.
type MemberCriteria struct {
	MinBalance, MaxBalance     *Points
	ActiveSince, InactiveSince *time.Time
	UsedPartners               [][]int64
	UnusedPartners             []int64
}

// Empty reports whether c selects every member.
func (c MemberCriteria) Empty() bool {
	return c.MinBalance == nil && c.MaxBalance == nil && c.ActiveSince == nil && c.InactiveSince == nil &&
		len(c.UsedPartners) == 0 && len(c.UnusedPartners) == 0
}

// activity is the transactions that count as a member's activity.
const activity = `t.member_id = m.id AND t.type IN ('earn', 'burn', 'capture') AND t.posted_at >= ?`

// compile turns c into the WHERE clause over the candidate members m (and
// their account a) with its arguments: the one place a segment's ledger
// conditions become SQL.
func (c MemberCriteria) compile() (string, []any) {
	where := []string{"true"}
	var args []any
	if c.MinBalance != nil {
		where, args = append(where, "coalesce(a.balance, 0) >= ?"), append(args, int64(*c.MinBalance))
	}
	if c.MaxBalance != nil {
		where, args = append(where, "coalesce(a.balance, 0) <= ?"), append(args, int64(*c.MaxBalance))
	}
	if c.ActiveSince != nil {
		where, args = append(where, "EXISTS (SELECT 1 FROM ledger_transactions t WHERE "+activity+")"), append(args, *c.ActiveSince)
	}
	if c.InactiveSince != nil {
		where, args = append(where, "NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE "+activity+")"), append(args, *c.InactiveSince)
	}
	for _, ps := range c.UsedPartners {
		where = append(where, `EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.member_id = m.id
			AND t.partner_id = ANY(CAST(? AS bigint[])))`)
		args = append(args, database.Int64Array(ps))
	}
	if len(c.UnusedPartners) > 0 {
		where = append(where, `NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.member_id = m.id
			AND t.partner_id = ANY(CAST(? AS bigint[])))`)
		args = append(args, database.Int64Array(c.UnusedPartners))
	}
	return strings.Join(where, " AND "), args
}

// SelectMembers returns the members of ids that c selects, in id order. A
// segment pages through the member base in batches and asks this of each.
func (s *Service) SelectMembers(ctx context.Context, ids []int64, c MemberCriteria) ([]int64, error) {
	if len(ids) == 0 || c.Empty() {
		return ids, nil
	}
	where, args := c.compile()
	var out []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT m.id FROM unnest(CAST(? AS bigint[])) AS m(id)
		LEFT JOIN ledger_accounts a ON a.kind = 'member' AND a.owner_id = m.id
		WHERE `+where+` ORDER BY m.id`, append([]any{database.Int64Array(ids)}, args...)...).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("select members by ledger criteria: %w", err)
	}
	return out, nil
}

// Balances returns the total balance of each member of ids that has an
// account (members without one are absent: their balance is 0).
func (s *Service) Balances(ctx context.Context, ids []int64) (map[int64]Points, error) {
	var rows []struct {
		OwnerID int64
		Balance int64
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT owner_id, balance FROM ledger_accounts
		WHERE kind = 'member' AND owner_id = ANY(CAST(? AS bigint[]))`, database.Int64Array(ids)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("balances of %d members: %w", len(ids), err)
	}
	out := make(map[int64]Points, len(rows))
	for _, r := range rows {
		out[r.OwnerID] = Points(r.Balance)
	}
	return out, nil
}

// TransactionCount returns how many transactions were posted in [from, to)
// (zero bounds: unbounded), for the progress of an export.
func (s *Service) TransactionCount(ctx context.Context, from, to time.Time) (int64, error) {
	q, args := `SELECT count(*) FROM ledger_transactions WHERE true`, []any{}
	if !from.IsZero() {
		q, args = q+` AND posted_at >= ?`, append(args, from)
	}
	if !to.IsZero() {
		q, args = q+` AND posted_at < ?`, append(args, to)
	}
	var n int64
	if err := s.db.WithContext(ctx).Raw(q, args...).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count transactions: %w", err)
	}
	return n, nil
}
