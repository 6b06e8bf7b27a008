// Package campaigns owns the operator's segments and campaigns: a segment
// is a named rule over the member base, a campaign grants operator-funded
// points or a tier to a segment or to an uploaded list of members (goodwill
// grants), as a job run with progress, a preview of its cost and a report.
//
// # Segments
//
// A segment's definition is a small typed structure (Definition: conditions
// that must all hold) kept as JSON and evaluated whenever it is counted or
// used, so a segment is always today's members. Each condition is compiled by
// the package that owns the data it reads: enrolment date and marketing
// consent by members (members.Criteria), balance, last activity and partners
// used by ledger (ledger.MemberCriteria), the tier by programme
// (MemberTiers). The segment is paged through the member base in id order in
// batches: members selects a batch of active members, ledger keeps those its
// criteria select, the tier filter the rest. No package's SQL names another's
// tables.
//
// # Invariants
//
//   - A campaign grants each member at most once, over all of its runs: the
//     grant row (campaign_grants, primary key campaign and member) is
//     inserted in the transaction of the ledger posting or tier grant it
//     records, and the posting's ledger idempotency key names the campaign
//     and the member (campaign/<campaign>:<member>). Two runs at once wait on
//     each other's row and grant once.
//   - A points campaign never grants more than its budget: spent_points
//     grows in the grant's transaction under a conditional UPDATE (spent +
//     points <= budget, and a CHECK); a member whose points would exceed it
//     is skipped and counted.
//   - Campaign points are funded by the operator: an operator-funded earn
//     (account operator_promotions, a lot without issuer) whose details name
//     the campaign and "funded_by": "operator".
//   - An uploaded list is checked whole before anything is written: a bad
//     row fails the upload with every bad line named, and nothing is stored.
package campaigns
