package web

import (
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/settlement"
)

// The transactions behind a statement line: GET
// /v1/admin/settlement/statements/:id/transactions (JSON pages or the whole
// list as CSV) and its console page, both over
// settlement.Service.LineTransactions.

// lineQuery reads the line to trace from the query string: kind,
// contract_version, late and month (of a late line), cursor and limit.
func lineQuery(c *gin.Context, v *validation.Error) settlement.LineQuery {
	q := settlement.LineQuery{Kind: settlement.LineKind(c.Query("kind")), After: queryCursorID(c, v), Limit: queryLimit(c, 100, 500, v)}
	if raw := c.Query("contract_version"); raw != "" {
		n, err := strconv.Atoi(raw)
		v.Check(err == nil && n > 0, "contract_version", "must be a contract version (1 or more)")
		q.ContractVersion = n
	}
	switch c.Query("late") {
	case "", "false":
	case "true":
		q.Late = true
		q.LateMonth = c.Query("month")
		v.Check(q.LateMonth != "", "month", "is required with late=true (the month the late transactions occurred in, YYYY-MM)")
	default:
		v.Check(false, "late", "must be true or false")
	}
	return q
}

// adminStatementTransactions is GET
// /v1/admin/settlement/statements/:id/transactions: the ledger transactions
// behind the statement's line of a kind and contract version, a page at a
// time, or all of them as CSV with format=csv.
func (s *Server) adminStatementTransactions(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var v validation.Error
	q := lineQuery(c, &v)
	q.StatementID = id
	format := c.DefaultQuery("format", "json")
	v.Check(format == "json" || format == "csv", "format", "must be json or csv")
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if format == "csv" {
		s.lineTransactionsCSV(c, q)
		return
	}
	list, err := s.deps.Settlement.LineTransactions(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	next := ""
	if len(list) == q.Limit {
		next = strconv.FormatInt(list[len(list)-1].TransactionID, 10)
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": next})
}

// lineTransactionsCSV writes every transaction behind the line as CSV,
// reading it a page at a time. The first page is read before anything is
// written, so a refusal is still a problem document.
func (s *Server) lineTransactionsCSV(c *gin.Context, q settlement.LineQuery) {
	q.After, q.Limit = 0, 500
	page, err := s.deps.Settlement.LineTransactions(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	name := fmt.Sprintf("statement-%d-%s-v%d", q.StatementID, q.Kind, q.ContractVersion)
	if q.Late {
		name += "-late-" + q.LateMonth
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"transaction_id", "type", "member_id", "occurred_at", "posted_at", "external_ref", "points", "contract_version", "late"})
	for {
		for _, t := range page {
			_ = w.Write([]string{strconv.FormatInt(t.TransactionID, 10), t.Type, strconv.FormatInt(t.MemberID, 10),
				t.OccurredAt.UTC().Format(time.RFC3339), t.PostedAt.UTC().Format(time.RFC3339), t.ExternalRef,
				strconv.FormatInt(t.Points, 10), strconv.Itoa(t.ContractVersion), strconv.FormatBool(t.Late)})
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].TransactionID
		if page, err = s.deps.Settlement.LineTransactions(c.Request.Context(), q); err != nil {
			s.deps.Log.Error("statement transactions CSV cut short", "statement", q.StatementID, "err", err)
			break
		}
	}
	w.Flush()
}

// consoleStatementTransactions is the console page of the transactions
// behind a statement line, 100 a page, with a CSV download of them all.
func (s *Server) consoleStatementTransactions(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	var v validation.Error
	q := lineQuery(c, &v)
	q.StatementID = id
	if err := v.Err(); err != nil {
		s.pageError(c, "console", err)
		return
	}
	if c.Query("format") == "csv" {
		s.lineTransactionsCSV(c, q)
		return
	}
	ctx := c.Request.Context()
	st, err := s.deps.Settlement.Statement(ctx, id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	list, err := s.deps.Settlement.LineTransactions(ctx, q)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	var line *settlement.SummaryLine
	for _, l := range st.Document.Summary() {
		if l.Kind == q.Kind && l.ContractVersion == q.ContractVersion && l.Late == q.Late && l.LateMonth == q.LateMonth {
			line = &l
			break
		}
	}
	base := c.Request.URL.Query()
	base.Del("cursor")
	base.Del("format")
	next := ""
	if len(list) == q.Limit {
		more := maps.Clone(base)
		more.Set("cursor", strconv.FormatInt(list[len(list)-1].TransactionID, 10))
		next = c.Request.URL.Path + "?" + more.Encode()
	}
	csvQuery := maps.Clone(base)
	csvQuery.Set("format", "csv")
	names := s.partnerNames(c)
	s.render(c, "console_statement_lines", consolePage("settlement",
		fmt.Sprintf("Statement %d · %s · transactions behind a line", st.ID, partnerLabel(names, st.PartnerID)),
		gin.H{"Statement": st, "Line": line, "Transactions": list, "Next": next, "First": q.After == 0,
			"FirstURL": c.Request.URL.Path + "?" + base.Encode(), "CSV": c.Request.URL.Path + "?" + csvQuery.Encode()}))
}

// summaryRow is a summary line of a statement with the link to the
// transactions behind it.
type summaryRow struct {
	settlement.SummaryLine
	Link string
}

// statementSummary is the statement's summary with the links of its lines.
func statementSummary(st settlement.Statement) []summaryRow {
	sum := st.Document.Summary()
	out := make([]summaryRow, len(sum))
	for i, l := range sum {
		out[i] = summaryRow{SummaryLine: l}
		if l.Traceable {
			out[i].Link = "/console/statements/" + strconv.FormatInt(st.ID, 10) + "/transactions?" + lineLink(l)
		}
	}
	return out
}

// lineLink is the query string of the transactions behind a summary line.
func lineLink(l settlement.SummaryLine) string {
	q := "kind=" + string(l.Kind)
	if l.ContractVersion > 0 {
		q += "&contract_version=" + strconv.Itoa(l.ContractVersion)
	}
	if l.Late {
		q += "&late=true&month=" + l.LateMonth
	}
	return q
}

// reconOutcomes are the outcomes a reconciliation line can have.
var reconOutcomes = map[string]bool{settlement.OutcomeMatched: true, settlement.OutcomeMissingInHub: true,
	settlement.OutcomeMissingInFile: true, settlement.OutcomeMismatch: true}

// reconFilter is one outcome filter of the reconciliation page with its
// count of lines.
type reconFilter struct {
	Outcome, Label string
	Count          int64
}

// reconFilters are the reconciliation page's filters: the lines that need a
// look (every outcome but matched, the default), each outcome, and all.
func reconFilters(r settlement.Reconciliation) []reconFilter {
	return []reconFilter{
		{"", "Need a look", r.MissingInHub + r.MissingInFile + r.Mismatched},
		{settlement.OutcomeMismatch, "Amount mismatch", r.Mismatched},
		{settlement.OutcomeMissingInHub, "Missing in hub", r.MissingInHub},
		{settlement.OutcomeMissingInFile, "Missing in file", r.MissingInFile},
		{settlement.OutcomeMatched, "Matched", r.Matched},
		{"all", "All", r.Matched + r.MissingInHub + r.MissingInFile + r.Mismatched},
	}
}
