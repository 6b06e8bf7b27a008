package settlement

import (
	"errors"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// FuzzReconciliationUpload feeds arbitrary bytes to the partner-facing CSV
// import (Upload, on a real database and a closed period). Whatever the file,
// it never panics, fails only with a validation error (a bad header) and
// accounts for every data line: stored rows plus malformed lines equal the
// line count, each stored row is a clean earn or burn with a 1..200
// character reference. Interesting inputs live in
// testdata/fuzz/FuzzReconciliationUpload.
func FuzzReconciliationUpload(f *testing.F) {
	for _, seed := range []string{
		"external_ref,type,points\nR-1,earn,100\nR-2,burn,-5\n",
		"\ufeffEXTERNAL_REF , Type ,Points\nR-1,EARN, 7 \n",
		"date,points,type,external_ref,extra\n2026-08-01,10,earn,A\n",
		"external_ref,type,points\n\"R,1\",earn,1\n\"unterminated,earn,1\n",
		"external_ref,type,points\nR-1,earn\n,earn,1\nR-3,refund,1\nR-4,earn,1e3\nR-5,earn,99999999999999999999\n",
		"external_ref,type\nR-1,earn\n",
		"",
		"\n\n\n",
		"external_ref,type,points\r\nR-1,earn,1\r\n",
		"external_ref,type,points\n" + strings.Repeat("x", 201) + ",earn,1\n",
		"external_ref,type,points\n'; DROP TABLE ledger_entries; --,earn,1\n",
	} {
		f.Add([]byte(seed))
	}
	e := newEnvTB(f, at(2026, 9, 2, 9, 0))
	pid := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.close(at(2026, 9, 2, 9, 0), "2026-08")

	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := e.svc.Upload(e.ctx, pid, "2026-08", strings.NewReader(string(file)))
		if err != nil {
			var ve *validation.Error
			if !errors.As(err, &ve) {
				t.Fatalf("upload of %q: %v; want success or a validation error", file, err)
			}
			return
		}
		var stored, badRows, errs int64
		if err := e.db.Raw(`SELECT count(*) FROM settlement_reconciliation_rows WHERE reconciliation_id = ?`, r.ID).Scan(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.db.Raw(`SELECT count(*) FROM settlement_reconciliation_rows WHERE reconciliation_id = ?
			AND (kind NOT IN ('earn','burn') OR length(external_ref) NOT BETWEEN 1 AND 200 OR external_ref <> btrim(external_ref))`, r.ID).Scan(&badRows).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.db.Raw(`SELECT count(*) FROM settlement_reconciliation_errors WHERE reconciliation_id = ?`, r.ID).Scan(&errs).Error; err != nil {
			t.Fatal(err)
		}
		if r.Malformed < 0 || r.Malformed > r.Lines || stored+r.Malformed != r.Lines {
			t.Fatalf("file %q: lines %d, malformed %d, stored rows %d; want stored + malformed = lines", file, r.Lines, r.Malformed, stored)
		}
		if errs > r.Malformed || (r.Malformed > 0 && errs == 0) {
			t.Fatalf("file %q: %d malformed lines but %d error records", file, r.Malformed, errs)
		}
		if badRows != 0 {
			t.Fatalf("file %q: %d stored rows are not clean earn/burn lines", file, badRows)
		}
	})
}
