package campaigns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

// Kinds of campaigns: what each member of the audience is granted.
const (
	KindPoints = "points"
	KindTier   = "tier"
)

// Audiences of campaigns.
const (
	AudienceSegment = "segment"
	AudienceList    = "list"
)

// KindRun is the job run kind of a campaign run; its key is the campaign id.
const KindRun = "campaigns.run"

// Scope is the ledger idempotency scope of campaign grants.
const Scope = "campaign"

// maxPoints bounds the points one member is granted by one campaign.
const maxPoints = 10_000_000

// Campaign is a grant to an audience. Points is each member's points for a
// segment audience (a list gives each row's own); BudgetPoints caps the
// points granted over all runs and SpentPoints is what they granted.
type Campaign struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Kind         string     `json:"kind"`
	Audience     string     `json:"audience"`
	SegmentID    int64      `json:"segment_id,omitempty"`
	Points       int64      `json:"points"`
	TierCode     string     `json:"tier_code,omitempty"`
	TierEndsAt   *time.Time `json:"tier_ends_at,omitempty"`
	BudgetPoints int64      `json:"budget_points"`
	SpentPoints  int64      `json:"spent_points"`
	Reason       string     `json:"reason"`
	CreatedBy    string     `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	// ListSize is the number of members of a list audience.
	ListSize int64 `json:"list_size,omitempty"`
}

type campaignRow struct {
	ID           int64
	Name         string
	Kind         string
	Audience     string
	SegmentID    *int64
	Points       int64
	TierCode     *string
	TierEndsAt   *time.Time
	BudgetPoints int64
	SpentPoints  int64
	Reason       string
	CreatedBy    string
	CreatedAt    time.Time
	ListSize     int64
}

const campaignColumns = `c.id, c.name, c.kind, c.audience, c.segment_id, c.points, c.tier_code, c.tier_ends_at, c.budget_points,
	c.spent_points, c.reason, c.created_by, c.created_at,
	(SELECT count(*) FROM campaign_list_members l WHERE l.campaign_id = c.id) AS list_size`

func (r campaignRow) campaign() Campaign {
	out := Campaign{ID: r.ID, Name: r.Name, Kind: r.Kind, Audience: r.Audience, SegmentID: database.Deref(r.SegmentID),
		Points: r.Points, TierCode: database.Deref(r.TierCode), BudgetPoints: r.BudgetPoints, SpentPoints: r.SpentPoints,
		Reason: r.Reason, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), ListSize: r.ListSize}
	if r.TierEndsAt != nil {
		t := r.TierEndsAt.UTC()
		out.TierEndsAt = &t
	}
	return out
}

// NewCampaign is a campaign to create over a segment.
type NewCampaign struct {
	Name         string     `json:"name"`
	Kind         string     `json:"kind"`
	SegmentID    int64      `json:"segment_id"`
	Points       int64      `json:"points"`
	TierCode     string     `json:"tier_code"`
	TierEndsAt   *time.Time `json:"tier_ends_at"`
	BudgetPoints int64      `json:"budget_points"`
	Reason       string     `json:"reason"`
}

func (n *NewCampaign) check(v *validation.Error, now time.Time) {
	n.Name, n.Reason, n.TierCode = strings.TrimSpace(n.Name), strings.TrimSpace(n.Reason), strings.TrimSpace(n.TierCode)
	v.Check(n.Name != "" && len(n.Name) <= 200, "name", "is required (at most 200 characters)")
	v.Check(n.Reason != "" && len(n.Reason) <= 500, "reason", "is required (at most 500 characters)")
	switch n.Kind {
	case KindPoints:
		v.Check(n.BudgetPoints > 0 && n.BudgetPoints <= 1_000_000_000, "budget_points", "must be a whole number of points from 1 to 1000000000")
		v.Check(n.TierCode == "", "tier_code", "is only for tier campaigns")
	case KindTier:
		v.Check(tierCode.MatchString(n.TierCode), "tier_code", "is required: a tier code")
		v.Check(n.Points == 0, "points", "is only for points campaigns")
		v.Check(n.BudgetPoints == 0, "budget_points", "is only for points campaigns")
		v.Check(n.TierEndsAt == nil || n.TierEndsAt.After(now), "tier_ends_at", "must be in the future")
	default:
		v.Add("kind", "must be points or tier")
	}
}

// CreateCampaign creates a campaign over a segment; nothing is granted until
// it runs. Errors: *validation.Error, ErrSegmentNotFound.
func (s *Service) CreateCampaign(ctx context.Context, n NewCampaign, actor string) (Campaign, error) {
	now := s.clock()
	var v validation.Error
	n.check(&v, now)
	v.Check(n.SegmentID > 0, "segment_id", "is required")
	if n.Kind == KindPoints {
		v.Check(n.Points > 0 && n.Points <= maxPoints, "points", "must be a whole number of points from 1 to 10000000")
	}
	if err := v.Err(); err != nil {
		return Campaign{}, err
	}
	if _, err := s.GetSegment(ctx, n.SegmentID); err != nil {
		return Campaign{}, err
	}
	var id int64
	if err := s.db.WithContext(ctx).Raw(`INSERT INTO campaigns (name, kind, audience, segment_id, points, tier_code, tier_ends_at,
		budget_points, reason, created_by, created_at) VALUES (?, ?, 'segment', ?, ?, NULLIF(?, ''), ?, ?, ?, ?, ?) RETURNING id`,
		n.Name, n.Kind, n.SegmentID, n.Points, n.TierCode, n.TierEndsAt, n.BudgetPoints, n.Reason, actor, now).Scan(&id).Error; err != nil {
		return Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	return s.Campaign(ctx, id)
}

// Campaign returns campaign id. Errors: ErrCampaignNotFound.
func (s *Service) Campaign(ctx context.Context, id int64) (Campaign, error) {
	var rows []campaignRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+campaignColumns+` FROM campaigns c WHERE c.id = ?`, id).Scan(&rows).Error; err != nil {
		return Campaign{}, err
	}
	if len(rows) == 0 {
		return Campaign{}, fmt.Errorf("campaign %d: %w", id, ErrCampaignNotFound)
	}
	return rows[0].campaign(), nil
}

// Campaigns lists campaigns newest first, at most 200.
func (s *Service) Campaigns(ctx context.Context) ([]Campaign, error) {
	var rows []campaignRow
	if err := s.db.WithContext(ctx).Raw(`SELECT ` + campaignColumns + ` FROM campaigns c ORDER BY c.id DESC LIMIT 200`).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Campaign, len(rows))
	for i, r := range rows {
		out[i] = r.campaign()
	}
	return out, nil
}

// target is one member of a campaign's audience and what it is granted.
type target struct {
	MemberID int64
	Points   int64
	Reason   string
}

// eachTargets calls fn with the campaign's audience, batch by batch in member
// order: the segment's members as it selects them now, or the list's rows.
func (s *Service) eachTargets(ctx context.Context, c Campaign, fn func([]target) error) error {
	if c.Audience == AudienceSegment {
		sg, err := s.GetSegment(ctx, c.SegmentID)
		if err != nil {
			return err
		}
		p, err := compile(sg.Definition, s.clock())
		if err != nil {
			return err
		}
		return s.eachBatch(ctx, p, func(ids []int64) error {
			ts := make([]target, len(ids))
			for i, id := range ids {
				ts[i] = target{MemberID: id, Points: c.Points, Reason: c.Reason}
			}
			return fn(ts)
		})
	}
	var after int64
	for {
		var ts []target
		if err := s.db.WithContext(ctx).Raw(`SELECT member_id, points, reason FROM campaign_list_members
			WHERE campaign_id = ? AND member_id > ? ORDER BY member_id LIMIT ?`, c.ID, after, batchSize).Scan(&ts).Error; err != nil {
			return err
		}
		if len(ts) == 0 {
			return nil
		}
		after = ts[len(ts)-1].MemberID
		if err := fn(ts); err != nil {
			return err
		}
	}
}

// granted returns which of ids the campaign has granted already.
func (s *Service) granted(ctx context.Context, campaignID int64, ids []int64) (map[int64]bool, error) {
	var done []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT member_id FROM campaign_grants WHERE campaign_id = ?
		AND member_id = ANY(CAST(? AS bigint[]))`, campaignID, database.Int64Array(ids)).Scan(&done).Error; err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(done))
	for _, id := range done {
		out[id] = true
	}
	return out, nil
}

