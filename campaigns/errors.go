package campaigns

import "errors"

// Domain errors.
var (
	ErrSegmentNotFound  = errors.New("segment not found")
	ErrCampaignNotFound = errors.New("campaign not found")
	// ErrKeyReused: an Idempotency-Key that started one campaign's run was
	// sent to start another's.
	ErrKeyReused = errors.New("idempotency key already used for another campaign")
)
