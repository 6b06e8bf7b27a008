package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

// batchSize is how many members a segment's evaluation and a campaign run
// take at a time: memory stays constant whatever the size of the base.
const batchSize = 1000

// Service manages segments and campaigns and runs campaigns.
type Service struct {
	db        *gorm.DB
	members   *members.Service
	ledger    *ledger.Service
	programme *programme.Service
	runs      *jobs.Service
	now       func() time.Time
}

// NewService returns a Service over db.
func NewService(db *gorm.DB, m *members.Service, l *ledger.Service, p *programme.Service, runs *jobs.Service,
	now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, members: m, ledger: l, programme: p, runs: runs, now: now}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Segment is a named definition.
type Segment struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Definition Definition `json:"definition"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

type segmentRow struct {
	ID         int64
	Name       string
	Definition string
	CreatedBy  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func (r segmentRow) segment() (Segment, error) {
	out := Segment{ID: r.ID, Name: r.Name, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Definition), &out.Definition); err != nil {
		return Segment{}, fmt.Errorf("segment %d: stored definition: %w", r.ID, err)
	}
	if out.Definition.All == nil {
		out.Definition.All = []Condition{}
	}
	return out, nil
}

func checkSegment(name string, d Definition, now time.Time) error {
	var v validation.Error
	v.Check(strings.TrimSpace(name) != "" && len(name) <= 200, "name", "is required (at most 200 characters)")
	if _, err := compile(d, now); err != nil {
		if ve, ok := err.(*validation.Error); ok {
			v.Fields = append(v.Fields, ve.Fields...)
		}
	}
	return v.Err()
}

// SaveSegment creates a segment (id 0) or replaces the name and definition
// of segment id. Errors: *validation.Error, ErrSegmentNotFound.
func (s *Service) SaveSegment(ctx context.Context, id int64, name string, d Definition, actor string) (Segment, error) {
	now := s.clock()
	name = strings.TrimSpace(name)
	if err := checkSegment(name, d, now); err != nil {
		return Segment{}, err
	}
	if d.All == nil {
		d.All = []Condition{}
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return Segment{}, err
	}
	var rows []segmentRow
	db := s.db.WithContext(ctx)
	if id == 0 {
		err = db.Raw(`INSERT INTO segments (name, definition, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			RETURNING id, name, definition::text AS definition, created_by, created_at, updated_at`, name, string(raw), actor, now, now).Scan(&rows).Error
	} else {
		err = db.Raw(`UPDATE segments SET name = ?, definition = ?, updated_at = ? WHERE id = ?
			RETURNING id, name, definition::text AS definition, created_by, created_at, updated_at`, name, string(raw), now, id).Scan(&rows).Error
	}
	if err != nil {
		return Segment{}, fmt.Errorf("save segment: %w", err)
	}
	if len(rows) == 0 {
		return Segment{}, fmt.Errorf("segment %d: %w", id, ErrSegmentNotFound)
	}
	return rows[0].segment()
}

// GetSegment returns segment id. Errors: ErrSegmentNotFound.
func (s *Service) GetSegment(ctx context.Context, id int64) (Segment, error) {
	var rows []segmentRow
	if err := s.db.WithContext(ctx).Raw(`SELECT id, name, definition::text AS definition, created_by, created_at, updated_at
		FROM segments WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return Segment{}, err
	}
	if len(rows) == 0 {
		return Segment{}, fmt.Errorf("segment %d: %w", id, ErrSegmentNotFound)
	}
	return rows[0].segment()
}

// Segments lists the segments, newest first, at most 200.
func (s *Service) Segments(ctx context.Context) ([]Segment, error) {
	var rows []segmentRow
	if err := s.db.WithContext(ctx).Raw(`SELECT id, name, definition::text AS definition, created_by, created_at, updated_at
		FROM segments ORDER BY id DESC LIMIT 200`).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Segment, 0, len(rows))
	for _, r := range rows {
		sg, err := r.segment()
		if err != nil {
			return nil, err
		}
		out = append(out, sg)
	}
	return out, nil
}

// Count returns how many active members d selects now: the live count of
// the console's editor and of GET .../segments/{id}/count. Errors:
// *validation.Error.
func (s *Service) Count(ctx context.Context, d Definition) (int64, error) {
	p, err := compile(d, s.clock())
	if err != nil {
		return 0, err
	}
	if p.ledger.Empty() && !p.hasTiers {
		return s.members.Count(ctx, p.members)
	}
	var n int64
	err = s.eachBatch(ctx, p, func(ids []int64) error { n += int64(len(ids)); return nil })
	return n, err
}

// eachBatch calls fn with the members p selects, batch by batch in id
// order (a batch may be empty).
func (s *Service) eachBatch(ctx context.Context, p plan, fn func(ids []int64) error) error {
	var after int64
	for {
		ids, err := s.members.Select(ctx, p.members, after, batchSize)
		if err != nil || len(ids) == 0 {
			return err
		}
		after = ids[len(ids)-1]
		if ids, err = s.ledger.SelectMembers(ctx, ids, p.ledger); err != nil {
			return err
		}
		if p.hasTiers && len(ids) > 0 {
			tiers, err := s.programme.MemberTiers(ctx, ids)
			if err != nil {
				return err
			}
			kept := ids[:0]
			for _, id := range ids {
				if p.keepTier(tiers[id]) {
					kept = append(kept, id)
				}
			}
			ids = kept
		}
		if err := fn(ids); err != nil {
			return err
		}
	}
}

// SegmentMembers calls fn with the members segment id selects now, batch by
// batch in id order (exports). Errors: ErrSegmentNotFound.
func (s *Service) SegmentMembers(ctx context.Context, id int64, fn func(ids []int64) error) error {
	sg, err := s.GetSegment(ctx, id)
	if err != nil {
		return err
	}
	p, err := compile(sg.Definition, s.clock())
	if err != nil {
		return err
	}
	return s.eachBatch(ctx, p, fn)
}
