package settlement

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// The general-ledger export: a double-entry journal of a closed period built
// from its statements and its result (result.go), booked to the accounts of
// a configurable chart of accounts. Each posting moves one amount from one
// account (debit) to another (credit) in the partner's settlement currency,
// so the journal balances per currency by construction; the partner balance
// account of each partner moves by the statement's net and the profit and
// loss accounts by the partner's result (TestJournalTies).

// PostingKind is what an account of the chart of accounts is used for.
type PostingKind string

// Posting kinds, with the default account numbers (SKR 03 style) of
// DefaultAccounts.
const (
	AcctPartnerBalance    PostingKind = "partner_balance"    // receivables from and payables to partners
	AcctPrepaidAdvances   PostingKind = "prepaid_advances"   // prepaid money received, drawn down for issued points
	AcctPointsLiability   PostingKind = "points_liability"   // outstanding points at the issue price (deferred revenue)
	AcctRedemptionRevenue PostingKind = "redemption_revenue" // issue-price value of redeemed points, released
	AcctBreakageRevenue   PostingKind = "breakage_revenue"   // issue-price value of expired points, released
	AcctExchangeRevenue   PostingKind = "exchange_revenue"   // issue-price value of points exchanged out, released
	AcctFeeIncome         PostingKind = "fee_income"         // operator fees
	AcctRedemptionCost    PostingKind = "redemption_cost"    // paid to redeeming partners
	AcctPromotionCost     PostingKind = "promotion_cost"     // paid for redeemed operator-funded points
	AcctExchangeCost      PostingKind = "exchange_cost"      // paid to programmes' partners for points exchanged out
	AcctBreakageShares    PostingKind = "breakage_shares"    // partners' shares of breakage
	AcctAdjustments       PostingKind = "adjustments"        // money corrections of statements
	AcctIssueDifference   PostingKind = "issue_difference"   // issue charges less the liability they created
	AcctOtherLiability    PostingKind = "other_liability"    // points the operator's adjustments took or added
	AcctValuationRounding PostingKind = "valuation_rounding" // rounding of the liability's valuation
)

// Account is an account of the chart: the number and name a posting kind is
// booked to. Default is true while nobody has set it.
type Account struct {
	Kind      PostingKind `json:"posting_kind"`
	Number    string      `json:"number"`
	Name      string      `json:"name"`
	Default   bool        `json:"default"`
	UpdatedAt *time.Time  `json:"updated_at,omitempty"`
	UpdatedBy string      `json:"updated_by,omitempty"`
}

// DefaultAccounts is the chart of accounts before anyone sets it, in the
// order it is shown.
var DefaultAccounts = []Account{
	{Kind: AcctPartnerBalance, Number: "1410", Name: "Partner receivables and payables"},
	{Kind: AcctPrepaidAdvances, Number: "1720", Name: "Prepayments received from partners"},
	{Kind: AcctPointsLiability, Number: "0990", Name: "Points liability (deferred revenue)"},
	{Kind: AcctRedemptionRevenue, Number: "8400", Name: "Revenue from redeemed points"},
	{Kind: AcctBreakageRevenue, Number: "8410", Name: "Breakage revenue"},
	{Kind: AcctExchangeRevenue, Number: "8420", Name: "Revenue from points exchanged out"},
	{Kind: AcctFeeIncome, Number: "8430", Name: "Operator fees"},
	{Kind: AcctIssueDifference, Number: "8490", Name: "Issue charge differences"},
	{Kind: AcctOtherLiability, Number: "8495", Name: "Points removed or added by the operator"},
	{Kind: AcctValuationRounding, Number: "8499", Name: "Points liability rounding"},
	{Kind: AcctRedemptionCost, Number: "3400", Name: "Cost of redemptions"},
	{Kind: AcctPromotionCost, Number: "4610", Name: "Cost of operator-funded points"},
	{Kind: AcctExchangeCost, Number: "3410", Name: "Cost of points exchanged out"},
	{Kind: AcctBreakageShares, Number: "3420", Name: "Partners' breakage shares"},
	{Kind: AcctAdjustments, Number: "4930", Name: "Settlement adjustments"},
}

var accountNumber = regexp.MustCompile(`^[0-9]{1,9}$`)

// ChartOfAccounts returns every posting kind's account: the one set, or
// the default.
func (s *Service) ChartOfAccounts(ctx context.Context) ([]Account, error) {
	return chartOfAccounts(s.db.WithContext(ctx))
}

