package abuse

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
)

// TypeScanRefunds looks for the earn-refund-keep pattern at every partner
// with a threshold (ScanRefunds) and prunes old counters. Never renamed.
const TypeScanRefunds = "abuse:scan_refunds"

// HandleScanRefunds handles TypeScanRefunds. Idempotent: a member flagged
// and still open is not flagged again.
func HandleScanRefunds(s *Service, log *slog.Logger) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		n, err := s.ScanRefunds(ctx)
		if err != nil {
			return err
		}
		if n > 0 && log != nil {
			log.InfoContext(ctx, "earn-refund-keep members flagged", "flags", n)
		}
		if err := s.PruneCounters(ctx); err != nil {
			return fmt.Errorf("prune abuse counters: %w", err)
		}
		return nil
	}
}
