// Package demo seeds the demo coalition that `make run` shows: an airline, a
// hotel chain, a bank, a restaurant group and a retailer, each with a
// contract, an earn rule and an API client; operator staff; and a few thousand
// members with six months of earn and burn history.
//
// History is simulated: the seed drives the real services (rules, contracts,
// the ledger, burn consent) with a clock it moves day by day through the past,
// so every transaction is priced, billed and posted exactly as a live one
// would be, just earlier. Seeding is idempotent: partners, staff and members
// are found again by name, email or identifier, and every ledger operation
// carries a deterministic idempotency key, so a second run adds nothing.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
)

// Services are the domain services the seed drives; build them with the
// Now of the clock handed to Seed.
type Services struct {
	DB           *gorm.DB
	Partners     *partners.Service
	Access       *access.Service
	Rules        *rules.Service
	Members      *members.Service
	Consent      *members.BurnConsent
	Ledger       *ledger.Service
	Transactions *points.Transactions
	Programme    *programme.Service
	Exchange     *exchange.Service
	Catalog      *catalog.Service
}

// Options tune the seed.
type Options struct {
	Members       int       // members to enrol (default 2500)
	Months        int       // months of history (default 6)
	Workers       int       // concurrent earns (default 8)
	AdminPassword string    // password of the demo staff accounts; generated when empty
	PartnerSimURL string    // the simulated airline programme (cmd/partnersim); none when empty
	PartnerSimKey string    // the API key partnersim expects
	Out           io.Writer // progress and credentials
	Real          time.Time // the real now; history ends here
}

// Credentials are what a person needs to try the demo.
type Credentials struct {
	Staff map[string]string // email -> password (only when created by this run)
	// Member is a demo member who can sign in to the portal.
	MemberEmail, MemberPassword string
	Clients                     []ClientCredential
}

// ClientCredential is one demo partner's API client.
type ClientCredential struct {
	Partner, ClientID, Secret string
}

