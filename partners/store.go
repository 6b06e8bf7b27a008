package partners

import (
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"
)

// Rows below are the store's view of the tables; they never leave this
// package (the service converts them to the exported types).

type partnerRow struct {
	ID                 int64
	Name               string
	Sector             string
	Status             string
	SettlementCurrency string
	TimeZone           string
	Market             string
	Category           string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

func (r partnerRow) partner() Partner {
	return Partner{ID: r.ID, Name: r.Name, Sector: Sector(r.Sector), Status: Status(r.Status),
		SettlementCurrency: r.SettlementCurrency, TimeZone: r.TimeZone, Market: r.Market, Category: r.Category,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type outletRow struct {
	ID        int64
	PartnerID int64
	Code      string
	Name      string
	Address   string
	TimeZone  *string
	Status    string
	CreatedAt time.Time
}

func (r outletRow) outlet() Outlet {
	o := Outlet{ID: r.ID, PartnerID: r.PartnerID, Code: r.Code, Name: r.Name, Address: r.Address, Status: r.Status, CreatedAt: r.CreatedAt}
	if r.TimeZone != nil {
		o.TimeZone = *r.TimeZone
	}
	return o
}

type contractRow struct {
	ID                    int64
	PartnerID             int64
	Version               int
	EffectiveFrom         time.Time
	EarnRole              bool
	BurnRole              bool
	IssuePrice            decimal.Decimal
	RedemptionRate        decimal.Decimal
	Currency              string
	Billing               string
	PrepaidAlertThreshold int64
	PendingDays           int
	CapPerTransaction     int64
	CapPerMemberDay       int64
	BreakageShare         decimal.Decimal
	OperatorFeeRate       decimal.Decimal
	Notes                 string
	CreatedAt             time.Time
	CreatedBy             string
}

func (r contractRow) contract() Contract {
	return Contract{ID: r.ID, PartnerID: r.PartnerID, Version: r.Version, EffectiveFrom: r.EffectiveFrom,
		Earn: r.EarnRole, Burn: r.BurnRole, IssuePrice: r.IssuePrice, RedemptionRate: r.RedemptionRate,
		Currency: r.Currency, Billing: Billing(r.Billing), PrepaidAlertThreshold: r.PrepaidAlertThreshold,
		PendingDays: r.PendingDays, CapPerTransaction: r.CapPerTransaction, CapPerMemberDay: r.CapPerMemberDay,
		BreakageShare: r.BreakageShare, OperatorFeeRate: r.OperatorFeeRate, Notes: r.Notes,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy}
}

// --- partners -------------------------------------------------------------

const partnerCols = `id, name, sector, status, settlement_currency, time_zone, market, category, created_at, updated_at`

func insertPartner(tx *gorm.DB, p NewPartner, now time.Time) (partnerRow, error) {
	var r partnerRow
	err := tx.Raw(`INSERT INTO partners (name, sector, settlement_currency, time_zone, market, category, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+partnerCols,
		p.Name, string(p.Sector), p.SettlementCurrency, p.TimeZone, p.Market, p.Category, now, now).Scan(&r).Error
	if database.IsUnique(err, "") {
		return r, ErrPartnerExists
	}
	return r, err
}

// overlapping returns the active partners other than except whose sector
// and market are sector and market and whose category is category, or
// either category is empty (the whole sector), by name.
func overlapping(tx *gorm.DB, except int64, sector, market, category string) ([]partnerRow, error) {
	var rows []partnerRow
	err := tx.Raw(`SELECT `+partnerCols+` FROM partners WHERE status = 'active' AND id <> ? AND sector = ? AND market = ?
		AND (category = ? OR category = '' OR ? = '') ORDER BY name`, except, sector, market, category, category).Scan(&rows).Error
	return rows, err
}

// selectPartner loads one partner; forUpdate takes its row lock.
func selectPartner(tx *gorm.DB, id int64, forUpdate bool) (partnerRow, error) {
	q := `SELECT ` + partnerCols + ` FROM partners WHERE id = ?`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var rows []partnerRow
	if err := tx.Raw(q, id).Scan(&rows).Error; err != nil {
		return partnerRow{}, err
	}
	if len(rows) == 0 {
		return partnerRow{}, ErrPartnerNotFound
	}
	return rows[0], nil
}

func selectPartners(tx *gorm.DB, page Page) ([]partnerRow, error) {
	var rows []partnerRow
	err := tx.Raw(`SELECT `+partnerCols+` FROM partners WHERE id > ? ORDER BY id LIMIT ?`, page.After, page.Size()).Scan(&rows).Error
	return rows, err
}

func updatePartnerStatus(tx *gorm.DB, id int64, status Status, now time.Time) (partnerRow, error) {
	var rows []partnerRow
	err := tx.Raw(`UPDATE partners SET status = ?, updated_at = ? WHERE id = ? RETURNING `+partnerCols,
		string(status), now, id).Scan(&rows).Error
	if err != nil {
		return partnerRow{}, err
	}
	if len(rows) == 0 {
		return partnerRow{}, ErrPartnerNotFound
	}
	return rows[0], nil
}

// --- outlets --------------------------------------------------------------

const outletCols = `id, partner_id, code, name, address, time_zone, status, created_at`

func insertOutlet(tx *gorm.DB, partnerID int64, o NewOutlet, now time.Time) (outletRow, error) {
	var tz *string
	if o.TimeZone != "" {
		tz = &o.TimeZone
	}
	var r outletRow
	err := tx.Raw(`INSERT INTO partner_outlets (partner_id, code, name, address, time_zone, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING `+outletCols, partnerID, o.Code, o.Name, o.Address, tz, now).Scan(&r).Error
	switch {
	case database.IsUnique(err, ""):
		return r, ErrOutletExists
	case database.Code(err) == database.ForeignKeyViolation:
		return r, ErrPartnerNotFound
	}
	return r, err
}

func selectOutlets(tx *gorm.DB, partnerID int64, page Page) ([]outletRow, error) {
	var rows []outletRow
	err := tx.Raw(`SELECT `+outletCols+` FROM partner_outlets WHERE partner_id = ? AND id > ? ORDER BY id LIMIT ?`,
		partnerID, page.After, page.Size()).Scan(&rows).Error
	return rows, err
}

// --- contracts ------------------------------------------------------------

const contractCols = `id, partner_id, version, effective_from, earn_role, burn_role, issue_price, redemption_rate,
	currency, billing, prepaid_alert_threshold, pending_days, cap_per_transaction, cap_per_member_day,
	breakage_share, operator_fee_rate, notes, created_at, created_by`

func insertContract(tx *gorm.DB, partnerID int64, version int, c NewContract, actor string, now time.Time) (contractRow, error) {
	var r contractRow
	err := tx.Raw(`INSERT INTO partner_contracts (partner_id, version, effective_from, earn_role, burn_role,
		issue_price, redemption_rate, currency, billing, prepaid_alert_threshold, pending_days,
		cap_per_transaction, cap_per_member_day, breakage_share, operator_fee_rate, notes, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+contractCols,
		partnerID, version, c.EffectiveFrom, c.Earn, c.Burn, c.IssuePrice, c.RedemptionRate, c.Currency,
		string(c.Billing), c.PrepaidAlertThreshold, c.PendingDays, c.CapPerTransaction, c.CapPerMemberDay,
		c.BreakageShare, c.OperatorFeeRate, c.Notes, now, actor).Scan(&r).Error
	if database.IsUnique(err, "") {
		return r, ErrContractConflict
	}
	return r, err
}

// latestContract is the version with the greatest effective_from (in force
// now or scheduled), or ok=false when the partner has none.
func latestContract(tx *gorm.DB, partnerID int64) (contractRow, bool, error) {
	var rows []contractRow
	err := tx.Raw(`SELECT `+contractCols+` FROM partner_contracts WHERE partner_id = ?
		ORDER BY effective_from DESC LIMIT 1`, partnerID).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return contractRow{}, false, err
	}
	return rows[0], true, nil
}

func contractAt(tx *gorm.DB, partnerID int64, t time.Time) (contractRow, error) {
	var rows []contractRow
	err := tx.Raw(`SELECT `+contractCols+` FROM partner_contracts WHERE partner_id = ? AND effective_from <= ?
		ORDER BY effective_from DESC LIMIT 1`, partnerID, t).Scan(&rows).Error
	if err != nil {
		return contractRow{}, err
	}
	if len(rows) == 0 {
		return contractRow{}, ErrNoContract
	}
	return rows[0], nil
}

// contractVersions returns every version of the partner's contract, latest
// effective_from (then version) first: the order ContractAt searches.
func contractVersions(tx *gorm.DB, partnerID int64) ([]contractRow, error) {
	var rows []contractRow
	err := tx.Raw(`SELECT `+contractCols+` FROM partner_contracts WHERE partner_id = ?
		ORDER BY effective_from DESC, version DESC`, partnerID).Scan(&rows).Error
	return rows, err
}

func selectContracts(tx *gorm.DB, partnerID int64, page Page) ([]contractRow, error) {
	var rows []contractRow
	err := tx.Raw(`SELECT `+contractCols+` FROM partner_contracts WHERE partner_id = ? AND id > ? ORDER BY id LIMIT ?`,
		partnerID, page.After, page.Size()).Scan(&rows).Error
	return rows, err
}

// --- prepaid --------------------------------------------------------------

func ensurePrepaidAccount(tx *gorm.DB, partnerID int64, currency string) error {
	return tx.Exec(`INSERT INTO prepaid_accounts (partner_id, currency) VALUES (?, ?) ON CONFLICT (partner_id) DO NOTHING`,
		partnerID, currency).Error
}

// adjustPrepaid moves the running balance by delta and records the movement.
// The UPDATE takes the account row lock and refuses to go below zero in the
// same statement, so concurrent draw-downs serialise on the row and none can
// overdraw. ok=false: no account, or the balance is too small.
func adjustPrepaid(tx *gorm.DB, partnerID int64, kind string, delta int64, currency, ref, actor string, now time.Time) (balance int64, ok bool, err error) {
	var bal []int64
	err = tx.Raw(`UPDATE prepaid_accounts SET balance_minor = balance_minor + ?, updated_at = ?
		WHERE partner_id = ? AND currency = ? AND balance_minor + ? >= 0 RETURNING balance_minor`,
		delta, now, partnerID, currency, delta).Scan(&bal).Error
	if err != nil || len(bal) == 0 {
		return 0, false, err
	}
	err = tx.Exec(`INSERT INTO prepaid_movements (partner_id, kind, amount_minor, currency, ref, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, partnerID, kind, delta, currency, ref, now, actor).Error
	if database.IsUnique(err, "") {
		return 0, false, ErrDuplicateRef
	}
	if err != nil {
		return 0, false, err
	}
	return bal[0], true, nil
}

func selectPrepaidAccount(tx *gorm.DB, partnerID int64) (PrepaidBalance, bool, error) {
	var rows []struct {
		BalanceMinor int64
		Currency     string
	}
	if err := tx.Raw(`SELECT balance_minor, currency FROM prepaid_accounts WHERE partner_id = ?`, partnerID).Scan(&rows).Error; err != nil {
		return PrepaidBalance{}, false, err
	}
	if len(rows) == 0 {
		return PrepaidBalance{}, false, nil
	}
	return PrepaidBalance{PartnerID: partnerID, Balance: money.Money{Minor: rows[0].BalanceMinor, Currency: rows[0].Currency}}, true, nil
}

// prepaidStanding is a prepaid account with the alert threshold of the
// contract in force and whether an alert stands (RunPrepaidAlerts).
type prepaidStanding struct {
	PartnerID    int64
	BalanceMinor int64
	Currency     string
	Threshold    int64
	Alerted      bool
}

// selectPrepaidStandings reads every prepaid account with the threshold of
// the contract in force at now (0 without one) and its alert row, in one
// statement: a lateral join picks each account's latest contract.
func selectPrepaidStandings(tx *gorm.DB, now time.Time) ([]prepaidStanding, error) {
	var rows []prepaidStanding
	err := tx.Raw(`
		SELECT a.partner_id, a.balance_minor, a.currency, COALESCE(c.prepaid_alert_threshold, 0) AS threshold,
			al.partner_id IS NOT NULL AS alerted
		FROM prepaid_accounts a
		LEFT JOIN LATERAL (SELECT prepaid_alert_threshold FROM partner_contracts
			WHERE partner_id = a.partner_id AND effective_from <= ? ORDER BY effective_from DESC LIMIT 1) c ON true
		LEFT JOIN prepaid_alerts al ON al.partner_id = a.partner_id
		ORDER BY a.partner_id`, now).Scan(&rows).Error
	return rows, err
}

// insertPrepaidAlert records an alert; inserted is false when one stands.
func insertPrepaidAlert(tx *gorm.DB, partnerID, balance, threshold int64, currency string, now time.Time) (inserted bool, err error) {
	res := tx.Exec(`INSERT INTO prepaid_alerts (partner_id, balance_minor, threshold_minor, currency, alerted_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (partner_id) DO NOTHING`, partnerID, balance, threshold, currency, now)
	return res.RowsAffected > 0, res.Error
}

// deletePrepaidAlert re-arms the partner's alert.
func deletePrepaidAlert(tx *gorm.DB, partnerID int64) error {
	return tx.Exec(`DELETE FROM prepaid_alerts WHERE partner_id = ?`, partnerID).Error
}

// selectPrepaidAlert reads the threshold in force at now and whether an alert stands.
func selectPrepaidAlert(tx *gorm.DB, partnerID int64, now time.Time) (PrepaidAlertState, error) {
	var out PrepaidAlertState
	err := tx.Raw(`SELECT
			COALESCE((SELECT prepaid_alert_threshold FROM partner_contracts WHERE partner_id = ? AND effective_from <= ?
				ORDER BY effective_from DESC LIMIT 1), 0) AS threshold,
			EXISTS (SELECT 1 FROM prepaid_alerts WHERE partner_id = ?) AS low`, partnerID, now, partnerID).Scan(&out).Error
	return out, err
}
