// Package ledger is the hub's double-entry points ledger: accounts,
// transactions, entries, lots, holds and lot consumptions. Every other domain
// moves points only through Service.
//
// # Model
//
// Accounts are (kind, owner): one "member" account per member, partner
// accounts (partner_issued, partner_redeemed, partner_exchange_in/out) per
// partner and operator accounts (breakage, promotions, adjustments, fees) with
// owner 0. They are created lazily (INSERT ... ON CONFLICT DO NOTHING).
//
// A transaction has two or more entries summing to zero, and its entries and
// lots name accounts that exist: checked at the end of its statement for
// postings that write it whole in one statement and say so
// (checked_in_statement: earns, batch earns, one-step burns), at commit by a
// deferred constraint trigger for every other. Entries, transactions and
// consumptions are append-only (triggers refuse UPDATE and DELETE): mistakes
// are fixed by reversing transactions. The rules of single columns are
// domains, the rules between a transaction's columns run in its statement
// trigger (migration 00250: a CHECK constraint is recompiled for every
// statement, a domain once per connection).
//
// Each credit to a member creates lots (amount, remaining, issuer partner or
// none for operator-funded points, earned_at, available_at, expires_at).
// Spending consumes lots in burn order — earliest expires_at first (no expiry
// last), then oldest earned_at — and records a consumption per lot, which is
// how a burn at partner B is attributed to issuer A and how expiry knows what
// to expire. Transfers, merges and burn reversals create new lots that keep
// the issuer, earned_at and expires_at of the lots they came from
// (origin_lot_id links them).
//
// # Balances
//
// Only member accounts carry a stored balance and held total, updated in the
// same database transaction as the entries, under the member row's lock.
// Partner and operator balances are never updated per posting: they are sums
// over ledger_entries (indexed by account and time), so a partner issuing
// points to thousands of members never funnels through one locked row.
//
// Balance.Total is the sum of the member's entries (pending points included).
// Available = points in lots that are available (available_at <= now) and not
// expired (expires_at > now), minus active holds. Points past their expiry
// are not spendable even before the expiry job has moved them to breakage.
// The parts of a Balance always add up: Total = Available + Pending + Held +
// Expired − Owed, where Owed is clawback debt plus held points a clawback
// left without cover.
//
// # Invariants (checked by Audit / `hub audit`)
//
//   - entries of each transaction sum to zero, at least two per transaction;
//   - each member balance equals the sum of its entries;
//   - the remaining points of a member's lots equal max(balance, 0): a negative
//     balance (clawback debt) has no live lots;
//   - held equals the sum of active holds and never exceeds the settled lots
//     (available_at <= now) nor the balance, unless a clawback posted after
//     the holds took their cover (holds are never voided by a clawback);
//   - amount − remaining of each lot equals its consumptions;
//   - no idempotency key was applied twice.
//
// # Concurrency
//
// Every change to a member's lots, holds and balance happens while the
// member's account row is locked (SELECT ... FOR UPDATE, or the balance UPDATE
// of an earn). Operations on two members (transfer, merge) lock both accounts
// in id order, so they cannot deadlock. The database runs at READ COMMITTED:
// once the lock is held, later statements see everything committed before.
//
// # Idempotency
//
// Every operation except the batch jobs takes an Idempotency (scope, key,
// optional request hash). The key row is inserted first in the operation's
// transaction with ON CONFLICT DO NOTHING, so a concurrent duplicate waits for
// the first to commit and then replays its stored result (the JSON of the
// first answer, kept in a json column so it is byte-identical); if the first
// fails it stores nothing and the duplicate runs afresh. The same key with a
// different request (or a different operation) is ErrIdempotencyMismatch.
// Holds also carry their key under a UNIQUE constraint, transactions carry
// theirs unindexed (the claim's primary key guards it; `hub audit` checks it).
//
// # Rules decided here
//
//   - Pending: an earn with AvailableAt in the future posts at once (Total
//     grows) but its lot is not spendable until then.
//   - Holds reserve points without pinning lots; a capture consumes settled
//     lots (expired ones first). Lot expiry skips members with active holds
//     until the holds are captured, voided or expire, so a hold never loses its
//     cover. A capture after the hold's expires_at is ErrHoldNotActive.
//   - Reversal of an earn (a clawback) returns points to the funding
//     accounts, the partner-funded part first. It takes the earn's unspent
//     lot points, then the member's available points, then pending lots,
//     then the settled points that cover holds, then expired points, and
//     leaves the rest as a negative balance (clawback debt); clawback.go
//     says why. While negative, burns, holds and transfers fail with
//     ErrAccountBlocked; later credits repay the debt first (a consumption
//     of the new lot by the crediting transaction).
//   - A clawback never voids a hold: holds belong to exchanges, catalog
//     orders and point-of-sale purchases that a partner is already
//     delivering. A hold left without cover is still captured in full: the
//     capture takes the settled lots there are, then pending ones, and the
//     rest deepens the debt (no lot is consumed for that part).
//   - Reversal of a burn or capture recreates the consumed lots, most
//     recently consumed first, with their issuer and expiry; the part of a
//     capture that went into debt comes back first, as a lot without issuer
//     (which repays the debt it made, if still owed). Other transaction types
//     are ErrNotReversible.
//   - A negative adjustment takes only settled, unheld points (it cannot
//     create debt); a positive one creates a lot with no issuer and no expiry.
//   - Transfer limits count points sent in the current UTC day and month.
//   - Forfeit (account closure) voids active holds and moves every remaining
//     point, pending ones too, to breakage. MergeMembers moves lots, active
//     holds and debt to the surviving member (debt takes the survivor's lots
//     in the clawback order); the old history stays on the old
//     account and the merge transaction (MemberID = from, CounterMemberID = to)
//     appears in both members' lists.
//   - Forfeit and merge with nothing to move post no transaction and return
//     a result with ID 0.
//   - List by partner shows transactions where the partner is the issuer of an
//     earn, the redeemer (burn, capture and their reversals) or the issuer of
//     points spent, expired or forfeited; never transfers between members.
//
// # Reads for other packages
//
// The ledger's tables (ledger_accounts, ledger_idempotency, ledger_holds,
// ledger_transactions, ledger_entries, ledger_lots, ledger_lot_consumptions,
// ledger_settlements) are read and written only by this package; a test
// (TestOnlyTheLedgerNamesItsTables) fails when another package's Go code
// names one in a string literal. Other packages ask:
//
//   - Service methods for single questions (reads.go): the lots expiring per
//     member and day and per issuer (expiry notices), members' last activity
//     and the lock of a member's account (inactivity expiry), a reversal's
//     share of its earn, when an earn's lots become available, whether a
//     member transacted with a partner, the points earned at a partner since
//     a time (earn caps), and the operator dashboard's Overview. Through In or
//     Joined they run in the caller's transaction.
//   - Set-based batch reads for settlement (settlement.go), functions of the
//     caller's database handle because a close runs them in its own
//     REPEATABLE READ snapshot, on two connections. A settlement period is a
//     batch: the ledger records which batch settled each transaction
//     (ledger_settlements, each transaction once: Settle), finds the
//     stragglers a batch missed, and prepares a batch (PrepareSet,
//     PrepareSettled) for aggregates that return sums, never the month's
//     rows: Legs (entries on partner accounts and breakage), Redemptions (the
//     issuer × redeemer matrix), LotMoves and SettledLotMoves (outstanding
//     liability), SettledRefTotals (reconciliation), and a statement line's
//     transactions page by page (BatchLineTransactions, priced by the price
//     versions the caller passes as data). The ledger does not know
//     contracts: the aggregates sum per bucket of the time bounds the caller
//     passes (every contract's effective_from), and the caller prices each
//     bucket's sum. So a close stays a few set-based statements over the
//     month, with the plans (id ranges, parallel workers, hashed groups) it
//     had when settlement wrote them itself. The mapping of transactions to
//     batches is the ledger's because every read of it joins ledger rows (the
//     stragglers are an anti-join of the two): kept elsewhere, those joins
//     would need another package's SQL over the ledger or the month's ids
//     shipped across in arrays.
//   - Audit checks of other packages' references into the ledger read it
//     through MissingTransactions (AuditQuery.Check).
package ledger
