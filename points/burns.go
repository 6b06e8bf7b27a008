package points

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/webhooks"
)

// Burns of the partner points API: authorise (a ledger hold), capture, void,
// and the one-step burn, each with the member's consent.
// BurnView is a burn as its partner sees it.
type BurnView struct {
	ID             int64            `json:"id"`
	Status         string           `json:"status"`
	MemberID       int64            `json:"member_id"`
	Points         int64            `json:"points"`
	CapturedPoints int64            `json:"captured_points"`
	ExpiresAt      time.Time        `json:"expires_at"`
	ExternalRef    string           `json:"external_ref,omitempty"`
	CreatedAt      time.Time        `json:"created_at"`
	Transaction    *TransactionView `json:"transaction,omitempty"`
}

// View renders b for its partner.
func (b Burn) View() BurnView {
	v := BurnView{ID: b.ID, Status: b.Status, MemberID: b.MemberID, Points: b.Points, CapturedPoints: b.CapturedPoints,
		ExpiresAt: b.ExpiresAt.UTC(), ExternalRef: b.ExternalRef, CreatedAt: b.CreatedAt.UTC()}
	if b.Transaction != nil {
		t := ViewOf(*b.Transaction)
		v.Transaction = &t
	}
	return v
}

// BurnInput is a burn as a partner sends it. Capture false authorises only
// (a hold to capture or void later).
type BurnInput struct {
	MemberID       int64
	Points         int64
	RedemptionCode string
	PIN            string
	Capture        bool
	ExpiresAt      time.Time // for authorisations; default now + HoldTTL
	ExternalRef    string
	Outlet         string
	OccurredAt     time.Time
	// Card is the identifier the member presented, when the partner sends
	// it: the card velocity limit counts per card.
	Card string
}

// Burn is the partner's view of a burn: an authorisation (hold) and, once
// captured, its transaction.
type Burn struct {
	ID             int64               `json:"id"`
	Status         string              `json:"status"` // authorized, captured, voided, expired
	MemberID       int64               `json:"member_id"`
	Points         int64               `json:"points"`
	CapturedPoints int64               `json:"captured_points"`
	ExpiresAt      time.Time           `json:"expires_at"`
	ExternalRef    string              `json:"external_ref,omitempty"`
	CreatedAt      time.Time           `json:"created_at"`
	Transaction    *ledger.Transaction `json:"transaction,omitempty"`
	Replayed       bool                `json:"-"`
}

func burnOf(h ledger.Hold, tr *ledger.Transaction) Burn {
	status := map[ledger.HoldStatus]string{ledger.HoldActive: "authorized", ledger.HoldCaptured: "captured",
		ledger.HoldVoided: "voided", ledger.HoldExpired: "expired"}[h.Status]
	return Burn{ID: h.ID, Status: status, MemberID: h.MemberID, Points: int64(h.Points),
		CapturedPoints: int64(h.Captured), ExpiresAt: h.ExpiresAt, ExternalRef: h.ExternalRef,
		CreatedAt: h.CreatedAt, Transaction: tr, Replayed: h.Replayed}
}

