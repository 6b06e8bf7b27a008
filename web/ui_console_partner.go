package web

import (
	"errors"
	"fmt"
	"github.com/coalitionhub/hub/abuse"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
)

// The console's partner page, where an operator sets a partner up: profile
// and status, outlets, contract versions (with a diff of two), earn rules
// with a live quote preview, promotions, the prepaid balance and its alert,
// API clients, and webhooks with their failed deliveries. Each form posts
// to a handler here that calls the service method its admin API route
// calls; a refused form comes back on the page with what was typed and the
// message of each field the server named.

// consolePartner is GET /console/partners/:id.
func (s *Server) consolePartner(c *gin.Context) {
	s.partnerPage(c, http.StatusOK, "", nil, nil)
}

// partnerPage renders the partner page; with a form name it is the answer
// to that form refused with err.
func (s *Server) partnerPage(c *gin.Context, status int, form string, posted url.Values, err error) {
	ctx := c.Request.Context()
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	p, lerr := s.deps.Partners.Partner(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	outlets, lerr := s.deps.Partners.Outlets(ctx, id, partners.Page{Limit: 200})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	contracts, lerr := s.deps.Partners.Contracts(ctx, id, partners.Page{Limit: 100})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	clients, lerr := s.deps.Access.Clients(ctx, id, partners.Page{Limit: 100})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	ruleList, lerr := s.deps.Rules.ListRules(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	promos, lerr := s.deps.Rules.ListPromotions(ctx, id, time.Time{})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	endpoints, lerr := s.deps.Webhooks.ListEndpoints(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	failed, lerr := s.deps.Webhooks.FailedDeliveries(ctx, id, 50)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	var prepaid *partners.PrepaidBalance
	if b, err := s.deps.Partners.PrepaidBalance(ctx, id); err == nil {
		prepaid = &b
	} else if !errors.Is(err, partners.ErrNotPrepaid) {
		s.pageError(c, "console", err)
		return
	}
	alert, lerr := s.deps.Partners.PrepaidAlert(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}

	fraud, lerr := s.deps.Abuse.Rules(ctx, id)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	openFlags, lerr := s.deps.Abuse.Flags(ctx, abuse.Filter{PartnerID: id, Status: abuse.StatusOpen, Limit: 200})
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}

	now := s.now().UTC()
	f := newFormState()
	partnerFormDefaults(f, p, contracts, ruleList, now)
	abuseFormDefaults(f, fraud)
	if form != "" {
		f.refused(form, posted, err, partnerFieldAliases[form])
	}
	data := formData(f, gin.H{"Partner": p, "Outlets": outlets, "Contracts": contracts, "Clients": clients,
		"Rules": ruleList, "Promotions": promos, "Endpoints": endpoints, "Failed": failed, "Prepaid": prepaid,
		"Alert": alert, "Scopes": consoleScopes, "Now": now, "Fraud": fraud, "OpenFlags": len(openFlags),
		"AbuseFields": abuseLimitFields,
		"Statuses":    []partners.Status{"onboarding", "active", "suspended", "terminated"}})
	if d, ok := contractDiff(contracts, c.Query("a"), c.Query("b")); ok {
		data["Diff"] = d
	}
	page := consolePage("partners", p.Name, data)
	if err != nil {
		page.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_partner", page)
}

// partnerFieldAliases place server field names on the inputs of each form.
var partnerFieldAliases = map[string]map[string]string{
	"rule": {"earn": "rate", "earn.rate": "rate", "earn.per_minor": "per", "earn.currency": "currency",
		"earn.min_amount_minor": "min_amount", "multipliers": "multipliers", "multipliers.category": "multipliers",
		"multipliers.category.rate": "multipliers", "multipliers.category.category": "multipliers",
		"exclusions": "exclusions", "exclusions.categories": "exclusions", "cap_per_transaction": "cap"},
	"promotion": {"conditions.categories": "categories", "conditions.min_amount": "min_amount",
		"conditions.min_amount.minor": "min_amount", "conditions.min_amount.currency": "min_amount"},
	"topup":    {"amount.minor": "amount", "amount.currency": "amount"},
	"contract": {"roles": "earn", "currency": "issue_price"},
	"abuse":    {},
}

// partnerFormDefaults fills the forms: a new contract version starts from
// the latest one, a new rule from the rule in force when it is a plain
// "points per amount" rule.
func partnerFormDefaults(f formState, p partners.Partner, contracts []partners.Contract, versions []rules.Rule, now time.Time) {
	cur := p.SettlementCurrency
	f.set("contract", "effective_from", now.Format("2006-01-02"))
	f.set("contract", "earn", "on")
	f.set("contract", "burn", "on")
	f.set("contract", "issue_price", "0.01")
	f.set("contract", "redemption_rate", "0.008")
	f.set("contract", "billing", "postpaid")
	f.set("contract", "pending_days", "0")
	f.set("contract", "breakage_share", "0")
	f.set("contract", "operator_fee_rate", "0")
	f.set("contract", "cap_per_transaction", "0")
	f.set("contract", "cap_per_member_day", "0")
	f.set("contract", "prepaid_alert_threshold", "")
	if n := len(contracts); n > 0 {
		k := contracts[n-1]
		f.set("contract", "earn", map[bool]string{true: "on"}[k.Earn])
		f.set("contract", "burn", map[bool]string{true: "on"}[k.Burn])
		f.set("contract", "issue_price", k.IssuePrice.String())
		f.set("contract", "redemption_rate", k.RedemptionRate.String())
		f.set("contract", "billing", string(k.Billing))
		f.set("contract", "pending_days", strconv.Itoa(k.PendingDays))
		f.set("contract", "breakage_share", k.BreakageShare.String())
		f.set("contract", "operator_fee_rate", k.OperatorFeeRate.String())
		f.set("contract", "cap_per_transaction", strconv.FormatInt(k.CapPerTransaction, 10))
		f.set("contract", "cap_per_member_day", strconv.FormatInt(k.CapPerMemberDay, 10))
		if k.PrepaidAlertThreshold > 0 {
			f.set("contract", "prepaid_alert_threshold", majorUnits(k.PrepaidAlertThreshold, k.Currency))
		}
		f.set("contract", "notes", k.Notes)
	}
	f.set("rule", "currency", cur)
	f.set("rule", "rate", "1")
	f.set("rule", "per", "1")
	f.set("rule", "cap", "0")
	f.set("rule", "preview_amount", "100")
	f.set("rule", "preview_currency", cur)
	if len(versions) > 0 {
		d := versions[0].Definition // newest first: the one in force, or else the latest
		for _, r := range versions {
			if !r.EffectiveFrom.After(now) {
				d = r.Definition
				break
			}
		}
		if len(d.Earn) == 1 && d.Earn[0].Kind == rules.KindPerCurrencyUnit {
			e := d.Earn[0]
			f.set("rule", "currency", e.Currency)
			f.set("rule", "rate", e.Rate.String())
			f.set("rule", "per", majorUnits(e.PerMinor, e.Currency))
			if e.MinAmountMinor > 0 {
				f.set("rule", "min_amount", majorUnits(e.MinAmountMinor, e.Currency))
			}
			f.set("rule", "description", d.Description)
			var m []string
			for _, x := range d.Multipliers.Category {
				m = append(m, x.Category+" "+x.Rate.String())
			}
			f.set("rule", "multipliers", strings.Join(m, "\n"))
			f.set("rule", "exclusions", strings.Join(d.Exclusions.Categories, ", "))
			f.set("rule", "cap", strconv.FormatInt(d.CapPerTransaction, 10))
		}
	}
	f.set("promotion", "starts_at", now.Format("2006-01-02T15:04"))
	f.set("promotion", "ends_at", now.AddDate(0, 1, 0).Format("2006-01-02T15:04"))
	f.set("promotion", "effect", "multiplier")
	f.set("promotion", "multiplier", "2")
	f.set("promotion", "funded_by", "partner")
	f.set("outlet", "time_zone", p.TimeZone)
}

// diffRow is one contract term of two versions side by side.
type diffRow struct {
	Key     string // the admin API's field name
	Term    string
	A, B    string
	Changed bool
}

type contractDiffView struct {
	A, B partners.Contract
	Rows []diffRow
}

// contractDiff compares versions a and b (version numbers; by default the
// two latest). ok is false when there are fewer than two versions.
func contractDiff(list []partners.Contract, a, b string) (contractDiffView, bool) {
	if len(list) < 2 {
		return contractDiffView{}, false
	}
	byVersion := map[int]partners.Contract{}
	for _, k := range list {
		byVersion[k.Version] = k
	}
	va, _ := strconv.Atoi(a)
	vb, _ := strconv.Atoi(b)
	ka, okA := byVersion[va]
	kb, okB := byVersion[vb]
	if !okA || !okB {
		ka, kb = list[len(list)-2], list[len(list)-1]
	}
	terms := func(k partners.Contract) []string {
		roles := []string{}
		if k.Earn {
			roles = append(roles, "earn")
		}
		if k.Burn {
			roles = append(roles, "burn")
		}
		threshold := "none"
		if k.PrepaidAlertThreshold > 0 {
			threshold = majorUnits(k.PrepaidAlertThreshold, k.Currency) + " " + k.Currency
		}
		return []string{k.EffectiveFrom.UTC().Format("2 Jan 2006"), strings.Join(roles, ", "),
			k.IssuePrice.String() + " " + k.Currency, k.RedemptionRate.String() + " " + k.Currency, string(k.Billing),
			threshold, strconv.Itoa(k.PendingDays), strconv.FormatInt(k.CapPerTransaction, 10),
			strconv.FormatInt(k.CapPerMemberDay, 10), k.BreakageShare.String(), k.OperatorFeeRate.String(), k.Notes}
	}
	keys := []string{"effective_from", "roles", "issue_price", "redemption_rate", "billing", "prepaid_alert_threshold",
		"pending_days", "cap_per_transaction", "cap_per_member_day", "breakage_share", "operator_fee_rate", "notes"}
	names := []string{"Effective from", "Roles", "Issue price per point", "Redemption rate per point", "Billing",
		"Prepaid alert threshold", "Pending days", "Cap per transaction", "Cap per member and day", "Breakage share",
		"Operator fee rate", "Notes"}
	ta, tb := terms(ka), terms(kb)
	out := contractDiffView{A: ka, B: kb}
	for i, n := range names {
		out.Rows = append(out.Rows, diffRow{Key: keys[i], Term: n, A: ta[i], B: tb[i], Changed: ta[i] != tb[i]})
	}
	return out, true
}

func partnerBack(c *gin.Context, anchor string) string {
	return "/console/partners/" + c.Param("id") + "#" + anchor
}

// consoleCreateOutlet is POST /console/partners/:id/outlets.
func (s *Server) consoleCreateOutlet(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	o, err := s.deps.Partners.CreateOutlet(c.Request.Context(), id, partners.NewOutlet{Code: strings.TrimSpace(c.PostForm("code")),
		Name: strings.TrimSpace(c.PostForm("name")), Address: strings.TrimSpace(c.PostForm("address")),
		TimeZone: strings.TrimSpace(c.PostForm("time_zone"))})
	s.audit(c, "outlet.create", "partner:"+c.Param("id"), c.PostForm("code"), err)
	if err != nil {
		s.partnerPage(c, refusedStatus(err), "outlet", c.Request.PostForm, err)
		return
	}
	okBack(c, partnerBack(c, "outlets"), "Outlet "+o.Code+" added.")
}

// consolePublishContract is POST /console/partners/:id/contracts.
func (s *Server) consolePublishContract(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var v validation.Error
	from := formDate(c.PostForm("effective_from"), "effective_from", &v)
	cur := ""
	if p, err := s.deps.Partners.Partner(c.Request.Context(), id); err == nil {
		cur = p.SettlementCurrency
	}
	in := partners.NewContract{EffectiveFrom: from, Earn: c.PostForm("earn") == "on", Burn: c.PostForm("burn") == "on",
		IssuePrice: formDecimal(c.PostForm("issue_price"), "issue_price", &v), RedemptionRate: formDecimal(c.PostForm("redemption_rate"), "redemption_rate", &v),
		Billing: partners.Billing(c.PostForm("billing")), BreakageShare: formDecimal(c.PostForm("breakage_share"), "breakage_share", &v),
		OperatorFeeRate: formDecimal(c.PostForm("operator_fee_rate"), "operator_fee_rate", &v), Notes: strings.TrimSpace(c.PostForm("notes")),
		PrepaidAlertThreshold: formMinor(c.PostForm("prepaid_alert_threshold"), cur, "prepaid_alert_threshold", &v),
		PendingDays:           int(formInt(c.PostForm("pending_days"), "pending_days", &v)),
		CapPerTransaction:     formInt(c.PostForm("cap_per_transaction"), "cap_per_transaction", &v),
		CapPerMemberDay:       formInt(c.PostForm("cap_per_member_day"), "cap_per_member_day", &v),
		OverrideOverlap:       c.PostForm("override_overlap") == "on"}
	var err error
	if err = v.Err(); err == nil {
		_, err = s.publishContract(c, id, in)
	} else {
		s.audit(c, "contract.publish", "partner:"+c.Param("id"), "effective "+c.PostForm("effective_from"), err)
	}
	if err != nil {
		s.partnerPage(c, refusedStatus(err), "contract", c.Request.PostForm, err)
		return
	}
	okBack(c, partnerBack(c, "contracts"), "Contract published.")
}

// formInt reads a whole number; empty is 0.
func formInt(raw, field string, v *validation.Error) int64 {
	raw = strings.ReplaceAll(strings.TrimSpace(raw), ",", "")
	if raw == "" {
		return 0
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		v.Add(field, "must be a whole number")
	}
	return n
}

// ruleForm reads the console's earn rule form: points per amount in one
// currency, category multipliers ("fuel 2", one a line), excluded
// categories and a cap. It is the common "points per amount" rule; the
// admin API takes any definition.
func ruleForm(c *gin.Context, v *validation.Error) rules.RuleDefinition {
	cur := strings.ToUpper(strings.TrimSpace(c.PostForm("currency")))
	d := rules.RuleDefinition{Description: strings.TrimSpace(c.PostForm("description")),
		Earn: []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Currency: cur,
			Rate:           formDecimal(c.PostForm("rate"), "rate", v),
			PerMinor:       formMinor(c.PostForm("per"), cur, "per", v),
			MinAmountMinor: formMinor(c.PostForm("min_amount"), cur, "min_amount", v)}},
		CapPerTransaction: formInt(c.PostForm("cap"), "cap", v)}
	for _, line := range strings.Split(c.PostForm("multipliers"), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			v.Add("multipliers", "one category and its rate a line, like: fuel 2")
			break
		}
		r, err := decimal.NewFromString(fields[1])
		if err != nil {
			v.Add("multipliers", "the rate of "+fields[0]+" must be a decimal number like 1.5")
			break
		}
		d.Multipliers.Category = append(d.Multipliers.Category, rules.CategoryMultiplier{Category: fields[0], Rate: r})
	}
	for _, x := range strings.Split(c.PostForm("exclusions"), ",") {
		if x = strings.TrimSpace(x); x != "" {
			d.Exclusions.Categories = append(d.Exclusions.Categories, x)
		}
	}
	return d
}

