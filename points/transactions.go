package points

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
)

// Errors of the partner points API.
var (
	// ErrRoleNotInContract: the partner's contract in force has no earn (or burn) role.
	ErrRoleNotInContract = errors.New("the partner's contract does not allow this")
	// ErrDailyCapReached: the member already earned the contract's daily cap at this partner.
	ErrDailyCapReached = errors.New("daily earn cap for this member reached")
	// ErrNothingToEarn: the purchase earns no points under the rule in force
	// (excluded categories, below the minimum): nothing is posted.
	ErrNothingToEarn = errors.New("the purchase earns no points")
	// ErrNotYourObject is never returned to callers: a partner asking for
	// another partner's object gets ErrTransactionNotFound, as if it did not exist.
	ErrTransactionNotFound = errors.New("transaction not found")
	ErrBurnNotFound        = errors.New("burn not found")
	ErrMemberNotVisible    = errors.New("member not found")
)

// Transactions is the partner-facing points API: earn, burn with holds,
// reversals and reads, each scoped to the calling partner. It composes the
// registry (contracts, prepaid), the earn rules, the member base, burn consent
// and the ledger inside one database transaction per request, and publishes
// webhooks through the outbox in that same transaction.
type Transactions struct {
	db       *gorm.DB
	ledger   *ledger.Service
	members  *members.Service
	consent  *members.BurnConsent
	registry *partners.Service
	rules    *rules.Service
	now      func() time.Time
	// HoldTTL is how long an authorised burn stays capturable by default.
	HoldTTL time.Duration
	// DefaultExpiry is the lifetime of earned points when the programme sets
	// one (the programme sets it); 0 = points never expire.
	// Ignored when Programme is set.
	DefaultExpiry time.Duration
	// Programme, when set, supplies the member's tier to the earn rules and
	// the expiry of earned points, and is told of every posted earn and
	// reversal inside its database transaction (qualifying credits, dual
	// accrual). Package programme implements it.
	Programme Programme
	// GroupCommit says how single earns are gathered into batches.
	GroupCommit GroupCommit

	configs configCache
	group   coalescer
}

// Programme is what the points API needs from the programme rules. Declared
// here, by its consumer, so that partners does not import programme; package
// programme implements it.
type Programme interface {
	// MemberTiers returns the tier code of each member asked ("" for none).
	MemberTiers(ctx context.Context, memberIDs []int64) (map[int64]string, error)
	// EarnExpiry returns when points earned at occurred expire (nil = no expiry of their own).
	EarnExpiry(ctx context.Context, occurred time.Time) (*time.Time, error)
	// CreditEarns records what the earns about to be posted count toward
	// (qualifying credits), inside their database transaction, after their
	// idempotency keys are claimed and before the ledger locks their members.
	// It gets each earn as it will be posted (transaction id, member,
	// occurred_at, the partner-funded points as the issued entry) and
	// returns the rest, called with the earns once posted.
	CreditEarns(ctx context.Context, tx *gorm.DB, earns []PostedEarn) (EarnedRest, error)
	// Reversed is called once per newly posted reversal, inside its transaction.
	Reversed(ctx context.Context, tx *gorm.DB, reversal ledger.Transaction) error
}

// EarnedRest is what the programme does once the earns it credited are
// posted, inside their transaction (upgrades, company credits).
type EarnedRest func(ctx context.Context, tx *gorm.DB, posted []PostedEarn) error

// PostedEarn is an earn the points API just posted, with the purchase it paid for.
type PostedEarn struct {
	PartnerID   int64
	Input       EarnInput
	Transaction ledger.Transaction
}

// NewTransactions wires the points API.
func NewTransactions(db *gorm.DB, l *ledger.Service, m *members.Service, c *members.BurnConsent,
	registry *partners.Service, rules *rules.Service, now func() time.Time) *Transactions {
	t := &Transactions{db: db, ledger: l, members: m, consent: c, registry: registry, rules: rules, now: now,
		HoldTTL: 7 * 24 * time.Hour, GroupCommit: DefaultGroupCommit}
	t.group.post = t.post
	t.group.settings = func() GroupCommit { return t.GroupCommit }
	return t
}

// EarnInput is an earn (or its quote) as a partner sends it.
type EarnInput struct {
	MemberID    int64
	Amount      money.Money
	Lines       []rules.Line
	Activity    []rules.Activity
	EventCode   string
	PromoCodes  []string
	OccurredAt  time.Time
	ExternalRef string
	Outlet      string
	// Card is the identifier the member presented (a card number), when
	// the partner sends it: the card velocity limits count per card.
	Card string
}

