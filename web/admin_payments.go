package web

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/settlement"
)

// Statements as finance works them: who moved them (transitions), the
// invoice or credit note issued at approval, payments and nettings against
// them, open balances with ageing, and the billing configuration documents
// read (legal entities, partners' billing details, tax rates,
// single-approver limits). The partner reads its statement's lines with the
// transactions behind them, and its documents.

// adminStatementTransitions lists who moved a statement and when.
func (s *Server) adminStatementTransitions(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Settlement.Transitions(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

// adminStatementPayments lists the payments and offsets of a statement and
// its balance.
func (s *Server) adminStatementPayments(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Settlement.Payments(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	bal, err := s.deps.Settlement.StatementBalance(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "balance": bal})
}

// paymentRequest is the body of a payment.
type paymentRequest struct {
	Amount    money.Money `json:"amount"`
	ValueDate string      `json:"value_date"`
	Reference string      `json:"reference"`
}

// recordPayment is the one path of the console form and of POST
// /v1/admin/settlement/statements/{id}/payments.
func (s *Server) recordPayment(c *gin.Context, id int64, req paymentRequest, key settlement.RequestKey) (settlement.Recorded, error) {
	r, err := s.deps.Settlement.RecordPayment(c.Request.Context(), settlement.PaymentInput{StatementID: id, Amount: req.Amount,
		ValueDate: req.ValueDate, Reference: strings.TrimSpace(req.Reference), Actor: actor(c), Key: key})
	return r, err
}

// adminRecordPayment records a payment against a statement under an
// Idempotency-Key; the statement is paid when its open balance reaches zero.
func (s *Server) adminRecordPayment(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req paymentRequest
	idem, err := staffMove(c, &req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.recordPayment(c, id, req, settlement.RequestKey{Scope: idem.Scope, Key: idem.Key, Hash: idem.RequestHash})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, r.Replayed)
	c.JSON(http.StatusCreated, r)
}

// nettingRequest is the body of a netting.
type nettingRequest struct {
	StatementIDs []int64 `json:"statement_ids"`
	ValueDate    string  `json:"value_date"`
	NetPayment   *struct {
		Amount    money.Money `json:"amount"`
		Reference string      `json:"reference"`
	} `json:"net_payment"`
}

// net is the one path of the console form and of POST
// /v1/admin/settlement/nettings.
func (s *Server) net(c *gin.Context, req nettingRequest, key settlement.RequestKey) (settlement.Netting, error) {
	if len(req.StatementIDs) != 2 {
		return settlement.Netting{}, validation.New("statement_ids", "must name exactly two statements")
	}
	in := settlement.NettingInput{StatementIDs: [2]int64{req.StatementIDs[0], req.StatementIDs[1]}, ValueDate: req.ValueDate,
		Actor: actor(c), Key: key}
	if p := req.NetPayment; p != nil {
		in.NetPayment = &settlement.NetPayment{Amount: p.Amount, Reference: strings.TrimSpace(p.Reference)}
	}
	return s.deps.Settlement.Net(c.Request.Context(), in)
}

// adminCreateNetting offsets an invoice against a credit note of one
// partner, with the net payment of the difference, under an
// Idempotency-Key.
func (s *Server) adminCreateNetting(c *gin.Context) {
	var req nettingRequest
	idem, err := staffMove(c, &req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	n, err := s.net(c, req, settlement.RequestKey{Scope: idem.Scope, Key: idem.Key, Hash: idem.RequestHash})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, n.Replayed)
	c.JSON(http.StatusCreated, n)
}

// adminOpenBalances lists the open balances per partner and currency with
// ageing, and the open statements behind them (?partner_id= for one).
func (s *Server) adminOpenBalances(c *gin.Context) {
	var partnerID int64
	if raw := c.Query("partner_id"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n <= 0 {
			fail(c, s.deps.Log, validation.New("partner_id", "must be a partner id"))
			return
		}
		partnerID = n
	}
	ctx := c.Request.Context()
	sums, err := s.deps.Settlement.PartnerBalances(ctx, partnerID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	open, err := s.deps.Settlement.OpenBalances(ctx, partnerID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"buckets": settlement.Buckets, "partners": sums, "statements": open})
}

// adminStatementInvoice returns the invoice or credit note of a statement as
// JSON, or its PDF with ?format=pdf.
func (s *Server) adminStatementInvoice(c *gin.Context) { s.invoiceOut(c, 0) }

// getStatementInvoice is the partner's download of the invoice or credit
// note of one of its sent statements.
func (s *Server) getStatementInvoice(c *gin.Context) { s.invoiceOut(c, principal(c).PartnerID) }

func (s *Server) invoiceOut(c *gin.Context, partnerID int64) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if _, err := s.visibleStatement(c, id, partnerID); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	inv, err := s.deps.Settlement.StatementInvoice(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	switch c.Query("format") {
	case "", "json":
		c.JSON(http.StatusOK, inv)
	case "pdf":
		var buf bytes.Buffer
		if err := inv.WritePDF(&buf); err != nil {
			fail(c, s.deps.Log, err)
			return
		}
		c.Header("Content-Disposition", `attachment; filename="`+inv.Number+`.pdf"`)
		c.Data(http.StatusOK, "application/pdf", buf.Bytes())
	default:
		fail(c, s.deps.Log, validation.New("format", "must be json or pdf"))
	}
}

// visibleStatement returns statement id when the caller may see it: staff
// (partnerID 0) every one, a partner its own once sent.
func (s *Server) visibleStatement(c *gin.Context, id, partnerID int64) (settlement.Statement, error) {
	st, err := s.deps.Settlement.Statement(c.Request.Context(), id)
	if err == nil && partnerID != 0 && (st.PartnerID != partnerID || (st.Status != settlement.StatementSent && st.Status != settlement.StatementPaid)) {
		err = settlement.ErrStatementNotFound
	}
	return st, err
}

// getStatementLines pages through the lines of one of the partner's sent
// statements with the transactions behind each line, as JSON, or all of
// them as CSV (?format=csv or Accept: text/csv).
func (s *Server) getStatementLines(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var v validation.Error
	limit := queryLimit(c, 100, 500, &v)
	cur, cerr := settlement.ParseLinesCursor(c.Query("cursor"), "cursor")
	if cerr != nil {
		v.Add("cursor", "is not a cursor this API returned")
	}
	format := c.Query("format")
	if format == "" && strings.Contains(c.GetHeader("Accept"), "text/csv") {
		format = "csv"
	}
	v.Check(format == "" || format == "json" || format == "csv", "format", "must be json or csv")
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, err := s.visibleStatement(c, id, principal(c).PartnerID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ctx := c.Request.Context()
	if format != "csv" {
		items, next, err := s.deps.Settlement.StatementLines(ctx, st, cur, limit)
		if err != nil {
			fail(c, s.deps.Log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"data": items, "next_cursor": next})
		return
	}
	// CSV: every line, read a page at a time; the first page is read before
	// anything is written, so a refusal is still a problem document.
	cur = settlement.LinesCursor{Line: 1}
	items, next, err := s.deps.Settlement.StatementLines(ctx, st, cur, 500)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="statement-`+st.Period+`-`+strconv.FormatInt(st.ID, 10)+`-lines.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"line", "kind", "description", "contract_version", "late_month", "line_points", "line_amount", "currency",
		"transaction_id", "type", "occurred_at", "posted_at", "external_ref", "points"})
	for {
		for _, it := range items {
			row := []string{strconv.Itoa(it.Line), string(it.Kind), it.Description, strconv.Itoa(it.Version), it.LateMonth,
				strconv.FormatInt(it.LinePoints, 10), it.LineAmount, it.Currency, "", "", "", "", "", ""}
			if t := it.Transaction; t != nil {
				copy(row[8:], []string{strconv.FormatInt(t.TransactionID, 10), t.Type, t.OccurredAt.UTC().Format(time.RFC3339),
					t.PostedAt.UTC().Format(time.RFC3339), t.ExternalRef, strconv.FormatInt(t.Points, 10)})
			}
			_ = w.Write(row)
		}
		if next == "" {
			break
		}
		cur, _ = settlement.ParseLinesCursor(next, "cursor")
		if items, next, err = s.deps.Settlement.StatementLines(ctx, st, cur, 500); err != nil {
			s.deps.Log.Error("statement lines CSV cut short", "statement", st.ID, "err", err)
			break
		}
	}
	w.Flush()
}

// ---- billing configuration

func (s *Server) adminListTaxRates(c *gin.Context) {
	list, err := s.deps.Settlement.TaxRates(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if list == nil {
		list = []settlement.TaxRate{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

func (s *Server) adminSetTaxRate(c *gin.Context) {
	var req struct {
		Rate          string `json:"rate"`
		ReverseCharge bool   `json:"reverse_charge"`
		Label         string `json:"label"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	rate, err := decimal.NewFromString(req.Rate)
	if err != nil {
		fail(c, s.deps.Log, validation.New("rate", "must be a decimal fraction (0.19 is 19 %)"))
		return
	}
	r, err := s.deps.Settlement.SetTaxRate(c.Request.Context(), settlement.TaxRate{Country: c.Param("country"), Rate: rate,
		ReverseCharge: req.ReverseCharge, Label: req.Label}, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (s *Server) adminListLegalEntities(c *gin.Context) {
	list, err := s.deps.Settlement.LegalEntities(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if list == nil {
		list = []settlement.LegalEntity{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

func (s *Server) adminSetLegalEntity(c *gin.Context) {
	var req struct {
		Name    string `json:"name"`
		Country string `json:"country"`
		VATID   string `json:"vat_id"`
		Address string `json:"address"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	e, err := s.deps.Settlement.SetLegalEntity(c.Request.Context(), settlement.LegalEntity{Code: c.Param("code"), Name: req.Name,
		Country: req.Country, VATID: req.VATID, Address: req.Address}, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (s *Server) adminGetPartnerBilling(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	b, found, err := s.deps.Settlement.PartnerBilling(c.Request.Context(), id)
	if err == nil && !found {
		err = withDetail(errNotFound, "the partner has no billing details")
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (s *Server) adminSetPartnerBilling(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		LegalEntity      string `json:"legal_entity"`
		LegalName        string `json:"legal_name"`
		Country          string `json:"country"`
		VATID            string `json:"vat_id"`
		Address          string `json:"address"`
		PaymentTermsDays int    `json:"payment_terms_days"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if _, err := s.deps.Partners.Partner(c.Request.Context(), id); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	b, err := s.deps.Settlement.SetPartnerBilling(c.Request.Context(), settlement.PartnerBilling{PartnerID: id, LegalEntity: req.LegalEntity,
		LegalName: req.LegalName, Country: req.Country, VATID: req.VATID, Address: req.Address, PaymentTermsDays: req.PaymentTermsDays}, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (s *Server) adminListApprovalLimits(c *gin.Context) {
	list, err := s.deps.Settlement.ApprovalLimits(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if list == nil {
		list = []settlement.ApprovalLimit{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

func (s *Server) adminSetApprovalLimit(c *gin.Context) {
	var req struct {
		BelowMinor int64 `json:"below_minor"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	l, err := s.deps.Settlement.SetApprovalLimit(c.Request.Context(), c.Param("currency"), req.BelowMinor, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, l)
}