// formDateTime reads a datetime-local input ("2026-01-31T09:00") as UTC.
func formDateTime(raw, field string, v *validation.Error) time.Time {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return time.Time{}
	}
	t, err := time.Parse("2006-01-02T15:04", raw)
	if err != nil {
		v.Add(field, "must be a date and time like 2026-01-31T09:00 (UTC)")
	}
	return t
}

// consolePublishRule is POST /console/partners/:id/earn-rules.
func (s *Server) consolePublishRule(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var v validation.Error
	def := ruleForm(c, &v)
	from := formDateTime(c.PostForm("effective_from"), "effective_from", &v)
	var err error
	var r rules.Rule
	if err = v.Err(); err == nil {
		r, err = s.deps.Rules.PublishRule(c.Request.Context(), id, def, from, staffActor(staff(c)))
	}
	s.audit(c, "earn_rule.publish", "partner:"+c.Param("id"), c.PostForm("description"), err)
	if err != nil {
		s.partnerPage(c, refusedStatus(err), "rule", c.Request.PostForm, err)
		return
	}
	okBack(c, partnerBack(c, "rules"), fmt.Sprintf("Earn rule version %d published.", r.Version))
}

// consoleQuoteRule is POST /console/partners/:id/earn-rules/quote: the
// live preview of the rule form. It answers JSON (the quote, or a problem
// naming the field), for ui_console_partner.js.
func (s *Server) consoleQuoteRule(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var v validation.Error
	def := ruleForm(c, &v)
	cur := strings.ToUpper(strings.TrimSpace(c.PostForm("preview_currency")))
	amount := formMinor(c.PostForm("preview_amount"), cur, "preview_amount", &v)
	p := rules.Purchase{PartnerID: id, MemberTier: strings.TrimSpace(c.PostForm("preview_tier"))}
	p.Amount.Minor, p.Amount.Currency = amount, cur
	if cat := strings.TrimSpace(c.PostForm("preview_category")); cat != "" {
		p.Lines = []rules.Line{{Category: cat, Amount: amount}}
	}
	if code := strings.TrimSpace(c.PostForm("preview_code")); code != "" {
		p.PromoCodes = []string{code}
	}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	q, err := s.quoteRule(c.Request.Context(), &def, p)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, q)
}

