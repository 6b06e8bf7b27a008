package partners

import (
	"errors"
	"fmt"
	"strings"
)

// Registry and contract errors.
var (
	ErrPartnerNotFound  = errors.New("partner not found")
	ErrPartnerExists    = errors.New("a partner with this name already exists")
	ErrOutletExists     = errors.New("an outlet with this code already exists for the partner")
	ErrNoContract       = errors.New("no contract in force")
	ErrContractConflict = errors.New("contract version conflicts with an existing version")
	// ErrCategoryOverlap: an active partner of the same sector and category
	// works in the same market; OverlapError names it.
	ErrCategoryOverlap = errors.New("overlaps an active partner's category in the same market")
)

// OverlapError is ErrCategoryOverlap naming the overlapping partners.
type OverlapError struct {
	Partners []string
	Sector   Sector
	Market   string
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("%s in %s overlaps active partner %s; send the override to go ahead",
		e.Sector, e.Market, strings.Join(e.Partners, ", "))
}
func (e *OverlapError) Unwrap() error { return ErrCategoryOverlap }

// Prepaid errors.
var (
	// ErrPrepaidExhausted: the draw-down would take the prepaid balance below zero.
	ErrPrepaidExhausted = errors.New("prepaid balance exhausted")
	// ErrNotPrepaid: the partner has no prepaid account (its contracts are postpaid).
	ErrNotPrepaid = errors.New("partner is not billed prepaid")
	// ErrDuplicateRef: a top-up or draw-down with this reference was already recorded.
	ErrDuplicateRef = errors.New("movement reference already used")
)
