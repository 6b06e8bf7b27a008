package programme

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Running totals of qualifying credits (programme_member_windows): one row
// per member, UTC calendar month of occurred_at, partner and lane (1 for
// earns, 0 for reversals; readers sum them), changed in the
// same statement that inserts a qualifying credit. An earn decides whether
// the member may move up from these rows (at most 13 months of them) instead
// of summing every credit of its window; programme_qualifying_credits stays
// the source of truth, read when a tier really changes, by the yearly review
// and by SyncWindows.

// monthOf returns the first instant of t's UTC calendar month.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// totalsFrom returns the first month whose running totals an earn at at
// reads: the month in which the tier window (outside the review) starts.
// Whole months cover the window and possibly a little before it (a rolling
// window starts mid-month), never less: see CreditEarns.
func totalsFrom(w TierWindow, at time.Time) time.Time {
	from, _ := Window(w, at, false)
	return monthOf(from)
}

// keepFrom returns the first month SyncWindows keeps at at: every month a
// window can reach, and the oldest an earn may still be dated (14 months).
func keepFrom(at time.Time) time.Time { return monthOf(at).AddDate(0, -14, 0) }

// credit is one qualifying credit row (an earn's, or a reversal's negative one).
type credit struct {
	MemberID, TransactionID, PartnerID int64
	ReversesID                         *int64
	OccurredAt, PostedAt               time.Time
	Points, Spend, Nights, Stays       int64
	Flights                            int64
}

func (c credit) args() map[string]any {
	return map[string]any{"member": c.MemberID, "tx": c.TransactionID, "reverses": c.ReversesID, "partner": c.PartnerID,
		"occurred": c.OccurredAt, "posted": c.PostedAt, "month": monthOf(c.OccurredAt), "points": c.Points,
		"spend": c.Spend, "nights": c.Nights, "stays": c.Stays, "flights": c.Flights}
}

// insertCredit inserts the credit (nothing when its transaction has one
// already) and adds it to its month's running totals.
const insertCredit = `credit AS (
	INSERT INTO programme_qualifying_credits (member_id, transaction_id, reverses_id, partner_id, occurred_at,
		qualifying_points, spend_minor, nights, stays, flights, posted_at)
	VALUES (CAST(@member AS bigint), @tx, @reverses, CAST(@partner AS bigint), @occurred, @points, @spend, @nights, @stays, @flights, @posted)
	ON CONFLICT (transaction_id) DO NOTHING
	RETURNING member_id, transaction_id, CAST(@month AS date) AS month
)` + creditBucket

// creditBucket adds the credit (when one was inserted) to the running
// totals of its month (the credit CTE's month) and partner.
const creditBucket = `, bucket AS (
	INSERT INTO programme_member_windows AS w (member_id, month, partner_id, qualifying_points, spend_minor,
		nights, stays, flights)
	SELECT member_id, month, CAST(@partner AS bigint), @points, @spend, @nights, @stays, @flights FROM credit
	ON CONFLICT (member_id, month, partner_id, lane) DO UPDATE SET
		qualifying_points = w.qualifying_points + EXCLUDED.qualifying_points,
		spend_minor = w.spend_minor + EXCLUDED.spend_minor, nights = w.nights + EXCLUDED.nights,
		stays = w.stays + EXCLUDED.stays, flights = w.flights + EXCLUDED.flights
	RETURNING month, partner_id, qualifying_points, spend_minor, nights, stays, flights
)`

// standing is a member's running totals, tier and grants in force, as the
// statement that records a batch's credits returns them (earnedBatchSQL).
type standing struct {
	Inserted                                        int64
	Points, Spend, Nights, Stays, Flights, Partners int64
	Tier                                            *string
	Grants                                          *string
}

func (st standing) credits() Credits {
	return Credits{MetricPoints: st.Points, MetricSpend: st.Spend, MetricNights: st.Nights, MetricStays: st.Stays,
		MetricFlights: st.Flights, MetricPartners: st.Partners}
}

func (st standing) tier() string {
	if st.Tier == nil {
		return ""
	}
	return *st.Tier
}

// grants returns the member's grants in force (tier codes only: the
// statement filtered them at its instant).
func (st standing) grants() []Grant {
	if st.Grants == nil || *st.Grants == "" {
		return nil
	}
	var gs []Grant
	for _, code := range strings.Split(*st.Grants, ",") {
		gs = append(gs, Grant{TierCode: code})
	}
	return gs
}

// recordReversal inserts a reversal's negative qualifying credit and takes it
// off the running totals of the original earn's month and partner.
func recordReversal(tx *gorm.DB, c credit) error {
	return tx.Exec(`WITH `+insertCredit+` SELECT 1`, c.args()).Error
}

