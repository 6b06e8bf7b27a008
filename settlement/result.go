package settlement

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
)

// The operator's result of a closed period and the roll-forward of its
// outstanding liability (docs/settlement.md, "The operator's result").
//
// Valuation rule: points are a liability of the operator (deferred revenue)
// carried at the issue price in force when they were earned, i.e. what the
// issuing partner paid for them; the operator's own points (promotions,
// grants, adjustments: issuer 0) carry nothing, since nobody paid for them.
// The liability is released as revenue when the points leave it (redeemed,
// exchanged out, expired), at the issue price of the lots that left; what
// the operator pays the redeemer (the redemption rate, the matrix's value)
// is the cost set against that revenue.
//
// Roundings, each half-even to the minor unit:
//   - flow valuation: lot points × issue price, per (issuer, issue price,
//     flow class);
//   - outstanding valuation: per (issuer, issue price), as the period report;
//   - operator-funded redemption cost: points × redemption rate, per
//     (redeemer, rate); the partner-funded cost is the statement's
//     redemption lines less it, so the two add up to the statement;
//   - conversion to base: each figure of a partner once, at the period's rate.
// What the roundings leave between opening + flows and closing is the
// valuation rounding line of the roll-forward and of the result.

// ResultFigures is the operator's result of a period with one partner (or in
// total), in one currency, signed from the operator's side (positive: income).
// Result is the sum of every figure but the subtotals (BreakageKept,
// ExchangeMargin) and the informational ones (IssueCharges, Billing,
// LiabilityChange).
type ResultFigures struct {
	Currency string `json:"currency"`
	// RedemptionRevenue is the issue-price value of the partner's points
	// redeemed (anywhere) in the period: the revenue from issue prices.
	RedemptionRevenue int64 `json:"redemption_revenue"`
	// RedemptionCost is what the operator pays the partner for
	// partner-issued points redeemed at it (negative).
	RedemptionCost int64 `json:"redemption_cost"`
	// BreakageReleased is the issue-price value of the partner's points that
	// expired; BreakageShares the partners' shares of it paid (negative);
	// BreakageKept their sum.
	BreakageReleased int64 `json:"breakage_released"`
	BreakageShares   int64 `json:"breakage_shares"`
	BreakageKept     int64 `json:"breakage_kept"`
	// Fees are the operator fees charged.
	Fees int64 `json:"fees"`
	// ExchangeReleased is the issue-price value of the partner's points
	// exchanged out to programmes; ExchangeCost what the operator pays the
	// programmes' partners for the points they credited (negative);
	// ExchangeMargin their sum.
	ExchangeReleased int64 `json:"exchange_released"`
	ExchangeCost     int64 `json:"exchange_cost"`
	ExchangeMargin   int64 `json:"exchange_margin"`
	// PromotionCost is what the operator pays the partner for redeemed
	// operator-funded points (promotion bonuses, grants, adjustments;
	// negative).
	PromotionCost int64 `json:"promotion_cost"`
	// Adjustments are the money corrections of the period's statements.
	Adjustments int64 `json:"adjustments"`
	// IssueDifference is the issue charges less the issue-price value of
	// the lots the partner's earns put into the liability (line-by-line
	// rounding; clawbacks that took other issuers' points or made debt).
	IssueDifference int64 `json:"issue_difference"`
	// OtherLiability is the value of the partner's points the operator's
	// adjustments took away (or added), and of transfers and merges.
	OtherLiability int64 `json:"other_liability"`
	// ValuationRounding is what the per-group roundings leave between the
	// liability's flows and its closing value.
	ValuationRounding int64 `json:"valuation_rounding"`
	// FXDifference (base currency only) is the change of the opening
	// liability's base value from the previous period's rate to this one's
	// (a liability grown in base currency is a loss).
	FXDifference int64 `json:"fx_difference"`
	Result       int64 `json:"result"`
	// Informational: IssueCharges is what the partner was billed for points
	// sold at their issue price; Billing the statement's net from the
	// operator's side without prepaid draw-downs (cash already received);
	// LiabilityChange the change of the liability's value for the
	// partner's points. Result = Billing − LiabilityChange (+ FXDifference).
	IssueCharges    int64 `json:"issue_charges"`
	Billing         int64 `json:"billing"`
	LiabilityChange int64 `json:"liability_change"`
}

