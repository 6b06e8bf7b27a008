package main

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// VerifyResult says whether every acknowledged operation exists exactly once.
type VerifyResult struct {
	Acked      int    `json:"acked"`
	ExactlyOne int    `json:"exactly_once"`
	Missing    int    `json:"missing"`
	Duplicated int    `json:"duplicated"`
	WrongID    int    `json:"wrong_id"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
}

// Summary is the one-line form of the check.
func (v VerifyResult) Summary() string {
	if v.Error != "" {
		return "error: " + v.Error
	}
	return fmt.Sprintf("%d acknowledged, %d exactly once, %d missing, %d duplicated, %d with another id",
		v.Acked, v.ExactlyOne, v.Missing, v.Duplicated, v.WrongID)
}

// verify looks every acknowledged operation up by its external reference
// (unique per operation in a run) in ledger_transactions: an earn must be
// exactly one earn transaction of its partner, a one-step burn exactly one
// capture transaction, and that transaction must be the one the hub
// answered with. Burns are also checked to have exactly one hold.
func verify(ctx context.Context, db *gorm.DB, acks []ack) VerifyResult {
	v := VerifyResult{Acked: len(acks)}
	if err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`CREATE TEMP TABLE bench_acks (kind text, partner_id bigint, external_ref text, tx_id bigint) ON COMMIT DROP`).Error; err != nil {
			return err
		}
		for lo := 0; lo < len(acks); lo += 5000 {
			chunk := acks[lo:min(lo+5000, len(acks))]
			kinds, partners, refs, ids := make([]string, len(chunk)), make([]int64, len(chunk)), make([]string, len(chunk)), make([]int64, len(chunk))
			for i, a := range chunk {
				kinds[i], partners[i], refs[i], ids[i] = a.Kind, a.PartnerID, a.ExternalRef, a.TxID
			}
			if err := tx.Exec(`INSERT INTO bench_acks SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::bigint[])`,
				pgTextArray(kinds), pgIntArray(partners), pgTextArray(refs), pgIntArray(ids)).Error; err != nil {
				return err
			}
		}
		var rows []struct {
			N, Holds int64
			SameID   bool
		}
		// Joins over the whole run (hash joins once the acks are analysed):
		// a lookup per acknowledgement scanned its partner's transactions
		// each time, minutes for a batch run.
		if err := tx.Exec(`ANALYZE bench_acks`).Error; err != nil {
			return err
		}
		if err := tx.Raw(`WITH tx AS (
				SELECT a.external_ref, a.partner_id, count(*) AS n, bool_or(t.id = a.tx_id) AS same_id
				FROM bench_acks a JOIN ledger_transactions t ON t.external_ref = a.external_ref AND t.partner_id = a.partner_id
				  AND t.type = CASE a.kind WHEN 'earn' THEN 'earn' ELSE 'capture' END
				GROUP BY a.external_ref, a.partner_id
			), holds AS (
				SELECT a.external_ref, a.partner_id, count(*) AS n
				FROM bench_acks a JOIN ledger_holds h ON h.external_ref = a.external_ref AND h.partner_id = a.partner_id
				WHERE a.kind = 'burn'
				GROUP BY a.external_ref, a.partner_id
			)
			SELECT coalesce(tx.n, 0) AS n, CASE a.kind WHEN 'burn' THEN coalesce(holds.n, 0) ELSE 1 END AS holds,
			       coalesce(tx.same_id, false) AS same_id
			FROM bench_acks a LEFT JOIN tx USING (external_ref, partner_id) LEFT JOIN holds USING (external_ref, partner_id)`).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			switch {
			case r.N == 0:
				v.Missing++
			case r.N > 1 || r.Holds != 1:
				v.Duplicated++
			case !r.SameID:
				v.WrongID++
			default:
				v.ExactlyOne++
			}
		}
		return nil
	}); err != nil {
		v.Error = err.Error()
	}
	v.OK = v.Error == "" && v.ExactlyOne == v.Acked
	return v
}

// pgTextArray and pgIntArray render Postgres array literals for unnest.
func pgTextArray(s []string) string {
	b := make([]byte, 0, len(s)*40)
	b = append(b, '{')
	for i, x := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for _, r := range []byte(x) {
			if r == '"' || r == '\\' {
				b = append(b, '\\')
			}
			b = append(b, r)
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

func pgIntArray(s []int64) string {
	b := make([]byte, 0, len(s)*8)
	b = append(b, '{')
	for i, x := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", x)
	}
	return string(append(b, '}'))
}
