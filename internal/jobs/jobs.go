package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/outbox"
)

// State is where a run is in its life.
type State string

// States of a run. Queued and running runs are active: at most one per
// (kind, key).
const (
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
)

// ErrNotFound: no run has that id.
var ErrNotFound = errors.New("job run not found")

// Run is one run of long work.
type Run struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Key       string          `json:"key"`
	State     State           `json:"state"`
	Done      int64           `json:"done"`
	Total     int64           `json:"total"`
	Phase     string          `json:"phase"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
	Attempts  int             `json:"attempts"`
	StartedBy string          `json:"started_by"`
	CreatedAt time.Time       `json:"created_at"`
	StartedAt *time.Time      `json:"started_at,omitempty"`
	// FinishedAt is set once the run succeeded or failed.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// Active reports whether the run is queued or running.
func (r Run) Active() bool { return r.State == Queued || r.State == Running }

// Percent is the share of the work done, 0 to 100 (100 once succeeded).
func (r Run) Percent() int64 {
	switch {
	case r.State == Succeeded:
		return 100
	case r.Total <= 0:
		return 0
	}
	return min(100, r.Done*100/r.Total)
}

type row struct {
	ID         int64
	Kind       string
	Key        string
	State      string
	Done       int64
	Total      int64
	Phase      string
	Result     *string
	Error      *string
	Attempts   int
	StartedBy  string
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
	UpdatedAt  time.Time
}

const columns = `id, kind, key, state, done, total, phase, result::text AS result, error, attempts, started_by,
	created_at, started_at, finished_at, updated_at`

func (r row) run() Run {
	out := Run{ID: r.ID, Kind: r.Kind, Key: r.Key, State: State(r.State), Done: r.Done, Total: r.Total, Phase: r.Phase,
		Attempts: r.Attempts, StartedBy: r.StartedBy, CreatedAt: r.CreatedAt.UTC(), StartedAt: utc(r.StartedAt),
		FinishedAt: utc(r.FinishedAt), UpdatedAt: r.UpdatedAt.UTC()}
	if r.Result != nil {
		out.Result = json.RawMessage(*r.Result)
	}
	if r.Error != nil {
		out.Error = *r.Error
	}
	return out
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Spec is a run to start: its kind (a domain's constant, "settlement.close"),
// its key (what it works on, "2026-11"), who starts it, and the outbox
// message that queues its task, built from the new run's id.
type Spec struct {
	Kind, Key, StartedBy string
	Task                 func(runID int64) outbox.Message
	// StaleAfter, when set, is how long an active run may go without a
	// word (no progress, no attempt) before a new start gives it up as
	// abandoned (its task lost, say) and starts afresh; its task, should
	// it still run, then finds the run finished and does nothing. Make it
	// longer than the task's timeout.
	StaleAfter time.Duration
}

// Start records a queued run of spec in tx and the outbox message that runs
// it. When a run of the same kind and key is queued or running already, it
// returns that run with started false and writes nothing (unless the run is
// stale: Spec.StaleAfter).
func Start(tx *gorm.DB, now time.Time, spec Spec) (run Run, started bool, err error) {
	now = now.UTC()
	if spec.StaleAfter > 0 {
		if err := tx.Exec(`UPDATE job_runs SET state = 'failed', error = ?, finished_at = ?, updated_at = ?
			WHERE kind = ? AND key = ? AND state IN ('queued', 'running') AND updated_at < ?`,
			"abandoned: nothing heard of it for "+spec.StaleAfter.String(), now, now, spec.Kind, spec.Key, now.Add(-spec.StaleAfter)).Error; err != nil {
			return Run{}, false, fmt.Errorf("start %s %s: %w", spec.Kind, spec.Key, err)
		}
	}
	for attempt := 0; attempt < 3; attempt++ {
		var r row
		// ON CONFLICT on the partial unique index: a concurrent start of the
		// same (kind, key) waits for the other transaction and then inserts
		// nothing, reading its run below.
		res := tx.Raw(`INSERT INTO job_runs (kind, key, started_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (kind, key) WHERE state IN ('queued', 'running') DO NOTHING RETURNING `+columns,
			spec.Kind, spec.Key, spec.StartedBy, now, now).Scan(&r)
		if res.Error != nil {
			return Run{}, false, fmt.Errorf("start %s %s: %w", spec.Kind, spec.Key, res.Error)
		}
		if r.ID != 0 {
			if err := outbox.Write(tx, spec.Task(r.ID)); err != nil {
				return Run{}, false, fmt.Errorf("start %s %s: %w", spec.Kind, spec.Key, err)
			}
			return r.run(), true, nil
		}
		if err := tx.Raw(`SELECT `+columns+` FROM job_runs WHERE kind = ? AND key = ? AND state IN ('queued', 'running')`,
			spec.Kind, spec.Key).Scan(&r).Error; err != nil {
			return Run{}, false, fmt.Errorf("start %s %s: %w", spec.Kind, spec.Key, err)
		}
		if r.ID != 0 {
			return r.run(), false, nil
		}
		// The active run finished between the insert and the select: try again.
	}
	return Run{}, false, fmt.Errorf("start %s %s: the active run kept changing", spec.Kind, spec.Key)
}

// Service reads runs and executes them in task handlers.
type Service struct {
	db  *gorm.DB
	now func() time.Time
	log *slog.Logger
	// retries says, from a handler's context, how often asynq has retried
	// the task and how often it will at most; ok is false outside a task
	// (then a failure is final). Tests replace it.
	retries func(ctx context.Context) (retried, max int, ok bool)
}

// asynqRetries reads the retry count and limit asynq puts in a handler's
// context.
func asynqRetries(ctx context.Context) (retried, max int, ok bool) {
	retried, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return retried, max, ok1 && ok2
}

// NewService returns a Service over db; log receives a line per progress
// report of a run this process executes (nil: discarded).
func NewService(db *gorm.DB, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, now: now, log: log, retries: asynqRetries}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Get returns run id. Errors: ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (Run, error) {
	var r row
	if err := s.db.WithContext(ctx).Raw(`SELECT `+columns+` FROM job_runs WHERE id = ?`, id).Scan(&r).Error; err != nil {
		return Run{}, err
	}
	if r.ID == 0 {
		return Run{}, fmt.Errorf("job run %d: %w", id, ErrNotFound)
	}
	return r.run(), nil
}

// Filter selects runs: by kind and key when set, newest first, ids below
// Before (a cursor) when set; Limit defaults to 50, at most 200.
type Filter struct {
	Kind, Key string
	Before    int64
	Limit     int
}

// List returns the runs f selects, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Run, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Table("job_runs").Select(columns).Order("id DESC").Limit(f.Limit)
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.Key != "" {
		q = q.Where("key = ?", f.Key)
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	var rows []row
	if err := q.Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, nil
}

// Latest returns the newest run of (kind, key); found is false when there is
// none.
func (s *Service) Latest(ctx context.Context, kind, key string) (run Run, found bool, err error) {
	runs, err := s.List(ctx, Filter{Kind: kind, Key: key, Limit: 1})
	if err != nil || len(runs) == 0 {
		return Run{}, false, err
	}
	return runs[0], true, nil
}

// Work is the body of a run: it reports progress on p and returns the run's
// result (stored as JSON) or an error.
type Work func(ctx context.Context, p *Progress) (result any, err error)

// Execute runs work as run id, from a task handler: it marks the run running,
// executes work with a Progress that records its reports, and stores the
// result (succeeded, done = total) or the error. A run that finished already
// (a duplicate delivery of its task) is left as it is and work does not run.
// When work fails and asynq will try the task again, the run goes back to
// queued with the error; when it will not (asynq.SkipRetry, or the last
// retry), the run fails. Execute returns work's error for asynq.
func (s *Service) Execute(ctx context.Context, id int64, work Work) error {
	var r row
	if err := s.db.WithContext(ctx).Raw(`UPDATE job_runs SET state = 'running', attempts = attempts + 1,
		started_at = coalesce(started_at, ?), updated_at = ?, error = NULL WHERE id = ? AND state IN ('queued', 'running')
		RETURNING `+columns, s.clock(), s.clock(), id).Scan(&r).Error; err != nil {
		return fmt.Errorf("job run %d: %w", id, err)
	}
	if r.ID == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return nil // finished already
	}
	run := r.run()
	s.log.Info("job started", "run", id, "kind", run.Kind, "key", run.Key, "attempt", run.Attempts, "started_by", run.StartedBy)
	p := s.newProgress(ctx, run)
	result, werr := work(ctx, p)
	last := p.stop()
	// The outcome is recorded even when ctx ended (a shutdown), on a
	// context of its own, so the row does not stay running.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	db := s.db.WithContext(octx)
	now := s.clock()
	if werr == nil {
		raw, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("job run %d: encode result: %w", id, err)
		}
		// The last report's total counts even when the writer had not
		// written it yet: a succeeded run is done = total.
		if err := db.Exec(`UPDATE job_runs SET state = 'succeeded', total = greatest(total, ?), done = greatest(total, ?),
			phase = 'done', result = ?::jsonb, finished_at = ?, updated_at = ? WHERE id = ?`,
			last.total, last.total, string(raw), now, now, id).Error; err != nil {
			return fmt.Errorf("job run %d: record success: %w", id, err)
		}
		s.log.Info("job succeeded", "run", id, "kind", run.Kind, "key", run.Key, "seconds", now.Sub(*run.StartedAt).Seconds())
		return nil
	}
	retried, maxRetry, ok := s.retries(ctx)
	final := errors.Is(werr, asynq.SkipRetry) || !ok || retried >= maxRetry
	state, finished := Queued, (*time.Time)(nil)
	if final {
		state, finished = Failed, &now
	}
	if err := db.Exec(`UPDATE job_runs SET state = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
		string(state), werr.Error(), finished, now, id).Error; err != nil {
		return fmt.Errorf("job run %d: record failure (%v): %w", id, werr, err)
	}
	s.log.Warn("job failed", "run", id, "kind", run.Kind, "key", run.Key, "final", final, "err", werr)
	return werr
}

