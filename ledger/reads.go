package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"gorm.io/gorm"
)

// Reads other packages make of the ledger: each answers one question with
// one statement, so no other package needs SQL of its own over the ledger's
// tables. Like every Service method, they run in the caller's transaction
// when called through In or Joined.

// ExpiringGroup is the points of a member's lots that expire on one UTC day.
type ExpiringGroup struct {
	MemberID  int64
	ExpiresOn time.Time // the UTC day
	ExpiresAt time.Time // the earliest expiry that day
	Points    int64
}

// ExpiringLots returns, in (member, day) order after (afterMember,
// afterDay), up to limit groups of member lots with points left that expire
// in (from, until], one per member and UTC day of expiry.
func (s *Service) ExpiringLots(ctx context.Context, from, until time.Time, afterMember int64, afterDay time.Time,
	limit int) ([]ExpiringGroup, error) {
	var rows []ExpiringGroup
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM (
		SELECT a.owner_id AS member_id, (l.expires_at AT TIME ZONE 'UTC')::date AS expires_on,
			min(l.expires_at) AS expires_at, sum(l.remaining)::bigint AS points
		FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id AND a.kind = 'member'
		WHERE l.remaining > 0 AND l.expires_at > ? AND l.expires_at <= ?
		GROUP BY 1, 2) g
		WHERE (g.member_id, g.expires_on) > (?, ?::date) ORDER BY 1, 2 LIMIT ?`,
		from, until, afterMember, afterDay.UTC().Format(time.DateOnly), limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("expiring lots: %w", err)
	}
	return rows, nil
}

// IssuerPoints is a number of points issued by one partner.
type IssuerPoints struct {
	IssuerPartnerID int64
	Points          int64
}

// ExpiringByIssuer sums, per issuing partner, the points of a member's lots
// that expire after from on the UTC day day. Operator-funded points (no
// issuer) are left out.
func (s *Service) ExpiringByIssuer(ctx context.Context, memberID int64, from, day time.Time) ([]IssuerPoints, error) {
	var rows []IssuerPoints
	if err := s.db.WithContext(ctx).Raw(`SELECT l.issuer_partner_id, sum(l.remaining)::bigint AS points FROM ledger_lots l
		JOIN ledger_accounts a ON a.id = l.account_id AND a.kind = 'member' AND a.owner_id = ?
		WHERE l.remaining > 0 AND l.issuer_partner_id IS NOT NULL AND l.expires_at > ?
		AND (l.expires_at AT TIME ZONE 'UTC')::date = ?::date GROUP BY 1 ORDER BY 1`,
		memberID, from, day.UTC().Format(time.DateOnly)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("expiring points of member %d: %w", memberID, err)
	}
	return rows, nil
}

// Activity is a member with points and the time of its last activity: its
// last earn, burn or capture or, for a member who never had one, the first
// transaction on its account.
type Activity struct {
	MemberID int64
	Balance  int64
	Last     time.Time
}

// lastActivity is Activity for every member account with points.
const lastActivity = `SELECT a.owner_id AS member_id, a.balance, coalesce(
	(SELECT max(t.posted_at) FROM ledger_transactions t WHERE t.member_id = a.owner_id AND t.type IN ('earn', 'burn', 'capture')),
	(SELECT min(e.posted_at) FROM ledger_entries e WHERE e.account_id = a.id)) AS last
	FROM ledger_accounts a WHERE a.kind = 'member' AND a.balance > 0`

// LastActivity returns, in member order after afterMember, up to limit
// members with points whose last activity lies in (from, until]; a zero
// from means no lower bound.
func (s *Service) LastActivity(ctx context.Context, afterMember int64, from, until time.Time, limit int) ([]Activity, error) {
	q, args := `SELECT * FROM (`+lastActivity+`) x WHERE member_id > ? AND last <= ?`, []any{afterMember, until}
	if !from.IsZero() {
		q, args = q+` AND last > ?`, append(args, from)
	}
	var rows []Activity
	if err := s.db.WithContext(ctx).Raw(q+` ORDER BY member_id LIMIT ?`, append(args, limit)...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("last activity: %w", err)
	}
	return rows, nil
}

// LastActivityOf returns a member's Activity, ok false when the member has
// no points.
func (s *Service) LastActivityOf(ctx context.Context, memberID int64) (a Activity, ok bool, err error) {
	var rows []Activity
	if err := s.db.WithContext(ctx).Raw(`SELECT * FROM (`+lastActivity+`) x WHERE member_id = ?`, memberID).
		Scan(&rows).Error; err != nil {
		return Activity{}, false, fmt.Errorf("last activity of member %d: %w", memberID, err)
	}
	if len(rows) == 0 {
		return Activity{}, false, nil
	}
	return rows[0], true, nil
}

// LockMember locks a member's account row until the caller's transaction
// ends (call it through In) and returns the points its active holds reserve;
// ok is false when the member has no account.
func (s *Service) LockMember(ctx context.Context, memberID int64) (held Points, ok bool, err error) {
	var rows []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT held FROM ledger_accounts WHERE kind = 'member' AND owner_id = ? FOR UPDATE`,
		memberID).Scan(&rows).Error; err != nil {
		return 0, false, fmt.Errorf("lock member %d: %w", memberID, err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	return Points(rows[0]), true, nil
}

// ReversedShare returns the points of transaction orig and the points its
// reversals other than except took back.
func (s *Service) ReversedShare(ctx context.Context, orig, except int64) (total, reversed int64, err error) {
	err = s.db.WithContext(ctx).Raw(`SELECT o.points AS total, coalesce((SELECT sum(points) FROM ledger_transactions r
		WHERE r.reverses_id = o.id AND r.id <> ?), 0) AS before FROM ledger_transactions o WHERE o.id = ?`,
		except, orig).Row().Scan(&total, &reversed)
	if err != nil {
		return 0, 0, fmt.Errorf("reversals of %d: %w", orig, err)
	}
	return total, reversed, nil
}

// AvailableAt returns when the last of the lots a transaction created
// becomes spendable, or nil when it created none.
func (s *Service) AvailableAt(ctx context.Context, txID int64) (*time.Time, error) {
	var at *time.Time
	if err := s.db.WithContext(ctx).Raw(`SELECT max(available_at) FROM ledger_lots WHERE transaction_id = ?`, txID).
		Row().Scan(&at); err != nil {
		return nil, fmt.Errorf("lots of transaction %d: %w", txID, err)
	}
	return at, nil
}

// Transacted reports whether a member has any transaction at a partner.
func (s *Service) Transacted(ctx context.Context, memberID, partnerID int64) (bool, error) {
	var ok bool
	if err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE member_id = ? AND partner_id = ?)`,
		memberID, partnerID).Row().Scan(&ok); err != nil {
		return false, fmt.Errorf("transactions of member %d at partner %d: %w", memberID, partnerID, err)
	}
	return ok, nil
}

// EarnedSince sums, per member of memberIDs, the points earned at a partner
// since a time (earns only: reversals are not netted). Members without earns
// are absent.
func (s *Service) EarnedSince(ctx context.Context, partnerID int64, memberIDs []int64, since time.Time) (map[int64]int64, error) {
	var rows []struct {
		MemberID int64
		Points   int64
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT member_id, COALESCE(sum(points), 0) AS points FROM ledger_transactions
		WHERE type = 'earn' AND partner_id = ? AND member_id = ANY(CAST(? AS bigint[])) AND posted_at >= ?
		GROUP BY member_id`, partnerID, database.Int64Array(memberIDs), since).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("earned at partner %d: %w", partnerID, err)
	}
	out := make(map[int64]int64, len(memberIDs))
	for _, r := range rows {
		out[r.MemberID] = r.Points
	}
	return out, nil
}

