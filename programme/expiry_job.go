package programme

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
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
	var afterMember int64
	var afterDay time.Time
	for {
		groups, err := s.ledger.ExpiringLots(ctx, now, until, afterMember, afterDay, batch)
		if err != nil {
			return total, fmt.Errorf("expiry notices: %w", err)
		}
		if len(groups) == 0 {
			return total, nil
		}
		afterMember, afterDay = groups[len(groups)-1].MemberID, groups[len(groups)-1].ExpiresOn
		noticed, err := noticedDays(s.db.WithContext(ctx), groups)
		if err != nil {
			return total, fmt.Errorf("expiry notices: %w", err)
		}
		for _, g := range groups {
			if noticed[noticeKey{g.MemberID, g.ExpiresOn.Format(time.DateOnly)}] {
				continue
			}
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				ok, err := insertNotice(tx, g.MemberID, g.ExpiresAt, g.Points, now)
				if err != nil || !ok {
					return err
				}
				total++
				if err := s.notifyExpiring(ctx, tx, g.MemberID, g.Points, g.ExpiresAt); err != nil {
					return err
				}
				byIssuer, err := s.ledger.In(tx).ExpiringByIssuer(ctx, g.MemberID, now, g.ExpiresOn)
				if err != nil {
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

// noticeKey is a member and a UTC day (YYYY-MM-DD).
type noticeKey struct {
	memberID int64
	day      string
}

// noticedDays returns which of the groups' members and days have a notice
// already.
func noticedDays(tx *gorm.DB, groups []ledger.ExpiringGroup) (map[noticeKey]bool, error) {
	ids, days := make([]int64, len(groups)), make([]string, len(groups))
	for i, g := range groups {
		ids[i], days[i] = g.MemberID, g.ExpiresOn.Format(time.DateOnly)
	}
	var rows []struct {
		MemberID int64
		Day      string
	}
	if err := tx.Raw(`SELECT n.member_id, to_char(n.expires_on, 'YYYY-MM-DD') AS day FROM programme_expiry_notices n
		JOIN unnest(CAST(? AS bigint[]), CAST(? AS date[])) g (member_id, expires_on)
		  ON g.member_id = n.member_id AND g.expires_on = n.expires_on`,
		database.Int64Array(ids), "{"+strings.Join(days, ",")+"}").Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[noticeKey]bool, len(rows))
	for _, r := range rows {
		out[noticeKey{r.MemberID, r.Day}] = true
	}
	return out, nil
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

// inactivityNotices notices members whose inactivity deadline falls within
// the notice period. Partners are not told: the points are the member's
// whole balance, not one partner's issue.
func (s *Service) inactivityNotices(ctx context.Context, p Policy, now time.Time, batch int) (int, error) {
	n := 0
	var after int64
	for {
		rows, err := s.ledger.LastActivity(ctx, after, now.AddDate(0, -p.ExpiryMonths, 0),
			now.AddDate(0, 0, p.NoticeDays).AddDate(0, -p.ExpiryMonths, 0), batch)
		if err != nil {
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
		rows, err := s.ledger.LastActivity(ctx, after, time.Time{}, cutoff, batch)
		if err != nil {
			return n, fmt.Errorf("inactive members: %w", err)
		}
		if len(rows) == 0 {
			return n, nil
		}
		for _, r := range rows {
			after = r.MemberID
			err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				l := s.ledger.In(tx)
				held, ok, err := l.LockMember(ctx, r.MemberID)
				if err != nil || !ok {
					return err
				}
				if held > 0 {
					return nil // an active hold: wait until it is captured, voided or expires
				}
				cur, ok, err := l.LastActivityOf(ctx, r.MemberID)
				if err != nil || !ok || cur.Last.After(cutoff) {
					return err
				}
				tr, err := l.Forfeit(ctx, ledger.Idempotency{Scope: Scope,
					Key: fmt.Sprintf("inactivity:%d:%s", r.MemberID, cur.Last.UTC().Format(time.RFC3339Nano))},
					r.MemberID, fmt.Sprintf("points expired: no earn or burn for %d months since %s",
						p.ExpiryMonths, cur.Last.UTC().Format("2006-01-02")))
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