// Burn authorises (and, with Capture, captures at once) a burn with the
// member's consent. The consent is checked first, so a card number without
// it learns nothing (not even whether the points would suffice); a refused
// consent counts towards the member's lockout unless the request replays an
// earlier one under its key, which is answered without fresh consent (its
// code is used, its PIN may have changed, the member may be locked out
// since). A malformed code or PIN is a *validation.Error and counts nothing.
// A one-step burn is one ledger BurnHeld: the hold is written captured, with
// the records a hold and its capture under idem and subKey(idem, "capture")
// would leave, so replays read the same either way.
func (t *Transactions) Burn(ctx context.Context, p access.Principal, idem ledger.Idempotency, in BurnInput) (Burn, error) {
	var v validation.Error
	v.Check(in.MemberID > 0, "member_id", "is required")
	v.Check(in.Points > 0, "points", "must be a positive integer")
	v.Check(in.RedemptionCode != "" || in.PIN != "", "redemption_code", "a redemption code or a PIN is required")
	members.CheckConsentFormat(&v, in.RedemptionCode, in.PIN)
	v.Check(len(in.ExternalRef) <= 200, "external_ref", "is longer than 200 characters")
	v.Check(len(in.Card) <= 100, "card", "is longer than 100 characters")
	now := t.now()
	if in.ExpiresAt.IsZero() {
		in.ExpiresAt = now.Add(t.HoldTTL)
	}
	v.Check(in.ExpiresAt.After(now) && in.ExpiresAt.Before(now.AddDate(0, 0, 31)), "expires_at", "must be within the next 30 days")
	if err := v.Err(); err != nil {
		return Burn{}, err
	}
	if in.OccurredAt.IsZero() {
		in.OccurredAt = now
	}
	// One round trip when the partner's configuration is cached: the member
	// check reads its stamp.
	stamp, err := t.checkMember(ctx, in.MemberID, p.PartnerID)
	if err != nil {
		return Burn{}, err
	}
	cfg, err := t.config(ctx, p.PartnerID, stamp)
	if err != nil {
		return Burn{}, err
	}
	c, err := cfg.contractAt(p.PartnerID, in.OccurredAt, false)
	if err != nil {
		return Burn{}, err
	}
	details, _ := json.Marshal(map[string]any{"contract": map[string]any{"id": c.ID, "version": c.Version,
		"redemption_rate": c.RedemptionRate.String(), "currency": c.Currency}, "outlet": in.Outlet,
		"reimbursement_minor": money.PointsValue(in.Points, c.RedemptionRate, c.Currency)})
	req := ledger.HoldRequest{Idem: idem, MemberID: in.MemberID, PartnerID: p.PartnerID,
		Points: ledger.Points(in.Points), ExpiresAt: in.ExpiresAt, Purpose: "pos",
		ExternalRef: in.ExternalRef, Details: details}
	var out Burn
	// post runs the ledger side in tx; authorize (when not nil) is asked
	// before a new hold or burn is written, not for a replay.
	post := func(tx *gorm.DB, authorize func(*gorm.DB) error) error {
		// The ledger joins this transaction without savepoints: any error
		// rolls the whole of it back.
		l := t.ledger.Joined(tx)
		if in.Capture {
			h, tr, err := l.BurnHeld(ctx, req, subKey(idem, "capture"), authorize)
			if err != nil {
				return err
			}
			if h.Replayed {
				out = burnOf(h, nil)
				if h.CaptureTransactionID != 0 {
					out.Transaction = &tr
				}
				return nil
			}
			out = burnOf(h, &tr)
			return publish(tx, cfg, t.now(), p.PartnerID, webhooks.EventBurnCaptured, out.View())
		}
		h, err := l.Hold(ctx, req)
		if err != nil {
			return err
		}
		if h.Replayed {
			out, err = t.burnView(ctx, l, h)
			out.Replayed = true
			return err
		}
		if authorize != nil {
			if err := authorize(tx); err != nil {
				return err
			}
		}
		out = burnOf(h, nil)
		return nil
	}
	// A partner's burn velocity limits count a new burn (not a replay) in
	// its transaction: over a limit, the burn is refused and rolled back
	// with its count (abuse.CheckBurn).
	var velocity func(*gorm.DB) error
	if cfg.abuse.Burns() {
		velocity = func(tx *gorm.DB) error {
			return abuse.CheckBurn(tx, now, cfg.abuse, p.PartnerID, in.MemberID, in.Card)
		}
	}
	// The consent comes first, under the member's consent lock: a refusal
	// is committed alone, before the member's next check may run, and
	// needs no other connection (members.BurnConsent.Verify).
	var refused error
	err = database.Transaction(ctx, t.db, func(tx *gorm.DB) error {
		err := t.consent.Verify(ctx, tx, in.MemberID, p.PartnerID, in.RedemptionCode, in.PIN)
		if err == nil {
			return post(tx, velocity)
		}
		if !errors.Is(err, members.ErrConsentInvalid) && !errors.Is(err, members.ErrConsentLocked) {
			return err
		}
		refused = err
		// A replay carries the consent of the request it repeats, spent
		// since (a used code) or changed (a PIN), and may come after others
		// locked the member out: its key answers it, and its refusal is no
		// failure.
		if used, err := t.ledger.Joined(tx).KeyUsed(ctx, idem); err != nil || used {
			return cmp.Or(err, errReplay)
		}
		return nil
	})
	if errors.Is(err, errReplay) {
		// Rolled back (the failure with it): answer from the key, and refuse
		// should the ledger find no earlier request after all.
		err = database.Transaction(ctx, t.db, func(tx *gorm.DB) error {
			return post(tx, func(*gorm.DB) error { return refused })
		})
	} else if err == nil && refused != nil {
		err = refused
	}
	if err != nil {
		return Burn{}, fmt.Errorf("burn for member %d: %w", in.MemberID, err)
	}
	return out, nil
}

