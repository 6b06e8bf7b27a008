// Package catalog owns the rewards partners offer, members' redemption orders,
// voucher pools and fulfilment: the place where points earned at one partner
// are spent at another.
//
// # Orders and the ledger
//
// An order places a ledger hold (purpose "order", destination the providing
// partner's partner_redeemed account) and reserves one unit of stock in the
// same database transaction. Instant rewards take a voucher code from the
// partner's pool (FOR UPDATE SKIP LOCKED) and capture the hold at once;
// charity donations capture at once with a donation reference. Asynchronous
// rewards stay pending until the partner fulfils (capture) or rejects (void),
// the member cancels (void) or the fulfilment deadline passes (the
// catalog:expire_orders job voids). A capture is therefore a redemption at
// the providing partner; the hold's details (copied to the capture) carry the
// contract's redemption rate, the reimbursement, the reward and the order, so
// settlement explains the line like a POS burn.
//
// # Invariants
//
//   - stock_remaining never goes below zero: it is decremented by a
//     conditional UPDATE ... WHERE stock_remaining > 0 after the member's
//     ledger account is locked, so concurrent orders for the last unit have
//     exactly one winner; reject, cancel and expiry give the unit back.
//   - a voucher code is assigned to at most one order (UNIQUE order_id).
//   - an order is pending exactly while its hold is active; fulfilled orders
//     have a capture transaction; the database enforces the status shape. A
//     clawback of the member's points never voids the hold (ledger), so a
//     pending order can always be fulfilled, into the member's debt if need be.
//   - order creation is idempotent per member and Idempotency-Key: a replay
//     returns the original order, another request under the same key is
//     ledger.ErrIdempotencyMismatch.
//   - fulfil, reject and cancel are idempotent by state: repeating the same
//     outcome returns the order; a different outcome is ErrOrderNotPending.
//
// # Lock order
//
// Creating an order locks the member account (ledger hold), then the reward
// row (stock). Closing one locks the order row, then the member account
// (capture or void), then the reward row (stock back). Neither path takes
// these locks in the opposite order, so they cannot deadlock.
package catalog
