package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/settlement"
)

// Finance: the operator's result and outstanding-liability roll-forward of
// a closed period, the general-ledger journal (JSON, CSV, DATEV) and the
// chart of accounts it books to; the admin API and the console's Finance
// page. The figures are settlement.Service.Finance's (settlement/result.go).

// periodResult is the result of a period by partner and in total.
type periodResult struct {
	Period       string                     `json:"period"`
	BaseCurrency string                     `json:"base_currency"`
	Partners     []settlement.PartnerResult `json:"partners"`
	Total        settlement.ResultFigures   `json:"total"`
	Rates        []settlement.Rate          `json:"rates"`
	SHA256       string                     `json:"sha256"`
}

// periodLiability is the liability roll-forward of a period per issuer and
// in total.
type periodLiability struct {
	Period       string                       `json:"period"`
	BaseCurrency string                       `json:"base_currency"`
	Issuers      []settlement.IssuerLiability `json:"issuers"`
	Total        struct {
		Points settlement.LiabilityFigures `json:"points"`
		Base   settlement.LiabilityFigures `json:"base"`
	} `json:"total"`
	SHA256 string `json:"sha256"`
}

func ratesOrEmpty(r []settlement.Rate) []settlement.Rate {
	if r == nil {
		return []settlement.Rate{}
	}
	return r
}

// adminPeriodResult is GET /v1/admin/settlement/periods/:month/result.
func (s *Server) adminPeriodResult(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	rep, err := s.deps.Settlement.Finance(c.Request.Context(), month)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, periodResult{Period: rep.Period, BaseCurrency: rep.BaseCurrency, Partners: rep.Partners, Total: rep.Total,
		Rates: ratesOrEmpty(rep.Rates), SHA256: rep.SHA256})
}

// adminPeriodLiability is GET /v1/admin/settlement/periods/:month/liability.
func (s *Server) adminPeriodLiability(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	rep, err := s.deps.Settlement.Finance(c.Request.Context(), month)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := periodLiability{Period: rep.Period, BaseCurrency: rep.BaseCurrency, Issuers: rep.Liability, SHA256: rep.SHA256}
	out.Total.Points, out.Total.Base = rep.LiabilityTotal.Points, rep.LiabilityTotal.Base
	c.JSON(http.StatusOK, out)
}

// journalQuery reads ?format= (json, csv, datev) and the DATEV numbers.
func journalQuery(q url.Values) (string, settlement.DATEVOptions, error) {
	var v validation.Error
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	v.Check(format == "json" || format == "csv" || format == "datev", "format", "must be json, csv or datev")
	o := settlement.DATEVOptions{Consultant: q.Get("consultant"), Client: q.Get("client"), FiscalYearStart: 1}
	if o.Consultant == "" {
		o.Consultant = "1001"
	}
	if o.Client == "" {
		o.Client = "1"
	}
	if raw := q.Get("fiscal_year_start"); raw != "" {
		n, err := strconv.Atoi(raw)
		v.Check(err == nil, "fiscal_year_start", "must be a month from 1 to 12")
		o.FiscalYearStart = n
	}
	return format, o, v.Err()
}

// writeJournal answers the journal of month in format: JSON lines, the CSV
// file or the DATEV Buchungsstapel.
func (s *Server) writeJournal(c *gin.Context, month, format string, o settlement.DATEVOptions) error {
	j, err := s.deps.Settlement.Journal(c.Request.Context(), month)
	if err != nil {
		return err
	}
	switch format {
	case "csv":
		c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="journal-%s.csv"`, month))
		c.Data(http.StatusOK, "text/csv; charset=utf-8", j.CSV())
	case "datev":
		raw, err := j.DATEV(o)
		if err != nil {
			return err
		}
		c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="EXTF_Buchungsstapel_%s.csv"`, month))
		c.Data(http.StatusOK, "text/csv; charset=windows-1252", raw)
	default:
		c.JSON(http.StatusOK, gin.H{"period": j.Period, "date": j.Date, "base_currency": j.Base, "data": j.Lines()})
	}
	return nil
}

// adminPeriodJournal is GET /v1/admin/settlement/periods/:month/journal.
func (s *Server) adminPeriodJournal(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	format, o, err := journalQuery(c.Request.URL.Query())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := s.writeJournal(c, month, format, o); err != nil {
		fail(c, s.deps.Log, err)
	}
}