func chartOfAccounts(tx *gorm.DB) ([]Account, error) {
	var rows []struct {
		PostingKind, Number, Name, UpdatedBy string
		UpdatedAt                            time.Time
	}
	if err := tx.Raw(`SELECT posting_kind, number, name, updated_at, updated_by FROM settlement_accounts`).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Account, len(DefaultAccounts))
	for i, a := range DefaultAccounts {
		out[i] = a
		out[i].Default = true
		for _, r := range rows {
			if r.PostingKind == string(a.Kind) {
				t := r.UpdatedAt.UTC()
				out[i] = Account{Kind: a.Kind, Number: r.Number, Name: r.Name, UpdatedAt: &t, UpdatedBy: r.UpdatedBy}
			}
		}
	}
	return out, nil
}

// SetAccount sets the account number and name of a posting kind. Errors:
// *validation.Error (unknown kind, a number that is not 1 to 9 digits, a
// name that is empty or longer than 100 characters).
func (s *Service) SetAccount(ctx context.Context, kind PostingKind, number, name, actor string) (Account, error) {
	var v validation.Error
	known := false
	for _, a := range DefaultAccounts {
		known = known || a.Kind == kind
	}
	v.Check(known, "posting_kind", "must be a posting kind of the chart of accounts")
	v.Check(accountNumber.MatchString(number), "number", "must be 1 to 9 digits")
	name = strings.TrimSpace(name)
	v.Check(len(name) >= 1 && len(name) <= 100, "name", "is required (at most 100 characters)")
	if err := v.Err(); err != nil {
		return Account{}, err
	}
	if actor == "" {
		actor = "system"
	}
	now := s.clock()
	if err := s.db.WithContext(ctx).Exec(`INSERT INTO settlement_accounts (posting_kind, number, name, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (posting_kind) DO UPDATE SET number = EXCLUDED.number, name = EXCLUDED.name,
		updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`, string(kind), number, name, now, actor).Error; err != nil {
		return Account{}, err
	}
	return Account{Kind: kind, Number: number, Name: name, UpdatedAt: &now, UpdatedBy: actor}, nil
}

// Posting moves Amount (positive, minor units) from the Debit account to the
// Credit account, for a partner, under a reference (the statement).
type Posting struct {
	Debit     PostingKind `json:"debit"`
	Credit    PostingKind `json:"credit"`
	Amount    money.Money `json:"amount"`
	PartnerID int64       `json:"partner_id"`
	Reference string      `json:"reference"`
	Text      string      `json:"text"`
}

// JournalLine is one side of a posting, as the CSV shows it.
type JournalLine struct {
	Date        string      `json:"date"`
	Account     string      `json:"account"`
	AccountName string      `json:"account_name"`
	Kind        PostingKind `json:"posting_kind"`
	Debit       int64       `json:"debit"`
	Credit      int64       `json:"credit"`
	Currency    string      `json:"currency"`
	PartnerID   int64       `json:"partner_id"`
	Reference   string      `json:"reference"`
	Text        string      `json:"text"`
}

// Journal is the general-ledger journal of a closed period, dated the
// period's last day (operator time zone).
type Journal struct {
	Period   string    `json:"period"`
	Date     string    `json:"date"`
	ClosedAt time.Time `json:"closed_at"`
	Postings []Posting `json:"postings"`
	Accounts []Account `json:"accounts"`
	Rates    []Rate    `json:"rates,omitempty"`
	Base     string    `json:"base_currency"`
	account  map[PostingKind]Account
}

// Lines is the journal as debit and credit lines, two per posting.
func (j Journal) Lines() []JournalLine {
	out := make([]JournalLine, 0, 2*len(j.Postings))
	for _, p := range j.Postings {
		d, c := j.account[p.Debit], j.account[p.Credit]
		out = append(out,
			JournalLine{Date: j.Date, Account: d.Number, AccountName: d.Name, Kind: p.Debit, Debit: p.Amount.Minor, Currency: p.Amount.Currency,
				PartnerID: p.PartnerID, Reference: p.Reference, Text: p.Text},
			JournalLine{Date: j.Date, Account: c.Number, AccountName: c.Name, Kind: p.Credit, Credit: p.Amount.Minor, Currency: p.Amount.Currency,
				PartnerID: p.PartnerID, Reference: p.Reference, Text: p.Text})
	}
	return out
}

