package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/rules"
)

// The partner points API: earn, quote, batch earn, burns with holds,
// reversals and transaction reads. Every handler acts for the calling partner
// only; another partner's object answers 404 as if it did not exist.

// purchaseJSON is an earn's amount; Minor is a pointer so that a missing or
// null minor is refused rather than read as 0.
type purchaseJSON struct {
	Minor    *int64 `json:"minor"`
	Currency string `json:"currency"`
}

type earnRequest struct {
	MemberID    int64            `json:"member_id"`
	Amount      *purchaseJSON    `json:"amount"`
	Lines       []rules.Line     `json:"lines"`
	Activity    []rules.Activity `json:"activity"`
	EventCode   string           `json:"event_code"`
	PromoCodes  []string         `json:"promo_codes"`
	OccurredAt  *time.Time       `json:"occurred_at"`
	ExternalRef string           `json:"external_ref"`
	Outlet      string           `json:"outlet"`
	Card        string           `json:"card"`
}

// input is the earn (or quote, or batch item) r asks for; partners
// validates the rest of it for all three alike.
func (r earnRequest) input(now time.Time) (points.EarnInput, error) {
	in := points.EarnInput{MemberID: r.MemberID, Lines: r.Lines, Activity: r.Activity, EventCode: r.EventCode,
		PromoCodes: r.PromoCodes, ExternalRef: r.ExternalRef, Outlet: r.Outlet, Card: r.Card, OccurredAt: now}
	if r.Amount != nil {
		if r.Amount.Minor == nil {
			return in, validation.New("amount.minor", "is required: the purchase amount in minor units")
		}
		in.Amount = money.Money{Minor: *r.Amount.Minor, Currency: r.Amount.Currency}
	}
	if r.OccurredAt != nil {
		in.OccurredAt = *r.OccurredAt
	}
	return in, nil
}

// transactionJSON is a ledger transaction as its partner sees it.
type transactionJSON = points.TransactionView

func transactionOut(t ledger.Transaction) transactionJSON { return points.ViewOf(t) }

type quoteJSON struct {
	Points            int64             `json:"points"`
	OperatorFunded    int64             `json:"operator_funded"`
	Total             int64             `json:"total"`
	RuleID            int64             `json:"rule_id"`
	RuleVersion       int               `json:"rule_version"`
	Breakdown         []rules.QuoteLine `json:"breakdown"`
	IgnoredPromoCodes []string          `json:"ignored_promo_codes,omitempty"`
}

func (s *Server) quoteEarn(c *gin.Context) {
	var req earnRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	in, err := req.input(s.now())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	q, err := s.deps.Transactions.QuoteEarn(c.Request.Context(), principal(c), in)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if q.Breakdown == nil {
		q.Breakdown = []rules.QuoteLine{}
	}
	c.JSON(http.StatusOK, quoteJSON{Points: q.Points, OperatorFunded: q.OperatorFunded, Total: q.Total,
		RuleID: q.RuleID, RuleVersion: q.RuleVersion, Breakdown: q.Breakdown, IgnoredPromoCodes: q.IgnoredPromoCodes})
}

func partnerScope(p access.Principal) string {
	return "partner:" + strconv.FormatInt(p.PartnerID, 10)
}

func (s *Server) earn(c *gin.Context) {
	// occurred_at defaults to the time of the first attempt; the body hash,
	// not the defaulted value, identifies a replay.
	pointMove(s, c, http.StatusCreated, requireBody, func(ctx context.Context, p access.Principal, idem ledger.Idempotency, req earnRequest) (any, bool, error) {
		in, err := req.input(s.now())
		if err != nil {
			return nil, false, err
		}
		t, err := s.deps.Transactions.Earn(ctx, p, idem, in)
		return transactionOut(t), t.Replayed, err
	})
}

// MaxBatch is the largest earn batch.
const MaxBatch = 1000

type batchItem struct {
	IdempotencyKey string `json:"idempotency_key"`
	earnRequest
}

type batchResult struct {
	Index       int              `json:"index"`
	Status      int              `json:"status"`
	Replayed    bool             `json:"replayed,omitempty"`
	Transaction *transactionJSON `json:"transaction,omitempty"`
	Error       *Problem         `json:"error,omitempty"`
}

