package catalog

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
)

// TypeExpireOrders is the periodic job that cancels asynchronous orders not
// fulfilled by their deadline. Never rename it: queued tasks carry the name.
const TypeExpireOrders = "catalog:expire_orders"

const expireBatch = 200

// HandleExpireOrders returns the handler of TypeExpireOrders: it expires
// every pending order past its deadline, in batches, releasing the points and
// the stock and telling the partner (order.cancelled). Idempotent: a closed
// order is skipped. The payload is ignored.
func HandleExpireOrders(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		for {
			n, err := s.ExpireOrders(ctx, expireBatch)
			if err != nil {
				return fmt.Errorf("%s: %w", TypeExpireOrders, err)
			}
			if n < expireBatch {
				return nil
			}
		}
	}
}
