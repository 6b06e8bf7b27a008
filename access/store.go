package access

import (
	"fmt"
	"time"

	"github.com/coalitionhub/hub/internal/database"
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
