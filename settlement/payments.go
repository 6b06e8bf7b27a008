package settlement

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

// Payments. An approved statement with a document is due its document's
// total (net plus tax): from the partner on an invoice, to the partner on a
// credit note. Payments take amounts off that open balance (a negative one
// refunds an over-payment); a netting offsets an open invoice against an
// open credit note of the same partner and currency, and the one net
// payment settles the difference. A sent statement whose open balance is
// zero is paid, in the transaction that made it zero; one that reaches zero
// before it is sent is paid when sent. A statement with a zero net has
// nothing to pay.

// RequestKey makes a money-moving request idempotent: Key is unique per
// Scope (the staff account), Hash identifies the request.
type RequestKey = AdjustmentKey

// Payment is money received or paid against a statement, or the offset of
// a netting (Kind "netting").
type Payment struct {
	ID          int64       `json:"id"`
	StatementID int64       `json:"statement_id"`
	Kind        string      `json:"kind"`
	Amount      money.Money `json:"amount"`
	ValueDate   string      `json:"value_date"`
	Reference   string      `json:"reference"`
	NettingID   int64       `json:"netting_id,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	CreatedBy   string      `json:"created_by"`
}

// Balance is what is open on a statement. Due is its document's total, Paid
// the payments and offsets against it, Open = Due − Paid (negative: paid
// too much). Direction says who owes: "from_partner" (a receivable of the
// operator) or "to_partner" (a payable). DaysPastDue counts from the due
// date (negative before it); Bucket is the ageing bucket of the open amount.
type Balance struct {
	StatementID int64           `json:"statement_id"`
	PartnerID   int64           `json:"partner_id"`
	Period      string          `json:"period"`
	Status      StatementStatus `json:"status"`
	Direction   string          `json:"direction"`
	Number      string          `json:"number,omitempty"`
	DueDate     string          `json:"due_date,omitempty"`
	Due         money.Money     `json:"due"`
	Paid        money.Money     `json:"paid"`
	Open        money.Money     `json:"open"`
	DaysPastDue int             `json:"days_past_due"`
	Bucket      string          `json:"bucket"`
}

// Ageing buckets: days past the due date of the open amount. Amounts not
// yet due count in the first bucket.
const (
	Bucket0to30  = "0-30"
	Bucket31to60 = "31-60"
	Bucket61to90 = "61-90"
	BucketOver90 = "90+"
)

// Buckets are the ageing buckets in order.
var Buckets = []string{Bucket0to30, Bucket31to60, Bucket61to90, BucketOver90}

// bucket is the ageing bucket of an amount days past due.
func bucket(days int) string {
	switch {
	case days <= 30:
		return Bucket0to30
	case days <= 60:
		return Bucket31to60
	case days <= 90:
		return Bucket61to90
	}
	return BucketOver90
}

// PaymentInput records a payment against a statement.
type PaymentInput struct {
	StatementID int64
	Amount      money.Money
	ValueDate   string // YYYY-MM-DD
	Reference   string
	Actor       string
	Key         RequestKey
}

// Recorded is the answer to a payment: the payment and the statement's
// balance after it. Replayed: the payment was recorded earlier under the
// same key.
type Recorded struct {
	Payment  Payment `json:"payment"`
	Balance  Balance `json:"balance"`
	Replayed bool    `json:"-"`
}

const paymentColumns = `id, statement_id, kind, amount_minor, currency, to_char(value_date, 'YYYY-MM-DD') AS value_date, reference,
	coalesce(netting_id, 0) AS netting_id, created_at, created_by`

type paymentRow struct {
	ID          int64
	StatementID int64
	Kind        string
	AmountMinor int64
	Currency    string
	ValueDate   string
	Reference   string
	NettingID   int64
	CreatedAt   time.Time
	CreatedBy   string
}

func (r paymentRow) payment() Payment {
	return Payment{ID: r.ID, StatementID: r.StatementID, Kind: r.Kind, Amount: money.Money{Minor: r.AmountMinor, Currency: r.Currency},
		ValueDate: r.ValueDate, Reference: r.Reference, NettingID: r.NettingID, CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy}
}

// Payments lists the payments and offsets of a statement, oldest first.
// Errors: ErrStatementNotFound.
func (s *Service) Payments(ctx context.Context, statementID int64) ([]Payment, error) {
	db := s.db.WithContext(ctx)
	if _, err := getStatement(db, statementID, false); err != nil {
		return nil, err
	}
	var rows []paymentRow
	if err := db.Raw(`SELECT `+paymentColumns+` FROM settlement_payments WHERE statement_id = ? ORDER BY id`, statementID).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Payment, len(rows))
	for i, r := range rows {
		out[i] = r.payment()
	}
	return out, nil
}

// lockKey takes a transaction-scoped lock on a request key, so that two
// requests with one key run one after the other.
func lockKey(tx *gorm.DB, k RequestKey) error {
	return tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(? || chr(10) || ?, 0))`, k.Scope, k.Key).Error
}

