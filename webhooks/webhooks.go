package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/validation"
)

// Webhook event types a partner can subscribe to. A subscription may also use
// a wildcard per family ("order.*") or "*".
const (
	EventTransactionPosted   = "transaction.posted"
	EventTransactionReversed = "transaction.reversed"
	EventBurnCaptured        = "burn.captured"
	EventOrderCreated        = "order.created"
	EventOrderFulfilled      = "order.fulfilled"
	EventOrderCancelled      = "order.cancelled"
	EventExchangeCompleted   = "exchange.completed"
	EventExchangeFailed      = "exchange.failed"
	EventStatementReady      = "statement.ready"
	EventPointsExpiring      = "points.expiring"
)

var knownEvents = map[string]bool{
	EventTransactionPosted: true, EventTransactionReversed: true, EventBurnCaptured: true,
	EventOrderCreated: true, EventOrderFulfilled: true, EventOrderCancelled: true,
	EventExchangeCompleted: true, EventExchangeFailed: true, EventStatementReady: true,
	EventPointsExpiring: true,
}

// Webhook errors.
var (
	ErrWebhookEndpointNotFound = errors.New("webhook endpoint not found")
	ErrWebhookDeliveryNotFound = errors.New("webhook delivery not found")
)

// TypeDeliverWebhook delivers one webhook delivery row. Never renamed (its
// prefix names the package that first held it).
const TypeDeliverWebhook = "partners:deliver_webhook"

// DeliverWebhookPayload is the payload of TypeDeliverWebhook.
type DeliverWebhookPayload struct {
	DeliveryID int64 `json:"delivery_id"`
}

// WebhookRetryDelay spaces delivery retries: 10s doubling up to one hour.
// With WebhookMaxRetry attempts that keeps trying for more than 24 hours.
func WebhookRetryDelay(n int) time.Duration {
	d := 10 * time.Second << min(n, 9)
	return min(d, time.Hour)
}

// WebhookMaxRetry is the number of retries of a failing delivery (> 24 h, see WebhookRetryDelay).
const WebhookMaxRetry = 32

