// Package settlement owns settlement periods, partner statements, the
// cross-partner liability matrix, breakage, exchange to partner programmes and
// reconciliation (issues 6 and 7).
package settlement
