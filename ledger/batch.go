package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
)

// EarnOutcome is what EarnBatch did with one request: Transaction is the
// posted earn (Replayed when the key had already been used by the same
// request), or Err says why this request was refused (*validation.Error,
// ErrIdempotencyMismatch). The other requests of the batch are unaffected.
type EarnOutcome struct {
	Transaction Transaction
	Err         error
}

// EarnBatch posts earns as Earn would post them one after another in input
// order, with the same guarantees (one lot per funding source, clawback debt
// repaid first, partner-funded lot first, idempotency per key), in a handful
// of statements whatever the number of requests: ensure the accounts, claim
// every key, lock the member accounts in id order, then write all
// transactions, entries, lots, debt repayments and balances in one statement.
//
// A request under a key used earlier (by a committed request, or by an
// earlier request of the same batch) replays that request's transaction, or
// is ErrIdempotencyMismatch when its body differs. Outcomes are in input
// order. The error is for the batch as a whole (the database failed): then
// nothing was posted, and the caller's transaction (Joined) is unusable.
//
// Lock order: keys are claimed before any member account is locked, and
// accounts are locked in id order in one statement, as every other ledger
// operation does, so batches cannot deadlock with each other or with single
// operations.
func (s *Service) EarnBatch(ctx context.Context, reqs []EarnRequest) ([]EarnOutcome, error) {
	return s.EarnBatchWith(ctx, reqs, nil)
}

// ClaimedEarn is a request of a batch that claimed its key and will be
// posted: its index in the batch, the id its transaction will have, and its
// occurred_at as it will be stored. beforeLock sets Held to post the earn
// held for review: its lots are pending until HeldForReview (and expire
// nowhere) until Release gives them their real dates.
type ClaimedEarn struct {
	Index         int
	TransactionID int64
	OccurredAt    time.Time
	Held          bool
}

// EarnBatchWith is EarnBatch that calls beforeLock, when some requests will be
// posted, after their keys are claimed and before any member account is
// locked, in the same database transaction: work that depends on what will
// be posted but not on balances (the programme's qualifying credits) runs
// there without holding the members' rows. An error from beforeLock fails the
// batch as a whole. beforeLock must not lock member accounts.
func (s *Service) EarnBatchWith(ctx context.Context, reqs []EarnRequest, beforeLock func(tx *gorm.DB, earns []ClaimedEarn) error) ([]EarnOutcome, error) {
	out := make([]EarnOutcome, len(reqs))
	hashes := make([][]byte, len(reqs))
	var valid []int
	for i, r := range reqs {
		if err := r.validate(); err != nil {
			out[i].Err = err
			continue
		}
		hashes[i] = r.Idem.RequestHash
		if len(hashes[i]) == 0 {
			h, err := hashRequest(r)
			if err != nil {
				out[i].Err = fmt.Errorf("earn: hash request: %w", err)
				continue
			}
			hashes[i] = h
		}
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		return out, nil
	}
	err := s.within(ctx, func(tx *gorm.DB) error {
		return earnBatch(tx, s.clock(), reqs, hashes, valid, out, beforeLock)
	})
	if err != nil {
		return nil, fmt.Errorf("earn batch: %w", err)
	}
	return out, nil
}

// idemKey is an idempotency key with its scope.
type idemKey struct{ Scope, Key string }

func (r EarnRequest) idemKey() idemKey { return idemKey{r.Idem.Scope, r.Idem.Key} }

// batchEarn is a request of the batch that claimed its key: it is posted.
type batchEarn struct {
	i                int // index in the batch
	r                EarnRequest
	txID             int64
	member           *account
	issued, promo    int64 // account ids (0 when the source funds nothing)
	occurred         time.Time
	available        time.Time
	repaid, opRepaid int64 // clawback debt repaid from the partner-funded and operator-funded lots
	balance          int64 // the member's balance after this earn
}

