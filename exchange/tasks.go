package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task types of the exchange domain. Never renamed.
const (
	// TypeDeliver sends one outbound exchange's credit to the partner.
	TypeDeliver = "exchange:deliver"
	// TypePoll checks pending and stalled outbound exchanges (periodic).
	TypePoll = "exchange:poll"
)

// DeliverPayload is the payload of TypeDeliver.
type DeliverPayload struct {
	ExchangeID int64 `json:"exchange_id"`
}

// DeliverMaxRetry bounds the deliver job's retries (about 12 hours with
// DeliverRetryDelay); after that exchange:poll keeps re-driving the exchange.
const DeliverMaxRetry = 30

// DeliverRetryDelay spaces retries: 5 seconds doubling up to 30 minutes.
func DeliverRetryDelay(n int) time.Duration {
	return min(5*time.Second<<min(n, 10), 30*time.Minute)
}

// HandleDeliver is the TypeDeliver handler. A bad payload is not retried; a
// transient partner failure is.
func HandleDeliver(s *Service) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var p DeliverPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ExchangeID <= 0 {
			return fmt.Errorf("exchange:deliver payload %q: %w", t.Payload(), asynq.SkipRetry)
		}
		err := s.Deliver(ctx, p.ExchangeID)
		if errors.Is(err, ErrExchangeNotFound) {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return err
	})
}

// HandlePoll is the TypePoll handler: it checks due exchanges in batches.
func HandlePoll(s *Service) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		for range 20 {
			n, err := s.Poll(ctx, 200)
			if err != nil {
				return err
			}
			if n < 200 {
				return nil
			}
		}
		return nil
	})
}
