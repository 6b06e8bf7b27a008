package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/validation"
)

// Exchange of points to and from partner programmes (package exchange):
// member portal endpoints under /v1/me, the partner protocol under /v1, the
// operator view under /v1/admin.

// programmeOut is a programme as members and partners see it: no endpoint,
// no credentials.
type programmeOut struct {
	ID         int64                `json:"id"`
	PartnerID  int64                `json:"partner_id"`
	Code       string               `json:"code"`
	Name       string               `json:"name"`
	Unit       string               `json:"unit"`
	Out        *exchange.Ratio      `json:"out,omitempty"`
	In         *exchange.Ratio      `json:"in,omitempty"`
	Increment  int64                `json:"increment"`
	MinPoints  int64                `json:"min_points"`
	MaxPoints  int64                `json:"max_points"`
	MonthlyMax int64                `json:"monthly_max_points"`
	FeePoints  int64                `json:"fee_points"`
	BonusBands []exchange.BonusBand `json:"bonus_bands"`
}

func programmeView(p exchange.Programme) programmeOut {
	return programmeOut{ID: p.ID, PartnerID: p.PartnerID, Code: p.Code, Name: p.Name, Unit: p.Unit, Out: p.Out, In: p.In,
		Increment: p.Increment, MinPoints: p.MinPoints, MaxPoints: p.MaxPoints, MonthlyMax: p.MonthlyMax,
		FeePoints: p.FeePoints, BonusBands: p.BonusBands}
}

// exchangePage renders a page of exchanges with the cursor of the next one.
func exchangePage(c *gin.Context, xs []exchange.Exchange, limit int) {
	next := ""
	if len(xs) == limit && len(xs) > 0 {
		next = strconv.FormatInt(xs[len(xs)-1].ID, 10)
	}
	c.JSON(http.StatusOK, gin.H{"items": xs, "next_cursor": next})
}

// exchangeFilter reads cursor, limit and status.
func exchangeFilter(c *gin.Context) (exchange.Filter, error) {
	var v validation.Error
	f := exchange.Filter{Limit: queryLimit(c, 50, 200, &v), Status: exchange.Status(c.Query("status"))}
	if cur := c.Query("cursor"); cur != "" {
		id, err := strconv.ParseInt(cur, 10, 64)
		v.Check(err == nil && id > 0, "cursor", "is not a cursor from this list")
		f.After = id
	}
	return f, v.Err()
}

// ---- member

func (s *Server) meExchangeProgrammes(c *gin.Context) {
	ps, err := s.deps.Exchange.Programmes(c.Request.Context(), 0)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]programmeOut, len(ps))
	for i, p := range ps {
		out[i] = programmeView(p)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
}

func (s *Server) meExchangeLinks(c *gin.Context) {
	ls, err := s.deps.Exchange.Links(c.Request.Context(), me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": ls})
}

func (s *Server) meLinkExchangeAccount(c *gin.Context) {
	programmeID, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		Account string `json:"account"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	l, err := s.deps.Exchange.Link(c.Request.Context(), me(c), programmeID, req.Account)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

func (s *Server) meExchangeQuote(c *gin.Context) {
	var req struct {
		ProgrammeID int64 `json:"programme_id"`
		Points      int64 `json:"points"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	q, err := s.deps.Exchange.Quote(c.Request.Context(), me(c), req.ProgrammeID, req.Points)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, q)
}