// PartnerPoints is a number of points of one partner.
type PartnerPoints struct {
	PartnerID int64
	Points    int64
}

// MonthPoints are the points issued (earns) and redeemed (burns and
// captures) in one UTC month.
type MonthPoints struct {
	Month    time.Time
	Issued   int64
	Redeemed int64
}

// Overview is the programme-wide figures of the operator's dashboard.
type Overview struct {
	Outstanding   int64 // points held by members
	BreakageTotal int64 // points ever moved to breakage
	BreakageSince int64 // of which since the overview's since
	// Issued and Redeemed are per partner, since since, in partner order.
	Issued, Redeemed []PartnerPoints
	// Months are the UTC months from trendFrom that had any issue or
	// redemption, in order.
	Months []MonthPoints
}

// Overview sums the dashboard figures: points outstanding, breakage in all
// and since since, points issued and redeemed per partner since since, and
// per UTC month from trendFrom.
func (s *Service) Overview(ctx context.Context, since, trendFrom time.Time) (Overview, error) {
	var o Overview
	q := s.staleDB().WithContext(ctx)
	if err := q.Raw(`SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE kind = 'member'`).
		Row().Scan(&o.Outstanding); err != nil {
		return Overview{}, fmt.Errorf("outstanding points: %w", err)
	}
	if err := q.Raw(`SELECT coalesce(sum(e.amount), 0), coalesce(sum(e.amount) FILTER (WHERE e.posted_at >= ?), 0)
		FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id WHERE a.kind = 'operator_breakage'`, since).
		Row().Scan(&o.BreakageTotal, &o.BreakageSince); err != nil {
		return Overview{}, fmt.Errorf("breakage: %w", err)
	}
	for _, s := range []struct {
		typ string
		dst *[]PartnerPoints
	}{{"earn", &o.Issued}, {"redeem", &o.Redeemed}} {
		if err := q.Raw(`SELECT partner_id, sum(points) AS points FROM ledger_transactions
			WHERE (type = ? OR (? = 'redeem' AND type IN ('burn', 'capture'))) AND partner_id IS NOT NULL AND posted_at >= ?
			GROUP BY partner_id ORDER BY partner_id`, s.typ, s.typ, since).Scan(s.dst).Error; err != nil {
			return Overview{}, fmt.Errorf("points per partner: %w", err)
		}
	}
	if err := q.Raw(`SELECT date_trunc('month', posted_at AT TIME ZONE 'UTC') AS month,
			coalesce(sum(points) FILTER (WHERE type = 'earn'), 0) AS issued,
			coalesce(sum(points) FILTER (WHERE type IN ('burn', 'capture')), 0) AS redeemed
		FROM ledger_transactions WHERE posted_at >= ? GROUP BY 1 ORDER BY 1`, trendFrom).Scan(&o.Months).Error; err != nil {
		return Overview{}, fmt.Errorf("points per month: %w", err)
	}
	return o, nil
}

// MissingTransactions returns those of ids that name no ledger transaction,
// in ascending order: other packages' audits check their references into the
// ledger with it.
func MissingTransactions(ctx context.Context, db *gorm.DB, ids []int64) ([]int64, error) {
	var missing []int64
	if err := db.WithContext(ctx).Raw(`SELECT DISTINCT r.id FROM unnest(CAST(? AS bigint[])) r (id)
		WHERE NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = r.id) ORDER BY 1`, database.Int64Array(ids)).
		Scan(&missing).Error; err != nil {
		return nil, fmt.Errorf("missing transactions: %w", err)
	}
	return missing, nil
}
