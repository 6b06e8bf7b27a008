package ledger

import (
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"gorm.io/gorm"
)

// Settlement batches: the set-based reads a settlement close makes of the
// ledger. They are functions of a database handle, not Service methods,
// because a close runs them inside its own REPEATABLE READ snapshot (and on
// a second connection that imports it): the caller's handle is the snapshot.
//
// A batch (a settlement period; its id is the caller's) settles a set of
// transactions, recorded in ledger_settlements, each transaction once.
// Ledger ids are handed out in posting order, so a batch's transactions lie
// within an id range [lo, hi] that holds almost nothing else: a Batch reads
// the ledger tables by that range, less the few ids of it that are not the
// batch's, with no join against the month-sized mapping and with plans that
// parallel workers can run. Its transactions that need more than their own
// row (late ones, reversals priced at what they reverse, expiries and
// forfeits with their breakage) are copied once into batchOddTable.
//
// The aggregates never price anything: prices are contracts, which the
// ledger does not know. They sum per bucket of the caller's bounds instead
// (width_bucket: bucket 0 is before bounds[0], bucket i ≥ 1 starts at
// bounds[i-1]), so a caller whose prices change only at the bounds prices
// each bucket once.

// batchOddTable holds a batch's late transactions, reversals, expiries and
// forfeits, for one database transaction (ON COMMIT DROP).
const batchOddTable = "ledger_batch_odd"

// SettlementSet says which transactions a batch settles: those posted in
// [From, End) and the Stragglers (posted earlier, settled by no batch).
type SettlementSet struct {
	From, End  time.Time
	Stragglers []int64
}

// sql is the SQL of the ids of the set's transactions; args are its
// arguments.
func (set SettlementSet) sql() string {
	return `SELECT lt.id FROM ledger_transactions lt WHERE lt.posted_at >= @from AND lt.posted_at < @end
	UNION ALL SELECT unnest(CAST(@stragglers AS bigint[]))`
}

func (set SettlementSet) args() map[string]any {
	return map[string]any{"from": set.From, "end": set.End, "stragglers": database.Int64Array(set.Stragglers)}
}

// Stragglers returns, in id order, the ids of the transactions posted in
// [from, before) that batch prev did not settle: those that committed after
// prev was settled.
func Stragglers(tx *gorm.DB, from, before time.Time, prev int64) ([]int64, error) {
	if err := tuneBulk(tx); err != nil {
		return nil, err
	}
	var ids []int64
	if err := tx.Raw(`SELECT lt.id FROM ledger_transactions lt WHERE lt.posted_at >= @from AND lt.posted_at < @before
		AND NOT EXISTS (SELECT 1 FROM ledger_settlements s WHERE s.transaction_id = lt.id AND s.batch_id = @prev)
		ORDER BY lt.id`, map[string]any{"before": before, "from": from, "prev": prev}).
		Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("transactions posted late: %w", err)
	}
	return ids, nil
}

