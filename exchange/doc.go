// Package exchange converts coalition points to and from partner programmes
// (airline miles, hotel points). DESIGN lists exchange under settlement; it
// lives in its own package so settlement (periods, statements) and exchange
// (a network protocol with partners) evolve apart. Settlement reads the
// ledger transactions and the exchanges table.
//
// # Outbound (points to partner units)
//
// A member links a programme account (validated by the partner), asks for a
// quote (expires after QuoteTTL) and confirms it. Confirm holds points+fee
// (ledger hold, purpose "exchange", destination partner_exchange_out), inserts
// the exchange in status "processing" and writes the exchange:deliver outbox
// message, all in one database transaction. The deliver job calls the
// partner's credit endpoint with the exchange's public id as the stable
// transaction id; the partner dedupes on it, so a replay after a crash, a
// timeout or a 5xx credits nothing twice. Outcomes:
//
//   - completed: the hold is captured to partner_exchange_out (status completed);
//   - refused: the hold is voided (status failed) and the member is notified;
//   - pending: status pending; exchange:poll asks the partner for the status
//     until it resolves or the programme's pending deadline passes (failed,
//     hold voided);
//   - timeout, network error or 5xx: the job fails and asynq retries with
//     backoff; exchange:poll also re-drives "processing" exchanges whose
//     retries ran out.
//
// # Invariants
//
//   - An exchange's status only moves processing → pending → completed |
//     failed, and completed → reversed, through conditional UPDATEs under the
//     row lock; each outcome is recorded once, and the ledger operation it
//     triggers (capture, void, reversal) carries an idempotency key derived
//     from the exchange, so a duplicate answer or callback changes nothing.
//   - A processing or pending exchange's hold stays active until the
//     exchange resolves: a clawback of the member's points never voids it
//     (ledger), so the completion's capture goes through, into the member's
//     debt if need be, and the member is debited exactly once.
//   - exchange_events is append-only (a trigger refuses UPDATE and DELETE).
//   - Points are int64; partner units are computed with integer arithmetic and
//     round down (the member never gets more than the ratio gives).
//
// # Inbound (partner units to points)
//
// The partner debits its own programme, then calls POST /v1/exchanges with
// its own transaction id (and an Idempotency-Key). The points are posted as a
// ledger earn funded by the partner's partner_issued account: the partner is
// the issuer of those points (lots carry it, so breakage and cross-partner
// redemption are attributed to it) and it is billed at the issue price of the
// contract in force, drawn down at once when it is prepaid.
package exchange