// errReplay rolls back a burn's refused consent when the request replays
// an earlier one.
var errReplay = errors.New("replay of an earlier burn")

// subKey derives the idempotency of a step inside one request.
func subKey(idem ledger.Idempotency, step string) ledger.Idempotency {
	return ledger.Idempotency{Scope: idem.Scope, Key: idem.Key + "#" + step, RequestHash: idem.RequestHash}
}

func (t *Transactions) burnView(ctx context.Context, l *ledger.Service, h ledger.Hold) (Burn, error) {
	h, err := l.GetHold(ctx, h.ID)
	if err != nil {
		return Burn{}, err
	}
	if h.CaptureTransactionID == 0 {
		return burnOf(h, nil), nil
	}
	tr, err := l.Get(ctx, h.CaptureTransactionID)
	if err != nil {
		return Burn{}, err
	}
	return burnOf(h, &tr), nil
}

// GetBurn returns the partner's burn, or ErrBurnNotFound for anyone else's.
func (t *Transactions) GetBurn(ctx context.Context, p access.Principal, id int64) (Burn, error) {
	h, err := t.ledger.GetHold(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && (h.PartnerID != p.PartnerID || h.Purpose != "pos")) {
		return Burn{}, fmt.Errorf("burn %d: %w", id, ErrBurnNotFound)
	}
	if err != nil {
		return Burn{}, err
	}
	return t.burnView(ctx, t.ledger, h)
}

// Capture captures an authorised burn, fully (points 0) or partly.
func (t *Transactions) Capture(ctx context.Context, p access.Principal, idem ledger.Idempotency, id, points int64) (Burn, error) {
	if points < 0 {
		return Burn{}, validation.New("points", "must not be negative")
	}
	if _, err := t.GetBurn(ctx, p, id); err != nil {
		return Burn{}, err
	}
	var out Burn
	err := t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		l := t.ledger.In(tx)
		tr, err := l.Capture(ctx, ledger.CaptureRequest{Idem: idem, HoldID: id, Points: ledger.Points(points)})
		if err != nil {
			return err
		}
		h, err := l.GetHold(ctx, id)
		if err != nil {
			return err
		}
		out = burnOf(h, &tr)
		out.Replayed = tr.Replayed
		if tr.Replayed {
			return nil
		}
		_, err = webhooks.Publish(tx, t.now(), p.PartnerID, webhooks.EventBurnCaptured, out.View())
		return err
	})
	if err != nil {
		return Burn{}, fmt.Errorf("capture burn %d: %w", id, err)
	}
	return out, nil
}

// Void releases an authorised burn.
func (t *Transactions) Void(ctx context.Context, p access.Principal, idem ledger.Idempotency, id int64) (Burn, error) {
	if _, err := t.GetBurn(ctx, p, id); err != nil {
		return Burn{}, err
	}
	h, err := t.ledger.Void(ctx, ledger.VoidRequest{Idem: idem, HoldID: id})
	if err != nil {
		return Burn{}, fmt.Errorf("void burn %d: %w", id, err)
	}
	b := burnOf(h, nil)
	b.Replayed = h.Replayed
	return b, nil
}