type demoPartner struct {
	name     string
	sector   partners.Sector
	currency string
	tz       string
	contract partners.NewContract
	rule     rules.RuleDefinition
	earnProb float64 // share of member activity at this partner
	burns    bool
	shop     func(r *mrand.Rand) points.EarnInput
	id       int64
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func eurPurchase(minMinor, maxMinor int64) func(r *mrand.Rand) points.EarnInput {
	return func(r *mrand.Rand) points.EarnInput {
		return points.EarnInput{Amount: money.Money{Minor: minMinor + r.Int64N(maxMinor-minMinor), Currency: "EUR"}}
	}
}

// coalition is the demo line-up, with prices and rules taken from the
// programmes in DOMAIN-NOTES.md.
func coalition() []*demoPartner {
	return []*demoPartner{
		{name: "SkyWays Airlines", sector: partners.SectorAirline, currency: "EUR", tz: "Europe/Berlin",
			contract: partners.NewContract{Earn: true, Burn: true, IssuePrice: d("0.0080"), RedemptionRate: d("0.0065"),
				Currency: "EUR", Billing: partners.BillingPostpaid, CapPerTransaction: 50000, BreakageShare: d("0.5")},
			rule: rules.RuleDefinition{Description: "1 point per EUR and 250 per flight segment",
				Earn: []rules.EarnComponent{
					{Kind: rules.KindPerCurrencyUnit, Rate: d("1"), Currency: "EUR", PerMinor: 100},
					{Kind: rules.KindPerActivity, Rate: d("250"), Unit: "segment"}},
				Multipliers: rules.Multipliers{Tier: []rules.TierMultiplier{{Tier: "silver", Rate: d("1.5")}, {Tier: "gold", Rate: d("2")}}}},
			earnProb: 0.15, burns: true,
			shop: func(r *mrand.Rand) points.EarnInput {
				segs := 1 + r.Int64N(2)
				return points.EarnInput{Amount: money.Money{Minor: 8000 + r.Int64N(60000), Currency: "EUR"},
					Activity: []rules.Activity{{Unit: "segment", Quantity: segs}}}
			}},
		{name: "Harbour Hotels", sector: partners.SectorHotel, currency: "EUR", tz: "Europe/Lisbon",
			contract: partners.NewContract{Earn: true, Burn: true, IssuePrice: d("0.0075"), RedemptionRate: d("0.0060"),
				Currency: "EUR", Billing: partners.BillingPostpaid, PendingDays: 0, BreakageShare: d("0.5")},
			rule: rules.RuleDefinition{Description: "10 points per EUR and 500 per night",
				Earn: []rules.EarnComponent{
					{Kind: rules.KindPerCurrencyUnit, Rate: d("10"), Currency: "EUR", PerMinor: 100},
					{Kind: rules.KindPerActivity, Rate: d("500"), Unit: "night"}}},
			earnProb: 0.12, burns: true,
			shop: func(r *mrand.Rand) points.EarnInput {
				nights := 1 + r.Int64N(4)
				return points.EarnInput{Amount: money.Money{Minor: nights * (9000 + r.Int64N(9000)), Currency: "EUR"},
					Activity: []rules.Activity{{Unit: "night", Quantity: nights}}}
			}},
		{name: "Meridian Bank", sector: partners.SectorBank, currency: "EUR", tz: "Europe/Berlin",
			contract: partners.NewContract{Earn: true, IssuePrice: d("0.0070"), Currency: "EUR",
				Billing: partners.BillingPrepaid, PrepaidAlertThreshold: 500000, CapPerMemberDay: 5000},
			rule: rules.RuleDefinition{Description: "1 point per EUR of card spend, 3 per EUR on travel",
				Earn:        []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Rate: d("1"), Currency: "EUR", PerMinor: 100}},
				Multipliers: rules.Multipliers{Category: []rules.CategoryMultiplier{{Category: "travel", Rate: d("3")}}},
				Exclusions:  rules.Exclusions{Categories: []string{"cash_withdrawal"}}},
			earnProb: 0.40,
			shop: func(r *mrand.Rand) points.EarnInput {
				amt := 1000 + r.Int64N(25000)
				cat := []string{"groceries", "travel", "fuel", "dining", "cash_withdrawal"}[r.IntN(5)]
				return points.EarnInput{Amount: money.Money{Minor: amt, Currency: "EUR"},
					Lines: []rules.Line{{Category: cat, Amount: amt, Quantity: 1}}}
			}},
		{name: "Olive & Vine Restaurants", sector: partners.SectorRestaurant, currency: "EUR", tz: "Europe/Rome",
			contract: partners.NewContract{Earn: true, Burn: true, IssuePrice: d("0.0090"), RedemptionRate: d("0.0070"),
				Currency: "EUR", Billing: partners.BillingPostpaid},
			rule: rules.RuleDefinition{Description: "5% of the bill, a point being worth half a cent",
				Earn: []rules.EarnComponent{{Kind: rules.KindPercentage, Rate: d("5"), Currency: "EUR",
					PointValueMinor: ptr(d("0.5"))}}},
			earnProb: 0.20, burns: true, shop: eurPurchase(2500, 15000)},
		{name: "Northwind Retail", sector: partners.SectorRetail, currency: "EUR", tz: "Europe/Berlin",
			contract: partners.NewContract{Earn: true, Burn: true, IssuePrice: d("0.0080"), RedemptionRate: d("0.0060"),
				Currency: "EUR", Billing: partners.BillingPostpaid, PendingDays: 14},
			rule: rules.RuleDefinition{Description: "2 points per EUR, double on electronics; gift cards excluded",
				Earn:        []rules.EarnComponent{{Kind: rules.KindPerCurrencyUnit, Rate: d("2"), Currency: "EUR", PerMinor: 100}},
				Multipliers: rules.Multipliers{Category: []rules.CategoryMultiplier{{Category: "electronics", Rate: d("2")}}},
				Exclusions:  rules.Exclusions{Categories: []string{"gift_cards"}}},
			earnProb: 0.13, burns: true,
			shop: func(r *mrand.Rand) points.EarnInput {
				amt := 1500 + r.Int64N(30000)
				cat := []string{"apparel", "electronics", "home", "gift_cards"}[r.IntN(4)]
				return points.EarnInput{Amount: money.Money{Minor: amt, Currency: "EUR"},
					Lines: []rules.Line{{Category: cat, Amount: amt, Quantity: 1}}}
			}},
	}
}

func ptr[T any](v T) *T { return &v }

var allScopes = []access.Scope{access.ScopeMembersRead, access.ScopeMembersWrite, access.ScopePointsEarn,
	access.ScopePointsBurn, access.ScopePointsReverse, access.ScopeCatalogManage, access.ScopeOrdersFulfil,
	access.ScopeExchange, access.ScopeSettlementRead}

