package programme

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/points"
)

// MemberTiers is MemberTier for many members, in one read (none when no
// tiers are defined).
func (s *Service) MemberTiers(ctx context.Context, memberIDs []int64) (map[int64]string, error) {
	db := s.db.WithContext(ctx)
	tiers, _, err := s.config(db)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(memberIDs))
	if len(tiers) == 0 {
		for _, id := range memberIDs {
			out[id] = ""
		}
		return out, nil
	}
	known := map[string]bool{}
	for _, t := range tiers {
		known[t.Code] = true
	}
	var rows []struct {
		MemberID int64
		TierCode string
	}
	if err := db.Raw(`SELECT member_id, tier_code FROM programme_member_tiers WHERE member_id = ANY(CAST(? AS bigint[]))`,
		database.Int64Array(memberIDs)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("tiers of %d members: %w", len(memberIDs), err)
	}
	for _, id := range memberIDs {
		out[id] = tiers[0].Code
	}
	for _, r := range rows {
		if known[r.TierCode] {
			out[r.MemberID] = r.TierCode
		}
	}
	return out, nil
}

// earnedBatchSQL records the credits of the earns of a batch: the credits, their
// running totals in lane 1 (summed per member, month and partner first: one
// upsert per row), and, when tiers are defined (@standing), each member's
// standing from @from on after all of its credits (the base tier rows come
// after the member lock, in CreditEarns's rest). The members' running
// totals are read in one index scan of the primary key for all of the
// batch's members (= ANY of the array; a join with the unnested items made
// PostgreSQL hash the whole table for every batch when statistics lagged a
// growing table, 13 of 21 ms per 200 earns when measured), and the rows the
// batch changed are replaced by their new values with one hash anti-join;
// the tier and the grants are joined, not read per member. Reading the
// standing member by member (LATERAL) cost twice as much: 5.8 against
// ~4 ms of a batch of 200 on a quiet database.
var earnedBatchSQL = database.CompileNamed(`WITH c AS (
	SELECT * FROM unnest(CAST(@member_id AS bigint[]), CAST(@transaction_id AS bigint[]), CAST(@partner_id AS bigint[]),
	    CAST(@occurred_at AS timestamptz[]), CAST(@month AS date[]), CAST(@points AS bigint[]), CAST(@spend AS bigint[]),
	    CAST(@nights AS bigint[]), CAST(@stays AS bigint[]), CAST(@flights AS bigint[]))
	    AS c(member_id, transaction_id, partner_id, occurred_at, month, points, spend, nights, stays, flights)
), credit AS (
	-- A plain INSERT: the earns of a batch are transactions posted in this
	-- database transaction, so none has a credit yet (the unique key on
	-- transaction_id still stands guard), and a speculative insertion
	-- (ON CONFLICT) would cost a WAL record more per earn.
	INSERT INTO programme_qualifying_credits (member_id, transaction_id, reverses_id, partner_id, occurred_at,
		qualifying_points, spend_minor, nights, stays, flights, posted_at)
	SELECT member_id, transaction_id, NULL, partner_id, occurred_at, points, spend, nights, stays, flights,
		CAST(@posted AS timestamptz) FROM c
	RETURNING member_id, transaction_id
), added AS (
	SELECT c.member_id, c.month, c.partner_id, sum(c.points) AS points, sum(c.spend) AS spend, sum(c.nights) AS nights,
		sum(c.stays) AS stays, sum(c.flights) AS flights
	FROM c JOIN credit USING (transaction_id) GROUP BY 1, 2, 3
), bucket AS (
	INSERT INTO programme_member_windows AS w (member_id, month, partner_id, qualifying_points, spend_minor,
		nights, stays, flights, lane)
	SELECT *, 1 FROM added ORDER BY member_id, month, partner_id
	ON CONFLICT (member_id, month, partner_id, lane) DO UPDATE SET
		qualifying_points = w.qualifying_points + EXCLUDED.qualifying_points,
		spend_minor = w.spend_minor + EXCLUDED.spend_minor, nights = w.nights + EXCLUDED.nights,
		stays = w.stays + EXCLUDED.stays, flights = w.flights + EXCLUDED.flights
	RETURNING member_id, month, partner_id, qualifying_points, spend_minor, nights, stays, flights
), m AS (
	SELECT DISTINCT member_id FROM credit WHERE CAST(@standing AS boolean)
), per_partner AS (
	SELECT r.member_id, r.partner_id, sum(qualifying_points) AS points, sum(spend_minor) AS spend, sum(nights) AS nights,
		sum(stays) AS stays, sum(flights) AS flights
	FROM (SELECT w.member_id, w.partner_id, w.qualifying_points, w.spend_minor, w.nights, w.stays, w.flights
			FROM programme_member_windows w
			WHERE w.member_id = ANY(CAST(@member_id AS bigint[])) AND w.month >= CAST(@from AS date)
				AND CAST(@standing AS boolean)
				AND NOT EXISTS (SELECT 1 FROM bucket b
					WHERE b.member_id = w.member_id AND b.month = w.month AND b.partner_id = w.partner_id AND w.lane = 1)
		UNION ALL
		SELECT member_id, partner_id, qualifying_points, spend_minor, nights, stays, flights FROM bucket
			WHERE month >= CAST(@from AS date) AND CAST(@standing AS boolean)) r
	GROUP BY r.member_id, r.partner_id
), per_member AS (
	SELECT member_id, sum(points) AS points, sum(spend) AS spend, sum(nights) AS nights, sum(stays) AS stays,
		sum(flights) AS flights, count(*) FILTER (WHERE points > 0) AS partners
	FROM per_partner GROUP BY member_id
), grants AS (
	SELECT g.member_id, string_agg(g.tier_code, ',') AS codes FROM programme_tier_grants g
	WHERE g.member_id = ANY(CAST(@member_id AS bigint[])) AND CAST(@standing AS boolean)
		AND g.starts_at <= CAST(@posted AS timestamptz) AND (g.ends_at IS NULL OR g.ends_at > CAST(@posted AS timestamptz))
	GROUP BY g.member_id
)
SELECT m.member_id, coalesce(pm.points, 0) AS points, coalesce(pm.spend, 0) AS spend,
	coalesce(pm.nights, 0) AS nights, coalesce(pm.stays, 0) AS stays, coalesce(pm.flights, 0) AS flights,
	coalesce(pm.partners, 0) AS partners, t.tier_code AS tier, g.codes AS grants
FROM m LEFT JOIN per_member pm USING (member_id)
	LEFT JOIN programme_member_tiers t ON t.member_id = m.member_id
	LEFT JOIN grants g ON g.member_id = m.member_id
ORDER BY m.member_id`)

