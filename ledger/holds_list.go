package ledger

import (
	"context"
	"fmt"
)

// MemberHolds returns a member's holds, active ones first, then the newest
// closed ones, up to limit (default 50).
func (s *Service) MemberHolds(ctx context.Context, memberID int64, limit int) ([]Hold, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var rows []holdRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+holdColumns+` FROM ledger_holds WHERE member_id = ?
		ORDER BY status = 'active' DESC, id DESC LIMIT ?`, memberID, limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("holds of member %d: %w", memberID, err)
	}
	out := make([]Hold, len(rows))
	for i, r := range rows {
		out[i] = r.hold()
	}
	return out, nil
}