// Seed loads the demo coalition. clk must be the clock the services in s
// were built with.
func Seed(ctx context.Context, s Services, clk *clock.Manual, o Options) (Credentials, error) {
	if o.Members <= 0 {
		o.Members = 2500
	}
	if o.Months <= 0 {
		o.Months = 6
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Real.IsZero() {
		o.Real = time.Now()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	start := o.Real.AddDate(0, -o.Months, 0).Truncate(24 * time.Hour)
	clk.Set(start.Add(-time.Hour))
	creds := Credentials{Staff: map[string]string{}}

	pw := o.AdminPassword
	if pw == "" {
		pw = randomSecret()
	}
	for _, st := range []struct {
		email string
		role  access.Role
	}{{"admin@demo.coalition.example", access.RoleAdmin}, {"finance@demo.coalition.example", access.RoleFinance},
		{"support@demo.coalition.example", access.RoleSupport}} {
		_, err := s.Access.CreateStaff(ctx, st.email, pw, st.role)
		switch {
		case err == nil:
			creds.Staff[st.email] = pw
		case errors.Is(err, access.ErrStaffExists) && o.AdminPassword != "":
			creds.Staff[st.email] = o.AdminPassword // the same stable demo password as the first seed
		case errors.Is(err, access.ErrStaffExists):
			creds.Staff[st.email] = "(unchanged from the first seed)"
		default:
			return creds, fmt.Errorf("seed staff: %w", err)
		}
	}

	if err := programmeRules(ctx, s); err != nil {
		return creds, err
	}
	demo := coalition()
	fresh := false // a partner created now means a database that has never been seeded
	for _, p := range demo {
		id, created, err := ensurePartner(ctx, s, p, start)
		if err != nil {
			return creds, err
		}
		p.id = id
		fresh = fresh || created
		cred, err := ensureClient(ctx, s, p)
		if err != nil {
			return creds, err
		}
		creds.Clients = append(creds.Clients, cred)
	}

	if o.PartnerSimURL != "" && s.Exchange != nil {
		if err := ensureExchange(ctx, s, demo[0].id, o); err != nil {
			return creds, err
		}
	}
	var done string
	if err := s.DB.WithContext(ctx).Raw(`SELECT value FROM hub_meta WHERE key = 'demo.history'`).Scan(&done).Error; err != nil {
		return creds, err
	}
	if done != "" && !fresh {
		fmt.Fprintf(o.Out, "demo history already seeded (%s): skipping\n", done)
		clk.Set(o.Real)
		return creds, showcase(ctx, s, o, demo, start)
	}
	// An interrupted run is simply run again: every step is idempotent.
	if err := history(ctx, s, clk, o, demo, start); err != nil {
		return creds, err
	}
	clk.Set(o.Real)
	if err := demoMember(ctx, s, pw, &creds); err != nil {
		return creds, err
	}
	if err := showcase(ctx, s, o, demo, start); err != nil {
		return creds, err
	}
	mark := fmt.Sprintf("%d members, %d months, completed %s", o.Members, o.Months, o.Real.UTC().Format(time.RFC3339))
	err := s.DB.WithContext(ctx).Exec(`INSERT INTO hub_meta (key, value) VALUES ('demo.history', ?)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`, mark).Error
	return creds, err
}

// programmeRules sets the coalition's tiers, expiry, transfers and birthday
// bonus (DOMAIN-NOTES: OR thresholds, 24-month lifetime, one level down at the
// yearly review). Setting them again is harmless.
func programmeRules(ctx context.Context, s Services) error {
	if s.Programme == nil {
		return nil
	}
	if _, err := s.Programme.SetPolicy(ctx, programme.Policy{Currency: "EUR", ExpiryMode: programme.ExpiryFixedLifetime,
		ExpiryMonths: 24, NoticeDays: 30, TransfersEnabled: true, TransferMin: 100, TransferPerTransfer: 20000,
		TransferDaily: 20000, TransferMonthly: 50000, TransferFeeRate: d("0.02"), BirthdayPoints: 500,
		TierWindow: programme.WindowRolling12Months, TierDowngrade: programme.DowngradeOneLevel}); err != nil {
		return fmt.Errorf("seed programme policy: %w", err)
	}
	tiers := []programme.Tier{
		{Code: "blue", Name: "Blue", Rank: 0},
		{Code: "silver", Name: "Silver", Rank: 1, Thresholds: map[programme.Metric]int64{
			programme.MetricPoints: 5000, programme.MetricNights: 10},
			Entitlements: []programme.Entitlement{{Code: "late_checkout", Value: "14:00"}, {Code: "earn_bonus", Value: "50%"}}},
		{Code: "gold", Name: "Gold", Rank: 2, Thresholds: map[programme.Metric]int64{
			programme.MetricPoints: 15000, programme.MetricNights: 30, programme.MetricFlights: 20},
			Entitlements: []programme.Entitlement{{Code: "late_checkout", Value: "16:00"}, {Code: "lounge_access"}, {Code: "earn_bonus", Value: "100%"}}},
		{Code: "platinum", Name: "Platinum", Rank: 3, InvitationOnly: true,
			Entitlements: []programme.Entitlement{{Code: "late_checkout", Value: "18:00"}, {Code: "lounge_access"}, {Code: "suite_upgrade"}}},
	}
	for _, t := range tiers {
		if _, err := s.Programme.PutTier(ctx, t); err != nil {
			return fmt.Errorf("seed tier %s: %w", t.Code, err)
		}
	}
	return nil
}

// ensureExchange registers the airline's miles programme at the simulator.
func ensureExchange(ctx context.Context, s Services, airlineID int64, o Options) error {
	list, err := s.Exchange.Programmes(ctx, airlineID)
	if err != nil {
		return err
	}
	for _, p := range list {
		if p.Code == "skymiles" {
			return nil
		}
	}
	_, err = s.Exchange.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: airlineID, Code: "skymiles",
		Name: "SkyWays SkyMiles", Unit: "miles", Out: &exchange.Ratio{From: 1000, To: 700}, In: &exchange.Ratio{From: 1000, To: 800},
		Increment: 1000, MinPoints: 1000, MaxPoints: 200000, MonthlyMax: 500000, FeePoints: 0,
		BonusBands:  []exchange.BonusBand{{FromPoints: 60000, Percent: d("25")}},
		EndpointURL: o.PartnerSimURL, APIKey: o.PartnerSimKey})
	if err != nil {
		return fmt.Errorf("seed exchange programme: %w", err)
	}
	return nil
}

