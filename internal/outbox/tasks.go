package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
)

// TypeCleanup deletes outbox rows sent more than a week ago. Never renamed.
const TypeCleanup = "outbox:cleanup"

// CleanupHandler handles TypeCleanup. It is idempotent: deleting already
// deleted rows is a no-op.
func CleanupHandler(db *gorm.DB, now func() time.Time) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		cutoff := now().Add(-7 * 24 * time.Hour)
		if err := db.WithContext(ctx).Exec(`DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, cutoff).Error; err != nil {
			return fmt.Errorf("outbox cleanup: %w", err)
		}
		return nil
	}
}