// consoleCreatePromotion is POST /console/partners/:id/promotions.
func (s *Server) consoleCreatePromotion(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var v validation.Error
	p, perr := s.deps.Partners.Partner(c.Request.Context(), id)
	n := rules.NewPromotion{PartnerID: id, Name: c.PostForm("name"), Code: c.PostForm("code"),
		StartsAt: formDateTime(c.PostForm("starts_at"), "starts_at", &v), EndsAt: formDateTime(c.PostForm("ends_at"), "ends_at", &v),
		Effect: rules.PromotionEffect(c.PostForm("effect")), FundedBy: rules.Funder(c.PostForm("funded_by")),
		Exclusive: c.PostForm("exclusive") == "on"}
	if n.Effect == rules.EffectMultiplier {
		n.Multiplier = formDecimal(c.PostForm("multiplier"), "multiplier", &v)
	} else {
		n.Bonus = formInt(c.PostForm("bonus"), "bonus", &v)
	}
	for _, x := range strings.Split(c.PostForm("categories"), ",") {
		if x = strings.TrimSpace(x); x != "" {
			n.Conditions.Categories = append(n.Conditions.Categories, x)
		}
	}
	if perr == nil {
		if m := formMinor(c.PostForm("min_amount"), p.SettlementCurrency, "min_amount", &v); m > 0 {
			n.Conditions.MinAmount = &money.Money{Minor: m, Currency: p.SettlementCurrency}
		}
	}
	err := perr
	if err == nil {
		err = v.Err()
	}
	if err == nil {
		_, err = s.deps.Rules.CreatePromotion(c.Request.Context(), n, staffActor(staff(c)))
	}
	s.audit(c, "promotion.create", "partner:"+c.Param("id"), c.PostForm("name"), err)
	if err != nil {
		s.partnerPage(c, refusedStatus(err), "promotion", c.Request.PostForm, err)
		return
	}
	okBack(c, partnerBack(c, "promotions"), "Promotion "+strings.TrimSpace(n.Name)+" created.")
}

