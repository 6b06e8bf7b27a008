// Package programme owns the rules of the loyalty programme that sit above the
// ledger and across partners: tiers and their qualifying credits, the expiry
// policy and its daily job with "points expiring" notices, member-to-member
// transfer limits and fee, the birthday bonus, and corporate accounts with
// dual accrual.
//
// It is its own package, not part of members or partners, because it is the
// operator's programme design: it reads the member base and the ledger and is
// consulted by the partner points API, but neither of those owns it. partners
// declares the small interface it needs (points.Programme) so the
// dependency points one way: programme imports partners, members and ledger.
//
// # Invariants
//
//   - Qualifying credits are tracked apart from redeemable points: one row per
//     earn posted through the partner API, written in the earn's database
//     transaction, and one negative row per reversal, dated at the original
//     earn so it leaves the same window. Reversals take back metrics in
//     proportion to the points reversed, cumulatively, so a full reversal
//     takes back exactly what was credited.
//   - Running totals (programme_member_windows, per member, UTC month and
//     partner) change in the same statement as every qualifying credit, so
//     they always equal the credits' sums; an earn reads them, not the
//     credits, to see whether the member may move up, and only then decides
//     on the exact window. SyncWindows (daily) rebuilds them from the credits.
//     Earns write theirs in lane 1 before the ledger locks their members,
//     reversals in lane 0; readers sum the lanes and
//     SyncWindows folds them (docs/programme.md).
//   - Tiers: thresholds combine with OR; an upgrade applies as soon as a
//     threshold is crossed; a downgrade happens only at the yearly review (to
//     the qualified level, or one level at a time); active grants (with an end
//     date, or none = lifetime) are a floor. Invitation-only tiers are reached
//     only by grants. Evaluation is pure (Evaluate, Qualify, Window).
//   - Expiry: fixed lifetime and end-of-Nth-year set each lot's expires_at at
//     earn time and the daily job expires lots through ledger.ExpireLots;
//     inactivity forfeits a member's points through the ledger with an
//     idempotency key naming the last activity, so a re-run expires nothing
//     twice. Notices are recorded once per member and expiry date.
//   - Birthday bonus: at most once per member and year (ledger idempotency key
//     programme/birthday:<member>:<year>), funded by operator_promotions.
//   - Dual accrual: an employee's earn at a corporate partner credits the
//     company account exactly once (idempotency key and a UNIQUE source
//     transaction), funded by the same partner.
package programme
