package abuse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

// Service reads and writes the rules and flags, and scans for the
// earn-refund-keep pattern. The checks on the posting path (CheckEarns,
// CheckBurn) are functions of the caller's transaction.
type Service struct {
	db     *gorm.DB
	ledger *ledger.Service
	now    func() time.Time
}

// NewService wires the abuse rules.
func NewService(db *gorm.DB, l *ledger.Service, now func() time.Time) *Service {
	return &Service{db: db, ledger: l, now: now}
}

type rulesRow struct {
	PartnerID           int64 `gorm:"primaryKey;autoIncrement:false"`
	MemberEarnsPerHour  int64
	MemberPointsPerDay  int64
	MemberBurnsPerHour  int64
	CardEarnsPerHour    int64
	CardPointsPerDay    int64
	CardBurnsPerHour    int64
	PartnerEarnsPerHour int64
	PartnerPointsPerDay int64
	PartnerBurnsPerHour int64
	RefundShare         decimal.Decimal
	RefundMinPoints     int64
	UpdatedAt           time.Time
	UpdatedBy           string
}

func (rulesRow) TableName() string { return "abuse_rules" }

type capRow struct {
	PartnerID int64  `gorm:"primaryKey;autoIncrement:false"`
	EventCode string `gorm:"primaryKey"`
	MaxCount  int64
	Period    string
}

func (capRow) TableName() string { return "abuse_action_caps" }

// Rules returns the partner's rules (all zero when it has none).
func (s *Service) Rules(ctx context.Context, partnerID int64) (Rules, error) {
	return RulesWith(s.db.WithContext(ctx), partnerID)
}

// RulesWith is Rules in the caller's transaction (the points API reads them
// with the rest of a partner's configuration, in one snapshot).
func RulesWith(tx *gorm.DB, partnerID int64) (Rules, error) {
	out := Rules{PartnerID: partnerID, ActionCaps: []ActionCap{}}
	var rows []rulesRow
	if err := tx.Where("partner_id = ?", partnerID).Find(&rows).Error; err != nil {
		return Rules{}, fmt.Errorf("abuse rules of partner %d: %w", partnerID, err)
	}
	if len(rows) == 1 {
		r := rows[0]
		at := r.UpdatedAt.UTC()
		out = Rules{PartnerID: partnerID, MemberEarnsPerHour: r.MemberEarnsPerHour, MemberPointsPerDay: r.MemberPointsPerDay,
			MemberBurnsPerHour: r.MemberBurnsPerHour, CardEarnsPerHour: r.CardEarnsPerHour, CardPointsPerDay: r.CardPointsPerDay,
			CardBurnsPerHour: r.CardBurnsPerHour, PartnerEarnsPerHour: r.PartnerEarnsPerHour,
			PartnerPointsPerDay: r.PartnerPointsPerDay, PartnerBurnsPerHour: r.PartnerBurnsPerHour,
			RefundShare: r.RefundShare, RefundMinPoints: r.RefundMinPoints, ActionCaps: []ActionCap{},
			UpdatedAt: &at, UpdatedBy: r.UpdatedBy}
	}
	var caps []capRow
	if err := tx.Where("partner_id = ?", partnerID).Order("event_code").Find(&caps).Error; err != nil {
		return Rules{}, fmt.Errorf("action caps of partner %d: %w", partnerID, err)
	}
	for _, c := range caps {
		out.ActionCaps = append(out.ActionCaps, ActionCap{EventCode: c.EventCode, Max: c.MaxCount, Period: Period(c.Period)})
	}
	return out, nil
}

