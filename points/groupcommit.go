package points

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit: a single earn is an item of a batch. Earns that arrive while
// another batch is being posted wait a little (GroupCommit.Wait, or until
// GroupCommit.MaxItems are waiting, or, with GroupCommit.InFlight batches
// being posted, until one of them finishes) and are posted together through the batch path (post), in one database
// transaction: one commit, one member check, one ledger posting and one
// programme statement for all of them instead of one each. An earn that
// arrives when nothing is in flight and nothing waits is posted at once,
// alone: at low load the group commit costs no wait.
//
// Each earn keeps its own outcome: its own idempotency (two earns of one
// batch under the same key are answered as if sent one after the other), its
// own refusal, and its own answer when the database fails the batch as a
// whole: the earns of a failed batch are posted again one by one, so an earn
// whose posting the database refuses fails alone and the others are
// answered by their own attempt. Every caller is answered once its batch has
// committed or failed; an earn is acknowledged only after its commit.

// GroupCommit says how single earns are gathered into batches.
type GroupCommit struct {
	// MaxItems: a batch is posted as soon as this many earns wait.
	MaxItems int
	// Wait is how long the first earn waiting behind a batch in flight
	// waits for others before its batch is posted, when fewer than
	// InFlight batches are being posted; otherwise the waiting earns go
	// together as soon as one of those finishes.
	Wait time.Duration
	// InFlight is how many batches may be posted at once before waiting
	// earns stay queued for one of them to finish (MaxItems waiting earns
	// are posted anyway). Two keep the database busy with one batch while
	// the hub prices the next; more make smaller batches.
	InFlight int
}

// DefaultGroupCommit is the group commit of NewTransactions: batches of up to
// 64 earns, waiting at most 1 ms (an earn's own posting takes several), two
// batches in flight.
var DefaultGroupCommit = GroupCommit{MaxItems: 64, Wait: time.Millisecond, InFlight: 2}

// GroupCommitStats counts what the group commit did since the process
// started.
type GroupCommitStats struct {
	// Alone: earns posted at once, without waiting, as nothing else was in flight.
	Alone int64
	// Batches posted (alone ones included) and the earns in them.
	Batches, Earns int64
	// Retried: earns posted again alone after their batch failed as a whole.
	Retried int64
}

// GroupCommitStats returns the group commit's counters.
func (t *Transactions) GroupCommitStats() GroupCommitStats {
	c := &t.group
	return GroupCommitStats{Alone: c.alone.Load(), Batches: c.batches.Load(), Earns: c.earns.Load(),
		Retried: c.retried.Load()}
}

// earnCall is one earn waiting for its batch.
type earnCall struct {
	ctx  context.Context
	item partnerEarn
	out  BatchOutcome
	done chan struct{} // closed once out is set
}

// coalescer gathers single earns into batches (see above). Its zero value
// needs post and settings.
type coalescer struct {
	post     func(ctx context.Context, items []partnerEarn) ([]BatchOutcome, error)
	settings func() GroupCommit

	mu       sync.Mutex
	inFlight int         // batches being posted
	queue    []*earnCall // earns waiting for the next batch
	gen      uint64      // bumped whenever the queue is taken: a timer of an older queue does nothing
	timer    *time.Timer // bounds the wait of the queue's first earn

	alone, batches, earns, retried atomic.Int64

	// onBatch, when set (tests), is called in the posting goroutine with
	// the size of each batch before it is posted.
	onBatch func(n int)
}

// submit posts it as an item of a batch and returns its outcome.
func (c *coalescer) submit(ctx context.Context, it partnerEarn) BatchOutcome {
	call := &earnCall{ctx: ctx, item: it, done: make(chan struct{})}
	s := c.settings()
	c.mu.Lock()
	if c.inFlight == 0 && len(c.queue) == 0 {
		// Nothing to wait for: post at once, alone.
		c.inFlight++
		c.mu.Unlock()
		c.alone.Add(1)
		c.run([]*earnCall{call})
		return call.out
	}
	c.queue = append(c.queue, call)
	var batch []*earnCall
	switch {
	case len(c.queue) >= max(s.MaxItems, 1):
		batch = c.takeLocked()
		c.inFlight++
	case len(c.queue) == 1:
		gen, inFlight := c.gen, max(s.InFlight, 1)
		c.timer = time.AfterFunc(s.Wait, func() { c.expire(gen, inFlight) })
	}
	c.mu.Unlock()
	if batch != nil {
		c.run(batch)
	}
	select {
	case <-call.done:
		return call.out
	case <-ctx.Done():
		// The caller is gone; its earn is still posted (or not) with its
		// batch, and a retry under the same key finds out which.
		return BatchOutcome{Err: wrapEarn(it.Input, ctx.Err())}
	}
}

// takeLocked empties the queue and returns it.
func (c *coalescer) takeLocked() []*earnCall {
	batch := c.queue
	c.queue = nil
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	return batch
}

// expire posts the queue of generation gen when its first earn has waited
// long enough, unless it has been taken meanwhile or inFlight batches are
// being posted (the first of them to finish takes it).
func (c *coalescer) expire(gen uint64, inFlight int) {
	c.mu.Lock()
	if gen != c.gen || len(c.queue) == 0 || c.inFlight >= inFlight {
		c.mu.Unlock()
		return
	}
	batch := c.takeLocked()
	c.inFlight++
	c.mu.Unlock()
	c.run(batch)
}

// run posts batch, then hands whatever queued meanwhile (those earns waited
// behind it already) to a new goroutine: the caller that posts a batch is
// answered as soon as its own batch is.
func (c *coalescer) run(batch []*earnCall) {
	c.flush(batch)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.inFlight--
		return
	}
	next := c.takeLocked()
	go c.run(next)
}

// flush posts batch and answers each of its earns. When the database fails
// the batch as a whole, each earn is posted again alone, so that only the
// earns that fail alone fail.
func (c *coalescer) flush(batch []*earnCall) {
	c.batches.Add(1)
	c.earns.Add(int64(len(batch)))
	if c.onBatch != nil {
		c.onBatch(len(batch))
	}
	items := make([]partnerEarn, len(batch))
	for i, call := range batch {
		items[i] = call.item
	}
	// The batch outlives any one caller's request.
	out, err := c.safePost(context.WithoutCancel(batch[0].ctx), items)
	for i, call := range batch {
		switch {
		case err == nil:
			call.out = out[i]
		case len(batch) == 1:
			call.out = BatchOutcome{Err: wrapEarn(call.item.Input, err)}
		default:
			c.retried.Add(1)
			o, err := c.safePost(context.WithoutCancel(call.ctx), items[i:i+1])
			if err != nil {
				o = []BatchOutcome{{Err: wrapEarn(call.item.Input, err)}}
			}
			call.out = o[0]
		}
		close(call.done)
	}
}

// safePost is post that turns a panic into the batch's error: every caller
// of the batch must be answered.
func (c *coalescer) safePost(ctx context.Context, items []partnerEarn) (out []BatchOutcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("post %d earns: panic: %v", len(items), r)
		}
	}()
	return c.post(ctx, items)
}
