package web

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/settlement"
)

// The console's side of statements as finance works them: the statement
// page with its transitions, document, payments and balance and the payment
// form; the receivables and payables page with ageing and the netting form.
// Each POST calls the same method as its admin API route
// (web/admin_payments.go).

// statementPage renders a statement; after a refused form it keeps what
// was typed and shows the server's field messages.
func (s *Server) statementPage(c *gin.Context, status int, form string, posted url.Values, err error) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	ctx := c.Request.Context()
	st, lerr := s.deps.Settlement.Statement(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	transitions, lerr := s.deps.Settlement.Transitions(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	payments, lerr := s.deps.Settlement.Payments(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	bal, lerr := s.deps.Settlement.StatementBalance(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	var inv *settlement.Invoice
	if i, err := s.deps.Settlement.StatementInvoice(ctx, id); err == nil {
		inv = &i
	} else if !errors.Is(err, settlement.ErrInvoiceNotFound) {
		s.pageError(c, "console", err)
		return
	}
	f := newFormState()
	f.set("payment", "value_date", s.now().UTC().Format("2006-01-02"))
	if bal.Open.Minor > 0 {
		f.set("payment", "amount", majorUnits(bal.Open.Minor, bal.Open.Currency))
	}
	f.set("payment", "key", randomString(16))
	if form != "" {
		f.refused(form, posted, err, map[string]string{"amount.minor": "amount", "amount.currency": "amount"})
	}
	names := s.partnerNames(c)
	page := consolePage("settlement", fmt.Sprintf("Statement %d · %s · %s", st.ID, st.Period, partnerLabel(names, st.PartnerID)),
		formData(f, gin.H{"Statement": st, "Partner": partnerLabel(names, st.PartnerID), "Summary": statementSummary(st),
			"Transitions": transitions, "Payments": payments, "Balance": bal, "Invoice": inv}))
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_statement", page)
}

// consoleRecordPayment is the payment form of the statement page: POST
// /console/statements/:id/payment, as POST
// /v1/admin/settlement/statements/{id}/payments.
func (s *Server) consoleRecordPayment(c *gin.Context, id int64) {
	var v validation.Error
	cur := strings.TrimSpace(c.PostForm("currency"))
	req := paymentRequest{Amount: money.Money{Minor: formMinor(c.PostForm("amount"), cur, "amount", &v), Currency: cur},
		ValueDate: strings.TrimSpace(c.PostForm("value_date")), Reference: strings.TrimSpace(c.PostForm("reference"))}
	v.Check(req.Amount.Minor != 0, "amount", "must not be zero (negative refunds an over-payment)")
	err := v.Err()
	if err == nil {
		key := c.PostForm("key")
		if key == "" {
			key = randomString(16)
		}
		h := sha256.Sum256([]byte(fmt.Sprintf("console payment\n%d\n%d %s\n%s\n%s", id, req.Amount.Minor, cur, req.ValueDate, req.Reference)))
		_, err = s.recordPayment(c, id, req, settlement.RequestKey{Scope: staffScope(c), Key: "console-" + key, Hash: h[:]})
	}
	s.audit(c, "statement.payment", "statement:"+c.Param("id"), c.PostForm("amount")+" "+cur+" ref "+c.PostForm("reference"), err)
	if err != nil {
		s.statementPage(c, refusedStatus(err), "payment", c.Request.PostForm, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/statements/%d", id), "Payment of "+c.PostForm("amount")+" "+cur+" recorded.")
}

// consoleStatementInvoice downloads the statement's invoice or credit note
// as PDF.
func (s *Server) consoleStatementInvoice(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	inv, err := s.deps.Settlement.StatementInvoice(c.Request.Context(), id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	var buf bytes.Buffer
	if err := inv.WritePDF(&buf); err != nil {
		s.pageError(c, "console", err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="`+inv.Number+`.pdf"`)
	c.Data(http.StatusOK, "application/pdf", buf.Bytes())
}

// receivablesPage renders the open balances per partner with ageing, the
// open statements and the netting form.
func (s *Server) receivablesPage(c *gin.Context, status int, posted url.Values, err error) {
	ctx := c.Request.Context()
	sums, lerr := s.deps.Settlement.PartnerBalances(ctx, 0)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	open, lerr := s.deps.Settlement.OpenBalances(ctx, 0)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	f := newFormState()
	f.set("netting", "value_date", s.now().UTC().Format("2006-01-02"))
	f.set("netting", "key", randomString(16))
	if posted != nil {
		f.refused("netting", posted, err, map[string]string{"statement_ids": "receivable", "net_payment.amount.minor": "amount",
			"net_payment.amount.currency": "amount", "net_payment.reference": "reference"})
	}
	page := consolePage("receivables", "Receivables and payables", formData(f, gin.H{"Partners": sums, "OpenStatements": open,
		"Buckets": settlement.Buckets, "Names": s.partnerNames(c)}))
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_receivables", page)
}

// consoleReceivables is GET /console/receivables.
func (s *Server) consoleReceivables(c *gin.Context) { s.receivablesPage(c, http.StatusOK, nil, nil) }

// consoleNetting is the netting form: POST /console/nettings, as POST
// /v1/admin/settlement/nettings.
func (s *Server) consoleNetting(c *gin.Context) {
	var v validation.Error
	ids := [2]int64{}
	for i, field := range []string{"receivable", "payable"} {
		n, perr := strconv.ParseInt(strings.TrimSpace(c.PostForm(field)), 10, 64)
		v.Check(perr == nil && n > 0, field, "must be a statement id")
		ids[i] = n
	}
	req := nettingRequest{StatementIDs: ids[:], ValueDate: strings.TrimSpace(c.PostForm("value_date"))}
	cur := strings.TrimSpace(c.PostForm("currency"))
	if raw := strings.TrimSpace(c.PostForm("amount")); raw != "" && raw != "0" {
		req.NetPayment = &struct {
			Amount    money.Money `json:"amount"`
			Reference string      `json:"reference"`
		}{Amount: money.Money{Minor: formMinor(raw, cur, "amount", &v), Currency: cur}, Reference: c.PostForm("reference")}
	}
	err := v.Err()
	if err == nil {
		key := c.PostForm("key")
		if key == "" {
			key = randomString(16)
		}
		h := sha256.Sum256([]byte(fmt.Sprintf("console netting\n%d %d\n%s\n%s %s\n%s", ids[0], ids[1], req.ValueDate,
			c.PostForm("amount"), cur, c.PostForm("reference"))))
		_, err = s.net(c, req, settlement.RequestKey{Scope: staffScope(c), Key: "console-" + key, Hash: h[:]})
	}
	s.audit(c, "statement.netting", fmt.Sprintf("statements:%d,%d", ids[0], ids[1]), c.PostForm("amount")+" "+cur, err)
	if err != nil {
		s.receivablesPage(c, refusedStatus(err), c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/receivables", fmt.Sprintf("Statements %d and %d netted.", ids[0], ids[1]))
}
