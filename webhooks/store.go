package webhooks

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// The store: rows as the tables hold them, and the statements on them.

type endpointRow struct {
	ID        int64
	PartnerID int64
	URL       string
	Events    eventList
	Secret    []byte
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (endpointRow) TableName() string { return "webhook_endpoints" }

// eventList is stored as a JSON array.
type eventList []string

func (l eventList) Value() (driver.Value, error) { return json.Marshal([]string(l)) }

func (l *eventList) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		return json.Unmarshal(v, (*[]string)(l))
	case string:
		return json.Unmarshal([]byte(v), (*[]string)(l))
	}
	return fmt.Errorf("eventList: cannot scan %T", src)
}

func (r endpointRow) endpoint() Endpoint {
	return Endpoint{ID: r.ID, URL: r.URL, Events: r.Events, Status: r.Status, CreatedAt: r.CreatedAt}
}

// insertEndpoint stores a new endpoint; row gets its id.
func insertEndpoint(tx *gorm.DB, row *endpointRow) error { return tx.Create(row).Error }

// selectEndpoints returns the partner's endpoints by id; with active, only
// the active ones.
func selectEndpoints(tx *gorm.DB, partnerID int64, active bool) ([]endpointRow, error) {
	q := tx.Where("partner_id = ?", partnerID)
	if active {
		q = q.Where("status = 'active'")
	}
	var rows []endpointRow
	err := q.Order("id").Find(&rows).Error
	return rows, err
}

// updateEndpointSecret replaces the sealed secret of the partner's endpoint
// id; it returns the rows changed (0: no such endpoint of the partner).
func updateEndpointSecret(tx *gorm.DB, partnerID, id int64, sealed []byte, now time.Time) (int64, error) {
	res := tx.Exec(`UPDATE webhook_endpoints SET secret = ?, updated_at = ? WHERE id = ? AND partner_id = ?`,
		sealed, now, id, partnerID)
	return res.RowsAffected, res.Error
}

// disableEndpoint disables the partner's endpoint id; it returns the rows
// changed (0: no such endpoint of the partner).
func disableEndpoint(tx *gorm.DB, partnerID, id int64, now time.Time) (int64, error) {
	res := tx.Exec(`UPDATE webhook_endpoints SET status = 'disabled', updated_at = ? WHERE id = ? AND partner_id = ?`,
		now, id, partnerID)
	return res.RowsAffected, res.Error
}

// HasActiveEndpoint reports, in tx, whether the partner has an active
// endpoint: without one, Publish has nothing to deliver.
func HasActiveEndpoint(tx *gorm.DB, partnerID int64) (bool, error) {
	var ok bool
	err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE partner_id = ? AND status = 'active')`,
		partnerID).Scan(&ok).Error
	return ok, err
}

func insertEvent(tx *gorm.DB, id uuid.UUID, partnerID int64, eventType string, body []byte, now time.Time) error {
	return tx.Exec(`INSERT INTO webhook_events (id, partner_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, partnerID, eventType, body, now).Error
}

func insertDelivery(tx *gorm.DB, eventID uuid.UUID, endpointID, partnerID int64, now time.Time) (int64, error) {
	var id int64
	err := tx.Raw(`INSERT INTO webhook_deliveries (event_id, endpoint_id, partner_id, created_at)
		VALUES (?, ?, ?, ?) RETURNING id`, eventID, endpointID, partnerID, now).Scan(&id).Error
	return id, err
}

// deliveryRow is what sending a delivery needs: its state, its endpoint's
// address and sealed secret, and its event.
type deliveryRow struct {
	ID        int64
	State     string
	EventID   string
	URL       string
	Secret    []byte
	Payload   []byte
	EventType string
}

// selectDelivery reads a delivery with its endpoint and event (ID 0: none).
func selectDelivery(tx *gorm.DB, id int64) (deliveryRow, error) {
	var d deliveryRow
	err := tx.Raw(`
		SELECT d.id, d.state, d.event_id::text AS event_id, e.url, e.secret, ev.payload, ev.type AS event_type
		FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id
		JOIN webhook_events ev ON ev.id = d.event_id
		WHERE d.id = ?`, id).Scan(&d).Error
	return d, err
}

// recordAttempt logs one attempt of a delivery and moves the delivery to
// state (delivered_at set when ok).
func recordAttempt(tx *gorm.DB, deliveryID int64, status *int, errText *string, state string, ok bool, elapsed time.Duration, now time.Time) error {
	if err := tx.Exec(`INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?)`,
		deliveryID, now, status, errText, elapsed.Milliseconds()).Error; err != nil {
		return err
	}
	return tx.Exec(`UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, state = ?,
		delivered_at = CASE WHEN ? THEN ?::timestamptz ELSE delivered_at END WHERE id = ?`,
		status, errText, state, ok, now, deliveryID).Error
}

// selectDeliveries is the partner's delivery log, newest first, before the
// delivery id before (0: from the newest).
func selectDeliveries(tx *gorm.DB, partnerID, before int64, limit int) ([]Delivery, error) {
	var out []Delivery
	err := tx.Raw(`SELECT d.id, d.event_id::text AS event_id, ev.type AS event_type, d.endpoint_id, d.state, d.attempts,
			d.last_status, d.last_error, d.created_at, d.delivered_at
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
		WHERE d.partner_id = ? AND (? = 0 OR d.id < ?) ORDER BY d.id DESC LIMIT ?`, partnerID, before, before, limit).Scan(&out).Error
	return out, err
}
