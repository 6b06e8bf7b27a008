package settlement

import (
	"bytes"
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

// WritePDF renders the statement as a plain PDF 1.4 document (Courier,
// A4, as many pages as the lines need). Hand-written: a statement is text.
func (st Statement) WritePDF(w io.Writer) error {
	d := st.Document
	text := []string{
		fmt.Sprintf("Settlement statement %d - period %s (%s)", st.ID, d.Period, d.TimeZone),
		fmt.Sprintf("Partner %d - currency %s - status %s", d.PartnerID, d.Currency, st.Status),
		"SHA-256 " + st.SHA256,
		"",
	}
	for _, l := range d.Lines {
		desc := l.Description
		if len(desc) > 70 {
			desc = desc[:70]
		}
		flag := ""
		if l.Informational {
			flag = " (info)"
		}
		text = append(text, fmt.Sprintf("%3d  %-70s %10d pts %14s%s", l.No, desc, l.Points, amount(l.Amount), flag))
	}
	text = append(text, "", fmt.Sprintf("Charges %s   Credits %s   Net %s %s (%s)", amount(d.Charges), amount(d.Credits),
		amount(d.Net), d.Currency, strings.ReplaceAll(d.Direction, "_", " ")))
	const perPage = 60
	var pages [][]string
	for i := 0; i < len(text); i += perPage {
		pages = append(pages, text[i:min(i+perPage, len(text))])
	}
	var buf bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, buf.Len())
		fmt.Fprintf(&buf, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	buf.WriteString("%PDF-1.4\n")
	// 1 catalog, 2 pages, 3 font, then (page, content) per page.
	kids := make([]string, len(pages))
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>")
	for i, lines := range pages {
		var c strings.Builder
		c.WriteString("BT /F1 7 Tf 9 TL 30 810 Td\n")
		for _, l := range lines {
			c.WriteString("(" + pdfEscape(l) + ") Tj T*\n")
		}
		c.WriteString("ET")
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", c.Len(), c.String()))
	}
	xref := buf.Len()
	fmt.Fprintf(&buf, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&buf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&buf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	_, err := w.Write(buf.Bytes())
	return err
}

// pdfEscape makes s a PDF literal string body: ASCII only, with \, ( and ) escaped.
func pdfEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' || r == '(' || r == ')':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 32 || r > 126:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
