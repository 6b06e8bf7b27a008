package webhooks_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/internal/netguard/netguardtest"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/webhooks"
)

type received struct {
	header http.Header
	body   []byte
}

// receiver is a partner's webhook endpoint on loopback that answers with the
// status codes it is given, in order, then 200.
func receiver(t *testing.T, statuses ...int) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), b})
		n := len(got)
		mu.Unlock()
		if n <= len(statuses) {
			w.WriteHeader(statuses[n-1])
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

func newWebhooks(t *testing.T, db *gorm.DB) *webhooks.Service {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, err := access.NewSecretBox(key)
	if err != nil {
		t.Fatal(err)
	}
	return webhooks.NewService(db, box, netguard.Policy{AllowLoopback: true}, time.Now)
}

// queuedDeliveries returns the delivery ids waiting in the outbox.
func queuedDeliveries(t *testing.T, db *gorm.DB) []int64 {
	t.Helper()
	var payloads [][]byte
	if err := db.Raw(`SELECT payload FROM outbox WHERE task_type = ? ORDER BY id`, webhooks.TypeDeliverWebhook).Scan(&payloads).Error; err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range payloads {
		var d webhooks.DeliverWebhookPayload
		if err := json.Unmarshal(p, &d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.DeliveryID)
	}
	return ids
}

func publish(t *testing.T, db *gorm.DB, partnerID int64, typ string, data any) string {
	t.Helper()
	var id string
	err := db.Transaction(func(tx *gorm.DB) error {
		var err error
		id, err = webhooks.Publish(tx, time.Now(), partnerID, typ, data)
		return err
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return id
}

func TestWebhookIsSignedAndDeliveredOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	wh := newWebhooks(t, db)
	srv, got := receiver(t)
	ctx := context.Background()
	ep, secret, err := wh.CreateEndpoint(ctx, 7, srv.URL+"/hooks", []string{"transaction.*"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.ID == 0 || len(secret) < 40 {
		t.Fatalf("endpoint %+v, secret %q", ep, secret)
	}
	eventID := publish(t, db, 7, webhooks.EventTransactionPosted, map[string]any{"transaction_id": 42, "points": 150})
	// An event the endpoint did not subscribe to queues nothing.
	publish(t, db, 7, webhooks.EventStatementReady, map[string]any{"period": "2026-10"})
	// Another partner's events never reach this endpoint.
	publish(t, db, 8, webhooks.EventTransactionPosted, map[string]any{"transaction_id": 43})

	ids := queuedDeliveries(t, db)
	if len(ids) != 1 {
		t.Fatalf("queued deliveries: %v, want exactly one", ids)
	}
	handler := wh.DeliverHandler()
	payload, _ := json.Marshal(webhooks.DeliverWebhookPayload{DeliveryID: ids[0]})
	for i := 0; i < 2; i++ { // a duplicate task delivery must not send twice
		if err := handler.ProcessTask(ctx, asynq.NewTask(webhooks.TypeDeliverWebhook, payload)); err != nil {
			t.Fatalf("deliver: %v", err)
		}
	}
	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.header.Get("webhook-id") != eventID {
		t.Fatalf("webhook-id %q, want event id %q", r.header.Get("webhook-id"), eventID)
	}
	if err := webhooks.VerifySignature(secret, r.header, r.body, time.Now()); err != nil {
		t.Fatalf("signature does not verify with the endpoint secret: %v", err)
	}
	if err := webhooks.VerifySignature("whsec_"+"AAAA", r.header, r.body, time.Now()); err == nil {
		t.Fatal("signature verified with a wrong secret")
	}
	tampered := append([]byte(nil), r.body...)
	tampered[len(tampered)-2] = 'X'
	if err := webhooks.VerifySignature(secret, r.header, tampered, time.Now()); err == nil {
		t.Fatal("signature verified over a tampered body")
	}
	var body struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.ID != eventID || body.Type != "transaction.posted" || body.Data["points"] != 150.0 {
		t.Fatalf("body %s (%v)", r.body, err)
	}
	log, err := wh.Deliveries(ctx, 7, 0, 10)
	if err != nil || len(log) != 1 || log[0].State != "succeeded" || log[0].Attempts != 1 {
		t.Fatalf("delivery log %+v %v", log, err)
	}
	if other, _ := wh.Deliveries(ctx, 8, 0, 10); len(other) != 0 {
		t.Fatalf("partner 8 sees deliveries it has no endpoint for: %+v", other)
	}
}

func TestWebhookRetriesKeepEventIDAndFailAtLastAttempt(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	wh := newWebhooks(t, db)
	srv, got := receiver(t, 500, 503)
	ctx := context.Background()
	if _, _, err := wh.CreateEndpoint(ctx, 3, srv.URL, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	publish(t, db, 3, webhooks.EventPointsExpiring, map[string]any{"member_id": 1, "points": 500})
	id := queuedDeliveries(t, db)[0]
	if err := wh.Deliver(ctx, id, false); err == nil {
		t.Fatal("a 500 answer must return an error so asynq retries")
	}
	if err := wh.Deliver(ctx, id, false); err == nil {
		t.Fatal("a 503 answer must return an error so asynq retries")
	}
	if err := wh.Deliver(ctx, id, false); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	reqs := got()
	if len(reqs) != 3 || reqs[0].header.Get("webhook-id") != reqs[2].header.Get("webhook-id") {
		t.Fatalf("retries must carry the same event id: %d requests", len(reqs))
	}
	var attempts int64
	db.Raw(`SELECT count(*) FROM webhook_attempts WHERE delivery_id = ?`, id).Scan(&attempts)
	if attempts != 3 {
		t.Fatalf("attempt log rows: %d, want 3", attempts)
	}

	// A receiver that never answers 2xx ends as failed on the last retry.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }))
	t.Cleanup(bad.Close)
	if _, _, err := wh.CreateEndpoint(ctx, 4, bad.URL, []string{"points.expiring"}); err != nil {
		t.Fatal(err)
	}
	publish(t, db, 4, webhooks.EventPointsExpiring, map[string]any{"member_id": 2})
	ids := queuedDeliveries(t, db)
	last := ids[len(ids)-1]
	_ = wh.Deliver(ctx, last, true)
	log, _ := wh.Deliveries(ctx, 4, 0, 10)
	if len(log) != 1 || log[0].State != "failed" || log[0].LastStatus == nil || *log[0].LastStatus != 410 {
		t.Fatalf("after the last attempt: %+v", log)
	}
}

func TestWebhookPublishRolledBackQueuesNothing(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	wh := newWebhooks(t, db)
	srv, _ := receiver(t)
	if _, _, err := wh.CreateEndpoint(context.Background(), 5, srv.URL, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("domain failed")
	err := db.Transaction(func(tx *gorm.DB) error {
		if _, err := webhooks.Publish(tx, time.Now(), 5, webhooks.EventTransactionPosted, map[string]any{}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	var n int64
	db.Raw(`SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM webhook_events) + (SELECT count(*) FROM webhook_deliveries)`).Scan(&n)
	if n != 0 {
		t.Fatalf("rolled-back publish left %d rows", n)
	}
}

func TestWebhookEndpointValidation(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	wh := newWebhooks(t, db)
	_, _, err := wh.CreateEndpoint(context.Background(), 1, "ftp://x", []string{"nope.event"})
	var ve *validation.Error
	if !errors.As(err, &ve) || len(ve.Fields) != 2 || ve.Fields[0].Field != "url" || ve.Fields[1].Field != "events[0]" {
		t.Fatalf("want field errors for url and events[0], got %v", err)
	}
}

func TestWebhookRetryScheduleCoversADay(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for n := 0; n < webhooks.WebhookMaxRetry; n++ {
		total += webhooks.WebhookRetryDelay(n)
	}
	if total < 24*time.Hour {
		t.Fatalf("retries span %v, want at least 24h", total)
	}
}

// countingReceiver is a loopback receiver that answers h and counts the
// connections made to it.
func countingReceiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func webhooksWith(t *testing.T, db *gorm.DB, dest netguard.Policy) *webhooks.Service {
	t.Helper()
	box, err := access.NewSecretBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return webhooks.NewService(db, box, dest, time.Now)
}

func deliveryState(t *testing.T, db *gorm.DB, id int64) (state string, attempts int, lastStatus *int, lastError string) {
	t.Helper()
	var d struct {
		State      string
		Attempts   int
		LastStatus *int
		LastError  *string
	}
	if err := db.Raw(`SELECT state, attempts, last_status, last_error FROM webhook_deliveries WHERE id = ?`, id).Scan(&d).Error; err != nil {
		t.Fatal(err)
	}
	if d.LastError != nil {
		lastError = *d.LastError
	}
	return d.State, d.Attempts, d.LastStatus, lastError
}

// A receiver URL stored in the database without passing registration (an old
// row, or one written while loopback was allowed) is refused at delivery:
// the delivery fails at once, and the loopback listener sees no connection.
func TestWebhookDeliveryRefusesAStoredInternalURL(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	wh := webhooksWith(t, db, netguard.Policy{})
	srv, conns := countingReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	ep, _, err := wh.CreateEndpoint(ctx, 11, "https://hooks.partner.example/in", []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		srv.URL + "/in",
		"https://127.0.0.1:" + port + "/in",
		"https://[::ffff:127.0.0.1]:" + port + "/in",
		"http://localhost:" + port + "/in",
	} {
		if err := db.Exec(`UPDATE webhook_endpoints SET url = ? WHERE id = ?`, u, ep.ID).Error; err != nil {
			t.Fatal(err)
		}
		publish(t, db, 11, webhooks.EventTransactionPosted, map[string]any{"transaction_id": 1})
		ids := queuedDeliveries(t, db)
		id := ids[len(ids)-1]
		err := wh.Deliver(ctx, id, false)
		if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("%s: Deliver returned %v; want a refusal that is not retried", u, err)
		}
		state, attempts, _, lastError := deliveryState(t, db, id)
		if state != "failed" || attempts != 1 || !strings.Contains(lastError, "destination refused") {
			t.Errorf("%s: delivery %s after %d attempts (%q); want failed after 1, destination refused", u, state, attempts, lastError)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the loopback listener got %d connections, want 0", n)
	}
}

// A name that resolves to 127.0.0.1 is registered (registration does not
// resolve names) but refused by the delivery's dialer on the resolved
// address; the attempt fails and is retried later, as DNS answers change.
func TestWebhookDeliveryRefusesANameResolvingToLoopback(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	resolver := netguardtest.Resolver(map[string][]netip.Addr{"hooks.partner.test": {netip.MustParseAddr("127.0.0.1")}})
	wh := webhooksWith(t, db, netguard.Policy{Resolver: resolver})
	srv, conns := countingReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	u := "https://hooks.partner.test:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port) + "/in"
	ctx := context.Background()
	if _, _, err := wh.CreateEndpoint(ctx, 12, u, []string{"*"}); err != nil {
		t.Fatalf("register %s: %v", u, err)
	}
	publish(t, db, 12, webhooks.EventTransactionPosted, map[string]any{"transaction_id": 1})
	id := queuedDeliveries(t, db)[0]
	err := wh.Deliver(ctx, id, false)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("Deliver returned %v; want a failed attempt that is retried", err)
	}
	state, attempts, _, lastError := deliveryState(t, db, id)
	if state != "pending" || attempts != 1 || !strings.Contains(lastError, "loopback address (127.0.0.1)") {
		t.Fatalf("delivery %s after %d attempts (%q); want pending after 1, refused for the loopback address", state, attempts, lastError)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the loopback listener got %d connections, want 0", n)
	}
}

// A receiver answering with a redirect is a failed attempt; the redirect is
// never followed, to a refused target (plain http to a name that resolves to
// loopback) or to an allowed one.
func TestWebhookRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	resolver := netguardtest.Resolver(map[string][]netip.Addr{"inside.partner.test": {netip.MustParseAddr("127.0.0.1")}})
	wh := webhooksWith(t, db, netguard.Policy{AllowLoopback: true, Resolver: resolver})
	target, targetConns := countingReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	port := strconv.Itoa(target.Listener.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	for i, to := range []string{"http://inside.partner.test:" + port + "/admin", target.URL + "/elsewhere"} {
		from, _ := countingReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to, http.StatusTemporaryRedirect)
		})
		partnerID := int64(20 + i)
		if _, _, err := wh.CreateEndpoint(ctx, partnerID, from.URL+"/in", []string{"*"}); err != nil {
			t.Fatal(err)
		}
		publish(t, db, partnerID, webhooks.EventTransactionPosted, map[string]any{"transaction_id": 1})
		ids := queuedDeliveries(t, db)
		id := ids[len(ids)-1]
		if err := wh.Deliver(ctx, id, false); err == nil {
			t.Errorf("redirect to %s: Deliver succeeded; a 3xx is a failed attempt", to)
		}
		state, _, status, lastError := deliveryState(t, db, id)
		if state != "pending" || status == nil || *status != http.StatusTemporaryRedirect {
			t.Errorf("redirect to %s: delivery %s, status %v (%q); want pending with status 307", to, state, status, lastError)
		}
	}
	if n := targetConns.Load(); n != 0 {
		t.Fatalf("the redirect target got %d connections, want 0", n)
	}
}
