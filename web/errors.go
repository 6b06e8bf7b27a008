package web

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"github.com/coalitionhub/hub/abuse"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/settlement"
	"github.com/coalitionhub/hub/webhooks"
)

// Problem is an RFC 9457 problem document. Code is the stable, machine-readable
// error code partners branch on; Title and Detail are for people.
type Problem struct {
	Type      string                  `json:"type"`
	Title     string                  `json:"title"`
	Status    int                     `json:"status"`
	Code      string                  `json:"code"`
	Detail    string                  `json:"detail,omitempty"`
	Instance  string                  `json:"instance,omitempty"`
	RequestID string                  `json:"request_id,omitempty"`
	Errors    []validation.FieldError `json:"errors,omitempty"`
}

// errorKind is one row of the domain-error table.
type errorKind struct {
	err    error
	status int
	code   string
	title  string
}

// domainErrors is the one place where domain errors become HTTP answers.
// Matching uses errors.Is, never the error text. Add a row when a domain
// package grows a sentinel that a client must be able to tell apart.
var domainErrors = []errorKind{
	{errNotFound, http.StatusNotFound, "not_found", "Not found"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large"},
	{errUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type", "The body is not of a type this endpoint takes"},
	{errUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	{errInternal, http.StatusInternalServerError, "internal_error", "Internal error"},
	{errAuthRequired, http.StatusUnauthorized, "unauthorized", "Authentication required"},
	{errTokenRefused, http.StatusUnauthorized, "invalid_token", "Authentication required"},
	{errInsufficientScope, http.StatusForbidden, "insufficient_scope", "Insufficient scope"},
	{errForbidden, http.StatusForbidden, "forbidden", "Forbidden"},
	{errRateLimited, http.StatusTooManyRequests, "rate_limited", "Too many requests"},
	{errJobNotFound, http.StatusNotFound, "job_not_found", "No such job"},

	// partners: registry, contracts, prepaid.
	{partners.ErrPartnerNotFound, http.StatusNotFound, "partner_not_found", "Partner not found"},
	{partners.ErrPartnerExists, http.StatusConflict, "partner_exists", "A partner with this name exists"},
	{partners.ErrOutletExists, http.StatusConflict, "outlet_exists", "An outlet with this code exists"},
	{partners.ErrNoContract, http.StatusNotFound, "no_contract", "No contract in force"},
	{partners.ErrContractConflict, http.StatusConflict, "contract_conflict", "Contract version conflict"},
	{partners.ErrCategoryOverlap, http.StatusConflict, "category_overlap", "Overlaps an active partner of the same category in the same market"},
	{partners.ErrPrepaidExhausted, http.StatusConflict, "prepaid_exhausted", "Prepaid balance exhausted"},
	{partners.ErrNotPrepaid, http.StatusConflict, "not_prepaid", "Partner is not billed prepaid"},
	{partners.ErrDuplicateRef, http.StatusConflict, "duplicate_ref", "Reference already used"},

	// access: API clients, staff, tokens.
	{access.ErrClientNotFound, http.StatusNotFound, "client_not_found", "API client not found"},
	{access.ErrClientRevoked, http.StatusConflict, "client_revoked", "API client is revoked"},
	{access.ErrStaffNotFound, http.StatusNotFound, "staff_not_found", "Staff user not found"},
	{access.ErrStaffExists, http.StatusConflict, "staff_exists", "A staff user with this email exists"},
	{access.ErrLastAdmin, http.StatusConflict, "last_admin", "The last active admin must stay an active admin"},
	{access.ErrInvalidCredentials, http.StatusUnauthorized, "invalid_credentials", "Invalid email or password"},
	{access.ErrLoginLocked, http.StatusTooManyRequests, "login_locked", "Too many failed logins"},
	{access.ErrInvalidToken, http.StatusUnauthorized, "invalid_token", "Invalid token"},

	// rules: earn rules and promotions.
	{rules.ErrNoRule, http.StatusUnprocessableEntity, "no_earn_rule", "No earn rule in force"},
	{rules.ErrRuleNotFound, http.StatusNotFound, "earn_rule_not_found", "Earn rule not found"},
	{rules.ErrRuleConflict, http.StatusConflict, "earn_rule_conflict", "Earn rule version conflict"},
	{rules.ErrCurrencyNotEarned, http.StatusUnprocessableEntity, "currency_not_earned", "The earn rule does not earn in this currency"},
	{rules.ErrPointsOverflow, http.StatusUnprocessableEntity, "points_out_of_range", "Earned points out of range"},
	{rules.ErrPromotionNotFound, http.StatusNotFound, "promotion_not_found", "Promotion not found"},
	{rules.ErrPromotionEnded, http.StatusConflict, "promotion_ended", "Promotion already ended"},
	{rules.ErrPromotionCodeInUse, http.StatusConflict, "promotion_code_in_use", "Promotion code in use"},

	// points: the points API; webhooks.
	{points.ErrRoleNotInContract, http.StatusForbidden, "role_not_in_contract", "The partner's contract does not allow this"},
	{points.ErrNothingToEarn, http.StatusUnprocessableEntity, "nothing_to_earn", "The purchase earns no points"},
	{points.ErrDailyCapReached, http.StatusUnprocessableEntity, "daily_cap_reached", "Daily earn cap for this member reached"},
	{points.ErrTransactionNotFound, http.StatusNotFound, "transaction_not_found", "Transaction not found"},
	{points.ErrBurnNotFound, http.StatusNotFound, "burn_not_found", "Burn not found"},
	{points.ErrMemberNotVisible, http.StatusNotFound, "member_not_found", "Member not found"},
	// abuse
	{abuse.ErrVelocityLimit, http.StatusTooManyRequests, "velocity_limit", "A velocity limit of the partner's fraud rules is reached"},
	{abuse.ErrFlagNotFound, http.StatusNotFound, "flag_not_found", "Flag not found"},
	{abuse.ErrFlagReviewed, http.StatusConflict, "flag_reviewed", "The flag was reviewed already"},
	{webhooks.ErrWebhookEndpointNotFound, http.StatusNotFound, "webhook_not_found", "Webhook endpoint not found"},
	{webhooks.ErrWebhookDeliveryNotFound, http.StatusNotFound, "webhook_delivery_not_found", "Webhook delivery not found"},
	{webhooks.ErrWebhookDeliveryNotFailed, http.StatusConflict, "webhook_delivery_not_failed", "Only a failed delivery can be replayed"},

	// members.
	{members.ErrNotFound, http.StatusNotFound, "member_not_found", "Member not found"},
	{members.ErrRequestNotFound, http.StatusNotFound, "request_not_found", "Data-subject request not found"},
	{members.ErrIdentifierTaken, http.StatusConflict, "identifier_taken", "Identifier belongs to another member"},
	{members.ErrMemberInactive, http.StatusConflict, "member_inactive", "Member is not active"},
	{members.ErrInvalidMerge, http.StatusConflict, "invalid_merge", "These members cannot be merged"},
	{members.ErrCardRequired, http.StatusConflict, "card_required", "Card numbers cannot be added or removed"},
	{members.ErrNotClosed, http.StatusConflict, "member_not_closed", "Close the account before erasure"},
	{members.ErrErasureBlocked, http.StatusConflict, "erasure_blocked", "The member cannot be erased yet"},
	{members.ErrConsentRequired, http.StatusBadRequest, "consent_required", "A redemption code or PIN is required"},
	{members.ErrConsentInvalid, http.StatusForbidden, "consent_invalid", "Redemption code or PIN is not valid"},
	{members.ErrInvalidLogin, http.StatusUnauthorized, "invalid_credentials", "Invalid email or password"},
	{members.ErrSessionEnded, http.StatusUnauthorized, "invalid_token", "Invalid token"},
	{members.ErrLoginLocked, http.StatusTooManyRequests, "login_locked", "Too many failed sign-ins"},
	{members.ErrConsentLocked, http.StatusTooManyRequests, "consent_locked", "Too many failed redemption attempts"},
	{members.ErrLinkExpired, http.StatusGone, "link_expired", "The link has expired"},
	{members.ErrLinkUsed, http.StatusGone, "link_used", "The link was used already or replaced by a newer one"},
	{members.ErrMailThrottled, http.StatusTooManyRequests, "mail_throttled", "Too many emails asked for this account"},

	// ledger.
	{ledger.ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
	{ledger.ErrInsufficientPoints, http.StatusUnprocessableEntity, "insufficient_points", "Not enough available points"},
	{ledger.ErrAccountBlocked, http.StatusUnprocessableEntity, "account_blocked", "Account blocked by a negative balance"},
	{ledger.ErrIdempotencyMismatch, http.StatusConflict, "idempotency_mismatch", "Idempotency key reused with a different request"},
	{ledger.ErrHoldNotActive, http.StatusConflict, "hold_not_active", "The hold is no longer active"},
	{ledger.ErrReversalExceedsOriginal, http.StatusUnprocessableEntity, "reversal_exceeds_original", "Reversal exceeds what remains of the original"},
	{ledger.ErrNotReversible, http.StatusUnprocessableEntity, "not_reversible", "Transaction cannot be reversed"},
	{ledger.ErrTransferLimit, http.StatusUnprocessableEntity, "transfer_limit", "Transfer limit exceeded"},
	{ledger.ErrSameMember, http.StatusUnprocessableEntity, "same_member", "Source and destination are the same member"},
	{ledger.ErrInvalidCursor, http.StatusBadRequest, "invalid_cursor", "Invalid cursor"},

	// catalog
	{catalog.ErrRewardNotFound, http.StatusNotFound, "reward_not_found", "Reward not found"},
	{catalog.ErrRewardUnavailable, http.StatusConflict, "reward_unavailable", "Reward cannot be ordered now"},
	{catalog.ErrOutOfStock, http.StatusConflict, "out_of_stock", "Reward is out of stock"},
	{catalog.ErrRewardRetired, http.StatusConflict, "reward_retired", "Reward is retired"},
	{catalog.ErrOrderLimit, http.StatusConflict, "order_limit_reached", "Per-member order limit reached"},
	{catalog.ErrOrderNotFound, http.StatusNotFound, "order_not_found", "Order not found"},
	{catalog.ErrOrderNotPending, http.StatusConflict, "order_not_pending", "Order is no longer pending"},
	{catalog.ErrDeadlinePassed, http.StatusConflict, "order_deadline_passed", "Fulfilment deadline has passed"},
	{catalog.ErrNotCharity, http.StatusUnprocessableEntity, "not_charity", "Charity donations need a charity partner"},
	// settlement
	{jobs.ErrNotFound, http.StatusNotFound, "job_run_not_found", "Job run not found"},
	{campaigns.ErrSegmentNotFound, http.StatusNotFound, "segment_not_found", "Segment not found"},
	{campaigns.ErrCampaignNotFound, http.StatusNotFound, "campaign_not_found", "Campaign not found"},
	{campaigns.ErrKeyReused, http.StatusConflict, "idempotency_mismatch", "Idempotency key reused with a different request"},
	{exports.ErrNotFound, http.StatusNotFound, "export_not_found", "Export not found"},
	{exports.ErrNotReady, http.StatusConflict, "export_not_ready", "The export has not finished its file yet"},
	{settlement.ErrPeriodNotFound, http.StatusNotFound, "period_not_found", "Settlement period not found"},
	{settlement.ErrPeriodNotEnded, http.StatusConflict, "period_not_ended", "The settlement period has not ended yet"},
	{settlement.ErrPeriodClosed, http.StatusConflict, "period_closed", "The settlement period is closed"},
	{settlement.ErrPeriodNotClosed, http.StatusConflict, "period_not_closed", "The settlement period is not closed yet"},
	{settlement.ErrEarlierPeriodOpen, http.StatusConflict, "earlier_period_open", "An earlier settlement period is not closed"},
	{settlement.ErrMissingRate, http.StatusUnprocessableEntity, "exchange_rate_missing", "An exchange rate for the period is missing"},
	{settlement.ErrNoContract, http.StatusUnprocessableEntity, "contract_missing", "A settled transaction has no contract in force"},
	{settlement.ErrStatementNotFound, http.StatusNotFound, "statement_not_found", "Statement not found"},
	{settlement.ErrStatementState, http.StatusConflict, "statement_state", "The statement is not in the state this action needs"},
	{settlement.ErrLineNotFound, http.StatusUnprocessableEntity, "statement_line_not_found", "The statement line to correct does not exist"},
	{settlement.ErrReconciliationNotFound, http.StatusNotFound, "reconciliation_not_found", "Reconciliation not found"},
	{settlement.ErrReconLineNotFound, http.StatusNotFound, "reconciliation_line_not_found", "Reconciliation line not found"},
	{settlement.ErrAlreadyResolved, http.StatusConflict, "already_resolved", "The reconciliation line is already resolved"},
	{settlement.ErrNothingToResolve, http.StatusConflict, "nothing_to_resolve", "A matched line needs no resolution"},
	{settlement.ErrFourEyes, http.StatusForbidden, "four_eyes", "Another finance user must approve this statement"},
	{settlement.ErrBillingDetails, http.StatusConflict, "billing_details_missing", "Billing details for the invoice are missing"},
	{settlement.ErrInvoiceNotFound, http.StatusNotFound, "invoice_not_found", "The statement has no invoice or credit note"},
	{settlement.ErrNotNettable, http.StatusConflict, "not_nettable", "The statements cannot be netted"},
	{settlement.ErrPaymentMismatch, http.StatusConflict, "net_payment_mismatch", "The net payment does not match the netted balances"},
	// exchange
	{exchange.ErrProgrammeNotFound, http.StatusNotFound, "exchange_programme_not_found", "Exchange programme not found"},
	{exchange.ErrProgrammeExists, http.StatusConflict, "exchange_programme_exists", "An exchange programme with this code exists"},
	{exchange.ErrDirectionClosed, http.StatusUnprocessableEntity, "exchange_direction_closed", "The programme does not exchange in this direction"},
	{exchange.ErrLinkRejected, http.StatusUnprocessableEntity, "exchange_link_rejected", "The partner programme rejected the account"},
	{exchange.ErrNotLinked, http.StatusConflict, "exchange_not_linked", "Link a programme account first"},
	{exchange.ErrQuoteNotFound, http.StatusNotFound, "exchange_quote_not_found", "Exchange quote not found"},
	{exchange.ErrQuoteExpired, http.StatusConflict, "exchange_quote_expired", "The exchange quote expired"},
	{exchange.ErrMonthlyLimit, http.StatusUnprocessableEntity, "exchange_monthly_limit", "Monthly exchange limit reached"},
	{exchange.ErrExchangeNotFound, http.StatusNotFound, "exchange_not_found", "Exchange not found"},
	{exchange.ErrNotReversible, http.StatusConflict, "exchange_not_reversible", "The exchange cannot be reversed"},
	{exchange.ErrPartnerUnavailable, http.StatusServiceUnavailable, "exchange_partner_unavailable", "The partner programme is unavailable"},
	{exchange.ErrDuplicateReference, http.StatusConflict, "exchange_duplicate_reference", "Partner transaction id already used with different content"},
	// programme
	{programme.ErrUnknownCompanyLevel, http.StatusNotFound, "company_level_not_found", "Company level not found"},
	{programme.ErrTransfersDisabled, http.StatusUnprocessableEntity, "transfers_disabled", "Transfers are disabled"},
	{programme.ErrNotDesignated, http.StatusForbidden, "not_designated", "Not a designated employee of a company"},
	{programme.ErrCompanyNotFound, http.StatusNotFound, "company_not_found", "Company not found"},
	{programme.ErrEmployeeNotFound, http.StatusNotFound, "employee_not_found", "Employee not found"},
	{programme.ErrCorporatePartnerNotFound, http.StatusNotFound, "corporate_partner_not_found", "Not a corporate partner"},
	{programme.ErrTierNotFound, http.StatusNotFound, "tier_not_found", "Tier not found"},
	{programme.ErrAlreadyEmployee, http.StatusConflict, "already_employee", "The member belongs to a company already"},
	{programme.ErrCompanyLevelNotFound, http.StatusUnprocessableEntity, "company_level_missing", "Define company levels first"},
}

var (
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errBodyTooLarge     = errors.New("request body too large")
	errUnavailable      = errors.New("a backing service is unavailable")
	errJobNotFound      = errors.New("no such job")
	// errUnsupportedMediaType: an endpoint was sent a Content-Type it does not take.
	errUnsupportedMediaType = errors.New("unsupported media type")
	errInternal             = errors.New("internal error") // a handler panicked
	// The auth middleware's refusals (web/auth.go).
	errAuthRequired      = errors.New("authentication required")
	errTokenRefused      = errors.New("access token refused")
	errInsufficientScope = errors.New("insufficient scope")
	errForbidden         = errors.New("forbidden")
	errRateLimited       = errors.New("rate limited")
)

// detailed is sentinel with a detail for people: its problem's detail is
// the text, not the sentinel's.
type detailed struct {
	sentinel error
	text     string
}

func (e *detailed) Error() string { return e.text }
func (e *detailed) Unwrap() error { return e.sentinel }

// withDetail wraps sentinel so that its problem says text as the detail.
func withDetail(sentinel error, text string) error { return &detailed{sentinel, text} }

// waitError is a refusal that says how long to wait before retrying.
type waitError struct {
	error
	wait time.Duration
}

func (e *waitError) Unwrap() error             { return e.error }
func (e *waitError) RetryAfter() time.Duration { return e.wait }

// headerError is a domain error caused by one request header: its problem
// names the header in errors[], as a validation problem names a field.
type headerError struct {
	sentinel error
	header   string
	message  string
}

func (e *headerError) Error() string { return e.header + " " + e.message }
func (e *headerError) Unwrap() error { return e.sentinel }

// problemFor maps err to a problem document. Unknown errors become a 500 that
// says nothing about internals; the caller logs the real error.
func problemFor(err error) (Problem, bool) {
	var ve *validation.Error
	if errors.As(err, &ve) {
		return Problem{Status: http.StatusBadRequest, Code: "invalid_request",
			Title: "The request has invalid fields", Errors: ve.Fields}, true
	}
	for _, k := range domainErrors {
		if errors.Is(err, k.err) {
			p := Problem{Status: k.status, Code: k.code, Title: k.title, Detail: detailOf(err, k.err)}
			if he := (*headerError)(nil); errors.As(err, &he) {
				p.Errors = []validation.FieldError{{Field: he.header, Message: he.message}}
			}
			if fc := (*validation.Cause)(nil); errors.As(err, &fc) {
				p.Errors = []validation.FieldError{{Field: fc.Field, Message: fc.Message}}
			}
			return p, true
		}
	}
	if backendUnavailable(err) { // fail fast with a retryable answer; the pool reconnects by itself
		return Problem{Status: http.StatusServiceUnavailable, Code: "unavailable", Title: "Service unavailable",
			Detail: "The database is unreachable; retry with the same Idempotency-Key."}, false
	}
	return Problem{Status: http.StatusInternalServerError, Code: "internal_error",
		Title: "Internal error", Detail: "The error was logged; quote the request id when you report it."}, false
}

// backendUnavailable reports whether err says the database connection was
// lost or could not be made (refused, reset, shut down, timed out), as
// opposed to a query the database refused: those become 503 so a client
// retries instead of treating them as a bug.
func backendUnavailable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), pgconn.Timeout(err):
		return true
	case database.Code(err) != "":
		// Class 08: connection exception; 57P01-57P03: shutdown, crash, starting up;
		// 25006: a write reached a server that is (still, or again) a read-only
		// replica, as a connection made just before a failover may.
		code := database.Code(err)
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" ||
			code == database.ReadOnlyTransaction
	case errors.As(err, &ne):
		return true
	}
	return false
}

// detailOf returns a human detail only when the domain wrapped the sentinel
// with more context; the wrapping chain is written for people.
func detailOf(err, sentinel error) string {
	if err == sentinel {
		return ""
	}
	return err.Error()
}

// fail writes err as problem+json and aborts the request. An error that
// knows when to retry (a throttled sign-in) sets Retry-After.
func fail(c *gin.Context, log *slog.Logger, err error) {
	p, known := problemFor(err)
	if !known {
		log.ErrorContext(c.Request.Context(), "request failed", "err", err,
			"route", c.FullPath(), "request_id", requestID(c))
	}
	setRetryAfter(c, err)
	writeProblem(c, p)
}

// retryAfterError is an error that says how long to wait before retrying
// (internal/throttle.LimitedError).
type retryAfterError interface {
	error
	RetryAfter() time.Duration
}

// setRetryAfter sets Retry-After when err says how long to wait.
func setRetryAfter(c *gin.Context, err error) {
	var ra retryAfterError
	if errors.As(err, &ra) {
		retryAfter(c, ra.RetryAfter())
	}
}

// retryAfter sets Retry-After to wait in whole seconds, rounded up, at
// least one.
func retryAfter(c *gin.Context, wait time.Duration) {
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds()))))
}

func writeProblem(c *gin.Context, p Problem) {
	p.Type = "https://docs.coalitionhub.example/problems/" + p.Code
	p.Instance = c.Request.URL.Path
	p.RequestID = requestID(c)
	if (p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable) && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "1")
	}
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}