// demoMember gives the longest-standing demo member a portal password.
func demoMember(ctx context.Context, s Services, pw string, creds *Credentials) error {
	found, err := s.Members.WithEmailDomain(ctx, demoMailDomain, "", 1)
	if err != nil || len(found) == 0 {
		return err
	}
	m := found[0]
	if err := s.Members.SetPassword(ctx, m.ID, pw); err != nil {
		return fmt.Errorf("demo member password: %w", err)
	}
	creds.MemberEmail, creds.MemberPassword = m.Email, pw
	return nil
}

// demoMailDomain is the domain of every demo member's email address; the
// seed finds its own members by it.
const demoMailDomain = "demo.members.example"

func randomSecret() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "demo-" + base64.RawURLEncoding.EncodeToString(b)
}

func ensurePartner(ctx context.Context, s Services, p *demoPartner, start time.Time) (int64, bool, error) {
	if found, ok, err := s.Partners.PartnerNamed(ctx, p.name); err != nil || ok {
		return found.ID, false, err
	}
	created, err := s.Partners.CreatePartner(ctx, partners.NewPartner{Name: p.name, Sector: p.sector,
		SettlementCurrency: p.currency, TimeZone: p.tz})
	if err != nil {
		return 0, false, fmt.Errorf("seed partner %s: %w", p.name, err)
	}
	if _, err := s.Partners.SetPartnerStatus(ctx, created.ID, partners.StatusActive); err != nil {
		return 0, false, fmt.Errorf("activate %s: %w", p.name, err)
	}
	c := p.contract
	c.EffectiveFrom = start.Add(-24 * time.Hour)
	if _, err := s.Partners.PublishContract(ctx, created.ID, c, "seed"); err != nil {
		return 0, false, fmt.Errorf("seed contract of %s: %w", p.name, err)
	}
	if p.contract.Billing == partners.BillingPrepaid {
		if _, err := s.Partners.TopUp(ctx, created.ID, money.Money{Minor: 25_000_000, Currency: p.currency},
			"demo-opening-balance", "seed"); err != nil {
			return 0, false, fmt.Errorf("top up %s: %w", p.name, err)
		}
	}
	if !p.contract.Earn {
		return created.ID, true, nil // a burn-only partner (the charity) has no earn rule
	}
	if _, err := s.Rules.PublishRule(ctx, created.ID, p.rule, start.Add(-time.Hour), "seed"); err != nil {
		return 0, false, fmt.Errorf("seed earn rule of %s: %w", p.name, err)
	}
	return created.ID, true, nil
}