// sum sets the subtotals and the result from the figures.
func (f *ResultFigures) sum() {
	f.BreakageKept = f.BreakageReleased + f.BreakageShares
	f.ExchangeMargin = f.ExchangeReleased + f.ExchangeCost
	f.Result = f.RedemptionRevenue + f.RedemptionCost + f.BreakageKept + f.Fees + f.ExchangeMargin + f.PromotionCost +
		f.Adjustments + f.IssueDifference + f.OtherLiability + f.ValuationRounding + f.FXDifference
}

// fields lists the figures that add up to the result (not the subtotals),
// for conversion and for the journal.
func (f *ResultFigures) fields() []*int64 {
	return []*int64{&f.RedemptionRevenue, &f.RedemptionCost, &f.BreakageReleased, &f.BreakageShares, &f.Fees,
		&f.ExchangeReleased, &f.ExchangeCost, &f.PromotionCost, &f.Adjustments, &f.IssueDifference, &f.OtherLiability,
		&f.ValuationRounding, &f.FXDifference, &f.IssueCharges, &f.Billing, &f.LiabilityChange}
}

// PartnerResult is the result with one partner: in its settlement currency
// (Local) and converted to the base currency (Base, with the FX difference).
type PartnerResult struct {
	PartnerID int64         `json:"partner_id"`
	Local     ResultFigures `json:"local"`
	Base      ResultFigures `json:"base"`
}

// LiabilityFigures is a roll-forward of the outstanding liability: Closing =
// Opening + every flow (signed as it changes the liability: redeemed,
// exchanged out and expired points are negative) + FX + Rounding.
type LiabilityFigures struct {
	Currency    string `json:"currency,omitempty"` // empty for points
	Opening     int64  `json:"opening"`
	Issued      int64  `json:"issued"`
	ExchangeIn  int64  `json:"exchange_in"`
	Redeemed    int64  `json:"redeemed"`
	ExchangeOut int64  `json:"exchange_out"`
	Expired     int64  `json:"expired"`
	Adjusted    int64  `json:"adjusted"`
	Moved       int64  `json:"moved"`
	FX          int64  `json:"fx"`
	Rounding    int64  `json:"rounding"`
	Closing     int64  `json:"closing"`
}

func (l *LiabilityFigures) flow(class string) *int64 {
	switch class {
	case ledger.FlowIssued:
		return &l.Issued
	case ledger.FlowExchangeIn:
		return &l.ExchangeIn
	case ledger.FlowRedeemed:
		return &l.Redeemed
	case ledger.FlowExchangeOut:
		return &l.ExchangeOut
	case ledger.FlowExpired:
		return &l.Expired
	case ledger.FlowAdjusted:
		return &l.Adjusted
	default:
		return &l.Moved
	}
}

// Other is what is neither issued, redeemed, expired nor exchanged: the
// operator's adjustments, transfers and merges, FX and rounding.
func (l LiabilityFigures) Other() int64 { return l.Adjusted + l.Moved + l.FX + l.Rounding }

func (l LiabilityFigures) flows() int64 {
	return l.Issued + l.ExchangeIn + l.Redeemed + l.ExchangeOut + l.Expired + l.Adjusted + l.Moved
}

// IssuerLiability is the roll-forward of one issuer's points (0: the
// operator's): in points, in value in the issuer's currency at the issue
// price, and in the base currency.
type IssuerLiability struct {
	IssuerPartnerID int64            `json:"issuer_partner_id"`
	Points          LiabilityFigures `json:"points"`
	Value           LiabilityFigures `json:"value"`
	Base            LiabilityFigures `json:"base"`
}

