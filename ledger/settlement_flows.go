package ledger

import (
	"time"

	"gorm.io/gorm"
)

// Lot flow classes: what moved lot points in or out of the outstanding
// liability. A reversal is of the class of what it reverses (an earn's
// reversal takes points out of "issued", a burn's puts them back into
// "redeemed").
const (
	FlowIssued      = "issued"       // earns (not exchanges) and their reversals
	FlowExchangeIn  = "exchange_in"  // earns of inbound exchanges (details.exchange.direction = inbound)
	FlowRedeemed    = "redeemed"     // burns and captures into partner_redeemed, and their reversals
	FlowExchangeOut = "exchange_out" // captures into partner_exchange_out, and their reversals
	FlowExpired     = "expired"      // expiries and forfeits
	FlowAdjusted    = "adjusted"     // the operator's adjustments (grants and removals)
	FlowMoved       = "moved"        // transfers and merges: lots move between members, issuer and earn time kept
)

// LotFlow is the lot points created (+) or consumed (−) for issuer (0: the
// operator) in one bucket of the bounds (by the lots' earned_at), by
// transactions of one flow class.
type LotFlow struct {
	IssuerPartnerID int64
	Bucket          int
	Class           string
	Points          int64
}

// SettledLotFlows is LotMoves of the transactions batch settled, split by
// flow class: the sum over classes of an (issuer, bucket) is LotMoves'.
// It reads through the mapping (not the id range a close uses): it serves
// reports of closed batches, whose transactions never change.
func SettledLotFlows(tx *gorm.DB, batch int64, bounds []time.Time) ([]LotFlow, error) {
	var rows []LotFlow
	err := tx.Raw(`WITH t AS (
		SELECT lt.id, CASE
			WHEN coalesce(o.type, lt.type) = 'earn'
			     AND (coalesce(o.details, lt.details) -> 'exchange' ->> 'direction') = 'inbound' THEN 'exchange_in'
			WHEN coalesce(o.type, lt.type) = 'earn' THEN 'issued'
			WHEN coalesce(o.type, lt.type) IN ('burn', 'capture') AND EXISTS (SELECT 1 FROM ledger_entries e
			     JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'partner_exchange_out'
			     WHERE e.transaction_id = coalesce(o.id, lt.id)) THEN 'exchange_out'
			WHEN coalesce(o.type, lt.type) IN ('burn', 'capture') THEN 'redeemed'
			WHEN lt.type IN ('expiry', 'forfeit') THEN 'expired'
			WHEN lt.type = 'adjustment' THEN 'adjusted'
			ELSE 'moved' END AS class
		FROM ledger_settlements s JOIN ledger_transactions lt ON lt.id = s.transaction_id
		LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE s.batch_id = @batch)
	SELECT issuer_partner_id, bucket, class, sum(points)::bigint AS points FROM (
		SELECT coalesce(l.issuer_partner_id, 0) AS issuer_partner_id, `+bucket("l.earned_at")+` AS bucket, t.class, l.amount AS points
		FROM t JOIN ledger_lots l ON l.transaction_id = t.id
		UNION ALL
		SELECT coalesce(l.issuer_partner_id, 0), `+bucket("l.earned_at")+`, t.class, -lc.points
		FROM t JOIN ledger_lot_consumptions lc ON lc.transaction_id = t.id JOIN ledger_lots l ON l.id = lc.lot_id) f
	GROUP BY 1, 2, 3 HAVING sum(points) <> 0 ORDER BY 1, 2, 3`,
		map[string]any{"batch": batch, "bounds": timestamps(bounds)}).Scan(&rows).Error
	return rows, err
}

// SettledRedemptions is Batch.Redemptions of the transactions batch
// settled, start being the batch's start: the points of each issuer redeemed
// at each redeemer, by bucket of the redemption's time.
func SettledRedemptions(tx *gorm.DB, batch int64, start time.Time, bounds []time.Time) ([]BatchRedemption, error) {
	b, err := PrepareSettled(tx, batch, start)
	if err != nil {
		return nil, err
	}
	return b.Redemptions(tx, bounds)
}
