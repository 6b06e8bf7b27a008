// Package jobs records runs of long work that a person starts and waits for
// (closing a settlement period): the job_runs table, with each run's state
// (queued → running → succeeded or failed), its progress (done of total and
// the phase it is in), its result or error, and who started it.
//
// The work itself is an asynq task of the domain that owns it. Start inserts
// the run and, in the same database transaction, the outbox message that
// queues the task, so the caller answers at once (202 and the run's URL) and
// the run cannot be lost between the two. At most one run per (kind, key) is
// queued or running (a unique partial index): starting it again while it runs
// answers the run in progress and queues nothing, unless nothing has been
// heard of that run for longer than the caller's Spec.StaleAfter (its task
// was lost): then it is failed as abandoned and a new run starts.
//
// The task's handler wraps its work in Service.Execute, which marks the run
// running, hands the work a Progress to report on, and records the outcome;
// a failure that asynq will retry puts the run back to queued with the
// error, the last one fails it.
//
// Progress is written by its own goroutine over the connection pool,
// coalescing to the latest report, so the work never waits for a progress
// write: a settlement close holds two connections for its whole run, and a
// progress write that waited for a third could wait forever on a pool of two.
//
// This package is plumbing: it knows nothing of what the runs do and imports
// no domain package; each domain names its own kinds.
package jobs
