package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/settlement"
)

// TestConsoleReconciliationOutcomes: the reconciliation page counts its
// lines per outcome and filters by outcome.
func TestConsoleReconciliationOutcomes(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, nil)
	air := e.partner("Sky Air", partners.SectorAirline)
	m := e.member("sam@example.test", air.ID, 0)
	for i, pts := range []int64{100, 200, 300} {
		if _, err := e.led.Earn(e.ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "t", Key: fmt.Sprint("r", i)}, MemberID: m.ID,
			PartnerID: air.ID, Points: ledger.Points(pts), OccurredAt: e.clock.Now(), ExternalRef: fmt.Sprint("R-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	month := e.clock.Now().Format("2006-01")
	e.clock.Add(31 * 24 * time.Hour)
	svc := settlement.NewService(e.db, settlement.Options{Location: time.UTC, BaseCurrency: "EUR", Now: e.clock.Now})
	if _, err := svc.Close(e.ctx, month, "test", nil); err != nil {
		t.Fatal(err)
	}
	// R-0 matches, R-1 differs, R-2 is missing in the file, R-9 is missing in the hub.
	rec, err := svc.Upload(e.ctx, air.ID, month, strings.NewReader("external_ref,type,points\nR-0,earn,100\nR-1,earn,250\nR-9,earn,5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Match(e.ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	e.staffUser("fin@hub.test", access.RoleFinance)
	b := e.browser()
	b.loginConsole("fin@hub.test")
	path := fmt.Sprintf("/console/reconciliations/%d", rec.ID)
	page := b.page(path)
	for _, want := range []string{
		`id="outcome-open" class="chip" aria-current="page">Need a look <span class="count">3</span>`,
		`id="outcome-amount_mismatch" class="chip">Amount mismatch <span class="count">1</span>`,
		`id="outcome-matched" class="chip">Matched <span class="count">1</span>`,
		`id="outcome-all" class="chip">All <span class="count">4</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("reconciliation page lacks %s", want)
		}
	}
	if strings.Contains(page, "<code>R-0</code>") || !strings.Contains(page, "<code>R-1</code>") {
		t.Errorf("default filter: want the lines needing a look (R-1, R-2, R-9), not the matched R-0")
	}
	matched := b.page(path + "?outcome=matched")
	if !strings.Contains(matched, "<code>R-0</code>") || strings.Contains(matched, "<code>R-1</code>") ||
		!strings.Contains(matched, `id="outcome-matched" class="chip" aria-current="page"`) {
		t.Errorf("?outcome=matched: want only R-0, its chip current")
	}
	if st, _, _ := b.get(path + "?outcome=bogus"); st != http.StatusBadRequest {
		t.Errorf("?outcome=bogus = %d; want 400", st)
	}
}
