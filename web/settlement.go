package web

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/settlement"
)

// Settlement: partners read their statements and upload reconciliation
// files; finance staff close periods, set rates, move statements through
// their life cycle and resolve reconciliation lines.

// queryCursorID parses ?cursor= as a positive id.
func queryCursorID(c *gin.Context, v *validation.Error) int64 {
	raw := c.Query("cursor")
	if raw == "" {
		return 0
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	v.Check(err == nil && n > 0, "cursor", "is not a cursor this API returned")
	return n
}

// listStatements lists the partner's sent (and paid) statements, newest first.
func (s *Server) listStatements(c *gin.Context) {
	s.statementList(c, principal(c).PartnerID, true)
}

func (s *Server) statementList(c *gin.Context, partnerID int64, sent bool) {
	var v validation.Error
	after := queryCursorID(c, &v)
	limit := queryLimit(c, 50, 200, &v)
	period := optionalMonth(c.Query("period"), "period", &v)
	if partnerID == 0 && c.Query("partner_id") != "" {
		n, err := strconv.ParseInt(c.Query("partner_id"), 10, 64)
		v.Check(err == nil && n > 0, "partner_id", "must be a partner id")
		partnerID = n
	}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Settlement.Statements(c.Request.Context(), settlement.StatementFilter{PartnerID: partnerID, Period: period,
		Sent: sent, After: after, Limit: limit})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	next := ""
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	if list == nil {
		list = []settlement.Statement{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": next})
}

// getStatement returns one of the partner's sent statements as JSON, or with
// ?format=csv or ?format=pdf as a download. Another partner's statement, or
// one not sent yet, is not found.
func (s *Server) getStatement(c *gin.Context) {
	s.statementOut(c, principal(c).PartnerID)
}

func (s *Server) statementOut(c *gin.Context, partnerID int64) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, err := s.deps.Settlement.Statement(c.Request.Context(), id)
	if err == nil && partnerID != 0 && (st.PartnerID != partnerID || (st.Status != settlement.StatementSent && st.Status != settlement.StatementPaid)) {
		err = settlement.ErrStatementNotFound
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	name := "statement-" + st.Period + "-" + strconv.FormatInt(st.ID, 10)
	var buf bytes.Buffer
	switch c.Query("format") {
	case "", "json":
		c.JSON(http.StatusOK, st)
		return
	case "csv":
		err = st.WriteCSV(&buf)
		c.Header("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		c.Header("X-Statement-SHA256", st.SHA256)
		c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	case "pdf":
		err = st.WritePDF(&buf)
		c.Header("Content-Disposition", `attachment; filename="`+name+`.pdf"`)
		c.Header("X-Statement-SHA256", st.SHA256)
		c.Data(http.StatusOK, "application/pdf", buf.Bytes())
	default:
		fail(c, s.deps.Log, validation.New("format", "must be json, csv or pdf"))
	}
	if err != nil {
		s.deps.Log.ErrorContext(c.Request.Context(), "render statement", "err", err, "statement", st.ID)
	}
}

// uploadReconciliation streams a CSV body (text/csv) into a reconciliation of
// the period named by the path (YYYY-MM) and queues the matching job.
func (s *Server) uploadReconciliation(c *gin.Context) {
	s.reconciliationUpload(c, principal(c).PartnerID)
}

func (s *Server) reconciliationUpload(c *gin.Context, partnerID int64) {
	month, err := pathMonth(c, "id")
	if err == nil {
		err = csvContentType(c.GetHeader("Content-Type"))
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Settlement.Upload(c.Request.Context(), partnerID, month, c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errBodyTooLarge
		}
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, r)
}

// getReconciliation returns one of the partner's reconciliations.
func (s *Server) getReconciliation(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Settlement.Reconciliation(c.Request.Context(), id)
	if err == nil && r.PartnerID != principal(c).PartnerID {
		err = settlement.ErrReconciliationNotFound
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// ---- admin

func (s *Server) adminListPeriods(c *gin.Context) {
	list, err := s.deps.Settlement.Periods(c.Request.Context(), 0)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if list == nil {
		list = []settlement.Period{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": ""})
}

func (s *Server) adminGetPeriod(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, err := s.deps.Settlement.Period(c.Request.Context(), month)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// adminClosePeriod starts closing a period as a job run and answers 202 with
// the run (its URL in Location); while a close of the month runs, it answers
// that run and starts nothing.
func (s *Server) adminClosePeriod(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	run, _, err := s.deps.Settlement.StartClose(c.Request.Context(), month, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	accepted(c, run)
}

func (s *Server) adminPeriodReport(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Settlement.Report(c.Request.Context(), month)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (s *Server) adminListRates(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Settlement.Rates(c.Request.Context(), month)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if list == nil {
		list = []settlement.Rate{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

func (s *Server) adminSetRate(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Rate   string `json:"rate"`
		Source string `json:"source"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	rate, err := decimal.NewFromString(req.Rate)
	if err != nil {
		fail(c, s.deps.Log, validation.New("rate", "must be a decimal number"))
		return
	}
	r, err := s.deps.Settlement.SetRate(c.Request.Context(), month,
		settlement.Rate{From: req.From, To: req.To, Rate: rate, Source: req.Source}, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (s *Server) adminListStatements(c *gin.Context) { s.statementList(c, 0, false) }

func (s *Server) adminGetStatement(c *gin.Context) { s.statementOut(c, 0) }

func (s *Server) adminApproveStatement(c *gin.Context) {
	s.statementStep(c, func(id int64) (settlement.Statement, error) {
		return s.deps.Settlement.Approve(c.Request.Context(), id, actor(c))
	})
}

func (s *Server) adminSendStatement(c *gin.Context) {
	s.statementStep(c, func(id int64) (settlement.Statement, error) {
		return s.deps.Settlement.Send(c.Request.Context(), id, actor(c))
	})
}

func (s *Server) statementStep(c *gin.Context, step func(int64) (settlement.Statement, error)) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, err := step(id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) adminCreateAdjustment(c *gin.Context) {
	var req struct {
		PartnerID int64               `json:"partner_id"`
		Amount    money.Money         `json:"amount"`
		Reason    string              `json:"reason"`
		Corrects  *settlement.LineRef `json:"corrects"`
	}
	idem, err := staffMove(c, &req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	a, err := s.deps.Settlement.Adjust(c.Request.Context(), settlement.AdjustmentInput{PartnerID: req.PartnerID,
		Amount: req.Amount, Reason: req.Reason, Corrects: req.Corrects, Actor: actor(c),
		Key: &settlement.AdjustmentKey{Scope: idem.Scope, Key: idem.Key, Hash: idem.RequestHash}})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, a.Replayed)
	c.JSON(http.StatusCreated, a)
}

// adminUploadReconciliation uploads a file on a partner's behalf (console).
func (s *Server) adminUploadReconciliation(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	n, err := strconv.ParseInt(c.Query("partner_id"), 10, 64)
	if err != nil || n <= 0 {
		fail(c, s.deps.Log, validation.New("partner_id", "is required"))
		return
	}
	if err := csvContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if _, err := s.deps.Partners.Partner(c.Request.Context(), n); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Settlement.Upload(c.Request.Context(), n, month, c.Request.Body)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, r)
}

func (s *Server) adminGetReconciliation(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Settlement.Reconciliation(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// adminReconciliationLines pages through the lines of a reconciliation:
// ?outcome= matched, missing_in_hub, missing_in_file, amount_mismatch or all;
// by default every line that is not matched.
func (s *Server) adminReconciliationLines(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var v validation.Error
	after := queryCursorID(c, &v)
	limit := queryLimit(c, 100, 1000, &v)
	outcome := c.Query("outcome")
	switch outcome {
	case "", "all", settlement.OutcomeMatched, settlement.OutcomeMissingInHub, settlement.OutcomeMissingInFile, settlement.OutcomeMismatch:
	default:
		v.Add("outcome", "must be matched, missing_in_hub, missing_in_file, amount_mismatch or all")
	}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if _, err := s.deps.Settlement.Reconciliation(c.Request.Context(), id); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	lines, err := s.deps.Settlement.ReconLines(c.Request.Context(), id, outcome, after, limit)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	next := ""
	if len(lines) == limit {
		next = strconv.FormatInt(lines[len(lines)-1].ID, 10)
	}
	if lines == nil {
		lines = []settlement.ReconLine{}
	}
	c.JSON(http.StatusOK, gin.H{"data": lines, "next_cursor": next})
}

// adminReconciliationErrors pages through the malformed lines of an upload.
func (s *Server) adminReconciliationErrors(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var v validation.Error
	after := queryCursorID(c, &v)
	limit := queryLimit(c, 100, 1000, &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if _, err := s.deps.Settlement.Reconciliation(c.Request.Context(), id); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Settlement.LineErrors(c.Request.Context(), id, after, limit)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	next := ""
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].LineNo, 10)
	}
	if list == nil {
		list = []settlement.LineError{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": next})
}

func (s *Server) adminResolveReconLine(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		Action string       `json:"action"`
		Amount *money.Money `json:"amount"`
		Note   string       `json:"note"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.Action != "accept" && req.Action != "dispute" {
		fail(c, s.deps.Log, validation.New("action", "must be accept or dispute"))
		return
	}
	l, err := s.deps.Settlement.Resolve(c.Request.Context(), id, settlement.Resolution{Accept: req.Action == "accept",
		Amount: req.Amount, Note: req.Note, Actor: actor(c)})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, l)
}
