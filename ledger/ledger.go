package ledger

import (
	"encoding/json"
	"time"
)

// Points is an amount of the coalition currency. Always an integer.
type Points int64

// AccountKind names what an account is for. An account is identified by
// (kind, owner_id): owner_id is a member id for KindMember, a partner id for the
// partner kinds and 0 for the operator kinds.
type AccountKind string

// The account kinds of the chart of accounts.
const (
	KindMember              AccountKind = "member"
	KindPartnerIssued       AccountKind = "partner_issued"
	KindPartnerRedeemed     AccountKind = "partner_redeemed"
	KindPartnerExchangeIn   AccountKind = "partner_exchange_in"
	KindPartnerExchangeOut  AccountKind = "partner_exchange_out"
	KindOperatorBreakage    AccountKind = "operator_breakage"
	KindOperatorPromotions  AccountKind = "operator_promotions"
	KindOperatorAdjustments AccountKind = "operator_adjustments"
	KindOperatorFees        AccountKind = "operator_fees"
	// KindOperatorRedeemed receives the points of redemptions the operator
	// bears itself (its own catalog rewards): no partner is reimbursed.
	KindOperatorRedeemed AccountKind = "operator_redeemed"
)

// Valid reports whether k is one of the known kinds.
func (k AccountKind) Valid() bool {
	switch k {
	case KindMember, KindPartnerIssued, KindPartnerRedeemed, KindPartnerExchangeIn, KindPartnerExchangeOut,
		KindOperatorBreakage, KindOperatorPromotions, KindOperatorAdjustments, KindOperatorFees, KindOperatorRedeemed:
		return true
	}
	return false
}

// IsPartner reports whether accounts of kind k are owned by a partner.
func (k AccountKind) IsPartner() bool {
	switch k {
	case KindPartnerIssued, KindPartnerRedeemed, KindPartnerExchangeIn, KindPartnerExchangeOut:
		return true
	}
	return false
}

// TxType is the kind of a ledger transaction.
type TxType string

// Transaction types.
const (
	TypeEarn       TxType = "earn"
	TypeBurn       TxType = "burn"
	TypeCapture    TxType = "capture"
	TypeReversal   TxType = "reversal"
	TypeTransfer   TxType = "transfer"
	TypeAdjustment TxType = "adjustment"
	TypeExpiry     TxType = "expiry"
	TypeMerge      TxType = "merge"
	TypeForfeit    TxType = "forfeit"
)

// Idempotency identifies one logical request. Keys are unique per Scope
// ("partner:42", "operator", "member:7", "system"). RequestHash is optional:
// when empty the ledger hashes the canonical request itself. The same
// (Scope, Key) with a different hash is ErrIdempotencyMismatch; with the same
// hash it replays the stored result.
type Idempotency struct {
	Scope       string
	Key         string
	RequestHash []byte
}

// Entry is one leg of a transaction: a signed amount on one account.
// Positive amounts credit the account (a member's balance grows).
type Entry struct {
	AccountID int64       `json:"account_id"`
	Kind      AccountKind `json:"kind"`
	OwnerID   int64       `json:"owner_id"`
	Points    Points      `json:"points"`
}

// LotConsumption records that a transaction took Points out of a lot.
// IssuerPartnerID is 0 for operator-funded lots.
type LotConsumption struct {
	LotID           int64  `json:"lot_id"`
	IssuerPartnerID int64  `json:"issuer_partner_id,omitempty"`
	Points          Points `json:"points"`
}

