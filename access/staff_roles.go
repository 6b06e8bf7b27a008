package access

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
)

// ErrLastAdmin: the change would leave no active admin, and with none nobody
// could manage staff any more (short of `hub staff create` on the server).
// The error is blamed on the field the request changed (role or status).
var ErrLastAdmin = errors.New("the last active admin cannot lose the admin role or be disabled")

// SetStaffRole gives a staff account another role. The role is read from
// the account on every request (VerifyStaffToken), so the change applies to
// the account's open sessions at once. Taking the admin role from the last
// active admin is refused (ErrLastAdmin); the active admins are locked
// while counting, so two concurrent demotions cannot both pass. Errors:
// ErrStaffNotFound, ErrLastAdmin, *validation.Error.
func (s *Service) SetStaffRole(ctx context.Context, id int64, role Role) (Staff, error) {
	if !ValidRole(role) {
		return Staff{}, validation.New("role", "must be admin, finance or support")
	}
	var out Staff
	err := s.tx(ctx, func(tx *gorm.DB) error {
		admins, err := lockActiveAdmins(tx)
		if err != nil {
			return err
		}
		r, err := selectStaffByID(tx, id)
		if err != nil {
			return err
		}
		if r.Role == string(RoleAdmin) && r.Status == "active" && role != RoleAdmin && len(admins) <= 1 {
			return validation.Blame("role", "cannot change: this is the last active admin", ErrLastAdmin)
		}
		if err := updateStaffRole(tx, id, role); err != nil {
			return err
		}
		r.Role = string(role)
		out = r.staff()
		return nil
	})
	if err != nil {
		return Staff{}, fmt.Errorf("set role of staff %d: %w", id, err)
	}
	return out, nil
}
