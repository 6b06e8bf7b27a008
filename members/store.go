package members

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coalitionhub/hub/internal/database"
	"gorm.io/gorm"
)

// The store: one function per query, each taking the caller's handle (usually
// a transaction opened by the service). Rows are unexported and never leave
// the package; toMember and friends turn them into domain types.

type memberRow struct {
	ID                 int64
	Status             string
	StatusReason       *string
	StatusActor        *string
	GivenName          *string
	FamilyName         *string
	Email              *string
	Phone              *string
	BirthDate          *time.Time
	Locale             string
	MarketingConsent   bool
	MarketingConsentAt *time.Time
	SourcePartnerID    *int64
	MergedIntoID       *int64
	CreatedAt          time.Time
	UpdatedAt          time.Time
	ClosedAt           *time.Time
	MergedAt           *time.Time
	ErasedAt           *time.Time
}

type identifierRow struct {
	ID        int64
	MemberID  int64
	Type      string
	Value     string
	PartnerID *int64
	IsPrimary bool
	CreatedAt time.Time
}

type consentRow struct {
	ID         int64
	MemberID   int64
	Purpose    string
	Granted    bool
	Source     string
	Actor      string
	RecordedAt time.Time
}

type mergeRow struct {
	ID                  int64
	SurvivorID          int64
	DuplicateID         int64
	LedgerTransactionID *int64
	IdentifiersMoved    int
	Actor               string
	Reason              string
	MergedAt            time.Time
}

type dsrRow struct {
	ID          int64
	MemberID    int64
	Kind        string
	Actor       string
	RequestedAt time.Time
	CompletedAt *time.Time
	DueAt       time.Time
	Status      string
	HandledBy   string
	Note        string
	EraseAt     *time.Time
	UpdatedAt   time.Time
}

const memberColumns = `id, status, status_reason, status_actor, given_name, family_name, email, phone,
	birth_date, locale, marketing_consent, marketing_consent_at, source_partner_id, merged_into_id,
	created_at, updated_at, closed_at, merged_at, erased_at`

// getMemberRow reads one member; lock takes FOR UPDATE, which serialises
// every state change of that member.
func getMemberRow(tx *gorm.DB, id int64, lock bool) (memberRow, error) {
	q := `SELECT ` + memberColumns + ` FROM members WHERE id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []memberRow
	if err := tx.Raw(q, id).Scan(&rows).Error; err != nil {
		return memberRow{}, err
	}
	if len(rows) == 0 {
		return memberRow{}, ErrNotFound
	}
	return rows[0], nil
}

// lockMemberRows locks several members in id order (a consistent order, so
// two merges touching the same members cannot deadlock).
func lockMemberRows(tx *gorm.DB, ids ...int64) (map[int64]memberRow, error) {
	var rows []memberRow
	if err := tx.Raw(`SELECT `+memberColumns+` FROM members WHERE id IN ? ORDER BY id FOR UPDATE`, ids).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64]memberRow, len(rows))
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}

func identifierRows(tx *gorm.DB, memberIDs []int64) (map[int64][]identifierRow, error) {
	var rows []identifierRow
	if err := tx.Raw(`SELECT id, member_id, type, value, partner_id, is_primary, created_at
		FROM member_identifiers WHERE member_id IN ? ORDER BY id`, memberIDs).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64][]identifierRow, len(memberIDs))
	for _, r := range rows {
		out[r.MemberID] = append(out[r.MemberID], r)
	}
	return out, nil
}

// memberIDByIdentifier returns who holds ident, or ErrNotFound.
func memberIDByIdentifier(tx *gorm.DB, ident Identifier) (int64, error) {
	var ids []int64
	err := tx.Raw(`SELECT member_id FROM member_identifiers
		WHERE type = ? AND value = ? AND partner_id IS NOT DISTINCT FROM ?`,
		string(ident.Type), ident.Value, nullID(ident.PartnerID)).Scan(&ids).Error
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, ErrNotFound
	}
	return ids[0], nil
}

func insertMember(tx *gorm.DB, p Profile, c Consent, sourcePartnerID int64, now time.Time) (int64, error) {
	var consentAt *time.Time
	if c.Marketing {
		consentAt = &now
	}
	var id int64
	err := tx.Raw(`INSERT INTO members (given_name, family_name, email, phone, birth_date, locale,
			marketing_consent, marketing_consent_at, source_partner_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		nullStr(p.GivenName), nullStr(p.FamilyName), nullStr(p.Email), nullStr(p.Phone), birthDate(p.BirthDate),
		p.Locale, c.Marketing, consentAt, nullID(sourcePartnerID), now, now).Scan(&id).Error
	if err != nil {
		return 0, fmt.Errorf("insert member: %w", err)
	}
	return id, nil
}

