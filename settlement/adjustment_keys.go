package settlement

import (
	"bytes"
	"fmt"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
)

// AdjustmentKey makes a money adjustment idempotent, as an Idempotency-Key
// makes a point move: Key is unique per Scope (the staff account), and Hash
// identifies the request, so the same key with another request is refused.
type AdjustmentKey struct {
	Scope string
	Key   string
	Hash  []byte
}

// priorAdjustment returns the adjustment made earlier under k (found), after
// taking a transaction-scoped lock on the key so that two requests with one
// key run one after the other. The same key with another request hash is
// ledger.ErrIdempotencyMismatch, the one idempotency error of the hub.
func priorAdjustment(tx *gorm.DB, k AdjustmentKey) (Adjustment, bool, error) {
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(? || chr(10) || ?, 0))`, k.Scope, k.Key).Error; err != nil {
		return Adjustment{}, false, err
	}
	var hashes [][]byte
	if err := tx.Raw(`SELECT request_hash FROM settlement_adjustments WHERE idempotency_scope = ? AND idempotency_key = ?`,
		k.Scope, k.Key).Scan(&hashes).Error; err != nil {
		return Adjustment{}, false, err
	}
	if len(hashes) == 0 {
		return Adjustment{}, false, nil
	}
	if !bytes.Equal(hashes[0], k.Hash) {
		return Adjustment{}, false, fmt.Errorf("adjustment key %q: %w", k.Key, ledger.ErrIdempotencyMismatch)
	}
	var rows []adjustmentRow
	if err := tx.Raw(`SELECT `+adjustmentColumns+` FROM settlement_adjustments WHERE idempotency_scope = ? AND idempotency_key = ?`,
		k.Scope, k.Key).Scan(&rows).Error; err != nil || len(rows) != 1 {
		return Adjustment{}, false, fmt.Errorf("adjustment key %q: %d rows: %v", k.Key, len(rows), err)
	}
	a := rows[0].adjustment()
	a.Replayed = true
	return a, true, nil
}

// keyAdjustment records k on the adjustment just made.
func keyAdjustment(tx *gorm.DB, id int64, k AdjustmentKey) error {
	return tx.Exec(`UPDATE settlement_adjustments SET idempotency_scope = ?, idempotency_key = ?, request_hash = ? WHERE id = ?`,
		k.Scope, k.Key, k.Hash, id).Error
}
