package campaigns_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type env struct {
	t       *testing.T
	db      *gorm.DB
	clk     *clock
	ledger  *ledger.Service
	members *members.Service
	prog    *programme.Service
	svc     *campaigns.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := testdb.New(t)
	clk := &clock{t: day(2025, 1, 1)}
	l := ledger.NewService(db, clk.Now)
	m := members.NewService(db, l, clk.Now)
	c := members.NewBurnConsent(db, clk.Now, members.DefaultConsentPolicy)
	p := programme.NewService(db, l, m, c, clk.Now)
	svc := campaigns.NewService(db, m, l, p, jobs.NewService(db, clk.Now, nil), clk.Now)
	return &env{t: t, db: db, clk: clk, ledger: l, members: m, prog: p, svc: svc}
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

func (e *env) enrol(email string, at time.Time, consent bool) int64 {
	e.t.Helper()
	e.clk.Set(at)
	m, _, err := e.members.Enrol(context.Background(), members.EnrolRequest{
		Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile:    members.Profile{GivenName: "Test", FamilyName: "Member", Email: email},
		Consent:    members.Consent{Marketing: consent, Source: "enrolment"}, Actor: "test"})
	if err != nil {
		e.t.Fatalf("enrol %s: %v", email, err)
	}
	return m.ID
}

// earn posts points earned at a partner at time at.
func (e *env) earn(member, partner, points int64, at time.Time) {
	e.t.Helper()
	e.clk.Set(at)
	if _, err := e.ledger.Earn(context.Background(), ledger.EarnRequest{
		Idem:     ledger.Idempotency{Scope: "test", Key: fmt.Sprintf("earn-%d-%d-%d", member, partner, at.Unix())},
		MemberID: member, PartnerID: partner, Points: ledger.Points(points), OccurredAt: at, ExternalRef: "t"}); err != nil {
		e.t.Fatalf("earn: %v", err)
	}
}

func (e *env) balance(member int64) int64 {
	e.t.Helper()
	b, err := e.ledger.Balance(context.Background(), member)
	if err != nil {
		e.t.Fatal(err)
	}
	return int64(b.Total)
}

func (e *env) audit() {
	e.t.Helper()
	rep, err := ledger.Audit(context.Background(), e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		e.t.Fatalf("ledger audit: %v %+v", err, rep)
	}
}

func (e *env) segment(name string, conds ...campaigns.Condition) campaigns.Segment {
	e.t.Helper()
	if conds == nil {
		conds = []campaigns.Condition{}
	}
	sg, err := e.svc.SaveSegment(context.Background(), 0, name, campaigns.Definition{All: conds}, "staff:test")
	if err != nil {
		e.t.Fatalf("save segment: %v", err)
	}
	return sg
}

func cond(field, op string, value any) campaigns.Condition {
	raw, _ := json.Marshal(value)
	return campaigns.Condition{Field: field, Op: op, Value: raw}
}

// coalition is five members with different data; m5 is suspended and never
// in a segment. The clock ends on 2025-12-01.
type coalition struct{ m1, m2, m3, m4, m5 int64 }

func (e *env) coalition() coalition {
	e.t.Helper()
	ctx := context.Background()
	var c coalition
	c.m1 = e.enrol("m1@example.com", day(2025, 1, 10), true)
	c.m2 = e.enrol("m2@example.com", day(2025, 3, 1), false)
	c.m3 = e.enrol("m3@example.com", day(2025, 5, 1), true)
	c.m4 = e.enrol("m4@example.com", day(2025, 2, 1), true)
	c.m5 = e.enrol("m5@example.com", day(2025, 1, 1), true)
	e.earn(c.m1, 1, 500, day(2025, 6, 1))
	e.earn(c.m2, 2, 2000, day(2025, 11, 20))
	e.earn(c.m4, 1, 100, day(2025, 11, 25))
	e.earn(c.m5, 1, 900, day(2025, 11, 25))
	for _, t := range []programme.Tier{{Code: "blue", Name: "Blue", Rank: 0}, {Code: "gold", Name: "Gold", Rank: 1, InvitationOnly: true}} {
		if _, err := e.prog.PutTier(ctx, t); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.prog.GrantTier(ctx, programme.Grant{MemberID: c.m1, TierCode: "gold", Reason: "status match", Actor: "test"}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.members.Suspend(ctx, c.m5, "fraud check", "test"); err != nil {
		e.t.Fatal(err)
	}
	e.clk.Set(day(2025, 12, 1))
	return c
}

// members lists the members a definition selects, through a segment's
// export path (SegmentMembers), and checks Count agrees.
func (e *env) selected(d campaigns.Definition) []int64 {
	e.t.Helper()
	ctx := context.Background()
	sg, err := e.svc.SaveSegment(ctx, 0, "probe", d, "test")
	if err != nil {
		e.t.Fatalf("save %+v: %v", d, err)
	}
	var out []int64
	if err := e.svc.SegmentMembers(ctx, sg.ID, func(ids []int64) error { out = append(out, ids...); return nil }); err != nil {
		e.t.Fatal(err)
	}
	n, err := e.svc.Count(ctx, d)
	if err != nil {
		e.t.Fatal(err)
	}
	if n != int64(len(out)) {
		e.t.Fatalf("count %d, but the segment's members are %v", n, out)
	}
	if out == nil {
		out = []int64{}
	}
	return out
}

func TestSegmentCompiler(t *testing.T) {
	e := newEnv(t)
	c := e.coalition()
	all := func(cs ...campaigns.Condition) campaigns.Definition { return campaigns.Definition{All: cs} }
	cases := []struct {
		name string
		def  campaigns.Definition
		want []int64
	}{
		{"no condition: every active member", all(), []int64{c.m1, c.m2, c.m3, c.m4}},
		{"tier in", all(cond("tier", "in", []string{"gold"})), []int64{c.m1}},
		{"tier in the base tier", all(cond("tier", "in", []string{"blue"})), []int64{c.m2, c.m3, c.m4}},
		{"tier not in", all(cond("tier", "not_in", []string{"gold"})), []int64{c.m2, c.m3, c.m4}},
		{"enrolled before", all(cond("enrolled", "before", "2025-02-01")), []int64{c.m1}},
		{"enrolled on or after", all(cond("enrolled", "on_or_after", "2025-02-01")), []int64{c.m2, c.m3, c.m4}},
		{"enrolled between", all(cond("enrolled", "on_or_after", "2025-02-01"), cond("enrolled", "before", "2025-04-01")), []int64{c.m2, c.m4}},
		{"partner used", all(cond("partners", "used_any", []int64{1})), []int64{c.m1, c.m4}},
		{"either partner used", all(cond("partners", "used_any", []int64{1, 2})), []int64{c.m1, c.m2, c.m4}},
		{"both partners used", all(cond("partners", "used_any", []int64{1}), cond("partners", "used_any", []int64{2})), []int64{}},
		{"partner not used", all(cond("partners", "used_none", []int64{1})), []int64{c.m2, c.m3}},
		{"active in the last 30 days", all(cond("last_activity", "within_days", 30)), []int64{c.m2, c.m4}},
		{"not active in the last 30 days", all(cond("last_activity", "not_within_days", 30)), []int64{c.m1, c.m3}},
		{"balance at least", all(cond("balance", "at_least", 500)), []int64{c.m1, c.m2}},
		{"balance at most", all(cond("balance", "at_most", 100)), []int64{c.m3, c.m4}},
		{"balance exactly zero", all(cond("balance", "at_most", 0)), []int64{c.m3}},
		{"marketing consent", all(cond("marketing_consent", "is", true)), []int64{c.m1, c.m3, c.m4}},
		{"no marketing consent", all(cond("marketing_consent", "is", false)), []int64{c.m2}},
		{"consent, points and a partner", all(cond("marketing_consent", "is", true), cond("balance", "at_least", 100),
			cond("partners", "used_any", []int64{1})), []int64{c.m1, c.m4}},
		{"gold and recently active", all(cond("tier", "in", []string{"gold"}), cond("last_activity", "within_days", 30)), []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.selected(tc.def); !slices.Equal(got, tc.want) {
				t.Fatalf("selected %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSegmentDefinitionErrorsNameTheCondition(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		cond  campaigns.Condition
		field string
	}{
		{cond("age", "is", 3), "definition.all[0].field"},
		{cond("tier", "before", []string{"gold"}), "definition.all[0].op"},
		{cond("tier", "in", "gold"), "definition.all[0].value"},
		{cond("enrolled", "before", "01/02/2025"), "definition.all[0].value"},
		{cond("partners", "used_any", []int64{0}), "definition.all[0].value"},
		{cond("last_activity", "within_days", 1.5), "definition.all[0].value"},
		{cond("balance", "at_least", "100"), "definition.all[0].value"},
		{cond("marketing_consent", "is", nil), "definition.all[0].value"},
	}
	for _, tc := range cases {
		_, err := e.svc.Count(context.Background(), campaigns.Definition{All: []campaigns.Condition{tc.cond}})
		var ve *validation.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tc.field {
			t.Errorf("%s %s %s: got %v; want a validation error naming %s", tc.cond.Field, tc.cond.Op, tc.cond.Value, err, tc.field)
		}
	}
}

func (e *env) campaign(n campaigns.NewCampaign) campaigns.Campaign {
	e.t.Helper()
	if n.Name == "" {
		n.Name, n.Reason = "Winter bonus", "winter bonus"
	}
	c, err := e.svc.CreateCampaign(context.Background(), n, "staff:test")
	if err != nil {
		e.t.Fatalf("create campaign: %v", err)
	}
	return c
}

func (e *env) run(id int64) campaigns.Report {
	e.t.Helper()
	rep, err := e.svc.Run(context.Background(), id, "staff:test", nil)
	if err != nil {
		e.t.Fatalf("run campaign: %v", err)
	}
	return rep
}

func TestCampaignRunTwiceGrantsOnceFundedByTheOperator(t *testing.T) {
	e := newEnv(t)
	c := e.coalition()
	sg := e.segment("consenting", cond("marketing_consent", "is", true))
	camp := e.campaign(campaigns.NewCampaign{Kind: campaigns.KindPoints, SegmentID: sg.ID, Points: 150, BudgetPoints: 10_000})
	before := map[int64]int64{c.m1: e.balance(c.m1), c.m2: e.balance(c.m2), c.m3: e.balance(c.m3), c.m4: e.balance(c.m4)}

	first := e.run(camp.ID)
	if first.Granted != 3 || first.AlreadyGranted != 0 || first.Cost != 450 || first.Spent != 450 || first.Failed != 0 {
		t.Fatalf("first run %+v; want 3 granted at a cost of 450", first)
	}
	second := e.run(camp.ID)
	if second.Granted != 0 || second.AlreadyGranted != 3 || second.Cost != 0 || second.Spent != 450 {
		t.Fatalf("second run %+v; want nothing granted, 3 already", second)
	}
	for id, want := range map[int64]int64{c.m1: 150, c.m2: 0, c.m3: 150, c.m4: 150} {
		if got := e.balance(id) - before[id]; got != want {
			t.Errorf("member %d gained %d points, want %d", id, got, want)
		}
	}
	// The grant is an operator-funded earn naming the campaign.
	list, _, err := e.ledger.List(context.Background(), ledger.Filter{MemberID: c.m3})
	if err != nil || len(list) != 1 {
		t.Fatalf("m3's transactions: %v %v", list, err)
	}
	tr := list[0]
	var details map[string]any
	_ = json.Unmarshal(tr.Details, &details)
	if tr.Type != ledger.TypeEarn || tr.PartnerID != 0 || details["funded_by"] != "operator" || details["campaign_id"] != float64(camp.ID) {
		t.Fatalf("grant %+v details %v; want an operator-funded earn naming campaign %d", tr, details, camp.ID)
	}
	funded := false
	for _, en := range tr.Entries {
		funded = funded || (en.Kind == ledger.KindOperatorPromotions && en.Points == -150)
	}
	if !funded {
		t.Fatalf("entries %+v; want -150 on operator_promotions", tr.Entries)
	}
	e.audit()
}

func TestConcurrentRunsGrantOnceWithinTheBudget(t *testing.T) {
	e := newEnv(t)
	var ids []int64
	for i := range 30 {
		ids = append(ids, e.enrol(fmt.Sprintf("c%d@example.com", i), day(2025, 3, 1), true))
	}
	sg := e.segment("everyone")
	// 1,550 points at 100 each: 15 members fit, the 16th would exceed it.
	camp := e.campaign(campaigns.NewCampaign{Kind: campaigns.KindPoints, SegmentID: sg.ID, Points: 100, BudgetPoints: 1550})
	pv, err := e.svc.Preview(context.Background(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Members != 30 || pv.ToGrant != 15 || pv.OverBudget != 15 || pv.Cost != 1500 || pv.CostUncapped != 3000 {
		t.Fatalf("preview %+v; want 30 members, 15 within the budget for 1500, 3000 uncapped", pv)
	}
	var wg sync.WaitGroup
	reports := make([]campaigns.Report, 3)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := e.svc.Run(context.Background(), camp.ID, "staff:test", nil)
			if err != nil {
				t.Errorf("run %d: %v", i, err)
			}
			reports[i] = rep
		}()
	}
	wg.Wait()
	var granted, cost int64
	for _, r := range reports {
		granted += r.Granted
		cost += r.Cost
		if r.Granted+r.AlreadyGranted+r.SkippedBudget+r.Failed != 30 {
			t.Errorf("report %+v does not account for 30 members", r)
		}
	}
	if granted != 15 || cost != 1500 {
		t.Fatalf("three runs at once granted %d members for %d points; want 15 for 1500 (%+v)", granted, cost, reports)
	}
	got, err := e.svc.Campaign(context.Background(), camp.ID)
	if err != nil || got.SpentPoints != 1500 {
		t.Fatalf("campaign %+v %v; want 1500 spent", got, err)
	}
	var total int64
	for _, id := range ids {
		total += e.balance(id)
	}
	if total != 1500 {
		t.Fatalf("members hold %d points; want 1500", total)
	}
	// The last run reports the rest as over the budget.
	again := e.run(camp.ID)
	if again.SkippedBudget != 15 || again.AlreadyGranted != 15 || again.Granted != 0 {
		t.Fatalf("a run after the budget is spent %+v; want 15 already granted, 15 skipped", again)
	}
	e.audit()
}

func TestBudgetCapHoldsExactly(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.enrol(fmt.Sprintf("b%d@example.com", i), day(2025, 3, 1), true)
	}
	sg := e.segment("everyone")
	camp := e.campaign(campaigns.NewCampaign{Kind: campaigns.KindPoints, SegmentID: sg.ID, Points: 100, BudgetPoints: 300})
	rep := e.run(camp.ID)
	if rep.Granted != 3 || rep.SkippedBudget != 1 || rep.Cost != 300 || rep.Spent != 300 {
		t.Fatalf("report %+v; want 3 granted for exactly 300, 1 skipped", rep)
	}
}

func TestTierCampaign(t *testing.T) {
	e := newEnv(t)
	c := e.coalition()
	sg := e.segment("big balances", cond("balance", "at_least", 1000))
	camp := e.campaign(campaigns.NewCampaign{Kind: campaigns.KindTier, SegmentID: sg.ID, TierCode: "gold"})
	rep := e.run(camp.ID)
	if rep.Granted != 1 || rep.Cost != 0 {
		t.Fatalf("report %+v; want m2 granted gold", rep)
	}
	if tier, err := e.prog.MemberTier(context.Background(), c.m2); err != nil || tier != "gold" {
		t.Fatalf("m2's tier %q %v; want gold", tier, err)
	}
	if rep := e.run(camp.ID); rep.AlreadyGranted != 1 || rep.Granted != 0 {
		t.Fatalf("second run %+v; want 1 already granted", rep)
	}
}

func TestGoodwillListFromCSV(t *testing.T) {
	e := newEnv(t)
	c := e.coalition()
	ctx := context.Background()
	card := func(id int64) string {
		m, err := e.members.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m.CardNumber
	}
	bad := "member,points,reason\n" +
		fmt.Sprintf("%d,100,late flight\n", c.m1) + // line 2: good
		fmt.Sprintf("%d,ten,late flight\n", c.m2) + // line 3: points
		"nobody@example.com,50,lost bag\n" + // line 4: no such member
		fmt.Sprintf("%s,70,\n", card(c.m1)) + // line 5: m1 again (and no reason)
		fmt.Sprintf("%d,20,closed\n", c.m5) // line 6: suspended
	_, err := e.svc.CreateGoodwill(ctx, campaigns.Goodwill{Name: "Goodwill"}, strings.NewReader(bad), "staff:test")
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("a bad file: %v; want a validation error", err)
	}
	var fields []string
	for _, f := range ve.Fields {
		fields = append(fields, f.Field)
	}
	want := []string{"lines[3].points", "lines[4].member", "lines[5].reason", "lines[5].member", "lines[6].member"}
	if !slices.Equal(fields, want) {
		t.Fatalf("errors %v; want %v", ve.Fields, want)
	}
	var n int64
	if err := e.db.Raw(`SELECT (SELECT count(*) FROM campaigns) + (SELECT count(*) FROM campaign_list_members)`).Scan(&n).Error; err != nil || n != 0 {
		t.Fatalf("a bad file wrote %d rows (%v); want none", n, err)
	}

	good := "Member,Points,Reason\n" +
		fmt.Sprintf("%d,100,late flight\n", c.m1) +
		fmt.Sprintf("%s,250,lost bag\n", card(c.m3)) +
		"m4@example.com,40,\n"
	camp, err := e.svc.CreateGoodwill(ctx, campaigns.Goodwill{Name: "Goodwill", Reason: "service recovery"}, strings.NewReader(good), "staff:test")
	if err != nil {
		t.Fatalf("a good file: %v", err)
	}
	if camp.Audience != campaigns.AudienceList || camp.ListSize != 3 || camp.BudgetPoints != 390 {
		t.Fatalf("campaign %+v; want a list of 3 with the file's total, 390, as budget", camp)
	}
	before := e.balance(c.m3)
	rep := e.run(camp.ID)
	if rep.Granted != 3 || rep.Cost != 390 {
		t.Fatalf("report %+v; want 3 granted for 390", rep)
	}
	if got := e.balance(c.m3) - before; got != 250 {
		t.Fatalf("m3 gained %d; want its row's 250", got)
	}
	if rep := e.run(camp.ID); rep.Granted != 0 || rep.AlreadyGranted != 3 {
		t.Fatalf("second run %+v; want all already granted", rep)
	}
	e.audit()
}

func TestStartRunIsIdempotentAndProgressReachesTheEnd(t *testing.T) {
	e := newEnv(t)
	e.coalition()
	ctx := context.Background()
	sg := e.segment("everyone")
	camp := e.campaign(campaigns.NewCampaign{Kind: campaigns.KindPoints, SegmentID: sg.ID, Points: 10, BudgetPoints: 1000})
	run, started, err := e.svc.StartRun(ctx, camp.ID, "staff:test", "staff:1", "key-1")
	if err != nil || !started {
		t.Fatalf("start: %v %v", started, err)
	}
	again, started, err := e.svc.StartRun(ctx, camp.ID, "staff:test", "staff:1", "key-1")
	if err != nil || started || again.ID != run.ID {
		t.Fatalf("the same key again: run %d started %v %v; want run %d", again.ID, started, err, run.ID)
	}
	other := e.campaign(campaigns.NewCampaign{Kind: campaigns.KindPoints, SegmentID: sg.ID, Points: 10, BudgetPoints: 1000})
	if _, _, err := e.svc.StartRun(ctx, other.ID, "staff:test", "staff:1", "key-1"); !errors.Is(err, campaigns.ErrKeyReused) {
		t.Fatalf("the key on another campaign: %v; want ErrKeyReused", err)
	}
	runs := jobs.NewService(e.db, e.clk.Now, nil)
	if err := runs.Execute(ctx, run.ID, func(ctx context.Context, p *jobs.Progress) (any, error) {
		return e.svc.Run(ctx, camp.ID, "staff:test", p)
	}); err != nil {
		t.Fatal(err)
	}
	done, err := runs.Get(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var rep campaigns.Report
	_ = json.Unmarshal(done.Result, &rep)
	if done.State != jobs.Succeeded || done.Percent() != 100 || done.Done != 4 || done.Total != 4 || rep.Granted != 4 {
		t.Fatalf("run %+v report %+v; want succeeded, 4 of 4, 4 granted", done, rep)
	}
}
