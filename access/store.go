package access

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
	"gorm.io/gorm"
)

// Rows below are the store's view of the tables; they never leave this
// package (the service converts them to the exported types).

type clientRow struct {
	ID                 int64
	ClientID           string
	PartnerID          int64
	Name               string
	SecretHash         []byte
	PreviousSecretHash []byte
	PreviousValidUntil *time.Time
	Scopes             string // space separated (array_to_string)
	Status             string
	PublicKeyPem       *string
	PublicKeyAlg       *string
	CreatedAt          time.Time
	SecretRotatedAt    *time.Time
	RevokedAt          *time.Time
	PartnerStatus      string `gorm:"-"` // the registry's answer, filled by readClient
}

func (r clientRow) client() Client {
	c := Client{ID: r.ID, ClientID: r.ClientID, PartnerID: r.PartnerID, Name: r.Name,
		Scopes: ParseScopes(r.Scopes), Status: r.Status, HasSecret: r.SecretHash != nil,
		CreatedAt: r.CreatedAt, SecretRotatedAt: r.SecretRotatedAt, PreviousValidTill: r.PreviousValidUntil,
		RevokedAt: r.RevokedAt}
	if r.PublicKeyAlg != nil {
		c.PublicKeyAlg = *r.PublicKeyAlg
	}
	return c
}

type signingKeyRow struct {
	KID           string `gorm:"column:kid"`
	Alg           string
	PublicKey     []byte
	SealedPrivate []byte
	CreatedAt     time.Time
	RetiredAt     *time.Time
	VerifyUntil   *time.Time
}

func (r signingKeyRow) key() SigningKey {
	return SigningKey{KID: r.KID, Alg: r.Alg, PublicKey: r.PublicKey, CreatedAt: r.CreatedAt,
		RetiredAt: r.RetiredAt, VerifyUntil: r.VerifyUntil}
}

type staffRow struct {
	ID           int64
	Email        string
	PasswordHash string
	Role         string
	Status       string
	CreatedAt    time.Time
	LastLoginAt  *time.Time
}

func (r staffRow) staff() Staff {
	return Staff{ID: r.ID, Email: r.Email, Role: Role(r.Role), Status: r.Status, CreatedAt: r.CreatedAt, LastLoginAt: r.LastLoginAt}
}

// notFound maps an empty result to sentinel.
func notFound[T any](rows []T, sentinel error, what string) (T, error) {
	var zero T
	if len(rows) == 0 {
		return zero, fmt.Errorf("%s: %w", what, sentinel)
	}
	return rows[0], nil
}

// --- api clients ------------------------------------------------------------

const clientCols = `c.id, c.client_id, c.partner_id, c.name, c.secret_hash, c.previous_secret_hash,
	c.previous_valid_until, array_to_string(c.scopes, ' ') AS scopes, c.status, c.public_key_pem,
	c.public_key_alg, c.created_at, c.secret_rotated_at, c.revoked_at`

const clientFrom = ` FROM api_clients c `

func insertClient(tx *gorm.DB, clientID string, partnerID int64, name string, secretHash []byte, scopes []Scope,
	pemKey, alg *string, now time.Time) error {
	err := tx.Exec(`INSERT INTO api_clients (client_id, partner_id, name, secret_hash, scopes, public_key_pem, public_key_alg, created_at)
		VALUES (?, ?, ?, ?, string_to_array(?, ' '), ?, ?, ?)`,
		clientID, partnerID, name, secretHash, JoinScopes(scopes), pemKey, alg, now).Error
	if database.Code(err) == database.ForeignKeyViolation {
		return partners.ErrPartnerNotFound
	}
	return err
}

func selectClient(tx *gorm.DB, clientID string, forUpdate bool) (clientRow, error) {
	q := `SELECT ` + clientCols + clientFrom + `WHERE c.client_id = ?`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var rows []clientRow
	if err := tx.Raw(q, clientID).Scan(&rows).Error; err != nil {
		return clientRow{}, err
	}
	return notFound(rows, ErrClientNotFound, "client "+clientID)
}

func selectClients(tx *gorm.DB, partnerID int64, page partners.Page) ([]clientRow, error) {
	var rows []clientRow
	err := tx.Raw(`SELECT `+clientCols+clientFrom+`WHERE c.partner_id = ? AND c.id > ? ORDER BY c.id LIMIT ?`,
		partnerID, page.After, page.Size()).Scan(&rows).Error
	return rows, err
}

