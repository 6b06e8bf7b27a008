package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
)

// Task types of settlement jobs. Never rename them: queued tasks carry the name.
const (
	// TypeClosePeriod closes a period; scheduled shortly after each month end.
	TypeClosePeriod = "settlement:close_period"
	// TypeReconcile matches an uploaded reconciliation file.
	TypeReconcile = "settlement:reconcile"
)

// ClosePeriodPayload names the month to close ("YYYY-MM"); empty (the
// scheduled task) means the month before the current one.
type ClosePeriodPayload struct {
	Month string `json:"month,omitempty"`
}

// ReconcilePayload names the reconciliation to match.
type ReconcilePayload struct {
	ReconciliationID int64 `json:"reconciliation_id"`
}

// HandleClosePeriod returns the handler of TypeClosePeriod. Idempotent:
// closing a closed period changes nothing, and concurrent workers serialise
// on the period row. A bad payload is not retried.
func HandleClosePeriod(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p ClosePeriodPayload
		if len(t.Payload()) > 0 {
			if err := json.Unmarshal(t.Payload(), &p); err != nil {
				return fmt.Errorf("%s: bad payload: %v: %w", TypeClosePeriod, err, asynq.SkipRetry)
			}
		}
		var err error
		if p.Month == "" {
			_, err = s.ClosePrevious(ctx)
		} else {
			_, err = s.Close(ctx, p.Month, "system")
		}
		if err != nil {
			var skip bool
			for _, e := range []error{ErrPeriodNotEnded, ErrEarlierPeriodOpen} {
				skip = skip || errors.Is(err, e)
			}
			if skip {
				return fmt.Errorf("%s: %v: %w", TypeClosePeriod, err, asynq.SkipRetry)
			}
			return fmt.Errorf("%s: %w", TypeClosePeriod, err)
		}
		return nil
	}
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
