// Package outbox makes "do this after commit" as durable as the commit itself.
//
// A domain service calls Write inside its database transaction; the row
// commits or rolls back with the domain change. The worker's Relay reads
// unsent rows in id order and enqueues them to asynq with a task id derived
// from the row, so a relay that crashes between enqueue and marking the row
// sent cannot enqueue the same work twice (asynq refuses the duplicate id, and
// the relay treats that refusal as success). While Redis is down rows simply
// wait and the relay backs off; the API keeps serving because it never talks to
// Redis on the request path.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
)

// Message is one piece of work to enqueue after commit.
type Message struct {
	TaskType  string    // a task type constant, e.g. webhooks.TypeDeliverWebhook
	Queue     string    // asynq queue; "default" when empty
	Payload   any       // JSON-encoded into the task payload
	ProcessAt time.Time // optional: not before this time
}

type row struct {
	ID        int64
	TaskType  string
	Queue     string
	Payload   []byte
	CreatedAt time.Time
	ProcessAt time.Time
	SentAt    *time.Time
	DoneAt    *time.Time
	Attempts  int
	LastError *string
}

func (row) TableName() string { return "outbox" }

// Write records messages in the caller's transaction tx. It must be called with
// a transaction handle: outside one, nothing ties the message to the change.
func Write(tx *gorm.DB, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	rows := make([]row, 0, len(msgs))
	now := time.Now().UTC()
	for _, m := range msgs {
		if m.TaskType == "" {
			return errors.New("outbox: message without task type")
		}
		b, err := json.Marshal(m.Payload)
		if err != nil {
			return fmt.Errorf("outbox: encode %s payload: %w", m.TaskType, err)
		}
		q := m.Queue
		if q == "" {
			q = "default"
		}
		at := m.ProcessAt
		if at.IsZero() {
			at = now
		}
		rows = append(rows, row{TaskType: m.TaskType, Queue: q, Payload: b, CreatedAt: now, ProcessAt: at.UTC()})
	}
	if err := tx.Omit("ID", "SentAt", "DoneAt", "LastError").Create(&rows).Error; err != nil {
		return fmt.Errorf("outbox: write: %w", err)
	}
	return nil
}

// Enqueuer is the part of asynq.Client the relay needs.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Relay moves committed outbox rows to asynq.
type Relay struct {
	db      *gorm.DB
	q       Enqueuer
	log     *slog.Logger
	opts    func(taskType string) []asynq.Option
	Batch   int           // rows per transaction
	Idle    time.Duration // poll interval when there is nothing to send
	MaxWait time.Duration // longest backoff while Redis is unreachable
	// VerifyEvery is how often Run checks sent rows against Redis (Verify).
	VerifyEvery time.Duration
	// Redis, when set, is where Verify registers a queue that Redis forgot.
	// A Redis restarted without persistence no longer lists its queues, and
	// asynq's client lists a queue only on its first enqueue in a process,
	// so every lookup answers "queue not found" (and no finished row could
	// be marked done) until an enqueue through a new client lists it again.
	Redis    asynq.RedisConnOpt
	retained time.Duration
}

// NewRelay builds a relay. opts supplies per-task-type asynq options (retries,
// timeouts) from the worker's task table; it may be nil.
func NewRelay(db *gorm.DB, q Enqueuer, log *slog.Logger, opts func(string) []asynq.Option) *Relay {
	if opts == nil {
		opts = func(string) []asynq.Option { return nil }
	}
	return &Relay{db: db, q: q, log: log, opts: opts, Batch: 200, Idle: 200 * time.Millisecond,
		MaxWait: 5 * time.Second, VerifyEvery: 10 * time.Second, retained: 24 * time.Hour}
}

// TaskID is the asynq task id of an outbox row: stable across relay restarts,
// distinct across databases that reuse row ids.
func TaskID(id int64, createdAt time.Time) string {
	return fmt.Sprintf("outbox-%d-%d", id, createdAt.UnixMicro())
}