// recordAssertionJTI stores a client assertion's jti; false when it was
// already used (a replay). Expired jtis of the client are pruned first, so
// the table stays proportional to assertions in flight.
func recordAssertionJTI(tx *gorm.DB, clientID, jti string, expiresAt, now time.Time) (bool, error) {
	if err := tx.Exec(`DELETE FROM client_assertion_jtis WHERE client_id = ? AND expires_at < ?`, clientID, now).Error; err != nil {
		return false, err
	}
	res := tx.Exec(`INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		clientID, jti, expiresAt)
	return res.RowsAffected == 1, res.Error
}

// updateClientSecret installs a new secret hash; the previous one keeps
// working until until (nil: no previous secret).
func updateClientSecret(tx *gorm.DB, clientID string, hash, prev []byte, until *time.Time, now time.Time) error {
	return tx.Exec(`UPDATE api_clients SET secret_hash = ?, previous_secret_hash = ?, previous_valid_until = ?,
		secret_rotated_at = ? WHERE client_id = ?`, hash, prev, until, now, clientID).Error
}

// revokeClient revokes an active client; a revoked one is left as it is.
func revokeClient(tx *gorm.DB, clientID string, now time.Time) error {
	return tx.Exec(`UPDATE api_clients SET status = 'revoked', revoked_at = ? WHERE client_id = ? AND status = 'active'`,
		now, clientID).Error
}

func updateClientPublicKey(tx *gorm.DB, clientID, pemKey, alg string) error {
	return tx.Exec(`UPDATE api_clients SET public_key_pem = ?, public_key_alg = ? WHERE client_id = ?`, pemKey, alg, clientID).Error
}

// --- staff ------------------------------------------------------------------

const staffCols = `id, email, password_hash, role, status, created_at, last_login_at`

func insertStaff(tx *gorm.DB, email, hash string, role Role, now time.Time) (staffRow, error) {
	var r staffRow
	err := tx.Raw(`INSERT INTO staff_users (email, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING `+staffCols,
		email, hash, string(role), now).Scan(&r).Error
	if database.IsUnique(err, "") {
		return r, ErrStaffExists
	}
	return r, err
}

func selectStaffByEmail(tx *gorm.DB, email string, forUpdate bool) (staffRow, bool, error) {
	q := `SELECT ` + staffCols + ` FROM staff_users WHERE email = ?`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var rows []staffRow
	if err := tx.Raw(q, email).Scan(&rows).Error; err != nil || len(rows) == 0 {
		return staffRow{}, false, err
	}
	return rows[0], true, nil
}

func selectStaffByID(tx *gorm.DB, id int64) (staffRow, error) {
	var rows []staffRow
	if err := tx.Raw(`SELECT `+staffCols+` FROM staff_users WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return staffRow{}, err
	}
	return notFound(rows, ErrStaffNotFound, fmt.Sprintf("staff %d", id))
}

func selectStaff(tx *gorm.DB, page partners.Page) ([]staffRow, error) {
	var rows []staffRow
	err := tx.Raw(`SELECT `+staffCols+` FROM staff_users WHERE id > ? ORDER BY id LIMIT ?`, page.After, page.Size()).Scan(&rows).Error
	return rows, err
}

func updateStaffStatus(tx *gorm.DB, id int64, status string) error {
	return tx.Exec(`UPDATE staff_users SET status = ? WHERE id = ?`, status, id).Error
}

func updateStaffLastLogin(tx *gorm.DB, id int64, now time.Time) error {
	return tx.Exec(`UPDATE staff_users SET last_login_at = ? WHERE id = ?`, now, id).Error
}

func updateStaffRole(tx *gorm.DB, id int64, role Role) error {
	return tx.Exec(`UPDATE staff_users SET role = ? WHERE id = ?`, string(role), id).Error
}

// lockActiveAdmins returns the active admins' ids and locks their rows, so
// two concurrent demotions cannot both see another admin left.
func lockActiveAdmins(tx *gorm.DB) ([]int64, error) {
	var ids []int64
	err := tx.Raw(`SELECT id FROM staff_users WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE`).Scan(&ids).Error
	return ids, err
}

// --- staff sessions ---------------------------------------------------------

type staffSessionRow struct {
	ID        string
	StaffID   int64
	CreatedAt time.Time
	ExpiresAt time.Time
}

func startStaffSession(tx *gorm.DB, staffID int64, expiresAt time.Time, info SessionInfo, now time.Time) (staffSessionRow, error) {
	now = now.UTC().Truncate(time.Microsecond)
	r := staffSessionRow{ID: randomToken(16), StaffID: staffID, CreatedAt: now, ExpiresAt: expiresAt.UTC().Truncate(time.Microsecond)}
	err := tx.Exec(`INSERT INTO staff_sessions (id, staff_id, created_at, last_seen_at, expires_at, user_agent, ip)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, staffID, r.CreatedAt, r.CreatedAt, r.ExpiresAt,
		validation.Clip(info.UserAgent, 256), validation.Clip(info.IP, 45)).Error
	return r, err
}

// staffOfSession is a session joined to its account.
type staffOfSession struct {
	ID         string
	StaffID    int64
	LastSeenAt time.Time
	ExpiresAt  time.Time
	EndedAt    *time.Time
	Email      string
	Role       string
	Status     string
}

// selectStaffSession reads session id joined to its account (none when unknown).
func selectStaffSession(tx *gorm.DB, id string) ([]staffOfSession, error) {
	var rows []staffOfSession
	err := tx.Raw(`SELECT s.id, s.staff_id, s.last_seen_at, s.expires_at, s.ended_at, u.email, u.role, u.status
		FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_id WHERE s.id = ?`, id).Scan(&rows).Error
	return rows, err
}

// touchStaffSession records that session id was seen at now.
func touchStaffSession(tx *gorm.DB, id string, now time.Time) error {
	return tx.Exec(`UPDATE staff_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`, now, id, now).Error
}

// endStaffSession ends one open session of a staff account.
func endStaffSession(tx *gorm.DB, staffID int64, id, why string, now time.Time) error {
	return tx.Exec(`UPDATE staff_sessions SET ended_at = ?, end_reason = ?
		WHERE id = ? AND staff_id = ? AND ended_at IS NULL`, now, why, id, staffID).Error
}

// endStaffSessions ends every open session of a staff account, in tx.
func endStaffSessions(tx *gorm.DB, staffID int64, why string, now time.Time) error {
	return tx.Exec(`UPDATE staff_sessions SET ended_at = ?, end_reason = ? WHERE staff_id = ? AND ended_at IS NULL`,
		now, why, staffID).Error
}

// pruneStaffSessions deletes the sessions expired or ended before cutoff.
func pruneStaffSessions(tx *gorm.DB, cutoff time.Time) error {
	return tx.Exec(`DELETE FROM staff_sessions WHERE expires_at < ? OR ended_at < ?`, cutoff, cutoff).Error
}

// --- signing keys -----------------------------------------------------------

const signingKeyCols = `kid, alg, public_key, sealed_private, created_at, retired_at, verify_until`

// selectLiveKeys returns the keys still verifiable at now (the active one and
// retired ones within their overlap), newest first.
func selectLiveKeys(tx *gorm.DB, now time.Time) ([]signingKeyRow, error) {
	var rows []signingKeyRow
	err := tx.Raw(`SELECT `+signingKeyCols+` FROM signing_keys
		WHERE retired_at IS NULL OR verify_until > ? ORDER BY created_at DESC, kid`, now).Scan(&rows).Error
	return rows, err
}

// lockSigningKeys takes the transaction-scoped advisory lock that serialises
// key creation and rotation across processes (signingLock).
func lockSigningKeys(tx *gorm.DB) error {
	return tx.Exec(`SELECT pg_advisory_xact_lock(?)`, signingLock).Error
}

// retireSigningKey retires the active key, verifiable until until.
func retireSigningKey(tx *gorm.DB, now, until time.Time) error {
	return tx.Exec(`UPDATE signing_keys SET retired_at = ?, verify_until = ? WHERE retired_at IS NULL`, now, until).Error
}

func countActiveKeys(tx *gorm.DB) (int64, error) {
	var n int64
	err := tx.Raw(`SELECT count(*) FROM signing_keys WHERE retired_at IS NULL`).Scan(&n).Error
	return n, err
}

// insertSigningKey stores a new active Ed25519 key; its private half is
// sealed (bound to kid) by the caller.
func insertSigningKey(tx *gorm.DB, kid string, pub ed25519.PublicKey, sealed []byte, now time.Time) error {
	return tx.Exec(`INSERT INTO signing_keys (kid, alg, public_key, sealed_private, created_at) VALUES (?, 'EdDSA', ?, ?, ?)`,
		kid, []byte(pub), sealed, now).Error
}
