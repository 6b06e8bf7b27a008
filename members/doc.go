// Package members owns the shared member base of the coalition: member
// records and their personal data, the identifiers partners and the console
// find them by, marketing consent and its history, merges of duplicate
// records, account closure, and the data-subject requests of privacy law
// (export of everything held, erasure).
//
// Invariants (the schema enforces those it can, migrations 00002-00003):
//
//   - An identifier value is unique per type, a partner reference per
//     (partner, value); identifiers are stored normalised (ParseIdentifier).
//
//   - Every member has exactly one primary card: 16 digits, prefix 7301, Luhn
//     check digit, drawn at random at enrolment. Cards are never removed; a
//     merge hands the duplicate's cards to the survivor as secondary cards, so
//     a card in someone's wallet keeps working.
//
//   - Enrolment is idempotent by identifier: one identifier, one member, even
//     under concurrent enrolments, and a repeated enrolment never overwrites
//     the profile.
//
//   - Only active members transact (CanTransact). Closed and merged are final.
//     Closing forfeits the remaining points and a merge moves them, through
//     the ledger, inside the same database transaction as the member rows.
//
//   - Marketing is allowed only while MarketingConsent is true; every grant or
//     withdrawal is a consent_events row (the history, not just a flag).
//
//   - A burn needs the member's consent (BurnConsent.Verify): its checks run
//     one at a time per member (an advisory lock held by the burn's
//     transaction), a failure is written and committed in that transaction,
//     and while MaxFailures failures fall within Window every check is
//     refused.
//
//   - Every export and erasure is recorded in data_subject_requests. Erasure
//     needs a closed (or merged) account, clears names, email, phone and birth
//     date, deletes identifiers other than cards, and touches no ledger row:
//     the card number is the pseudonym that keeps the accounts explainable.
//
//   - Portal and app sign-in: a bcrypt password (member_credentials) checked
//     behind a per-account throttle (internal/throttle), and one
//     member_sessions row per signed-in session. A member token is honoured
//     only while its session row is open: signing out, a password change,
//     suspension, closure and merge end sessions in the same transaction as
//     the change, so the next request in any process is refused.
//
// Contact email and phone in the profile are separate from identifiers: an
// email becomes a lookup key only when enrolled with or added as one.
package members
