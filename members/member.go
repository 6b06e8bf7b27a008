package members

import (
	"fmt"
	"time"

	"github.com/coalitionhub/hub/ledger"
)

// Status is the life-cycle state of a member account.
type Status string

// Member states. Only an active member earns and burns. A merged member is a
// duplicate whose identifiers, balance and lots now belong to MergedIntoID.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusClosed    Status = "closed"
	StatusMerged    Status = "merged"
)

// Profile is the personal data of a member. Email and Phone are contact
// details (normalised like identifiers); they are not lookup keys by
// themselves — identifiers are. BirthDate is "YYYY-MM-DD" or empty.
type Profile struct {
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	BirthDate  string `json:"birth_date,omitempty"`
	Locale     string `json:"locale,omitempty"` // BCP 47 language[-REGION], default "en"
}

// Member is a member account as the rest of the hub sees it.
type Member struct {
	ID                 int64        `json:"id"`
	Status             Status       `json:"status"`
	StatusReason       string       `json:"status_reason,omitempty"`
	Profile            Profile      `json:"profile"`
	CardNumber         string       `json:"card_number"` // the primary card
	Identifiers        []Identifier `json:"identifiers"`
	MarketingConsent   bool         `json:"marketing_consent"`
	MarketingConsentAt *time.Time   `json:"marketing_consent_at,omitempty"`
	SourcePartnerID    int64        `json:"source_partner_id,omitempty"` // 0 = enrolled by the operator
	MergedIntoID       int64        `json:"merged_into_id,omitempty"`
	CreatedAt          time.Time    `json:"created_at"`
	UpdatedAt          time.Time    `json:"updated_at"`
	ClosedAt           *time.Time   `json:"closed_at,omitempty"`
	MergedAt           *time.Time   `json:"merged_at,omitempty"`
	ErasedAt           *time.Time   `json:"erased_at,omitempty"`
}

// CanTransact returns nil when m may earn and burn points, and an error
// wrapping ErrMemberInactive (saying why) when it may not: suspended, closed
// and merged members do not transact. Partners' earn/burn paths call it on the
// member they looked up.
func CanTransact(m Member) error {
	switch m.Status {
	case StatusActive:
		return nil
	case StatusMerged:
		return fmt.Errorf("member %d was merged into %d: %w", m.ID, m.MergedIntoID, ErrMemberInactive)
	default:
		return fmt.Errorf("member %d is %s: %w", m.ID, m.Status, ErrMemberInactive)
	}
}

// Consent is the marketing consent captured with an enrolment or a change.
// Source names the channel ("enrolment", "portal", "partner:42").
type Consent struct {
	Marketing bool   `json:"marketing"`
	Source    string `json:"source,omitempty"`
}

// ConsentEvent is one recorded grant or withdrawal.
type ConsentEvent struct {
	ID         int64     `json:"id"`
	Purpose    string    `json:"purpose"`
	Granted    bool      `json:"granted"`
	Source     string    `json:"source"`
	Actor      string    `json:"actor"`
	RecordedAt time.Time `json:"recorded_at"`
}

// EnrolRequest enrols a member by the identifier the partner knows. Actor
// names who asked ("partner:42", "operator:alice", "member:portal").
// SourcePartnerID is the enrolling partner (0 = operator).
type EnrolRequest struct {
	Identifier      Identifier `json:"identifier"`
	Profile         Profile    `json:"profile"`
	Consent         Consent    `json:"consent"`
	SourcePartnerID int64      `json:"source_partner_id,omitempty"`
	Actor           string     `json:"actor,omitempty"`
}

// MergeRequest merges DuplicateID into SurvivorID.
type MergeRequest struct {
	SurvivorID  int64  `json:"survivor_id"`
	DuplicateID int64  `json:"duplicate_id"`
	Actor       string `json:"actor"`
	Reason      string `json:"reason"`
}

// Merge is the record of one merge.
type Merge struct {
	ID                  int64     `json:"id"`
	SurvivorID          int64     `json:"survivor_id"`
	DuplicateID         int64     `json:"duplicate_id"`
	LedgerTransactionID int64     `json:"ledger_transaction_id,omitempty"`
	IdentifiersMoved    int       `json:"identifiers_moved"`
	Actor               string    `json:"actor"`
	Reason              string    `json:"reason"`
	MergedAt            time.Time `json:"merged_at"`
}

// DSRKind is the kind of a data-subject request.
type DSRKind string

// Data-subject request kinds.
const (
	DSRExport  DSRKind = "export"
	DSRErasure DSRKind = "erasure"
	DSRConsent DSRKind = "consent" // a grant or withdrawal of marketing consent
	DSRAccess  DSRKind = "access"  // a request to see the data held (answered by an export)
)

// DSRStatus is where a data-subject request stands. Refused is still open:
// the last attempt was refused, Note says why.
type DSRStatus string

// Data-subject request statuses.
const (
	DSROpen      DSRStatus = "open"
	DSRDone      DSRStatus = "done"
	DSRRefused   DSRStatus = "refused"
	DSRCancelled DSRStatus = "cancelled"
)

// DSRDeadline is how long the operator has to answer a request.
const DSRDeadline = 30 * 24 * time.Hour

// DataSubjectRequest is one entry of the register of data-subject requests.
type DataSubjectRequest struct {
	ID          int64      `json:"id"`
	MemberID    int64      `json:"member_id"`
	Kind        DSRKind    `json:"kind"`
	Actor       string     `json:"actor"`
	RequestedAt time.Time  `json:"requested_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	DueAt       time.Time  `json:"due_at"`
	Status      DSRStatus  `json:"status"`
	HandledBy   string     `json:"handled_by,omitempty"`
	Note        string     `json:"note,omitempty"`
	// EraseAt is when a scheduled erasure (after consent was withdrawn) runs.
	EraseAt   *time.Time `json:"erase_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Export is everything the hub holds about a member, as the answer to an
// access request. MergedMembers are the duplicate records merged into this
// one (same person); their ledger history is in Transactions too.
type Export struct {
	GeneratedAt   time.Time            `json:"generated_at"`
	Member        Member               `json:"member"`
	Consents      []ConsentEvent       `json:"consents"`
	Requests      []DataSubjectRequest `json:"data_subject_requests"`
	Merges        []Merge              `json:"merges"`
	MergedMembers []Member             `json:"merged_members"`
	Sessions      []Session            `json:"sessions"`      // sign-ins: when, from which client and address
	MailOptOuts   []NoticeKind         `json:"mail_opt_outs"` // kinds of notification mail turned off
	Balance       ledger.Balance       `json:"balance"`
	Lots          []ledger.Lot         `json:"lots"`
	Transactions  []ledger.Transaction `json:"transactions"`
}

// Query selects members for the console. Text is matched as an identifier
// when it parses as a card number, email or phone, and otherwise as a
// case-insensitive prefix of the given or family name. Cursor is the opaque
// next-cursor of the previous page; Limit defaults to 50, max 200.
type Query struct {
	Text   string
	Status Status
	Cursor string
	Limit  int
}
