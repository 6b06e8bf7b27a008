package settlement

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/partners"
)

// Reconciliation is a partner's uploaded transaction log for a period and,
// once matched, the counts of each outcome.
type Reconciliation struct {
	ID            int64      `json:"id"`
	PeriodID      int64      `json:"period_id"`
	Period        string     `json:"period"`
	PartnerID     int64      `json:"partner_id"`
	Status        string     `json:"status"` // received, matched
	Lines         int64      `json:"lines"`
	Malformed     int64      `json:"malformed"`
	Matched       int64      `json:"matched"`
	MissingInHub  int64      `json:"missing_in_hub"`
	MissingInFile int64      `json:"missing_in_file"`
	Mismatched    int64      `json:"mismatched"`
	CreatedAt     time.Time  `json:"created_at"`
	MatchedAt     *time.Time `json:"matched_at,omitempty"`
}

// Reconciliation line outcomes.
const (
	OutcomeMatched       = "matched"
	OutcomeMissingInHub  = "missing_in_hub"
	OutcomeMissingInFile = "missing_in_file"
	OutcomeMismatch      = "amount_mismatch"
)

// ReconLine is one (external_ref, kind) of a matched reconciliation. Points
// are net of reversals; FilePoints is nil when missing in the file, HubPoints
// when missing in the hub.
type ReconLine struct {
	ID               int64      `json:"id"`
	ReconciliationID int64      `json:"reconciliation_id"`
	Outcome          string     `json:"outcome"`
	ExternalRef      string     `json:"external_ref"`
	Kind             string     `json:"kind"`
	FilePoints       *int64     `json:"file_points"`
	HubPoints        *int64     `json:"hub_points"`
	FileLineNo       *int64     `json:"file_line_no,omitempty"`
	Resolution       string     `json:"resolution,omitempty"`
	Note             string     `json:"note,omitempty"`
	ResolvedBy       string     `json:"resolved_by,omitempty"`
	ResolvedAt       *time.Time `json:"resolved_at,omitempty"`
	AdjustmentID     int64      `json:"adjustment_id,omitempty"`
}

// LineError is a malformed line of an uploaded file.
type LineError struct {
	LineNo  int64  `json:"line_no"`
	Message string `json:"message"`
}

const reconColumns = `r.id, r.period_id, to_char(p.month, 'YYYY-MM') AS period, r.partner_id, r.status, r.lines, r.malformed,
	r.matched, r.missing_in_hub, r.missing_in_file, r.mismatched, r.created_at, r.matched_at`

func getReconciliation(tx *gorm.DB, id int64, lock bool) (Reconciliation, error) {
	q := `SELECT ` + reconColumns + ` FROM settlement_reconciliations r JOIN settlement_periods p ON p.id = r.period_id WHERE r.id = ?`
	if lock {
		q += ` FOR UPDATE OF r`
	}
	var rows []Reconciliation
	if err := tx.Raw(q, id).Scan(&rows).Error; err != nil {
		return Reconciliation{}, err
	}
	if len(rows) == 0 {
		return Reconciliation{}, fmt.Errorf("reconciliation %d: %w", id, ErrReconciliationNotFound)
	}
	r := rows[0]
	r.CreatedAt, r.MatchedAt = r.CreatedAt.UTC(), utcPtr(r.MatchedAt)
	return r, nil
}

// Reconciliation returns one reconciliation. Errors: ErrReconciliationNotFound.
func (s *Service) Reconciliation(ctx context.Context, id int64) (Reconciliation, error) {
	return getReconciliation(s.db.WithContext(ctx), id, false)
}

// uploadBatch is how many file lines go to the database in one INSERT.
const uploadBatch = 1000

