package settlement

import (
	"encoding/json"
	"time"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/shopspring/decimal"
)

// PeriodStatus is the life-cycle state of a settlement period.
type PeriodStatus string

// Period states: open → closing → closed.
const (
	PeriodOpen    PeriodStatus = "open"
	PeriodClosing PeriodStatus = "closing"
	PeriodClosed  PeriodStatus = "closed"
)

// Period is one settlement month in the operator's time zone: [StartsAt, EndsAt).
// Month is "YYYY-MM". ReportSHA256 is the hex SHA-256 of the period report
// (matrix and outstanding liability) once closed.
type Period struct {
	ID           int64        `json:"id"`
	Month        string       `json:"month"`
	TimeZone     string       `json:"time_zone"`
	StartsAt     time.Time    `json:"starts_at"`
	EndsAt       time.Time    `json:"ends_at"`
	Status       PeriodStatus `json:"status"`
	ClosedAt     *time.Time   `json:"closed_at,omitempty"`
	ClosedBy     string       `json:"closed_by,omitempty"`
	ReportSHA256 string       `json:"report_sha256,omitempty"`
}

// Rate is an exchange rate of a period: 1 From = Rate To, with its source.
type Rate struct {
	From   string          `json:"from"`
	To     string          `json:"to"`
	Rate   decimal.Decimal `json:"rate"`
	Source string          `json:"source"`
}

// LineKind is what a statement line charges or credits.
type LineKind string

// Statement line kinds. Amounts are signed from the partner's side: positive
// is owed to the partner by the operator, negative is owed by the partner.
const (
	LineIssued          LineKind = "issued"            // −points issued × issue price
	LineRedeemed        LineKind = "redeemed"          // +points redeemed at the partner × redemption rate
	LineOperatorFee     LineKind = "operator_fee"      // −redeemed × redemption rate × operator fee rate
	LineExchangeIn      LineKind = "exchange_in"       // −points credited from the partner programme × issue price
	LineExchangeOut     LineKind = "exchange_out"      // +points sent to the partner programme × redemption rate
	LineBreakage        LineKind = "breakage"          // +expired points × issue price × breakage share
	LinePrepaidDrawDown LineKind = "prepaid_draw_down" // +prepaid money already drawn for issued points
	LinePrepaidTopUp    LineKind = "prepaid_top_up"    // informational: money paid in advance
	LineAdjustment      LineKind = "adjustment"        // a correction, linked to the line it corrects
)

// LineRef names a line of a statement.
type LineRef struct {
	StatementID int64 `json:"statement_id"`
	LineNo      int   `json:"line_no"`
}

// Line is one statement line. Amount is Points × UnitPrice × Factor rounded
// half-even to the minor unit (or the adjustment's amount). Late lines are
// transactions that occurred (or were posted) before the period started and
// are settled here because their own period was closed; OccurredAt is their
// original time. Informational lines are not part of the net.
type Line struct {
	No              int         `json:"no"`
	Kind            LineKind    `json:"kind"`
	Description     string      `json:"description"`
	ContractVersion int         `json:"contract_version,omitempty"`
	UnitPrice       string      `json:"unit_price,omitempty"`
	Factor          string      `json:"factor,omitempty"`
	Points          int64       `json:"points"`
	Amount          money.Money `json:"amount"`
	Informational   bool        `json:"informational,omitempty"`
	Late            bool        `json:"late,omitempty"`
	TransactionID   int64       `json:"transaction_id,omitempty"`
	OccurredAt      *time.Time  `json:"occurred_at,omitempty"`
	AdjustmentID    int64       `json:"adjustment_id,omitempty"`
	Corrects        *LineRef    `json:"corrects,omitempty"`
}

