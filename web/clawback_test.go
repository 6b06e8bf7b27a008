package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/internal/apitest"
	"github.com/coalitionhub/hub/partners"
)

// clawbackRun is one member's way through a clawback over the HTTP API:
// the member's and the issuing partner's tokens, and a client that checks
// every answer against the OpenAPI document.
type clawbackRun struct {
	*hubEnv
	t         *testing.T
	member    int64
	memberTok string
	issuerTok string
	checked   *http.Client
}

// balance reads the member's balance as the member (/v1/me/balance) and as
// the issuing partner (/v1/members/{id}), checks both answers against the
// OpenAPI document and that their parts add up, and returns the member's.
func (r *clawbackRun) balance(step string) map[string]int64 {
	r.t.Helper()
	read := func(path, token string) map[string]int64 {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := r.checked.Do(req)
		if err != nil {
			r.t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Balance map[string]int64 `json:"balance"`
		}
		var raw map[string]int64
		if path == "/v1/me/balance" {
			err = json.NewDecoder(res.Body).Decode(&raw)
		} else {
			err = json.NewDecoder(res.Body).Decode(&body)
			raw = body.Balance
		}
		if res.StatusCode != http.StatusOK || err != nil {
			r.t.Fatalf("%s: GET %s: %d %v", step, path, res.StatusCode, err)
		}
		if sum := raw["available"] + raw["pending"] + raw["held"] + raw["expired"] - raw["owed"]; sum != raw["total"] {
			r.t.Fatalf("%s: GET %s: %v: available + pending + held + expired - owed = %d, not the total", step, path, raw, sum)
		}
		return raw
	}
	mine := read("/v1/me/balance", r.memberTok)
	theirs := read(fmt.Sprintf("/v1/members/%d", r.member), r.issuerTok)
	if fmt.Sprint(mine) != fmt.Sprint(theirs) {
		r.t.Fatalf("%s: the member sees %v, the partner %v", step, mine, theirs)
	}
	return mine
}

// portalShows fails unless the member's portal dashboard holds every want
// (and none of the wants written "!text").
func (r *clawbackRun) portalShows(step string, want ...string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/portal", nil)
	req.AddCookie(&http.Cookie{Name: portalCookie, Value: r.memberTok})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, w := range want {
		text, absent := strings.CutPrefix(w, "!")
		if shown := strings.Contains(string(b), text); res.StatusCode != http.StatusOK || shown == absent {
			r.t.Fatalf("%s: the portal (%d) shows %q: %v, want %v:\n%s", step, res.StatusCode, text, shown, !absent, b)
		}
	}
}

func (r *clawbackRun) wantBalance(step string, total, available, pending, held, owed int64) {
	r.t.Helper()
	b := r.balance(step)
	want := map[string]int64{"total": total, "available": available, "pending": pending, "held": held, "expired": 0, "owed": owed}
	if fmt.Sprint(b) != fmt.Sprint(want) {
		r.t.Fatalf("%s: balance %v, want %v", step, b, want)
	}
}

// earn posts an earn of points (1 point per EUR) at the partner of tok.
func (r *clawbackRun) earn(tok string, points int64, ref string) int64 {
	r.t.Helper()
	out := r.must(201, "POST", "/v1/earn", tok, map[string]any{"member_id": r.member,
		"amount": map[string]any{"minor": points * 100, "currency": "EUR"}, "external_ref": ref})
	if num(out["points"]) != points {
		r.t.Fatalf("earn %s: %v, want %d points", ref, out, points)
	}
	return num(out["id"])
}

// burn spends points at the partner of tok with a fresh redemption code:
// captured at once, or authorised only (a point-of-sale hold).
func (r *clawbackRun) burn(tok string, points int64, capture bool) map[string]any {
	r.t.Helper()
	rc := r.must(201, "POST", "/v1/me/redemption-codes", r.memberTok, nil)
	return r.must(201, "POST", "/v1/burns", tok, map[string]any{"member_id": r.member, "points": points,
		"redemption_code": rc["code"], "capture": capture})
}