func validDate(v *validation.Error, field, s string) {
	_, err := time.Parse(time.DateOnly, s)
	v.Check(err == nil, field, "must be a date (YYYY-MM-DD)")
}

// RecordPayment records a payment against an approved or sent statement
// that has a document. The same key with the same request answers the
// first payment (Replayed); with another request it is
// ledger.ErrIdempotencyMismatch. Errors: *validation.Error,
// ErrStatementNotFound, ErrStatementState (not approved or sent, or
// nothing to pay), ledger.ErrIdempotencyMismatch.
func (s *Service) RecordPayment(ctx context.Context, in PaymentInput) (Recorded, error) {
	var v validation.Error
	v.Check(in.Amount.Minor != 0, "amount.minor", "must not be zero (negative refunds an over-payment)")
	v.Check(currencyOK(in.Amount.Currency), "amount.currency", "must be an ISO 4217 code")
	validDate(&v, "value_date", in.ValueDate)
	v.Check(len(in.Reference) >= 1 && len(in.Reference) <= 200, "reference", "is required (at most 200 characters)")
	if err := v.Err(); err != nil {
		return Recorded{}, err
	}
	var out Recorded
	now := s.clock()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockKey(tx, in.Key); err != nil {
			return err
		}
		var prior []struct {
			ID          int64
			RequestHash []byte
		}
		if err := tx.Raw(`SELECT id, request_hash FROM settlement_payments WHERE idempotency_scope = ? AND idempotency_key = ?`,
			in.Key.Scope, in.Key.Key).Scan(&prior).Error; err != nil {
			return err
		}
		if len(prior) > 0 {
			if !bytes.Equal(prior[0].RequestHash, in.Key.Hash) {
				return fmt.Errorf("payment key %q: %w", in.Key.Key, ledger.ErrIdempotencyMismatch)
			}
			p, err := selectPayment(tx, prior[0].ID)
			if err != nil {
				return err
			}
			out.Payment, out.Replayed = p, true
			out.Balance, err = s.balance(tx, p.StatementID)
			return err
		}
		st, err := getStatement(tx, in.StatementID, true)
		if err != nil {
			return err
		}
		if st.Status != StatementApproved && st.Status != StatementSent {
			return fmt.Errorf("pay statement %d: it is %s, not approved or sent: %w", st.ID, st.Status, ErrStatementState)
		}
		bal, err := s.balance(tx, st.ID)
		if err != nil {
			return err
		}
		if bal.Number == "" {
			return fmt.Errorf("pay statement %d: its net is zero, nothing is due: %w", st.ID, ErrStatementState)
		}
		if in.Amount.Currency != st.Net.Currency {
			return validation.New("amount.currency", "must be the statement's currency, "+st.Net.Currency)
		}
		var row paymentRow
		if err := tx.Raw(`INSERT INTO settlement_payments (statement_id, kind, amount_minor, currency, value_date, reference,
			created_at, created_by, idempotency_scope, idempotency_key, request_hash) VALUES (?, 'payment', ?, ?, ?::date, ?, ?, ?, ?, ?, ?)
			RETURNING `+paymentColumns, st.ID, in.Amount.Minor, in.Amount.Currency, in.ValueDate, in.Reference, now, in.Actor,
			in.Key.Scope, in.Key.Key, in.Key.Hash).Scan(&row).Error; err != nil {
			return err
		}
		out.Payment = row.payment()
		if err := settleIfZero(tx, st.ID, now, in.Actor); err != nil {
			return err
		}
		out.Balance, err = s.balance(tx, st.ID)
		return err
	})
	return out, err
}

