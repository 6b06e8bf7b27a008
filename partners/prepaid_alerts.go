package partners

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/webhooks"
)

// TypePrepaidAlerts checks every prepaid balance against its contract's
// alert threshold and tells the partners that fell below it. Never renamed.
const TypePrepaidAlerts = "partners:prepaid_alerts"

// PrepaidAlertRun is what one run of the prepaid alerts job did.
type PrepaidAlertRun struct {
	Checked int     `json:"checked"` // prepaid accounts whose contract in force has a threshold
	Alerted []int64 `json:"alerted"` // partners told now (prepaid.low_balance published)
	Rearmed []int64 `json:"rearmed"` // partners back at or above their threshold
}

// PrepaidAlertState is a prepaid partner's alert standing, for the console.
type PrepaidAlertState struct {
	Threshold int64 // minor units, from the contract in force; 0: no alert
	Low       bool  // an alert was sent for the current crossing
}

// RunPrepaidAlerts compares each prepaid balance with the alert threshold of
// the partner's contract in force now. A partner below it that has not been
// told since it last crossed is told once: a prepaid.low_balance webhook
// event, published through the outbox in the transaction that records the
// alert (prepaid_alerts), so a failed run neither loses nor repeats it. A
// partner at or above its threshold again (after a top-up, or a lower
// threshold) is re-armed for the next crossing. Running it again at once
// changes nothing.
func (s *Service) RunPrepaidAlerts(ctx context.Context) (PrepaidAlertRun, error) {
	now := s.now().UTC()
	rows, err := selectPrepaidStandings(s.db.WithContext(ctx), now)
	if err != nil {
		return PrepaidAlertRun{}, fmt.Errorf("prepaid alerts: %w", err)
	}
	run := PrepaidAlertRun{Alerted: []int64{}, Rearmed: []int64{}}
	for _, r := range rows {
		if r.Threshold > 0 {
			run.Checked++
		}
		low := r.Threshold > 0 && r.BalanceMinor < r.Threshold
		switch {
		case low && !r.Alerted:
			told, err := s.alertLow(ctx, r.PartnerID, r.BalanceMinor, r.Threshold, r.Currency)
			if err != nil {
				return run, err
			}
			if told {
				run.Alerted = append(run.Alerted, r.PartnerID)
			}
		case !low && r.Alerted:
			if err := deletePrepaidAlert(s.db.WithContext(ctx), r.PartnerID); err != nil {
				return run, fmt.Errorf("re-arm prepaid alert of partner %d: %w", r.PartnerID, err)
			}
			run.Rearmed = append(run.Rearmed, r.PartnerID)
		}
	}
	return run, nil
}

// alertLow records the alert and publishes the event in one transaction;
// told is false when another run recorded it first.
func (s *Service) alertLow(ctx context.Context, partnerID, balance, threshold int64, currency string) (told bool, err error) {
	now := s.now().UTC()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		inserted, err := insertPrepaidAlert(tx, partnerID, balance, threshold, currency, now)
		if err != nil || !inserted {
			return err
		}
		told = true
		_, err = webhooks.Publish(tx, now, partnerID, webhooks.EventPrepaidLowBalance, map[string]any{
			"partner_id": partnerID,
			"balance":    map[string]any{"minor": balance, "currency": currency},
			"threshold":  map[string]any{"minor": threshold, "currency": currency},
		})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("prepaid alert of partner %d: %w", partnerID, err)
	}
	return told, nil
}

// PrepaidAlert returns the partner's alert threshold in force and whether an
// alert stands for the current crossing.
func (s *Service) PrepaidAlert(ctx context.Context, partnerID int64) (PrepaidAlertState, error) {
	out, err := selectPrepaidAlert(s.db.WithContext(ctx), partnerID, s.now().UTC())
	if err != nil {
		return PrepaidAlertState{}, fmt.Errorf("prepaid alert of partner %d: %w", partnerID, err)
	}
	return out, nil
}

// HandlePrepaidAlerts handles TypePrepaidAlerts. Idempotent.
func HandlePrepaidAlerts(s *Service) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		_, err := s.RunPrepaidAlerts(ctx)
		return err
	}
}