func earnBatch(tx *gorm.DB, now time.Time, reqs []EarnRequest, hashes [][]byte, valid []int, out []EarnOutcome,
	beforeLock func(tx *gorm.DB, earns []ClaimedEarn) error) error {
	// The first valid request under each key claims it; later ones are
	// answered from the record it leaves, as if sent after it.
	leaderOf := make(map[idemKey]int, len(valid))
	var leaders []int
	for _, i := range valid {
		k := reqs[i].idemKey()
		if _, ok := leaderOf[k]; !ok {
			leaderOf[k] = i
			leaders = append(leaders, i)
		}
	}
	var keys []accountKey
	for _, i := range leaders {
		keys = append(keys, reqs[i].accountKeys()...)
	}
	// The accounts and the key claims travel in one round trip (with BEGIN,
	// as the transaction's first statements): the claims need no answer of
	// the accounts statement.
	accountsSt, ids, want := accountsStatement(keys)
	claimSt, claimed := claimStatement(reqs, hashes, leaders, now)
	if err := database.Pipeline(tx, accountsSt, claimSt); err != nil {
		return fmt.Errorf("ensure accounts and claim idempotency keys: %w", err)
	}
	if len(ids) < want {
		// An account created by a concurrent transaction after the
		// statement's snapshot: ensure them again (no member is locked yet).
		var err error
		if ids, err = ensureAccountsBatch(tx, keys); err != nil {
			return err
		}
	}
	// Records of the keys not claimed: an earlier request's.
	records := make(map[idemKey]idemRecord, len(leaders))
	var taken []idemKey
	for _, i := range leaders {
		k := reqs[i].idemKey()
		if txID, ok := claimed[k]; ok {
			records[k] = idemRecord{Operation: "earn", RequestHash: hashes[i], TransactionID: &txID}
		} else {
			taken = append(taken, k)
		}
	}
	if err := readIdempotencyBatch(tx, taken, records); err != nil {
		return err
	}

	// Lock the members of the earns to post, then compute every posting
	// under the locks, in input order.
	var posts []*batchEarn
	var accountIDs []int64
	seen := map[int64]bool{}
	for _, i := range leaders {
		txID, ok := claimed[reqs[i].idemKey()]
		if !ok {
			continue
		}
		r := reqs[i]
		p := &batchEarn{i: i, r: r, txID: txID, occurred: orNow(r.OccurredAt, now), available: now}
		if r.AvailableAt != nil {
			p.available = r.AvailableAt.UTC().Truncate(time.Microsecond)
		}
		if r.Points > 0 {
			p.issued = ids[accountKey{KindPartnerIssued, r.PartnerID}]
		}
		if r.OperatorFunded > 0 {
			p.promo = ids[accountKey{KindOperatorPromotions, 0}]
		}
		posts = append(posts, p)
		id := ids[accountKey{KindMember, r.MemberID}]
		if !seen[id] {
			seen[id] = true
			accountIDs = append(accountIDs, id)
		}
	}
	posted := make(map[int64]*Transaction, len(posts))
	if len(posts) > 0 && beforeLock != nil {
		earns := make([]ClaimedEarn, len(posts))
		for k, p := range posts {
			earns[k] = ClaimedEarn{Index: p.i, TransactionID: p.txID, OccurredAt: p.occurred.UTC()}
		}
		if err := beforeLock(tx, earns); err != nil {
			return err
		}
		for k, p := range posts {
			if earns[k].Held {
				p.available = HeldForReview
				p.r.ExpiresAt = nil
			}
		}
	}
	if len(posts) > 0 {
		accts, err := lockMembers(tx, accountIDs)
		if err != nil {
			return err
		}
		for _, p := range posts {
			p.member = accts[ids[accountKey{KindMember, p.r.MemberID}]]
			debt := max(0, -p.member.Balance)
			p.repaid = min(debt, int64(p.r.Points))
			p.opRepaid = min(debt-p.repaid, int64(p.r.OperatorFunded))
			p.member.Balance += int64(p.r.Points + p.r.OperatorFunded)
			p.balance = p.member.Balance
		}
		cons, err := writeEarnBatch(tx, posts, accts, now)
		if err != nil {
			return err
		}
		for _, p := range posts {
			t := p.transaction(now)
			t.Consumptions = cons[p.txID]
			posted[p.txID] = &t
			out[p.i].Transaction = t
		}
	}

	// Everyone else replays a record: load the transactions they point at
	// that this batch did not post, in one go.
	isPost := func(i int) bool {
		k := reqs[i].idemKey()
		_, ok := claimed[k]
		return ok && leaderOf[k] == i
	}
	var load []int64
	toLoad := map[int64]bool{}
	for _, i := range valid {
		if isPost(i) {
			continue
		}
		if rec := records[reqs[i].idemKey()]; rec.TransactionID != nil && posted[*rec.TransactionID] == nil && !toLoad[*rec.TransactionID] {
			toLoad[*rec.TransactionID] = true
			load = append(load, *rec.TransactionID)
		}
	}
	loaded, err := loadTransactions(tx, load)
	if err != nil {
		return err
	}
	for i := range loaded {
		posted[loaded[i].ID] = &loaded[i]
	}
	for _, i := range valid {
		if !isPost(i) {
			out[i].Transaction, out[i].Err = replayBatch(records[reqs[i].idemKey()], reqs[i].Idem, hashes[i], posted)
		}
	}
	return nil
}

