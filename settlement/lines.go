package settlement

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
)

// SummaryLine is one line of a statement as a person reads it: the
// statement's lines of one kind and contract version added up, late lines
// grouped by the month they occurred in (operator time zone). Adjustments
// and prepaid lines stay one each.
type SummaryLine struct {
	Kind            LineKind
	ContractVersion int
	Late            bool
	LateMonth       string // "YYYY-MM" of a late group
	Description     string
	UnitPrice       string
	Factor          string
	Lines           int // statement lines added up
	Points          int64
	Amount          money.Money
	Informational   bool
	AdjustmentID    int64
	// Traceable: the ledger transactions behind it can be listed
	// (LineTransactions); adjustments and prepaid lines have none.
	Traceable bool
}

// traceable kinds are those whose lines come from ledger transactions.
var traceable = map[LineKind]bool{LineIssued: true, LineRedeemed: true, LineOperatorFee: true, LineExchangeIn: true,
	LineExchangeOut: true, LineBreakage: true}

// Summary adds up the document's lines per kind and contract version, late
// lines per month they occurred in, in the document's line order. Each sum
// is of amounts already rounded per line, so the summary adds up to the net.
func (d Document) Summary() []SummaryLine {
	loc, err := time.LoadLocation(d.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	type key struct {
		kind    LineKind
		version int
		late    bool
		month   string
		adj     int64
		info    bool
	}
	var out []SummaryLine
	at := map[key]int{}
	for _, l := range d.Lines {
		k := key{kind: l.Kind, version: l.ContractVersion, late: l.Late, info: l.Informational}
		if l.Late && l.OccurredAt != nil {
			k.month = l.OccurredAt.In(loc).Format("2006-01")
		}
		if !traceable[l.Kind] {
			k.adj = int64(l.No) // one summary line each
		}
		i, ok := at[k]
		if !ok {
			desc := strings.TrimPrefix(l.Description, "Late: ")
			if l.Late {
				desc = "Late, occurred " + k.month + ": " + desc
			}
			out = append(out, SummaryLine{Kind: l.Kind, ContractVersion: l.ContractVersion, Late: l.Late, LateMonth: k.month,
				Description: desc, UnitPrice: l.UnitPrice, Factor: l.Factor, Amount: money.Money{Minor: 0, Currency: l.Amount.Currency},
				Informational: l.Informational, AdjustmentID: l.AdjustmentID, Traceable: traceable[l.Kind]})
			i = len(out) - 1
			at[k] = i
		}
		out[i].Lines++
		out[i].Points += l.Points
		out[i].Amount.Minor += l.Amount.Minor
	}
	return out
}

// LineQuery selects the ledger transactions behind a summary line of a
// statement: its kind, contract version (0: any) and, for late lines, the
// month they occurred in. After is a cursor (transaction ids ascending).
type LineQuery struct {
	StatementID     int64
	Kind            LineKind
	ContractVersion int
	Late            bool
	LateMonth       string
	After           int64
	Limit           int
}

// LineTransaction is a ledger transaction behind a statement line, with the
// points it contributed to the line (signed as the line's points).
type LineTransaction struct {
	TransactionID   int64     `json:"transaction_id"`
	Type            string    `json:"type"`
	MemberID        int64     `json:"member_id"`
	OccurredAt      time.Time `json:"occurred_at"`
	PostedAt        time.Time `json:"posted_at"`
	ExternalRef     string    `json:"external_ref"`
	Points          int64     `json:"points"`
	ContractVersion int       `json:"contract_version"`
	Late            bool      `json:"late"`
}

// accountKinds is the partner account each traceable line kind sums, and
// the sign that turns its entries into the line's points.
var accountKinds = map[LineKind]struct {
	account string
	sign    int64
}{
	LineIssued:      {"partner_issued", -1},
	LineRedeemed:    {"partner_redeemed", 1},
	LineOperatorFee: {"partner_redeemed", 1},
	LineExchangeIn:  {"partner_exchange_in", -1},
	LineExchangeOut: {"partner_exchange_out", 1},
}

// LineTransactions lists, in id order, the ledger transactions the period of
// statement q.StatementID settled that make up the statement's lines of
// q.Kind and q.ContractVersion (late ones of q.LateMonth when q.Late), as
// the close priced them: a reversal at its original's contract, breakage by
// the lots' earn time. Errors: *validation.Error, ErrStatementNotFound.
func (s *Service) LineTransactions(ctx context.Context, q LineQuery) ([]LineTransaction, error) {
	var v validation.Error
	v.Check(traceable[q.Kind], "kind", "must be a kind of line made of transactions (issued, redeemed, operator_fee, exchange_in, exchange_out, breakage)")
	var lateFrom, lateTo time.Time
	if q.Late {
		m, err := parseMonth(q.LateMonth, "month", s.loc)
		if err != nil {
			return nil, err
		}
		lateFrom, lateTo = m.start(), m.end()
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	st, err := s.Statement(ctx, q.StatementID)
	if err != nil {
		return nil, err
	}
	all, err := partners.ContractVersionsWith(s.db.WithContext(ctx), st.PartnerID)
	if err != nil {
		return nil, err
	}
	versions := make([]ledger.PriceVersion, len(all))
	for i, c := range all { // latest first: the ledger wants effective_from order
		versions[len(all)-1-i] = ledger.PriceVersion{Version: c.Version, EffectiveFrom: c.EffectiveFrom}
	}
	lq := ledger.BatchLineQuery{Batch: st.PeriodID, Partner: st.PartnerID, After: q.After, Limit: q.Limit,
		Start: st.Document.PeriodStart, Versions: versions, Version: q.ContractVersion, Late: q.Late,
		LateFrom: lateFrom, LateTo: lateTo, Kind: "breakage"}
	if q.Kind != LineBreakage {
		ak := accountKinds[q.Kind]
		if ak.account != "partner_issued" && ak.account != "partner_redeemed" && q.Late {
			return []LineTransaction{}, nil
		}
		lq.Kind, lq.Sign = ak.account, int64(ak.sign)
	}
	found, err := ledger.BatchLineTransactions(s.db.WithContext(ctx), lq)
	if err != nil {
		return nil, fmt.Errorf("transactions of statement %d, %s: %w", q.StatementID, q.Kind, err)
	}
	rows := make([]LineTransaction, len(found))
	for i, t := range found {
		rows[i] = LineTransaction(t)
	}
	return rows, nil
}