// Journal builds the general-ledger journal of a closed period from its
// statements and its result. Errors: those of Finance.
func (s *Service) Journal(ctx context.Context, monthStr string) (Journal, error) {
	rep, err := s.Finance(ctx, monthStr)
	if err != nil {
		return Journal{}, err
	}
	m, _ := parseMonth(monthStr, "period", s.loc) // parsed by Finance
	db := s.db.WithContext(ctx)
	p, err := selectPeriod(db, m, false)
	if err != nil {
		return Journal{}, err
	}
	chart, err := chartOfAccounts(db)
	if err != nil {
		return Journal{}, err
	}
	rates, err := selectRates(db, p.ID)
	if err != nil {
		return Journal{}, err
	}
	sts, err := s.Statements(ctx, StatementFilter{Period: monthStr, Limit: 200})
	if err != nil {
		return Journal{}, err
	}
	all := sts
	for len(sts) == 200 {
		if sts, err = s.Statements(ctx, StatementFilter{Period: monthStr, Limit: 200, After: sts[len(sts)-1].ID}); err != nil {
			return Journal{}, err
		}
		all = append(all, sts...)
	}
	j := buildJournal(rep, all, chart)
	j.Date = time.Date(m.year, m.mon+1, 0, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
	if p.ClosedAt != nil {
		j.ClosedAt = p.ClosedAt.UTC()
	}
	j.Rates = rates
	return j, nil
}

// buildJournal turns a period's result and statements into postings, per
// partner in partner order, each figure one posting (none for zero).
func buildJournal(rep FinanceReport, sts []Statement, chart []Account) Journal {
	j := Journal{Period: rep.Period, Base: rep.BaseCurrency, Accounts: chart, Postings: []Posting{}, account: map[PostingKind]Account{}}
	for _, a := range chart {
		j.account[a.Kind] = a
	}
	byPartner := map[int64]Statement{}
	for _, st := range sts {
		byPartner[st.PartnerID] = st
	}
	for _, pr := range rep.Partners {
		f := pr.Local
		ref := fmt.Sprintf("P%d-%s", pr.PartnerID, rep.Period)
		var drawDown int64
		if st, ok := byPartner[pr.PartnerID]; ok {
			ref = fmt.Sprintf("ST-%d", st.ID)
			for _, l := range st.Document.Lines {
				if l.Kind == LinePrepaidDrawDown {
					drawDown += l.Amount.Minor
				}
			}
		}
		// post books amount from debit to credit; a negative amount the
		// other way round.
		post := func(debit, credit PostingKind, amount int64, text string) {
			if amount == 0 {
				return
			}
			if amount < 0 {
				debit, credit, amount = credit, debit, -amount
			}
			j.Postings = append(j.Postings, Posting{Debit: debit, Credit: credit, Amount: money.Money{Minor: amount, Currency: f.Currency},
				PartnerID: pr.PartnerID, Reference: ref, Text: fmt.Sprintf("%s, partner %d, %s", text, pr.PartnerID, rep.Period)})
		}
		post(AcctPartnerBalance, AcctPointsLiability, f.IssueCharges, "Points issued at the issue price")
		post(AcctPointsLiability, AcctIssueDifference, f.IssueDifference, "Issue charges less liability")
		post(AcctRedemptionCost, AcctPartnerBalance, -f.RedemptionCost, "Redemptions reimbursed")
		post(AcctPromotionCost, AcctPartnerBalance, -f.PromotionCost, "Operator-funded points redeemed")
		post(AcctPointsLiability, AcctRedemptionRevenue, f.RedemptionRevenue, "Redeemed points released")
		post(AcctPointsLiability, AcctBreakageRevenue, f.BreakageReleased, "Expired points released")
		post(AcctBreakageShares, AcctPartnerBalance, -f.BreakageShares, "Breakage share")
		post(AcctPointsLiability, AcctExchangeRevenue, f.ExchangeReleased, "Points exchanged out released")
		post(AcctExchangeCost, AcctPartnerBalance, -f.ExchangeCost, "Points exchanged out paid")
		post(AcctPartnerBalance, AcctFeeIncome, f.Fees, "Operator fee")
		post(AcctAdjustments, AcctPartnerBalance, -f.Adjustments, "Statement adjustments")
		post(AcctPointsLiability, AcctOtherLiability, f.OtherLiability, "Points taken or added by the operator")
		post(AcctPointsLiability, AcctValuationRounding, f.ValuationRounding, "Liability valuation rounding")
		post(AcctPrepaidAdvances, AcctPartnerBalance, drawDown, "Prepaid balance drawn")
	}
	return j
}

// Movement is the movement (debit − credit) of the posting kind's account
// for a partner (0: every partner) in a currency.
func (j Journal) Movement(kind PostingKind, partnerID int64, currency string) int64 {
	var m int64
	for _, p := range j.Postings {
		if p.Amount.Currency != currency || (partnerID != 0 && p.PartnerID != partnerID) {
			continue
		}
		if p.Debit == kind {
			m += p.Amount.Minor
		}
		if p.Credit == kind {
			m -= p.Amount.Minor
		}
	}
	return m
}

// CSV renders the journal's lines: date, account, account name, posting
// kind, debit, credit (major units, point as decimal separator), currency,
// partner, reference, text.
func (j Journal) CSV() []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"date", "account", "account_name", "posting_kind", "debit", "credit", "currency", "partner_id", "reference", "text"})
	amount := func(minor int64, cur string) string {
		if minor == 0 {
			return ""
		}
		return decimal.New(minor, -money.Exponent(cur)).StringFixed(money.Exponent(cur))
	}
	for _, l := range j.Lines() {
		_ = w.Write([]string{l.Date, l.Account, l.AccountName, string(l.Kind), amount(l.Debit, l.Currency), amount(l.Credit, l.Currency),
			l.Currency, fmt.Sprint(l.PartnerID), l.Reference, l.Text})
	}
	w.Flush()
	return buf.Bytes()
}

