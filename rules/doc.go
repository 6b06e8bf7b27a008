// Package rules owns how purchases turn into points: the partners' versioned
// earn rules and the promotions of partners and of the operator. It prices a
// purchase into a Quote, for a caller that asks (Service.Quote) and for the
// points API through a partner's Pricing, which that API keeps in memory.
//
// Invariants:
//
//   - Earn rule versions are immutable (the database refuses UPDATE); the
//     version that prices a purchase is the latest effective_from <= its
//     occurred_at, the highest version on a tie.
//   - Evaluate is a pure function of the rule, the promotions and the
//     purchase: Total = Points + OperatorFunded = the sum of the breakdown,
//     no figure is negative, every line rounds down to whole points, and the
//     total never exceeds the rule's cap per transaction.
//   - A promotion's code is unique per partner among promotions whose windows
//     overlap; an ended promotion stays ended.
package rules
