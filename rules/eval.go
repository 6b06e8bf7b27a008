package rules

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/validation"
)

// Evaluate prices purchase p under the rule version rules and the
// promotions promos, without posting anything. It is pure: the same inputs
// always give the same quote.
//
// Steps, in order, each producing breakdown lines:
//
//  1. base: each earn component that applies (the purchase's currency
//     component on its non-excluded lines, each activity, the event) gives
//     one "base" line, rounded down on its own. A currency component whose
//     minimum the amount does not reach gives a 0-point "minimum" line;
//     excluded lines give 0-point "exclusion" lines.
//  2. SKU/category: each multiplier that matched lines gives one line of
//     (rate-1) x the exact base of those lines, rounded down. A SKU
//     multiplier takes precedence over its line's category multiplier.
//  3. tier: (rate-1) x the exact base plus SKU/category bonus, rounded down.
//  4. promotions: each applied promotion gives one line, funded by its
//     funder: (multiplier-1) x the exact base it covers (all of it, or the
//     lines of its categories), rounded down; or its fixed bonus. Exclusive
//     promotions are weighed against the set of non-exclusive ones and the
//     option earning the most wins; the others get 0-point
//     "promotion_not_combined" lines.
//  5. cap: when the total exceeds the rule's cap per transaction, negative
//     "cap" lines remove the excess, operator-funded points first.
//
// Rounding is always down and per line, from exact inputs, so the quote
// never exceeds the exact arithmetic. Every figure is >= 0 except cap lines.
//
// Errors: a validation.Error for a malformed purchase or rule definition;
// ErrRuleNotFound when the rule belongs to another partner;
// ErrCurrencyNotEarned when the rule earns on amounts only in other
// currencies and the purchase has an amount; ErrPointsOverflow when the
// points do not fit in an int64.
func Evaluate(rules RuleSet, promos []Promotion, p Purchase) (Quote, error) {
	if err := validatePurchase(p); err != nil {
		return Quote{}, err
	}
	if err := validateRuleDefinition(rules.Definition); err != nil {
		return Quote{}, fmt.Errorf("earn rule %d v%d: %w", rules.RuleID, rules.Version, err)
	}
	return evaluate(rules, promos, p)
}

// evaluateChecked is Evaluate for a rule definition known to be valid (the
// partner configuration cache validated it when it loaded the rule).
func evaluateChecked(rules RuleSet, promos []Promotion, p Purchase) (Quote, error) {
	if err := validatePurchase(p); err != nil {
		return Quote{}, err
	}
	return evaluate(rules, promos, p)
}

// evaluate is Evaluate after validation.
func evaluate(rules RuleSet, promos []Promotion, p Purchase) (Quote, error) {
	if rules.PartnerID != 0 && rules.PartnerID != p.PartnerID {
		return Quote{}, fmt.Errorf("rule %d belongs to partner %d, not %d: %w",
			rules.RuleID, rules.PartnerID, p.PartnerID, ErrRuleNotFound)
	}
	e := &earnEval{def: rules.Definition, p: p, den: decimal.NewFromInt(1)}
	if err := e.run(promos); err != nil {
		return Quote{}, err
	}
	q := Quote{PartnerID: p.PartnerID, OccurredAt: p.OccurredAt, RuleID: rules.RuleID,
		RuleVersion: rules.Version, Breakdown: e.lines, IgnoredPromoCodes: e.ignoredCodes}
	for _, l := range e.lines {
		if l.FundedBy == FundedByOperator {
			q.OperatorFunded += l.Points
		} else {
			q.Points += l.Points
		}
	}
	q.Total = q.Points + q.OperatorFunded
	return q, nil
}

// earnEval holds one evaluation. Exact amounts are kept as numerators over
// the shared denominator den (the currency component's minor units per
// point-step), so that every division happens once, when a line is rounded.
type earnEval struct {
	def   RuleDefinition
	p     Purchase
	den   decimal.Decimal
	lines []QuoteLine

	baseNum       decimal.Decimal   // exact base, all components
	lineNum       []decimal.Decimal // exact currency base per purchase line (0 when excluded)
	earning       []bool            // line earns (not excluded)
	bonusNum      decimal.Decimal   // exact SKU/category bonus
	ignoredCodes  []string
	partnerPoints decimal.Decimal
	opPoints      decimal.Decimal
}

var maxPoints = decimal.NewFromInt(math.MaxInt64)

