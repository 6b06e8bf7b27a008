package settlement

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/webhooks"
)

// Transition is one recorded step of a statement's life: created by the
// close, approved, sent, paid (its balance reached zero). Actor is who did
// it ("staff:<email>", or "system" for the scheduler and automatic steps).
type Transition struct {
	Action string          `json:"action"`
	From   StatementStatus `json:"from,omitempty"`
	To     StatementStatus `json:"to"`
	Actor  string          `json:"actor"`
	At     time.Time       `json:"at"`
	Note   string          `json:"note,omitempty"`
}

// Transitions lists the steps of a statement, oldest first. Errors:
// ErrStatementNotFound.
func (s *Service) Transitions(ctx context.Context, statementID int64) ([]Transition, error) {
	db := s.db.WithContext(ctx)
	if _, err := getStatement(db, statementID, false); err != nil {
		return nil, err
	}
	return selectTransitions(db, statementID)
}

func selectTransitions(tx *gorm.DB, statementID int64) ([]Transition, error) {
	var rows []struct {
		Action     string
		FromStatus *string
		ToStatus   string
		Actor      string
		At         time.Time
		Note       string
	}
	if err := tx.Raw(`SELECT action, from_status, to_status, actor, at, note FROM settlement_statement_transitions
		WHERE statement_id = ? ORDER BY id`, statementID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Transition, len(rows))
	for i, r := range rows {
		out[i] = Transition{Action: r.Action, To: StatementStatus(r.ToStatus), Actor: r.Actor, At: r.At.UTC(), Note: r.Note}
		if r.FromStatus != nil {
			out[i].From = StatementStatus(*r.FromStatus)
		}
	}
	return out, nil
}