// RelayOnce sends one batch and returns how many rows it marked sent. Rows are
// locked with SKIP LOCKED so several relays share the backlog without sending
// a row twice. An enqueue failure stops the batch; rows already enqueued are
// still marked sent, and the failure is returned.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	sent := 0
	var enqErr error
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []row
		if err := tx.Raw(`SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, r.Batch).
			Scan(&rows).Error; err != nil {
			return err
		}
		var done []int64
		for _, m := range rows {
			opts := append([]asynq.Option{
				asynq.TaskID(TaskID(m.ID, m.CreatedAt)),
				asynq.Queue(m.Queue),
				asynq.Retention(r.retained),
			}, r.opts(m.TaskType)...)
			if m.ProcessAt.After(time.Now()) {
				opts = append(opts, asynq.ProcessAt(m.ProcessAt))
			}
			_, err := r.q.EnqueueContext(ctx, asynq.NewTask(m.TaskType, m.Payload), opts...)
			if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
				enqErr = fmt.Errorf("enqueue outbox %d (%s): %w", m.ID, m.TaskType, err)
				if err := tx.Exec(`UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?`,
					err.Error(), m.ID).Error; err != nil {
					return err
				}
				break
			}
			done = append(done, m.ID)
		}
		if len(done) > 0 {
			if err := tx.Exec(`UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id IN ?`,
				done).Error; err != nil {
				return err
			}
		}
		sent = len(done)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox relay: %w", err)
	}
	return sent, enqErr
}

// Run relays until ctx is cancelled, backing off exponentially (up to MaxWait)
// while enqueueing fails, e.g. when Redis is down. With a lookup it also
// runs Verify every VerifyEvery, at once when enqueueing works again after
// failing (Redis may have come back without the tasks it held), and again
// within MaxWait when a pass fails.
func (r *Relay) Run(ctx context.Context, lookup TaskLookup) error {
	wait := r.Idle
	verifyAt := time.Now().Add(r.VerifyEvery)
	failing := false
	for {
		if lookup != nil && !time.Now().Before(verifyAt) {
			if _, err := r.Verify(ctx, lookup); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox verify: will retry", "err", err, "retry_in", r.MaxWait)
				verifyAt = time.Now().Add(r.MaxWait)
			} else {
				verifyAt = time.Now().Add(r.VerifyEvery)
			}
		}
		n, err := r.RelayOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			wait = min(max(wait, r.Idle)*2, r.MaxWait)
			r.log.Warn("outbox relay: will retry", "err", err, "retry_in", wait)
			failing = true
		case failing:
			// Enqueueing works again after an outage: check at once what
			// Redis still holds of the tasks sent before it.
			failing, verifyAt, wait = false, time.Now(), 0
		case n == r.Batch:
			wait = 0 // more waiting; go again at once
		default:
			wait = r.Idle
		}
		if wait == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// TaskLookup is the part of asynq.Inspector the verifier needs.
type TaskLookup interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Verify checks every row that was sent but not yet seen finished against
// asynq, a page of Batch rows at a time in id order. A finished task
// (completed, or archived after its last retry) marks its row done. A task
// Redis no longer knows was lost after it was accepted (Redis restarted
// without persistence, or was flushed): the row is enqueued again under the
// same task id. Tasks are kept 24 hours after completion (Retention), so "not
// found" within that window means lost, not finished; rows older than the
// window are marked done without a look. A pass covers all rows, however many
// stay in flight (retrying for hours) ahead of a lost one. It returns how
// many rows it re-enqueued; on the first failing lookup or enqueue it stops
// and returns the error, and the next pass starts again from the beginning.
func (r *Relay) Verify(ctx context.Context, lookup TaskLookup) (int, error) {
	redone := 0
	var after int64
	for {
		var rows []row
		if err := r.db.WithContext(ctx).Raw(`SELECT * FROM outbox WHERE sent_at IS NOT NULL AND done_at IS NULL
			AND id > ? ORDER BY id LIMIT ?`, after, r.Batch).Scan(&rows).Error; err != nil {
			return redone, err
		}
		if len(rows) == 0 {
			return redone, nil
		}
		n, err := r.verifyPage(ctx, lookup, rows)
		redone += n
		if err != nil || len(rows) < r.Batch {
			return redone, err
		}
		after = rows[len(rows)-1].ID
	}
}

// verifyPage is Verify for one page of rows.
func (r *Relay) verifyPage(ctx context.Context, lookup TaskLookup, rows []row) (int, error) {
	var done []int64
	redone := 0
	horizon := time.Now().Add(-r.retained + time.Hour)
	var failed error
	var fresh *asynq.Client // lists a forgotten queue again; see Relay.Redis
	defer func() {
		if fresh != nil {
			_ = fresh.Close()
		}
	}()
	for _, m := range rows {
		if m.SentAt.Before(horizon) {
			done = append(done, m.ID)
			continue
		}
		info, err := lookup.GetTaskInfo(m.Queue, TaskID(m.ID, m.CreatedAt))
		switch {
		case err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived):
			done = append(done, m.ID)
		case err == nil:
			// pending, scheduled, active, retry, aggregating: still in flight.
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			opts := append([]asynq.Option{asynq.TaskID(TaskID(m.ID, m.CreatedAt)), asynq.Queue(m.Queue),
				asynq.Retention(r.retained)}, r.opts(m.TaskType)...)
			// "Queue not found" can also mean only that Redis lost its list of
			// queue names (a client registers a queue once per process), so
			// the enqueue itself decides: a conflict means the task is there.
			q := r.q
			if errors.Is(err, asynq.ErrQueueNotFound) && r.Redis != nil {
				if fresh == nil {
					fresh = asynq.NewClient(r.Redis)
				}
				q = fresh
			}
			_, err := q.EnqueueContext(ctx, asynq.NewTask(m.TaskType, m.Payload), opts...)
			switch {
			case err == nil:
				r.log.Warn("outbox task was lost by Redis: enqueued again", "outbox_id", m.ID, "type", m.TaskType)
				redone++
			case errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask):
			default:
				failed = fmt.Errorf("re-enqueue outbox %d (%s): %w", m.ID, m.TaskType, err)
			}
		default:
			failed = fmt.Errorf("look up outbox %d: %w", m.ID, err)
		}
		if failed != nil {
			break
		}
	}
	if len(done) > 0 {
		if err := r.db.WithContext(ctx).Exec(`UPDATE outbox SET done_at = now() WHERE id IN ?`, done).Error; err != nil {
			return redone, err
		}
	}
	return redone, failed
}

// Pending counts rows not yet sent; the console and /metrics show it.
func Pending(ctx context.Context, db *gorm.DB) (int64, error) {
	var n int64
	err := db.WithContext(ctx).Raw(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n).Error
	return n, err
}
