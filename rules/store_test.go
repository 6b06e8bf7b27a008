package rules

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// earnPartner registers a bare partner (no contract) and returns its id.
func earnPartner(t *testing.T, db *gorm.DB, name string) int64 {
	t.Helper()
	p, err := partners.NewService(db, nil).CreatePartner(context.Background(), partners.NewPartner{Name: name,
		Sector: partners.SectorRetail, SettlementCurrency: "USD", TimeZone: "UTC"})
	if err != nil {
		t.Fatalf("create partner: %v", err)
	}
	return p.ID
}

func newRulesTest(t *testing.T) (*Service, *clock.Manual, *gorm.DB, int64) {
	t.Helper()
	db := testdb.New(t)
	clock := clock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	return NewService(db, clock.Now), clock, db, earnPartner(t, db, "Shop "+t.Name())
}

func stepRule(perMinor int64) RuleDefinition {
	return RuleDefinition{Earn: []EarnComponent{{Kind: KindPerCurrencyUnit, Currency: "USD", Rate: dec("1"), PerMinor: perMinor}}}
}

func TestRuleVersionSelectionByDate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _, pid := newRulesTest(t)
	jan, feb, mar := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

	v1, err := s.PublishRule(ctx, pid, stepRule(100), jan, "staff:ann")
	if err != nil {
		t.Fatalf("publish v1: %v", err)
	}
	// Scheduled ahead: v2 from February, v3 from March.
	if _, err := s.PublishRule(ctx, pid, stepRule(200), feb, "staff:ann"); err != nil {
		t.Fatalf("publish v2: %v", err)
	}
	v3, err := s.PublishRule(ctx, pid, stepRule(300), mar, "staff:ann")
	if err != nil {
		t.Fatalf("publish v3: %v", err)
	}
	// v4 supersedes v3 before it takes effect (same effective_from).
	clock.Set(feb.Add(24 * time.Hour))
	v4, err := s.PublishRule(ctx, pid, stepRule(400), mar, "staff:bob")
	if err != nil {
		t.Fatalf("publish v4: %v", err)
	}
	if v1.Version != 1 || v3.Version != 3 || v4.Version != 4 {
		t.Fatalf("versions %d, %d, %d; want 1, 3, 4", v1.Version, v3.Version, v4.Version)
	}
	cases := []struct {
		at      time.Time
		version int
		err     error
	}{
		{jan.Add(-time.Nanosecond), 0, ErrNoRule},
		{jan, 1, nil},
		{feb.Add(-time.Microsecond), 1, nil},
		{feb, 2, nil},
		{mar.Add(-time.Microsecond), 2, nil},
		{mar, 4, nil},
		{mar.AddDate(5, 0, 0), 4, nil},
	}
	for _, c := range cases {
		r, err := s.RuleAt(ctx, pid, c.at)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("RuleAt(%s): error %v, want %v", c.at, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("RuleAt(%s): %v", c.at, err)
		}
		if r.Version != c.version {
			t.Errorf("RuleAt(%s) = v%d, want v%d", c.at, r.Version, c.version)
		}
		if want := int64(c.version * 100); r.Definition.Earn[0].PerMinor != want {
			t.Errorf("RuleAt(%s) definition per_minor %d, want %d (stored definition round-trips)", c.at, r.Definition.Earn[0].PerMinor, want)
		}
	}
	// Another partner's rules never answer.
	other := earnPartner(t, s.db, "Other")
	if _, err := s.RuleAt(ctx, other, mar); !errors.Is(err, ErrNoRule) {
		t.Errorf("RuleAt(other partner) = %v, want ErrNoRule", err)
	}
	all, err := s.ListRules(ctx, pid)
	if err != nil || len(all) != 4 || all[0].Version != 4 || all[3].Version != 1 {
		t.Fatalf("ListRules = %d rules (first v%d), %v; want 4, newest first", len(all), all[0].Version, err)
	}
	got, err := s.GetRule(ctx, v1.ID)
	if err != nil || got.CreatedBy != "staff:ann" || !got.EffectiveFrom.Equal(jan) || !got.CreatedAt.Equal(jan) {
		t.Errorf("GetRule = %+v, %v; want v1 by staff:ann from %s", got, err, jan)
	}
	if _, err := s.GetRule(ctx, 999999); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("GetRule(unknown) = %v, want ErrRuleNotFound", err)
	}
}

func TestPublishRuleRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _, pid := newRulesTest(t)
	now := clock.Now()
	if _, err := s.PublishRule(ctx, pid, stepRule(100), now.AddDate(0, 1, 0), "staff:ann"); err != nil {
		t.Fatal(err)
	}
	fieldOf := func(err error) string {
		var ve *validation.Error
		if errors.As(err, &ve) && len(ve.Fields) > 0 {
			return ve.Fields[0].Field
		}
		return ""
	}
	bad := stepRule(100)
	bad.Multipliers.Category = []CategoryMultiplier{{Category: "x", Rate: dec("0")}}
	cases := []struct {
		name  string
		def   RuleDefinition
		from  time.Time
		actor string
		field string
		is    error
	}{
		{"invalid definition", bad, now.AddDate(0, 2, 0), "a", "definition.multipliers.category[0].rate", nil},
		{"in the past", stepRule(1), now.Add(-time.Second), "a", "effective_from", nil},
		{"before the latest version", stepRule(1), now.AddDate(0, 0, 1), "a", "effective_from", nil},
		{"no actor", stepRule(1), now.AddDate(0, 2, 0), " ", "actor", nil},
	}
	for _, c := range cases {
		_, err := s.PublishRule(ctx, pid, c.def, c.from, c.actor)
		if got := fieldOf(err); got != c.field {
			t.Errorf("%s: error %v (field %q), want a validation error on %q", c.name, err, got, c.field)
		}
	}
	if _, err := s.PublishRule(ctx, 987654, stepRule(1), time.Time{}, "a"); !errors.Is(err, partners.ErrPartnerNotFound) {
		t.Errorf("unknown partner: %v, want ErrPartnerNotFound", err)
	}
	// Zero effective_from means now.
	s2, _, _, pid2 := newRulesTest(t)
	r, err := s2.PublishRule(ctx, pid2, stepRule(1), time.Time{}, "a")
	if err != nil || !r.EffectiveFrom.Equal(now) {
		t.Errorf("zero effective_from: %v, %v; want %s", r.EffectiveFrom, err, now)
	}
}

func TestRulesAreImmutableInTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, db, pid := newRulesTest(t)
	r, err := s.PublishRule(ctx, pid, stepRule(100), clock.Now(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`UPDATE earn_rules SET definition = '{"earn":[{"kind":"x"}]}' WHERE id = ?`, r.ID).Error; err == nil {
		t.Error("UPDATE of a published rule succeeded; want the trigger to refuse it")
	}
	if err := db.Exec(`DELETE FROM earn_rules WHERE id = ?`, r.ID).Error; err == nil {
		t.Error("DELETE of a published rule succeeded; want the trigger to refuse it")
	}
	// The database refuses a retroactive version even if the service is bypassed.
	err = db.Exec(`INSERT INTO earn_rules (partner_id, version, effective_from, definition, created_at, created_by)
		VALUES (?, 2, ?, '{"earn":[{}]}', ?, 'sql')`, pid, clock.Now().Add(-time.Hour), clock.Now()).Error
	if err == nil {
		t.Error("a retroactive earn rule row was accepted; want the CHECK to refuse it")
	}
}

func TestConcurrentPublishGivesDistinctVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _, pid := newRulesTest(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]Rule, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.PublishRule(ctx, pid, stepRule(int64(i+1)), clock.Now().Add(time.Hour), "a")
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	ok := 0
	for i := range n {
		if errs[i] != nil {
			if !errors.Is(errs[i], ErrRuleConflict) {
				t.Errorf("publish %d: %v, want success or ErrRuleConflict", i, errs[i])
			}
			continue
		}
		ok++
		if seen[results[i].Version] {
			t.Errorf("version %d published twice", results[i].Version)
		}
		seen[results[i].Version] = true
	}
	all, err := s.ListRules(ctx, pid)
	if err != nil || ok == 0 || len(all) != ok {
		t.Errorf("%d publishes succeeded, %d versions stored (%v); want at least one and equal counts", ok, len(all), err)
	}
}