// Settle records the set's transactions as settled by batch and returns how
// many. The primary key of ledger_settlements makes a second settlement of
// any transaction fail rather than pass silently.
func Settle(tx *gorm.DB, batch int64, set SettlementSet) (int64, error) {
	if err := tuneBulk(tx); err != nil {
		return 0, err
	}
	args := set.args()
	args["batch"] = batch
	res := tx.Exec(`INSERT INTO ledger_settlements (transaction_id, batch_id)
		SELECT t.id, CAST(@batch AS bigint) FROM (`+set.sql()+`) t`, args)
	if res.Error != nil {
		return 0, fmt.Errorf("record the batch's transactions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Batch is a set of transactions prepared for the aggregate reads, valid in
// the database transaction that prepared it: the id range [lo, hi] (lo > hi
// when empty) less skip. Late transactions are those that occurred or were
// posted before start.
type Batch struct {
	Count  int64
	lo, hi int64
	skip   []int64
	start  time.Time
}

// batchRange is the size and id range of a batch's transactions.
type batchRange struct {
	Count  int64
	Lo, Hi int64
}

// args adds the query arguments that in refers to.
func (b Batch) args(more map[string]any) map[string]any {
	more["lo"], more["hi"], more["skip"] = b.lo, b.hi, database.Int64Array(b.skip)
	return more
}

// in restricts a transaction id column to the batch's transactions. The
// skipped ids are a constant array (PostgreSQL hashes long ones), so the
// condition is a filter on a range scan that any plan, parallel ones
// included, can apply.
func (b Batch) in(col string) string {
	if len(b.skip) == 0 {
		return col + ` BETWEEN @lo AND @hi`
	}
	return col + ` BETWEEN @lo AND @hi AND ` + col + ` <> ALL(CAST(@skip AS bigint[]))`
}

// PrepareSet prepares the set's transactions (not yet settled) for the
// aggregate reads of a batch starting at start.
func PrepareSet(tx *gorm.DB, start time.Time, set SettlementSet) (Batch, error) {
	if err := tuneBulk(tx); err != nil {
		return Batch{}, err
	}
	var r batchRange
	if err := tx.Raw(`SELECT count(*) AS count, coalesce(min(id), 0) AS lo, coalesce(max(id), -1) AS hi
		FROM (`+set.sql()+`) t`, set.args()).Scan(&r).Error; err != nil {
		return Batch{}, err
	}
	b := Batch{Count: r.Count, lo: r.Lo, hi: r.Hi, start: start}
	return b, b.prepare(tx, `(lt.posted_at < @from OR lt.posted_at >= @end)
		AND lt.id <> ALL(CAST(@stragglers AS bigint[]))`, set.args())
}

// PrepareSettled prepares the transactions settled by batch for the
// aggregate reads, late being before start.
func PrepareSettled(tx *gorm.DB, batch int64, start time.Time) (Batch, error) {
	if err := tuneBulk(tx); err != nil {
		return Batch{}, err
	}
	var r batchRange
	if err := tx.Raw(`SELECT count(*) AS count, coalesce(min(transaction_id), 0) AS lo, coalesce(max(transaction_id), -1) AS hi
		FROM ledger_settlements WHERE batch_id = ?`, batch).Scan(&r).Error; err != nil {
		return Batch{}, err
	}
	b := Batch{Count: r.Count, lo: r.Lo, hi: r.Hi, start: start}
	return b, b.prepare(tx, `NOT EXISTS (SELECT 1 FROM ledger_settlements s
		WHERE s.transaction_id = lt.id AND s.batch_id = @batch)`, map[string]any{"batch": batch})
}

// prepare sets b.skip to the ids of [lo, hi] matching outside (those the
// batch does not settle: normally none, or a few stragglers of a
// neighbouring batch), then fills batchOddTable and gathers its statistics
// (autovacuum never analyzes temporary tables).
func (b *Batch) prepare(tx *gorm.DB, outside string, args map[string]any) error {
	args["lo"], args["hi"], args["start"] = b.lo, b.hi, b.start
	if err := tx.Raw(`SELECT lt.id FROM ledger_transactions lt WHERE lt.id BETWEEN @lo AND @hi AND `+outside+` ORDER BY lt.id`, args).
		Scan(&b.skip).Error; err != nil {
		return fmt.Errorf("transactions outside the batch: %w", err)
	}
	if err := tx.Exec(`CREATE TEMP TABLE `+batchOddTable+` ON COMMIT DROP AS
		SELECT lt.id, lt.type, lt.partner_id, lt.reverses_id, lt.occurred_at,
		       coalesce(o.occurred_at, lt.occurred_at) AS priced_at, o.type AS reversed_type,
		       (lt.occurred_at < @start OR lt.posted_at < @start) AS late
		FROM ledger_transactions lt LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE `+b.in("lt.id")+` AND (lt.occurred_at < @start OR lt.posted_at < @start
		      OR lt.reverses_id IS NOT NULL OR lt.type IN ('expiry', 'forfeit'))`, b.args(args)).Error; err != nil {
		return fmt.Errorf("late transactions, reversals and expiries: %w", err)
	}
	return tx.Exec(`ANALYZE ` + batchOddTable).Error
}

// tuneBulk sets, for the rest of the database transaction only, what a
// batch's month-sized reads and writes need: a cheaper Gather, so that the joins of
// ledger tables run in parallel workers (the planner otherwise prices moving
// millions of joined rows to the leader above doing the join alone), and no
// JIT (compiling these plans costs seconds and saves less). work_mem stays
// small (16MB): the month's hash joins run in batches through temporary
// files, which costs little here and keeps the close's PostgreSQL processes
// (two sessions and their parallel workers) under 300 MB together.
func tuneBulk(tx *gorm.DB) error {
	for _, set := range []string{
		`SET LOCAL work_mem = '16MB'`,
		`SET LOCAL parallel_setup_cost = 100`,
		`SET LOCAL parallel_tuple_cost = 0.01`,
		`SET LOCAL jit = off`,
	} {
		if err := tx.Exec(set).Error; err != nil {
			return err
		}
	}
	return nil
}

// timestamps is ts as a PostgreSQL timestamptz[] literal, bound as one
// parameter (gorm would expand a slice into one parameter per element).
func timestamps(ts []time.Time) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = `"` + t.UTC().Format("2006-01-02 15:04:05.999999-07:00") + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// bucket is the bucket of a time expression among @bounds.
func bucket(at string) string { return `width_bucket(` + at + `, CAST(@bounds AS timestamptz[]))` }

// partnerAccounts returns the ids of the partner accounts of the given kinds
// as an array literal: the aggregates filter entries by it, so the planner
// sees, from the column's statistics, how many entries that is.
func partnerAccounts(tx *gorm.DB, kinds ...string) (string, error) {
	var ids []int64
	if err := tx.Raw(`SELECT id FROM ledger_accounts WHERE kind IN ? ORDER BY id`, kinds).Scan(&ids).Error; err != nil {
		return "", err
	}
	return database.Int64Array(ids), nil
}

// BatchLeg is one aggregated group of a batch's entries on partner accounts
// (Kind is the account kind), or of the breakage attributed to a partner
// through lots (Kind "breakage"), in one bucket of the bounds. Late
// transactions (occurred or posted before the batch's start) on issued and
// redeemed accounts stay one leg each, with their id and occurred_at.
type BatchLeg struct {
	PartnerID     int64
	Kind          string
	Bucket        int
	Late          bool
	TransactionID *int64
	OccurredAt    *time.Time
	Amount        int64
}

// Legs aggregates the entries on partner accounts of the batch's
// transactions and the breakage attributed through lots, per bucket of
// bounds. Earns and their reversals fall in the bucket of the earn's
// occurred_at, burns and their reversals in the burn's, breakage in the
// lot's earned_at. Groups that sum to zero are left out.
func (b Batch) Legs(tx *gorm.DB, bounds []time.Time) ([]BatchLeg, error) {
	accts, err := partnerAccounts(tx, "partner_issued", "partner_redeemed", "partner_exchange_in", "partner_exchange_out")
	if err != nil {
		return nil, err
	}
	// The planner takes (account, bucket) for millions of groups (it counts
	// the distinct times, not buckets) and would sort the month's rows to
	// group them; hashing them gives the few tens there are.
	if err := tx.Exec(`SET LOCAL enable_sort = off`).Error; err != nil {
		return nil, err
	}
	var rows []BatchLeg
	err = tx.Raw(`WITH x AS (
		SELECT e.account_id, `+bucket("lt.occurred_at")+` AS bucket, false AS late, NULL::bigint AS id,
		       NULL::timestamptz AS occurred_at, sum(e.amount) AS amount
		FROM ledger_transactions lt JOIN ledger_entries e ON e.transaction_id = lt.id
		WHERE `+b.in("lt.id")+` AND lt.occurred_at >= @start AND lt.posted_at >= @start AND lt.reverses_id IS NULL
		  AND `+b.in("e.transaction_id")+` AND e.account_id = ANY(CAST(@accts AS bigint[]))
		GROUP BY 1, 2
		UNION ALL
		SELECT e.account_id, `+bucket("t.priced_at")+`, t.late, t.id, t.occurred_at, e.amount
		FROM `+batchOddTable+` t JOIN ledger_entries e ON e.transaction_id = t.id
		WHERE (t.late OR t.reverses_id IS NOT NULL) AND e.account_id = ANY(CAST(@accts AS bigint[]))),
	legs AS (
		SELECT a.owner_id AS partner_id, a.kind, x.bucket, x.late AND a.kind IN ('partner_issued', 'partner_redeemed') AS late,
		       x.id, x.occurred_at, x.amount
		FROM x JOIN ledger_accounts a ON a.id = x.account_id AND a.kind IN ('partner_issued', 'partner_redeemed',
		     'partner_exchange_in', 'partner_exchange_out')
		UNION ALL
		SELECT l.issuer_partner_id, 'breakage', `+bucket("l.earned_at")+`, false, NULL, NULL, sum(lc.points)
		FROM `+batchOddTable+` t JOIN ledger_lot_consumptions lc ON lc.transaction_id = t.id
		JOIN ledger_lots l ON l.id = lc.lot_id
		WHERE t.type IN ('expiry', 'forfeit') AND l.issuer_partner_id IS NOT NULL
		GROUP BY 1, 3)
	SELECT legs.partner_id, legs.kind, legs.bucket, legs.late,
	       CASE WHEN legs.late THEN legs.id END AS transaction_id,
	       CASE WHEN legs.late THEN legs.occurred_at END AS occurred_at,
	       sum(legs.amount)::bigint AS amount
	FROM legs GROUP BY 1, 2, 3, 4, 5, 6
	HAVING sum(legs.amount) <> 0`, b.args(map[string]any{"start": b.start, "accts": accts, "bounds": timestamps(bounds)})).
		Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	return rows, tx.Exec(`SET LOCAL enable_sort = on`).Error
}

// BatchRedemption is the points of issuer (0: the operator) redeemed at
// redeemer in one bucket of the bounds.
type BatchRedemption struct {
	IssuerPartnerID   int64
	RedeemerPartnerID int64
	Bucket            int
	Points            int64
}

// Redemptions sums, per (issuer, redeemer, bucket of the redemption's
// occurred_at), the lot consumptions of the batch's burns and captures into
// partner_redeemed accounts (attributed by the consumption's issuer), minus
// the lots their reversals recreated (bucketed at the redemption reversed).
// A capture into clawback debt consumed no lot for that part, so its
// reversal's lot without origin is no recreated lot either.
func (b Batch) Redemptions(tx *gorm.DB, bounds []time.Time) ([]BatchRedemption, error) {
	redeemed, err := partnerAccounts(tx, "partner_redeemed")
	if err != nil {
		return nil, err
	}
	var rows []BatchRedemption
	err = tx.Raw(`SELECT coalesce(lc.issuer_partner_id, 0) AS issuer_partner_id, lt.partner_id AS redeemer_partner_id,
		       `+bucket("lt.occurred_at")+` AS bucket, sum(lc.points)::bigint AS points
		FROM ledger_transactions lt JOIN ledger_lot_consumptions lc ON lc.transaction_id = lt.id
		WHERE `+b.in("lt.id")+` AND lt.type IN ('burn', 'capture') AND `+b.in("lc.transaction_id")+`
		  AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = lt.id
		      AND `+b.in("e.transaction_id")+` AND e.account_id = ANY(CAST(@redeemed AS bigint[])))
		GROUP BY 1, 2, 3
		UNION ALL
		SELECT coalesce(l.issuer_partner_id, 0), t.partner_id, `+bucket("t.priced_at")+`, -sum(l.amount)::bigint
		FROM `+batchOddTable+` t JOIN ledger_lots l ON l.transaction_id = t.id AND l.origin_lot_id IS NOT NULL
		WHERE t.reversed_type IN ('burn', 'capture')
		  AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.reverses_id
		      AND e.account_id = ANY(CAST(@redeemed AS bigint[])))
		GROUP BY 1, 2, 3`, b.args(map[string]any{"redeemed": redeemed, "bounds": timestamps(bounds)})).Scan(&rows).Error
	return rows, err
}

// LotMove is the lot points created (+) or consumed (−) for issuer (0: the
// operator) in one bucket of the bounds, by the lots' earned_at.
type LotMove struct {
	IssuerPartnerID int64
	Bucket          int
	Points          int64
}

// LotMoves sums the lot points created and consumed by the batch's
// transactions, per issuer and bucket of the lots' earned_at.
func (b Batch) LotMoves(tx *gorm.DB, bounds []time.Time) ([]LotMove, error) {
	var rows []LotMove
	err := tx.Raw(`SELECT coalesce(l.issuer_partner_id, 0) AS issuer_partner_id, `+bucket("l.earned_at")+` AS bucket,
		sum(l.amount)::bigint AS points
	FROM ledger_lots l WHERE `+b.in("l.transaction_id")+`
	GROUP BY 1, 2
	UNION ALL
	SELECT coalesce(l.issuer_partner_id, 0), `+bucket("l.earned_at")+`, -sum(lc.points)::bigint
	FROM ledger_lot_consumptions lc JOIN ledger_lots l ON l.id = lc.lot_id WHERE `+b.in("lc.transaction_id")+`
	GROUP BY 1, 2`, b.args(map[string]any{"bounds": timestamps(bounds)})).Scan(&rows).Error
	return rows, err
}

// SettledLotMoves is LotMoves over every transaction settled by the given
// batches.
func SettledLotMoves(tx *gorm.DB, batches []int64, bounds []time.Time) ([]LotMove, error) {
	var rows []LotMove
	err := tx.Raw(`WITH settled AS (
		SELECT transaction_id AS id FROM ledger_settlements WHERE batch_id = ANY(CAST(@batches AS bigint[])))
	SELECT coalesce(l.issuer_partner_id, 0) AS issuer_partner_id, `+bucket("l.earned_at")+` AS bucket,
		sum(l.amount)::bigint AS points
	FROM settled t JOIN ledger_lots l ON l.transaction_id = t.id
	GROUP BY 1, 2
	UNION ALL
	SELECT coalesce(l.issuer_partner_id, 0), `+bucket("l.earned_at")+`, -sum(lc.points)::bigint
	FROM settled t JOIN ledger_lot_consumptions lc ON lc.transaction_id = t.id JOIN ledger_lots l ON l.id = lc.lot_id
	GROUP BY 1, 2`, map[string]any{"batches": database.Int64Array(batches), "bounds": timestamps(bounds)}).Scan(&rows).Error
	return rows, err
}

// RefTotal is the points a partner's transactions under one external
// reference moved, net of reversals: Kind "earn" for earns, "burn" for burns
// and captures.
type RefTotal struct {
	ExternalRef string
	Kind        string
	Points      int64
}

// SettledRefTotals sums, per external reference and kind, the earns, burns
// and captures of partner settled by batch and their reversals (which
// count against the reference of what they reverse). Transactions without
// a reference are left out.
func SettledRefTotals(tx *gorm.DB, batch, partner int64) ([]RefTotal, error) {
	var rows []RefTotal
	err := tx.Raw(`SELECT coalesce(o.external_ref, lt.external_ref) AS external_ref,
		       CASE WHEN coalesce(o.type, lt.type) = 'earn' THEN 'earn' ELSE 'burn' END AS kind,
		       sum(CASE WHEN lt.type = 'reversal' THEN -lt.points ELSE lt.points END)::bigint AS points
		FROM ledger_settlements s
		JOIN ledger_transactions lt ON lt.id = s.transaction_id
		LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE s.batch_id = @batch AND lt.partner_id = @partner
		  AND (lt.type IN ('earn', 'burn', 'capture') OR (lt.type = 'reversal' AND o.type IN ('earn', 'burn', 'capture')))
		  AND coalesce(o.external_ref, lt.external_ref) <> ''
		GROUP BY 1, 2`, map[string]any{"batch": batch, "partner": partner}).Scan(&rows).Error
	return rows, err
}

// PriceVersion is a version of the caller's prices and when it took effect.
type PriceVersion struct {
	Version       int
	EffectiveFrom time.Time
}

// BatchTransaction is one transaction of a batch behind a line of a
// partner's statement, with its points on the line and the price version
// it was priced at (0: none).
type BatchTransaction struct {
	TransactionID   int64
	Type            string
	MemberID        int64
	OccurredAt      time.Time
	PostedAt        time.Time
	ExternalRef     string
	Points          int64
	ContractVersion int
	Late            bool
}

// BatchLineQuery selects a line's transactions among those batch settled:
// of a partner, after a transaction id, at most Limit. Version 0 takes every
// price version. Kind is a partner account kind (entries × Sign) or
// "breakage" (the lot points of expiries and forfeits the partner issued,
// priced by the lots' earned_at). Late (only on issued and redeemed
// accounts: occurred or posted before Start) takes the late transactions
// that occurred in [LateFrom, LateTo), otherwise the others.
type BatchLineQuery struct {
	Batch, Partner, After int64
	Limit                 int
	Start                 time.Time
	Kind                  string
	Sign                  int64
	Versions              []PriceVersion
	Version               int
	Late                  bool
	LateFrom, LateTo      time.Time
}

// BatchLineTransactions lists, in id order, the transactions of q (a
// reversal priced at its original's occurred_at).
func BatchLineTransactions(tx *gorm.DB, q BatchLineQuery) ([]BatchTransaction, error) {
	versions, froms := make([]int64, len(q.Versions)), make([]time.Time, len(q.Versions))
	for i, v := range q.Versions {
		versions[i], froms[i] = int64(v.Version), v.EffectiveFrom
	}
	args := map[string]any{"batch": q.Batch, "partner": q.Partner, "after": q.After, "limit": q.Limit,
		"start": q.Start, "version": q.Version, "late": q.Late, "from": q.LateFrom, "to": q.LateTo,
		"versions": database.Int64Array(versions), "froms": timestamps(froms), "kind": q.Kind, "sign": q.Sign}
	lateCond := `(@late AND x.late AND x.occurred_at >= @from AND x.occurred_at < @to OR NOT @late AND NOT x.late)`
	contracts := `v AS (SELECT * FROM unnest(CAST(@versions AS bigint[]), CAST(@froms AS timestamptz[])) v (version, effective_from)),
	c AS (SELECT version, effective_from, coalesce(lead(effective_from) OVER (ORDER BY effective_from), 'infinity') AS effective_to
		FROM v)`
	var rows []BatchTransaction
	if q.Kind == "breakage" {
		err := tx.Raw(`WITH `+contracts+`,
		x AS (SELECT lt.id, lt.type, lt.member_id, lt.occurred_at, lt.posted_at, lt.external_ref, l.earned_at, lc.points, false AS late
			FROM ledger_settlements s JOIN ledger_transactions lt ON lt.id = s.transaction_id AND lt.type IN ('expiry', 'forfeit')
			JOIN ledger_lot_consumptions lc ON lc.transaction_id = lt.id
			JOIN ledger_lots l ON l.id = lc.lot_id AND l.issuer_partner_id = @partner
			WHERE s.batch_id = @batch AND lt.id > @after)
		SELECT x.id AS transaction_id, x.type, x.member_id, x.occurred_at, x.posted_at, x.external_ref,
		       sum(x.points)::bigint AS points, coalesce(c.version, 0) AS contract_version, false AS late
		FROM x LEFT JOIN c ON x.earned_at >= c.effective_from AND x.earned_at < c.effective_to
		WHERE (@version = 0 OR c.version = @version)
		GROUP BY 1, 2, 3, 4, 5, 6, 8 ORDER BY 1 LIMIT @limit`, args).Scan(&rows).Error
		return rows, err
	}
	if q.Kind != "partner_issued" && q.Kind != "partner_redeemed" {
		lateCond = "true"
	}
	err := tx.Raw(`WITH `+contracts+`,
	x AS (SELECT lt.id, lt.type, lt.member_id, lt.occurred_at, lt.posted_at, lt.external_ref,
		       coalesce(o.occurred_at, lt.occurred_at) AS priced_at, e.amount,
		       (lt.occurred_at < @start OR lt.posted_at < @start) AS late
		FROM ledger_settlements s JOIN ledger_transactions lt ON lt.id = s.transaction_id
		JOIN ledger_entries e ON e.transaction_id = lt.id
		JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = @kind AND a.owner_id = @partner
		LEFT JOIN ledger_transactions o ON o.id = lt.reverses_id
		WHERE s.batch_id = @batch AND lt.id > @after)
	SELECT x.id AS transaction_id, x.type, x.member_id, x.occurred_at, x.posted_at, x.external_ref,
	       (@sign * x.amount)::bigint AS points, coalesce(c.version, 0) AS contract_version, x.late
	FROM x LEFT JOIN c ON x.priced_at >= c.effective_from AND x.priced_at < c.effective_to
	WHERE (@version = 0 OR c.version = @version) AND `+lateCond+`
	ORDER BY 1 LIMIT @limit`, args).Scan(&rows).Error
	return rows, err
}

// SettledCount returns how many transactions batch settled.
func SettledCount(tx *gorm.DB, batch int64) (int64, error) {
	var n int64
	err := tx.Raw(`SELECT count(*) FROM ledger_settlements WHERE batch_id = ?`, batch).Row().Scan(&n)
	return n, err
}
