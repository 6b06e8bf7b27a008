package points

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/webhooks"
)

// ReviewFlag decides a flag held for review. Approving an earn's flag
// releases its lots: they become available when the contract's pending
// period ends (at once when it has), with the expiry they would have had.
// Rejecting it reverses the earn in full (the programme and the partner's
// webhooks see an ordinary reversal). A member flag (the earn-refund-keep
// pattern) is only closed: approved clears the member, rejected confirms the
// pattern; either way the member's new earns are no longer held for it.
// Everything happens in one transaction, under the flag's lock, so a flag
// is decided once. Errors: abuse.ErrFlagNotFound, abuse.ErrFlagReviewed,
// *validation.Error.
func (t *Transactions) ReviewFlag(ctx context.Context, id int64, approve bool, actor, note string) (abuse.Flag, error) {
	var v validation.Error
	v.Check(actor != "" && len(actor) <= 200, "actor", "is required (at most 200 characters)")
	note = strings.TrimSpace(note)
	v.Check(len(note) <= 500, "note", "is longer than 500 characters")
	v.Check(approve || note != "", "note", "is required to reject: say why")
	if err := v.Err(); err != nil {
		return abuse.Flag{}, err
	}
	status := abuse.StatusRejected
	if approve {
		status = abuse.StatusApproved
	}
	now := t.now()
	var out abuse.Flag
	err := t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		f, err := abuse.LockOpenFlag(tx, id)
		if err != nil {
			return err
		}
		if f.TransactionID != nil {
			l := t.ledger.In(tx)
			if approve {
				at := now
				if f.AvailableAt != nil && f.AvailableAt.After(now) {
					at = *f.AvailableAt
				}
				if _, err := l.Release(ctx, *f.TransactionID, at, f.ExpiresAt); err != nil {
					return err
				}
			} else {
				tr, err := l.Reverse(ctx, ledger.ReverseRequest{
					Idem:          ledger.Idempotency{Scope: "abuse:review", Key: "flag-" + strconv.FormatInt(id, 10)},
					TransactionID: *f.TransactionID, Reason: "rejected in review: " + note})
				if err != nil {
					return err
				}
				if !tr.Replayed {
					if t.Programme != nil {
						if err := t.Programme.Reversed(ctx, tx, tr); err != nil {
							return err
						}
					}
					if _, err := webhooks.Publish(tx, now, f.PartnerID, webhooks.EventTransactionReversed, ViewOf(tr)); err != nil {
						return err
					}
				}
			}
		}
		if err := abuse.CloseFlag(tx, id, status, actor, note, now); err != nil {
			return err
		}
		out, err = abuse.FlagWith(tx, id, 0)
		return err
	})
	if err != nil {
		return abuse.Flag{}, fmt.Errorf("review flag %d: %w", id, err)
	}
	return out, nil
}