// Document is the canonical content of a statement: what is hashed and what
// the JSON, CSV and PDF renderings show. Net is the sum of the amounts of the
// lines that are not informational; Charges and Credits split it by sign.
type Document struct {
	Period      string      `json:"period"`
	TimeZone    string      `json:"time_zone"`
	PeriodStart time.Time   `json:"period_start"`
	PeriodEnd   time.Time   `json:"period_end"`
	PartnerID   int64       `json:"partner_id"`
	Currency    string      `json:"currency"`
	Lines       []Line      `json:"lines"`
	Charges     money.Money `json:"charges"`
	Credits     money.Money `json:"credits"`
	Net         money.Money `json:"net"`
	// Direction is "to_partner" (the operator pays), "from_partner" or "none".
	Direction string `json:"direction"`
	Rates     []Rate `json:"rates,omitempty"`
}

// StatementStatus is the life-cycle state of a statement.
type StatementStatus string

// Statement states: draft → approved → sent → paid.
const (
	StatementDraft    StatementStatus = "draft"
	StatementApproved StatementStatus = "approved"
	StatementSent     StatementStatus = "sent"
	StatementPaid     StatementStatus = "paid"
)

// Statement is a partner's statement for a period. SHA256 is the hex hash of
// Raw, the canonical document bytes.
type Statement struct {
	ID         int64           `json:"id"`
	PeriodID   int64           `json:"period_id"`
	Period     string          `json:"period"`
	PartnerID  int64           `json:"partner_id"`
	Status     StatementStatus `json:"status"`
	Net        money.Money     `json:"net"`
	SHA256     string          `json:"sha256"`
	CreatedAt  time.Time       `json:"created_at"`
	ApprovedAt *time.Time      `json:"approved_at,omitempty"`
	ApprovedBy string          `json:"approved_by,omitempty"`
	SentAt     *time.Time      `json:"sent_at,omitempty"`
	PaidAt     *time.Time      `json:"paid_at,omitempty"`
	PaymentRef string          `json:"payment_ref,omitempty"`
	Document   Document        `json:"document"`
	Raw        json.RawMessage `json:"-"`
}

// MatrixCell is the cross-partner liability of a period: points issued by
// IssuerPartnerID (0: the operator, for promotions and adjustments) and
// redeemed at RedeemerPartnerID, net of burn reversals, and their value at
// the redeemer's redemption rate converted to the base currency.
type MatrixCell struct {
	IssuerPartnerID   int64       `json:"issuer_partner_id"`
	RedeemerPartnerID int64       `json:"redeemer_partner_id"`
	Points            int64       `json:"points"`
	Value             money.Money `json:"value"`
}

// Liability is the outstanding liability of an issuer at period end: points
// it issued that were neither redeemed nor expired, valued at the issue price
// in force when they were earned, in the base currency.
type Liability struct {
	IssuerPartnerID int64       `json:"issuer_partner_id"`
	Points          int64       `json:"points"`
	Value           money.Money `json:"value"`
}

// Report is the programme's balance sheet for a closed period, stored at
// close as canonical JSON with its hash.
type Report struct {
	Period       string       `json:"period"`
	BaseCurrency string       `json:"base_currency"`
	Matrix       []MatrixCell `json:"matrix"`
	Outstanding  []Liability  `json:"outstanding"`
	Rates        []Rate       `json:"rates,omitempty"`
}

// Adjustment is a money correction settled as a line of the next period that
// closes after it was made.
type Adjustment struct {
	ID                   int64       `json:"id"`
	PartnerID            int64       `json:"partner_id"`
	Amount               money.Money `json:"amount"`
	Reason               string      `json:"reason"`
	Corrects             *LineRef    `json:"corrects,omitempty"`
	ReconciliationLineID int64       `json:"reconciliation_line_id,omitempty"`
	PeriodID             int64       `json:"period_id,omitempty"`
	CreatedAt            time.Time   `json:"created_at"`
	CreatedBy            string      `json:"created_by"`
	// Replayed is true when this answer is the adjustment made earlier
	// under the same key (AdjustmentInput.Key). Not stored.
	Replayed bool `json:"-"`
}

// AdjustmentInput creates an adjustment. Corrects, when set, must name an
// existing line of a statement of PartnerID. Key, when set, makes the
// request idempotent (AdjustmentKey).
type AdjustmentInput struct {
	PartnerID int64
	Amount    money.Money
	Reason    string
	Corrects  *LineRef
	Actor     string
	Key       *AdjustmentKey
}
