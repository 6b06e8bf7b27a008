package rules

import (
	"context"
	"fmt"
)

// QuotePreview prices p with def, a rule definition not yet published, and
// the promotions of p.PartnerID in force at p.OccurredAt (now when zero),
// without storing anything: what the operator's "preview" shows before a
// rule is published. The definition is validated as PublishRule would.
// Errors: those of Evaluate (a validation.Error names the field).
func (s *Service) QuotePreview(ctx context.Context, def RuleDefinition, p Purchase) (Quote, error) {
	if p.OccurredAt.IsZero() {
		p.OccurredAt = s.clock()
	}
	promos, err := promoList(s.db.WithContext(ctx), p.PartnerID, p.OccurredAt)
	if err != nil {
		return Quote{}, fmt.Errorf("quote preview: %w", err)
	}
	return Evaluate(RuleSet{PartnerID: p.PartnerID, Definition: def}, promos, p)
}