// Preview is what running a campaign now would grant: its audience, those
// already granted, and of the rest how many fit in what is left of the
// budget (in member order, as a run takes them) and at what cost.
type Preview struct {
	Members        int64 `json:"members"`
	AlreadyGranted int64 `json:"already_granted"`
	ToGrant        int64 `json:"to_grant"`
	OverBudget     int64 `json:"over_budget"`
	// CostUncapped is the points the members to grant would get with no
	// budget; Cost what they get within it.
	CostUncapped int64 `json:"cost_uncapped"`
	Cost         int64 `json:"cost"`
	BudgetPoints int64 `json:"budget_points"`
	BudgetLeft   int64 `json:"budget_left"`
}

// Preview computes the campaign's Preview. Errors: ErrCampaignNotFound.
func (s *Service) Preview(ctx context.Context, id int64) (Preview, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return Preview{}, err
	}
	pv := Preview{BudgetPoints: c.BudgetPoints, BudgetLeft: c.BudgetPoints - c.SpentPoints}
	left := pv.BudgetLeft
	err = s.eachTargets(ctx, c, func(ts []target) error {
		ids := make([]int64, len(ts))
		for i, t := range ts {
			ids[i] = t.MemberID
		}
		done, err := s.granted(ctx, c.ID, ids)
		if err != nil {
			return err
		}
		for _, t := range ts {
			pv.Members++
			switch {
			case done[t.MemberID]:
				pv.AlreadyGranted++
			case c.Kind == KindPoints && t.Points > left:
				pv.OverBudget++
				pv.CostUncapped += t.Points
			default:
				pv.ToGrant++
				if c.Kind == KindPoints {
					pv.CostUncapped += t.Points
					pv.Cost += t.Points
					left -= t.Points
				}
			}
		}
		return nil
	})
	return pv, err
}

