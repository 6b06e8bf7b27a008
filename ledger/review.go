package ledger

import (
	"context"
	"fmt"
	"time"
)

// HeldForReview is the available_at of the lots of an earn held for review
// (EarnBatchWith, ClaimedEarn.Held): pending, so not spendable, until
// Release gives them the dates the earn would have had.
var HeldForReview = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Release gives the lots of a held earn that are still held their real
// dates: available from availableAt (the earn's pending end, or now), and
// expiring at expiresAt (nil: no expiry of their own). It returns the
// number of lots released; releasing twice releases nothing more.
func (s *Service) Release(ctx context.Context, txID int64, availableAt time.Time, expiresAt *time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE ledger_lots SET available_at = ?, expires_at = ?
		WHERE transaction_id = ? AND available_at = ?`, availableAt.UTC().Truncate(time.Microsecond), truncPtr(expiresAt),
		txID, HeldForReview)
	if res.Error != nil {
		return 0, fmt.Errorf("release lots of transaction %d: %w", txID, res.Error)
	}
	return res.RowsAffected, nil
}

// EarnReversal is what one member earned at a partner and how much of it
// was reversed.
type EarnReversal struct {
	MemberID int64
	Earned   int64
	Reversed int64
}

// EarnReversals returns, per member with earns at the partner posted since
// a time, the points earned and the points their reversals took back (the
// earn-refund-keep check).
func (s *Service) EarnReversals(ctx context.Context, partnerID int64, since time.Time) ([]EarnReversal, error) {
	var out []EarnReversal
	err := s.db.WithContext(ctx).Raw(`SELECT e.member_id, sum(e.points) AS earned, coalesce(sum(r.points), 0) AS reversed
		FROM ledger_transactions e
		LEFT JOIN LATERAL (SELECT sum(points) AS points FROM ledger_transactions r WHERE r.reverses_id = e.id) r ON true
		WHERE e.partner_id = ? AND e.type = 'earn' AND e.posted_at >= ?
		GROUP BY e.member_id ORDER BY e.member_id`, partnerID, since).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("earn reversals at partner %d: %w", partnerID, err)
	}
	return out, nil
}
