package rules

import "errors"

// Earn rule and promotion errors. Input problems are validation.Error values
// naming the field; these sentinels are the outcomes a caller branches on.
var (
	// ErrNoRule: the partner has no earn rule in force at the purchase's
	// occurred_at (none published, or all take effect later).
	ErrNoRule = errors.New("no earn rule in force")
	// ErrRuleNotFound: no earn rule version with this id (for this partner).
	ErrRuleNotFound = errors.New("earn rule not found")
	// ErrRuleConflict: another version was published for the partner at the
	// same moment; retrying the publish is safe.
	ErrRuleConflict = errors.New("earn rule version conflict")
	// ErrCurrencyNotEarned: the rule earns on amounts in other currencies
	// only; the hub does not convert currencies.
	ErrCurrencyNotEarned = errors.New("the earn rule does not earn in this currency")
	// ErrPointsOverflow: the purchase would earn more points than can be represented.
	ErrPointsOverflow = errors.New("earned points out of range")
	// ErrPromotionNotFound: no promotion with this id.
	ErrPromotionNotFound = errors.New("promotion not found")
	// ErrPromotionEnded: the promotion was already ended.
	ErrPromotionEnded = errors.New("promotion already ended")
	// ErrPromotionCodeInUse: the partner has another promotion with this code
	// whose window overlaps.
	ErrPromotionCodeInUse = errors.New("promotion code already used in an overlapping window")
)
