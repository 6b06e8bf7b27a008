// Package settlement owns settlement periods, partner statements, the
// cross-partner liability matrix, breakage and reconciliation.
// Exchange to partner programmes lives in package exchange; its postings
// settle here like any other ledger transaction.
//
// # Periods
//
// A period is a calendar month in the operator's time zone, [starts_at,
// ends_at), with states open → closing → closed. Periods close in order. A
// ledger transaction is settled in exactly one period, recorded at close by
// the ledger (ledger.Settle, with the period's id as the batch; ledger rows
// are append-only and are never updated): closing P takes every transaction posted before P's end that no
// earlier close took. A transaction that occurred (or was posted, racing an
// earlier close) before P started is a late line of P, shown with its
// original occurred_at. The first period ever closed takes all earlier
// history.
//
// Close runs in two database transactions: a conditional UPDATE marks the
// period closing (visible to the console), then the work runs under the
// period row's FOR UPDATE lock, so concurrent closers (several workers, a
// person and the scheduler) serialise and the later ones find it closed. The
// work is set-based SQL, never the month in memory, in one REPEATABLE READ
// snapshot (a closer that waited for the lock and meets a serialization
// failure retries and finds the period closed). It is shaped for months of
// millions of transactions (docs/performance.md):
//
//   - the period's transactions are those posted during it plus the
//     stragglers of the previous period; the ledger reads them set-based
//     (ledger.Batch: by transaction id range less the few ids of the range
//     that belong elsewhere) and returns sums, never rows; this package reads
//     no ledger table itself;
//   - the mapping INSERT and the aggregates (statement legs, matrix,
//     outstanding liability) run side by side: the aggregates on a second
//     connection that imports the close's snapshot (pg_export_snapshot), so
//     a close holds two connections (one close per process takes them at a
//     time, so closes at once cannot exhaust a pool of two or more);
//   - the ledger sums per contract bucket (the intervals between any two
//     consecutive effective_from, passed as bounds), and only those sums are
//     priced here, with the contract version in force at the bucket's start;
//   - the outstanding liability starts from the previous period's, recorded
//     at its close in settlement_period_outstanding, plus this period's lot
//     movements (the ledger's whole history is read once, after periods
//     closed before those rows were kept);
//   - work_mem, parallel query costs and JIT are set for the close's
//     transactions only (SET LOCAL).
//
// # Statements
//
// One statement per partner with a contract in force during the period or
// with a line, in its settlement currency.
// Amounts are signed from the partner's side (positive: the operator owes
// the partner). Lines, each rounded half-even to the minor unit:
//
//   - issued: points on the partner's partner_issued account (earns minus
//     earn reversals, exchange-in earns included) × the issue price of the
//     contract version in force when the earn occurred (a reversal is priced
//     at its earn's contract); one line per contract version;
//   - redeemed: points into partner_redeemed (burns, captures of POS and
//     catalog holds, minus their reversals) × the redemption rate in force
//     at the burn; operator_fee: the same × the operator fee rate, charged;
//   - exchange_out: points captured into partner_exchange_out × redemption
//     rate; exchange_in: points debited from partner_exchange_in × issue
//     price (no ledger posting uses that account yet);
//   - breakage: points expired or forfeited in the period from lots the
//     partner issued × the issue price in force when they were earned × the
//     breakage share of that contract, credited to the partner;
//   - prepaid_draw_down: prepaid money drawn in the period for issued points
//     (credited, since it was already paid); prepaid_top_up: informational,
//     not part of the net;
//   - adjustment: corrections made before the period's end and not settled
//     yet, converted at the period's rates when in another currency, linked
//     to the line they correct.
//
// The net is the sum of the non-informational lines. Each statement is
// stored as canonical JSON (a struct with fixed field order, UTC times,
// sorted lines) with its SHA-256; Verify recomputes every document from the
// transactions the ledger recorded as settled and compares hashes (and the recomputed outstanding
// liability with the one recorded). Life cycle: draft → approved (a finance
// user other than the period's closer and the statement's last changer,
// unless the net is below the currency's single-approver limit; approval
// issues the numbered invoice or self-billed credit note) → sent
// (statement.ready webhook, in the same transaction) → paid (when payments
// and nettings bring the open balance to zero), each a conditional
// transition under the row lock recorded in settlement_statement_transitions.
// Every partner with a contract in force during the period gets a statement,
// with no lines when it had no activity.
//
// # Report
//
// Per closed period: the liability matrix (points issued by A, 0 for the
// operator, and redeemed at B: lot consumptions of the period's burns and
// captures into partner_redeemed minus the lots their reversals recreated),
// valued at B's redemption rate and converted to the base currency; and the
// outstanding liability per issuer at period end (lot points created minus
// consumed by every transaction settled so far) at the issue price in force
// when earned. Exchange rates are data per period with their source; a
// missing rate fails the close (ErrMissingRate) and leaves it closing.
//
// # Result and general ledger
//
// Per closed period (result.go): the operator's result by partner and in
// total, and the outstanding liability's roll-forward (opening + flows =
// closing, in points and money), computed from the period's closed data
// only and stored once as canonical JSON. Points are a liability at the
// issue price, released as revenue when redeemed, exchanged out or
// expired; redemptions cost the redemption rate. journal.go turns the
// result and statements into a double-entry journal on a configurable
// chart of accounts (CSV, DATEV Buchungsstapel), balanced per currency.
//
// # Reconciliation
//
// A partner uploads a CSV (external_ref, type earn|burn, points) for a
// closed period; it is streamed into settlement_reconciliation_rows in
// batches, malformed lines are recorded by line number. The
// settlement:reconcile job matches file and hub (the ledger's sums per
// reference of the period's settled transactions, ledger.SettledRefTotals)
// per (external_ref, kind) with one FULL OUTER JOIN: matched, missing_in_hub, missing_in_file,
// amount_mismatch. Finance accepts a line (an adjustment for the next
// period) or disputes it with a note.
package settlement