func (e *earnEval) floor(num decimal.Decimal) decimal.Decimal {
	q, _ := num.QuoRem(e.den, 0)
	return q
}

func (e *earnEval) add(l QuoteLine, pts decimal.Decimal) error {
	if pts.GreaterThan(maxPoints) || pts.LessThan(maxPoints.Neg()) {
		return fmt.Errorf("%s line: %w", l.Kind, ErrPointsOverflow)
	}
	l.Points = pts.IntPart()
	if l.FundedBy == "" {
		l.FundedBy = FundedByPartner
	}
	if l.FundedBy == FundedByOperator {
		e.opPoints = e.opPoints.Add(pts)
	} else {
		e.partnerPoints = e.partnerPoints.Add(pts)
	}
	if e.partnerPoints.Add(e.opPoints).GreaterThan(maxPoints) {
		return fmt.Errorf("%s line: %w", l.Kind, ErrPointsOverflow)
	}
	e.lines = append(e.lines, l)
	return nil
}

func (e *earnEval) purchaseLines() []Line {
	if len(e.p.Lines) > 0 {
		return e.p.Lines
	}
	return []Line{{Amount: e.p.Amount.Minor, Quantity: 1}}
}

func (e *earnEval) run(promos []Promotion) error {
	if err := e.currencyBase(); err != nil {
		return err
	}
	if err := e.activityBase(); err != nil {
		return err
	}
	if err := e.multiplierBonus(); err != nil {
		return err
	}
	if err := e.tierBonus(); err != nil {
		return err
	}
	if err := e.promotions(promos); err != nil {
		return err
	}
	return e.applyCap()
}

// currencyBase is step 1 for the amount: the purchase currency's component
// over the non-excluded lines.
func (e *earnEval) currencyBase() error {
	lines := e.purchaseLines()
	e.lineNum = make([]decimal.Decimal, len(lines))
	e.earning = make([]bool, len(lines))
	var comp *EarnComponent
	hasCurrencyComponent := false
	for i := range e.def.Earn {
		c := &e.def.Earn[i]
		if c.Kind != KindPerCurrencyUnit && c.Kind != KindPercentage {
			continue
		}
		hasCurrencyComponent = true
		if c.Currency == e.p.Amount.Currency {
			comp = c
		}
	}
	if comp == nil {
		if hasCurrencyComponent && e.p.Amount.Minor > 0 {
			return fmt.Errorf("purchase in %s: %w", e.p.Amount.Currency, ErrCurrencyNotEarned)
		}
		return nil
	}
	// den: minor units per Rate points; rate = Rate/den points per minor unit.
	rateText := ""
	switch comp.Kind {
	case KindPerCurrencyUnit:
		e.den = decimal.NewFromInt(comp.PerMinor)
	case KindPercentage:
		e.den = decimal.NewFromInt(100).Mul(*comp.PointValueMinor)
	}
	rateText = exactRatio(comp.Rate, e.den)
	if e.p.Amount.Minor < comp.MinAmountMinor {
		return e.add(QuoteLine{Kind: LineMinimum, Rate: rateText,
			Description: fmt.Sprintf("amount %d %s is below the minimum of %d for earning",
				e.p.Amount.Minor, e.p.Amount.Currency, comp.MinAmountMinor)}, decimal.Zero)
	}
	sum := decimal.Zero
	for i, l := range lines {
		if why := e.excluded(l); why != "" {
			if err := e.add(QuoteLine{Kind: LineExclusion,
				Description: fmt.Sprintf("line %d (%d %s): %s earns nothing", i, l.Amount, e.p.Amount.Currency, why)},
				decimal.Zero); err != nil {
				return err
			}
			continue
		}
		e.earning[i] = true
		e.lineNum[i] = decimal.NewFromInt(l.Amount).Mul(comp.Rate)
		sum = sum.Add(e.lineNum[i])
	}
	e.baseNum = e.baseNum.Add(sum)
	desc := fmt.Sprintf("%s points per %d minor units of %s", comp.Rate, comp.PerMinor, comp.Currency)
	if comp.Kind == KindPercentage {
		desc = fmt.Sprintf("%s%% of the amount in %s, at %s minor units per point",
			comp.Rate, comp.Currency, comp.PointValueMinor)
	}
	return e.add(QuoteLine{Kind: LineBase, Description: desc, Rate: rateText}, e.floor(sum))
}