// Report is the result of a campaign run.
type Report struct {
	CampaignID     int64 `json:"campaign_id"`
	Members        int64 `json:"members"`
	Granted        int64 `json:"granted"`
	AlreadyGranted int64 `json:"already_granted"`
	SkippedBudget  int64 `json:"skipped_budget"`
	Failed         int64 `json:"failed"`
	// Cost is the points this run granted; Spent what the campaign has
	// granted over all its runs, never above Budget.
	Cost     int64     `json:"cost"`
	Spent    int64     `json:"spent"`
	Budget   int64     `json:"budget"`
	Failures []Failure `json:"failures,omitempty"`
}

// Failure is a member a run could not grant, and why.
type Failure struct {
	MemberID int64  `json:"member_id"`
	Error    string `json:"error"`
}

// maxFailures is how many failures a report lists (all are counted).
const maxFailures = 50

// campaignStaleAfter: a run unheard of for this long is given up by the next
// start (longer than the task's timeout, cmd/hub/worker.go).
const campaignStaleAfter = 3 * time.Hour

// StartRun starts running campaign id in the background and returns its job
// run; a run already queued or running is returned with started false. key
// is the request's Idempotency-Key under scope: the same key answers the run
// it started, on another campaign it is ErrKeyReused. Errors:
// ErrCampaignNotFound, ErrKeyReused.
func (s *Service) StartRun(ctx context.Context, id int64, actor, scope, key string) (run jobs.Run, started bool, err error) {
	if _, err := s.Campaign(ctx, id); err != nil {
		return jobs.Run{}, false, err
	}
	now := s.clock()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if key != "" {
			var prior []struct{ CampaignID, RunID int64 }
			// Lock the key: a concurrent start with the same key waits and
			// then replays.
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(?, 480))`, scope+" "+key).Error; err != nil {
				return err
			}
			if err := tx.Raw(`SELECT campaign_id, run_id FROM campaign_starts WHERE scope = ? AND key = ?`, scope, key).
				Scan(&prior).Error; err != nil {
				return err
			}
			if len(prior) > 0 {
				if prior[0].CampaignID != id {
					return fmt.Errorf("start campaign %d: %w", id, ErrKeyReused)
				}
				run, err = s.runs.Get(ctx, prior[0].RunID)
				return err
			}
		}
		run, started, err = jobs.Start(tx, now, jobs.Spec{Kind: KindRun, Key: fmt.Sprint(id), StartedBy: actor,
			StaleAfter: campaignStaleAfter, Task: func(runID int64) outbox.Message {
				return outbox.Message{TaskType: TypeRun, Queue: "low", Payload: RunPayload{CampaignID: id, RunID: runID}}
			}})
		if err != nil || key == "" {
			return err
		}
		return tx.Exec(`INSERT INTO campaign_starts (scope, key, campaign_id, run_id, created_at) VALUES (?, ?, ?, ?, ?)`,
			scope, key, id, run.ID, now).Error
	})
	if err != nil {
		return jobs.Run{}, false, fmt.Errorf("start campaign %d: %w", id, err)
	}
	return run, started, nil
}

// LatestRun returns the campaign's newest run; found is false before its
// first.
func (s *Service) LatestRun(ctx context.Context, id int64) (jobs.Run, bool, error) {
	return s.runs.Latest(ctx, KindRun, fmt.Sprint(id))
}

// Run grants the campaign to its audience and reports what it did, telling
// progress (may be nil) as it goes. It is the work of a campaign's job run
// and safe to run any number of times, also at once: each member is granted
// once, and never beyond the budget.
func (s *Service) Run(ctx context.Context, id int64, actor string, progress *jobs.Progress) (Report, error) {
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return Report{}, err
	}
	rep := Report{CampaignID: c.ID, Budget: c.BudgetPoints}
	// The audience's size, for the progress bar: a segment is counted first.
	var total int64
	if c.Audience == AudienceList {
		total = c.ListSize
	} else {
		sg, err := s.GetSegment(ctx, c.SegmentID)
		if err != nil {
			return Report{}, err
		}
		if total, err = s.Count(ctx, sg.Definition); err != nil {
			return Report{}, err
		}
	}
	progress.Set(0, total, "granting")
	left := c.BudgetPoints - c.SpentPoints // what this run last saw; only ever shrinks
	err = s.eachTargets(ctx, c, func(ts []target) error {
		var status map[int64]members.Member
		if c.Audience == AudienceList {
			ids := make([]int64, len(ts))
			for i, t := range ts {
				ids[i] = t.MemberID
			}
			ms, err := s.members.Many(ctx, ids)
			if err != nil {
				return err
			}
			status = make(map[int64]members.Member, len(ms))
			for _, m := range ms {
				status[m.ID] = m
			}
		}
		ids := make([]int64, len(ts))
		for i, t := range ts {
			ids[i] = t.MemberID
		}
		done, err := s.granted(ctx, c.ID, ids)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if err := ctx.Err(); err != nil {
				return err
			}
			rep.Members++
			if done[t.MemberID] {
				rep.AlreadyGranted++
				continue
			}
			if status != nil {
				if err := members.CanTransact(status[t.MemberID]); err != nil {
					rep.fail(t.MemberID, err)
					continue
				}
			}
			if c.Kind == KindPoints && t.Points > left {
				rep.SkippedBudget++
				continue
			}
			spent, err := s.grant(ctx, c, t, actor)
			switch {
			case errors.Is(err, errAlreadyGranted):
				rep.AlreadyGranted++
			case errors.Is(err, errOverBudget):
				rep.SkippedBudget++
				left = min(left, c.BudgetPoints-spent)
			case err != nil:
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rep.fail(t.MemberID, err)
			default:
				rep.Granted++
				if c.Kind == KindPoints {
					rep.Cost += t.Points
					left = min(left, c.BudgetPoints-spent)
				}
			}
		}
		progress.Set(rep.Members, max(total, rep.Members), "granting")
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("run campaign %d: %w", id, err)
	}
	after, err := s.Campaign(ctx, id)
	if err != nil {
		return rep, err
	}
	rep.Spent = after.SpentPoints
	return rep, nil
}

func (r *Report) fail(memberID int64, err error) {
	r.Failed++
	if len(r.Failures) < maxFailures {
		r.Failures = append(r.Failures, Failure{MemberID: memberID, Error: err.Error()})
	}
}

var (
	errAlreadyGranted = errors.New("already granted")
	errOverBudget     = errors.New("over budget")
)

// grant grants t in one database transaction: the grant row first (a second
// run waits here for the first's commit and then finds it), then the budget,
// then the ledger posting or tier grant. It returns the campaign's spent
// points as the budget update saw them (0 when it did not get that far).
// Errors: errAlreadyGranted, errOverBudget, the ledger's or programme's.
func (s *Service) grant(ctx context.Context, c Campaign, t target, actor string) (spent int64, err error) {
	now := s.clock()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var claimed []int64
		if err := tx.Raw(`INSERT INTO campaign_grants (campaign_id, member_id, points, granted_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING RETURNING member_id`, c.ID, t.MemberID, t.Points, now).Scan(&claimed).Error; err != nil {
			return err
		}
		if len(claimed) == 0 {
			return errAlreadyGranted
		}
		if c.Kind == KindTier {
			_, err := s.programme.GrantTierIn(ctx, tx, programme.Grant{MemberID: t.MemberID, TierCode: c.TierCode,
				Reason: fmt.Sprintf("campaign %d: %s", c.ID, t.Reason), Actor: actor, EndsAt: c.TierEndsAt})
			return err
		}
		var after []int64
		if err := tx.Raw(`UPDATE campaigns SET spent_points = spent_points + ? WHERE id = ? AND spent_points + ? <= budget_points
			RETURNING spent_points`, t.Points, c.ID, t.Points).Scan(&after).Error; err != nil {
			return err
		}
		if len(after) == 0 {
			if err := tx.Raw(`SELECT spent_points FROM campaigns WHERE id = ?`, c.ID).Scan(&spent).Error; err != nil {
				return err
			}
			return errOverBudget
		}
		spent = after[0]
		if t.Points == 0 {
			return nil
		}
		expires, err := s.programme.EarnExpiry(ctx, now)
		if err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"campaign_id": c.ID, "campaign": c.Name, "funded_by": "operator",
			"reason": t.Reason, "actor": actor})
		key := fmt.Sprintf("%d:%d", c.ID, t.MemberID)
		tr, err := s.ledger.In(tx).Earn(ctx, ledger.EarnRequest{
			Idem:     ledger.Idempotency{Scope: Scope, Key: key, RequestHash: []byte(key)},
			MemberID: t.MemberID, OperatorFunded: ledger.Points(t.Points), OccurredAt: now, ExpiresAt: expires,
			ExternalRef: fmt.Sprintf("campaign:%d", c.ID), Details: details})
		if err != nil {
			return err
		}
		return tx.Exec(`UPDATE campaign_grants SET transaction_id = ? WHERE campaign_id = ? AND member_id = ?`,
			tr.ID, c.ID, t.MemberID).Error
	})
	return spent, err
}