// replayBatch is replay for a batch request, with the transactions of the
// batch's records already loaded.
func replayBatch(rec idemRecord, idem Idempotency, hash []byte, txs map[int64]*Transaction) (Transaction, error) {
	if rec.Operation != "earn" || !bytes.Equal(rec.RequestHash, hash) {
		return Transaction{}, fmt.Errorf("earn with key %q: %w", idem.Key, ErrIdempotencyMismatch)
	}
	if rec.TransactionID == nil {
		// A record storing its result (earns before migration 00191).
		return replay[Transaction](nil, rec, idem, "earn", hash)
	}
	t := txs[*rec.TransactionID]
	if t == nil {
		return Transaction{}, fmt.Errorf("earn with key %q: stored transaction %d not found", idem.Key, *rec.TransactionID)
	}
	c := *t
	c.Entries = append([]Entry(nil), t.Entries...)
	c.Consumptions = append([]LotConsumption(nil), t.Consumptions...)
	c.Replayed = true
	return c, nil
}

// transaction is the earn p posts.
func (p *batchEarn) transaction(now time.Time) Transaction {
	r := p.r
	total := r.Points + r.OperatorFunded
	entries := []Entry{{AccountID: p.member.ID, Kind: KindMember, OwnerID: r.MemberID, Points: total}}
	if r.Points > 0 {
		entries = append(entries, Entry{AccountID: p.issued, Kind: KindPartnerIssued, OwnerID: r.PartnerID, Points: -r.Points})
	}
	if r.OperatorFunded > 0 {
		entries = append(entries, Entry{AccountID: p.promo, Kind: KindOperatorPromotions, Points: -r.OperatorFunded})
	}
	return Transaction{ID: p.txID, Type: TypeEarn, MemberID: r.MemberID, PartnerID: r.PartnerID, Points: total,
		OccurredAt: p.occurred.UTC(), PostedAt: now.UTC(), ExternalRef: r.ExternalRef, Details: r.Details,
		Entries: entries, BalanceAfter: Points(p.balance)}
}

// ensureAccountsBatch creates the accounts of keys that do not exist yet and
// returns the ids of all of them (ensureAccounts uses it for any number of
// keys): it reads the accounts that exist and creates only the missing ones
// (in key order, so concurrent creators cannot deadlock), in one statement.
// Call it before locking any account.
func ensureAccountsBatch(tx *gorm.DB, keys []accountKey) (map[accountKey]int64, error) {
	for attempt := 0; attempt < 3; attempt++ {
		st, out, want := accountsStatement(keys)
		if err := database.Pipeline(tx, st); err != nil {
			return nil, fmt.Errorf("ensure accounts: %w", err)
		}
		if len(out) == want {
			return out, nil
		}
		// A key created by a concurrent transaction after this statement's
		// snapshot: the next statement sees it.
	}
	return nil, errors.New("ensure accounts: accounts not visible after retries")
}

