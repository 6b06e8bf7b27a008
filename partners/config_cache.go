package partners

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// The points API prices every earn with the partner's contract, earn rule and
// promotions, and publishes to its webhook endpoints. Reading those on every
// request cost five round trips of the earn's sixteen. They change rarely, so
// Transactions keeps each partner's configuration in memory, stamped with the
// partner's row of partner_config_versions (bumped by a trigger on every
// write to the tables, migration 00191), and reads the stamp in the member
// check the request sends anyway. A configuration is used only while its
// stamp is current: a change committed by any process is seen by the next
// request, with no TTL to wait for.

// configStamp is a version of one partner's configuration: its own counter
// and the coalition-wide one (promotions for every partner).
type configStamp struct {
	Partner int64
	Global  int64
}

// partnerConfig is a partner's pricing configuration as of stamp.
type partnerConfig struct {
	stamp     configStamp
	contracts []Contract // every version, latest effective_from first
	rules     []Rule     // every version, latest effective_from (then version) first
	// ruleValid[i]: rules[i]'s definition passed validateRuleDefinition when
	// the configuration was loaded, so pricing need not check it again per
	// earn (a tenth of a batch's CPU in the hub).
	ruleValid []bool
	promos    []Promotion // the partner's and coalition-wide, not over before the earn horizon; by id
	endpoints bool        // the partner has an active webhook endpoint
	// tiers: a rule version or promotion depends on the member's tier (tier
	// multipliers, tier conditions); when none does, pricing needs no tier read.
	tiers bool
}

// promoHorizon bounds the promotions kept: an earn may have occurred up to 14
// months ago (EarnInput.validate), so one that ended earlier cannot apply.
const promoHorizon = 15 * 31 * 24 * time.Hour

type configCache struct {
	mu sync.Mutex
	m  map[int64]*partnerConfig
}

func (c *configCache) get(partnerID int64, stamp configStamp) *partnerConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg := c.m[partnerID]; cfg != nil && cfg.stamp == stamp {
		return cfg
	}
	return nil
}

func (c *configCache) put(partnerID int64, cfg *partnerConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64]*partnerConfig{}
	}
	c.m[partnerID] = cfg
}

// checkMember checks that the member exists and may transact, and returns
// the partner's configuration stamp, in one round trip (checkMembers). A
// partner may transact with any member it can name (the member presented a
// card or id); Visible only limits what it may read back. Errors:
// members.ErrNotFound, members.ErrMemberInactive.
func (t *Transactions) checkMember(ctx context.Context, memberID, partnerID int64) (configStamp, error) {
	stamp, errs, err := t.checkMembers(ctx, []int64{memberID}, partnerID)
	if err != nil {
		return configStamp{}, err
	}
	return stamp, errs[memberID]
}

// config returns the partner's configuration as of stamp, from memory when
// it is current, else read in one read-only snapshot and kept.
func (t *Transactions) config(ctx context.Context, partnerID int64, stamp configStamp) (*partnerConfig, error) {
	if cfg := t.configs.get(partnerID, stamp); cfg != nil {
		return cfg, nil
	}
	cfg := &partnerConfig{stamp: stamp}
	horizon := t.now().Add(-promoHorizon)
	err := t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var contracts []contractRow
		if err := tx.Raw(`SELECT `+contractCols+` FROM partner_contracts WHERE partner_id = ?
			ORDER BY effective_from DESC, version DESC`, partnerID).Scan(&contracts).Error; err != nil {
			return err
		}
		for _, r := range contracts {
			cfg.contracts = append(cfg.contracts, r.contract())
		}
		var rules []earnRuleRow
		if err := tx.Raw(`SELECT `+earnRuleCols+` FROM earn_rules WHERE partner_id = ?
			ORDER BY effective_from DESC, version DESC`, partnerID).Scan(&rules).Error; err != nil {
			return err
		}
		for _, r := range rules {
			rule, err := r.rule()
			if err != nil {
				return err
			}
			cfg.rules = append(cfg.rules, rule)
			cfg.ruleValid = append(cfg.ruleValid, validateRuleDefinition(rule.Definition) == nil)
		}
		var promos []promotionRow
		if err := tx.Raw(`SELECT `+promotionCols+` FROM promotions WHERE (partner_id = ? OR partner_id IS NULL)
			AND ends_at > ? AND (ended_at IS NULL OR ended_at > ?) ORDER BY id`, partnerID, horizon, horizon).Scan(&promos).Error; err != nil {
			return err
		}
		var err error
		if cfg.promos, err = promotionsFrom(promos); err != nil {
			return err
		}
		for _, r := range cfg.rules {
			cfg.tiers = cfg.tiers || len(r.Definition.Multipliers.Tier) > 0
		}
		for _, pr := range cfg.promos {
			cfg.tiers = cfg.tiers || len(pr.Conditions.Tiers) > 0
		}
		return tx.Raw(`SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE partner_id = ? AND status = 'active')`,
			partnerID).Scan(&cfg.endpoints).Error
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("configuration of partner %d: %w", partnerID, err)
	}
	t.configs.put(partnerID, cfg)
	return cfg, nil
}

// contractAt is the contract version in force at at (ContractAt's answer)
// that gives the partner the role: earn, or else burn. Errors: ErrNoContract,
// ErrRoleNotInContract.
func (cfg *partnerConfig) contractAt(partnerID int64, at time.Time, earn bool) (Contract, error) {
	for _, c := range cfg.contracts {
		if c.EffectiveFrom.After(at) {
			continue
		}
		switch {
		case earn && !c.Earn:
			return Contract{}, fmt.Errorf("earn at partner %d: %w", partnerID, ErrRoleNotInContract)
		case !earn && !c.Burn:
			return Contract{}, fmt.Errorf("burn at partner %d: %w", partnerID, ErrRoleNotInContract)
		}
		return c, nil
	}
	return Contract{}, fmt.Errorf("contract of partner %d at %s: %w", partnerID, at.UTC().Format(time.RFC3339), ErrNoContract)
}

// quote prices p with the rule version and the promotions of the
// configuration in force at p.OccurredAt (Rules.Quote prices through it too).
func (cfg *partnerConfig) quote(p Purchase) (Quote, error) {
	var rule *Rule
	valid := false
	for i := range cfg.rules {
		if !cfg.rules[i].EffectiveFrom.After(p.OccurredAt) {
			rule, valid = &cfg.rules[i], i < len(cfg.ruleValid) && cfg.ruleValid[i]
			break
		}
	}
	if rule == nil {
		return Quote{}, fmt.Errorf("quote earn: partner %d at %s: %w", p.PartnerID, p.OccurredAt.UTC().Format(time.RFC3339), ErrNoRule)
	}
	var promos []Promotion
	for _, pr := range cfg.promos {
		if !pr.StartsAt.After(p.OccurredAt) && p.OccurredAt.Before(pr.EndsAt) && (pr.EndedAt == nil || p.OccurredAt.Before(*pr.EndedAt)) {
			promos = append(promos, pr)
		}
	}
	var q Quote
	var err error
	if valid {
		q, err = evaluateChecked(rule.Set(), promos, p)
	} else {
		q, err = Evaluate(rule.Set(), promos, p) // names what is wrong with the rule
	}
	if err != nil {
		return Quote{}, fmt.Errorf("quote earn: %w", err)
	}
	return q, nil
}