// consoleEndPromotion is POST /console/promotions/:id/end.
func (s *Server) consoleEndPromotion(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	p, err := s.deps.Rules.EndPromotion(c.Request.Context(), id, staffActor(staff(c)))
	s.audit(c, "promotion.end", "promotion:"+c.Param("id"), "", err)
	back := "/console/partners"
	if pid, _ := strconv.ParseInt(c.PostForm("partner_id"), 10, 64); pid > 0 {
		back = fmt.Sprintf("/console/partners/%d#promotions", pid)
	}
	if err != nil {
		s.failBack(c, back, err)
		return
	}
	okBack(c, fmt.Sprintf("/console/partners/%d#promotions", p.PartnerID), "Promotion "+p.Name+" ended.")
}

// consoleTopUp is POST /console/partners/:id/prepaid/top-ups.
func (s *Server) consoleTopUp(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	var v validation.Error
	p, err := s.deps.Partners.Partner(c.Request.Context(), id)
	if err == nil {
		amount := formMinor(c.PostForm("amount"), p.SettlementCurrency, "amount", &v)
		v.Check(amount > 0, "amount", "must be more than 0")
		if err = v.Err(); err == nil {
			_, err = s.deps.Partners.TopUp(c.Request.Context(), id, money.Money{Minor: amount, Currency: p.SettlementCurrency},
				strings.TrimSpace(c.PostForm("ref")), staffActor(staff(c)))
		}
	}
	s.audit(c, "prepaid.top_up", "partner:"+c.Param("id"), c.PostForm("amount")+" ref "+c.PostForm("ref"), err)
	if err != nil {
		s.partnerPage(c, refusedStatus(err), "topup", c.Request.PostForm, err)
		return
	}
	okBack(c, partnerBack(c, "prepaid"), "Top-up of "+c.PostForm("amount")+" "+p.SettlementCurrency+" recorded.")
}

// consoleReplayDelivery is POST
// /console/partners/:id/webhook-deliveries/:delivery_id/replay.
func (s *Server) consoleReplayDelivery(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	did, _ := strconv.ParseInt(c.Param("delivery_id"), 10, 64)
	_, err := s.deps.Webhooks.Replay(c.Request.Context(), id, did)
	s.audit(c, "webhook.replay", "partner:"+c.Param("id"), "delivery "+c.Param("delivery_id"), err)
	if err != nil {
		s.failBack(c, partnerBack(c, "webhooks"), err)
		return
	}
	okBack(c, partnerBack(c, "webhooks"), "Delivery "+c.Param("delivery_id")+" queued again.")
}
