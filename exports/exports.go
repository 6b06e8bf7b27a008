// Package exports writes large CSV exports as job runs: the member base (all
// of it, or the members of a segment) and the ledger's transactions. A run
// reads its source in batches and writes the file into export_chunks as it
// goes, so memory stays constant whatever the size, and any `hub serve`
// process streams the finished file for download chunk by chunk.
package exports

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"encoding/json"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

// Job run kinds of exports. A members export's key is "all" or
// "segment:<id>"; a transactions export's is "all".
const (
	KindMembers      = "exports.members"
	KindTransactions = "exports.transactions"
)

// TypeExport writes an export as its job run. Never rename it.
const TypeExport = "exports:write"

// Errors.
var (
	ErrNotFound = errors.New("export not found")
	// ErrNotReady: the export's run has not finished its file.
	ErrNotReady = errors.New("export not ready")
)

// batch is how many rows an export reads at a time; chunkSize how many bytes
// of the file it writes per chunk row.
const (
	batch     = 1000
	chunkSize = 64 << 10
)

// Service starts exports, writes them and serves their files.
type Service struct {
	db        *gorm.DB
	members   *members.Service
	ledger    *ledger.Service
	programme *programme.Service
	campaigns *campaigns.Service
	runs      *jobs.Service
	now       func() time.Time
}

// NewService returns a Service over db.
func NewService(db *gorm.DB, m *members.Service, l *ledger.Service, p *programme.Service, c *campaigns.Service,
	runs *jobs.Service, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, members: m, ledger: l, programme: p, campaigns: c, runs: runs, now: now}
}

// Payload names the job run of an export; its kind and key say what to write.
type Payload struct {
	RunID int64 `json:"run_id"`
}

// StartMembers starts exporting the member base (segmentID 0) or the members
// of a segment. While the same export runs, that run is returned with
// started false. Errors: campaigns.ErrSegmentNotFound.
func (s *Service) StartMembers(ctx context.Context, segmentID int64, actor string) (jobs.Run, bool, error) {
	key := "all"
	if segmentID > 0 {
		if _, err := s.campaigns.GetSegment(ctx, segmentID); err != nil {
			return jobs.Run{}, false, err
		}
		key = "segment:" + strconv.FormatInt(segmentID, 10)
	}
	return s.start(ctx, KindMembers, key, actor)
}

// StartTransactions starts exporting every ledger transaction.
func (s *Service) StartTransactions(ctx context.Context, actor string) (jobs.Run, bool, error) {
	return s.start(ctx, KindTransactions, "all", actor)
}

func (s *Service) start(ctx context.Context, kind, key, actor string) (run jobs.Run, started bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		run, started, err = jobs.Start(tx, s.now(), jobs.Spec{Kind: kind, Key: key, StartedBy: actor, StaleAfter: 3 * time.Hour,
			Task: func(id int64) outbox.Message {
				return outbox.Message{TaskType: TypeExport, Queue: "low", Payload: Payload{RunID: id}}
			}})
		return err
	})
	if err != nil {
		return jobs.Run{}, false, fmt.Errorf("start export %s %s: %w", kind, key, err)
	}
	return run, started, nil
}