// SyncWindows recomputes the running totals from the qualifying credits,
// the source of truth, for every month from keepFrom(at) on: rows that differ
// are corrected, rows without credits removed, and older months dropped (no
// window reaches them; a reversal of an earn that old re-creates its month,
// which the next run drops again). Members are done in id ranges of batch, each range in
// a REPEATABLE READ transaction, so that an earn committing meanwhile makes
// the range retry rather than be overwritten with totals that miss it.
// Returns how many rows were corrected or removed for drift (0 when the
// totals agreed; pruned months do not count). Idempotent.
func (s *Service) SyncWindows(ctx context.Context, at time.Time, batch int) (int, error) {
	keep := keepFrom(at)
	first, last, has, err := s.members.IDRange(ctx)
	if err != nil || !has {
		return 0, err
	}
	fixed := 0
	for lo := first; lo <= last; lo += int64(batch) {
		n, err := s.syncRange(ctx, lo, lo+int64(batch), keep)
		if err != nil {
			return fixed, fmt.Errorf("sync running totals of members %d-%d: %w", lo, lo+int64(batch)-1, err)
		}
		fixed += n
	}
	return fixed, nil
}

func (s *Service) syncRange(ctx context.Context, lo, hi int64, keep time.Time) (int, error) {
	for attempt := 0; ; attempt++ {
		var n int
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// The range's rows first, in key order: batch earns upsert their
			// lane-1 rows in that order too, so the repair and a batch wait
			// for each other but never in a cycle.
			if err := tx.Exec(`SELECT 1 FROM programme_member_windows WHERE member_id >= ? AND member_id < ?
				ORDER BY member_id, month, partner_id, lane FOR UPDATE`, lo, hi).Error; err != nil {
				return err
			}
			// Lane 1 (earns, migration 00242) is folded into lane 0;
			// drift is the difference between the truth and the sum of the
			// lanes, so folding alone does not count.
			return tx.Raw(`WITH truth AS (
				SELECT member_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month, partner_id,
					sum(qualifying_points) AS qualifying_points, sum(spend_minor) AS spend_minor, sum(nights) AS nights,
					sum(stays) AS stays, sum(flights) AS flights
				FROM programme_qualifying_credits
				WHERE member_id >= @lo AND member_id < @hi AND occurred_at >= @keep
				GROUP BY 1, 2, 3
			), cur AS (
				SELECT member_id, month, partner_id, sum(qualifying_points) AS qualifying_points,
					sum(spend_minor) AS spend_minor, sum(nights) AS nights, sum(stays) AS stays, sum(flights) AS flights
				FROM programme_member_windows WHERE member_id >= @lo AND member_id < @hi
				GROUP BY 1, 2, 3
			), fixed AS (
				INSERT INTO programme_member_windows AS w (member_id, month, partner_id, lane, qualifying_points,
					spend_minor, nights, stays, flights)
				SELECT member_id, month, partner_id, 0, qualifying_points, spend_minor, nights, stays, flights FROM truth
				ON CONFLICT (member_id, month, partner_id, lane) DO UPDATE SET qualifying_points = EXCLUDED.qualifying_points,
					spend_minor = EXCLUDED.spend_minor, nights = EXCLUDED.nights, stays = EXCLUDED.stays,
					flights = EXCLUDED.flights
				WHERE (w.qualifying_points, w.spend_minor, w.nights, w.stays, w.flights) IS DISTINCT FROM
					(EXCLUDED.qualifying_points, EXCLUDED.spend_minor, EXCLUDED.nights, EXCLUDED.stays, EXCLUDED.flights)
			), gone AS (
				DELETE FROM programme_member_windows w WHERE w.member_id >= @lo AND w.member_id < @hi
				AND (w.lane <> 0 OR NOT EXISTS (SELECT 1 FROM truth t WHERE t.member_id = w.member_id AND t.month = w.month
					AND t.partner_id = w.partner_id))
			)
			SELECT (SELECT count(*) FROM truth t LEFT JOIN cur c USING (member_id, month, partner_id)
					WHERE (t.qualifying_points, t.spend_minor, t.nights, t.stays, t.flights) IS DISTINCT FROM
						(c.qualifying_points, c.spend_minor, c.nights, c.stays, c.flights))
				+ (SELECT count(*) FROM cur c WHERE c.month >= @keep AND NOT EXISTS (SELECT 1 FROM truth t
					WHERE t.member_id = c.member_id AND t.month = c.month AND t.partner_id = c.partner_id))`,
				map[string]any{"lo": lo, "hi": hi, "keep": keep}).Scan(&n).Error
		}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
		var pg *pgconn.PgError
		if err != nil && errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01") && attempt < 5 {
			continue
		}
		return n, err
	}
}
