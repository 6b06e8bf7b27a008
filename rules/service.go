package rules

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// Service publishes earn rules and promotions and prices purchases with them.
// It holds no state besides the pool and the clock.
type Service struct {
	db  *gorm.DB
	now func() time.Time
}

// NewService returns the earn rules service. now is the clock: it stamps
// created_at and decides what "in the past" means.
func NewService(db *gorm.DB, now func() time.Time) *Service {
	return &Service{db: db, now: now}
}

// clock returns now at the database's precision, in UTC.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// PublishRule stores def as the partner's next rule version, in force from
// effectiveFrom (now when zero). Versions are never changed: this is how a
// rule changes. effectiveFrom may not be in the past (a rule never reprices
// purchases made before it was published) nor before the effective_from of
// the partner's latest version (versions take effect in order; a version not
// yet in force is superseded by publishing another with the same
// effective_from).
//
// Errors: validation.Error (fields "definition...", "effective_from",
// "actor"); ErrPartnerNotFound; ErrRuleConflict when concurrent publishes
// kept taking the version number (after three attempts; retrying is safe).
func (s *Service) PublishRule(ctx context.Context, partnerID int64, def RuleDefinition, effectiveFrom time.Time, actor string) (Rule, error) {
	now := s.clock()
	if effectiveFrom.IsZero() {
		effectiveFrom = now
	}
	effectiveFrom = effectiveFrom.UTC().Truncate(time.Microsecond)
	ve := earnFieldErrors(validateRuleDefinition(def))
	ve.Check(!effectiveFrom.Before(now), "effective_from", "must not be in the past")
	ve.Check(strings.TrimSpace(actor) != "" && len(actor) <= 200, "actor", "is required")
	if err := ve.Err(); err != nil {
		return Rule{}, err
	}
	var out Rule
	publish := func(tx *gorm.DB) error {
		version, latestFrom, err := earnLatestVersion(tx, partnerID)
		if err != nil {
			return err
		}
		if version > 0 && effectiveFrom.Before(latestFrom) {
			return validation.New("effective_from", fmt.Sprintf("must not be before %s, when version %d takes effect",
				latestFrom.Format(time.RFC3339), version))
		}
		out, err = earnInsertRule(tx, Rule{PartnerID: partnerID, Version: version + 1,
			EffectiveFrom: effectiveFrom, Definition: def, CreatedAt: now, CreatedBy: actor})
		return err
	}
	// A concurrent publish takes the version number this one computed: the
	// unique (partner_id, version) refuses the loser, which reads again.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.db.WithContext(ctx).Transaction(publish); !errors.Is(err, ErrRuleConflict) {
			break
		}
	}
	if err != nil {
		return Rule{}, fmt.Errorf("publish earn rule for partner %d: %w", partnerID, err)
	}
	return out, nil
}

// RuleAt returns the partner's rule version in force at t. Errors: ErrNoRule.
func (s *Service) RuleAt(ctx context.Context, partnerID int64, t time.Time) (Rule, error) {
	return earnRuleAt(s.db.WithContext(ctx), partnerID, t)
}

// GetRule returns one rule version. Errors: ErrRuleNotFound.
func (s *Service) GetRule(ctx context.Context, id int64) (Rule, error) {
	return earnRuleByID(s.db.WithContext(ctx), id)
}

// ListRules returns every version of the partner's rule, newest first.
func (s *Service) ListRules(ctx context.Context, partnerID int64) ([]Rule, error) {
	return earnRulesOf(s.db.WithContext(ctx), partnerID)
}

// CreatePromotion stores a promotion. The code is stored upper case and is
// matched case-insensitively. The window may already have started (a
// promotion announced on its first morning) but not ended.
//
// Errors: validation.Error; ErrPartnerNotFound; ErrPromotionCodeInUse when
// the partner has another promotion with the code in an overlapping window.
func (s *Service) CreatePromotion(ctx context.Context, n NewPromotion, actor string) (Promotion, error) {
	now := s.clock()
	n.Code = strings.ToUpper(strings.TrimSpace(n.Code))
	n.Name = strings.TrimSpace(n.Name)
	n.StartsAt = n.StartsAt.UTC().Truncate(time.Microsecond)
	n.EndsAt = n.EndsAt.UTC().Truncate(time.Microsecond)
	ve := earnFieldErrors(validateNewPromotion(n))
	ve.Check(n.EndsAt.After(now), "ends_at", "must be in the future")
	ve.Check(strings.TrimSpace(actor) != "" && len(actor) <= 200, "actor", "is required")
	if err := ve.Err(); err != nil {
		return Promotion{}, err
	}
	p, err := promoInsert(s.db.WithContext(ctx), n, now, actor)
	if err != nil {
		return Promotion{}, fmt.Errorf("create promotion %q: %w", n.Name, err)
	}
	return p, nil
}

// ListPromotions returns the promotions that concern the partner (its own and
// the coalition-wide ones) in id order: with a non-zero at, those in force at
// at; with a zero at, all of them.
func (s *Service) ListPromotions(ctx context.Context, partnerID int64, at time.Time) ([]Promotion, error) {
	return promoList(s.db.WithContext(ctx), partnerID, at)
}

// GetPromotion returns one promotion. Errors: ErrPromotionNotFound.
func (s *Service) GetPromotion(ctx context.Context, id int64) (Promotion, error) {
	return promoByID(s.db.WithContext(ctx), id)
}

// EndPromotion ends a promotion now: purchases that occur from now on no
// longer qualify; earlier ones still do. Errors: ErrPromotionNotFound,
// ErrPromotionEnded, validation.Error for a missing actor.
func (s *Service) EndPromotion(ctx context.Context, id int64, actor string) (Promotion, error) {
	if strings.TrimSpace(actor) == "" || len(actor) > 200 {
		return Promotion{}, validation.New("actor", "is required")
	}
	db := s.db.WithContext(ctx)
	p, ok, err := promoEnd(db, id, s.clock(), actor)
	if err != nil {
		return Promotion{}, fmt.Errorf("end promotion %d: %w", id, err)
	}
	if ok {
		return p, nil
	}
	if _, err := promoByID(db, id); err != nil {
		return Promotion{}, err
	}
	return Promotion{}, fmt.Errorf("end promotion %d: %w", id, ErrPromotionEnded)
}

// Quote prices p with the partner's rule in force at p.OccurredAt (now when
// zero) and the promotions in force then, without posting anything. Both are
// read in one snapshot. Errors: those of Evaluate, and ErrNoRule.
func (s *Service) Quote(ctx context.Context, p Purchase) (Quote, error) {
	if p.OccurredAt.IsZero() {
		p.OccurredAt = s.clock()
	}
	var (
		rule   Rule
		promos []Promotion
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if rule, err = earnRuleAt(tx, p.PartnerID, p.OccurredAt); err != nil {
			return err
		}
		promos, err = promoList(tx, p.PartnerID, p.OccurredAt)
		return err
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return Quote{}, fmt.Errorf("quote earn: %w", err)
	}
	// Priced as an earn is: by the configuration's quote.
	return (&Pricing{rules: []Rule{rule}, promos: promos}).Quote(p)
}

// earnFieldErrors returns err's field errors to add more to (empty for nil).
func earnFieldErrors(err error) *validation.Error {
	var ve *validation.Error
	if errors.As(err, &ve) {
		return ve
	}
	return &validation.Error{}
}
