package partnersim_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
)

// Credits to an account under HoldPrefix stay pending at every status
// lookup, while others complete as PendingPolls says, until Resolve.
func TestHoldPrefixKeepsCreditsPending(t *testing.T) {
	t.Parallel()
	sim := partnersim.New(partnersim.Config{APIKey: "k", PendingPolls: 1, HoldPrefix: "HOLD"})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	p, ep := exchange.NewHTTPPartner(time.Minute), exchange.Endpoint{URL: srv.URL, APIKey: "k"}
	for _, c := range []exchange.CreditRequest{{TransactionID: "held", Account: "HOLD-1", Units: 700},
		{TransactionID: "plain", Account: "FF1", Units: 700}} {
		if r, err := p.Credit(ctx, ep, c); err != nil || r.Status != exchange.CreditPending {
			t.Fatalf("credit %s: %+v %v; want pending", c.TransactionID, r, err)
		}
	}
	for range 3 {
		if r, err := p.CreditStatus(ctx, ep, "held"); err != nil || r.Status != exchange.CreditPending {
			t.Fatalf("held credit: %+v %v; want pending", r, err)
		}
	}
	if r, err := p.CreditStatus(ctx, ep, "plain"); err != nil || r.Status != exchange.CreditCompleted {
		t.Fatalf("plain credit: %+v %v; want completed at the first lookup", r, err)
	}
	if n := sim.Resolve(); n != 1 {
		t.Fatalf("Resolve completed %d, want the held credit", n)
	}
	if r, err := p.CreditStatus(ctx, ep, "held"); err != nil || r.Status != exchange.CreditCompleted {
		t.Fatalf("held credit after Resolve: %+v %v", r, err)
	}
}