var _ points.Programme = (*Service)(nil)

// CreditEarns records the qualifying credits of earns about to be posted
// (points.Programme): the one way an earn's credit is recorded. It adds them to
// lane 1 of the running totals (migration 00242), in one statement that also
// returns each member's standing. Qualifying points are the partner-funded
// points (operator-funded bonuses do not qualify); spend counts only in the
// policy currency. The points API calls it between the earns' idempotency
// claims and the ledger's member locks, so that the members' account rows
// are not held while it runs; nothing it locks is locked by another path
// before an account row (reversals write lane 0).
//
// It returns the rest, to run once the earns are posted (with the posted
// earns): the base tier row of members who have none, the exact evaluation
// of each member whose standing crosses a threshold (once per member, after
// all of its earns), and the credit of the member's company when the
// partner is a corporate partner (dual accrual). Those take tier rows and
// company accounts, which every path takes after member accounts.
//
// The running totals decide whether the member may move up: whole months
// count at least everything the window counts (a rolling window starts
// mid-month; every earn's net credit, reversals included, is non-negative),
// and Evaluate only goes up with more credits, so when these totals move the
// member nowhere, the exact window cannot either. When they would, evaluate
// decides on the exact window under the tier row's lock.
func (s *Service) CreditEarns(ctx context.Context, tx *gorm.DB, earns []points.PostedEarn) (points.EarnedRest, error) {
	done := func(context.Context, *gorm.DB, []points.PostedEarn) error { return nil }
	if len(earns) == 0 {
		return done, nil
	}
	tiers, p, err := s.config(tx)
	if err != nil {
		return nil, err
	}
	var changed, untiered []int64
	n := len(earns)
	var (
		memberIDs, txIDs, partnerIDs = make([]int64, n), make([]int64, n), make([]int64, n)
		pts, spends                  = make([]int64, n), make([]int64, n)
		nights, stays, flights       = make([]int64, n), make([]int64, n), make([]int64, n)
		occurred, months             = make([]time.Time, n), make([]time.Time, n)
	)
	for i, e := range earns {
		tr := e.Transaction
		for _, en := range tr.Entries {
			if en.Kind == ledger.KindPartnerIssued {
				pts[i] -= int64(en.Points)
			}
		}
		spends[i] = p.spend(e.Input.Amount)
		nights[i], stays[i], flights[i] = activityMetrics(e.Input.Activity)
		memberIDs[i], txIDs[i], partnerIDs[i] = tr.MemberID, tr.ID, e.PartnerID
		occurred[i], months[i] = tr.OccurredAt, monthOf(tr.OccurredAt)
	}
	now := s.clock()
	var base string
	if len(tiers) > 0 {
		base = tiers[0].Code
	}
	args, err := earnedBatchSQL.Args(map[string]any{"member_id": memberIDs, "transaction_id": txIDs,
		"partner_id": partnerIDs, "occurred_at": occurred, "month": months, "points": pts, "spend": spends,
		"nights": nights, "stays": stays, "flights": flights, "posted": now,
		"from": totalsFrom(p.TierWindow, now), "standing": len(tiers) > 0})
	if err != nil {
		return nil, err
	}
	// The statement travels with the ledger's member locks (one round trip
	// for both); its rows are read when they come, before the rest runs.
	err = database.Defer(tx, database.Stmt{SQL: earnedBatchSQL.SQL, Args: args,
		Name: fmt.Sprintf("qualifying credits of %d earns", len(earns)), Scan: func(row database.Row) error {
			var memberID int64
			var st standing
			if err := row.Scan(&memberID, &st.Points, &st.Spend, &st.Nights, &st.Stays, &st.Flights, &st.Partners,
				&st.Tier, &st.Grants); err != nil {
				return err
			}
			if st.Tier == nil {
				untiered = append(untiered, memberID)
			}
			d := Evaluate(tiers, EvalInput{Current: st.tier(), Credits: st.credits(), Grants: st.grants(), At: now})
			if d.Changed {
				changed = append(changed, memberID)
			}
			return nil
		}})
	if err != nil {
		return nil, fmt.Errorf("qualifying credits of %d earns: %w", len(earns), err)
	}
	return func(ctx context.Context, tx *gorm.DB, posted []points.PostedEarn) error {
		// The base tier row of members who have none (a new row counts as
		// reviewed now, as in evaluate); the standing was read before it.
		if len(untiered) > 0 && base != "" {
			if err := tx.Exec(`INSERT INTO programme_member_tiers (member_id, tier_code, since, last_review_at, updated_at)
				SELECT id, ?, ?, ?, ? FROM unnest(CAST(? AS bigint[])) AS id ORDER BY id
				ON CONFLICT (member_id) DO NOTHING`, base, now, now, now, database.Int64Array(untiered)).Error; err != nil {
				return fmt.Errorf("base tier of %d members: %w", len(untiered), err)
			}
		}
		for _, id := range changed {
			if _, err := s.evaluate(tx, id, now, false); err != nil {
				return fmt.Errorf("tier of member %d: %w", id, err)
			}
		}
		for _, e := range posted {
			spend := p.spend(e.Input.Amount)
			if spend <= 0 {
				continue
			}
			if ok, err := s.corporate(tx, e.PartnerID); err != nil {
				return err
			} else if ok {
				if err := s.creditCompany(ctx, tx, p, e, spend); err != nil {
					return err
				}
			}
		}
		return nil
	}, nil
}
