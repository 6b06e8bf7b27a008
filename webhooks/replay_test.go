package webhooks_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/webhooks"
)

// TestWebhookReplayOfAFailedDelivery: only a failed delivery is replayed,
// only by its partner; the replay queues it again through the outbox with
// the same event.
func TestWebhookReplayOfAFailedDelivery(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	wh := newWebhooks(t, db)
	ctx := context.Background()
	if _, _, err := wh.CreateEndpoint(ctx, 7, "http://127.0.0.1:1/hooks", []string{"*"}); err != nil {
		t.Fatal(err)
	}
	eventID := publish(t, db, 7, webhooks.EventStatementReady, map[string]any{"period": "2026-10"})
	ids := queuedDeliveries(t, db)
	if len(ids) != 1 {
		t.Fatalf("queued %v, want one delivery", ids)
	}
	id := ids[0]
	if _, err := wh.Replay(ctx, 7, id); !errors.Is(err, webhooks.ErrWebhookDeliveryNotFailed) {
		t.Fatalf("replay of a pending delivery: %v, want ErrWebhookDeliveryNotFailed", err)
	}
	if err := db.Exec(`UPDATE webhook_deliveries SET state = 'failed', attempts = 33 WHERE id = ?`, id).Error; err != nil {
		t.Fatal(err)
	}
	failed, err := wh.FailedDeliveries(ctx, 7, 10)
	if err != nil || len(failed) != 1 || failed[0].ID != id || failed[0].EventID != eventID {
		t.Fatalf("failed deliveries %+v (%v), want delivery %d", failed, err, id)
	}
	if _, err := wh.Replay(ctx, 8, id); !errors.Is(err, webhooks.ErrWebhookDeliveryNotFound) {
		t.Fatalf("replay by another partner: %v, want ErrWebhookDeliveryNotFound", err)
	}
	d, err := wh.Replay(ctx, 7, id)
	if err != nil || d.State != "pending" || d.EventID != eventID {
		t.Fatalf("replay = %+v (%v), want the delivery pending with event %s", d, err, eventID)
	}
	if q := queuedDeliveries(t, db); !slices.Equal(q, []int64{id, id}) {
		t.Fatalf("outbox deliveries %v, want %d queued again", q, id)
	}
	if failed, _ := wh.FailedDeliveries(ctx, 7, 10); len(failed) != 0 {
		t.Fatalf("failed deliveries after the replay: %+v", failed)
	}
}
