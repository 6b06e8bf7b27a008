package web

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hibiken/asynq"
)

// Jobs is what the console's jobs page needs from the job queue: the
// queues with their counts, the failed tasks (retrying or archived), and a
// way to run a failed task again. cmd/hub passes NewAsynqJobs over the
// worker's Redis; nil hides the page's data behind a notice.
type Jobs interface {
	Queues(ctx context.Context) ([]QueueStats, error)
	FailedTasks(ctx context.Context, queue string, limit int) ([]FailedTask, error)
	RetryTask(ctx context.Context, queue, id string) error
}

// QueueStats are the counts of one queue. Processed and Failed count today.
type QueueStats struct {
	Queue                                             string
	Size, Pending, Active, Scheduled, Retry, Archived int
	Completed, Processed, Failed                      int
	Paused                                            bool
	Latency                                           time.Duration
}

// FailedTask is a task waiting for a retry or archived after its last one.
// The payload is not shown: it may carry personal data.
type FailedTask struct {
	ID, Queue, Type, State, LastErr string
	Retried, MaxRetry               int
	LastFailedAt                    time.Time
}

// AsynqJobs implements Jobs over an asynq.Inspector.
type AsynqJobs struct{ in *asynq.Inspector }

// NewAsynqJobs returns Jobs reading the queues in the Redis of opt. It
// opens its own connection; Close releases it.
func NewAsynqJobs(opt asynq.RedisConnOpt) *AsynqJobs { return &AsynqJobs{in: asynq.NewInspector(opt)} }

// Close closes the inspector's Redis connection.
func (j *AsynqJobs) Close() error { return j.in.Close() }

// Queues lists the queues in name order with their counts.
func (j *AsynqJobs) Queues(context.Context) ([]QueueStats, error) {
	names, err := j.in.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	sort.Strings(names)
	out := make([]QueueStats, 0, len(names))
	for _, n := range names {
		q, err := j.in.GetQueueInfo(n)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", n, err)
		}
		out = append(out, QueueStats{Queue: q.Queue, Size: q.Size, Pending: q.Pending, Active: q.Active, Scheduled: q.Scheduled,
			Retry: q.Retry, Archived: q.Archived, Completed: q.Completed, Processed: q.Processed, Failed: q.Failed,
			Paused: q.Paused, Latency: q.Latency})
	}
	return out, nil
}

// FailedTasks lists up to limit archived and then retrying tasks of queue.
func (j *AsynqJobs) FailedTasks(_ context.Context, queue string, limit int) ([]FailedTask, error) {
	var out []FailedTask
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){j.in.ListArchivedTasks, j.in.ListRetryTasks} {
		ts, err := list(queue, asynq.PageSize(limit))
		if err != nil {
			return nil, fmt.Errorf("failed tasks of %s: %w", queue, err)
		}
		for _, t := range ts {
			if len(out) == limit {
				return out, nil
			}
			out = append(out, FailedTask{ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State.String(), LastErr: t.LastErr,
				Retried: t.Retried, MaxRetry: t.MaxRetry, LastFailedAt: t.LastFailedAt})
		}
	}
	return out, nil
}

// RetryTask moves an archived or retrying task to pending so a worker runs
// it now.
func (j *AsynqJobs) RetryTask(_ context.Context, queue, id string) error {
	if err := j.in.RunTask(queue, id); err != nil {
		return fmt.Errorf("run task %s/%s: %w", queue, id, err)
	}
	return nil
}
