package settlement

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
)

// Invoices and credit notes. Approving a statement the partner owes issues
// an invoice from the operator's legal entity to the partner; one the
// operator owes issues a credit note the operator writes on the partner's
// behalf (self-billing). Numbers run without gaps per legal entity and
// calendar year (operator time zone): the counter row is incremented, and so
// locked, inside the approval's transaction, so concurrent approvals queue
// on it and a rolled-back approval gives its number back. Tax is one line
// per document: the statement's net (absolute) × the rate of the partner's
// country, rounded half-even to the minor unit once per document
// ("tax: half-even on the document's net"); a reverse-charge country
// charges none and the document says so.

// InvoiceKind is what a settlement document is.
type InvoiceKind string

// Document kinds.
const (
	KindInvoice    InvoiceKind = "invoice"     // the partner owes the operator
	KindCreditNote InvoiceKind = "credit_note" // the operator owes the partner (self-billing)
)

// Party is a seller or buyer on a document.
type Party struct {
	Name    string `json:"name"`
	Country string `json:"country"`
	VATID   string `json:"vat_id,omitempty"`
	Address string `json:"address,omitempty"`
}

// InvoiceLine is a summary line of the statement on its document.
type InvoiceLine struct {
	Description string      `json:"description"`
	Points      int64       `json:"points"`
	Amount      money.Money `json:"amount"`
}

// TaxLine is the tax of a document.
type TaxLine struct {
	Label         string      `json:"label"`
	Rate          string      `json:"rate"`
	Base          money.Money `json:"base"`
	Amount        money.Money `json:"amount"`
	ReverseCharge bool        `json:"reverse_charge"`
}

// InvoiceDocument is the content of an invoice or credit note as issued:
// what the PDF shows. Seller and Buyer are who sells to whom: on an invoice
// the operator's entity sells to the partner; on a self-billed credit note
// the partner sells (points redeemed at it) to the operator, which issues it.
// Amounts are positive; Lines keep the statement's signs (from the
// partner's side).
type InvoiceDocument struct {
	Number      string        `json:"number"`
	Kind        InvoiceKind   `json:"kind"`
	SelfBilling bool          `json:"self_billing"`
	IssueDate   string        `json:"issue_date"`
	DueDate     string        `json:"due_date"`
	Issuer      Party         `json:"issuer"`
	Seller      Party         `json:"seller"`
	Buyer       Party         `json:"buyer"`
	StatementID int64         `json:"statement_id"`
	Period      string        `json:"period"`
	Lines       []InvoiceLine `json:"lines"`
	Net         money.Money   `json:"net"`
	Tax         TaxLine       `json:"tax"`
	Total       money.Money   `json:"total"`
	Corrects    string        `json:"corrects,omitempty"`
}

// Invoice is an issued document with its number.
type Invoice struct {
	ID          int64           `json:"id"`
	StatementID int64           `json:"statement_id"`
	Kind        InvoiceKind     `json:"kind"`
	Number      string          `json:"number"`
	Total       money.Money     `json:"total"`
	IssueDate   string          `json:"issue_date"`
	DueDate     string          `json:"due_date"`
	Document    InvoiceDocument `json:"document"`
}

// LegalEntity is an operator company that issues documents.
type LegalEntity struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	Country string `json:"country"`
	VATID   string `json:"vat_id" gorm:"column:vat_id"`
	Address string `json:"address"`
}

// PartnerBilling is a partner's billing details.
type PartnerBilling struct {
	PartnerID        int64  `json:"partner_id"`
	LegalEntity      string `json:"legal_entity"`
	LegalName        string `json:"legal_name"`
	Country          string `json:"country"`
	VATID            string `json:"vat_id" gorm:"column:vat_id"`
	Address          string `json:"address"`
	PaymentTermsDays int    `json:"payment_terms_days"`
}

// TaxRate is the tax of documents for partners of Country.
type TaxRate struct {
	Country       string          `json:"country"`
	Rate          decimal.Decimal `json:"rate"`
	ReverseCharge bool            `json:"reverse_charge"`
	Label         string          `json:"label"`
}