// earnBatch posts up to MaxBatch earns, each under its own idempotency key
// (its request hash is that of a POST /v1/earn of the item's JSON), priced
// and posted together in one database transaction
// (points.Transactions.EarnBatch).
// One bad item does not sink the others: the answer is 200 with a result per
// item in input order. A failure of the whole transaction (the database)
// answers the request with that error: nothing was posted, and the client
// retries the batch.
func (s *Server) earnBatch(c *gin.Context) {
	var req struct {
		Items []json.RawMessage `json:"items"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if len(req.Items) == 0 || len(req.Items) > MaxBatch {
		fail(c, s.deps.Log, validation.New("items", fmt.Sprintf("must hold 1 to %d earns", MaxBatch)))
		return
	}
	p := principal(c)
	now := s.now()
	results := make([]batchResult, len(req.Items))
	earns := make([]points.BatchEarn, 0, len(req.Items))
	idx := make([]int, 0, len(req.Items))
	for i, raw := range req.Items {
		earn, problem := batchEarnItem(p, i, raw, now)
		if problem != nil {
			results[i] = *problem
			continue
		}
		earns = append(earns, earn)
		idx = append(idx, i)
	}
	if len(earns) > 0 {
		outs, err := s.deps.Transactions.EarnBatch(c.Request.Context(), p, earns)
		if err != nil {
			fail(c, s.deps.Log, err)
			return
		}
		for n, o := range outs {
			results[idx[n]] = s.batchResult(c, idx[n], o)
		}
	}
	c.JSON(http.StatusOK, gin.H{"results": results})
}

// batchEarnItem decodes item i of a batch into an earn, or answers the
// item's problem (its field errors prefixed with items[i].).
func batchEarnItem(p access.Principal, i int, raw json.RawMessage, now time.Time) (points.BatchEarn, *batchResult) {
	// The whole batch passed decodeJSON's checks (duplicate keys, UTF-8).
	var item batchItem
	if err := decodeStrict(raw, &item); err != nil {
		res := itemProblem(i, prefixFields(err, fmt.Sprintf("items[%d].", i)))
		return points.BatchEarn{}, &res
	}
	if !idempotencyKeyPattern.MatchString(item.IdempotencyKey) {
		res := itemProblem(i, validation.New(fmt.Sprintf("items[%d].idempotency_key", i), "is required: 1 to 200 printable ASCII characters"))
		return points.BatchEarn{}, &res
	}
	in, err := item.earnRequest.input(now)
	if err != nil {
		res := itemProblem(i, prefixFields(err, fmt.Sprintf("items[%d].", i)))
		return points.BatchEarn{}, &res
	}
	h := requestHash(http.MethodPost, "/v1/earn", raw)
	idem := ledger.Idempotency{Scope: partnerScope(p), Key: item.IdempotencyKey, RequestHash: h}
	return points.BatchEarn{Idem: idem, Input: in}, nil
}

// batchResult renders the outcome of item i.
func (s *Server) batchResult(c *gin.Context, i int, o points.BatchOutcome) batchResult {
	if o.Err != nil {
		res := itemProblem(i, prefixFields(o.Err, fmt.Sprintf("items[%d].", i)))
		if res.Status == http.StatusInternalServerError {
			s.deps.Log.ErrorContext(c.Request.Context(), "batch earn item failed", "err", o.Err, "index", i, "request_id", requestID(c))
		}
		return res
	}
	out := transactionOut(o.Transaction)
	return batchResult{Index: i, Status: http.StatusCreated, Replayed: o.Transaction.Replayed, Transaction: &out}
}

func itemProblem(i int, err error) batchResult {
	p, _ := problemFor(err)
	p.Type = "https://docs.coalitionhub.example/problems/" + p.Code
	return batchResult{Index: i, Status: p.Status, Error: &p}
}

// prefixFields puts a batch item's path in front of its field errors.
func prefixFields(err error, prefix string) error {
	if ve, ok := err.(*validation.Error); ok {
		out := &validation.Error{}
		for _, f := range ve.Fields {
			out.Add(prefix+f.Field, f.Message)
		}
		return out
	}
	return err
}

type burnRequest struct {
	MemberID       int64      `json:"member_id"`
	Points         int64      `json:"points"`
	RedemptionCode string     `json:"redemption_code"`
	PIN            string     `json:"pin"`
	Capture        *bool      `json:"capture"`
	ExpiresAt      *time.Time `json:"expires_at"`
	ExternalRef    string     `json:"external_ref"`
	Outlet         string     `json:"outlet"`
	Card           string     `json:"card"`
}

// partPoints is the points of a capture or reversal: left out, the whole
// hold or what remains reversible; given, a positive integer. 0 and null
// are refused, so a client that sends a zero default never acts on the
// whole by accident.
type partPoints struct {
	given bool
	n     int64
}

// UnmarshalJSON reads an integer or null (which is given, and refused).
func (p *partPoints) UnmarshalJSON(b []byte) error {
	p.given = true
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		// encoding/json adds the field's path to this error.
		return &json.UnmarshalTypeError{Value: jsonKindOf(b), Type: reflect.TypeFor[int64]()}
	}
	p.n = n
	return nil
}

// orWhole is the points to act on, 0 meaning the whole (as partners takes
// it). Errors: *validation.Error naming field when given and not positive.
func (p partPoints) orWhole(field string) (int64, error) {
	if p.given && p.n <= 0 {
		return 0, validation.New(field, "must be a positive integer; leave it out to act on the whole")
	}
	return p.n, nil
}

type burnJSON = points.BurnView

func burnOut(b points.Burn) burnJSON { return b.View() }

// burn spends points in one step (capture defaults to true) or authorises a
// hold to capture or void later.
func (s *Server) burn(c *gin.Context) {
	pointMove(s, c, http.StatusCreated, requireBody, func(ctx context.Context, p access.Principal, idem ledger.Idempotency, req burnRequest) (any, bool, error) {
		in := points.BurnInput{MemberID: req.MemberID, Points: req.Points, RedemptionCode: req.RedemptionCode,
			PIN: req.PIN, Capture: req.Capture == nil || *req.Capture, ExternalRef: req.ExternalRef, Outlet: req.Outlet, Card: req.Card}
		if req.ExpiresAt != nil {
			in.ExpiresAt = *req.ExpiresAt
		}
		b, err := s.deps.Transactions.Burn(ctx, p, idem, in)
		return burnOut(b), b.Replayed, err
	})
}

func (s *Server) getBurn(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	b, err := s.deps.Transactions.GetBurn(c.Request.Context(), principal(c), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, burnOut(b))
}

func (s *Server) captureBurn(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	type captureRequest struct {
		Points partPoints `json:"points"`
	}
	pointMove(s, c, http.StatusOK, optionalBody, func(ctx context.Context, p access.Principal, idem ledger.Idempotency, req captureRequest) (any, bool, error) {
		points, err := req.Points.orWhole("points")
		if err != nil {
			return nil, false, err
		}
		b, err := s.deps.Transactions.Capture(ctx, p, idem, id, points)
		return burnOut(b), b.Replayed, err
	})
}

func (s *Server) voidBurn(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	pointMove(s, c, http.StatusOK, noBody, func(ctx context.Context, p access.Principal, idem ledger.Idempotency, _ struct{}) (any, bool, error) {
		b, err := s.deps.Transactions.Void(ctx, p, idem, id)
		return burnOut(b), b.Replayed, err
	})
}

func (s *Server) reverse(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	type reverseRequest struct {
		Points      partPoints `json:"points"`
		Reason      string     `json:"reason"`
		ExternalRef string     `json:"external_ref"`
	}
	pointMove(s, c, http.StatusCreated, requireBody, func(ctx context.Context, p access.Principal, idem ledger.Idempotency, req reverseRequest) (any, bool, error) {
		points, err := req.Points.orWhole("points")
		if err != nil {
			return nil, false, err
		}
		t, err := s.deps.Transactions.Reverse(ctx, p, idem, id, points, req.Reason, req.ExternalRef)
		return transactionOut(t), t.Replayed, err
	})
}

func (s *Server) getTransaction(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	t, err := s.deps.Transactions.Get(c.Request.Context(), principal(c), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, transactionOut(t))
}

// listTransactions pages through the partner's transactions, newest first.
// Filters: member_id, type (repeatable), from, to (RFC 3339), cursor, limit.
func (s *Server) listTransactions(c *gin.Context) {
	var v validation.Error
	f := ledger.Filter{Cursor: c.Query("cursor")}
	if raw := c.Query("member_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && id > 0, "member_id", "must be a positive integer")
		f.MemberID = id
	}
	for _, t := range c.QueryArray("type") {
		switch ledger.TxType(t) {
		case ledger.TypeEarn, ledger.TypeBurn, ledger.TypeCapture, ledger.TypeReversal:
			f.Types = append(f.Types, ledger.TxType(t))
		default:
			v.Add("type", "must be earn, burn, capture or reversal")
		}
	}
	f.From = queryTime(c, "from", &v)
	f.To = queryTime(c, "to", &v)
	f.Limit = queryLimit(c, 50, 500, &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Transactions.List(c.Request.Context(), principal(c), f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]transactionJSON, len(list))
	for i, t := range list {
		out[i] = transactionOut(t)
	}
	c.JSON(http.StatusOK, gin.H{"data": out, "next_cursor": next})
}

// bodyRule says whether a point-moving request carries a JSON body.
type bodyRule int

const (
	requireBody  bodyRule = iota // a JSON object is required
	optionalBody                 // an empty body means {}
	noBody                       // the body is ignored; the key covers the route alone
)

// pointMove is the one shape of every point-moving partner call: decode the
// body, derive the caller's idempotency from the Idempotency-Key header and a
// hash of the raw body, run op, and answer status, marking replays. op
// returns the response document and whether it replays an earlier answer.
func pointMove[Req any](s *Server, c *gin.Context, status int, rule bodyRule,
	op func(ctx context.Context, p access.Principal, idem ledger.Idempotency, req Req) (any, bool, error)) {
	var req Req
	body := []byte("{}")
	if rule == requireBody || (rule == optionalBody && c.Request.ContentLength != 0) {
		var err error
		if body, err = decodeJSON(c, &req); err != nil {
			fail(c, s.deps.Log, err)
			return
		}
	}
	p := principal(c)
	idem, err := idempotency(c, partnerScope(p), body)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out, wasReplay, err := op(c.Request.Context(), p, idem, req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, wasReplay)
	c.JSON(status, out)
}

// principal is the authenticated partner of a request behind partnerAuth.
func principal(c *gin.Context) access.Principal {
	p, _ := partnerPrincipal(c)
	return p
}