// ensureClient finds or creates the partner's demo API client and gives it a
// fresh secret (secrets are never stored in the clear, so this run's secret is
// the only one that can be printed).
func ensureClient(ctx context.Context, s Services, p *demoPartner) (ClientCredential, error) {
	list, err := s.Access.Clients(ctx, p.id, partners.Page{Limit: 100})
	if err != nil {
		return ClientCredential{}, err
	}
	for _, c := range list {
		if c.Name == "demo POS" && c.Status == "active" {
			sec, err := s.Access.RotateClientSecret(ctx, c.ClientID)
			if err != nil {
				return ClientCredential{}, err
			}
			return ClientCredential{Partner: p.name, ClientID: c.ClientID, Secret: sec.Secret}, nil
		}
	}
	sec, err := s.Access.CreateClient(ctx, p.id, access.NewClient{Name: "demo POS", Scopes: allScopes})
	if err != nil {
		return ClientCredential{}, fmt.Errorf("seed client of %s: %w", p.name, err)
	}
	return ClientCredential{Partner: p.name, ClientID: sec.Client.ClientID, Secret: sec.Secret}, nil
}

var givenNames = []string{"Ana", "Ben", "Chiara", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
	"Katarina", "Luca", "Maya", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tara", "Umberto", "Vera", "Wim", "Yara", "Zoe"}
var familyNames = []string{"Silva", "Meyer", "Rossi", "Novak", "Kaya", "Haddad", "Larsen", "Dubois", "Costa", "Weber",
	"Ivanova", "Moretti", "Jansen", "Berg", "Petrova", "Santos", "Fischer", "Romano", "Nowak", "Lindqvist"}

// history enrols members spread over the period and simulates their
// activity day by day.
func history(ctx context.Context, s Services, clk *clock.Manual, o Options, demo []*demoPartner, start time.Time) error {
	r := mrand.New(mrand.NewPCG(20261122, 1))
	days := int(o.Real.Sub(start).Hours() / 24)
	type member struct {
		id      int64
		joined  int
		partner *demoPartner
	}
	ms := make([]member, o.Members)
	for i := range ms {
		ms[i].joined = int(float64(days) * r.Float64() * r.Float64()) // more early joiners
		ms[i].partner = demo[r.IntN(len(demo))]
	}
	progress := newProgress(o.Out, "enrolling members", o.Members)
	for day := 0; day < days; day++ {
		clk.Set(start.AddDate(0, 0, day).Add(9 * time.Hour))
		for i := range ms {
			if ms[i].joined != day {
				continue
			}
			g, f := givenNames[r.IntN(len(givenNames))], familyNames[r.IntN(len(familyNames))]
			email := fmt.Sprintf("%s.%s.%d@%s", strings.ToLower(g), strings.ToLower(f), i, demoMailDomain)
			ident := members.Identifier{Type: members.IdentifierEmail, Value: email}
			m, _, err := s.Members.Enrol(ctx, members.EnrolRequest{Identifier: ident,
				Profile: members.Profile{GivenName: g, FamilyName: f, Email: email, Locale: "en"},
				Consent: members.Consent{Marketing: r.IntN(3) == 0, Source: "enrolment"}, SourcePartnerID: ms[i].partner.id,
				Actor: fmt.Sprintf("partner:%d", ms[i].partner.id)})
			if err != nil {
				return fmt.Errorf("enrol demo member %d: %w", i, err)
			}
			ms[i].id = m.ID
			progress.add(1)
		}
	}
	progress.done()

	// Activity: each member does something at a partner about once a month.
	type event struct {
		member *member
		p      *demoPartner
		at     time.Time
		burn   bool
		seq    int
	}
	byDay := make([][]event, days)
	seq := 0
	for i := range ms {
		m := &ms[i]
		for day := m.joined; day < days; day++ {
			if r.IntN(30) != 0 {
				continue
			}
			p := pick(r, demo)
			burn := p.burns && r.IntN(6) == 0
			at := start.AddDate(0, 0, day).Add(time.Duration(8*3600+r.IntN(12*3600)) * time.Second)
			byDay[day] = append(byDay[day], event{member: m, p: p, at: at, burn: burn, seq: seq})
			seq++
		}
	}
	progress = newProgress(o.Out, "simulating activity", seq)
	var failures atomic.Int64
	for day := 0; day < days; day++ {
		clk.Set(start.AddDate(0, 0, day+1))
		evs := byDay[day]
		work := make(chan event)
		var wg sync.WaitGroup
		errc := make(chan error, 1)
		for w := 0; w < o.Workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ev := range work {
					err := simulate(ctx, s, ev.member.id, ev.p, ev.at, ev.burn, ev.seq)
					if err != nil {
						if !expected(err) {
							select {
							case errc <- fmt.Errorf("demo event %d: %w", ev.seq, err):
							default:
							}
						}
						failures.Add(1)
					}
					progress.add(1)
				}
			}()
		}
		for _, ev := range evs {
			work <- ev
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
		}
	}
	progress.done()
	fmt.Fprintf(o.Out, "demo history: %d events, %d refused as a live hub would (caps, insufficient points)\n", seq, failures.Load())
	return nil
}