// meConfirmExchange confirms a quote. The quote id is the idempotency key:
// confirming it again answers the same exchange.
func (s *Server) meConfirmExchange(c *gin.Context) {
	var req struct {
		QuoteID string `json:"quote_id"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.Confirm(c.Request.Context(), me(c), req.QuoteID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, x.Replayed)
	c.JSON(http.StatusAccepted, x)
}

func (s *Server) meExchanges(c *gin.Context) {
	f, err := exchangeFilter(c)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	f.MemberID = me(c)
	xs, err := s.deps.Exchange.List(c.Request.Context(), f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	exchangePage(c, xs, f.Limit)
}

func (s *Server) meExchange(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.GetFor(c.Request.Context(), me(c), 0, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, x)
}

// ---- partner

// inboundExchange: the partner debited its programme and converts the units
// into points for a member.
func (s *Server) inboundExchange(c *gin.Context) {
	var req exchange.InboundInput
	body, err := decodeJSON(c, &req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p := principal(c)
	idem, err := idempotency(c, partnerScope(p), body)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.Inbound(c.Request.Context(), p.PartnerID, idem, req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, x.Replayed)
	status := http.StatusCreated
	if x.Replayed {
		status = http.StatusOK
	}
	c.JSON(status, x)
}

func (s *Server) partnerExchange(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.GetFor(c.Request.Context(), 0, principal(c).PartnerID, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, x)
}

// outboundStatus is the partner's callback with the final (or pending)
// status of a credit the hub sent; duplicates are harmless.
func (s *Server) outboundStatus(c *gin.Context) {
	var req exchange.CreditResult
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.Callback(c.Request.Context(), principal(c).PartnerID, c.Param("public_id"), req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, x)
}

// outboundReversal: the partner reversed a completed credit; the member's
// points come back.
func (s *Server) outboundReversal(c *gin.Context) {
	var req struct {
		Reason string `json:"reason"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.ReverseByPartner(c.Request.Context(), principal(c).PartnerID, c.Param("public_id"), req.Reason)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, x.Replayed)
	c.JSON(http.StatusOK, x)
}

// ---- operator

func (s *Server) adminExchanges(c *gin.Context) {
	f, err := exchangeFilter(c)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if v := c.Query("member_id"); v != "" {
		f.MemberID, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := c.Query("partner_id"); v != "" {
		f.PartnerID, _ = strconv.ParseInt(v, 10, 64)
	}
	xs, err := s.deps.Exchange.List(c.Request.Context(), f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	exchangePage(c, xs, f.Limit)
}

func (s *Server) adminExchange(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	x, err := s.deps.Exchange.Get(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, x)
}

func (s *Server) adminExchangeProgrammes(c *gin.Context) {
	ps, err := s.deps.Exchange.Programmes(c.Request.Context(), 0)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": ps})
}

type programmeRequest struct {
	PartnerID   int64           `json:"partner_id"`
	Code        string          `json:"code"`
	Name        string          `json:"name"`
	Unit        string          `json:"unit"`
	Out         *exchange.Ratio `json:"out"`
	In          *exchange.Ratio `json:"in"`
	Increment   int64           `json:"increment"`
	MinPoints   int64           `json:"min_points"`
	MaxPoints   int64           `json:"max_points"`
	MonthlyMax  int64           `json:"monthly_max_points"`
	FeePoints   int64           `json:"fee_points"`
	FeeMinor    int64           `json:"fee_minor"`
	FeeCurrency string          `json:"fee_currency"`
	BonusBands  []struct {
		FromPoints int64  `json:"from_points"`
		Percent    string `json:"percent"`
	} `json:"bonus_bands"`
	EndpointURL            string `json:"endpoint_url"`
	APIKey                 string `json:"api_key"`
	PendingDeadlineSeconds int64  `json:"pending_deadline_seconds"`
}

func (s *Server) adminCreateExchangeProgramme(c *gin.Context) {
	var req programmeRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	in := exchange.NewProgramme{PartnerID: req.PartnerID, Code: req.Code, Name: req.Name, Unit: req.Unit, Out: req.Out,
		In: req.In, Increment: req.Increment, MinPoints: req.MinPoints, MaxPoints: req.MaxPoints, MonthlyMax: req.MonthlyMax,
		FeePoints: req.FeePoints, FeeMinor: req.FeeMinor, FeeCurrency: req.FeeCurrency, EndpointURL: req.EndpointURL,
		APIKey: req.APIKey, PendingDeadline: time.Duration(req.PendingDeadlineSeconds) * time.Second}
	var v validation.Error
	for i, b := range req.BonusBands {
		pct, err := decimal.NewFromString(b.Percent)
		v.Check(err == nil, "bonus_bands["+strconv.Itoa(i)+"].percent", "must be a decimal string")
		in.BonusBands = append(in.BonusBands, exchange.BonusBand{FromPoints: b.FromPoints, Percent: pct})
	}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, err := s.deps.Exchange.CreateProgramme(c.Request.Context(), in)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, p)
}
