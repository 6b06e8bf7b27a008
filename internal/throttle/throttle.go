// Package throttle limits password sign-ins per account across every hub
// process. It owns the login_throttle table (migration 00270): one row per
// account key holding a GCRA state, updated by one atomic statement, so the
// limit holds however many processes and concurrent requests share it.
//
// A sign-in reserves an attempt before the password is checked and gives it
// back when the password was right (Refund): failures spend the budget,
// successes do not, and concurrent guesses cannot all slip past a check
// that has not yet counted them. The throttle slows an account down rather
// than locking it: after Burst failures one more attempt is allowed every
// Interval, and a refusal says how long to wait.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
)

// Policy is Burst attempts at once, then one more every Interval.
type Policy struct {
	Burst    int
	Interval time.Duration
}

// DefaultPolicy allows 5 failed sign-ins at once and then one every three
// minutes: at most 20 guesses an hour against one account, and a person who
// mistypes five times waits three minutes.
var DefaultPolicy = Policy{Burst: 5, Interval: 3 * time.Minute}

// LimitedError is the refusal of an attempt past the budget; Wait is how
// long until the next attempt is allowed.
type LimitedError struct {
	Wait time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("retry in %s", e.Wait.Round(time.Second))
}

// RetryAfter is how long the caller should wait (the HTTP layer's
// Retry-After).
func (e *LimitedError) RetryAfter() time.Duration { return e.Wait }

// Limiter throttles the keys of one namespace ("staff", "member").
type Limiter struct {
	db        *gorm.DB
	namespace string
	policy    Policy
	now       func() time.Time
}

// New builds a limiter. A zero policy is DefaultPolicy; now is the clock.
func New(db *gorm.DB, namespace string, p Policy, now func() time.Time) *Limiter {
	if p.Burst <= 0 || p.Interval <= 0 {
		p = DefaultPolicy
	}
	return &Limiter{db: db, namespace: namespace, policy: p, now: now}
}

// hash keeps account names (email addresses) out of the table.
func (l *Limiter) hash(key string) string {
	h := sha256.Sum256([]byte(l.namespace + "\x00" + key))
	return hex.EncodeToString(h[:])
}

func (l *Limiter) clock() time.Time { return l.now().UTC().Truncate(time.Microsecond) }

// Take reserves one attempt for key. Past the budget it returns a
// *LimitedError and reserves nothing.
//
// GCRA in one statement: the row's tat (theoretical arrival time) moves
// Interval ahead per attempt, and an attempt is allowed while tat is at most
// (Burst-1)*Interval ahead of now. The upsert takes the row lock, so
// concurrent attempts on one key are counted one after another.
func (l *Limiter) Take(ctx context.Context, key string) error {
	now := l.clock()
	step := l.policy.Interval.Microseconds()
	tolerance := now.Add(time.Duration(l.policy.Burst-1) * l.policy.Interval)
	k := l.hash(key)
	var taken []time.Time
	err := l.db.WithContext(ctx).Raw(`INSERT INTO login_throttle AS t (key, tat) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET tat = GREATEST(t.tat, ?) + ? * interval '1 microsecond'
		WHERE GREATEST(t.tat, ?) <= ?
		RETURNING tat`, k, now.Add(l.policy.Interval), now, step, now, tolerance).Scan(&taken).Error
	if err != nil {
		return fmt.Errorf("throttle %s: %w", l.namespace, err)
	}
	if len(taken) == 1 {
		return nil
	}
	var tat []time.Time
	if err := l.db.WithContext(ctx).Raw(`SELECT tat FROM login_throttle WHERE key = ?`, k).Scan(&tat).Error; err != nil {
		return fmt.Errorf("throttle %s: %w", l.namespace, err)
	}
	wait := l.policy.Interval
	if len(tat) == 1 {
		wait = max(tat[0].Sub(tolerance), time.Second)
	}
	return &LimitedError{Wait: wait}
}

// Refund gives back the attempt a successful sign-in reserved.
func (l *Limiter) Refund(ctx context.Context, key string) error {
	err := l.db.WithContext(ctx).Exec(`UPDATE login_throttle SET tat = tat - ? * interval '1 microsecond' WHERE key = ?`,
		l.policy.Interval.Microseconds(), l.hash(key)).Error
	if err != nil {
		return fmt.Errorf("throttle %s refund: %w", l.namespace, err)
	}
	return nil
}

// TypeCleanup deletes throttle rows whose budget is whole again. Never renamed.
const TypeCleanup = "throttle:cleanup"

// CleanupHandler handles TypeCleanup. A row whose tat has passed allows as
// much as a missing row does, so deleting it changes no answer; the task is
// idempotent.
func CleanupHandler(db *gorm.DB, now func() time.Time) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		if err := db.WithContext(ctx).Exec(`DELETE FROM login_throttle WHERE tat < ?`, now()).Error; err != nil {
			return fmt.Errorf("throttle cleanup: %w", err)
		}
		return nil
	}
}