func selectPayment(tx *gorm.DB, id int64) (Payment, error) {
	var rows []paymentRow
	if err := tx.Raw(`SELECT `+paymentColumns+` FROM settlement_payments WHERE id = ?`, id).Scan(&rows).Error; err != nil || len(rows) == 0 {
		return Payment{}, fmt.Errorf("payment %d: %d rows: %v", id, len(rows), err)
	}
	return rows[0].payment(), nil
}

// settleIfZero marks a sent statement paid when its open balance is zero.
func settleIfZero(tx *gorm.DB, id int64, now time.Time, actor string) error {
	var open struct {
		Status string
		Due    int64
		Paid   int64
	}
	if err := tx.Raw(`SELECT s.status,
		coalesce((SELECT i.total_minor FROM settlement_invoices i WHERE i.statement_id = s.id AND i.corrects_invoice_id IS NULL), 0) AS due,
		coalesce((SELECT sum(p.amount_minor) FROM settlement_payments p WHERE p.statement_id = s.id), 0)::bigint AS paid
		FROM settlement_statements s WHERE s.id = ?`, id).Scan(&open).Error; err != nil {
		return err
	}
	if open.Status != string(StatementSent) || open.Due != open.Paid {
		return nil
	}
	if err := tx.Exec(`UPDATE settlement_statements SET status = 'paid', paid_at = ? WHERE id = ? AND status = 'sent'`, now, id).Error; err != nil {
		return err
	}
	return recordTransition(tx, id, "paid", StatementSent, StatementPaid, actor, now, "open balance zero")
}

// balanceRow is a statement's document total and what was paid on it.
type balanceRow struct {
	StatementID int64
	PartnerID   int64
	Period      string
	Status      string
	Currency    string
	NetMinor    int64
	Number      *string
	DueDate     *string
	TotalMinor  int64
	PaidMinor   int64
}

const balanceSelect = `SELECT s.id AS statement_id, s.partner_id, to_char(p.month, 'YYYY-MM') AS period, s.status, s.currency, s.net_minor,
	i.number, to_char(i.due_date, 'YYYY-MM-DD') AS due_date, coalesce(i.total_minor, 0) AS total_minor,
	coalesce((SELECT sum(x.amount_minor) FROM settlement_payments x WHERE x.statement_id = s.id), 0)::bigint AS paid_minor
	FROM settlement_statements s JOIN settlement_periods p ON p.id = s.period_id
	LEFT JOIN settlement_invoices i ON i.statement_id = s.id AND i.corrects_invoice_id IS NULL`

func (r balanceRow) balance(today time.Time) Balance {
	b := Balance{StatementID: r.StatementID, PartnerID: r.PartnerID, Period: r.Period, Status: StatementStatus(r.Status),
		Due: money.Money{Minor: r.TotalMinor, Currency: r.Currency}, Paid: money.Money{Minor: r.PaidMinor, Currency: r.Currency},
		Open: money.Money{Minor: r.TotalMinor - r.PaidMinor, Currency: r.Currency}, Direction: "none"}
	switch {
	case r.NetMinor < 0:
		b.Direction = "from_partner"
	case r.NetMinor > 0:
		b.Direction = "to_partner"
	}
	if r.Number != nil {
		b.Number = *r.Number
	}
	if r.DueDate != nil {
		b.DueDate = *r.DueDate
		due, _ := time.Parse(time.DateOnly, *r.DueDate)
		day := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
		b.DaysPastDue = int(day.Sub(due).Hours() / 24)
	}
	b.Bucket = bucket(b.DaysPastDue)
	return b
}