// List returns the newest export runs of both kinds, newest first.
func (s *Service) List(ctx context.Context, limit int) ([]jobs.Run, error) {
	var out []jobs.Run
	for _, k := range []string{KindMembers, KindTransactions} {
		rs, err := s.runs.List(ctx, jobs.Filter{Kind: k, Limit: limit})
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	// Merge the two newest-first lists by id.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID > out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// File is a finished export's file.
type File struct {
	RunID    int64  `json:"run_id"`
	Kind     string `json:"kind"`
	Filename string `json:"filename"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
}

// File returns the file of export run id. Errors: ErrNotFound (no export
// run has that id), ErrNotReady.
func (s *Service) File(ctx context.Context, id int64) (File, error) {
	run, err := s.runs.Get(ctx, id)
	if err != nil || (run.Kind != KindMembers && run.Kind != KindTransactions) {
		return File{}, fmt.Errorf("export %d: %w", id, ErrNotFound)
	}
	var rows []struct {
		Kind, Filename string
		Rows, Bytes    int64
		CompletedAt    *time.Time
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT kind, filename, rows, bytes, completed_at FROM export_files WHERE run_id = ?`, id).
		Scan(&rows).Error; err != nil {
		return File{}, err
	}
	if len(rows) == 0 || rows[0].CompletedAt == nil || run.State != jobs.Succeeded {
		return File{}, fmt.Errorf("export %d: %w", id, ErrNotReady)
	}
	r := rows[0]
	return File{RunID: id, Kind: r.Kind, Filename: r.Filename, Rows: r.Rows, Bytes: r.Bytes}, nil
}

// Stream writes the file of export run id to w chunk by chunk. Errors: as
// File.
func (s *Service) Stream(ctx context.Context, id int64, w io.Writer) error {
	if _, err := s.File(ctx, id); err != nil {
		return err
	}
	for seq := 0; ; seq++ {
		var data [][]byte
		if err := s.db.WithContext(ctx).Raw(`SELECT data FROM export_chunks WHERE run_id = ? AND seq = ?`, id, seq).
			Scan(&data).Error; err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		if _, err := w.Write(data[0]); err != nil {
			return err
		}
	}
}

// Result is what an export run records.
type Result struct {
	Filename string `json:"filename"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
}

// chunks is the file being written: bytes are buffered and stored as a
// chunk row each time chunkSize is reached.
type chunks struct {
	ctx   context.Context
	db    *gorm.DB
	runID int64
	seq   int
	buf   bytes.Buffer
	bytes int64
}

func (c *chunks) Write(p []byte) (int, error) {
	c.buf.Write(p)
	c.bytes += int64(len(p))
	if c.buf.Len() >= chunkSize {
		return len(p), c.flush()
	}
	return len(p), nil
}

func (c *chunks) flush() error {
	if c.buf.Len() == 0 {
		return nil
	}
	if err := c.db.WithContext(c.ctx).Exec(`INSERT INTO export_chunks (run_id, seq, data) VALUES (?, ?, ?)`,
		c.runID, c.seq, c.buf.Bytes()).Error; err != nil {
		return fmt.Errorf("write export chunk %d: %w", c.seq, err)
	}
	c.seq++
	c.buf.Reset()
	return nil
}

// Write writes the file of export run (its kind and key say what), telling
// progress as it goes. It starts the file afresh, so a retried run writes
// it whole again.
func (s *Service) Write(ctx context.Context, run jobs.Run, progress *jobs.Progress) (Result, error) {
	kind := "members"
	if run.Kind == KindTransactions {
		kind = "transactions"
	}
	name := fmt.Sprintf("%s-%s-%d.csv", kind, s.now().UTC().Format("20060102"), run.ID)
	db := s.db.WithContext(ctx)
	if err := db.Exec(`DELETE FROM export_files WHERE run_id = ?`, run.ID).Error; err != nil {
		return Result{}, err
	}
	if err := db.Exec(`INSERT INTO export_files (run_id, kind, filename, created_at) VALUES (?, ?, ?, ?)`,
		run.ID, kind, name, s.now().UTC()).Error; err != nil {
		return Result{}, err
	}
	out := &chunks{ctx: ctx, db: s.db, runID: run.ID}
	w := csv.NewWriter(out)
	var rows int64
	var err error
	if run.Kind == KindTransactions {
		rows, err = s.writeTransactions(ctx, w, progress)
	} else {
		rows, err = s.writeMembers(ctx, run.Key, w, progress)
	}
	if err != nil {
		return Result{}, err
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return Result{}, err
	}
	if err := out.flush(); err != nil {
		return Result{}, err
	}
	if err := db.Exec(`UPDATE export_files SET rows = ?, bytes = ?, completed_at = ? WHERE run_id = ?`,
		rows, out.bytes, s.now().UTC(), run.ID).Error; err != nil {
		return Result{}, err
	}
	return Result{Filename: name, Rows: rows, Bytes: out.bytes}, nil
}

var memberHeader = []string{"member_id", "status", "card_number", "given_name", "family_name", "email", "phone", "birth_date",
	"locale", "marketing_consent", "source_partner_id", "enrolled_at", "tier", "balance"}

func (s *Service) writeMembers(ctx context.Context, key string, w *csv.Writer, progress *jobs.Progress) (int64, error) {
	if err := w.Write(memberHeader); err != nil {
		return 0, err
	}
	var rows int64
	write := func(ms []members.Member, total int64) error {
		if len(ms) == 0 {
			return nil
		}
		ids := make([]int64, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		bal, err := s.ledger.Balances(ctx, ids)
		if err != nil {
			return err
		}
		tiers, err := s.programme.MemberTiers(ctx, ids)
		if err != nil {
			return err
		}
		for _, m := range ms {
			p := m.Profile
			if err := w.Write([]string{strconv.FormatInt(m.ID, 10), string(m.Status), m.CardNumber, p.GivenName, p.FamilyName,
				p.Email, p.Phone, p.BirthDate, p.Locale, strconv.FormatBool(m.MarketingConsent), optID(m.SourcePartnerID),
				m.CreatedAt.UTC().Format(time.RFC3339), tiers[m.ID], strconv.FormatInt(int64(bal[m.ID]), 10)}); err != nil {
				return err
			}
		}
		rows += int64(len(ms))
		progress.Set(rows, max(total, rows), "writing members")
		return nil
	}
	if key == "all" {
		total, err := s.members.CountAll(ctx)
		if err != nil {
			return 0, err
		}
		progress.Set(0, total, "writing members")
		var after int64
		for {
			ms, err := s.members.Page(ctx, after, batch)
			if err != nil || len(ms) == 0 {
				return rows, err
			}
			after = ms[len(ms)-1].ID
			if err := write(ms, total); err != nil {
				return rows, err
			}
		}
	}
	segID, err := strconv.ParseInt(key[len("segment:"):], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("export key %q: %w", key, asynq.SkipRetry)
	}
	seg, err := s.campaigns.GetSegment(ctx, segID)
	if err != nil {
		return 0, err
	}
	total, err := s.campaigns.Count(ctx, seg.Definition)
	if err != nil {
		return 0, err
	}
	progress.Set(0, total, "writing members")
	err = s.campaigns.SegmentMembers(ctx, segID, func(ids []int64) error {
		ms, err := s.members.Many(ctx, ids)
		if err != nil {
			return err
		}
		return write(ms, total)
	})
	return rows, err
}

var transactionHeader = []string{"transaction_id", "type", "posted_at", "occurred_at", "member_id", "counter_member_id",
	"partner_id", "points", "external_ref", "reverses_id", "reason", "details"}

func (s *Service) writeTransactions(ctx context.Context, w *csv.Writer, progress *jobs.Progress) (int64, error) {
	if err := w.Write(transactionHeader); err != nil {
		return 0, err
	}
	total, err := s.ledger.TransactionCount(ctx, time.Time{}, time.Time{})
	if err != nil {
		return 0, err
	}
	progress.Set(0, total, "writing transactions")
	var rows int64
	cursor := ""
	for {
		ts, next, err := s.ledger.List(ctx, ledger.Filter{Cursor: cursor, Limit: 500})
		if err != nil {
			return rows, err
		}
		for _, t := range ts {
			details := ""
			if len(t.Details) > 0 {
				details = string(t.Details)
			}
			if err := w.Write([]string{strconv.FormatInt(t.ID, 10), string(t.Type), t.PostedAt.UTC().Format(time.RFC3339Nano),
				t.OccurredAt.UTC().Format(time.RFC3339Nano), optID(t.MemberID), optID(t.CounterMemberID), optID(t.PartnerID),
				strconv.FormatInt(int64(t.Points), 10), t.ExternalRef, optID(t.ReversesID), t.Reason, details}); err != nil {
				return rows, err
			}
		}
		rows += int64(len(ts))
		progress.Set(rows, max(total, rows), "writing transactions")
		if next == "" {
			return rows, nil
		}
		cursor = next
	}
}

func optID(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// HandleExport returns the handler of TypeExport: the export's file written
// under its job run. A bad payload is not retried; a retry writes the file
// afresh.
func HandleExport(s *Service, runs *jobs.Service) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p Payload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.RunID <= 0 {
			return fmt.Errorf("%s: bad payload %q: %w", TypeExport, t.Payload(), asynq.SkipRetry)
		}
		run, err := runs.Get(ctx, p.RunID)
		if err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return fmt.Errorf("%s: %v: %w", TypeExport, err, asynq.SkipRetry)
			}
			return fmt.Errorf("%s: %w", TypeExport, err)
		}
		err = runs.Execute(ctx, p.RunID, func(ctx context.Context, pr *jobs.Progress) (any, error) {
			res, err := s.Write(ctx, run, pr)
			if errors.Is(err, campaigns.ErrSegmentNotFound) {
				err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
			}
			return res, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", TypeExport, err)
		}
		return nil
	}
}