// Upload stores a partner's CSV transaction log for a closed period and
// queues the matching job (through the outbox, in the same transaction). The
// file is read as a stream: at most uploadBatch lines are held in memory.
// The first line is a header naming the columns external_ref, type (earn or
// burn) and points (net of the partner's own reversals), in any order; other
// columns are ignored. Malformed lines are recorded with their line number
// and do not stop the import. Errors: *validation.Error (bad month or
// header), ErrPeriodNotFound, ErrPeriodNotClosed.
func (s *Service) Upload(ctx context.Context, partnerID int64, monthStr string, file io.Reader) (Reconciliation, error) {
	m, err := parseMonth(monthStr, "period", s.loc)
	if err != nil {
		return Reconciliation{}, err
	}
	var out Reconciliation
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		p, err := selectPeriod(tx, m, false)
		if err != nil {
			return err
		}
		if p.Status != string(PeriodClosed) {
			return fmt.Errorf("reconcile %s: %w", monthStr, ErrPeriodNotClosed)
		}
		now := s.clock()
		var id int64
		if err := tx.Raw(`INSERT INTO settlement_reconciliations (period_id, partner_id, status, lines, malformed, created_at)
			VALUES (?, ?, 'received', 0, 0, ?) RETURNING id`, p.ID, partnerID, now).Scan(&id).Error; err != nil {
			return err
		}
		lines, malformed, err := readFile(tx, id, file)
		if err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE settlement_reconciliations SET lines = ?, malformed = ? WHERE id = ?`, lines, malformed, id).Error; err != nil {
			return err
		}
		if err := outbox.Write(tx, outbox.Message{TaskType: TypeReconcile, Queue: "low", Payload: ReconcilePayload{ReconciliationID: id}}); err != nil {
			return err
		}
		out, err = getReconciliation(tx, id, false)
		return err
	})
	if err != nil {
		return Reconciliation{}, fmt.Errorf("upload reconciliation: %w", err)
	}
	return out, nil
}

type fileRow struct {
	line   int64
	ref    string
	kind   string
	points int64
}

// readFile streams the CSV into settlement_reconciliation_rows and _errors.
// It returns the number of data lines and of malformed ones.
func readFile(tx *gorm.DB, id int64, file io.Reader) (lines, malformed int64, err error) {
	r := csv.NewReader(file)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return 0, 0, validation.New("file", "must start with a header line: external_ref,type,points")
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var v validation.Error
	for _, name := range []string{"external_ref", "type", "points"} {
		_, ok := col[name]
		v.Check(ok, "file", "header has no "+name+" column")
	}
	if err := v.Err(); err != nil {
		return 0, 0, err
	}
	need := max(col["external_ref"], col["type"], col["points"]) + 1
	var rows []fileRow
	var bad []LineError
	flush := func() error {
		if err := insertFileRows(tx, id, rows, bad); err != nil {
			return err
		}
		rows, bad = rows[:0], bad[:0]
		return nil
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		lines++
		var line int
		if err == nil { // FieldPos panics when the read failed (no fields)
			line, _ = r.FieldPos(0)
		}
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			bad = append(bad, LineError{int64(pe.StartLine), "not valid CSV: " + pe.Err.Error()})
		case err != nil:
			return 0, 0, fmt.Errorf("read line %d: %w", line, err)
		case len(rec) < need:
			bad = append(bad, LineError{int64(line), fmt.Sprintf("has %d fields; want at least %d", len(rec), need)})
		default:
			row, msg := parseRow(rec, col)
			if msg != "" {
				bad = append(bad, LineError{int64(line), msg})
				break
			}
			row.line = int64(line)
			rows = append(rows, row)
		}
		if len(rows)+len(bad) >= uploadBatch {
			malformed += int64(len(bad))
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	malformed += int64(len(bad))
	return lines, malformed, flush()
}

func parseRow(rec []string, col map[string]int) (fileRow, string) {
	ref := strings.TrimSpace(rec[col["external_ref"]])
	kind := strings.ToLower(strings.TrimSpace(rec[col["type"]]))
	pts := strings.TrimSpace(rec[col["points"]])
	switch {
	case ref == "" || len(ref) > 200:
		return fileRow{}, "external_ref must be 1 to 200 characters"
	case !utf8.ValidString(ref):
		// Found by FuzzReconciliationUpload: the database refuses the
		// bytes, which failed the whole upload with a 500.
		return fileRow{}, "external_ref is not valid UTF-8"
	case strings.ContainsRune(ref, 0):
		// Found by the same fuzzer: PostgreSQL text cannot hold U+0000.
		return fileRow{}, "external_ref must not contain the NUL character (U+0000)"
	case kind != "earn" && kind != "burn":
		return fileRow{}, fmt.Sprintf("type %q must be earn or burn", kind)
	}
	n, err := strconv.ParseInt(pts, 10, 64)
	if err != nil || n < -1e15 || n > 1e15 {
		return fileRow{}, fmt.Sprintf("points %q is not an integer", pts)
	}
	return fileRow{ref: ref, kind: kind, points: n}, ""
}

func insertFileRows(tx *gorm.DB, id int64, rows []fileRow, bad []LineError) error {
	if len(rows) > 0 {
		var b strings.Builder
		args := make([]any, 0, len(rows)*5)
		b.WriteString(`INSERT INTO settlement_reconciliation_rows (reconciliation_id, line_no, external_ref, kind, points) VALUES `)
		for i, r := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, id, r.line, r.ref, r.kind, r.points)
		}
		if err := tx.Exec(b.String(), args...).Error; err != nil {
			return fmt.Errorf("store file lines: %w", err)
		}
	}
	if len(bad) > 0 {
		var b strings.Builder
		args := make([]any, 0, len(bad)*3)
		b.WriteString(`INSERT INTO settlement_reconciliation_errors (reconciliation_id, line_no, message) VALUES `)
		for i, e := range bad {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, id, e.LineNo, e.Message)
		}
		b.WriteString(" ON CONFLICT DO NOTHING")
		if err := tx.Exec(b.String(), args...).Error; err != nil {
			return fmt.Errorf("store malformed lines: %w", err)
		}
	}
	return nil
}

// Match compares an uploaded file with the hub's transactions of the partner
// settled in the period, set-based: per (external_ref, kind), file points
// (summed over duplicate lines) against hub points (earns, burns and
// captures net of their reversals). Matching a matched reconciliation changes
// nothing. Errors: ErrReconciliationNotFound.
func (s *Service) Match(ctx context.Context, id int64) (Reconciliation, error) {
	var out Reconciliation
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := getReconciliation(tx, id, true)
		if err != nil {
			return err
		}
		if r.Status == "matched" {
			out = r
			return nil
		}
		hub, err := ledger.SettledRefTotals(tx, r.PeriodID, r.PartnerID)
		if err != nil {
			return fmt.Errorf("match reconciliation %d: %w", id, err)
		}
		type hubRow struct {
			ExternalRef string `json:"external_ref"`
			Kind        string `json:"kind"`
			Points      int64  `json:"points"`
		}
		rows := make([]hubRow, len(hub))
		for i, h := range hub {
			rows[i] = hubRow(h)
		}
		hubJSON, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if err := tx.Exec(`INSERT INTO settlement_reconciliation_lines
			(reconciliation_id, outcome, external_ref, kind, file_points, hub_points, file_line_no)
		WITH f AS (
			SELECT external_ref, kind, sum(points)::bigint AS points, min(line_no) AS line_no
			FROM settlement_reconciliation_rows WHERE reconciliation_id = @id GROUP BY 1, 2),
		h AS (
			SELECT * FROM jsonb_to_recordset(CAST(@hub AS jsonb)) AS h (external_ref text, kind text, points bigint))
		SELECT @id,
		       CASE WHEN f.external_ref IS NULL THEN 'missing_in_file' WHEN h.external_ref IS NULL THEN 'missing_in_hub'
		            WHEN f.points = h.points THEN 'matched' ELSE 'amount_mismatch' END,
		       coalesce(f.external_ref, h.external_ref), coalesce(f.kind, h.kind), f.points, h.points, f.line_no
		FROM f FULL OUTER JOIN h ON f.external_ref = h.external_ref AND f.kind = h.kind`,
			map[string]any{"id": id, "hub": string(hubJSON)}).Error; err != nil {
			return fmt.Errorf("match reconciliation %d: %w", id, err)
		}
		if err := tx.Exec(`UPDATE settlement_reconciliations r SET status = 'matched', matched_at = ?,
			matched = c.matched, missing_in_hub = c.missing_in_hub, missing_in_file = c.missing_in_file, mismatched = c.mismatched
			FROM (SELECT count(*) FILTER (WHERE outcome = 'matched') AS matched,
			             count(*) FILTER (WHERE outcome = 'missing_in_hub') AS missing_in_hub,
			             count(*) FILTER (WHERE outcome = 'missing_in_file') AS missing_in_file,
			             count(*) FILTER (WHERE outcome = 'amount_mismatch') AS mismatched
			      FROM settlement_reconciliation_lines WHERE reconciliation_id = ?) c
			WHERE r.id = ?`, s.clock(), id, id).Error; err != nil {
			return err
		}
		out, err = getReconciliation(tx, id, false)
		return err
	})
	return out, err
}

const reconLineColumns = `id, reconciliation_id, outcome, external_ref, kind, file_points, hub_points, file_line_no,
	coalesce(resolution, '') AS resolution, note, coalesce(resolved_by, '') AS resolved_by, resolved_at,
	coalesce(adjustment_id, 0) AS adjustment_id`

// ReconLines lists the lines of a reconciliation by id after the cursor;
// Outcome "" lists every line except matched ones, "all" every line.
func (s *Service) ReconLines(ctx context.Context, id int64, outcome string, after int64, limit int) ([]ReconLine, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	where := "reconciliation_id = ? AND id > ?"
	args := []any{id, after}
	switch outcome {
	case "":
		where += " AND outcome <> 'matched'"
	case "all":
	default:
		where += " AND outcome = ?"
		args = append(args, outcome)
	}
	var rows []ReconLine
	err := s.db.WithContext(ctx).Raw(`SELECT `+reconLineColumns+` FROM settlement_reconciliation_lines WHERE `+where+
		` ORDER BY id LIMIT ?`, append(args, limit)...).Scan(&rows).Error
	for i := range rows {
		rows[i].ResolvedAt = utcPtr(rows[i].ResolvedAt)
	}
	return rows, err
}

// LineErrors lists the malformed lines of an upload by line number after the cursor.
func (s *Service) LineErrors(ctx context.Context, id int64, after int64, limit int) ([]LineError, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var rows []LineError
	err := s.db.WithContext(ctx).Raw(`SELECT line_no, message FROM settlement_reconciliation_errors
		WHERE reconciliation_id = ? AND line_no > ? ORDER BY line_no LIMIT ?`, id, after, limit).Scan(&rows).Error
	return rows, err
}

// Resolution is finance's decision on a reconciliation line.
type Resolution struct {
	// Accept posts an adjustment (Amount, or when nil the points difference
	// file − hub valued at the contract in force at period end: charged at
	// the issue price for earns, credited at the redemption rate for burns).
	// Otherwise the line is disputed and Note is required.
	Accept bool
	Amount *money.Money
	Note   string
	Actor  string
}

// Resolve records the resolution of a reconciliation line. Errors:
// *validation.Error, ErrReconLineNotFound, ErrNothingToResolve,
// ErrAlreadyResolved.
func (s *Service) Resolve(ctx context.Context, lineID int64, in Resolution) (ReconLine, error) {
	var v validation.Error
	v.Check(in.Accept || strings.TrimSpace(in.Note) != "", "note", "is required to dispute a line")
	v.Check(len(in.Note) <= 2000, "note", "must be at most 2000 characters")
	v.Check(in.Actor != "", "actor", "is required")
	if err := v.Err(); err != nil {
		return ReconLine{}, err
	}
	var out ReconLine
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []struct {
			ReconLine
			PartnerID int64
			EndsAt    time.Time
		}
		if err := tx.Raw(`SELECT l.id, l.outcome, l.external_ref, l.kind, l.file_points, l.hub_points, coalesce(l.resolution, '') AS resolution,
			r.partner_id, p.ends_at FROM settlement_reconciliation_lines l
			JOIN settlement_reconciliations r ON r.id = l.reconciliation_id JOIN settlement_periods p ON p.id = r.period_id
			WHERE l.id = ? FOR UPDATE OF l`, lineID).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("reconciliation line %d: %w", lineID, ErrReconLineNotFound)
		}
		l := rows[0]
		switch {
		case l.Outcome == OutcomeMatched:
			return ErrNothingToResolve
		case l.Resolution != "":
			return ErrAlreadyResolved
		}
		now := s.clock()
		if !in.Accept {
			return tx.Exec(`UPDATE settlement_reconciliation_lines SET resolution = 'disputed', note = ?, resolved_by = ?, resolved_at = ?
				WHERE id = ?`, in.Note, in.Actor, now, lineID).Error
		}
		amount := in.Amount
		if amount == nil {
			m, err := differenceValue(tx, l.PartnerID, l.Kind, database.Deref(l.FilePoints)-database.Deref(l.HubPoints), l.EndsAt)
			if err != nil {
				return err
			}
			amount = &m
		}
		var adjID *int64
		if amount.Minor != 0 {
			reason := fmt.Sprintf("Reconciliation %s %s: %s accepted", l.Kind, l.ExternalRef, strings.ReplaceAll(l.Outcome, "_", " "))
			if in.Note != "" {
				reason += " (" + in.Note + ")"
			}
			if len(reason) > 500 {
				reason = reason[:500]
			}
			a, err := s.adjust(tx, AdjustmentInput{PartnerID: l.PartnerID, Amount: *amount, Reason: reason, Actor: in.Actor}, &lineID)
			if err != nil {
				return err
			}
			adjID = &a.ID
		}
		return tx.Exec(`UPDATE settlement_reconciliation_lines SET resolution = 'accepted', note = ?, resolved_by = ?, resolved_at = ?,
			adjustment_id = ? WHERE id = ?`, in.Note, in.Actor, now, adjID, lineID).Error
	})
	if err != nil {
		return ReconLine{}, fmt.Errorf("resolve reconciliation line %d: %w", lineID, err)
	}
	var rows []ReconLine
	if err := s.db.WithContext(ctx).Raw(`SELECT `+reconLineColumns+` FROM settlement_reconciliation_lines WHERE id = ?`, lineID).
		Scan(&rows).Error; err != nil || len(rows) == 0 {
		return ReconLine{}, fmt.Errorf("reload reconciliation line %d: %v", lineID, err)
	}
	out = rows[0]
	out.ResolvedAt = utcPtr(out.ResolvedAt)
	return out, nil
}

// differenceValue values diff points (file − hub) for the partner: an earn
// difference is charged at the issue price, a burn difference credited at
// the redemption rate, both of the contract in force at t.
func differenceValue(tx *gorm.DB, partnerID int64, kind string, diff int64, t time.Time) (money.Money, error) {
	c, err := partners.ContractBeforeWith(tx, partnerID, t)
	if errors.Is(err, partners.ErrNoContract) {
		return money.Money{}, fmt.Errorf("partner %d: %w", partnerID, ErrNoContract)
	}
	if err != nil {
		return money.Money{}, err
	}
	if kind == "earn" {
		return money.Money{Minor: -money.PointsValue(diff, c.IssuePrice, c.Currency), Currency: c.Currency}, nil
	}
	return money.Money{Minor: money.PointsValue(diff, c.RedemptionRate, c.Currency), Currency: c.Currency}, nil
}

// RecentReconciliations returns the ids of the newest reconciliation
// uploads, newest first.
func (s *Service) RecentReconciliations(ctx context.Context, limit int) ([]int64, error) {
	var ids []int64
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM settlement_reconciliations ORDER BY id DESC LIMIT ?`, limit).
		Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("recent reconciliations: %w", err)
	}
	return ids, nil
}