// Transaction is a posted, immutable movement of points. Its entries sum to
// zero. MemberID is the member whose account the transaction is about (the
// sender for transfers, the source for merges); CounterMemberID is the other
// member of a transfer or merge. PartnerID is the issuing partner of an earn or
// the redeeming partner of a burn/capture (0 when none). ReversesID is the
// reversed transaction of a reversal (0 otherwise). BalanceAfter is the
// member's total balance right after the transaction.
type Transaction struct {
	ID              int64            `json:"id"`
	Type            TxType           `json:"type"`
	MemberID        int64            `json:"member_id,omitempty"`
	CounterMemberID int64            `json:"counter_member_id,omitempty"`
	PartnerID       int64            `json:"partner_id,omitempty"`
	Points          Points           `json:"points"`
	OccurredAt      time.Time        `json:"occurred_at"`
	PostedAt        time.Time        `json:"posted_at"`
	ExternalRef     string           `json:"external_ref,omitempty"`
	ReversesID      int64            `json:"reverses_id,omitempty"`
	HoldID          int64            `json:"hold_id,omitempty"`
	Reason          string           `json:"reason,omitempty"`
	Actor           string           `json:"actor,omitempty"`
	Details         json.RawMessage  `json:"details,omitempty"`
	Entries         []Entry          `json:"entries"`
	Consumptions    []LotConsumption `json:"consumptions,omitempty"`
	BalanceAfter    Points           `json:"balance_after"`
	// Replayed is true when this answer is the stored result of an earlier
	// request with the same idempotency key. Not stored.
	Replayed bool `json:"-"`
}

// HoldStatus is the life-cycle state of a hold.
type HoldStatus string

// Hold states. Only active holds reserve points.
const (
	HoldActive   HoldStatus = "active"
	HoldCaptured HoldStatus = "captured"
	HoldVoided   HoldStatus = "voided"
	HoldExpired  HoldStatus = "expired"
)

// Hold reserves Points of a member for a later capture at PartnerID.
// Captured is what the capture took (the rest was released).
type Hold struct {
	ID                   int64           `json:"id"`
	MemberID             int64           `json:"member_id"`
	PartnerID            int64           `json:"partner_id"`
	Points               Points          `json:"points"`
	Captured             Points          `json:"captured"`
	Status               HoldStatus      `json:"status"`
	Purpose              string          `json:"purpose"`
	Destination          AccountKind     `json:"destination"`
	ExpiresAt            time.Time       `json:"expires_at"`
	CreatedAt            time.Time       `json:"created_at"`
	ClosedAt             *time.Time      `json:"closed_at,omitempty"`
	CaptureTransactionID int64           `json:"capture_transaction_id,omitempty"`
	ExternalRef          string          `json:"external_ref,omitempty"`
	Details              json.RawMessage `json:"details,omitempty"`
	Replayed             bool            `json:"-"`
}

