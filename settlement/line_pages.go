package settlement

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/coalitionhub/hub/internal/validation"
)

// StatementLineItem is one row of a statement's lines with the transactions
// behind them: a summary line (Line, numbered from 1 in the summary's order)
// and one ledger transaction behind it, or none for a line that has no
// transactions (adjustments, prepaid).
type StatementLineItem struct {
	Line        int              `json:"line"`
	Kind        LineKind         `json:"kind"`
	Description string           `json:"description"`
	Version     int              `json:"contract_version,omitempty"`
	Late        bool             `json:"late,omitempty"`
	LateMonth   string           `json:"late_month,omitempty"`
	LinePoints  int64            `json:"line_points"`
	LineAmount  string           `json:"line_amount"`
	Currency    string           `json:"currency"`
	Transaction *LineTransaction `json:"transaction"`
}

// LinesCursor is where a page of StatementLines continues: the summary
// line and the last transaction id read of it.
type LinesCursor struct {
	Line  int
	After int64
}

// String is the cursor as the API shows it ("line.after").
func (c LinesCursor) String() string { return fmt.Sprintf("%d.%d", c.Line, c.After) }

// ParseLinesCursor parses a cursor String made ("" is the start). Errors:
// *validation.Error naming field.
func ParseLinesCursor(s, field string) (LinesCursor, error) {
	if s == "" {
		return LinesCursor{Line: 1}, nil
	}
	a, b, ok := strings.Cut(s, ".")
	line, err1 := strconv.Atoi(a)
	after, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || line < 1 || after < 0 {
		return LinesCursor{}, validation.New(field, "is not a cursor this API returned")
	}
	return LinesCursor{Line: line, After: after}, nil
}

// StatementLines pages through a statement's summary lines with the
// transactions behind each, limit items from cursor; next is the cursor of
// the following page, "" at the end. Errors: ErrStatementNotFound.
func (s *Service) StatementLines(ctx context.Context, st Statement, cur LinesCursor, limit int) (items []StatementLineItem, next string, err error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	summary := st.Document.Summary()
	items = []StatementLineItem{}
	for i := cur.Line; i <= len(summary); i++ {
		l := summary[i-1]
		base := StatementLineItem{Line: i, Kind: l.Kind, Description: l.Description, Version: l.ContractVersion, Late: l.Late,
			LateMonth: l.LateMonth, LinePoints: l.Points, LineAmount: amount(l.Amount), Currency: l.Amount.Currency}
		after := int64(0)
		if i == cur.Line {
			after = cur.After
		}
		if !l.Traceable {
			items = append(items, base)
		} else {
			txs, err := s.LineTransactions(ctx, LineQuery{StatementID: st.ID, Kind: l.Kind, ContractVersion: l.ContractVersion,
				Late: l.Late, LateMonth: l.LateMonth, After: after, Limit: limit - len(items)})
			if err != nil {
				return nil, "", err
			}
			if len(txs) == 0 && after == 0 {
				items = append(items, base)
			}
			for j := range txs {
				it := base
				it.Transaction = &txs[j]
				items = append(items, it)
			}
			if len(txs) > 0 && len(items) == limit {
				return items, LinesCursor{Line: i, After: txs[len(txs)-1].TransactionID}.String(), nil
			}
		}
		if len(items) == limit && i < len(summary) {
			return items, LinesCursor{Line: i + 1}.String(), nil
		}
	}
	return items, "", nil
}