func pick(r *mrand.Rand, demo []*demoPartner) *demoPartner {
	x := r.Float64()
	for _, p := range demo {
		if x < p.earnProb {
			return p
		}
		x -= p.earnProb
	}
	return demo[len(demo)-1]
}

// expected are refusals a live programme meets too; the seed counts them.
func expected(err error) bool {
	return errors.Is(err, ledger.ErrInsufficientPoints) || errors.Is(err, points.ErrDailyCapReached) || errors.Is(err, points.ErrNothingToEarn) ||
		errors.Is(err, partners.ErrPrepaidExhausted) || errors.Is(err, ledger.ErrAccountBlocked)
}

// simulate performs one event. Its randomness and its idempotency come from
// seq alone, so a re-run after an interruption replays what was done.
func simulate(ctx context.Context, s Services, memberID int64, p *demoPartner, at time.Time, burn bool, seq int) error {
	r := mrand.New(mrand.NewPCG(uint64(seq), 99))
	principal := access.Principal{PartnerID: p.id}
	scope := fmt.Sprintf("partner:%d", p.id)
	idem := func(kind string) ledger.Idempotency {
		key := fmt.Sprintf("demo-%s-%d", kind, seq)
		h := sha256.Sum256([]byte(key))
		return ledger.Idempotency{Scope: scope, Key: key, RequestHash: h[:]}
	}
	if burn {
		bal, err := s.Ledger.Balance(ctx, memberID)
		if err != nil {
			return err
		}
		if bal.Available < 500 {
			return ledger.ErrInsufficientPoints
		}
		pts := int64(bal.Available) / 2 / 100 * 100
		code, err := s.Consent.IssueCode(ctx, memberID)
		if err != nil {
			return err
		}
		_, err = s.Transactions.Burn(ctx, principal, idem("burn"),
			points.BurnInput{MemberID: memberID, Points: pts, RedemptionCode: code.Code, Capture: true,
				ExternalRef: fmt.Sprintf("demo-receipt-%d", seq), OccurredAt: at})
		return err
	}
	in := p.shop(r)
	in.MemberID = memberID
	in.OccurredAt = at
	in.ExternalRef = fmt.Sprintf("demo-%d", seq)
	_, err := s.Transactions.Earn(ctx, principal, idem("earn"), in)
	return err
}

// progress draws a one-line progress bar for a long step.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	label string
	total int
	n     int
	last  time.Time
	start time.Time
}

func newProgress(out io.Writer, label string, total int) *progress {
	return &progress{out: out, label: label, total: total, start: time.Now()}
}

func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if time.Since(p.last) > 500*time.Millisecond || p.n == p.total {
		p.last = time.Now()
		p.draw()
	}
}

func (p *progress) draw() {
	width := 30
	filled := 0
	if p.total > 0 {
		filled = p.n * width / p.total
	}
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 0.001)
	fmt.Fprintf(p.out, "\r%-22s [%s%s] %d/%d  %.0f/s", p.label, strings.Repeat("#", filled),
		strings.Repeat(".", width-filled), p.n, p.total, rate)
}

