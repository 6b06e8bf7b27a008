package partners

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/webhooks"
	"gorm.io/gorm"
)

// TestPrepaidAlertOncePerCrossing: a prepaid partner below its contract's
// threshold is told once (one prepaid.low_balance event, however often the
// job runs), re-armed when a top-up lifts it to the threshold, and told
// again at the next crossing. Partners without a threshold are never told.
func TestPrepaidAlertOncePerCrossing(t *testing.T) {
	t.Parallel()
	svc, db, clk := newTestService(t)
	ctx := context.Background()
	wh := webhooks.NewService(db, plainSealer{}, netguard.Policy{AllowLoopback: true}, clk.Now)

	low := mustPartner(t, svc, "Small Shop")
	in := contractInput(clk.Now().Add(-time.Hour), "0.01")
	in.Billing, in.PrepaidAlertThreshold, in.PendingDays = BillingPrepaid, 10000, 0 // 100.00 EUR
	if _, err := svc.PublishContract(ctx, low.ID, in, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := wh.CreateEndpoint(ctx, low.ID, "http://127.0.0.1:1/hooks", []string{"prepaid.*"}); err != nil {
		t.Fatal(err)
	}
	quiet := mustPartner(t, svc, "No Threshold")
	in.PrepaidAlertThreshold = 0
	if _, err := svc.PublishContract(ctx, quiet.ID, in, "test"); err != nil {
		t.Fatal(err)
	}
	eur := func(minor int64) money.Money { return money.Money{Minor: minor, Currency: "EUR"} }
	if _, err := svc.TopUp(ctx, low.ID, eur(5000), "wire-1", "test"); err != nil {
		t.Fatal(err)
	}
	events := func() int64 {
		var n int64
		db.Raw(`SELECT count(*) FROM webhook_events WHERE partner_id = ? AND type = ?`, low.ID, webhooks.EventPrepaidLowBalance).Scan(&n)
		return n
	}

	run, err := svc.RunPrepaidAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if run.Checked != 1 || !slices.Equal(run.Alerted, []int64{low.ID}) || len(run.Rearmed) != 0 {
		t.Fatalf("first run %+v, want 1 checked and partner %d alerted", run, low.ID)
	}
	if st, _ := svc.PrepaidAlert(ctx, low.ID); !st.Low || st.Threshold != 10000 {
		t.Fatalf("alert state %+v, want low with threshold 10000", st)
	}
	if run, _ = svc.RunPrepaidAlerts(ctx); len(run.Alerted) != 0 || events() != 1 {
		t.Fatalf("second run %+v with %d events; want no new alert and one event", run, events())
	}
	if _, err := svc.TopUp(ctx, low.ID, eur(6000), "wire-2", "test"); err != nil {
		t.Fatal(err)
	}
	if run, _ = svc.RunPrepaidAlerts(ctx); !slices.Equal(run.Rearmed, []int64{low.ID}) || len(run.Alerted) != 0 {
		t.Fatalf("after the top-up %+v, want partner %d re-armed", run, low.ID)
	}
	if err := db.Transaction(func(tx *gorm.DB) error {
		_, err := svc.DrawDown(tx, low.ID, eur(2000), "earn-1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if run, _ = svc.RunPrepaidAlerts(ctx); !slices.Equal(run.Alerted, []int64{low.ID}) || events() != 2 {
		t.Fatalf("after the next crossing %+v with %d events, want a second alert", run, events())
	}
	var outbox int64
	db.Raw(`SELECT count(*) FROM outbox WHERE task_type = ?`, webhooks.TypeDeliverWebhook).Scan(&outbox)
	if outbox != 2 {
		t.Fatalf("%d deliveries queued, want one per alert (2)", outbox)
	}
}

// plainSealer keeps webhook secrets as they are: the test signs nothing.
type plainSealer struct{}

func (plainSealer) Seal(b []byte) ([]byte, error) { return b, nil }
func (plainSealer) Open(b []byte) ([]byte, error) { return b, nil }
