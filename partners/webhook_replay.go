package partners

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
func (w *Webhooks) FailedDeliveries(ctx context.Context, partnerID int64, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var out []Delivery
	err := w.db.WithContext(ctx).Raw(`SELECT d.id, d.event_id::text AS event_id, ev.type AS event_type, d.endpoint_id, d.state,
			d.attempts, d.last_status, d.last_error, d.created_at, d.delivered_at
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
		WHERE d.partner_id = ? AND d.state = 'failed' ORDER BY d.id DESC LIMIT ?`, partnerID, limit).Scan(&out).Error
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
func (w *Webhooks) Replay(ctx context.Context, partnerID, deliveryID int64) (Delivery, error) {
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var state []string
		if err := tx.Raw(`SELECT state FROM webhook_deliveries WHERE id = ? AND partner_id = ? FOR UPDATE`,
			deliveryID, partnerID).Scan(&state).Error; err != nil {
			return err
		}
		switch {
		case len(state) == 0:
			return ErrWebhookDeliveryNotFound
		case state[0] != "failed":
			return ErrWebhookDeliveryNotFailed
		}
		if err := tx.Exec(`UPDATE webhook_deliveries SET state = 'pending' WHERE id = ?`, deliveryID).Error; err != nil {
			return err
		}
		return outbox.Write(tx, outbox.Message{TaskType: TypeDeliverWebhook, Queue: "default",
			Payload: DeliverWebhookPayload{DeliveryID: deliveryID}})
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("replay webhook delivery %d: %w", deliveryID, err)
	}
	var out Delivery
	err = w.db.WithContext(ctx).Raw(`SELECT d.id, d.event_id::text AS event_id, ev.type AS event_type, d.endpoint_id, d.state,
			d.attempts, d.last_status, d.last_error, d.created_at, d.delivered_at
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id WHERE d.id = ?`, deliveryID).Scan(&out).Error
	if err != nil {
		return Delivery{}, fmt.Errorf("replay webhook delivery %d: %w", deliveryID, err)
	}
	return out, nil
}