func (p *progress) done() {
	p.mu.Lock()
	p.draw()
	p.mu.Unlock()
	fmt.Fprintln(p.out)
}

// charity is the demo's charity partner: it issues nothing and takes points
// as donations through the catalog.
var charity = &demoPartner{name: "Harbour Seals Trust", sector: partners.SectorCharity, currency: "EUR", tz: "Europe/Lisbon",
	contract: partners.NewContract{Burn: true, RedemptionRate: d("0.0050"), Currency: "EUR", Billing: partners.BillingPostpaid}}

// showcase adds what the portal and console should have to show on a fresh
// demo, on top of the random history: catalog rewards with stock (one at the
// charity partner), a spring bonus expiring within 30 days for the first
// demo members, and points still pending for the demo member (a purchase at
// the retailer, whose points wait out the return period). Every step is
// idempotent, so a second seed adds nothing.
func showcase(ctx context.Context, s Services, o Options, demo []*demoPartner, start time.Time) error {
	byName := map[partners.Sector]int64{}
	for _, p := range demo {
		byName[p.sector] = p.id
	}
	charityID, _, err := ensurePartner(ctx, s, charity, start)
	if err != nil {
		return err
	}
	if s.Catalog != nil {
		if err := showcaseRewards(ctx, s, byName, charityID); err != nil {
			return err
		}
	}
	found, err := s.Members.WithEmailDomain(ctx, demoMailDomain, members.StatusActive, 40)
	if err != nil {
		return err
	}
	ids := make([]int64, len(found))
	for i, m := range found {
		ids[i] = m.ID
	}
	for i, id := range ids {
		exp := o.Real.UTC().Truncate(24*time.Hour).AddDate(0, 0, 4+i%24).Add(23 * time.Hour)
		key := fmt.Sprintf("demo-spring-bonus-%d", id)
		if _, err := s.Ledger.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "demo", Key: key, RequestHash: []byte(key)},
			MemberID: id, OperatorFunded: ledger.Points(500 + 250*int64(i%6)), OccurredAt: o.Real.Add(-time.Hour), ExpiresAt: &exp,
			ExternalRef: "spring-bonus"}); err != nil {
			return fmt.Errorf("seed expiring bonus of member %d: %w", id, err)
		}
	}
	if len(ids) > 0 && byName[partners.SectorRetail] != 0 {
		retail := byName[partners.SectorRetail]
		if _, err := s.Transactions.Earn(ctx, access.Principal{PartnerID: retail},
			ledger.Idempotency{Scope: fmt.Sprintf("partner:%d", retail), Key: "demo-pending-purchase"},
			points.EarnInput{MemberID: ids[0], Amount: money.Money{Minor: 34_900, Currency: "EUR"},
				Lines:      []rules.Line{{Category: "electronics", Amount: 34_900, Quantity: 1}},
				OccurredAt: o.Real.Add(-2 * time.Hour), ExternalRef: "demo-pending-purchase"}); err != nil && !expected(err) &&
			!errors.Is(err, ledger.ErrIdempotencyMismatch) { // a later seed: the purchase is in, at an earlier time

			return fmt.Errorf("seed pending points: %w", err)
		}
	}
	if o.PartnerSimURL != "" && s.Exchange != nil {
		if err := pendingExchange(ctx, s, o.Real); err != nil {
			return err
		}
	}
	return showcaseMail(ctx, s, o)
}

// pendingExchange gives the demo member (the one with a portal password) an
// exchange to SkyMiles that stays pending: its account starts with HOLD,
// which the simulator of `make run` (-hold-prefix HOLD) keeps pending. Once.
func pendingExchange(ctx context.Context, s Services, now time.Time) error {
	found, err := s.Members.WithEmailDomain(ctx, demoMailDomain, "", 1)
	if err != nil || len(found) == 0 {
		return err
	}
	id := found[0].ID
	if done, err := s.Exchange.List(ctx, exchange.Filter{MemberID: id, Limit: 1}); err != nil || len(done) > 0 {
		return err
	}
	progs, err := s.Exchange.Programmes(ctx, 0)
	if err != nil {
		return err
	}
	var prog int64
	for _, p := range progs {
		if p.Code == "skymiles" {
			prog = p.ID
		}
	}
	if prog == 0 {
		return nil
	}
	key := "demo-exchange-points"
	if _, err := s.Ledger.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "demo", Key: key, RequestHash: []byte(key)},
		MemberID: id, OperatorFunded: 2000, OccurredAt: now.Add(-time.Hour), ExternalRef: "welcome-miles"}); err != nil &&
		!errors.Is(err, ledger.ErrIdempotencyMismatch) {
		return fmt.Errorf("seed exchange points: %w", err)
	}
	if _, err := s.Exchange.Link(ctx, id, prog, "HOLD-0001"); err != nil {
		return fmt.Errorf("seed pending exchange: %w", err)
	}
	q, err := s.Exchange.Quote(ctx, id, prog, 1000)
	if err != nil {
		return fmt.Errorf("seed pending exchange: %w", err)
	}
	if _, err := s.Exchange.Confirm(ctx, id, q.ID); err != nil {
		return fmt.Errorf("seed pending exchange: %w", err)
	}
	return nil
}