// Lot is a parcel of earned points with its own issuer and expiry. Remaining
// never exceeds Amount; Amount − Remaining is what consumptions took.
// IssuerPartnerID is 0 for operator-funded lots. OriginLotID links a lot
// recreated by a burn reversal or a merge to the lot it came from.
type Lot struct {
	ID                int64      `json:"id"`
	MemberID          int64      `json:"member_id"`
	EarnTransactionID int64      `json:"earn_transaction_id"`
	OriginLotID       int64      `json:"origin_lot_id,omitempty"`
	IssuerPartnerID   int64      `json:"issuer_partner_id,omitempty"`
	Amount            Points     `json:"amount"`
	Remaining         Points     `json:"remaining"`
	EarnedAt          time.Time  `json:"earned_at"`
	AvailableAt       time.Time  `json:"available_at"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
}

// Balance of a member, in parts that always add up:
//
//	Total = Available + Pending + Held + Expired − Owed
//
// Total is the sum of the member account's entries (negative after a
// clawback took more than the member had). Available is what a burn, hold or
// transfer may take now: settled, unexpired points beyond the active holds.
// Pending are points in lots not yet available (return window). Held are
// points reserved by active holds. Expired are points past their expiry that
// the expiry run has not yet moved to breakage and that no hold needs. Owed
// is what the member must earn before anything is available again: clawback
// debt, plus held points that a clawback left without cover (they become
// debt when their hold is captured). Every part is ≥ 0. Blocked is true while
// Total is negative (burns, holds and transfers fail with ErrAccountBlocked).
type Balance struct {
	MemberID  int64  `json:"member_id"`
	Total     Points `json:"total"`
	Available Points `json:"available"`
	Pending   Points `json:"pending"`
	Held      Points `json:"held"`
	Expired   Points `json:"expired"`
	Owed      Points `json:"owed"`
	Blocked   bool   `json:"blocked"`
}

// Filter selects transactions for List. PartnerID restricts to transactions
// where the partner is the issuer or the redeemer (partner isolation). Cursor is
// the opaque next-cursor of the previous page. Limit defaults to 50, max 500.
// From is inclusive and To exclusive, on posted_at.
type Filter struct {
	MemberID  int64
	PartnerID int64
	Types     []TxType
	From      time.Time
	To        time.Time
	Cursor    string
	Limit     int
}

// ExpireResult counts what one ExpireLots batch did.
type ExpireResult struct {
	Lots         int    `json:"lots"`
	Points       Points `json:"points"`
	Transactions int    `json:"transactions"`
}

// TransferLimits cap member-to-member transfers; zero means no limit.
// Daily and Monthly count points sent by the sender in the UTC day / month.
type TransferLimits struct {
	PerTransfer Points
	Daily       Points
	Monthly     Points
}

// EarnRequest credits a member. Points are funded by PartnerID's issued
// account, OperatorFunded by the operator's promotions account (own lot with no
// issuing partner). AvailableAt in the future makes the points pending.
// Details (rule version, rates, prices) is stored verbatim.
type EarnRequest struct {
	Idem           Idempotency     `json:"-"`
	MemberID       int64           `json:"member_id"`
	PartnerID      int64           `json:"partner_id"`
	Points         Points          `json:"points"`
	OperatorFunded Points          `json:"operator_funded"`
	OccurredAt     time.Time       `json:"occurred_at"`
	AvailableAt    *time.Time      `json:"available_at,omitempty"`
	ExpiresAt      *time.Time      `json:"expires_at,omitempty"`
	ExternalRef    string          `json:"external_ref"`
	Details        json.RawMessage `json:"details,omitempty"`
}

// BurnRequest spends a member's available points at PartnerID in one step.
// Destination defaults to KindPartnerRedeemed.
type BurnRequest struct {
	Idem        Idempotency     `json:"-"`
	MemberID    int64           `json:"member_id"`
	PartnerID   int64           `json:"partner_id"`
	Points      Points          `json:"points"`
	Destination AccountKind     `json:"destination,omitempty"`
	OccurredAt  time.Time       `json:"occurred_at"`
	ExternalRef string          `json:"external_ref"`
	Details     json.RawMessage `json:"details,omitempty"`
}

// HoldRequest reserves points. Purpose is "pos", "order" or "exchange".
// Destination defaults to KindPartnerRedeemed.
type HoldRequest struct {
	Idem        Idempotency     `json:"-"`
	MemberID    int64           `json:"member_id"`
	PartnerID   int64           `json:"partner_id"`
	Points      Points          `json:"points"`
	ExpiresAt   time.Time       `json:"expires_at"`
	Purpose     string          `json:"purpose"`
	Destination AccountKind     `json:"destination,omitempty"`
	ExternalRef string          `json:"external_ref"`
	Details     json.RawMessage `json:"details,omitempty"`
}

// CaptureRequest captures Points of an active hold (0 = all of it); the rest is released.
type CaptureRequest struct {
	Idem   Idempotency `json:"-"`
	HoldID int64       `json:"hold_id"`
	Points Points      `json:"points"`
}

// VoidRequest releases an active hold.
type VoidRequest struct {
	Idem   Idempotency `json:"-"`
	HoldID int64       `json:"hold_id"`
}

// ReverseRequest reverses an earn, burn or capture, fully (Points = 0: all
// that remains reversible) or partly.
type ReverseRequest struct {
	Idem          Idempotency `json:"-"`
	TransactionID int64       `json:"transaction_id"`
	Points        Points      `json:"points"`
	Reason        string      `json:"reason"`
	ExternalRef   string      `json:"external_ref"`
}

// TransferRequest moves Points from one member to another; Fee goes from the
// sender to operator_fees on top of Points.
type TransferRequest struct {
	Idem       Idempotency    `json:"-"`
	FromMember int64          `json:"from_member"`
	ToMember   int64          `json:"to_member"`
	Points     Points         `json:"points"`
	Fee        Points         `json:"fee"`
	Limits     TransferLimits `json:"limits"`
}

// AdjustRequest credits (Points > 0) or debits (Points < 0) a member against
// operator_adjustments. Reason is required; Actor names the operator user.
type AdjustRequest struct {
	Idem     Idempotency `json:"-"`
	MemberID int64       `json:"member_id"`
	Points   Points      `json:"points"`
	Reason   string      `json:"reason"`
	Actor    string      `json:"actor"`
}
