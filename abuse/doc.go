// Package abuse owns each partner's fraud and abuse rules (velocity limits
// per member, card and partner; the earn-refund-keep threshold; caps on
// non-purchase actions), the counters that enforce them and the flags that
// hold an item for the operator's review.
//
// Invariants:
//
//   - A limit holds under concurrent requests: a counter's check and
//     increment are one statement (INSERT ... ON CONFLICT DO UPDATE ...
//     RETURNING) inside the posting transaction, whose row lock orders
//     concurrent requests; a request rolled back takes its count back.
//   - An earn over a limit is posted but held: its lots stay pending
//     (ledger.HeldForReview) until the flag is approved (they mature as the
//     contract said) or rejected (the earn is reversed). A burn over a limit
//     is refused (ErrVelocityLimit) and writes nothing.
//   - A partner without rules pays nothing: the points API reads the rules
//     with the partner's cached configuration and calls no check.
//   - A partner sees only its own flags.
package abuse