// validate checks in before pricing; Earn, QuoteEarn and EarnBatch share it.
func (in EarnInput) validate(now time.Time) error {
	var v validation.Error
	v.Check(in.MemberID > 0, "member_id", "is required")
	v.Check(!in.OccurredAt.IsZero(), "occurred_at", "is required")
	// Bounds used by airline partner APIs: at most 14 months back, 2 days ahead.
	v.Check(in.OccurredAt.IsZero() || !in.OccurredAt.Before(now.AddDate(0, -14, 0)), "occurred_at", "is more than 14 months ago")
	v.Check(in.OccurredAt.IsZero() || !in.OccurredAt.After(now.Add(48*time.Hour)), "occurred_at", "is more than 2 days in the future")
	v.Check(len(in.ExternalRef) <= 200, "external_ref", "is longer than 200 characters")
	v.Check(len(in.Card) <= 100, "card", "is longer than 100 characters")
	v.Check(in.Amount.Minor >= 0, "amount.minor", "must not be negative")
	v.Check(in.Amount.Minor < 1e13, "amount.minor", "is too large")
	// An amount of 0 prices nothing unless activity or an event does.
	v.Check(in.Amount.Minor != 0 || len(in.Activity) > 0 || in.EventCode != "", "amount.minor",
		"must be above 0 (0 only beside activity or an event_code)")
	return v.Err()
}

// earnDetails is stored on every posted earn: how it was priced and billed.
type earnDetails struct {
	Quote    rules.QuoteRecord `json:"quote"`
	Contract struct {
		ID          int64  `json:"id"`
		Version     int    `json:"version"`
		IssuePrice  string `json:"issue_price"`
		Currency    string `json:"currency"`
		Billing     string `json:"billing"`
		PendingDays int    `json:"pending_days"`
	} `json:"contract"`
	Capped      int64  `json:"capped_points,omitempty"`
	ChargeMinor int64  `json:"charge_minor"`
	Outlet      string `json:"outlet,omitempty"`
}

// Visible reports whether partnerID may see memberID: the member enrolled
// through the partner, holds one of its references (a frequent-flyer number),
// or has transacted with it. Everything else answers as not found.
func (t *Transactions) Visible(ctx context.Context, partnerID, memberID int64) (bool, error) {
	ok, err := t.members.KnownTo(ctx, memberID, partnerID)
	if err != nil || ok {
		return ok, err
	}
	return t.ledger.Transacted(ctx, memberID, partnerID)
}

// QuoteEarn prices an earn without posting it.
func (t *Transactions) QuoteEarn(ctx context.Context, p access.Principal, in EarnInput) (rules.Quote, error) {
	if err := in.validate(t.now()); err != nil {
		return rules.Quote{}, err
	}
	_, c, q, err := t.price(ctx, p.PartnerID, in)
	if err != nil {
		return rules.Quote{}, err
	}
	return capQuote(q, c), nil
}

// price checks the member and prices the earn in with the configuration in
// force: one round trip when the partner's configuration is cached (the
// member check with the configuration stamp), a second for the tier when the
// rule or a promotion depends on it.
func (t *Transactions) price(ctx context.Context, partnerID int64, in EarnInput) (*partnerConfig, partners.Contract, rules.Quote, error) {
	stamp, err := t.checkMember(ctx, in.MemberID, partnerID)
	if err != nil {
		return nil, partners.Contract{}, rules.Quote{}, err
	}
	cfg, err := t.config(ctx, partnerID, stamp)
	if err != nil {
		return nil, partners.Contract{}, rules.Quote{}, err
	}
	c, err := cfg.contractAt(partnerID, in.OccurredAt, true)
	if err != nil {
		return nil, partners.Contract{}, rules.Quote{}, err
	}
	var tier string
	if t.Programme != nil && cfg.tiers {
		tiers, err := t.Programme.MemberTiers(ctx, []int64{in.MemberID})
		if err != nil {
			return nil, partners.Contract{}, rules.Quote{}, err
		}
		tier = tiers[in.MemberID]
	}
	q, err := cfg.quote(rules.Purchase{PartnerID: partnerID, OccurredAt: in.OccurredAt, Amount: in.Amount,
		Lines: in.Lines, Activity: in.Activity, EventCode: in.EventCode, PromoCodes: in.PromoCodes, MemberTier: tier})
	return cfg, c, q, err
}

// publish is Publish for a partner whose configuration says whether it has
// any active endpoint: none (the common case) costs no round trip.
func publish(tx *gorm.DB, cfg *partnerConfig, now time.Time, partnerID int64, eventType string, data any) error {
	if !cfg.endpoints {
		return nil
	}
	_, err := webhooks.Publish(tx, now, partnerID, eventType, data)
	return err
}

// capQuote applies the contract's per-transaction cap to partner-funded points.
func capQuote(q rules.Quote, c partners.Contract) rules.Quote {
	if c.CapPerTransaction > 0 && q.Points > c.CapPerTransaction {
		cut := q.Points - c.CapPerTransaction
		q.Breakdown = append(q.Breakdown, rules.QuoteLine{Kind: rules.LineCap, Description: "contract cap per transaction",
			Points: -cut, Rate: fmt.Sprint(c.CapPerTransaction), FundedBy: rules.FundedByPartner})
		q.Points -= cut
		q.Total -= cut
	}
	return q
}