// today is the operator's calendar date, as a UTC midnight.
func (s *Service) today() time.Time {
	t := s.clock().In(s.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func (s *Service) balance(tx *gorm.DB, id int64) (Balance, error) {
	var rows []balanceRow
	if err := tx.Raw(balanceSelect+` WHERE s.id = ?`, id).Scan(&rows).Error; err != nil {
		return Balance{}, err
	}
	if len(rows) == 0 {
		return Balance{}, fmt.Errorf("statement %d: %w", id, ErrStatementNotFound)
	}
	return rows[0].balance(s.today()), nil
}

// StatementBalance returns what is open on a statement. Errors:
// ErrStatementNotFound.
func (s *Service) StatementBalance(ctx context.Context, id int64) (Balance, error) {
	return s.balance(s.db.WithContext(ctx), id)
}

// OpenBalances lists the statements with an open balance (approved or sent,
// open not zero), of one partner or (0) all, oldest due first.
func (s *Service) OpenBalances(ctx context.Context, partnerID int64) ([]Balance, error) {
	where, args := ` WHERE s.status IN ('approved', 'sent') AND i.id IS NOT NULL`, []any{}
	if partnerID != 0 {
		where += ` AND s.partner_id = ?`
		args = append(args, partnerID)
	}
	var rows []balanceRow
	if err := s.db.WithContext(ctx).Raw(balanceSelect+where+` ORDER BY i.due_date, s.id`, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	today := s.today()
	out := []Balance{}
	for _, r := range rows {
		if b := r.balance(today); b.Open.Minor != 0 {
			out = append(out, b)
		}
	}
	return out, nil
}

// Ageing is an open amount split by ageing bucket (Buckets, in order).
type Ageing struct {
	Total   money.Money   `json:"total"`
	Buckets []money.Money `json:"buckets"`
}

func newAgeing(cur string) Ageing {
	a := Ageing{Total: money.Money{Minor: 0, Currency: cur}}
	for range Buckets {
		a.Buckets = append(a.Buckets, money.Money{Minor: 0, Currency: cur})
	}
	return a
}

func (a *Ageing) add(b Balance) {
	a.Total.Minor += b.Open.Minor
	for i, name := range Buckets {
		if name == b.Bucket {
			a.Buckets[i].Minor += b.Open.Minor
		}
	}
}

// PartnerBalance is what is open with a partner in one currency: what it
// owes the operator (Receivable) and what the operator owes it (Payable),
// each aged.
type PartnerBalance struct {
	PartnerID  int64  `json:"partner_id"`
	Currency   string `json:"currency"`
	Receivable Ageing `json:"receivable"`
	Payable    Ageing `json:"payable"`
	Statements int    `json:"statements"`
}

// PartnerBalances adds up the open balances per partner and currency, with
// ageing from each document's due date.
func (s *Service) PartnerBalances(ctx context.Context, partnerID int64) ([]PartnerBalance, error) {
	open, err := s.OpenBalances(ctx, partnerID)
	if err != nil {
		return nil, err
	}
	type key struct {
		partner int64
		cur     string
	}
	sums := map[key]*PartnerBalance{}
	for _, b := range open {
		k := key{b.PartnerID, b.Open.Currency}
		pb := sums[k]
		if pb == nil {
			pb = &PartnerBalance{PartnerID: k.partner, Currency: k.cur, Receivable: newAgeing(k.cur), Payable: newAgeing(k.cur)}
			sums[k] = pb
		}
		pb.Statements++
		if b.Direction == "from_partner" {
			pb.Receivable.add(b)
		} else {
			pb.Payable.add(b)
		}
	}
	out := make([]PartnerBalance, 0, len(sums))
	for _, pb := range sums {
		out = append(out, *pb)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].PartnerID < out[j].PartnerID || (out[i].PartnerID == out[j].PartnerID && out[i].Currency < out[j].Currency)
	})
	return out, nil
}

// NettingInput offsets two statements of one partner: one it owes (an
// invoice) and one the operator owes (a credit note). NetPayment is the
// payment of the difference of their open balances, required unless they
// are equal; it is recorded against the larger one.
type NettingInput struct {
	StatementIDs [2]int64
	ValueDate    string
	NetPayment   *NetPayment
	Actor        string
	Key          RequestKey
}

// NetPayment is the money that moved for a netting's difference.
type NetPayment struct {
	Amount    money.Money
	Reference string
}

// Netting is a recorded netting: the amount offset on both statements, the
// net payment, and the balances after.
type Netting struct {
	ID         int64       `json:"id"`
	PartnerID  int64       `json:"partner_id"`
	Offset     money.Money `json:"offset"`
	NetPayment *Payment    `json:"net_payment,omitempty"`
	Balances   []Balance   `json:"balances"`
	CreatedAt  time.Time   `json:"created_at"`
	CreatedBy  string      `json:"created_by"`
	Replayed   bool        `json:"-"`
}

// NettingPlan is the arithmetic of a netting: Offset = the smaller open
// balance, taken off both; Difference = what the net payment must be, paid
// to the statement with the larger open balance (Larger: its index).
type NettingPlan struct {
	Offset, Difference int64
	Larger             int
}

// PlanNetting computes a netting of two positive open balances.
func PlanNetting(openA, openB int64) NettingPlan {
	if openA >= openB {
		return NettingPlan{Offset: openB, Difference: openA - openB, Larger: 0}
	}
	return NettingPlan{Offset: openA, Difference: openB - openA, Larger: 1}
}

// Net records a netting of two statements and its net payment. Both must be
// approved or sent, of one partner and currency, one owed by the partner
// and one owed to it, each with a positive open balance. Errors:
// *validation.Error, ErrStatementNotFound, ErrNotNettable,
// ErrPaymentMismatch, ledger.ErrIdempotencyMismatch.
func (s *Service) Net(ctx context.Context, in NettingInput) (Netting, error) {
	var v validation.Error
	v.Check(in.StatementIDs[0] > 0 && in.StatementIDs[1] > 0 && in.StatementIDs[0] != in.StatementIDs[1], "statement_ids",
		"must name two different statements")
	validDate(&v, "value_date", in.ValueDate)
	if p := in.NetPayment; p != nil {
		v.Check(p.Amount.Minor > 0, "net_payment.amount.minor", "must be positive")
		v.Check(currencyOK(p.Amount.Currency), "net_payment.amount.currency", "must be an ISO 4217 code")
		v.Check(len(p.Reference) >= 1 && len(p.Reference) <= 200, "net_payment.reference", "is required (at most 200 characters)")
	}
	if err := v.Err(); err != nil {
		return Netting{}, err
	}
	var out Netting
	now := s.clock()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockKey(tx, in.Key); err != nil {
			return err
		}
		var prior []struct {
			ID          int64
			RequestHash []byte
		}
		if err := tx.Raw(`SELECT id, request_hash FROM settlement_nettings WHERE idempotency_scope = ? AND idempotency_key = ?`,
			in.Key.Scope, in.Key.Key).Scan(&prior).Error; err != nil {
			return err
		}
		if len(prior) > 0 {
			if !bytes.Equal(prior[0].RequestHash, in.Key.Hash) {
				return fmt.Errorf("netting key %q: %w", in.Key.Key, ledger.ErrIdempotencyMismatch)
			}
			var err error
			out, err = s.netting(tx, prior[0].ID)
			out.Replayed = true
			return err
		}
		ids := in.StatementIDs
		if ids[0] > ids[1] { // lock in id order: two nettings of one pair cannot deadlock
			ids[0], ids[1] = ids[1], ids[0]
		}
		var bal [2]Balance
		for i, id := range ids {
			if _, err := getStatement(tx, id, true); err != nil {
				return err
			}
			b, err := s.balance(tx, id)
			if err != nil {
				return err
			}
			if b.Status != StatementApproved && b.Status != StatementSent {
				return fmt.Errorf("statement %d is %s, not approved or sent: %w", id, b.Status, ErrNotNettable)
			}
			if b.Open.Minor <= 0 {
				return fmt.Errorf("statement %d has nothing open: %w", id, ErrNotNettable)
			}
			bal[i] = b
		}
		a, b := bal[0], bal[1]
		switch {
		case a.PartnerID != b.PartnerID:
			return fmt.Errorf("statements %d and %d are of different partners: %w", a.StatementID, b.StatementID, ErrNotNettable)
		case a.Open.Currency != b.Open.Currency:
			return fmt.Errorf("statements %d and %d are in %s and %s: %w", a.StatementID, b.StatementID, a.Open.Currency, b.Open.Currency, ErrNotNettable)
		case a.Direction == b.Direction:
			return fmt.Errorf("statements %d and %d are both owed %s; netting needs one each way: %w", a.StatementID, b.StatementID,
				map[string]string{"from_partner": "by the partner", "to_partner": "to the partner"}[a.Direction], ErrNotNettable)
		}
		plan := PlanNetting(a.Open.Minor, b.Open.Minor)
		p := in.NetPayment
		switch {
		case plan.Difference == 0 && p != nil:
			return fmt.Errorf("the open balances are equal (%s); no net payment is due: %w", money.Format(a.Open.Minor, a.Open.Currency), ErrPaymentMismatch)
		case plan.Difference != 0 && (p == nil || p.Amount.Minor != plan.Difference || p.Amount.Currency != a.Open.Currency):
			return fmt.Errorf("the net payment must be %s (open %s on statement %d, %s on statement %d): %w",
				money.Format(plan.Difference, a.Open.Currency), money.Format(a.Open.Minor, a.Open.Currency), a.StatementID,
				money.Format(b.Open.Minor, b.Open.Currency), b.StatementID, ErrPaymentMismatch)
		}
		var nid int64
		if err := tx.Raw(`INSERT INTO settlement_nettings (partner_id, currency, offset_minor, created_at, created_by,
			idempotency_scope, idempotency_key, request_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			a.PartnerID, a.Open.Currency, plan.Offset, now, in.Actor, in.Key.Scope, in.Key.Key, in.Key.Hash).Scan(&nid).Error; err != nil {
			return err
		}
		ref := fmt.Sprintf("netting %d of statements %d and %d", nid, a.StatementID, b.StatementID)
		for _, x := range bal {
			if err := tx.Exec(`INSERT INTO settlement_payments (statement_id, kind, amount_minor, currency, value_date, reference, netting_id,
				created_at, created_by) VALUES (?, 'netting', ?, ?, ?::date, ?, ?, ?, ?)`, x.StatementID, plan.Offset, x.Open.Currency,
				in.ValueDate, ref, nid, now, in.Actor).Error; err != nil {
				return err
			}
		}
		if plan.Difference != 0 {
			if err := tx.Exec(`INSERT INTO settlement_payments (statement_id, kind, amount_minor, currency, value_date, reference, netting_id,
				created_at, created_by) VALUES (?, 'payment', ?, ?, ?::date, ?, ?, ?, ?)`, bal[plan.Larger].StatementID, plan.Difference,
				a.Open.Currency, in.ValueDate, p.Reference, nid, now, in.Actor).Error; err != nil {
				return err
			}
		}
		for _, x := range bal {
			if err := settleIfZero(tx, x.StatementID, now, in.Actor); err != nil {
				return err
			}
		}
		var err error
		out, err = s.netting(tx, nid)
		return err
	})
	return out, err
}

// netting reads a recorded netting with its payments and the balances of
// its statements now.
func (s *Service) netting(tx *gorm.DB, id int64) (Netting, error) {
	var n struct {
		ID          int64
		PartnerID   int64
		Currency    string
		OffsetMinor int64
		CreatedAt   time.Time
		CreatedBy   string
	}
	if err := tx.Raw(`SELECT id, partner_id, currency, offset_minor, created_at, created_by FROM settlement_nettings WHERE id = ?`, id).
		Scan(&n).Error; err != nil {
		return Netting{}, err
	}
	out := Netting{ID: n.ID, PartnerID: n.PartnerID, Offset: money.Money{Minor: n.OffsetMinor, Currency: n.Currency},
		CreatedAt: n.CreatedAt.UTC(), CreatedBy: n.CreatedBy, Balances: []Balance{}}
	var rows []paymentRow
	if err := tx.Raw(`SELECT `+paymentColumns+` FROM settlement_payments WHERE netting_id = ? ORDER BY id`, id).Scan(&rows).Error; err != nil {
		return Netting{}, err
	}
	for _, r := range rows {
		if r.Kind == "payment" {
			p := r.payment()
			out.NetPayment = &p
			continue
		}
		b, err := s.balance(tx, r.StatementID)
		if err != nil {
			return Netting{}, err
		}
		out.Balances = append(out.Balances, b)
	}
	return out, nil
}