// TestClawbackNeverVoidsAHoldInFlight drives, over the API, a partner
// reversing an earn the member already spent while the member has points
// held for an outbound exchange the programme answered "pending", for a
// catalog order awaiting fulfilment, and for a point-of-sale authorisation.
// The clawback leaves the hold alone (the member goes further negative);
// the exchange then completes when the programme confirms (the member gets
// the miles and is debited once), the order is fulfilled, the sale captured.
// The balance's parts add up at every step, the ledger audit passes, and
// later earns repay the debt.
func TestClawbackNeverVoidsAHoldInFlight(t *testing.T) {
	t.Parallel()
	type flow struct {
		// hold puts 1000 points on hold for the in-flight purchase; complete
		// finishes it as the partner would and checks what the partner sees.
		hold     func(r *clawbackRun)
		complete func(r *clawbackRun)
	}
	flows := map[string]func(t *testing.T, e *hubEnv) flow{
		"outbound exchange pending at the programme": func(t *testing.T, e *hubEnv) flow {
			prog, progTok := e.partner("Sky Miles", e.clock.Now().AddDate(0, -1, 0))
			var callbacks []string
			sim := partnersim.New(partnersim.Config{APIKey: "k", PendingPolls: 1 << 20})
			simSrv := httptest.NewServer(sim.Handler())
			t.Cleanup(simSrv.Close)
			// The programme confirms pending credits by calling the hub back.
			sim.Set(func(c *partnersim.Config) {
				c.Callback = func(res exchange.CreditResult) {
					code, out := e.call("POST", "/v1/outbound-exchanges/"+res.TransactionID+"/status", progTok, res)
					callbacks = append(callbacks, fmt.Sprintf("%d %v %v", code, out["status"], out["code"]))
				}
			})
			p, err := e.xch.CreateProgramme(e.ctx, exchange.NewProgramme{PartnerID: prog.ID, Code: "skymiles", Name: "Sky Miles",
				Unit: "miles", Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MaxPoints: 90000,
				EndpointURL: simSrv.URL, APIKey: "k"})
			if err != nil {
				t.Fatal(err)
			}
			var id int64
			return flow{
				hold: func(r *clawbackRun) {
					r.must(200, "PUT", fmt.Sprintf("/v1/me/exchange-links/%d", p.ID), r.memberTok, map[string]string{"account": "FF1"})
					q := r.must(201, "POST", "/v1/me/exchange-quotes", r.memberTok, map[string]any{"programme_id": p.ID, "points": 1000})
					x := r.must(202, "POST", "/v1/me/exchanges", r.memberTok, map[string]any{"quote_id": q["id"]})
					id = num(x["id"])
					// The worker's delivery: the programme answers pending.
					if err := e.xch.Deliver(e.ctx, id); err != nil {
						t.Fatal(err)
					}
					if got := r.must(200, "GET", fmt.Sprintf("/v1/me/exchanges/%d", id), r.memberTok, nil); got["status"] != "pending" {
						t.Fatalf("exchange %v, want pending", got)
					}
				},
				complete: func(r *clawbackRun) {
					if n := sim.Resolve(); n != 1 {
						t.Fatalf("the programme resolved %d credits, want 1", n)
					}
					if len(callbacks) != 1 || !strings.HasPrefix(callbacks[0], "200 completed") {
						t.Fatalf("the programme's confirmation was answered %v, want 200 completed", callbacks)
					}
					if got := r.must(200, "GET", fmt.Sprintf("/v1/me/exchanges/%d", id), r.memberTok, nil); got["status"] != "completed" {
						t.Fatalf("exchange %v, want completed", got)
					}
					if miles := sim.Balance("FF1"); miles != 700 {
						t.Fatalf("the programme credited %d miles, want 700", miles)
					}
				},
			}
		},
		"catalog order awaiting fulfilment": func(t *testing.T, e *hubEnv) flow {
			_, hotelTok := e.partner("Grand Hotels", e.clock.Now().AddDate(0, -1, 0))
			reward := e.must(201, "POST", "/v1/catalog/rewards", hotelTok, map[string]any{"title": "Free night", "category": "hotel_night",
				"price_points": 1000, "value": map[string]any{"minor": 9000, "currency": "EUR"}, "fulfilment": "async"})
			visible := catalog.VisibilityVisible
			if _, err := e.cat.Moderate(e.ctx, "ops@test", num(reward["id"]), catalog.Moderation{Visibility: &visible}); err != nil {
				t.Fatal(err)
			}
			var id int64
			return flow{
				hold: func(r *clawbackRun) {
					o := r.must(201, "POST", "/v1/me/orders", r.memberTok, map[string]any{"reward_id": reward["id"]})
					id = num(o["id"])
				},
				complete: func(r *clawbackRun) {
					o := r.must(200, "POST", fmt.Sprintf("/v1/orders/%d/fulfil", id), hotelTok, map[string]any{"reference": "CONF-1"})
					if o["status"] != "fulfilled" {
						t.Fatalf("order %v, want fulfilled", o)
					}
				},
			}
		},
		"point-of-sale authorisation awaiting capture": func(t *testing.T, e *hubEnv) flow {
			_, shopTok := e.partner("Corner Shop", e.clock.Now().AddDate(0, -1, 0))
			var id int64
			return flow{
				hold: func(r *clawbackRun) { id = num(r.burn(shopTok, 1000, false)["id"]) },
				complete: func(r *clawbackRun) {
					b := r.must(200, "POST", fmt.Sprintf("/v1/burns/%d/capture", id), shopTok, nil)
					if b["status"] != "captured" || num(b["captured_points"]) != 1000 {
						t.Fatalf("capture %v, want 1000 points captured", b)
					}
				},
			}
		},
	}
	for name, setup := range flows {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newHubEnv(t, nil)
			spec, err := OpenAPIJSON()
			if err != nil {
				t.Fatal(err)
			}
			v, err := apitest.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			_, issuerTok := e.partner("Harbour Hotels", e.clock.Now().AddDate(0, -1, 0))
			_, returnsTok := e.partner("Returns Retail", e.clock.Now().AddDate(0, -1, 0))
			// Returns Retail's earns wait 14 days (its return window).
			var retail int64
			if err := e.db.Raw(`SELECT id FROM partners WHERE name = 'Returns Retail'`).Scan(&retail).Error; err != nil {
				t.Fatal(err)
			}
			if _, err := e.reg.PublishContract(e.ctx, retail, partners.NewContract{EffectiveFrom: e.clock.Now(),
				Earn: true, Burn: true, IssuePrice: decimal.RequireFromString("0.008"), RedemptionRate: decimal.RequireFromString("0.005"),
				Billing: partners.BillingPostpaid, PendingDays: 14}, "staff:test"); err != nil {
				t.Fatal(err)
			}
			f := setup(t, e)
			m := e.must(201, "POST", "/v1/members", issuerTok, map[string]any{
				"identifier": map[string]string{"type": "partner_ref", "value": "HH-1"}, "profile": map[string]string{"given_name": "Ana"}})
			mt := signedInToken(t, e.mem, e.acc, num(m["id"]))
			r := &clawbackRun{hubEnv: e, t: t, member: num(m["id"]), memberTok: mt, issuerTok: issuerTok,
				checked: &http.Client{Transport: &apitest.Transport{T: t, V: v}}}

			r.wantBalance("new member", 0, 0, 0, 0, 0)
			spent := r.earn(issuerTok, 3000, "folio-1")
			r.earn(issuerTok, 1000, "folio-2")
			r.burn(issuerTok, 2500, true) // spends folio-1's points first
			r.wantBalance("earned and spent", 1500, 1500, 0, 0, 0)
			f.hold(r)
			r.wantBalance("held", 1500, 500, 0, 1000, 0)

			// The hotel reverses folio-1, already spent: folio-1's last 500
			// points and the 1000 that cover the hold go back, 1500 are owed.
			rev := r.must(201, "POST", fmt.Sprintf("/v1/transactions/%d/reversals", spent), issuerTok, map[string]any{"reason": "chargeback"})
			if num(rev["balance_after"]) != -1500 {
				t.Fatalf("reversal %v, want the balance at -1500", rev)
			}
			// The hold stays: 1000 held and owed on top of the debt.
			r.wantBalance("clawed back", -1500, 0, 0, 1000, 2500)
			r.portalShows("clawed back", `id="balance-available">0<`, `id="balance-held">1,000<`, `id="balance-owed">2,500<`,
				"owes 2,500 points")
			e.audit()
			// An earn in its return window repays debt at once.
			r.earn(returnsTok, 400, "receipt-1")
			r.wantBalance("debt partly repaid", -1100, 0, 0, 1000, 2100)

			f.complete(r)
			// Debited once for the purchase: 1000 points, into debt.
			r.wantBalance("completed", -2100, 0, 0, 0, 2100)
			hist := r.must(200, "GET", "/v1/me/transactions?type=capture", r.memberTok, nil)
			var purchase int
			for _, x := range hist["data"].([]any) {
				if num(x.(map[string]any)["points"]) == -1000 {
					purchase++
				}
			}
			if purchase != 1 {
				t.Fatalf("captures %v: want exactly one debit of 1000 points", hist)
			}
			e.audit()

			// Later earns repay the debt; pending points wait their window.
			r.earn(issuerTok, 2500, "folio-3")
			r.wantBalance("repaid", 400, 400, 0, 0, 0)
			r.earn(returnsTok, 300, "receipt-2")
			r.wantBalance("repaid, points pending", 700, 400, 300, 0, 0)
			r.portalShows("repaid", `id="balance-available">400<`, `id="balance-pending">300<`, `!id="balance-owed"`)
			e.audit()
		})
	}
}
