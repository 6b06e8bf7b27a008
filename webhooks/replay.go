package webhooks

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/outbox"
)

// ErrWebhookDeliveryNotFailed: only a failed delivery can be replayed; a
// pending one is still being tried and a succeeded one arrived.
var ErrWebhookDeliveryNotFailed = errors.New("webhook delivery has not failed")

// FailedDeliveries lists the partner's deliveries that gave up (state
// failed), newest first, at most limit (default 50, at most 200).
func (w *Service) FailedDeliveries(ctx context.Context, partnerID int64, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	out, err := selectFailedDeliveries(w.db.WithContext(ctx), partnerID, limit)
	if err != nil {
		return nil, fmt.Errorf("failed deliveries of partner %d: %w", partnerID, err)
	}
	return out, nil
}

// Replay sends a failed delivery again: the same event id and body, to the
// same endpoint, with a fresh retry schedule. The delivery goes back to
// pending and its task is queued through the outbox in the same
// transaction. Errors: ErrWebhookDeliveryNotFound (also for another
// partner's delivery), ErrWebhookDeliveryNotFailed.
func (w *Service) Replay(ctx context.Context, partnerID, deliveryID int64) (Delivery, error) {
	var out Delivery
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		state, found, err := lockDeliveryState(tx, partnerID, deliveryID)
		switch {
		case err != nil:
			return err
		case !found:
			return ErrWebhookDeliveryNotFound
		case state != "failed":
			return ErrWebhookDeliveryNotFailed
		}
		if out, err = setDeliveryPending(tx, deliveryID); err != nil {
			return err
		}
		return outbox.Write(tx, outbox.Message{TaskType: TypeDeliverWebhook, Queue: "default",
			Payload: DeliverWebhookPayload{DeliveryID: deliveryID}})
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("replay webhook delivery %d: %w", deliveryID, err)
	}
	return out, nil
}