// adminListAccounts is GET /v1/admin/settlement/accounts.
func (s *Server) adminListAccounts(c *gin.Context) {
	list, err := s.deps.Settlement.ChartOfAccounts(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

// adminSetAccount is PUT /v1/admin/settlement/accounts/:kind.
func (s *Server) adminSetAccount(c *gin.Context) {
	var req struct {
		Number string `json:"number"`
		Name   string `json:"name"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	a, err := s.deps.Settlement.SetAccount(c.Request.Context(), settlement.PostingKind(c.Param("kind")), req.Number, req.Name, actor(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

// ---- console

// consoleFinance is GET /console/finance: the latest closed period's page,
// or the list of periods when none is closed.
func (s *Server) consoleFinance(c *gin.Context) {
	list, err := s.deps.Settlement.Periods(c.Request.Context(), 24)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	for _, p := range list {
		if p.Status == settlement.PeriodClosed {
			c.Redirect(http.StatusSeeOther, "/console/finance/"+p.Month)
			return
		}
	}
	s.financePage(c, http.StatusOK, "", list, nil, nil)
}

// consoleFinancePeriod is GET /console/finance/:month.
func (s *Server) consoleFinancePeriod(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	list, err := s.deps.Settlement.Periods(c.Request.Context(), 24)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	s.financePage(c, http.StatusOK, month, list, nil, nil)
}

// financeRow is a line of the result table: a label and the figure of
// each partner and the total (base currency).
type financeRow struct {
	ID, Label string
	Strong    bool
	Local     []int64
	Total     int64
}

// financePage renders the Finance page of month (none: only the periods),
// with the chart-of-accounts form refused (posted, err) when set.
func (s *Server) financePage(c *gin.Context, status int, month string, periods []settlement.Period, posted url.Values, err error) {
	ctx := c.Request.Context()
	chart, lerr := s.deps.Settlement.ChartOfAccounts(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	f := newFormState()
	if posted != nil {
		f.refused("account", posted, err, nil)
	}
	var closed []settlement.Period
	for _, p := range periods {
		if p.Status == settlement.PeriodClosed {
			closed = append(closed, p)
		}
	}
	data := gin.H{"Periods": closed, "Month": month, "Accounts": chart}
	title := "Finance"
	if month != "" {
		title = "Finance: result " + month
		rep, ferr := s.deps.Settlement.Finance(ctx, month)
		if ferr != nil {
			s.pageError(c, "console", ferr)
			return
		}
		names := s.partnerNames(c)
		data["Report"] = rep
		data["Names"] = names
		data["Rows"] = resultRows(rep)
		t := rep.Total
		cur := rep.BaseCurrency
		data["Waterfall"] = svgWaterfall("Result "+month+" ("+cur+")", cur, []waterfallStep{
			{Label: "Revenue from issue prices (redeemed)", Delta: t.RedemptionRevenue},
			{Label: "Cost of redemptions", Delta: t.RedemptionCost},
			{Label: "Breakage kept", Delta: t.BreakageKept},
			{Label: "Operator fees", Delta: t.Fees},
			{Label: "Exchange margin", Delta: t.ExchangeMargin},
			{Label: "Operator-funded points", Delta: t.PromotionCost},
			{Label: "Adjustments", Delta: t.Adjustments},
			{Label: "Issue differences and rounding", Delta: t.IssueDifference + t.OtherLiability + t.ValuationRounding},
			{Label: "FX differences", Delta: t.FXDifference},
			{Label: "Result", Delta: t.Result, Total: true}})
		l := rep.LiabilityTotal.Base
		data["Rollforward"] = svgWaterfall("Outstanding liability "+month+" ("+cur+")", cur, []waterfallStep{
			{Label: "Opening", Delta: l.Opening, Total: true},
			{Label: "Issued", Delta: l.Issued},
			{Label: "Exchanged in", Delta: l.ExchangeIn},
			{Label: "Redeemed", Delta: l.Redeemed},
			{Label: "Exchanged out", Delta: l.ExchangeOut},
			{Label: "Expired", Delta: l.Expired},
			{Label: "Operator adjustments and moves", Delta: l.Adjusted + l.Moved},
			{Label: "FX and rounding", Delta: l.FX + l.Rounding},
			{Label: "Closing", Delta: l.Closing, Total: true}})
	}
	page := consolePage("finance", title, formData(f, data))
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_finance", page)
}

// resultRows lays the result out as table rows, partners as columns (in
// each partner's currency) and the total in the base currency.
func resultRows(rep settlement.FinanceReport) []financeRow {
	rows := []struct {
		id, label string
		strong    bool
		get       func(settlement.ResultFigures) int64
	}{
		{"revenue", "Revenue from issue prices (redeemed)", false, func(f settlement.ResultFigures) int64 { return f.RedemptionRevenue }},
		{"cost", "Cost of redemptions", false, func(f settlement.ResultFigures) int64 { return f.RedemptionCost }},
		{"breakage", "Breakage kept", false, func(f settlement.ResultFigures) int64 { return f.BreakageKept }},
		{"fees", "Operator fees", false, func(f settlement.ResultFigures) int64 { return f.Fees }},
		{"exchange", "Exchange margin", false, func(f settlement.ResultFigures) int64 { return f.ExchangeMargin }},
		{"promotions", "Operator-funded points", false, func(f settlement.ResultFigures) int64 { return f.PromotionCost }},
		{"adjustments", "Adjustments", false, func(f settlement.ResultFigures) int64 { return f.Adjustments }},
		{"issue-diff", "Issue differences", false, func(f settlement.ResultFigures) int64 { return f.IssueDifference }},
		{"other", "Operator adjustments of points", false, func(f settlement.ResultFigures) int64 { return f.OtherLiability }},
		{"rounding", "Valuation rounding", false, func(f settlement.ResultFigures) int64 { return f.ValuationRounding }},
		{"fx", "FX differences", false, func(f settlement.ResultFigures) int64 { return f.FXDifference }},
		{"result", "Result", true, func(f settlement.ResultFigures) int64 { return f.Result }},
		{"billed", "Points sold (billed at issue price)", false, func(f settlement.ResultFigures) int64 { return f.IssueCharges }},
		{"liability", "Liability change", false, func(f settlement.ResultFigures) int64 { return f.LiabilityChange }},
	}
	out := make([]financeRow, len(rows))
	for i, r := range rows {
		out[i] = financeRow{ID: r.id, Label: r.label, Strong: r.strong, Total: r.get(rep.Total)}
		for _, p := range rep.Partners {
			out[i].Local = append(out[i].Local, r.get(p.Local))
		}
	}
	return out
}

// consoleFinanceJournal is GET /console/finance/:month/journal/:format: the
// same files as GET /v1/admin/settlement/periods/:month/journal.
func (s *Server) consoleFinanceJournal(c *gin.Context) {
	month, err := pathMonth(c, "month")
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	q := c.Request.URL.Query()
	q.Set("format", c.Param("format"))
	format, o, err := journalQuery(q)
	if err == nil && format == "json" {
		err = errNotFound
	}
	if err == nil {
		err = s.writeJournal(c, month, format, o)
	}
	if err != nil {
		s.pageError(c, "console", err)
	}
}

// consoleSetAccount is POST /console/finance/accounts: the same call as PUT
// /v1/admin/settlement/accounts/:kind.
func (s *Server) consoleSetAccount(c *gin.Context) {
	kind := strings.TrimSpace(c.PostForm("posting_kind"))
	number, name := strings.TrimSpace(c.PostForm("number")), strings.TrimSpace(c.PostForm("name"))
	_, err := s.deps.Settlement.SetAccount(c.Request.Context(), settlement.PostingKind(kind), number, name, staffActor(staff(c)))
	s.audit(c, "settlement.account", "account:"+kind, fmt.Sprintf("%s %s", number, name), err)
	back := strings.TrimSpace(c.PostForm("month"))
	if err != nil {
		list, lerr := s.deps.Settlement.Periods(c.Request.Context(), 24)
		if lerr != nil {
			s.pageError(c, "console", lerr)
			return
		}
		if _, perr := pathMonthValue(back); perr != nil {
			back = ""
		}
		s.financePage(c, refusedStatus(err), back, list, c.Request.PostForm, err)
		return
	}
	to := "/console/finance"
	if _, perr := pathMonthValue(back); perr == nil && back != "" {
		to += "/" + back
	}
	okBack(c, to+"#accounts", fmt.Sprintf("Account %s %s saved for %s.", number, name, kind))
}

// pathMonthValue checks a month given in a form ("YYYY-MM").
func pathMonthValue(m string) (string, error) {
	var v validation.Error
	out := optionalMonth(m, "month", &v)
	return out, v.Err()
}
