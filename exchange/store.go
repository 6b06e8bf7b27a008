package exchange

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"gorm.io/gorm"
)

var (
	codeRE     = regexp.MustCompile(`^[a-z0-9_-]{2,40}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	urlRE      = regexp.MustCompile(`^https?://\S+$`)
	accountRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// programmeRow is exchange_programmes as the store reads it.
type programmeRow struct {
	ID               int64
	PartnerID        int64
	Code             string
	Name             string
	Unit             string
	Status           string
	OutPoints        *int64
	OutUnits         *int64
	InUnits          *int64
	InPoints         *int64
	Increment        int64
	MinPoints        int64
	MaxPoints        int64
	MonthlyMaxPoints int64
	FeePoints        int64
	FeeMinor         int64
	FeeCurrency      *string
	BonusBands       string
	EndpointURL      string
	APIKey           []byte
	DeadlineSeconds  float64
	CreatedAt        time.Time
}

const programmeColumns = `id, partner_id, code, name, unit, status, out_points, out_units, in_units, in_points,
	increment, min_points, max_points, monthly_max_points, fee_points, fee_minor, fee_currency, bonus_bands::text AS bonus_bands,
	endpoint_url, api_key, extract(epoch FROM pending_deadline) AS deadline_seconds, created_at`

func (r programmeRow) programme() Programme {
	p := Programme{ID: r.ID, PartnerID: r.PartnerID, Code: r.Code, Name: r.Name, Unit: r.Unit, Status: r.Status,
		Increment: r.Increment, MinPoints: r.MinPoints, MaxPoints: r.MaxPoints, MonthlyMax: r.MonthlyMaxPoints,
		FeePoints: r.FeePoints, FeeMinor: r.FeeMinor, EndpointURL: r.EndpointURL,
		PendingDeadline: time.Duration(r.DeadlineSeconds * float64(time.Second)), CreatedAt: r.CreatedAt}
	if r.OutPoints != nil && r.OutUnits != nil {
		p.Out = &Ratio{From: *r.OutPoints, To: *r.OutUnits}
	}
	if r.InUnits != nil && r.InPoints != nil {
		p.In = &Ratio{From: *r.InUnits, To: *r.InPoints}
	}
	if r.FeeCurrency != nil {
		p.FeeCurrency = *r.FeeCurrency
	}
	p.BonusBands = []BonusBand{}
	_ = json.Unmarshal([]byte(r.BonusBands), &p.BonusBands)
	return p
}

func getProgramme(tx *gorm.DB, id int64) (programmeRow, error) {
	var rows []programmeRow
	if err := tx.Raw(`SELECT `+programmeColumns+` FROM exchange_programmes WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return programmeRow{}, fmt.Errorf("programme %d: %w", id, err)
	}
	if len(rows) == 0 {
		return programmeRow{}, fmt.Errorf("programme %d: %w", id, ErrProgrammeNotFound)
	}
	return rows[0], nil
}

// exchangeRow is exchanges as the store reads it.
type exchangeRow struct {
	ID            int64
	PublicID      string
	Direction     string
	ProgrammeID   int64
	PartnerID     int64
	MemberID      int64
	Account       string
	Points        int64
	FeePoints     int64
	Units         int64
	BonusUnits    int64
	Status        string
	QuoteID       *string
	HoldID        *int64
	TransactionID *int64
	ReversalTxID  *int64
	PartnerRef    *string
	FailureReason *string
	Attempts      int
	NextCheckAt   *time.Time
	DeadlineAt    *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CompletedAt   *time.Time
}

const exchangeColumns = `id, public_id::text AS public_id, direction, programme_id, partner_id, member_id, account, points,
	fee_points, units, bonus_units, status, quote_id::text AS quote_id, hold_id, transaction_id, reversal_tx_id, partner_ref,
	failure_reason, attempts, next_check_at, deadline_at, created_at, updated_at, completed_at`

func (r exchangeRow) exchange() Exchange {
	return Exchange{ID: r.ID, PublicID: r.PublicID, Direction: Direction(r.Direction), ProgrammeID: r.ProgrammeID,
		PartnerID: r.PartnerID, MemberID: r.MemberID, Account: r.Account, Points: r.Points, FeePoints: r.FeePoints,
		Units: r.Units, BonusUnits: r.BonusUnits, Status: Status(r.Status), HoldID: database.Deref(r.HoldID),
		TransactionID: database.Deref(r.TransactionID), ReversalTxID: database.Deref(r.ReversalTxID), PartnerRef: database.Deref(r.PartnerRef),
		FailureReason: database.Deref(r.FailureReason), Attempts: r.Attempts, DeadlineAt: r.DeadlineAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt}
}

// getExchange reads one exchange by a column (id, public_id, quote_id,
// transaction_id), optionally locking it.
func getExchange(tx *gorm.DB, column string, value any, lock bool) (exchangeRow, error) {
	q := `SELECT ` + exchangeColumns + ` FROM exchanges WHERE ` + column + ` = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []exchangeRow
	if err := tx.Raw(q, value).Scan(&rows).Error; err != nil {
		return exchangeRow{}, fmt.Errorf("exchange %v: %w", value, err)
	}
	if len(rows) == 0 {
		return exchangeRow{}, fmt.Errorf("exchange %v: %w", value, ErrExchangeNotFound)
	}
	return rows[0], nil
}

func addEvent(tx *gorm.DB, id int64, status Status, event, detail string, now time.Time) error {
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	if err := tx.Exec(`INSERT INTO exchange_events (exchange_id, status, event, detail, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, string(status), event, detail, now).Error; err != nil {
		return fmt.Errorf("exchange %d history: %w", id, err)
	}
	return nil
}

func history(tx *gorm.DB, id int64) ([]Event, error) {
	var out []Event
	err := tx.Raw(`SELECT status, event, detail, created_at FROM exchange_events WHERE exchange_id = ? ORDER BY id`, id).Scan(&out).Error
	return out, err
}

// monthlyPoints sums the points of the member's exchanges with the
// programme in one direction since start, failed ones excluded.
func monthlyPoints(tx *gorm.DB, memberID, programmeID int64, dir Direction, start time.Time) (int64, error) {
	var sum int64
	err := tx.Raw(`SELECT coalesce(sum(points), 0) FROM exchanges WHERE member_id = ? AND programme_id = ?
		AND direction = ? AND created_at >= ? AND status <> 'failed'`, memberID, programmeID, string(dir), start).Scan(&sum).Error
	return sum, err
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
