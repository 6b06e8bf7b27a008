package catalog

import "errors"

// Domain errors. The web layer maps them to problem codes; input problems are
// *validation.Error instead.
var (
	// ErrRewardNotFound: no such reward, or one the caller may not see
	// (another partner's, or not offered to the member).
	ErrRewardNotFound = errors.New("reward not found")
	// ErrRewardUnavailable: the reward exists but cannot be ordered now
	// (inactive, hidden by the partner, suspended by the operator, outside its
	// validity window, on a blackout date, or not for the member's tier).
	ErrRewardUnavailable = errors.New("reward is not available")
	// ErrOutOfStock: no stock unit or voucher code left.
	ErrOutOfStock = errors.New("reward is out of stock")
	// ErrOrderLimit: the member reached the reward's per-member limit.
	ErrOrderLimit = errors.New("per-member order limit reached")
	// ErrOrderNotFound: no such order, or another member's or partner's.
	ErrOrderNotFound = errors.New("order not found")
	// ErrOrderNotPending: the order was already fulfilled, rejected,
	// cancelled or expired, so it cannot take another outcome.
	ErrOrderNotPending = errors.New("order is no longer pending")
	// ErrDeadlinePassed: the partner answered after the fulfilment deadline;
	// the order is (or is about to be) cancelled by the expiry job.
	ErrDeadlinePassed = errors.New("fulfilment deadline has passed")
	// ErrRewardRetired: the reward was retired by its owner; it is kept for
	// its orders' history but can no longer be changed or ordered.
	ErrRewardRetired = errors.New("reward is retired")
	// ErrNotCharity: charity donations are offered by charity partners only.
	ErrNotCharity = errors.New("charity donations need a charity partner")
)