// Sealer encrypts secrets at rest; the webhook signing secret must be
// recoverable to sign, so it is sealed rather than hashed.
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Endpoint is a partner's registered webhook receiver.
type Endpoint struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Delivery is one event sent (or being sent) to one endpoint.
type Delivery struct {
	ID          int64      `json:"id"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	EndpointID  int64      `json:"endpoint_id"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastStatus  *int       `json:"last_status,omitempty"`
	LastError   *string    `json:"last_error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// Service registers endpoints, publishes events through the outbox and
// delivers them signed (Standard Webhooks: HMAC-SHA256 over
// "<event id>.<unix timestamp>.<body>", base64, header "webhook-signature: v1,<sig>").
//
// Receivers are partner-given URLs, so dest (package netguard) decides which
// are allowed: at registration, and again on every delivery in the client's
// dialer, after DNS resolution. No redirect is followed.
type Service struct {
	db     *gorm.DB
	sealer Sealer
	dest   netguard.Policy
	client *http.Client
	now    func() time.Time
}

// WebhookTimeout bounds one delivery attempt.
const WebhookTimeout = 10 * time.Second

// NewService builds the webhook service; dest is the destination rule
// (the zero Policy in production: https to public addresses only).
func NewService(db *gorm.DB, sealer Sealer, dest netguard.Policy, now func() time.Time) *Service {
	return &Service{db: db, sealer: sealer, dest: dest, client: dest.Client(WebhookTimeout), now: now}
}

func (w *Service) validateEndpoint(rawURL string, events []string) error {
	var v validation.Error
	if len(rawURL) > 2000 {
		v.Add("url", "must be at most 2000 characters")
	} else if err := w.dest.CheckURL(rawURL); err != nil {
		v.Add("url", err.Error())
	}
	v.Check(len(events) > 0 && len(events) <= 32, "events", "must list 1 to 32 event types")
	for i, e := range events {
		ok := knownEvents[e] || e == "*"
		if fam, found := strings.CutSuffix(e, ".*"); found {
			for k := range knownEvents {
				if strings.HasPrefix(k, fam+".") {
					ok = true
				}
			}
		}
		v.Check(ok, fmt.Sprintf("events[%d]", i), "unknown event type "+strconv.Quote(e))
	}
	return v.Err()
}

// CreateEndpoint registers a receiver and returns it with its signing secret,
// which is shown this once.
func (w *Service) CreateEndpoint(ctx context.Context, partnerID int64, rawURL string, events []string) (Endpoint, string, error) {
	if err := w.validateEndpoint(rawURL, events); err != nil {
		return Endpoint{}, "", err
	}
	secret, sealed, err := w.newSecret()
	if err != nil {
		return Endpoint{}, "", err
	}
	now := w.now().UTC()
	row := endpointRow{PartnerID: partnerID, URL: rawURL, Events: events, Secret: sealed, Status: "active",
		CreatedAt: now, UpdatedAt: now}
	if err := insertEndpoint(w.db.WithContext(ctx), &row); err != nil {
		return Endpoint{}, "", fmt.Errorf("create webhook endpoint: %w", err)
	}
	return row.endpoint(), secret, nil
}

func (w *Service) newSecret() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(b)
	sealed, err := w.sealer.Seal([]byte(secret))
	if err != nil {
		return "", nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	return secret, sealed, nil
}

// RotateEndpointSecret replaces an endpoint's signing secret and returns the new one, once.
func (w *Service) RotateEndpointSecret(ctx context.Context, partnerID, id int64) (string, error) {
	secret, sealed, err := w.newSecret()
	if err != nil {
		return "", err
	}
	n, err := updateEndpointSecret(w.db.WithContext(ctx), partnerID, id, sealed, w.now().UTC())
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("webhook endpoint %d: %w", id, ErrWebhookEndpointNotFound)
	}
	return secret, nil
}

// ListEndpoints returns the partner's endpoints.
func (w *Service) ListEndpoints(ctx context.Context, partnerID int64) ([]Endpoint, error) {
	rows, err := selectEndpoints(w.db.WithContext(ctx), partnerID, false)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, len(rows))
	for i, r := range rows {
		out[i] = r.endpoint()
	}
	return out, nil
}

// DisableEndpoint stops deliveries to an endpoint; its log stays readable.
func (w *Service) DisableEndpoint(ctx context.Context, partnerID, id int64) error {
	n, err := disableEndpoint(w.db.WithContext(ctx), partnerID, id, w.now().UTC())
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("webhook endpoint %d: %w", id, ErrWebhookEndpointNotFound)
	}
	return nil
}

func subscribed(events []string, eventType string) bool {
	for _, e := range events {
		if e == "*" || e == eventType {
			return true
		}
		if fam, ok := strings.CutSuffix(e, ".*"); ok && strings.HasPrefix(eventType, fam+".") {
			return true
		}
	}
	return false
}

// Publish records an event for a partner inside the caller's transaction tx,
// with one delivery per subscribed endpoint, and queues the deliveries through
// the outbox: they go out after commit, or never if tx rolls back. It returns
// the event id, which every delivery and retry carries for de-duplication.
func Publish(tx *gorm.DB, now time.Time, partnerID int64, eventType string, data any) (string, error) {
	if !knownEvents[eventType] {
		return "", fmt.Errorf("publish: unknown event type %q", eventType)
	}
	endpoints, err := selectEndpoints(tx, partnerID, true)
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", eventType, err)
	}
	var targets []endpointRow
	for _, e := range endpoints {
		if subscribed(e.Events, eventType) {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		return "", nil
	}
	id := uuid.New()
	body, err := json.Marshal(map[string]any{
		"id": id.String(), "type": eventType, "created_at": now.UTC().Format(time.RFC3339), "data": data,
	})
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", eventType, err)
	}
	if err := insertEvent(tx, id, partnerID, eventType, body, now.UTC()); err != nil {
		return "", fmt.Errorf("publish %s: %w", eventType, err)
	}
	msgs := make([]outbox.Message, 0, len(targets))
	for _, e := range targets {
		deliveryID, err := insertDelivery(tx, id, e.ID, partnerID, now.UTC())
		if err != nil {
			return "", fmt.Errorf("publish %s: %w", eventType, err)
		}
		msgs = append(msgs, outbox.Message{TaskType: TypeDeliverWebhook, Queue: "default",
			Payload: DeliverWebhookPayload{DeliveryID: deliveryID}})
	}
	if err := outbox.Write(tx, msgs...); err != nil {
		return "", err
	}
	return id.String(), nil
}

// Sign returns the Standard Webhooks signature header value for a delivery.
// Receivers recompute it with their copy of the secret and compare in
// constant time; they reject timestamps more than five minutes old.
func Sign(secret, eventID string, ts int64, body []byte) string {
	key := []byte(secret)
	if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err == nil {
		key = b
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", eventID, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a delivery as a receiver would; partners may copy it.
func VerifySignature(secret string, header http.Header, body []byte, now time.Time) error {
	id, tsRaw, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return errors.New("webhook: bad timestamp")
	}
	if d := now.Unix() - ts; d > 300 || d < -300 {
		return errors.New("webhook: timestamp outside tolerance")
	}
	want := Sign(secret, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhook: signature mismatch")
}

// Deliver sends one delivery and records the attempt. It is idempotent: a
// delivery that already succeeded is not sent again. It returns an error when
// the receiver did not answer 2xx (a 3xx included: redirects are not
// followed), so asynq retries it with backoff; on the last retry the delivery
// is marked failed. A URL the destination rule refuses fails the delivery at
// once, without a retry; a name that resolves to a refused address fails the
// attempt and is retried, as DNS answers change.
func (w *Service) Deliver(ctx context.Context, deliveryID int64, lastAttempt bool) error {
	d, err := selectDelivery(w.db.WithContext(ctx), deliveryID)
	if err != nil {
		return fmt.Errorf("load delivery %d: %w", deliveryID, err)
	}
	if d.ID == 0 {
		return fmt.Errorf("delivery %d: %w: %w", deliveryID, ErrWebhookDeliveryNotFound, asynq.SkipRetry)
	}
	if d.State != "pending" {
		return nil
	}
	secret, err := w.sealer.Open(d.Secret)
	if err != nil {
		return fmt.Errorf("open webhook secret: %w", err)
	}
	if err := w.dest.CheckURL(d.URL); err != nil {
		// A stored URL the rule refuses (written before the rule, or while
		// loopback was allowed) fails at once: retrying cannot change the answer.
		errText := "destination refused: " + err.Error()
		if err := w.record(ctx, deliveryID, nil, &errText, "failed", 0); err != nil {
			return err
		}
		return fmt.Errorf("deliver webhook %d: %w: %w", deliveryID, err, asynq.SkipRetry)
	}
	ts := w.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return fmt.Errorf("delivery %d: %w: %w", deliveryID, err, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "coalition-hub-webhooks/1")
	req.Header.Set("webhook-id", d.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(string(secret), d.EventID, ts, d.Payload))
	req.Header.Set("webhook-event-type", d.EventType)
	start := time.Now()
	// The client follows no redirect: a 3xx is the answer, and not a 2xx.
	resp, sendErr := w.client.Do(req)
	elapsed := time.Since(start)
	var status *int
	var errText *string
	if sendErr != nil {
		s := sendErr.Error()
		errText = &s
	} else {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		status = &resp.StatusCode
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			s := "receiver answered " + resp.Status
			errText = &s
		}
	}
	ok := errText == nil
	state := "pending"
	switch {
	case ok:
		state = "succeeded"
	case lastAttempt:
		state = "failed"
	}
	if err := w.record(ctx, deliveryID, status, errText, state, elapsed); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("deliver webhook %d to %s: %s", deliveryID, d.URL, *errText)
	}
	return nil
}

// record logs one attempt of a delivery and moves it to state.
func (w *Service) record(ctx context.Context, deliveryID int64, status *int, errText *string, state string, elapsed time.Duration) error {
	ok := state == "succeeded"
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return recordAttempt(tx, deliveryID, status, errText, state, ok, elapsed, w.now().UTC())
	})
	if err != nil {
		return fmt.Errorf("record delivery %d: %w", deliveryID, err)
	}
	return nil
}

// DeliverHandler handles TypeDeliverWebhook.
func (w *Service) DeliverHandler() asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p DeliverWebhookPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.DeliveryID <= 0 {
			return fmt.Errorf("bad %s payload: %w", TypeDeliverWebhook, asynq.SkipRetry)
		}
		n, _ := asynq.GetRetryCount(ctx)
		max, _ := asynq.GetMaxRetry(ctx)
		return w.Deliver(ctx, p.DeliveryID, n >= max)
	}
}

// Deliveries lists the partner's delivery log, newest first, after cursor
// (a delivery id; 0 for the first page).
func (w *Service) Deliveries(ctx context.Context, partnerID, before int64, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	return selectDeliveries(w.db.WithContext(ctx), partnerID, before, limit)
}
