package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/internal/testdb"
)

// TestSeedShowsThePortal runs `hub seed` twice on a fresh database: the
// demo has rewards with stock in the catalog (a donation at the charity
// partner among them), points expiring within 30 days, and pending points
// for the member it prints, an exchange of that member to an account the
// simulator keeps pending, and "points expiring" mail queued; the second
// seed adds none of them again.
func TestSeedShowsThePortal(t *testing.T) {
	t.Parallel()
	db, dbURL := testdb.NewWithURL(t)
	sim := httptest.NewServer(partnersim.New(partnersim.Config{APIKey: "sim-key", HoldPrefix: "HOLD"}).Handler())
	t.Cleanup(sim.Close)
	env := []string{"HUB_DATABASE_URL=" + dbURL, "HUB_DEMO_PASSWORD=demo-seed-test-pass", "HUB_LOG_LEVEL=warn",
		"HUB_DEMO_PARTNERSIM_URL=" + sim.URL, "HUB_DEMO_PARTNERSIM_KEY=sim-key"}
	var expiryMails int64
	var email string
	for run := 0; run < 2; run++ {
		out, err := runHub(t, env, "seed", "-members", "40", "-months", "1")
		if err != nil {
			t.Fatalf("seed run %d: %v\n%s", run, err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "member" && f[1] == "portal" && strings.Contains(f[2], "@") {
				email = f[2]
			}
		}
		var got struct {
			Rewards, Stocked, Charity, Expiring, Pending int64
		}
		if err := db.Raw(`SELECT
			(SELECT count(*) FROM catalog_rewards) AS rewards,
			(SELECT count(*) FROM catalog_rewards WHERE stock_total > 0) AS stocked,
			(SELECT count(*) FROM catalog_rewards r JOIN partners p ON p.id = r.partner_id
				WHERE p.sector = 'charity' AND r.category = 'charity_donation') AS charity,
			(SELECT count(*) FROM ledger_lots WHERE remaining > 0 AND expires_at > now() AND expires_at <= now() + interval '30 days') AS expiring,
			(SELECT count(*) FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id
				JOIN member_identifiers i ON i.member_id = a.owner_id AND i.type = 'email'
				WHERE a.kind = 'member' AND i.value = ? AND l.available_at > now()) AS pending`, email).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		var mail struct{ Expiring, Exchanges int64 }
		if err := db.Raw(`SELECT (SELECT count(*) FROM outbound_mail WHERE template = 'points_expiring') AS expiring,
			(SELECT count(*) FROM exchanges x JOIN member_identifiers i ON i.member_id = x.member_id AND i.type = 'email'
				WHERE i.value = ? AND x.account = 'HOLD-0001' AND x.direction = 'outbound') AS exchanges`, email).Scan(&mail).Error; err != nil {
			t.Fatal(err)
		}
		if mail.Expiring == 0 || (run == 1 && mail.Expiring != expiryMails) || mail.Exchanges != 1 {
			t.Fatalf("after seed run %d: %d expiry mails (%d before), %d exchanges to HOLD-0001; want some, none added, and one",
				run, mail.Expiring, expiryMails, mail.Exchanges)
		}
		expiryMails = mail.Expiring
		if email == "" || got.Rewards != 5 || got.Stocked != 4 || got.Charity != 1 || got.Expiring < 10 || got.Expiring > 40 || got.Pending < 1 {
			t.Fatalf("after seed run %d (member %q): %+v; want 5 rewards, 4 with stock, 1 charity donation, 10 to 40 lots expiring within 30 days, pending points",
				run, email, got)
		}
	}
}
