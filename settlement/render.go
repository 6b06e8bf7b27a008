package settlement

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/money"
)

// WriteCSV renders the statement as CSV: a header, one row per line, and a
// final net row. Amounts are decimal strings in the statement currency.
func (st Statement) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	d := st.Document
	_ = cw.Write([]string{"line", "kind", "description", "contract_version", "unit_price", "factor", "points",
		"amount", "currency", "informational", "late", "transaction_id", "occurred_at", "corrects"})
	for _, l := range d.Lines {
		occurred, corrects, tx := "", "", ""
		if l.OccurredAt != nil {
			occurred = l.OccurredAt.UTC().Format(time.RFC3339)
		}
		if l.Corrects != nil {
			corrects = fmt.Sprintf("%d/%d", l.Corrects.StatementID, l.Corrects.LineNo)
		}
		if l.TransactionID != 0 {
			tx = strconv.FormatInt(l.TransactionID, 10)
		}
		version := ""
		if l.ContractVersion != 0 {
			version = strconv.Itoa(l.ContractVersion)
		}
		_ = cw.Write([]string{strconv.Itoa(l.No), string(l.Kind), l.Description, version, l.UnitPrice, l.Factor,
			strconv.FormatInt(l.Points, 10), amount(l.Amount), l.Amount.Currency, strconv.FormatBool(l.Informational),
			strconv.FormatBool(l.Late), tx, occurred, corrects})
	}
	_ = cw.Write([]string{"", "net", d.Direction, "", "", "", "", amount(d.Net), d.Net.Currency, "", "", "", "", ""})
	cw.Flush()
	return cw.Error()
}

func amount(m money.Money) string {
	s := money.Format(m.Minor, m.Currency)
	return strings.TrimSuffix(s, " "+m.Currency)
}
