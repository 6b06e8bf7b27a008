package settlement

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/outbox"
)

// KindClose is the job run kind of a period close started by a person; its
// key is the month.
const KindClose = "settlement.close"

// closeStaleAfter is how long a close run may go unheard of before a new
// start gives it up: longer than the task's timeout (2 h, cmd/hub/worker.go)
// and its longest silent step.
const closeStaleAfter = 3 * time.Hour

// CloseResult is the result a close run records.
type CloseResult struct {
	Month        string `json:"month"`
	Status       string `json:"status"`
	Statements   int    `json:"statements"`
	Transactions int64  `json:"transactions"`
	ReportSHA256 string `json:"report_sha256"`
}

// StartClose starts closing a period in the background and returns the run
// that does it: a job run of KindClose (internal/jobs) and, in the same
// transaction, the outbox message that queues TypeClosePeriod for it. While
// a close of the month is queued or running, it returns that run with
// started false. What can be told at once is refused at once: Errors:
// *validation.Error, ErrPeriodNotEnded, ErrEarlierPeriodOpen, ErrPeriodClosed
// (a later period is closed). Starting the close of a closed period is
// allowed: its run finds the period closed and changes nothing.
func (s *Service) StartClose(ctx context.Context, monthStr, actor string) (run jobs.Run, started bool, err error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return jobs.Run{}, false, err
	}
	if actor == "" {
		actor = "system"
	}
	now := s.clock()
	if now.Before(m.end()) {
		return jobs.Run{}, false, fmt.Errorf("close %s: %w", m, ErrPeriodNotEnded)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		p, err := ensurePeriod(tx, m, now, false)
		if err != nil {
			return err
		}
		if p.Status != string(PeriodClosed) {
			order, err := selectCloseOrder(tx, m)
			if err != nil {
				return err
			}
			if err := order.check(m); err != nil {
				return err
			}
		}
		run, started, err = jobs.Start(tx, now, jobs.Spec{Kind: KindClose, Key: m.String(), StartedBy: actor, StaleAfter: closeStaleAfter,
			Task: func(id int64) outbox.Message {
				return outbox.Message{TaskType: TypeClosePeriod, Queue: "low", Payload: ClosePeriodPayload{Month: m.String(), RunID: id}}
			}})
		return err
	})
	if err != nil {
		return jobs.Run{}, false, fmt.Errorf("start close of %s: %w", m, err)
	}
	return run, started, nil
}

// closeRun is the work of a close run.
func (s *Service) closeRun(month, actor string) jobs.Work {
	return func(ctx context.Context, p *jobs.Progress) (any, error) {
		per, err := s.Close(ctx, month, actor, p)
		if err != nil {
			return nil, closeTaskError(err)
		}
		var res CloseResult
		res.Month, res.Status, res.ReportSHA256 = per.Month, string(per.Status), per.ReportSHA256
		err = s.db.WithContext(ctx).Raw(`SELECT (SELECT count(*) FROM settlement_statements WHERE period_id = @id) AS statements,
			(SELECT count(*) FROM settlement_period_transactions WHERE period_id = @id) AS transactions`,
			map[string]any{"id": per.ID}).Row().Scan(&res.Statements, &res.Transactions)
		return res, err
	}
}