// FinanceReport is the operator's result and liability roll-forward of a
// closed period, by partner and in total (base currency).
type FinanceReport struct {
	Period       string            `json:"period"`
	BaseCurrency string            `json:"base_currency"`
	Partners     []PartnerResult   `json:"partners"`
	Total        ResultFigures     `json:"total"`
	Liability    []IssuerLiability `json:"liability"`
	// LiabilityTotal is every issuer's roll-forward added up: points and
	// base currency.
	LiabilityTotal struct {
		Points LiabilityFigures `json:"points"`
		Base   LiabilityFigures `json:"base"`
	} `json:"liability_total"`
	Rates  []Rate `json:"rates,omitempty"`
	SHA256 string `json:"-"`
}

// Finance returns the result and liability roll-forward of a closed period:
// the stored one, or, the first time, computed from the period's closed data
// and stored (computing it again gives the same bytes). Errors:
// *validation.Error, ErrPeriodNotFound, ErrPeriodNotClosed, ErrMissingRate (a
// partner's currency has no rate to the base currency in the period).
func (s *Service) Finance(ctx context.Context, monthStr string) (FinanceReport, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return FinanceReport{}, err
	}
	db := s.db.WithContext(ctx)
	p, err := selectPeriod(db, m, false)
	if err != nil {
		return FinanceReport{}, err
	}
	if p.Status != string(PeriodClosed) {
		return FinanceReport{}, fmt.Errorf("result of %s: %w", m, ErrPeriodNotClosed)
	}
	if rep, ok, err := selectFinance(db, p.ID); err != nil || ok {
		return rep, err
	}
	var rep FinanceReport
	if err := repeatableRead(db, func(tx *gorm.DB) error {
		var err error
		rep, err = s.computeFinance(tx, p)
		return err
	}); err != nil {
		return FinanceReport{}, fmt.Errorf("result of %s: %w", m, err)
	}
	raw, sum := canonical(rep)
	if err := db.Exec(`INSERT INTO settlement_period_results (period_id, document, sha256, created_at)
		VALUES (?, ?::text::json, ?, ?) ON CONFLICT (period_id) DO NOTHING`, p.ID, string(raw), sum[:], s.clock()).Error; err != nil {
		return FinanceReport{}, err
	}
	rep, _, err = selectFinance(db, p.ID)
	return rep, err
}

// RecomputeFinance computes the result of a closed period again from its
// closed data without storing it, and reports whether it is byte-identical
// to the stored one (false when none is stored yet).
func (s *Service) RecomputeFinance(ctx context.Context, monthStr string) (FinanceReport, bool, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return FinanceReport{}, false, err
	}
	db := s.db.WithContext(ctx)
	p, err := selectPeriod(db, m, false)
	if err != nil {
		return FinanceReport{}, false, err
	}
	if p.Status != string(PeriodClosed) {
		return FinanceReport{}, false, ErrPeriodNotClosed
	}
	var rep FinanceReport
	if err := repeatableRead(db, func(tx *gorm.DB) error {
		var err error
		rep, err = s.computeFinance(tx, p)
		return err
	}); err != nil {
		return FinanceReport{}, false, err
	}
	_, sum := canonical(rep)
	rep.SHA256 = fmt.Sprintf("%x", sum)
	stored, ok, err := selectFinance(db, p.ID)
	return rep, ok && stored.SHA256 == rep.SHA256, err
}

