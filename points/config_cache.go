package points

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/coalitionhub/hub/abuse"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/webhooks"
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
	contracts []partners.Contract // every version, latest effective_from first
	pricing   rules.Pricing       // earn rule versions and promotions not over before the earn horizon
	endpoints bool                // the partner has an active webhook endpoint
	tiers     bool                // pricing depends on the member's tier
	abuse     abuse.Rules         // fraud and abuse rules (all zero: none)
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
		var err error
		if cfg.contracts, err = t.registry.ContractVersionsWith(tx, partnerID); err != nil {
			return err
		}
		if cfg.pricing, err = t.rules.PricingWith(tx, partnerID, horizon); err != nil {
			return err
		}
		cfg.tiers = cfg.pricing.Tiers
		if cfg.endpoints, err = webhooks.HasActiveEndpoint(tx, partnerID); err != nil {
			return err
		}
		cfg.abuse, err = abuse.RulesWith(tx, partnerID)
		return err
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
func (cfg *partnerConfig) contractAt(partnerID int64, at time.Time, earn bool) (partners.Contract, error) {
	for _, c := range cfg.contracts {
		if c.EffectiveFrom.After(at) {
			continue
		}
		switch {
		case earn && !c.Earn:
			return partners.Contract{}, fmt.Errorf("earn at partner %d: %w", partnerID, ErrRoleNotInContract)
		case !earn && !c.Burn:
			return partners.Contract{}, fmt.Errorf("burn at partner %d: %w", partnerID, ErrRoleNotInContract)
		}
		return c, nil
	}
	return partners.Contract{}, fmt.Errorf("contract of partner %d at %s: %w", partnerID, at.UTC().Format(time.RFC3339), partners.ErrNoContract)
}

// quote prices p with the rule version and the promotions of the
// configuration in force at p.OccurredAt.
func (cfg *partnerConfig) quote(p rules.Purchase) (rules.Quote, error) { return cfg.pricing.Quote(p) }
