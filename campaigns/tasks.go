package campaigns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/internal/jobs"
)

// TypeRun runs a campaign as its job run. Never rename it: queued tasks
// carry the name.
const TypeRun = "campaigns:run"

// RunPayload names the campaign and the job run that records the run.
type RunPayload struct {
	CampaignID int64 `json:"campaign_id"`
	RunID      int64 `json:"run_id"`
}

// HandleRun returns the handler of TypeRun: the campaign's grants under its
// job run, which records progress and the report. Idempotent: a retry or a
// duplicate delivery grants nobody twice. A bad payload is not retried.
func HandleRun(s *Service, runs *jobs.Service) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p RunPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.CampaignID <= 0 || p.RunID <= 0 {
			return fmt.Errorf("%s: bad payload %q: %w", TypeRun, t.Payload(), asynq.SkipRetry)
		}
		run, err := runs.Get(ctx, p.RunID)
		if err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return fmt.Errorf("%s: %v: %w", TypeRun, err, asynq.SkipRetry)
			}
			return fmt.Errorf("%s: %w", TypeRun, err)
		}
		err = runs.Execute(ctx, p.RunID, func(ctx context.Context, pr *jobs.Progress) (any, error) {
			rep, err := s.Run(ctx, p.CampaignID, run.StartedBy, pr)
			if errors.Is(err, ErrCampaignNotFound) || errors.Is(err, ErrSegmentNotFound) {
				err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
			}
			return rep, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", TypeRun, err)
		}
		return nil
	}
}
