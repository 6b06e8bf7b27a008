// Package points owns the partner points API: earns (a single earn is a batch
// of one, gathered with others by a group commit), burns with holds and the
// member's consent, reversals, and a partner's reads of its own transactions.
// It composes the registry, the earn rules, the member base and the ledger in
// one database transaction per request, and publishes webhooks through the
// outbox in that transaction.
//
// Invariants:
//
//   - A partner sees only its own transactions and burns: another partner's
//     is ErrTransactionNotFound or ErrBurnNotFound, as if it did not exist.
//   - Every point-moving call carries an idempotency key, unique per partner:
//     a replay answers the original result and moves nothing.
//   - A 2xx for an earn is sent only after its batch committed; when the
//     database fails a batch as a whole, its earns are posted again one by
//     one, so only an earn that fails alone fails (groupcommit.go).
//   - A partner's pricing configuration (contracts, rule versions,
//     promotions, whether it has webhook endpoints) is kept in memory only
//     while its partner_config_versions stamp is current (config_cache.go).
package points
