package programme

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/webhooks"
)

// ExpiryReport counts what one RunExpiry did.
type ExpiryReport struct {
	Notices       int           `json:"notices"`
	ExpiredLots   int           `json:"expired_lots"`
	ExpiredPoints ledger.Points `json:"expired_points"`
	Inactive      int           `json:"inactive_members"`
}

// ExpiringNotice is the data of a points.expiring webhook: the member's
// points issued by the receiving partner that expire at ExpiresAt.
type ExpiringNotice struct {
	MemberID  int64     `json:"member_id"`
	Points    int64     `json:"points"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RunExpiry is the daily expiry job: it records "points expiring" notices
// NoticeDays ahead (once per member and day, each publishing points.expiring
// to the partners that issued the points), expires due lots through
// ledger.ExpireLots in batches, and under the inactivity policy forfeits the
// points of members without an earn or burn for ExpiryMonths. Every step is
// idempotent: re-running it the same day (or after a crash) notices and
// expires nothing twice.
func (s *Service) RunExpiry(ctx context.Context, batch int) (ExpiryReport, error) {
	var rep ExpiryReport
	p, err := s.Policy(ctx)
	if err != nil {
		return rep, err
	}
	now := s.clock()
	if rep.Notices, err = s.lotNotices(ctx, now, now.AddDate(0, 0, p.NoticeDays), batch); err != nil {
		return rep, err
	}
	for {
		res, err := s.ledger.ExpireLots(ctx, now, batch)
		if err != nil {
			return rep, fmt.Errorf("expire lots: %w", err)
		}
		rep.ExpiredLots += res.Lots
		rep.ExpiredPoints += res.Points
		if res.Lots == 0 {
			break
		}
	}
	if p.ExpiryMode == ExpiryInactivity {
		n, err := s.inactivityNotices(ctx, p, now, batch)
		rep.Notices += n
		if err != nil {
			return rep, err
		}
		if rep.Inactive, err = s.expireInactive(ctx, p, now, batch); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// lotNotices records one notice per member and UTC day for lots expiring in
// (now, until] and publishes points.expiring per issuing partner.
func (s *Service) lotNotices(ctx context.Context, now, until time.Time, batch int) (int, error) {
	total := 0
	for {
		var groups []struct {
			MemberID  int64
			ExpiresOn time.Time
			ExpiresAt time.Time
			Points    int64
		}
		if err := s.db.WithContext(ctx).Raw(`SELECT a.owner_id AS member_id, (l.expires_at AT TIME ZONE 'UTC')::date AS expires_on,
			min(l.expires_at) AS expires_at, sum(l.remaining) AS points
			FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id AND a.kind = 'member'
			WHERE l.remaining > 0 AND l.expires_at > ? AND l.expires_at <= ?
			AND NOT EXISTS (SELECT 1 FROM programme_expiry_notices n WHERE n.member_id = a.owner_id
				AND n.expires_on = (l.expires_at AT TIME ZONE 'UTC')::date)
			GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?`, now, until, batch).Scan(&groups).Error; err != nil {
			return total, fmt.Errorf("expiry notices: %w", err)
		}
		if len(groups) == 0 {
			return total, nil
		}
		for _, g := range groups {
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				ok, err := insertNotice(tx, g.MemberID, g.ExpiresAt, g.Points, now)
				if err != nil || !ok {
					return err
				}
				total++
				if err := s.notifyExpiring(ctx, tx, g.MemberID, g.Points, g.ExpiresAt); err != nil {
					return err
				}
				var byIssuer []struct {
					IssuerPartnerID int64
					Points          int64
				}
				if err := tx.Raw(`SELECT l.issuer_partner_id, sum(l.remaining) AS points FROM ledger_lots l
					JOIN ledger_accounts a ON a.id = l.account_id AND a.kind = 'member' AND a.owner_id = ?
					WHERE l.remaining > 0 AND l.issuer_partner_id IS NOT NULL AND l.expires_at > ?
					AND (l.expires_at AT TIME ZONE 'UTC')::date = ? GROUP BY 1`, g.MemberID, now, g.ExpiresOn).
					Scan(&byIssuer).Error; err != nil {
					return err
				}
				for _, b := range byIssuer {
					if _, err := webhooks.Publish(tx, now, b.IssuerPartnerID, webhooks.EventPointsExpiring,
						ExpiringNotice{MemberID: g.MemberID, Points: b.Points, ExpiresAt: g.ExpiresAt}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("expiry notice for member %d: %w", g.MemberID, err)
			}
		}
	}
}

// notifyExpiring queues the member's "points expiring" mail in tx, the
// transaction that recorded the notice, so it goes once per notice
// (members.NoticePointsExpiring).
func (s *Service) notifyExpiring(ctx context.Context, tx *gorm.DB, memberID, points int64, expiresAt time.Time) error {
	_, err := s.members.Notify(ctx, tx, memberID, members.Notice{Kind: members.NoticePointsExpiring, Template: "points_expiring",
		Data: map[string]any{"points": points, "expires": expiresAt.UTC().Format(time.DateOnly)}})
	return err
}

func insertNotice(tx *gorm.DB, memberID int64, expiresAt time.Time, points int64, now time.Time) (bool, error) {
	res := tx.Exec(`INSERT INTO programme_expiry_notices (member_id, expires_on, expires_at, points, created_at)
		VALUES (?, (?::timestamptz AT TIME ZONE 'UTC')::date, ?, ?, ?) ON CONFLICT (member_id, expires_on) DO NOTHING`,
		memberID, expiresAt, expiresAt, points, now)
	return res.RowsAffected == 1, res.Error
}

// lastActivity is, per member account with points and no active holds, the
// last earn, burn or capture (or, for a member who never had one, the first
// transaction on the account).
const lastActivity = `SELECT a.owner_id AS member_id, a.balance, coalesce(
	(SELECT max(t.posted_at) FROM ledger_transactions t WHERE t.member_id = a.owner_id AND t.type IN ('earn', 'burn', 'capture')),
	(SELECT min(e.posted_at) FROM ledger_entries e WHERE e.account_id = a.id)) AS last
	FROM ledger_accounts a WHERE a.kind = 'member' AND a.balance > 0`

type activityRow struct {
	MemberID int64
	Balance  int64
	Last     time.Time
}

// inactivityNotices notices members whose inactivity deadline falls within
// the notice period. Partners are not told: the points are the member's
// whole balance, not one partner's issue.
func (s *Service) inactivityNotices(ctx context.Context, p Policy, now time.Time, batch int) (int, error) {
	n := 0
	var after int64
	for {
		var rows []activityRow
		if err := s.db.WithContext(ctx).Raw(`SELECT * FROM (`+lastActivity+`) x WHERE member_id > ? AND last > ? AND last <= ?
			ORDER BY member_id LIMIT ?`, after, now.AddDate(0, -p.ExpiryMonths, 0),
			now.AddDate(0, 0, p.NoticeDays).AddDate(0, -p.ExpiryMonths, 0), batch).Scan(&rows).Error; err != nil {
			return n, fmt.Errorf("inactivity notices: %w", err)
		}
		if len(rows) == 0 {
			return n, nil
		}
		for _, r := range rows {
			after = r.MemberID
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				deadline := InactivityDeadline(p, r.Last)
				ok, err := insertNotice(tx, r.MemberID, deadline, r.Balance, now)
				if err != nil || !ok {
					return err
				}
				n++
				return s.notifyExpiring(ctx, tx, r.MemberID, r.Balance, deadline)
			})
			if err != nil {
				return n, fmt.Errorf("inactivity notice for member %d: %w", r.MemberID, err)
			}
		}
	}
}

// expireInactive forfeits the points of members inactive since before
// now − ExpiryMonths. Each member is re-checked under its account lock, and
// the ledger key names the last activity, so a re-run is a replay and an
// earn racing the job keeps the member's points.
func (s *Service) expireInactive(ctx context.Context, p Policy, now time.Time, batch int) (int, error) {
	cutoff := now.AddDate(0, -p.ExpiryMonths, 0)
	n := 0
	var after int64
	for {
		var rows []activityRow
		if err := s.db.WithContext(ctx).Raw(`SELECT * FROM (`+lastActivity+`) x WHERE member_id > ? AND last <= ?
			ORDER BY member_id LIMIT ?`, after, cutoff, batch).Scan(&rows).Error; err != nil {
			return n, fmt.Errorf("inactive members: %w", err)
		}
		if len(rows) == 0 {
			return n, nil
		}
		for _, r := range rows {
			after = r.MemberID
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				var held []int64
				if err := tx.Raw(`SELECT held FROM ledger_accounts WHERE kind = 'member' AND owner_id = ? FOR UPDATE`,
					r.MemberID).Scan(&held).Error; err != nil {
					return err
				}
				if len(held) == 0 || held[0] > 0 {
					return nil // an active hold: wait until it is captured, voided or expires
				}
				var cur []activityRow
				if err := tx.Raw(`SELECT * FROM (`+lastActivity+`) x WHERE member_id = ?`, r.MemberID).Scan(&cur).Error; err != nil {
					return err
				}
				if len(cur) == 0 || cur[0].Last.After(cutoff) {
					return nil
				}
				tr, err := s.ledger.In(tx).Forfeit(ctx, ledger.Idempotency{Scope: Scope,
					Key: fmt.Sprintf("inactivity:%d:%s", r.MemberID, cur[0].Last.UTC().Format(time.RFC3339Nano))},
					r.MemberID, fmt.Sprintf("points expired: no earn or burn for %d months since %s",
						p.ExpiryMonths, cur[0].Last.UTC().Format("2006-01-02")))
				if err == nil && tr.ID != 0 && !tr.Replayed {
					n++
				}
				return err
			})
			if err != nil {
				return n, fmt.Errorf("expire inactive member %d: %w", r.MemberID, err)
			}
		}
	}
}

// Notices returns a member's "points expiring" notices whose expiry is
// still ahead, soonest first.
func (s *Service) Notices(ctx context.Context, memberID int64) ([]Notice, error) {
	out := []Notice{}
	err := s.db.WithContext(ctx).Raw(`SELECT id, member_id, expires_at, points, created_at FROM programme_expiry_notices
		WHERE member_id = ? AND expires_at > ? ORDER BY expires_at`, memberID, s.clock()).Scan(&out).Error
	return out, err
}
