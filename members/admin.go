package members

import (
	"context"
	"errors"
	"fmt"
)

// ErrErasureBlocked: the member still has points on hold (a till
// authorisation, a catalog order or an exchange in flight), so erasing it now
// would leave a partner or the operator with an open obligation to a person
// the hub can no longer name. The wrapping error says what is open.
var ErrErasureBlocked = errors.New("member cannot be erased yet")

// EraseAccount answers a member's erasure request in one call, whatever the
// account's state: it refuses (ErrErasureBlocked, saying how many points are
// held) while any points of the member are held, closes the account if it is
// still active or suspended (its remaining points are forfeited to breakage,
// as Close does), then erases it (Erase: personal data pseudonymised, ledger
// amounts kept). Repeating it on an erased member changes nothing and
// returns it. Callers that know of other open obligations (exchanges in
// flight) check them first. Errors: ErrNotFound, ErrErasureBlocked,
// *validation.Error.
func (s *Service) EraseAccount(ctx context.Context, id int64, reason, actor string) (Member, error) {
	if err := requireReasonActor(reason, actor); err != nil {
		return Member{}, err
	}
	m, err := s.Get(ctx, id)
	if err != nil {
		return Member{}, err
	}
	if m.ErasedAt != nil {
		return m, nil
	}
	bal, err := s.ledger.Balance(ctx, id)
	if err != nil {
		return Member{}, fmt.Errorf("erase member %d: %w", id, err)
	}
	if bal.Held > 0 {
		return Member{}, fmt.Errorf("member %d has %d points on hold (till authorisations, catalog orders or exchanges in flight); "+
			"settle or void them first: %w", id, bal.Held, ErrErasureBlocked)
	}
	if m.Status == StatusActive || m.Status == StatusSuspended {
		if _, err := s.Close(ctx, id, reason, actor); err != nil {
			return Member{}, err
		}
	}
	return s.Erase(ctx, id, actor)
}