// SetRules replaces the partner's rules (every limit and the action caps).
// The points API sees them from its next request on (the partner's
// configuration stamp moves). Errors: *validation.Error.
func (s *Service) SetRules(ctx context.Context, partnerID int64, r Rules, actor string) (Rules, error) {
	for i := range r.ActionCaps {
		r.ActionCaps[i].EventCode = strings.TrimSpace(r.ActionCaps[i].EventCode)
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	if actor == "" || len(actor) > 200 {
		return Rules{}, validation.New("actor", "is required (at most 200 characters)")
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row := rulesRow{PartnerID: partnerID, MemberEarnsPerHour: r.MemberEarnsPerHour, MemberPointsPerDay: r.MemberPointsPerDay,
			MemberBurnsPerHour: r.MemberBurnsPerHour, CardEarnsPerHour: r.CardEarnsPerHour, CardPointsPerDay: r.CardPointsPerDay,
			CardBurnsPerHour: r.CardBurnsPerHour, PartnerEarnsPerHour: r.PartnerEarnsPerHour,
			PartnerPointsPerDay: r.PartnerPointsPerDay, PartnerBurnsPerHour: r.PartnerBurnsPerHour,
			RefundShare: r.RefundShare, RefundMinPoints: r.RefundMinPoints, UpdatedAt: s.now().UTC(), UpdatedBy: actor}
		if err := tx.Save(&row).Error; err != nil {
			return err
		}
		if err := tx.Where("partner_id = ?", partnerID).Delete(&capRow{}).Error; err != nil {
			return err
		}
		for _, c := range r.ActionCaps {
			if err := tx.Create(&capRow{PartnerID: partnerID, EventCode: c.EventCode, MaxCount: c.Max, Period: string(c.Period)}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if database.Code(err) == "23503" {
		return Rules{}, validation.New("partner_id", "no such partner")
	}
	if err != nil {
		return Rules{}, fmt.Errorf("set abuse rules of partner %d: %w", partnerID, err)
	}
	return s.Rules(ctx, partnerID)
}

// limit is one rule applied to one request: a counter (partner, subject,
// window) and its maximum, of requests or of points.
type limit struct {
	rule   string
	key    counterKey
	max    int64
	points bool
	until  time.Time
}

type counterKey struct {
	partner int64
	subject string
	window  time.Time
}

// Earn is an earn about to be posted, as the checks see it.
type Earn struct {
	PartnerID int64
	MemberID  int64
	Card      string // the identifier presented, "" when none
	EventCode string // a non-purchase action, "" for a purchase
	Points    int64  // partner- and operator-funded
}

// Hit is why an earn is held: the rule and a line for people.
type Hit struct {
	Rule   string
	Detail string
}

func earnLimits(r Rules, e Earn, now time.Time) []limit {
	h, d := hourOf(now), dayOf(now)
	hEnd, dEnd := h.Add(time.Hour), d.AddDate(0, 0, 1)
	var out []limit
	add := func(rule string, max int64, subject string, window, until time.Time, points bool) {
		if max > 0 {
			out = append(out, limit{rule: rule, key: counterKey{e.PartnerID, subject, window}, max: max, points: points, until: until})
		}
	}
	add("member_earns_per_hour", r.MemberEarnsPerHour, memberSubject(e.MemberID, "e"), h, hEnd, false)
	add("member_points_per_day", r.MemberPointsPerDay, memberSubject(e.MemberID, "p"), d, dEnd, true)
	if e.Card != "" {
		add("card_earns_per_hour", r.CardEarnsPerHour, cardSubject(e.Card, "e"), h, hEnd, false)
		add("card_points_per_day", r.CardPointsPerDay, cardSubject(e.Card, "p"), d, dEnd, true)
	}
	add("partner_earns_per_hour", r.PartnerEarnsPerHour, partnerSubject("e"), h, hEnd, false)
	add("partner_points_per_day", r.PartnerPointsPerDay, partnerSubject("p"), d, dEnd, true)
	if e.EventCode != "" {
		for _, c := range r.ActionCaps {
			if c.EventCode == e.EventCode {
				add("action_cap:"+c.EventCode, c.Max, actionSubject(c.EventCode, e.MemberID), c.Period.start(now), c.Period.end(now), false)
			}
		}
	}
	return out
}

func burnLimits(r Rules, partnerID, memberID int64, card string, now time.Time) []limit {
	h := hourOf(now)
	var out []limit
	add := func(rule string, max int64, subject string) {
		if max > 0 {
			out = append(out, limit{rule: rule, key: counterKey{partnerID, subject, h}, max: max, until: h.Add(time.Hour)})
		}
	}
	add("member_burns_per_hour", r.MemberBurnsPerHour, memberSubject(memberID, "b"))
	if card != "" {
		add("card_burns_per_hour", r.CardBurnsPerHour, cardSubject(card, "b"))
	}
	add("partner_burns_per_hour", r.PartnerBurnsPerHour, partnerSubject("b"))
	return out
}

// counted is a counter after the increment: its request count and points.
type counted struct{ count, points int64 }

// bump adds deltas to their counters and returns the totals after, in one
// statement. Keys go in a fixed order, so two transactions lock shared
// counters in the same order.
func bump(tx *gorm.DB, deltas map[counterKey]counted, reviewPairs [][2]int64) (map[counterKey]counted, map[[2]int64]bool, error) {
	keys := make([]counterKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b counterKey) int {
		if a.partner != b.partner {
			return int(a.partner - b.partner)
		}
		if c := strings.Compare(a.subject, b.subject); c != 0 {
			return c
		}
		return a.window.Compare(b.window)
	})
	var parts []int64
	var subjects []string
	var windows []time.Time
	var ns, pts []int64
	for _, k := range keys {
		parts, subjects, windows = append(parts, k.partner), append(subjects, k.subject), append(windows, k.window)
		ns, pts = append(ns, deltas[k].count), append(pts, deltas[k].points)
	}
	var rp, rm []int64
	for _, p := range reviewPairs {
		rp, rm = append(rp, p[0]), append(rm, p[1])
	}
	after := make(map[counterKey]counted, len(keys))
	review := map[[2]int64]bool{}
	// One statement: the increments (in key order, WITH ORDINALITY) and
	// the members under review among those asked.
	err := database.Query(tx, `WITH up AS (
			INSERT INTO abuse_counters AS c (partner_id, subject, window_start, count, points)
			SELECT p, s, w, n, pt FROM unnest(CAST($1 AS bigint[]), CAST($2 AS text[]), CAST($3 AS timestamptz[]),
				CAST($4 AS bigint[]), CAST($5 AS bigint[])) WITH ORDINALITY AS d(p, s, w, n, pt, o) ORDER BY o
			ON CONFLICT (partner_id, subject, window_start)
			DO UPDATE SET count = c.count + EXCLUDED.count, points = c.points + EXCLUDED.points
			RETURNING partner_id, subject, window_start, count, points)
		SELECT false, partner_id, subject, window_start, count, points FROM up
		UNION ALL
		SELECT true, f.partner_id, CAST(f.member_id AS text), CAST(NULL AS timestamptz), 0, 0
		FROM abuse_flags f JOIN unnest(CAST($6 AS bigint[]), CAST($7 AS bigint[])) AS q(p, m) ON f.partner_id = q.p AND f.member_id = q.m
		WHERE f.kind = 'member' AND f.status = 'open'`,
		[]any{parts, subjects, windows, ns, pts, rp, rm}, func(rs *sql.Rows) error {
			var isReview bool
			var k counterKey
			var w sql.NullTime
			var c counted
			if err := rs.Scan(&isReview, &k.partner, &k.subject, &w, &c.count, &c.points); err != nil {
				return err
			}
			if isReview {
				var m int64
				fmt.Sscan(k.subject, &m)
				review[[2]int64{k.partner, m}] = true
				return nil
			}
			k.window = w.Time.UTC()
			after[k] = c
			return nil
		})
	if err != nil {
		return nil, nil, fmt.Errorf("count for abuse rules: %w", err)
	}
	return after, review, nil
}

// CheckEarns counts earns (all of partners with earn rules, rulesOf giving
// each partner's) against their limits inside the posting transaction, in
// one statement, and returns the index of each earn to hold with why. Earns
// are counted in input order, held ones too (a burst of attempts counts in
// full); an earn of a member under review for the earn-refund-keep pattern
// at that partner is held as well. Call it only with earns that will be
// posted (new keys), so a replay counts nothing.
func CheckEarns(tx *gorm.DB, now time.Time, rulesOf func(partnerID int64) Rules, earns []Earn) (map[int]Hit, error) {
	lims := make([][]limit, len(earns))
	deltas := map[counterKey]counted{}
	var pairs [][2]int64
	seenPair := map[[2]int64]bool{}
	for i, e := range earns {
		r := rulesOf(e.PartnerID)
		lims[i] = earnLimits(r, e, now)
		for _, l := range lims[i] {
			d := deltas[l.key]
			d.count++
			d.points += e.Points
			deltas[l.key] = d
		}
		if p := [2]int64{e.PartnerID, e.MemberID}; r.RefundShare.IsPositive() && !seenPair[p] {
			seenPair[p] = true
			pairs = append(pairs, p)
		}
	}
	if len(deltas) == 0 && len(pairs) == 0 {
		return nil, nil
	}
	after, review, err := bump(tx, deltas, pairs)
	if err != nil {
		return nil, err
	}
	// Replay the batch's increments in input order from the totals before it.
	running := make(map[counterKey]counted, len(after))
	for k, a := range after {
		running[k] = counted{a.count - deltas[k].count, a.points - deltas[k].points}
	}
	hits := map[int]Hit{}
	for i, e := range earns {
		var hit *Hit
		for _, l := range lims[i] {
			c := running[l.key]
			c.count++
			c.points += e.Points
			running[l.key] = c
			v := c.count
			if l.points {
				v = c.points
			}
			if v > l.max && hit == nil {
				unit := "earns"
				if l.points {
					unit = "points"
				}
				hit = &Hit{Rule: l.rule, Detail: fmt.Sprintf("%d %s of %d allowed until %s", v, unit, l.max,
					l.until.Format("2006-01-02 15:04 MST"))}
			}
		}
		if hit == nil && review[[2]int64{e.PartnerID, e.MemberID}] {
			hit = &Hit{Rule: "refund_pattern", Detail: "the member is under review for reversals exceeding the partner's share"}
		}
		if hit != nil {
			hits[i] = *hit
		}
	}
	return hits, nil
}

// CheckBurn counts one new burn against the partner's burn limits inside
// its transaction, in one statement, and refuses it with a *LimitError
// (ErrVelocityLimit) when it would pass one: the caller rolls back, which
// takes the count back, so refused burns do not count.
func CheckBurn(tx *gorm.DB, now time.Time, r Rules, partnerID, memberID int64, card string) error {
	lims := burnLimits(r, partnerID, memberID, card, now)
	if len(lims) == 0 {
		return nil
	}
	deltas := make(map[counterKey]counted, len(lims))
	for _, l := range lims {
		deltas[l.key] = counted{count: 1}
	}
	after, _, err := bump(tx, deltas, nil)
	if err != nil {
		return err
	}
	for _, l := range lims {
		if after[l.key].count > l.max {
			return &LimitError{Rule: l.rule, Until: l.until, now: now}
		}
	}
	return nil
}

// Flag is an item held for review.
type Flag struct {
	ID            int64      `json:"id"`
	PartnerID     int64      `json:"partner_id"`
	MemberID      int64      `json:"member_id"`
	TransactionID *int64     `json:"transaction_id,omitempty"`
	Kind          string     `json:"kind"` // earn | member
	Rule          string     `json:"rule"`
	Detail        string     `json:"detail"`
	Points        int64      `json:"points"`
	AvailableAt   *time.Time `json:"-"`
	ExpiresAt     *time.Time `json:"-"`
	Status        string     `json:"status"` // open | approved | rejected
	CreatedAt     time.Time  `json:"created_at"`
	ReviewedAt    *time.Time `json:"reviewed_at,omitempty"`
	ReviewedBy    string     `json:"reviewed_by,omitempty"`
	Note          string     `json:"note,omitempty"`
}

// Flag kinds and statuses.
const (
	KindEarn       = "earn"
	KindMember     = "member"
	StatusOpen     = "open"
	StatusApproved = "approved"
	StatusRejected = "rejected"
)

type flagRow struct {
	ID            int64 `gorm:"primaryKey;->"`
	PartnerID     int64
	MemberID      int64
	TransactionID *int64
	Kind          string
	Rule          string
	Detail        string
	Points        int64
	AvailableAt   *time.Time
	ExpiresAt     *time.Time
	Status        string
	CreatedAt     time.Time
	ReviewedAt    *time.Time
	ReviewedBy    string
	Note          string
}

func (flagRow) TableName() string { return "abuse_flags" }

func (r flagRow) flag() Flag {
	f := Flag{ID: r.ID, PartnerID: r.PartnerID, MemberID: r.MemberID, TransactionID: r.TransactionID, Kind: r.Kind,
		Rule: r.Rule, Detail: r.Detail, Points: r.Points, AvailableAt: r.AvailableAt, ExpiresAt: r.ExpiresAt,
		Status: r.Status, CreatedAt: r.CreatedAt.UTC(), ReviewedAt: r.ReviewedAt, ReviewedBy: r.ReviewedBy, Note: r.Note}
	if f.ReviewedAt != nil {
		t := f.ReviewedAt.UTC()
		f.ReviewedAt = &t
	}
	return f
}

// RecordEarnFlags records the flags of held earns in the posting
// transaction (one statement).
func RecordEarnFlags(tx *gorm.DB, flags []Flag) error {
	if len(flags) == 0 {
		return nil
	}
	rows := make([]flagRow, len(flags))
	for i, f := range flags {
		detail := f.Detail
		if len(detail) > 500 {
			detail = detail[:500]
		}
		rows[i] = flagRow{PartnerID: f.PartnerID, MemberID: f.MemberID, TransactionID: f.TransactionID, Kind: KindEarn,
			Rule: f.Rule, Detail: detail, Points: f.Points, AvailableAt: f.AvailableAt, ExpiresAt: f.ExpiresAt,
			Status: StatusOpen, CreatedAt: f.CreatedAt}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("record abuse flags: %w", err)
	}
	return nil
}

// Filter selects flags: one partner's (0: all), one status ("": all),
// ids after After (0: from the start), at most Limit (50, at most 200).
type Filter struct {
	PartnerID int64
	Status    string
	After     int64
	Limit     int
}

// Flags lists flags, oldest first.
func (s *Service) Flags(ctx context.Context, f Filter) ([]Flag, error) {
	if f.Status != "" && f.Status != StatusOpen && f.Status != StatusApproved && f.Status != StatusRejected {
		return nil, validation.New("status", "must be open, approved or rejected")
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Where("id > ?", f.After)
	if f.PartnerID > 0 {
		q = q.Where("partner_id = ?", f.PartnerID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	var rows []flagRow
	if err := q.Order("id").Limit(f.Limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list abuse flags: %w", err)
	}
	out := make([]Flag, len(rows))
	for i, r := range rows {
		out[i] = r.flag()
	}
	return out, nil
}

// Flag returns one flag; partnerID > 0 limits it to that partner's
// (another's is ErrFlagNotFound).
func (s *Service) Flag(ctx context.Context, id, partnerID int64) (Flag, error) {
	return FlagWith(s.db.WithContext(ctx), id, partnerID)
}

// FlagWith is Flag in the caller's transaction.
func FlagWith(tx *gorm.DB, id, partnerID int64) (Flag, error) {
	var r flagRow
	q := tx.Where("id = ?", id)
	if partnerID > 0 {
		q = q.Where("partner_id = ?", partnerID)
	}
	if err := q.Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Flag{}, fmt.Errorf("flag %d: %w", id, ErrFlagNotFound)
		}
		return Flag{}, err
	}
	return r.flag(), nil
}

// LockOpenFlag locks a flag for its review in the caller's transaction.
// Errors: ErrFlagNotFound, ErrFlagReviewed.
func LockOpenFlag(tx *gorm.DB, id int64) (Flag, error) {
	var r flagRow
	if err := tx.Raw(`SELECT * FROM abuse_flags WHERE id = ? FOR UPDATE`, id).Scan(&r).Error; err != nil {
		return Flag{}, err
	}
	if r.ID == 0 {
		return Flag{}, fmt.Errorf("flag %d: %w", id, ErrFlagNotFound)
	}
	if r.Status != StatusOpen {
		return Flag{}, fmt.Errorf("flag %d is %s: %w", id, r.Status, ErrFlagReviewed)
	}
	return r.flag(), nil
}

// CloseFlag records the review of a flag locked by LockOpenFlag.
func CloseFlag(tx *gorm.DB, id int64, status, actor, note string, now time.Time) error {
	return tx.Exec(`UPDATE abuse_flags SET status = ?, reviewed_at = ?, reviewed_by = ?, note = ? WHERE id = ?`,
		status, now.UTC(), actor, note, id).Error
}

// ScanRefunds flags, at every partner with an earn-refund-keep threshold,
// each member whose reversed points exceed the threshold's share of the
// points earned there over the last 90 days (once they earned at least
// RefundMinPoints). A member already flagged (open) is not flagged again.
// It returns the number of new flags; running it twice flags nobody twice.
func (s *Service) ScanRefunds(ctx context.Context) (int, error) {
	var rows []rulesRow
	if err := s.db.WithContext(ctx).Where("refund_share > 0").Order("partner_id").Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("scan refunds: %w", err)
	}
	now := s.now().UTC()
	since := now.AddDate(0, 0, -90)
	created := 0
	for _, r := range rows {
		totals, err := s.ledger.EarnReversals(ctx, r.PartnerID, since)
		if err != nil {
			return created, fmt.Errorf("scan refunds of partner %d: %w", r.PartnerID, err)
		}
		for _, t := range totals {
			if t.Earned <= 0 || t.Earned < r.RefundMinPoints ||
				!decimal.NewFromInt(t.Reversed).GreaterThan(r.RefundShare.Mul(decimal.NewFromInt(t.Earned))) {
				continue
			}
			res := s.db.WithContext(ctx).Exec(`INSERT INTO abuse_flags (partner_id, member_id, kind, rule, detail, points, status, created_at)
				VALUES (?, ?, 'member', 'refund_pattern', ?, ?, 'open', ?)
				ON CONFLICT (partner_id, member_id) WHERE kind = 'member' AND status = 'open' DO NOTHING`,
				r.PartnerID, t.MemberID, fmt.Sprintf("%d of %d points earned in 90 days reversed (threshold %s)",
					t.Reversed, t.Earned, r.RefundShare.String()), t.Reversed, now)
			if res.Error != nil {
				return created, fmt.Errorf("flag member %d: %w", t.MemberID, res.Error)
			}
			created += int(res.RowsAffected)
		}
	}
	return created, nil
}

// PruneCounters deletes counters of windows that ended over a year ago
// (the longest action-cap period).
func (s *Service) PruneCounters(ctx context.Context) error {
	return s.db.WithContext(ctx).Exec(`DELETE FROM abuse_counters WHERE window_start < ?`,
		s.now().UTC().AddDate(-1, 0, -1)).Error
}
