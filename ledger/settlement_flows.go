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

// LotFlows is LotMoves split by flow class: the sum over classes of an
// (issuer, bucket) is LotMoves'. It reads the batch's id range like the
// close's aggregates (b prepared by PrepareSettled for a closed batch).
func (b Batch) LotFlows(tx *gorm.DB, bounds []time.Time) ([]LotFlow, error) {
	xo, err := partnerAccounts(tx, "partner_exchange_out")
	if err != nil {
		return nil, err
	}
	var rows []LotFlow
	err = tx.Raw(`WITH xo AS (
		SELECT DISTINCT e.transaction_id AS id FROM ledger_entries e WHERE e.account_id = ANY(CAST(@xo AS bigint[]))),
	t AS (
		SELECT lt.id, CASE
			WHEN coalesce(o.type, lt.type) = 'earn'
			     AND (coalesce(o.details, lt.details) -> 'exchange' ->> 'direction') = 'inbound' THEN 'exchange_in'
			WHEN coalesce(o.type, lt.type) = 'earn' THEN 'issued'
			WHEN coalesce(o.type, lt.type) IN ('burn', 'capture') AND xo.id IS NOT NULL THEN 'exchange_out'
			WHEN coalesce(o.type, lt.type) IN ('burn', 'capture') THEN 'redeemed'
			WHEN lt.type IN ('expiry', 'forfeit') THEN 'expired'
			WHEN lt.type = 'adjustment' THEN 'adjusted'
			ELSE 'moved' END AS class
		FROM ledger_transactions lt LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		LEFT JOIN xo ON xo.id = coalesce(lt.reverses_id, lt.id)
		WHERE `+b.in("lt.id")+`)
	SELECT issuer_partner_id, bucket, class, sum(points)::bigint AS points FROM (
		SELECT coalesce(l.issuer_partner_id, 0) AS issuer_partner_id, `+bucket("l.earned_at")+` AS bucket, t.class, l.amount AS points
		FROM t JOIN ledger_lots l ON l.transaction_id = t.id
		WHERE `+b.in("l.transaction_id")+`
		UNION ALL
		SELECT coalesce(l.issuer_partner_id, 0), `+bucket("l.earned_at")+`, t.class, -lc.points
		FROM ledger_lot_consumptions lc JOIN t ON t.id = lc.transaction_id JOIN ledger_lots l ON l.id = lc.lot_id
		WHERE `+b.in("lc.transaction_id")+`) f
	GROUP BY 1, 2, 3 HAVING sum(points) <> 0 ORDER BY 1, 2, 3`,
		b.args(map[string]any{"xo": xo, "bounds": timestamps(bounds)})).Scan(&rows).Error
	return rows, err
}
