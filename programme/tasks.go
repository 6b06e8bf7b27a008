package programme

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
)

// Task types of the programme's periodic jobs. Never rename them.
const (
	TypeDaily = "programme:daily" // expiry, notices, birthdays, tier grants and reviews, running totals, company levels
)

const batch = 500

// HandleDaily returns the handler of TypeDaily: the expiry job (notices,
// lot expiry, inactivity), the birthday bonus, the yearly tier review (a
// no-op for members already reviewed this year), the repair and pruning of
// the qualifying running totals (SyncWindows) and company levels. Every
// step is idempotent, so a retry or a second worker's run changes nothing
// twice. The payload is ignored.
func HandleDaily(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		if _, err := s.RunExpiry(ctx, batch); err != nil {
			return fmt.Errorf("%s: %w", TypeDaily, err)
		}
		if _, err := s.RunBirthdays(ctx); err != nil {
			return fmt.Errorf("%s: %w", TypeDaily, err)
		}
		now := s.clock()
		if _, err := s.ReviewTiers(ctx, now, batch); err != nil {
			return fmt.Errorf("%s: %w", TypeDaily, err)
		}
		if _, err := s.SyncWindows(ctx, now, 10*batch); err != nil {
			return fmt.Errorf("%s: %w", TypeDaily, err)
		}
		if _, err := s.ReviewCompanies(ctx, now); err != nil {
			return fmt.Errorf("%s: %w", TypeDaily, err)
		}
		return nil
	}
}
