package programme

import (
	"context"
	"fmt"
)

// CompanyLevels lists the corporate levels, lowest minimum spend first.
func (s *Service) CompanyLevels(ctx context.Context) ([]CompanyLevel, error) {
	var ls []CompanyLevel
	if err := s.db.WithContext(ctx).Raw(`SELECT code, name, min_spend_minor, rate FROM programme_company_levels
		ORDER BY min_spend_minor`).Scan(&ls).Error; err != nil {
		return nil, fmt.Errorf("company levels: %w", err)
	}
	return ls, nil
}
