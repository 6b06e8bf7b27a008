package partners

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// The reads below take the caller's transaction: the settlement close reads
// partners, contracts and prepaid movements in the snapshot it reads the
// ledger in, so a statement never mixes two moments.

// AllContractsWith returns every version of every partner's contract, by
// partner and then effective_from.
func AllContractsWith(tx *gorm.DB) ([]Contract, error) {
	var rows []contractRow
	if err := tx.Raw(`SELECT ` + contractCols + ` FROM partner_contracts ORDER BY partner_id, effective_from`).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	out := make([]Contract, len(rows))
	for i, r := range rows {
		out[i] = r.contract()
	}
	return out, nil
}

// ContractBeforeWith is the partner's contract in force just before t (the
// latest effective strictly before t); ErrNoContract when there is none.
func ContractBeforeWith(tx *gorm.DB, partnerID int64, t time.Time) (Contract, error) {
	var rows []contractRow
	if err := tx.Raw(`SELECT `+contractCols+` FROM partner_contracts WHERE partner_id = ? AND effective_from < ?
		ORDER BY effective_from DESC LIMIT 1`, partnerID, t).Scan(&rows).Error; err != nil {
		return Contract{}, fmt.Errorf("contract of partner %d: %w", partnerID, err)
	}
	if len(rows) == 0 {
		return Contract{}, fmt.Errorf("partner %d: %w", partnerID, ErrNoContract)
	}
	return rows[0].contract(), nil
}

// SettlementCurrenciesWith maps every partner to its settlement currency.
func SettlementCurrenciesWith(tx *gorm.DB) (map[int64]string, error) {
	var rows []struct {
		ID                 int64
		SettlementCurrency string
	}
	if err := tx.Raw(`SELECT id, settlement_currency FROM partners`).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("partners: %w", err)
	}
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.SettlementCurrency
	}
	return out, nil
}

// PrepaidTotal is the sum of one kind of prepaid movement of a partner in
// one currency (minor units; a draw-down is negative).
type PrepaidTotal struct {
	PartnerID int64
	Kind      string
	Minor     int64
	Currency  string
}

// PrepaidTotalsWith sums the prepaid movements made in [from, to) by
// partner, kind and currency, in that order.
func PrepaidTotalsWith(tx *gorm.DB, from, to time.Time) ([]PrepaidTotal, error) {
	var rows []PrepaidTotal
	err := tx.Raw(`SELECT partner_id, kind, sum(amount_minor)::bigint AS minor, currency FROM prepaid_movements
		WHERE created_at >= ? AND created_at < ? GROUP BY partner_id, kind, currency ORDER BY partner_id, kind, currency`,
		from, to).Scan(&rows).Error
	return rows, err
}

// Counts are how many partners there are and how many of them are active.
type Counts struct{ Active, All int64 }

// CountPartners counts the partners, and the active ones.
func (s *Service) CountPartners(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.WithContext(ctx).Raw(`SELECT count(*) FILTER (WHERE status = 'active') AS active, count(*) AS all FROM partners`).Scan(&c).Error
	return c, err
}

// PartnerNamed returns the partner named name; ok is false when there is
// none.
func (s *Service) PartnerNamed(ctx context.Context, name string) (p Partner, ok bool, err error) {
	var rows []partnerRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+partnerCols+` FROM partners WHERE name = ? ORDER BY id LIMIT 1`, name).
		Scan(&rows).Error; err != nil {
		return Partner{}, false, fmt.Errorf("partner named %q: %w", name, err)
	}
	if len(rows) == 0 {
		return Partner{}, false, nil
	}
	return rows[0].partner(), true, nil
}

// ActivePartnerIDs returns the ids of the active partners, in id order.
func (s *Service) ActivePartnerIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM partners WHERE status = 'active' ORDER BY id`).Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("active partners: %w", err)
	}
	return ids, nil
}

// ContractedBeforeWith returns the partners with a contract version
// effective before t, in id order.
func ContractedBeforeWith(tx *gorm.DB, t time.Time) ([]int64, error) {
	var ids []int64
	if err := tx.Raw(`SELECT DISTINCT partner_id FROM partner_contracts WHERE effective_from < ? ORDER BY partner_id`, t).
		Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("contracted partners: %w", err)
	}
	return ids, nil
}