// insertIdentifier adds ident to member unless some member already holds it
// (then inserted is false and nothing changed). Concurrent inserts of one
// value wait for each other: exactly one wins.
func insertIdentifier(tx *gorm.DB, memberID int64, ident Identifier, primary bool, now time.Time) (inserted bool, err error) {
	var ids []int64
	err = tx.Raw(`INSERT INTO member_identifiers (member_id, type, value, partner_id, is_primary, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		memberID, string(ident.Type), ident.Value, nullID(ident.PartnerID), primary, now).Scan(&ids).Error
	if err != nil {
		return false, fmt.Errorf("insert identifier %s: %w", ident.Type, err)
	}
	return len(ids) == 1, nil
}

// issueCard gives member a new random primary card number, drawing again on
// the (rare) collision with an existing number.
func issueCard(tx *gorm.DB, memberID int64, now time.Time) (string, error) {
	for attempt := 0; attempt < 10; attempt++ {
		n, err := NewCardNumber()
		if err != nil {
			return "", err
		}
		ok, err := insertIdentifier(tx, memberID, Identifier{Type: IdentifierCard, Value: n}, true, now)
		if err != nil {
			return "", err
		}
		if ok {
			return n, nil
		}
	}
	return "", errors.New("issue card: no free card number after 10 draws")
}

func updateProfile(tx *gorm.DB, id int64, p Profile, now time.Time) error {
	return tx.Exec(`UPDATE members SET given_name = ?, family_name = ?, email = ?, phone = ?, birth_date = ?,
		locale = ?, updated_at = ? WHERE id = ?`,
		nullStr(p.GivenName), nullStr(p.FamilyName), nullStr(p.Email), nullStr(p.Phone), birthDate(p.BirthDate),
		p.Locale, now, id).Error
}

func setStatus(tx *gorm.DB, id int64, st Status, reason, actor string, now time.Time) error {
	q := `UPDATE members SET status = ?, status_reason = ?, status_actor = ?, updated_at = ?`
	args := []any{string(st), nullStr(reason), nullStr(actor), now}
	if st == StatusClosed {
		q += `, closed_at = ?`
		args = append(args, now)
	}
	args = append(args, id)
	return tx.Exec(q+` WHERE id = ?`, args...).Error
}

func markMerged(tx *gorm.DB, dup, survivor int64, reason, actor string, now time.Time) error {
	return tx.Exec(`UPDATE members SET status = 'merged', merged_into_id = ?, merged_at = ?, status_reason = ?,
		status_actor = ?, updated_at = ? WHERE id = ?`, survivor, now, reason, actor, now, dup).Error
}

// moveIdentifiers hands every identifier of dup to survivor; moved cards stop
// being primary (the survivor keeps its own primary card).
func moveIdentifiers(tx *gorm.DB, dup, survivor int64) (int, error) {
	res := tx.Exec(`UPDATE member_identifiers SET member_id = ?, is_primary = false WHERE member_id = ?`, survivor, dup)
	return int(res.RowsAffected), res.Error
}

func touch(tx *gorm.DB, id int64, now time.Time) error {
	return tx.Exec(`UPDATE members SET updated_at = ? WHERE id = ?`, now, id).Error
}

func deleteIdentifier(tx *gorm.DB, memberID int64, ident Identifier) (bool, error) {
	res := tx.Exec(`DELETE FROM member_identifiers WHERE member_id = ? AND type = ? AND value = ?
		AND partner_id IS NOT DISTINCT FROM ?`, memberID, string(ident.Type), ident.Value, nullID(ident.PartnerID))
	return res.RowsAffected == 1, res.Error
}

func insertConsent(tx *gorm.DB, memberID int64, granted bool, source, actor string, now time.Time) error {
	if err := tx.Exec(`INSERT INTO consent_events (member_id, purpose, granted, source, actor, recorded_at)
		VALUES (?, 'marketing', ?, ?, ?, ?)`, memberID, granted, source, actor, now).Error; err != nil {
		return fmt.Errorf("record consent: %w", err)
	}
	return tx.Exec(`UPDATE members SET marketing_consent = ?, marketing_consent_at = ?, updated_at = ? WHERE id = ?`,
		granted, now, now, memberID).Error
}

func consentRows(tx *gorm.DB, memberIDs []int64) ([]consentRow, error) {
	var rows []consentRow
	err := tx.Raw(`SELECT id, member_id, purpose, granted, source, actor, recorded_at
		FROM consent_events WHERE member_id IN ? ORDER BY id`, memberIDs).Scan(&rows).Error
	return rows, err
}

func insertMerge(tx *gorm.DB, m Merge) (int64, error) {
	var id int64
	err := tx.Raw(`INSERT INTO member_merges (survivor_id, duplicate_id, ledger_transaction_id, identifiers_moved,
		actor, reason, merged_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		m.SurvivorID, m.DuplicateID, nullID(m.LedgerTransactionID), m.IdentifiersMoved, m.Actor, m.Reason,
		m.MergedAt).Scan(&id).Error
	return id, err
}

func mergeRows(tx *gorm.DB, where string, args ...any) ([]mergeRow, error) {
	var rows []mergeRow
	err := tx.Raw(`SELECT id, survivor_id, duplicate_id, ledger_transaction_id, identifiers_moved, actor, reason,
		merged_at FROM member_merges WHERE `+where+` ORDER BY id`, args...).Scan(&rows).Error
	return rows, err
}

// insertDSR records a request answered at once (done, handled by actor).
// An erasure completes the member's open (scheduled) erasure instead when
// there is one: erasure is recorded once per member.
func insertDSR(tx *gorm.DB, memberID int64, kind DSRKind, actor string, now time.Time) error {
	return insertDSRNote(tx, memberID, kind, actor, "", now)
}

func insertDSRNote(tx *gorm.DB, memberID int64, kind DSRKind, actor, note string, now time.Time) error {
	return tx.Exec(`INSERT INTO data_subject_requests AS d (member_id, kind, actor, requested_at, completed_at, due_at,
			status, handled_by, note, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 'done', ?, ?, ?)
		ON CONFLICT (member_id) WHERE kind = 'erasure' AND status <> 'cancelled'
		DO UPDATE SET status = 'done', completed_at = EXCLUDED.completed_at, handled_by = EXCLUDED.handled_by,
			updated_at = EXCLUDED.updated_at`,
		memberID, string(kind), actor, now, now, now.Add(DSRDeadline), actor, note, now).Error
}

const dsrCols = `id, member_id, kind, actor, requested_at, completed_at, due_at, status, handled_by, note, erase_at, updated_at`

func dsrRows(tx *gorm.DB, memberIDs []int64) ([]dsrRow, error) {
	var rows []dsrRow
	err := tx.Raw(`SELECT `+dsrCols+` FROM data_subject_requests WHERE member_id IN ? ORDER BY id`, memberIDs).Scan(&rows).Error
	return rows, err
}

// mergedInto returns the ids of every member merged into id, directly or
// through a chain of merges.
func mergedInto(tx *gorm.DB, id int64) ([]int64, error) {
	var ids []int64
	err := tx.Raw(`WITH RECURSIVE dup(id) AS (
			SELECT id FROM members WHERE merged_into_id = ?
			UNION SELECT m.id FROM members m JOIN dup ON m.merged_into_id = dup.id)
		SELECT id FROM dup ORDER BY id`, id).Scan(&ids).Error
	return ids, err
}

// eraseRow clears the personal data of a member and drops its identifiers
// other than cards. Card numbers stay: they are the pseudonym that ties the
// row to its ledger account.
func eraseRow(tx *gorm.DB, id int64, now time.Time) error {
	// Burn-consent secrets (PIN hash, codes) and the failure log go too.
	for _, q := range []string{
		`DELETE FROM member_identifiers WHERE member_id = ? AND type <> 'card'`,
		`DELETE FROM member_pins WHERE member_id = ?`,
		`DELETE FROM member_credentials WHERE member_id = ?`,
		`DELETE FROM member_redemption_codes WHERE member_id = ?`,
		`DELETE FROM member_consent_failures WHERE member_id = ?`,
	} {
		if err := tx.Exec(q, id).Error; err != nil {
			return err
		}
	}
	return tx.Exec(`UPDATE members SET given_name = NULL, family_name = NULL, email = NULL, phone = NULL,
		birth_date = NULL, marketing_consent = false, erased_at = ?, updated_at = ? WHERE id = ?`, now, now, id).Error
}

// searchMembers pages members by id. ident, when set, restricts to its
// holder; otherwise namePrefix (lower-case, may be empty) matches given or
// family name.
func searchMembers(tx *gorm.DB, ident *Identifier, namePrefix string, status Status, after int64, limit int) ([]memberRow, error) {
	q := `SELECT ` + memberColumns + ` FROM members WHERE id > ?`
	args := []any{after}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, string(status))
	}
	switch {
	case ident != nil:
		q += ` AND id IN (SELECT member_id FROM member_identifiers WHERE type = ? AND value = ?
			AND partner_id IS NOT DISTINCT FROM ?)`
		args = append(args, string(ident.Type), ident.Value, nullID(ident.PartnerID))
	case namePrefix != "":
		pat := likeEscape(namePrefix) + "%"
		q += ` AND (lower(family_name) LIKE ? OR lower(given_name) LIKE ?)`
		args = append(args, pat, pat)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	var rows []memberRow
	err := tx.Raw(q, args...).Scan(&rows).Error
	return rows, err
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func nullStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func birthDate(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil // validated before it gets here
	}
	return &t
}