var (
	entityCode  = regexp.MustCompile(`^[A-Z0-9]{2,10}$`)
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
)

// SetLegalEntity creates or replaces a legal entity. Errors: *validation.Error.
func (s *Service) SetLegalEntity(ctx context.Context, e LegalEntity, actor string) (LegalEntity, error) {
	var v validation.Error
	v.Check(entityCode.MatchString(e.Code), "code", "must be 2 to 10 capital letters or digits")
	v.Check(len(e.Name) >= 1 && len(e.Name) <= 200, "name", "is required (at most 200 characters)")
	v.Check(countryCode.MatchString(e.Country), "country", "must be an ISO 3166-1 alpha-2 code")
	v.Check(len(e.VATID) <= 40, "vat_id", "must be at most 40 characters")
	v.Check(len(e.Address) <= 500, "address", "must be at most 500 characters")
	if err := v.Err(); err != nil {
		return LegalEntity{}, err
	}
	return e, s.db.WithContext(ctx).Exec(`INSERT INTO settlement_legal_entities (code, name, country, vat_id, address, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, country = EXCLUDED.country,
		vat_id = EXCLUDED.vat_id, address = EXCLUDED.address, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		e.Code, e.Name, e.Country, e.VATID, e.Address, s.clock(), actor).Error
}

// LegalEntities lists the operator's legal entities.
func (s *Service) LegalEntities(ctx context.Context) ([]LegalEntity, error) {
	var out []LegalEntity
	err := s.db.WithContext(ctx).Raw(`SELECT code, name, country, vat_id AS vat_id, address FROM settlement_legal_entities ORDER BY code`).Scan(&out).Error
	return out, err
}

// SetPartnerBilling creates or replaces a partner's billing details. Errors:
// *validation.Error (an unknown partner or legal entity names its field).
func (s *Service) SetPartnerBilling(ctx context.Context, b PartnerBilling, actor string) (PartnerBilling, error) {
	var v validation.Error
	v.Check(entityCode.MatchString(b.LegalEntity), "legal_entity", "must be the code of a legal entity")
	v.Check(len(b.LegalName) >= 1 && len(b.LegalName) <= 200, "legal_name", "is required (at most 200 characters)")
	v.Check(countryCode.MatchString(b.Country), "country", "must be an ISO 3166-1 alpha-2 code")
	v.Check(len(b.VATID) <= 40, "vat_id", "must be at most 40 characters")
	v.Check(len(b.Address) <= 500, "address", "must be at most 500 characters")
	v.Check(b.PaymentTermsDays >= 0 && b.PaymentTermsDays <= 365, "payment_terms_days", "must be 0 to 365")
	if err := v.Err(); err != nil {
		return PartnerBilling{}, err
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO settlement_partner_billing (partner_id, legal_entity, legal_name, country, vat_id,
		address, payment_terms_days, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (partner_id) DO UPDATE SET legal_entity = EXCLUDED.legal_entity, legal_name = EXCLUDED.legal_name,
		country = EXCLUDED.country, vat_id = EXCLUDED.vat_id, address = EXCLUDED.address,
		payment_terms_days = EXCLUDED.payment_terms_days, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		b.PartnerID, b.LegalEntity, b.LegalName, b.Country, b.VATID, b.Address, b.PaymentTermsDays, s.clock(), actor).Error
	if database.Code(err) == database.ForeignKeyViolation {
		return PartnerBilling{}, validation.New("legal_entity", "must be the code of a legal entity (and the partner must exist)")
	}
	return b, err
}

// PartnerBilling returns a partner's billing details (found false when none).
func (s *Service) PartnerBilling(ctx context.Context, partnerID int64) (PartnerBilling, bool, error) {
	return selectBilling(s.db.WithContext(ctx), partnerID)
}

func selectBilling(tx *gorm.DB, partnerID int64) (PartnerBilling, bool, error) {
	var rows []PartnerBilling
	err := tx.Raw(`SELECT partner_id, legal_entity, legal_name, country, vat_id AS vat_id, address, payment_terms_days
		FROM settlement_partner_billing WHERE partner_id = ?`, partnerID).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return PartnerBilling{}, false, err
	}
	return rows[0], true, nil
}

// SetTaxRate creates or replaces the tax of a country. A reverse-charge
// country has rate 0. Errors: *validation.Error.
func (s *Service) SetTaxRate(ctx context.Context, r TaxRate, actor string) (TaxRate, error) {
	var v validation.Error
	v.Check(countryCode.MatchString(r.Country), "country", "must be an ISO 3166-1 alpha-2 code")
	v.Check(!r.Rate.IsNegative() && r.Rate.LessThan(decimal.NewFromInt(1)) && r.Rate.Equal(r.Rate.Truncate(6)), "rate",
		"must be a fraction from 0 to below 1 with at most 6 decimals (0.19 is 19 %)")
	v.Check(!r.ReverseCharge || r.Rate.IsZero(), "rate", "must be 0 under reverse charge")
	v.Check(len(r.Label) >= 1 && len(r.Label) <= 100, "label", "is required (at most 100 characters)")
	if err := v.Err(); err != nil {
		return TaxRate{}, err
	}
	return r, s.db.WithContext(ctx).Exec(`INSERT INTO settlement_tax_rates (country, rate, reverse_charge, label, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (country) DO UPDATE SET rate = EXCLUDED.rate, reverse_charge = EXCLUDED.reverse_charge,
		label = EXCLUDED.label, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		r.Country, r.Rate, r.ReverseCharge, r.Label, s.clock(), actor).Error
}

// TaxRates lists the tax rates by country.
func (s *Service) TaxRates(ctx context.Context) ([]TaxRate, error) {
	var out []TaxRate
	err := s.db.WithContext(ctx).Raw(`SELECT country, rate, reverse_charge, label FROM settlement_tax_rates ORDER BY country`).Scan(&out).Error
	return out, err
}

// Tax computes the tax line of a document of net base (positive minor
// units): base × rate rounded half-even to the minor unit; none under
// reverse charge.
func Tax(base money.Money, r TaxRate) TaxLine {
	t := TaxLine{Label: r.Label, Rate: r.Rate.String(), Base: base, Amount: money.Money{Minor: 0, Currency: base.Currency},
		ReverseCharge: r.ReverseCharge}
	if !r.ReverseCharge {
		amount := decimal.New(base.Minor, -money.Exponent(base.Currency)).Mul(r.Rate)
		t.Amount.Minor = money.MinorHalfEven(amount, base.Currency) // rounding: tax, half-even on the document's net
	}
	return t
}

// issue numbers and stores the document of st at its approval, in the
// approval's transaction tx. A statement with a zero net has none. Errors:
// ErrBillingDetails.
func (s *Service) issue(tx *gorm.DB, st Statement, actor string, now time.Time) (*Invoice, error) {
	if st.Net.Minor == 0 {
		return nil, nil
	}
	b, found, err := selectBilling(tx, st.PartnerID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("partner %d has no billing details (legal name, country, payment terms): %w", st.PartnerID, ErrBillingDetails)
	}
	var entities []LegalEntity
	if err := tx.Raw(`SELECT code, name, country, vat_id AS vat_id, address FROM settlement_legal_entities WHERE code = ?`, b.LegalEntity).
		Scan(&entities).Error; err != nil {
		return nil, err
	}
	if len(entities) == 0 { // the foreign key keeps it: cannot happen
		return nil, fmt.Errorf("legal entity %s: %w", b.LegalEntity, ErrBillingDetails)
	}
	var rates []TaxRate
	if err := tx.Raw(`SELECT country, rate, reverse_charge, label FROM settlement_tax_rates WHERE country = ?`, b.Country).
		Scan(&rates).Error; err != nil {
		return nil, err
	}
	if len(rates) == 0 {
		return nil, fmt.Errorf("no tax rate is configured for %s, the country of partner %d: %w", b.Country, st.PartnerID, ErrBillingDetails)
	}
	e := entities[0]
	issued := now.In(s.loc)
	year := issued.Year()
	var seq int64
	// The counter row stays locked until the approval commits: the next
	// approval of the entity and year waits here, and a rollback returns
	// the number.
	if err := tx.Raw(`INSERT INTO settlement_invoice_counters (legal_entity, year, last_no) VALUES (?, ?, 1)
		ON CONFLICT (legal_entity, year) DO UPDATE SET last_no = settlement_invoice_counters.last_no + 1
		RETURNING last_no`, e.Code, year).Scan(&seq).Error; err != nil {
		return nil, fmt.Errorf("number the document of statement %d: %w", st.ID, err)
	}
	operator := Party{Name: e.Name, Country: e.Country, VATID: e.VATID, Address: e.Address}
	partner := Party{Name: b.LegalName, Country: b.Country, VATID: b.VATID, Address: b.Address}
	net := money.Money{Minor: abs(st.Net.Minor), Currency: st.Net.Currency}
	d := InvoiceDocument{Number: fmt.Sprintf("%s-%d-%06d", e.Code, year, seq), Kind: KindInvoice, Issuer: operator,
		Seller: operator, Buyer: partner, StatementID: st.ID, Period: st.Period, Net: net, Tax: Tax(net, rates[0]),
		IssueDate: issued.Format(time.DateOnly), DueDate: issued.AddDate(0, 0, b.PaymentTermsDays).Format(time.DateOnly),
		Lines: []InvoiceLine{}}
	if st.Net.Minor > 0 {
		d.Kind, d.SelfBilling, d.Seller, d.Buyer = KindCreditNote, true, partner, operator
	}
	d.Total = money.Money{Minor: d.Net.Minor + d.Tax.Amount.Minor, Currency: net.Currency}
	for _, l := range st.Document.Summary() {
		if !l.Informational {
			d.Lines = append(d.Lines, InvoiceLine{Description: l.Description, Points: l.Points, Amount: l.Amount})
		}
	}
	raw, _ := canonical(d)
	var id int64
	if err := tx.Raw(`INSERT INTO settlement_invoices (statement_id, kind, legal_entity, year, seq, number, currency, net_minor,
		tax_minor, total_minor, issue_date, due_date, document, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::date, ?::date, ?::text::json, ?, ?) RETURNING id`,
		st.ID, string(d.Kind), e.Code, year, seq, d.Number, net.Currency, d.Net.Minor, d.Tax.Amount.Minor, d.Total.Minor,
		d.IssueDate, d.DueDate, string(raw), now, actor).Scan(&id).Error; err != nil {
		return nil, fmt.Errorf("store the document of statement %d: %w", st.ID, err)
	}
	return &Invoice{ID: id, StatementID: st.ID, Kind: d.Kind, Number: d.Number, Total: d.Total, IssueDate: d.IssueDate,
		DueDate: d.DueDate, Document: d}, nil
}

// StatementInvoice returns the document issued for a statement at its
// approval. Errors: ErrInvoiceNotFound (not approved yet, or a zero net).
func (s *Service) StatementInvoice(ctx context.Context, statementID int64) (Invoice, error) {
	var rows []struct {
		ID       int64
		Document string
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT id, document::text AS document FROM settlement_invoices
		WHERE statement_id = ? AND corrects_invoice_id IS NULL`, statementID).Scan(&rows).Error; err != nil {
		return Invoice{}, err
	}
	if len(rows) == 0 {
		return Invoice{}, fmt.Errorf("document of statement %d: %w", statementID, ErrInvoiceNotFound)
	}
	var d InvoiceDocument
	if err := json.Unmarshal([]byte(rows[0].Document), &d); err != nil {
		return Invoice{}, err
	}
	return Invoice{ID: rows[0].ID, StatementID: statementID, Kind: d.Kind, Number: d.Number, Total: d.Total,
		IssueDate: d.IssueDate, DueDate: d.DueDate, Document: d}, nil
}