// Earn prices and posts an earn. Idempotent under idem: a replay returns the
// stored transaction and draws down nothing twice. Prepaid partners are
// refused with ErrPrepaidExhausted when their balance cannot pay the points.
//
// The earn is an item of a batch (EarnBatch's path): concurrent earns are
// gathered by the group commit (GroupCommit) and posted together in one
// database transaction, each with its own outcome; an earn that arrives when
// nothing else is in flight is posted at once. It returns once its batch has
// committed (or failed).
func (t *Transactions) Earn(ctx context.Context, p access.Principal, idem ledger.Idempotency, in EarnInput) (ledger.Transaction, error) {
	if err := in.validate(t.now()); err != nil {
		return ledger.Transaction{}, err
	}
	o := t.group.submit(ctx, partnerEarn{PartnerID: p.PartnerID, BatchEarn: BatchEarn{Idem: idem, Input: in}})
	return o.Transaction, o.Err
}

// TransactionView is a ledger transaction as its partner sees it, in API
// responses and webhooks: no account ids and no lot attributions (those name
// other partners).
type TransactionView struct {
	ID           int64           `json:"id"`
	Type         string          `json:"type"`
	MemberID     int64           `json:"member_id"`
	Points       int64           `json:"points"`
	OccurredAt   time.Time       `json:"occurred_at"`
	PostedAt     time.Time       `json:"posted_at"`
	ExternalRef  string          `json:"external_ref,omitempty"`
	ReversesID   int64           `json:"reverses_id,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	BalanceAfter int64           `json:"balance_after"`
	Details      json.RawMessage `json:"details,omitempty"`
}

// ViewOf renders t for its partner.
func ViewOf(t ledger.Transaction) TransactionView {
	return TransactionView{ID: t.ID, Type: string(t.Type), MemberID: t.MemberID, Points: int64(t.Points),
		OccurredAt: t.OccurredAt.UTC(), PostedAt: t.PostedAt.UTC(), ExternalRef: t.ExternalRef,
		ReversesID: t.ReversesID, Reason: t.Reason, BalanceAfter: int64(t.BalanceAfter), Details: t.Details}
}

// Reverse reverses the partner's own earn or burn (a return, a cancelled
// stay), fully or partly; capped by the ledger at what remains reversible.
func (t *Transactions) Reverse(ctx context.Context, p access.Principal, idem ledger.Idempotency, txID, points int64, reason, ref string) (ledger.Transaction, error) {
	var v validation.Error
	v.Check(points >= 0, "points", "must not be negative")
	v.Check(strings.TrimSpace(reason) != "" && len(reason) <= 500, "reason", "is required (at most 500 characters)")
	v.Check(len(ref) <= 200, "external_ref", "is longer than 200 characters")
	if err := v.Err(); err != nil {
		return ledger.Transaction{}, err
	}
	orig, err := t.Get(ctx, p, txID)
	if err != nil {
		return ledger.Transaction{}, err
	}
	if orig.Type != ledger.TypeEarn && orig.Type != ledger.TypeBurn && orig.Type != ledger.TypeCapture {
		return ledger.Transaction{}, validation.New("transaction_id", "only earns and burns can be reversed")
	}
	var out ledger.Transaction
	err = t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		tr, err := t.ledger.In(tx).Reverse(ctx, ledger.ReverseRequest{Idem: idem, TransactionID: txID,
			Points: ledger.Points(points), Reason: reason, ExternalRef: ref})
		if err != nil {
			return err
		}
		out = tr
		if tr.Replayed {
			return nil
		}
		if t.Programme != nil {
			if err := t.Programme.Reversed(ctx, tx, tr); err != nil {
				return err
			}
		}
		_, err = webhooks.Publish(tx, t.now(), p.PartnerID, webhooks.EventTransactionReversed, ViewOf(tr))
		return err
	})
	if err != nil {
		return ledger.Transaction{}, fmt.Errorf("reverse transaction %d: %w", txID, err)
	}
	return out, nil
}

// Get returns one of the partner's transactions; any other answers
// ErrTransactionNotFound.
func (t *Transactions) Get(ctx context.Context, p access.Principal, id int64) (ledger.Transaction, error) {
	tr, err := t.ledger.Get(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && tr.PartnerID != p.PartnerID) {
		return ledger.Transaction{}, fmt.Errorf("transaction %d: %w", id, ErrTransactionNotFound)
	}
	return tr, err
}

// List pages through the partner's transactions.
func (t *Transactions) List(ctx context.Context, p access.Principal, f ledger.Filter) ([]ledger.Transaction, string, error) {
	f.PartnerID = p.PartnerID
	return t.ledger.List(ctx, f)
}
