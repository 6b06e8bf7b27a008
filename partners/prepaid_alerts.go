package partners

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"
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
	var rows []struct {
		PartnerID    int64
		BalanceMinor int64
		Currency     string
		Threshold    int64
		Alerted      bool
	}
	// The contract in force per account, and whether an alert stands.
	err := s.db.WithContext(ctx).Raw(`
		SELECT a.partner_id, a.balance_minor, a.currency, COALESCE(c.prepaid_alert_threshold, 0) AS threshold,
			al.partner_id IS NOT NULL AS alerted
		FROM prepaid_accounts a
		LEFT JOIN LATERAL (SELECT prepaid_alert_threshold FROM partner_contracts
			WHERE partner_id = a.partner_id AND effective_from <= ? ORDER BY effective_from DESC LIMIT 1) c ON true
		LEFT JOIN prepaid_alerts al ON al.partner_id = a.partner_id
		ORDER BY a.partner_id`, now).Scan(&rows).Error
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
			if err := s.db.WithContext(ctx).Exec(`DELETE FROM prepaid_alerts WHERE partner_id = ?`, r.PartnerID).Error; err != nil {
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
		res := tx.Exec(`INSERT INTO prepaid_alerts (partner_id, balance_minor, threshold_minor, currency, alerted_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (partner_id) DO NOTHING`, partnerID, balance, threshold, currency, now)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		told = true
		_, err := Publish(tx, now, partnerID, EventPrepaidLowBalance, map[string]any{
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
	var out PrepaidAlertState
	err := s.db.WithContext(ctx).Raw(`SELECT
			COALESCE((SELECT prepaid_alert_threshold FROM partner_contracts WHERE partner_id = ? AND effective_from <= ?
				ORDER BY effective_from DESC LIMIT 1), 0) AS threshold,
			EXISTS (SELECT 1 FROM prepaid_alerts WHERE partner_id = ?) AS low`, partnerID, s.now().UTC(), partnerID).Scan(&out).Error
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
