// Package partners owns the coalition's partner registry: partners with their
// sector, status, settlement currency and time zone, their outlets, and their
// versioned contracts. It keeps the balances of prepaid partners, which an
// earn draws down inside its own database transaction.
//
// Invariants:
//
//   - Contracts are immutable versions numbered 1, 2, ... per partner. A
//     change is a new version whose effective_from is after every existing
//     one and, for any version but the first, not in the past; the contract
//     in force at t is the latest with effective_from <= t (ContractAt).
//     Contract money is in the partner's settlement currency, which the
//     database enforces with a composite foreign key.
//   - Prepaid balance = sum of prepaid_movements (top-ups positive, draw-downs
//     negative). prepaid_accounts.balance_minor is that sum maintained in the
//     same transaction as each movement, with CHECK (balance_minor >= 0).
//     DrawDown runs one conditional UPDATE ... WHERE balance_minor - x >= 0,
//     which takes the account's row lock: concurrent draw-downs of one
//     partner serialise on that row and none overdraws. This is a hot row by
//     design, acceptable for prepaid partners only (postpaid partners, the
//     common case, never touch it): prepaid is a product for small partners,
//     and refusing an earn when the money runs out needs a single, current
//     balance. A movement's ref is unique per partner and kind, so a retried
//     top-up or draw-down never counts twice.
package partners
