// Package webhooks owns the partners' webhook endpoints and the events
// published to them: registration, secrets, signed delivery with retries and
// the delivery log. An event is written to the outbox inside the publisher's
// database transaction (Publish), so it is delivered if and only if its cause
// committed.
//
// Invariants:
//
//   - Endpoints are public https addresses (internal/netguard), checked when
//     registered and again when each delivery connects.
//   - Every delivery carries a stable event id and a Standard Webhooks
//     signature (HMAC-SHA256 with the endpoint's secret, sealed at rest).
//   - A failed delivery is retried with backoff (WebhookRetryDelay) up to
//     WebhookMaxRetry times; its attempts are recorded in webhook_deliveries.
package webhooks