// showcaseMail makes the mail catcher of `make run` show notification mail
// at once, rather than after the nightly jobs: the digest of yesterday's
// earns (members with marketing consent) and the "points expiring" notices
// of the bonus points above. Both are the jobs' own idempotent steps, so a
// later run of the jobs sends nothing twice.
func showcaseMail(ctx context.Context, s Services, o Options) error {
	if _, err := s.Members.SendDigests(ctx, o.Real.UTC().AddDate(0, 0, -1), 500); err != nil {
		return fmt.Errorf("seed digest mail: %w", err)
	}
	if s.Programme != nil {
		if _, err := s.Programme.RunExpiry(ctx, 500); err != nil {
			return fmt.Errorf("seed expiry notices: %w", err)
		}
	}
	return nil
}

// showcaseRewards puts rewards with stock in the catalog, once.
func showcaseRewards(ctx context.Context, s Services, partnerOf map[partners.Sector]int64, charityID int64) error {
	have := map[string]bool{}
	for cursor := ""; ; {
		list, next, err := s.Catalog.Rewards(ctx, catalog.RewardQuery{Cursor: cursor, Limit: 100})
		if err != nil {
			return err
		}
		for _, r := range list {
			have[r.Title] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	for _, r := range []struct {
		partner int64
		in      catalog.RewardInput
	}{
		{charityID, catalog.RewardInput{Title: "Feed a rescued seal for a week", Description: "Harbour Seals Trust turns your points into fish and care for one seal.",
			Category: catalog.CategoryCharity, PricePoints: 1_000, Value: money.Money{Minor: 500, Currency: "EUR"}, Fulfilment: catalog.FulfilmentInstant}},
		{partnerOf[partners.SectorHotel], catalog.RewardInput{Title: "Weekend night in Lisbon", Description: "One night for two with breakfast at any Harbour Hotels property.",
			Category: catalog.CategoryHotelNight, PricePoints: 12_000, Value: money.Money{Minor: 14_000, Currency: "EUR"}, StockTotal: ptr(int64(25)), Fulfilment: catalog.FulfilmentAsync}},
		{partnerOf[partners.SectorRestaurant], catalog.RewardInput{Title: "Dinner for two", Description: "A three-course dinner at Olive & Vine.",
			Category: catalog.CategoryDining, PricePoints: 6_000, Value: money.Money{Minor: 8_000, Currency: "EUR"}, StockTotal: ptr(int64(60)), Fulfilment: catalog.FulfilmentAsync}},
		{partnerOf[partners.SectorAirline], catalog.RewardInput{Title: "Business class upgrade", Description: "Upgrade one SkyWays flight within Europe.",
			Category: catalog.CategoryFlight, PricePoints: 40_000, Value: money.Money{Minor: 30_000, Currency: "EUR"}, StockTotal: ptr(int64(10)), Fulfilment: catalog.FulfilmentAsync}},
		{partnerOf[partners.SectorRetail], catalog.RewardInput{Title: "Northwind gift card, 25 EUR", Description: "A code for any Northwind shop or the web shop.",
			Category: catalog.CategoryVoucher, PricePoints: 4_000, Value: money.Money{Minor: 2_500, Currency: "EUR"}, StockTotal: ptr(int64(200)), Fulfilment: catalog.FulfilmentAsync}},
	} {
		if r.partner == 0 || have[r.in.Title] {
			continue
		}
		if _, err := s.Catalog.CreateReward(ctx, r.partner, r.in); err != nil {
			return fmt.Errorf("seed reward %s: %w", r.in.Title, err)
		}
	}
	return nil
}