func selectFinance(tx *gorm.DB, periodID int64) (FinanceReport, bool, error) {
	var rows []struct {
		Document string
		SHA256   []byte
	}
	if err := tx.Raw(`SELECT document::text AS document, sha256 FROM settlement_period_results WHERE period_id = ?`, periodID).
		Scan(&rows).Error; err != nil || len(rows) == 0 {
		return FinanceReport{}, false, err
	}
	var rep FinanceReport
	if err := json.Unmarshal([]byte(rows[0].Document), &rep); err != nil {
		return FinanceReport{}, false, fmt.Errorf("stored result of period %d: %w", periodID, err)
	}
	rep.SHA256 = fmt.Sprintf("%x", rows[0].SHA256)
	return rep, true, nil
}

// financeInput is the closed data a period's result is computed from.
type financeInput struct {
	period      Period
	base        string
	docs        []Document
	flows       []pricedFlow     // lot flows of the settled transactions, priced at the issue price
	opsRedeemed []pricedFlow     // operator-funded points redeemed, per redeemer, at its redemption rate
	opening     []liabilityRow   // outstanding at the previous period's end
	closing     []liabilityRow   // outstanding at this period's end
	openingBase map[int64]int64  // the previous report's value per issuer (base currency)
	closingBase map[int64]int64  // this report's value per issuer (base currency)
	currencies  map[int64]string // settlement currency per partner
	rates       []Rate           // this period's
}

// pricedFlow is lot points of one partner (issuer or redeemer), class and
// price.
type pricedFlow struct {
	PartnerID int64
	Class     string
	Price     decimal.NullDecimal
	Points    int64
}

// computeFinance reads the closed data of p and computes its result.
func (s *Service) computeFinance(tx *gorm.DB, p periodRow) (FinanceReport, error) {
	in := financeInput{period: p.period(), base: s.base, openingBase: map[int64]int64{}, closingBase: map[int64]int64{}}
	cs, err := selectContracts(tx)
	if err != nil {
		return FinanceReport{}, err
	}
	stored, err := selectStatements(tx, "s.period_id = ? ORDER BY s.partner_id", p.ID)
	if err != nil {
		return FinanceReport{}, err
	}
	for _, r := range stored {
		st, err := r.statement()
		if err != nil {
			return FinanceReport{}, err
		}
		in.docs = append(in.docs, st.Document)
	}
	b, err := ledger.PrepareSettled(tx, p.ID, p.StartsAt)
	if err != nil {
		return FinanceReport{}, err
	}
	flows, err := b.LotFlows(tx, cs.bounds)
	if err != nil {
		return FinanceReport{}, fmt.Errorf("lot flows: %w", err)
	}
	for _, f := range flows {
		in.flows = append(in.flows, pricedFlow{PartnerID: f.IssuerPartnerID, Class: f.Class, Points: f.Points,
			Price: price(cs.inForce(f.IssuerPartnerID, f.Bucket), func(c contractVersion) decimal.Decimal { return c.IssuePrice })})
	}
	reds, err := b.Redemptions(tx, cs.bounds)
	if err != nil {
		return FinanceReport{}, fmt.Errorf("redemptions: %w", err)
	}
	for _, r := range reds {
		if r.IssuerPartnerID != 0 {
			continue
		}
		in.opsRedeemed = append(in.opsRedeemed, pricedFlow{PartnerID: r.RedeemerPartnerID, Class: ledger.FlowRedeemed, Points: r.Points,
			Price: price(cs.inForce(r.RedeemerPartnerID, r.Bucket), func(c contractVersion) decimal.Decimal { return c.RedemptionRate })})
	}
	prev, err := selectPreviousPeriod(tx, p)
	if err != nil {
		return FinanceReport{}, err
	}
	if in.opening, err = outstandingAt(tx, prev.ID, cs); err != nil {
		return FinanceReport{}, err
	}
	if in.closing, err = outstandingAt(tx, p.ID, cs); err != nil {
		return FinanceReport{}, err
	}
	if in.currencies, err = selectPartners(tx); err != nil {
		return FinanceReport{}, err
	}
	if in.rates, err = selectRates(tx, p.ID); err != nil {
		return FinanceReport{}, err
	}
	for _, q := range []struct {
		id   int64
		into map[int64]int64
	}{{prev.ID, in.openingBase}, {p.ID, in.closingBase}} {
		if q.id == 0 {
			continue
		}
		rep, err := reportOf(tx, q.id)
		if err != nil {
			return FinanceReport{}, err
		}
		for _, l := range rep.Outstanding {
			q.into[l.IssuerPartnerID] = l.Value.Minor
		}
	}
	return buildFinance(in)
}

