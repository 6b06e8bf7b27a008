package ledger

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
)

// Task types of the ledger's periodic jobs. Never rename them: queued tasks
// carry the name.
const (
	TypeExpireHolds = "ledger:expire_holds"
	TypeExpireLots  = "ledger:expire_lots"
)

// batch is how much one pass of a job handles before checking for more.
const batch = 500

// HandleExpireHolds returns the handler of TypeExpireHolds: it expires every
// active hold past its expiry, in batches. Idempotent: an expired hold is no
// longer active. The payload is ignored.
func HandleExpireHolds(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		for {
			n, err := s.ExpireHolds(ctx, batch)
			if err != nil {
				return fmt.Errorf("%s: %w", TypeExpireHolds, err)
			}
			if n < batch {
				return nil
			}
		}
	}
}

// HandleExpireLots returns the handler of TypeExpireLots: it expires every lot
// past its expiry as of now, in batches. Idempotent per lot. The payload is
// ignored.
func HandleExpireLots(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		for {
			res, err := s.ExpireLots(ctx, s.now(), batch)
			if err != nil {
				return fmt.Errorf("%s: %w", TypeExpireLots, err)
			}
			if res.Lots == 0 {
				return nil
			}
		}
	}
}
