// Package catalog owns the rewards partners offer, members' redemption orders,
// voucher pools and fulfilment. An order holds points in the ledger and
// captures them when the providing partner fulfils it (issue 5).
package catalog