// outstandingAt is the outstanding liability at the end of closed period id
// (none before the first close): the rows recorded at its close, or, for a
// period closed before they were kept (or with nothing outstanding), summed
// from every transaction settled up to it.
func outstandingAt(tx *gorm.DB, periodID int64, cs contracts) ([]liabilityRow, error) {
	if periodID == 0 {
		return nil, nil
	}
	rows, err := selectRecordedOutstanding(tx, periodID)
	if err != nil || len(rows) > 0 {
		return rows, err
	}
	var upTo []int64
	if err := tx.Raw(`SELECT id FROM settlement_periods WHERE status = 'closed'
		AND ends_at <= (SELECT ends_at FROM settlement_periods WHERE id = ?) ORDER BY id`, periodID).Scan(&upTo).Error; err != nil {
		return nil, err
	}
	moves, err := ledger.SettledLotMoves(tx, upTo, cs.bounds)
	if err != nil {
		return nil, err
	}
	return cs.priceLots(moves), nil
}

// reportOf reads the stored report of a closed period by id.
func reportOf(tx *gorm.DB, periodID int64) (Report, error) {
	var raw *string
	if err := tx.Raw(`SELECT report::text FROM settlement_periods WHERE id = ?`, periodID).Row().Scan(&raw); err != nil {
		return Report{}, err
	}
	var r Report
	if raw == nil {
		return r, fmt.Errorf("report of period %d: %w", periodID, ErrPeriodNotClosed)
	}
	return r, json.Unmarshal([]byte(*raw), &r)
}

// valueGroups values points per (partner, class, price), each group rounded
// half-even in the partner's currency, and sums the values per (partner,
// class). A group without a price (the operator's points) is worth nothing.
func valueGroups(flows []pricedFlow, currencies map[int64]string) map[int64]map[string]int64 {
	type key struct {
		partner int64
		class   string
		price   string
	}
	points := map[key]int64{}
	prices := map[key]decimal.Decimal{}
	for _, f := range flows {
		k := key{f.PartnerID, f.Class, priceKey(f.Price)}
		points[k] += f.Points
		if f.Price.Valid {
			prices[k] = f.Price.Decimal
		}
	}
	out := map[int64]map[string]int64{}
	for k, pts := range points {
		if out[k.partner] == nil {
			out[k.partner] = map[string]int64{}
		}
		if pr, ok := prices[k]; ok && k.partner != 0 {
			out[k.partner][k.class] += money.PointsValue(pts, pr, currencies[k.partner])
		} else {
			out[k.partner][k.class] += 0
		}
	}
	return out
}

// liabilityValue values outstanding rows per issuer, each (issuer, issue
// price) rounded half-even in the issuer's currency (as the period report).
func liabilityValue(rows []liabilityRow, currencies map[int64]string) (points, value map[int64]int64) {
	points, value = map[int64]int64{}, map[int64]int64{}
	for _, r := range rows {
		points[r.IssuerPartnerID] += r.Points
		value[r.IssuerPartnerID] += 0
		if r.IssuerPartnerID != 0 && r.IssuePrice.Valid {
			value[r.IssuerPartnerID] += money.PointsValue(r.Points, r.IssuePrice.Decimal, currencies[r.IssuerPartnerID])
		}
	}
	return points, value
}