// DATEVOptions are the numbers a DATEV import needs: the tax consultant's
// and the client's (Beraternummer, Mandantennummer), and the first month of
// the fiscal year (1 to 12).
type DATEVOptions struct {
	Consultant, Client string
	FiscalYearStart    int
}

var datevNumber = regexp.MustCompile(`^[0-9]{1,7}$`)

// DATEV renders the journal as a DATEV "Buchungsstapel" (EXTF format 700,
// category 21, version 13): a header line, the column names, then one
// booking per posting (Konto = debit account, Gegenkonto = credit account,
// Soll/Haben "S"), amounts with a decimal comma, Belegdatum as DDMM. A
// posting in another currency than the base carries its currency (WKZ
// Umsatz), the period's rate (Kurs) and the base amount (Basis-Umsatz,
// rounded half-even). The created time is the period's close, so the same
// period gives the same bytes. Errors: *validation.Error, ErrMissingRate.
func (j Journal) DATEV(o DATEVOptions) ([]byte, error) {
	var v validation.Error
	v.Check(datevNumber.MatchString(o.Consultant), "consultant", "must be 1 to 7 digits (Beraternummer)")
	v.Check(datevNumber.MatchString(o.Client), "client", "must be 1 to 7 digits (Mandantennummer)")
	v.Check(o.FiscalYearStart >= 1 && o.FiscalYearStart <= 12, "fiscal_year_start", "must be a month from 1 to 12")
	if err := v.Err(); err != nil {
		return nil, err
	}
	period, _ := time.Parse("2006-01", j.Period)
	fy := time.Date(period.Year(), time.Month(o.FiscalYearStart), 1, 0, 0, 0, 0, time.UTC)
	if fy.After(period) {
		fy = fy.AddDate(-1, 0, 0)
	}
	last := period.AddDate(0, 1, -1)
	width := 4
	for _, a := range j.Accounts {
		width = max(width, len(a.Number))
	}
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	var buf bytes.Buffer
	header := []string{q("EXTF"), "700", "21", q("Buchungsstapel"), "13", j.ClosedAt.UTC().Format("20060102150405") + "000", "",
		q("RE"), q(""), q(""), o.Consultant, o.Client, fy.Format("20060102"), fmt.Sprint(width), period.Format("20060102"),
		last.Format("20060102"), q("Settlement " + j.Period), q(""), "1", "0", "0", q(j.Base), "", q(""), "", "", q(""), "", "", q(""), q("")}
	buf.WriteString(strings.Join(header, ";") + "\r\n")
	buf.WriteString("Umsatz (ohne Soll/Haben-Kz);Soll/Haben-Kennzeichen;WKZ Umsatz;Kurs;Basis-Umsatz;WKZ Basis-Umsatz;" +
		"Konto;Gegenkonto (ohne BU-Schl\xfcssel);BU-Schl\xfcssel;Belegdatum;Belegfeld 1;Belegfeld 2;Skonto;Buchungstext\r\n")
	comma := func(d decimal.Decimal, places int32) string {
		return strings.ReplaceAll(d.StringFixed(places), ".", ",")
	}
	pad := func(n string) string { return strings.Repeat("0", max(0, width-len(n))) + n }
	for _, p := range j.Postings {
		cur := p.Amount.Currency
		e := money.Exponent(cur)
		rate, baseAmt := "", ""
		if cur != j.Base {
			b, r, err := convert(p.Amount.Minor, cur, j.Base, j.Rates)
			if err != nil {
				return nil, fmt.Errorf("posting in %s: %w", cur, err)
			}
			rate, baseAmt = comma(r.Rate, 6), comma(decimal.New(b, -money.Exponent(j.Base)), money.Exponent(j.Base))
		}
		text := p.Text
		if len(text) > 60 {
			text = text[:60]
		}
		row := []string{comma(decimal.New(p.Amount.Minor, -e), e), q("S"), q(cur), rate, baseAmt, q(baseIf(baseAmt, j.Base)),
			q(pad(j.account[p.Debit].Number)), q(pad(j.account[p.Credit].Number)), q(""), last.Format("0201"), q(p.Reference),
			q(fmt.Sprintf("P%d", p.PartnerID)), "", q(text)}
		buf.WriteString(strings.Join(row, ";") + "\r\n")
	}
	return buf.Bytes(), nil
}

func baseIf(amount, base string) string {
	if amount == "" {
		return ""
	}
	return base
}
