package settlement

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/shopspring/decimal"
)

// PDF renderings of statements and of invoices and credit notes, made with
// github.com/go-pdf/fpdf (A4, core Helvetica, text in Windows-1252). The
// creation date is the document's own date, so the same document renders
// to the same bytes.

// newPDF starts an A4 document with a page footer and a fixed creation date.
func newPDF(title string, created time.Time) (*fpdf.Fpdf, func(string) string) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle(title, true)
	pdf.SetProducer("coalition hub", false)
	pdf.SetCreationDate(created)
	pdf.SetModificationDate(created)
	pdf.SetCatalogSort(true)
	pdf.SetAutoPageBreak(true, 15)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 7)
		pdf.CellFormat(0, 5, title+" - page "+strconv.Itoa(pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	return pdf, pdf.UnicodeTranslatorFromDescriptor("")
}

// WritePDF renders the statement: its header, every line and the net.
func (st Statement) WritePDF(w io.Writer) error {
	d := st.Document
	pdf, tr := newPDF(fmt.Sprintf("Settlement statement %d", st.ID), st.CreatedAt)
	pdf.SetFont("Helvetica", "B", 14)
	pdf.CellFormat(0, 8, tr(fmt.Sprintf("Settlement statement %d - period %s", st.ID, d.Period)), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	pdf.CellFormat(0, 5, tr(fmt.Sprintf("Partner %d - currency %s - status %s - time zone %s", d.PartnerID, d.Currency, st.Status, d.TimeZone)), "", 1, "L", false, 0, "")
	pdf.CellFormat(0, 5, "SHA-256 "+st.SHA256, "", 1, "L", false, 0, "")
	pdf.Ln(3)
	widths := []float64{10, 105, 25, 40}
	pdf.SetFont("Helvetica", "B", 8)
	for i, h := range []string{"No", "Description", "Points", "Amount"} {
		align := "L"
		if i >= 2 {
			align = "R"
		}
		pdf.CellFormat(widths[i], 6, h, "B", 0, align, false, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont("Helvetica", "", 8)
	for _, l := range d.Lines {
		desc := l.Description
		if l.Informational {
			desc += " (informational)"
		}
		if len(desc) > 80 {
			desc = desc[:80]
		}
		pdf.CellFormat(widths[0], 5, strconv.Itoa(l.No), "", 0, "L", false, 0, "")
		pdf.CellFormat(widths[1], 5, tr(desc), "", 0, "L", false, 0, "")
		pdf.CellFormat(widths[2], 5, strconv.FormatInt(l.Points, 10), "", 0, "R", false, 0, "")
		pdf.CellFormat(widths[3], 5, amount(l.Amount)+" "+l.Amount.Currency, "", 1, "R", false, 0, "")
	}
	if len(d.Lines) == 0 {
		pdf.CellFormat(0, 5, "No activity in this period.", "", 1, "L", false, 0, "")
	}
	pdf.Ln(3)
	pdf.SetFont("Helvetica", "B", 9)
	pdf.CellFormat(0, 6, tr(fmt.Sprintf("Charges %s   Credits %s   Net %s %s (%s)", amount(d.Charges), amount(d.Credits),
		amount(d.Net), d.Currency, strings.ReplaceAll(d.Direction, "_", " "))), "T", 1, "L", false, 0, "")
	return pdf.Output(w)
}

// WritePDF renders the invoice or credit note: number, dates, the parties,
// the statement's summary lines, the tax line and the total.
func (inv Invoice) WritePDF(w io.Writer) error {
	d := inv.Document
	title := map[InvoiceKind]string{KindInvoice: "Invoice", KindCreditNote: "Credit note"}[d.Kind]
	if d.SelfBilling {
		title += " (self-billing)"
	}
	issued, _ := time.Parse(time.DateOnly, d.IssueDate)
	pdf, tr := newPDF(title+" "+d.Number, issued)
	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 9, tr(title), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	for _, kv := range [][2]string{{"Number", d.Number}, {"Issue date", d.IssueDate}, {"Due date", d.DueDate},
		{"Statement", fmt.Sprintf("%d, period %s", d.StatementID, d.Period)}} {
		pdf.CellFormat(30, 5, kv[0], "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 5, tr(kv[1]), "", 1, "L", false, 0, "")
	}
	if d.Corrects != "" {
		pdf.CellFormat(30, 5, "Corrects", "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 5, tr(d.Corrects), "", 1, "L", false, 0, "")
	}
	if d.SelfBilling {
		pdf.CellFormat(0, 5, tr("Issued by "+d.Issuer.Name+" on behalf of the supplier (self-billing)."), "", 1, "L", false, 0, "")
	}
	pdf.Ln(3)
	y := pdf.GetY()
	party := func(x float64, label string, p Party) {
		pdf.SetXY(x, y)
		pdf.SetFont("Helvetica", "B", 9)
		pdf.CellFormat(90, 5, label, "", 2, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 9)
		text := p.Name + "\n" + p.Address
		if p.VATID != "" {
			text += "\nVAT ID " + p.VATID
		}
		text += "\nCountry " + p.Country
		pdf.MultiCell(90, 4.5, tr(text), "", "L", false)
	}
	party(10, "Seller", d.Seller)
	end := pdf.GetY()
	party(110, "Buyer", d.Buyer)
	pdf.SetY(max(end, pdf.GetY()) + 4)
	pdf.SetFont("Helvetica", "B", 8)
	pdf.CellFormat(120, 6, "Description", "B", 0, "L", false, 0, "")
	pdf.CellFormat(25, 6, "Points", "B", 0, "R", false, 0, "")
	pdf.CellFormat(45, 6, "Amount", "B", 1, "R", false, 0, "")
	pdf.SetFont("Helvetica", "", 8)
	for _, l := range d.Lines {
		desc := l.Description
		if len(desc) > 85 {
			desc = desc[:85]
		}
		pdf.CellFormat(120, 5, tr(desc), "", 0, "L", false, 0, "")
		pdf.CellFormat(25, 5, strconv.FormatInt(l.Points, 10), "", 0, "R", false, 0, "")
		pdf.CellFormat(45, 5, amount(l.Amount)+" "+l.Amount.Currency, "", 1, "R", false, 0, "")
	}
	pdf.Ln(2)
	total := func(label, value string, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		pdf.SetFont("Helvetica", style, 9)
		pdf.CellFormat(145, 6, tr(label), "", 0, "R", false, 0, "")
		pdf.CellFormat(45, 6, value, "", 1, "R", false, 0, "")
	}
	total("Net amount", amount(d.Net)+" "+d.Net.Currency, false)
	taxLabel := fmt.Sprintf("%s %s%% on %s", d.Tax.Label, percent(d.Tax.Rate), amount(d.Tax.Base))
	if d.Tax.ReverseCharge {
		taxLabel = d.Tax.Label + " - reverse charge: tax to be accounted for by the recipient"
	}
	total(taxLabel, amount(d.Tax.Amount)+" "+d.Tax.Amount.Currency, false)
	total("Total", amount(d.Total)+" "+d.Total.Currency, true)
	return pdf.Output(w)
}

// percent shows a rate fraction ("0.19") as a percentage ("19").
func percent(rate string) string {
	if r, err := decimal.NewFromString(rate); err == nil {
		return r.Shift(2).String()
	}
	return rate
}