// accountsStatement is ensureAccountsBatch's statement for keys: it fills out
// with the id of each of the want distinct keys it finds or creates (fewer
// when a key was created by a concurrent transaction after the statement's
// snapshot; ensureAccountsBatch then sends it again).
func accountsStatement(keys []accountKey) (st database.Stmt, out map[accountKey]int64, want int) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Kind != keys[j].Kind {
			return keys[i].Kind < keys[j].Kind
		}
		return keys[i].Owner < keys[j].Owner
	})
	var kinds []string
	var owners []int64
	seen := map[accountKey]bool{}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, string(k.Kind))
			owners = append(owners, k.Owner)
		}
	}
	// One index lookup per key (LIMIT keeps the planner from turning the
	// lookup into a scan of every account), then the missing ones inserted.
	const q = `WITH k AS (
		SELECT * FROM unnest($1::text[], $2::bigint[]) AS k(kind, owner_id)
	), look AS (
		SELECT k.kind, k.owner_id, a.id FROM k LEFT JOIN LATERAL (SELECT a.id FROM ledger_accounts a
			WHERE a.kind = k.kind AND a.owner_id = k.owner_id LIMIT 1) a ON true
	), ins AS (
		INSERT INTO ledger_accounts (kind, owner_id)
		SELECT kind, owner_id FROM look WHERE id IS NULL ORDER BY kind, owner_id
		ON CONFLICT (kind, owner_id) DO NOTHING RETURNING id, kind, owner_id
	)
	SELECT id, kind, owner_id FROM look WHERE id IS NOT NULL UNION ALL SELECT id, kind, owner_id FROM ins`
	out = make(map[accountKey]int64, len(seen))
	st = database.Stmt{SQL: q, Args: []any{kinds, owners}, Scan: func(row database.Row) error {
		var id, owner int64
		var kind string
		if err := row.Scan(&id, &kind, &owner); err != nil {
			return err
		}
		out[accountKey{AccountKind(kind), owner}] = id
		return nil
	}}
	return st, out, len(seen)
}