func (e *earnEval) excluded(l Line) string {
	for _, s := range e.def.Exclusions.SKUs {
		if l.SKU != "" && l.SKU == s {
			return "SKU " + s
		}
	}
	for _, c := range e.def.Exclusions.Categories {
		if l.Category != "" && strings.EqualFold(l.Category, c) {
			return "category " + c
		}
	}
	return ""
}

// activityBase is step 1 for activities and the event.
func (e *earnEval) activityBase() error {
	for i, a := range e.p.Activity {
		var comp *EarnComponent
		for j := range e.def.Earn {
			c := &e.def.Earn[j]
			if c.Kind != KindPerActivity || c.Unit != a.Unit {
				continue
			}
			if c.Code != "" && c.Code == a.Code {
				comp = c
				break
			}
			if c.Code == "" && comp == nil {
				comp = c
			}
		}
		if comp == nil {
			continue
		}
		num := decimal.NewFromInt(a.Quantity).Mul(comp.Rate).Mul(e.den)
		e.baseNum = e.baseNum.Add(num)
		desc := fmt.Sprintf("activity %d: %d %s at %s points each", i, a.Quantity, a.Unit, comp.Rate)
		if comp.Code != "" {
			desc += " (code " + comp.Code + ")"
		}
		if err := e.add(QuoteLine{Kind: LineBase, Description: desc, Rate: comp.Rate.String()}, e.floor(num)); err != nil {
			return err
		}
	}
	if e.p.EventCode == "" {
		return nil
	}
	for _, c := range e.def.Earn {
		if c.Kind == KindFixedEvent && c.EventCode == e.p.EventCode {
			num := c.Rate.Mul(e.den)
			e.baseNum = e.baseNum.Add(num)
			return e.add(QuoteLine{Kind: LineBase, Rate: c.Rate.String(),
				Description: fmt.Sprintf("event %s: %s points", c.EventCode, c.Rate)}, e.floor(num))
		}
	}
	return nil
}

// multiplierBonus is step 2: SKU, then category multipliers, one line each.
func (e *earnEval) multiplierBonus() error {
	lines := e.purchaseLines()
	covered := make([]bool, len(lines))
	type group struct {
		kind, desc string
		rate       decimal.Decimal
		num        decimal.Decimal
		n          int
	}
	var groups []group
	for _, m := range e.def.Multipliers.SKU {
		g := group{kind: LineSKUMultiplier, desc: "SKU " + m.SKU, rate: m.Rate}
		for i, l := range lines {
			if e.earning[i] && !covered[i] && l.SKU != "" && l.SKU == m.SKU {
				covered[i] = true
				g.num = g.num.Add(e.lineNum[i])
				g.n++
			}
		}
		groups = append(groups, g)
	}
	for _, m := range e.def.Multipliers.Category {
		g := group{kind: LineCategoryMultiplier, desc: "category " + m.Category, rate: m.Rate}
		for i, l := range lines {
			if e.earning[i] && !covered[i] && l.Category != "" && strings.EqualFold(l.Category, m.Category) {
				covered[i] = true
				g.num = g.num.Add(e.lineNum[i])
				g.n++
			}
		}
		groups = append(groups, g)
	}
	one := decimal.NewFromInt(1)
	for _, g := range groups {
		if g.n == 0 {
			continue
		}
		bonus := g.num.Mul(g.rate.Sub(one))
		e.bonusNum = e.bonusNum.Add(bonus)
		if err := e.add(QuoteLine{Kind: g.kind, Rate: g.rate.String(),
			Description: fmt.Sprintf("%s x%s on %d line(s)", g.desc, g.rate, g.n)}, e.floor(bonus)); err != nil {
			return err
		}
	}
	return nil
}

// tierBonus is step 3.
func (e *earnEval) tierBonus() error {
	if e.p.MemberTier == "" {
		return nil
	}
	for _, t := range e.def.Multipliers.Tier {
		if strings.EqualFold(t.Tier, e.p.MemberTier) {
			bonus := e.baseNum.Add(e.bonusNum).Mul(t.Rate.Sub(decimal.NewFromInt(1)))
			return e.add(QuoteLine{Kind: LineTierMultiplier, Rate: t.Rate.String(),
				Description: fmt.Sprintf("tier %s x%s", t.Tier, t.Rate)}, e.floor(bonus))
		}
	}
	return nil
}