// recordTransition writes one step of a statement.
func recordTransition(tx *gorm.DB, statementID int64, action string, from, to StatementStatus, actor string, at time.Time, note string) error {
	var fromCol *string
	if from != "" {
		f := string(from)
		fromCol = &f
	}
	if actor == "" {
		actor = "system"
	}
	return tx.Exec(`INSERT INTO settlement_statement_transitions (statement_id, action, from_status, to_status, actor, at, note)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, statementID, action, fromCol, string(to), actor, at, note).Error
}

// ApprovalLimit is the net (absolute value, in minor units of Currency)
// below which one person may close a period and approve its statement.
type ApprovalLimit struct {
	Currency   string    `json:"currency"`
	BelowMinor int64     `json:"below_minor"`
	UpdatedAt  time.Time `json:"updated_at"`
	UpdatedBy  string    `json:"updated_by"`
}

// SetApprovalLimit stores the single-approver limit of a currency; a limit
// of 0 removes it (every approval then needs two people). Errors:
// *validation.Error.
func (s *Service) SetApprovalLimit(ctx context.Context, currency string, belowMinor int64, actor string) (ApprovalLimit, error) {
	var v validation.Error
	v.Check(currencyOK(currency), "currency", "must be an ISO 4217 code")
	v.Check(belowMinor >= 0, "below_minor", "must be 0 (no limit) or more")
	if err := v.Err(); err != nil {
		return ApprovalLimit{}, err
	}
	now := s.clock()
	db := s.db.WithContext(ctx)
	if belowMinor == 0 {
		return ApprovalLimit{Currency: currency, UpdatedAt: now, UpdatedBy: actor},
			db.Exec(`DELETE FROM settlement_approval_limits WHERE currency = ?`, currency).Error
	}
	err := db.Exec(`INSERT INTO settlement_approval_limits (currency, below_minor, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (currency) DO UPDATE SET below_minor = EXCLUDED.below_minor, updated_at = EXCLUDED.updated_at,
		updated_by = EXCLUDED.updated_by`, currency, belowMinor, now, actor).Error
	return ApprovalLimit{Currency: currency, BelowMinor: belowMinor, UpdatedAt: now, UpdatedBy: actor}, err
}

// ApprovalLimits lists the single-approver limits by currency.
func (s *Service) ApprovalLimits(ctx context.Context) ([]ApprovalLimit, error) {
	var out []ApprovalLimit
	err := s.db.WithContext(ctx).Raw(`SELECT currency, below_minor, updated_at, updated_by FROM settlement_approval_limits
		ORDER BY currency`).Scan(&out).Error
	return out, err
}

// fourEyes returns ErrFourEyes when actor may not approve st: the approver
// must be neither the person who closed the period nor the one who last
// changed the statement, unless its net is below the single-approver limit
// of its currency.
func fourEyes(tx *gorm.DB, st Statement, actor string) error {
	var who struct {
		ClosedBy   string
		LastActor  string
		BelowMinor *int64
	}
	if err := tx.Raw(`SELECT p.closed_by,
		coalesce((SELECT t.actor FROM settlement_statement_transitions t WHERE t.statement_id = s.id ORDER BY t.id DESC LIMIT 1), '') AS last_actor,
		(SELECT l.below_minor FROM settlement_approval_limits l WHERE l.currency = s.currency) AS below_minor
		FROM settlement_statements s JOIN settlement_periods p ON p.id = s.period_id WHERE s.id = ?`, st.ID).Scan(&who).Error; err != nil {
		return err
	}
	var why string
	switch actor {
	case who.ClosedBy:
		why = "closed its period"
	case who.LastActor:
		why = "made its last change"
	default:
		return nil
	}
	if who.BelowMinor != nil && abs(st.Net.Minor) < *who.BelowMinor {
		return nil
	}
	limit := "no single-approver limit is set for " + st.Net.Currency
	if who.BelowMinor != nil {
		limit = "its net is not below the single-approver limit of " + money.Format(*who.BelowMinor, st.Net.Currency)
	}
	return fmt.Errorf("statement %d: %s %s and %s; another finance user must approve it: %w", st.ID, actor, why, limit, ErrFourEyes)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// step moves a statement from one state to the next under the row lock,
// records the transition, then runs after in the same transaction.
func (s *Service) step(ctx context.Context, id int64, from, to StatementStatus, actor string,
	before func(tx *gorm.DB, st Statement, now time.Time) error,
	after func(tx *gorm.DB, st Statement, now time.Time) error) (Statement, error) {
	var out Statement
	now := s.clock()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st, err := getStatement(tx, id, true)
		if err != nil {
			return err
		}
		if st.Status != from {
			return fmt.Errorf("statement %d is %s, not %s: %w", id, st.Status, from, ErrStatementState)
		}
		if before != nil {
			if err := before(tx, st, now); err != nil {
				return err
			}
		}
		set := map[StatementStatus]string{
			StatementApproved: "status = 'approved', approved_at = @now, approved_by = @actor",
			StatementSent:     "status = 'sent', sent_at = @now",
			StatementPaid:     "status = 'paid', paid_at = @now",
		}[to]
		if err := tx.Exec(`UPDATE settlement_statements SET `+set+` WHERE id = @id`,
			map[string]any{"now": now, "actor": actor, "id": id}).Error; err != nil {
			return err
		}
		if err := recordTransition(tx, id, string(to), from, to, actor, now, ""); err != nil {
			return err
		}
		if out, err = getStatement(tx, id, false); err != nil {
			return err
		}
		if after != nil {
			return after(tx, out, now)
		}
		return nil
	})
	return out, err
}

// Approve moves a draft statement to approved and issues its invoice (the
// partner owes) or self-billed credit note (the operator owes), numbered in
// the same transaction. actor must be neither the period's closer nor the
// statement's last changer (four eyes) unless the net is below the
// single-approver limit of its currency. Errors: ErrStatementNotFound,
// ErrStatementState, ErrFourEyes, ErrBillingDetails.
func (s *Service) Approve(ctx context.Context, id int64, actor string) (Statement, error) {
	if actor == "" {
		return Statement{}, validation.New("actor", "is required")
	}
	return s.step(ctx, id, StatementDraft, StatementApproved, actor,
		func(tx *gorm.DB, st Statement, now time.Time) error {
			if err := fourEyes(tx, st, actor); err != nil {
				return err
			}
			_, err := s.issue(tx, st, actor, now)
			return err
		}, nil)
}

// StatementReady is the data of the statement.ready webhook.
type StatementReady struct {
	StatementID int64       `json:"statement_id"`
	Period      string      `json:"period"`
	Net         money.Money `json:"net"`
	Direction   string      `json:"direction"`
	SHA256      string      `json:"sha256"`
}

// Send moves an approved statement to sent and publishes statement.ready to
// the partner's webhooks in the same transaction; a statement with nothing
// left to pay (a zero net, or paid in full before sending) is paid at once.
// Errors: ErrStatementNotFound, ErrStatementState.
func (s *Service) Send(ctx context.Context, id int64, actor string) (Statement, error) {
	st, err := s.step(ctx, id, StatementApproved, StatementSent, actor, nil,
		func(tx *gorm.DB, st Statement, now time.Time) error {
			if _, err := webhooks.Publish(tx, now, st.PartnerID, webhooks.EventStatementReady, StatementReady{
				StatementID: st.ID, Period: st.Period, Net: st.Net, Direction: st.Document.Direction, SHA256: st.SHA256}); err != nil {
				return err
			}
			return settleIfZero(tx, st.ID, now, actor)
		})
	if err != nil {
		return Statement{}, err
	}
	return s.Statement(ctx, st.ID)
}
