package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/internal/jobs"
)

// Task types of settlement jobs. Never rename them: queued tasks carry the name.
const (
	// TypeClosePeriod closes a period; scheduled shortly after each month end.
	TypeClosePeriod = "settlement:close_period"
	// TypeReconcile matches an uploaded reconciliation file.
	TypeReconcile = "settlement:reconcile"
)

// ClosePeriodPayload names the month to close ("YYYY-MM"); empty (the
// scheduled task) means the month before the current one. RunID is the job
// run of a close a person started (StartClose), which records its progress
// and outcome.
type ClosePeriodPayload struct {
	Month string `json:"month,omitempty"`
	RunID int64  `json:"run_id,omitempty"`
}

// ReconcilePayload names the reconciliation to match.
type ReconcilePayload struct {
	ReconciliationID int64 `json:"reconciliation_id"`
}

// HandleClosePeriod returns the handler of TypeClosePeriod. Idempotent:
// closing a closed period changes nothing, and concurrent workers serialise
// on the period row. A close started as a job run (RunID) runs under runs,
// which records its progress and outcome. A bad payload is not retried.
func HandleClosePeriod(s *Service, runs *jobs.Service) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p ClosePeriodPayload
		if len(t.Payload()) > 0 {
			if err := json.Unmarshal(t.Payload(), &p); err != nil {
				return fmt.Errorf("%s: bad payload: %v: %w", TypeClosePeriod, err, asynq.SkipRetry)
			}
		}
		var err error
		switch {
		case p.RunID > 0 && p.Month != "":
			var run jobs.Run
			if run, err = runs.Get(ctx, p.RunID); err != nil {
				if errors.Is(err, jobs.ErrNotFound) {
					return fmt.Errorf("%s: %v: %w", TypeClosePeriod, err, asynq.SkipRetry)
				}
				return fmt.Errorf("%s: %w", TypeClosePeriod, err)
			}
			err = runs.Execute(ctx, p.RunID, s.closeRun(p.Month, run.StartedBy))
		case p.Month == "":
			_, err = s.ClosePrevious(ctx)
			err = closeTaskError(err)
		default:
			_, err = s.Close(ctx, p.Month, "system", nil)
			err = closeTaskError(err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", TypeClosePeriod, err)
		}
		return nil
	}
}

// closeTaskError marks the errors of a close that a retry cannot cure as
// not to be retried.
func closeTaskError(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{ErrPeriodNotEnded, ErrEarlierPeriodOpen, ErrPeriodClosed} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
	}
	return err
}

// HandleReconcile returns the handler of TypeReconcile. Idempotent: a
// matched reconciliation is left as it is.
func HandleReconcile(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p ReconcilePayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ReconciliationID <= 0 {
			return fmt.Errorf("%s: bad payload %q: %w", TypeReconcile, t.Payload(), asynq.SkipRetry)
		}
		if _, err := s.Match(ctx, p.ReconciliationID); err != nil {
			if errors.Is(err, ErrReconciliationNotFound) {
				return fmt.Errorf("%s: %v: %w", TypeReconcile, err, asynq.SkipRetry)
			}
			return fmt.Errorf("%s: %w", TypeReconcile, err)
		}
		return nil
	}
}