type promoCandidate struct {
	promo  Promotion
	points decimal.Decimal
	line   QuoteLine
}

// promotions is step 4.
func (e *earnEval) promotions(promos []Promotion) error {
	codes := map[string]bool{}
	for _, c := range e.p.PromoCodes {
		codes[strings.ToUpper(strings.TrimSpace(c))] = false
	}
	sorted := append([]Promotion(nil), promos...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	var cands []promoCandidate
	for _, pr := range sorted {
		c, ok := e.qualify(pr, codes)
		if ok {
			cands = append(cands, c)
		}
	}
	// Options: all non-exclusive together, or any one exclusive alone.
	var shared []int
	sharedPts := decimal.Zero
	for i, c := range cands {
		if !c.promo.Exclusive {
			shared = append(shared, i)
			sharedPts = sharedPts.Add(c.points)
		}
	}
	chosen, best := shared, sharedPts
	for i, c := range cands {
		if c.promo.Exclusive && (c.points.GreaterThan(best) || (len(chosen) == 0 && c.points.Equal(best))) {
			chosen, best = []int{i}, c.points
		}
	}
	applied := map[int]bool{}
	for _, i := range chosen {
		applied[i] = true
	}
	for i, c := range cands {
		if applied[i] {
			if err := e.add(c.line, c.points); err != nil {
				return err
			}
			if c.promo.Code != "" {
				codes[c.promo.Code] = true
			}
			continue
		}
		skipped := QuoteLine{Kind: LinePromotionSkipped, FundedBy: c.promo.FundedBy, PromotionID: c.promo.ID,
			Rate: c.line.Rate, Description: fmt.Sprintf("promotion %q not combined: %s", c.promo.Name,
				"an exclusive promotion applies only alone; the better option was taken")}
		if err := e.add(skipped, decimal.Zero); err != nil {
			return err
		}
	}
	for _, c := range e.p.PromoCodes {
		if !codes[strings.ToUpper(strings.TrimSpace(c))] {
			e.ignoredCodes = append(e.ignoredCodes, c)
		}
	}
	return nil
}

// qualify reports whether promotion pr applies to the purchase and, if so,
// what it earns.
func (e *earnEval) qualify(pr Promotion, codes map[string]bool) (promoCandidate, bool) {
	if pr.PartnerID != 0 && pr.PartnerID != e.p.PartnerID {
		return promoCandidate{}, false
	}
	if !pr.activeAt(e.p.OccurredAt) {
		return promoCandidate{}, false
	}
	if pr.Code != "" {
		if _, ok := codes[strings.ToUpper(pr.Code)]; !ok {
			return promoCandidate{}, false
		}
	}
	cond := pr.Conditions
	if m := cond.MinAmount; m != nil && (m.Currency != e.p.Amount.Currency || e.p.Amount.Minor < m.Minor) {
		return promoCandidate{}, false
	}
	if len(cond.Tiers) > 0 && !containsFold(cond.Tiers, e.p.MemberTier) {
		return promoCandidate{}, false
	}
	covered := e.baseNum
	if len(cond.Categories) > 0 {
		covered = decimal.Zero
		found := false
		for i, l := range e.purchaseLines() {
			if e.earning[i] && l.Category != "" && containsFold(cond.Categories, l.Category) {
				found = true
				covered = covered.Add(e.lineNum[i])
			}
		}
		if !found {
			return promoCandidate{}, false
		}
	}
	c := promoCandidate{promo: pr, line: QuoteLine{Kind: LinePromotion, FundedBy: pr.FundedBy, PromotionID: pr.ID}}
	switch pr.Effect {
	case EffectMultiplier:
		c.points = e.floor(covered.Mul(pr.Multiplier.Sub(decimal.NewFromInt(1))))
		c.line.Rate = pr.Multiplier.String()
		c.line.Description = fmt.Sprintf("promotion %q: base x%s", pr.Name, pr.Multiplier)
	case EffectBonus:
		c.points = decimal.NewFromInt(pr.Bonus)
		c.line.Rate = c.points.String()
		c.line.Description = fmt.Sprintf("promotion %q: %d bonus points", pr.Name, pr.Bonus)
	default:
		return promoCandidate{}, false
	}
	if c.points.IsNegative() {
		c.points = decimal.Zero
	}
	c.line.Description += fmt.Sprintf(" (funded by %s)", pr.FundedBy)
	return c, true
}

// applyCap is step 5.
func (e *earnEval) applyCap() error {
	limit := e.def.CapPerTransaction
	if limit <= 0 {
		return nil
	}
	capD := decimal.NewFromInt(limit)
	excess := e.partnerPoints.Add(e.opPoints).Sub(capD)
	if !excess.IsPositive() {
		return nil
	}
	fromOp := decimal.Min(excess, e.opPoints)
	fromPartner := excess.Sub(fromOp)
	desc := fmt.Sprintf("capped at %d points per transaction", limit)
	if fromOp.IsPositive() {
		if err := e.add(QuoteLine{Kind: LineCap, FundedBy: FundedByOperator, Rate: capD.String(),
			Description: desc + " (operator-funded points first)"}, fromOp.Neg()); err != nil {
			return err
		}
	}
	if fromPartner.IsPositive() {
		return e.add(QuoteLine{Kind: LineCap, FundedBy: FundedByPartner, Rate: capD.String(),
			Description: desc}, fromPartner.Neg())
	}
	return nil
}

// exactRatio writes num/den as an exact decimal when it terminates, else as "num/den".
func exactRatio(num, den decimal.Decimal) string {
	q := num.DivRound(den, 20)
	if q.Mul(den).Equal(num) {
		return q.String()
	}
	return num.String() + "/" + den.String()
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

var (
	earnCurrencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	earnTokenRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$`)
	earnUnitRe     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// Purchase bounds: generous for real purchases, small enough that no
// intermediate product comes near decimal or int64 trouble.
const (
	maxPurchaseMinor    = 1_000_000_000_000_000 // 10^15 minor units
	maxActivityQuantity = 1_000_000_000
	maxPurchaseLines    = 1000
)

// validatePurchase checks p's shape; field names are the JSON paths of the
// earn API request.
func validatePurchase(p Purchase) error {
	ve := &validation.Error{}
	ve.Check(p.PartnerID > 0, "partner_id", "must be a partner id")
	ve.Check(!p.OccurredAt.IsZero(), "occurred_at", "is required")
	ve.Check(p.Amount.Minor >= 0 && p.Amount.Minor <= maxPurchaseMinor, "amount.minor",
		fmt.Sprintf("must be between 0 and %d", int64(maxPurchaseMinor)))
	ve.Check(earnCurrencyRe.MatchString(p.Amount.Currency), "amount.currency", "must be an ISO 4217 code such as USD")
	if ve.Check(len(p.Lines) <= maxPurchaseLines, "lines", fmt.Sprintf("at most %d lines", maxPurchaseLines)) {
		var sum int64
		linesOK := true
		for i, l := range p.Lines {
			f := fmt.Sprintf("lines[%d]", i)
			linesOK = ve.Check(l.Amount >= 0 && l.Amount <= maxPurchaseMinor, f+".amount", "must be between 0 and the purchase amount") && linesOK
			ve.Check(l.Quantity >= 0, f+".quantity", "must not be negative")
			ve.Check(l.SKU == "" || len(l.SKU) <= 128, f+".sku", "at most 128 characters")
			ve.Check(l.Category == "" || len(l.Category) <= 128, f+".category", "at most 128 characters")
			if l.Amount > 0 && l.Amount <= maxPurchaseMinor {
				sum += l.Amount
			}
		}
		if len(p.Lines) > 0 && linesOK && sum != p.Amount.Minor {
			ve.Add("lines", fmt.Sprintf("line amounts sum to %d, not the purchase amount %d", sum, p.Amount.Minor))
		}
	}
	ve.Check(len(p.Activity) <= maxPurchaseLines, "activity", fmt.Sprintf("at most %d activities", maxPurchaseLines))
	for i, a := range p.Activity {
		f := fmt.Sprintf("activity[%d]", i)
		ve.Check(earnUnitRe.MatchString(a.Unit), f+".unit", "must be a unit such as night, stay, segment or km")
		ve.Check(a.Quantity >= 0 && a.Quantity <= maxActivityQuantity, f+".quantity",
			fmt.Sprintf("must be between 0 and %d", maxActivityQuantity))
	}
	ve.Check(p.EventCode == "" || earnTokenRe.MatchString(p.EventCode), "event_code", "must be a code of letters, digits and . _ : / -")
	ve.Check(len(p.PromoCodes) <= 10, "promo_codes", "at most 10 codes")
	return ve.Err()
}
