package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The partner side of the exchange protocol (served by exchange/partnersim
// for the demo and the tests). Every call carries "Authorization: Bearer
// <api key>" and JSON bodies:
//
//	POST {endpoint}/members/validate {"account"}                 → 200 {"valid", "reason"}
//	POST {endpoint}/credits {"transaction_id","account","units"}  → 200 completed | 202 pending | 422 refused
//	GET  {endpoint}/credits/{transaction_id}                      → the same answers; 404 unknown
//
// A credit is identified by transaction_id: the partner applies it at most
// once and answers a replay with the original outcome.

// CreditStatus is the partner's answer about a credit.
type CreditStatus string

// Credit outcomes. Unknown means the partner never saw the transaction id.
const (
	CreditCompleted CreditStatus = "completed"
	CreditPending   CreditStatus = "pending"
	CreditRefused   CreditStatus = "refused"
	CreditUnknown   CreditStatus = "unknown"
)

// CreditRequest asks the partner to credit Units to Account once, under
// TransactionID.
type CreditRequest struct {
	TransactionID string `json:"transaction_id"`
	Account       string `json:"account"`
	Units         int64  `json:"units"`
}

// CreditResult is the partner's definitive or pending answer.
type CreditResult struct {
	TransactionID string       `json:"transaction_id,omitempty"`
	Status        CreditStatus `json:"status"`
	PartnerRef    string       `json:"partner_ref,omitempty"`
	Reason        string       `json:"reason,omitempty"`
}

// ValidateResult answers a member validation.
type ValidateResult struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// Endpoint is where and how to reach one programme.
type Endpoint struct {
	URL    string
	APIKey string
}

// Partner is the outbound side of the protocol. Errors are transient
// (timeouts, network errors, 5xx, unparseable answers: retry later); a
// definitive answer is a result, never an error.
type Partner interface {
	ValidateMember(ctx context.Context, ep Endpoint, account string) (ValidateResult, error)
	Credit(ctx context.Context, ep Endpoint, req CreditRequest) (CreditResult, error)
	CreditStatus(ctx context.Context, ep Endpoint, transactionID string) (CreditResult, error)
}

// HTTPPartner speaks the protocol over net/http.
type HTTPPartner struct {
	Client *http.Client
}

// NewHTTPPartner returns a client whose calls time out after timeout.
func NewHTTPPartner(timeout time.Duration) *HTTPPartner {
	return &HTTPPartner{Client: &http.Client{Timeout: timeout}}
}

// ErrTransient wraps every failure that may succeed on a retry.
var ErrTransient = errors.New("exchange: transient partner failure")

func (h *HTTPPartner) do(ctx context.Context, ep Endpoint, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(ep.URL, "/")+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrTransient, err)
	}
	req.Header.Set("Authorization", "Bearer "+ep.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %s: %v", ErrTransient, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: read answer: %v", ErrTransient, err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, fmt.Errorf("%w: %s %s: HTTP %d", ErrTransient, method, path, resp.StatusCode)
	}
	if resp.StatusCode == http.StatusNotFound {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%w: %s %s: HTTP %d with unreadable body", ErrTransient, method, path, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// ValidateMember asks whether account exists and can receive credits.
func (h *HTTPPartner) ValidateMember(ctx context.Context, ep Endpoint, account string) (ValidateResult, error) {
	var out ValidateResult
	code, err := h.do(ctx, ep, http.MethodPost, "/members/validate", map[string]string{"account": account}, &out)
	if err == nil && code == http.StatusNotFound {
		return ValidateResult{Valid: false, Reason: "unknown account"}, nil
	}
	return out, err
}

// Credit sends (or replays) a credit.
func (h *HTTPPartner) Credit(ctx context.Context, ep Endpoint, req CreditRequest) (CreditResult, error) {
	var out CreditResult
	code, err := h.do(ctx, ep, http.MethodPost, "/credits", req, &out)
	if err != nil {
		return CreditResult{}, err
	}
	return checkResult(code, out)
}

// CreditStatus asks for the outcome of an earlier credit.
func (h *HTTPPartner) CreditStatus(ctx context.Context, ep Endpoint, transactionID string) (CreditResult, error) {
	var out CreditResult
	code, err := h.do(ctx, ep, http.MethodGet, "/credits/"+url.PathEscape(transactionID), nil, &out)
	if err != nil {
		return CreditResult{}, err
	}
	if code == http.StatusNotFound {
		return CreditResult{Status: CreditUnknown}, nil
	}
	return checkResult(code, out)
}

func checkResult(code int, r CreditResult) (CreditResult, error) {
	switch r.Status {
	case CreditCompleted, CreditPending, CreditRefused:
		return r, nil
	}
	return CreditResult{}, fmt.Errorf("%w: HTTP %d with status %q", ErrTransient, code, r.Status)
}