// lockMembers is lockAccounts (member accounts in id order, the global lock
// order) straight on the connection: gorm's Scan renders each statement
// through a regular expression for its logger, which costs more than the
// lock. Statements deferred before it (the programme's credit of a batch
// earn) travel in its pipeline.
func lockMembers(tx *gorm.DB, ids []int64) (map[int64]*account, error) {
	out := make(map[int64]*account, len(ids))
	err := database.Pipeline(tx, database.Stmt{SQL: `SELECT id, kind, owner_id, balance, held FROM ledger_accounts
		WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, Args: []any{ids}, Scan: func(row database.Row) error {
		a := &account{}
		var kind string
		if err := row.Scan(&a.ID, &kind, &a.OwnerID, &a.Balance, &a.Held); err != nil {
			return err
		}
		a.Kind = AccountKind(kind)
		out[a.ID] = a
		return nil
	}})
	if err != nil {
		return nil, fmt.Errorf("lock accounts: %w", err)
	}
	for _, id := range ids {
		if out[id] == nil {
			return nil, fmt.Errorf("lock account %d: %w", id, ErrNotFound)
		}
	}
	return out, nil
}

// claimStatement claims the keys of the given requests (distinct keys) in one
// statement, in key order (two batches sharing keys wait for each other in
// the same order, never in a cycle), and draws a transaction id for each key
// claimed, recorded with the claim (every claimed key is posted by
// writeEarnBatch in the same database transaction, or nothing is); it fills
// out with the keys claimed. A key held by a concurrent uncommitted request
// makes the statement wait for it, as claimIdempotency does.
func claimStatement(reqs []EarnRequest, hashes [][]byte, idx []int, now time.Time) (database.Stmt, map[idemKey]int64) {
	scopes := make([]string, len(idx))
	keys := make([]string, len(idx))
	hs := make([][]byte, len(idx))
	for n, i := range idx {
		scopes[n], keys[n], hs[n] = reqs[i].Idem.Scope, reqs[i].Idem.Key, hashes[i]
	}
	out := make(map[idemKey]int64, len(idx))
	return database.Stmt{SQL: `INSERT INTO ledger_idempotency (scope, key, operation, request_hash, created_at, transaction_id)
		SELECT k.scope, k.key, 'earn', k.hash, $4::timestamptz, nextval('ledger_transactions_id_seq')
		FROM unnest($1::text[], $2::text[], $3::bytea[]) AS k(scope, key, hash)
		ORDER BY k.scope, k.key
		ON CONFLICT (scope, key) DO NOTHING
		RETURNING scope, key, transaction_id`, Args: []any{scopes, keys, hs, now}, Scan: func(row database.Row) error {
		var k idemKey
		var txID int64
		if err := row.Scan(&k.Scope, &k.Key, &txID); err != nil {
			return err
		}
		out[k] = txID
		return nil
	}}, out
}

// readIdempotencyBatch reads the records of keys known to exist into records.
func readIdempotencyBatch(tx *gorm.DB, keys []idemKey, records map[idemKey]idemRecord) error {
	if len(keys) == 0 {
		return nil
	}
	scopes := make([]string, len(keys))
	names := make([]string, len(keys))
	for i, k := range keys {
		scopes[i], names[i] = k.Scope, k.Key
	}
	err := database.Query(tx, `SELECT g.scope, g.key, g.operation, g.request_hash, g.result::text AS result, g.transaction_id
		FROM unnest($1::text[], $2::text[]) AS k(scope, key)
		CROSS JOIN LATERAL (SELECT * FROM ledger_idempotency g WHERE g.scope = k.scope AND g.key = k.key LIMIT 1) g`,
		[]any{scopes, names}, func(rows *sql.Rows) error {
			var k idemKey
			var r idemRecord
			if err := rows.Scan(&k.Scope, &k.Key, &r.Operation, &r.RequestHash, &r.Result, &r.TransactionID); err != nil {
				return err
			}
			records[k] = r
			return nil
		})
	if err != nil {
		return fmt.Errorf("read idempotency keys: %w", err)
	}
	for _, k := range keys {
		if _, ok := records[k]; !ok {
			return fmt.Errorf("idempotency key %q vanished", k.Key)
		}
	}
	return nil
}

// earnBatchSQL writes the postings of a batch in one statement: the
// transactions (ids drawn by claimBatch), their entries, one lot per funding
// source with the debt repaid taken off, the repayments as consumptions of
// the new lots and the member balances computed under their locks (the
// idempotency records point at the transactions since their claim). It
// returns the consumptions. Entries and lots are inserted in input order (member,
// issued, promotions; partner-funded lot first), so a transaction loaded
// again lists them as posted. The items come as one typed array per column
// (binary protocol: no JSON to write in the hub or to parse in PostgreSQL),
// in input order, which WITH ORDINALITY numbers.
var earnBatchSQL = database.CompileNamed(`WITH i AS (
	SELECT * FROM unnest(CAST(@tx AS bigint[]), CAST(@member AS bigint[]), CAST(@partner AS bigint[]),
	    CAST(@acct AS bigint[]), CAST(@issued AS bigint[]), CAST(@promo AS bigint[]), CAST(@points AS bigint[]),
	    CAST(@opfunded AS bigint[]), CAST(@occurred AS timestamptz[]), CAST(@available AS timestamptz[]),
	    CAST(@expires AS timestamptz[]), CAST(@ref AS text[]), CAST(@details AS text[]), CAST(@balance AS bigint[]),
	    CAST(@scope AS text[]), CAST(@key AS text[]), CAST(@repaid AS bigint[]), CAST(@op_repaid AS bigint[]))
	    WITH ORDINALITY AS i(tx, member, partner, acct, issued, promo, points, opfunded, occurred, available, expires,
	    ref, details, balance, scope, key, repaid, op_repaid, ord)
), t AS (
	INSERT INTO ledger_transactions (id, type, member_id, partner_id, points, occurred_at, posted_at, external_ref,
	    details, balance_after, idempotency_scope, idempotency_key, checked_in_statement)
	OVERRIDING SYSTEM VALUE
	SELECT i.tx, 'earn', i.member, i.partner, i.points + i.opfunded, i.occurred, CAST(@now AS timestamptz), i.ref,
	       CAST(i.details AS json), i.balance, i.scope, i.key, true
	FROM i ORDER BY i.ord
), e AS (
	INSERT INTO ledger_entries (transaction_id, account_id, amount, posted_at)
	SELECT i.tx, x.account_id, x.amount, CAST(@now AS timestamptz)
	FROM i, LATERAL (VALUES (1, i.acct, i.points + i.opfunded), (2, i.issued, -i.points), (3, i.promo, -i.opfunded))
	    AS x(n, account_id, amount)
	WHERE x.amount <> 0 ORDER BY i.ord, x.n
), l AS (
	INSERT INTO ledger_lots (account_id, transaction_id, issuer_partner_id, amount, remaining, earned_at, available_at, expires_at)
	SELECT i.acct, i.tx, s.issuer, s.amount, s.amount - s.repaid, i.occurred, i.available, i.expires
	FROM i, LATERAL (VALUES (1, i.partner, i.points, i.repaid), (2, CAST(NULL AS bigint), i.opfunded, i.op_repaid))
	    AS s(n, issuer, amount, repaid)
	WHERE s.amount > 0 ORDER BY i.ord, s.n
	RETURNING id, transaction_id, issuer_partner_id, amount - remaining AS repaid
), c AS (
	INSERT INTO ledger_lot_consumptions (lot_id, transaction_id, issuer_partner_id, points, posted_at)
	SELECT l.id, l.transaction_id, l.issuer_partner_id, l.repaid, CAST(@now AS timestamptz) FROM l WHERE l.repaid > 0
), b AS (
	UPDATE ledger_accounts a SET balance = n.balance
	FROM unnest(CAST(@account_ids AS bigint[]), CAST(@balances AS bigint[])) AS n(id, balance)
	-- = ANY: index lookups, not a hash join over every account.
	WHERE a.id = n.id AND a.id = ANY(CAST(@account_ids AS bigint[]))
)
SELECT l.id AS lot_id, l.transaction_id, l.issuer_partner_id, l.repaid AS points FROM l WHERE l.repaid > 0 ORDER BY l.id`)

// writeEarnBatch runs earnBatchSQL for posts and returns the consumptions
// (debt repaid) by transaction id.
func writeEarnBatch(tx *gorm.DB, posts []*batchEarn, accts map[int64]*account, now time.Time) (map[int64][]LotConsumption, error) {
	n := len(posts)
	var (
		txs, members, acctIDs, points, opfunded, balance, repaid, opRepaid = make([]int64, n), make([]int64, n),
			make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		partner, issued, promo = make([]*int64, n), make([]*int64, n), make([]*int64, n)
		occurred, available    = make([]time.Time, n), make([]time.Time, n)
		expires                = make([]*time.Time, n)
		refs, scopes, keys     = make([]string, n), make([]string, n), make([]string, n)
		details                = make([]*string, n)
	)
	for k, p := range posts {
		r := p.r
		txs[k], members[k], acctIDs[k] = p.txID, r.MemberID, p.member.ID
		partner[k], issued[k], promo[k] = nullID(r.PartnerID), nullID(p.issued), nullID(p.promo)
		points[k], opfunded[k] = int64(r.Points), int64(r.OperatorFunded)
		occurred[k], available[k], expires[k] = p.occurred, p.available, truncPtr(r.ExpiresAt)
		refs[k], scopes[k], keys[k] = r.ExternalRef, r.Idem.Scope, r.Idem.Key
		balance[k], repaid[k], opRepaid[k] = p.balance, p.repaid, p.opRepaid
		if len(r.Details) > 0 {
			d := string(r.Details)
			details[k] = &d
		}
	}
	ids := make([]int64, 0, len(accts))
	for id := range accts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	balances := make([]int64, len(ids))
	for k, id := range ids {
		balances[k] = accts[id].Balance
	}
	args, err := earnBatchSQL.Args(map[string]any{"tx": txs, "member": members, "partner": partner, "acct": acctIDs,
		"issued": issued, "promo": promo, "points": points, "opfunded": opfunded, "occurred": occurred,
		"available": available, "expires": expires, "ref": refs, "details": details, "balance": balance,
		"scope": scopes, "key": keys, "repaid": repaid, "op_repaid": opRepaid, "account_ids": ids,
		"balances": balances, "now": now})
	if err != nil {
		return nil, fmt.Errorf("post earns: %w", err)
	}
	out := map[int64][]LotConsumption{}
	err = database.Query(tx, earnBatchSQL.SQL, args, func(rows *sql.Rows) error {
		var c LotConsumption
		var txID int64
		var issuer *int64
		if err := rows.Scan(&c.LotID, &txID, &issuer, &c.Points); err != nil {
			return err
		}
		c.IssuerPartnerID = database.Deref(issuer)
		out[txID] = append(out[txID], c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("post earns: %w", translate(err))
	}
	return out, nil
}

// TakenKeys reports which of keys already have a record in scope: a request
// under one of them replays that record or is refused as a mismatch. It lets
// a caller that accumulates limits over a batch (daily earn caps) leave the
// replays out. One statement.
func (s *Service) TakenKeys(ctx context.Context, scope string, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	doc, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("taken keys: %w", err)
	}
	var taken []string
	if err := s.db.WithContext(ctx).Raw(`SELECT key FROM ledger_idempotency
		WHERE scope = ? AND key IN (SELECT json_array_elements_text(CAST(? AS json)))`, scope, string(doc)).
		Scan(&taken).Error; err != nil {
		return nil, fmt.Errorf("taken keys: %w", err)
	}
	for _, k := range taken {
		out[k] = true
	}
	return out, nil
}