func toMember(r memberRow, idents []identifierRow) Member {
	m := Member{
		ID:           r.ID,
		Status:       Status(r.Status),
		StatusReason: database.Deref(r.StatusReason),
		Profile: Profile{
			GivenName:  database.Deref(r.GivenName),
			FamilyName: database.Deref(r.FamilyName),
			Email:      database.Deref(r.Email),
			Phone:      database.Deref(r.Phone),
			Locale:     r.Locale,
		},
		Identifiers:        make([]Identifier, 0, len(idents)),
		MarketingConsent:   r.MarketingConsent,
		MarketingConsentAt: utcPtr(r.MarketingConsentAt),
		SourcePartnerID:    database.Deref(r.SourcePartnerID),
		MergedIntoID:       database.Deref(r.MergedIntoID),
		CreatedAt:          r.CreatedAt.UTC(),
		UpdatedAt:          r.UpdatedAt.UTC(),
		ClosedAt:           utcPtr(r.ClosedAt),
		MergedAt:           utcPtr(r.MergedAt),
		ErasedAt:           utcPtr(r.ErasedAt),
	}
	if r.BirthDate != nil {
		m.Profile.BirthDate = r.BirthDate.Format(time.DateOnly)
	}
	for _, ir := range idents {
		at := ir.CreatedAt.UTC()
		m.Identifiers = append(m.Identifiers, Identifier{Type: IdentifierType(ir.Type), Value: ir.Value,
			PartnerID: database.Deref(ir.PartnerID), Primary: ir.IsPrimary, CreatedAt: &at})
		if ir.IsPrimary {
			m.CardNumber = ir.Value
		}
	}
	return m
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toConsent(r consentRow) ConsentEvent {
	return ConsentEvent{ID: r.ID, Purpose: r.Purpose, Granted: r.Granted, Source: r.Source, Actor: r.Actor,
		RecordedAt: r.RecordedAt.UTC()}
}

func toMerge(r mergeRow) Merge {
	return Merge{ID: r.ID, SurvivorID: r.SurvivorID, DuplicateID: r.DuplicateID,
		LedgerTransactionID: database.Deref(r.LedgerTransactionID), IdentifiersMoved: r.IdentifiersMoved, Actor: r.Actor,
		Reason: r.Reason, MergedAt: r.MergedAt.UTC()}
}

func toDSR(r dsrRow) DataSubjectRequest {
	return DataSubjectRequest{ID: r.ID, MemberID: r.MemberID, Kind: DSRKind(r.Kind), Actor: r.Actor,
		RequestedAt: r.RequestedAt.UTC(), CompletedAt: utcPtr(r.CompletedAt), DueAt: r.DueAt.UTC(),
		Status: DSRStatus(r.Status), HandledBy: r.HandledBy, Note: r.Note, EraseAt: utcPtr(r.EraseAt),
		UpdatedAt: r.UpdatedAt.UTC()}
}