// buildFinance is the arithmetic of the result and roll-forward: pure, so
// that table tests drive it.
func buildFinance(in financeInput) (FinanceReport, error) {
	rep := FinanceReport{Period: in.period.Month, BaseCurrency: in.base, Partners: []PartnerResult{}, Liability: []IssuerLiability{}}
	rep.Total.Currency = in.base
	rep.LiabilityTotal.Base.Currency = in.base
	used := map[string]Rate{}
	toBase := func(minor int64, cur string) (int64, error) {
		if minor == 0 { // nothing needs no rate: a partner's empty statement
			return 0, nil
		}
		v, r, err := convert(minor, cur, in.base, in.rates)
		if r != nil {
			used[r.From+r.To] = *r
		}
		return v, err
	}
	// The liability roll-forward per issuer.
	flowPoints := map[int64]map[string]int64{}
	for _, f := range in.flows {
		if flowPoints[f.PartnerID] == nil {
			flowPoints[f.PartnerID] = map[string]int64{}
		}
		flowPoints[f.PartnerID][f.Class] += f.Points
	}
	flowValues := valueGroups(in.flows, in.currencies)
	openPts, openVal := liabilityValue(in.opening, in.currencies)
	closePts, closeVal := liabilityValue(in.closing, in.currencies)
	issuers := map[int64]bool{}
	for id := range flowPoints {
		issuers[id] = true
	}
	for id := range openPts {
		issuers[id] = true
	}
	for id := range closePts {
		issuers[id] = true
	}
	liab := map[int64]IssuerLiability{}
	for _, id := range sortedIDs(issuers) {
		cur := in.base
		if id != 0 {
			cur = in.currencies[id]
		}
		l := IssuerLiability{IssuerPartnerID: id, Value: LiabilityFigures{Currency: cur}, Base: LiabilityFigures{Currency: in.base}}
		l.Points.Opening, l.Points.Closing = openPts[id], closePts[id]
		l.Value.Opening, l.Value.Closing = openVal[id], closeVal[id]
		for class, pts := range flowPoints[id] {
			*l.Points.flow(class) += pts
			*l.Value.flow(class) += flowValues[id][class]
		}
		l.Points.Rounding = l.Points.Closing - l.Points.Opening - l.Points.flows()
		if l.Points.Rounding != 0 {
			return FinanceReport{}, fmt.Errorf("liability of issuer %d: %d points unaccounted for", id, l.Points.Rounding)
		}
		l.Value.Rounding = l.Value.Closing - l.Value.Opening - l.Value.flows()
		// Base currency: the opening and closing values are the reports';
		// the flows are converted at this period's rate, the FX difference
		// is the opening value's change of rate.
		l.Base.Opening, l.Base.Closing = in.openingBase[id], in.closingBase[id]
		if id != 0 {
			for _, f := range []struct{ from, to *int64 }{{&l.Value.Issued, &l.Base.Issued}, {&l.Value.ExchangeIn, &l.Base.ExchangeIn},
				{&l.Value.Redeemed, &l.Base.Redeemed}, {&l.Value.ExchangeOut, &l.Base.ExchangeOut}, {&l.Value.Expired, &l.Base.Expired},
				{&l.Value.Adjusted, &l.Base.Adjusted}, {&l.Value.Moved, &l.Base.Moved}} {
				v, err := toBase(*f.from, cur)
				if err != nil {
					return FinanceReport{}, fmt.Errorf("liability of issuer %d: %w", id, err)
				}
				*f.to = v
			}
			if l.Value.Opening != 0 {
				now, err := toBase(l.Value.Opening, cur)
				if err != nil {
					return FinanceReport{}, fmt.Errorf("liability of issuer %d: %w", id, err)
				}
				l.Base.FX = now - l.Base.Opening
			}
		}
		l.Base.Rounding = l.Base.Closing - l.Base.Opening - l.Base.flows() - l.Base.FX
		liab[id] = l
		rep.Liability = append(rep.Liability, l)
		addLiability(&rep.LiabilityTotal.Points, l.Points)
		addLiability(&rep.LiabilityTotal.Base, l.Base)
	}

	// The result per partner: the statements, the releases of the partner's
	// points, the operator-funded part of its redemptions.
	opsCost := map[int64]int64{}
	for p, classes := range valueGroups(in.opsRedeemed, in.currencies) {
		opsCost[p] = classes[ledger.FlowRedeemed]
	}
	// valueGroups leaves the operator's own (partner 0) groups at zero;
	// redeemers are never 0, so every group is valued.
	partners := map[int64]bool{}
	docs := map[int64]Document{}
	for _, d := range in.docs {
		partners[d.PartnerID] = true
		docs[d.PartnerID] = d
	}
	for id := range liab {
		if id != 0 {
			partners[id] = true
		}
	}
	for _, id := range sortedIDs(partners) {
		cur := in.currencies[id]
		f := ResultFigures{Currency: cur}
		var redeemed int64
		for _, l := range docs[id].Lines {
			if l.Informational {
				continue
			}
			a := l.Amount.Minor
			switch l.Kind {
			case LineIssued, LineExchangeIn:
				f.IssueCharges -= a
			case LineRedeemed:
				redeemed += a
			case LineOperatorFee:
				f.Fees -= a
			case LineExchangeOut:
				f.ExchangeCost -= a
			case LineBreakage:
				f.BreakageShares -= a
			case LineAdjustment:
				f.Adjustments -= a
			}
			if l.Kind != LinePrepaidDrawDown {
				f.Billing -= a
			}
		}
		f.PromotionCost = -opsCost[id]
		f.RedemptionCost = -redeemed - f.PromotionCost
		l := liab[id]
		f.RedemptionRevenue = -l.Value.Redeemed
		f.ExchangeReleased = -l.Value.ExchangeOut
		f.BreakageReleased = -l.Value.Expired
		f.IssueDifference = f.IssueCharges - l.Value.Issued - l.Value.ExchangeIn
		f.OtherLiability = -l.Value.Adjusted - l.Value.Moved
		f.ValuationRounding = -l.Value.Rounding
		f.LiabilityChange = l.Value.Closing - l.Value.Opening
		f.sum()
		if f.Result != f.Billing-f.LiabilityChange { // an identity of the definitions
			return FinanceReport{}, fmt.Errorf("result of partner %d: %d, billing %d less liability change %d", id, f.Result, f.Billing, f.LiabilityChange)
		}
		b := f
		b.Currency = in.base
		for _, v := range b.fields() {
			c, err := toBase(*v, cur)
			if err != nil {
				return FinanceReport{}, fmt.Errorf("result of partner %d: %w", id, err)
			}
			*v = c
		}
		b.FXDifference = -l.Base.FX
		b.sum()
		rep.Partners = append(rep.Partners, PartnerResult{PartnerID: id, Local: f, Base: b})
		t, bf := rep.Total.fields(), b.fields()
		for i := range t {
			*t[i] += *bf[i]
		}
	}
	// The operator's own points carry no value, so their FX is zero.
	rep.Total.sum()
	for _, r := range used {
		rep.Rates = append(rep.Rates, r)
	}
	sort.Slice(rep.Rates, func(i, j int) bool { return rep.Rates[i].From+rep.Rates[i].To < rep.Rates[j].From+rep.Rates[j].To })
	return rep, nil
}

func addLiability(to *LiabilityFigures, l LiabilityFigures) {
	to.Opening += l.Opening
	to.Issued += l.Issued
	to.ExchangeIn += l.ExchangeIn
	to.Redeemed += l.Redeemed
	to.ExchangeOut += l.ExchangeOut
	to.Expired += l.Expired
	to.Adjusted += l.Adjusted
	to.Moved += l.Moved
	to.FX += l.FX
	to.Rounding += l.Rounding
	to.Closing += l.Closing
}

func sortedIDs(set map[int64]bool) []int64 {
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