// Progress is what a run's work reports to: done of total in a phase.
// Reports are written to the run's row in the background, the latest
// replacing any not written yet, and logged; Set never waits for the
// database. A nil *Progress discards reports.
type Progress struct {
	mu      sync.Mutex
	latest  progressReport
	pending bool
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
}

type progressReport struct {
	done, total int64
	phase       string
}

// Set reports that done of total steps are done and the work is in phase.
func (p *Progress) Set(done, total int64, phase string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.latest, p.pending = progressReport{done: max(done, 0), total: max(total, done, 0), phase: phase}, true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (s *Service) newProgress(ctx context.Context, run Run) *Progress {
	p := &Progress{wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		for {
			select {
			case <-p.done:
				return
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			p.mu.Lock()
			rep, ok := p.latest, p.pending
			p.pending = false
			p.mu.Unlock()
			if !ok {
				continue
			}
			s.log.Info("job progress", "run", run.ID, "kind", run.Kind, "key", run.Key, "done", rep.done, "total", rep.total, "phase", rep.phase)
			// Only a running run moves: a late write never undoes the outcome.
			if err := s.db.WithContext(ctx).Exec(`UPDATE job_runs SET done = ?, total = ?, phase = ?, updated_at = ?
				WHERE id = ? AND state = 'running'`, rep.done, rep.total, rep.phase, s.clock(), run.ID).Error; err != nil && ctx.Err() == nil {
				s.log.Warn("job progress not recorded", "run", run.ID, "err", err)
			}
		}
	}()
	return p
}

// stop ends the writer and returns the last report; a report it has not
// written yet is not written (the outcome written next supersedes it).
func (p *Progress) stop() progressReport {
	close(p.done)
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest
}
