package campaigns

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/members"
)

// maxListRows bounds the rows of an uploaded list.
const maxListRows = 50_000

// maxLineErrors is how many bad lines an upload's refusal names.
const maxLineErrors = 100

// Goodwill is a list campaign to create from an uploaded CSV file: a header
// naming the columns member (a member id, card number, email or phone),
// points and reason, then one row per member. BudgetPoints 0 makes the
// budget the file's total.
type Goodwill struct {
	Name         string
	Reason       string
	BudgetPoints int64
}

// CreateGoodwill reads file and creates a points campaign whose audience is
// its members. The file is checked whole first: every bad line is named
// (field "lines[N].column", N the line number in the file, the header being
// line 1) and nothing is written unless every line is good. A member named
// twice is a bad line. Errors: *validation.Error.
func (s *Service) CreateGoodwill(ctx context.Context, g Goodwill, file io.Reader, actor string) (Campaign, error) {
	var v validation.Error
	g.Name, g.Reason = strings.TrimSpace(g.Name), strings.TrimSpace(g.Reason)
	v.Check(g.Name != "" && len(g.Name) <= 200, "name", "is required (at most 200 characters)")
	v.Check(len(g.Reason) <= 500, "reason", "must be at most 500 characters")
	v.Check(g.BudgetPoints >= 0 && g.BudgetPoints <= 1_000_000_000, "budget_points", "must be a whole number of points from 0 (the file's total) to 1000000000")
	if err := v.Err(); err != nil {
		return Campaign{}, err
	}
	rows, total, err := s.readList(ctx, file, g.Reason)
	if err != nil {
		return Campaign{}, err
	}
	if g.Reason == "" {
		g.Reason = "goodwill"
	}
	budget := g.BudgetPoints
	if budget == 0 {
		budget = total
	}
	if budget <= 0 {
		return Campaign{}, validation.New("file", "grants no points: every row has 0 points")
	}
	now := s.clock()
	var id int64
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw(`INSERT INTO campaigns (name, kind, audience, budget_points, reason, created_by, created_at)
			VALUES (?, 'points', 'list', ?, ?, ?, ?) RETURNING id`, g.Name, budget, g.Reason, actor, now).Scan(&id).Error; err != nil {
			return err
		}
		for start := 0; start < len(rows); start += batchSize {
			chunk := rows[start:min(start+batchSize, len(rows))]
			q := strings.Builder{}
			q.WriteString(`INSERT INTO campaign_list_members (campaign_id, member_id, line, points, reason) VALUES `)
			args := make([]any, 0, len(chunk)*5)
			for i, r := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?)")
				args = append(args, id, r.MemberID, r.line, r.Points, r.Reason)
			}
			if err := tx.Exec(q.String(), args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Campaign{}, fmt.Errorf("create goodwill campaign: %w", err)
	}
	return s.Campaign(ctx, id)
}

type listRow struct {
	target
	line int
}

// readList parses and checks the whole file; it returns its rows and their
// total points, or a *validation.Error naming every bad line.
func (s *Service) readList(ctx context.Context, file io.Reader, defaultReason string) ([]listRow, int64, error) {
	r := csv.NewReader(file)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var v validation.Error
	bad := func(line int, col, msg string) {
		if len(v.Fields) < maxLineErrors {
			v.Add(fmt.Sprintf("lines[%d].%s", line, col), fmt.Sprintf("line %d: %s", line, msg))
		}
	}
	header, err := r.Read()
	if err != nil {
		return nil, 0, validation.New("file", "must be a CSV file with a header line naming member, points and reason")
	}
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range []string{"member", "points"} {
		if _, ok := cols[need]; !ok {
			return nil, 0, validation.New("file", "the header (line 1) must name the columns member, points and reason; "+need+" is missing")
		}
	}
	reasonCol, hasReason := cols["reason"]
	var rows []listRow
	seen := map[int64]int{}
	var total int64
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			bad(line, "file", "is not valid CSV")
			if pe == nil {
				break
			}
			continue
		}
		if len(rows) >= maxListRows {
			bad(line, "file", fmt.Sprintf("the file has more than %d rows", maxListRows))
			break
		}
		field := func(i int) string {
			if i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if len(rec) == 1 && field(0) == "" {
			continue // a blank line
		}
		row := listRow{line: line}
		ok := true
		pts, err := strconv.ParseInt(field(cols["points"]), 10, 64)
		if err != nil || pts < 1 || pts > maxPoints {
			bad(line, "points", "points must be a whole number from 1 to 10000000")
			ok = false
		}
		row.Points = pts
		row.Reason = defaultReason
		if hasReason && field(reasonCol) != "" {
			row.Reason = field(reasonCol)
		}
		if row.Reason == "" || len(row.Reason) > 500 {
			bad(line, "reason", "a reason is required (at most 500 characters), in the row or for the whole file")
			ok = false
		}
		m, err := s.resolve(ctx, field(cols["member"]))
		switch {
		case err == nil:
			row.MemberID = m.ID
			if first, dup := seen[m.ID]; dup {
				bad(line, "member", fmt.Sprintf("member %d is also on line %d", m.ID, first))
				ok = false
			} else if err := members.CanTransact(m); err != nil {
				bad(line, "member", fmt.Sprintf("member %d is %s and cannot be granted points", m.ID, m.Status))
				ok = false
			}
			seen[m.ID] = line
		case errors.Is(err, members.ErrNotFound):
			bad(line, "member", fmt.Sprintf("no member %q", field(cols["member"])))
			ok = false
		case errors.As(err, new(*validation.Error)):
			bad(line, "member", "must be a member id, card number, email or phone")
			ok = false
		default:
			return nil, 0, err
		}
		if ok {
			rows = append(rows, row)
			total += pts
		}
	}
	if err := v.Err(); err != nil {
		return nil, 0, err
	}
	if len(rows) == 0 {
		return nil, 0, validation.New("file", "has no rows after the header")
	}
	return rows, total, nil
}

// resolve finds the member a file names: a member id (digits, shorter than
// a card number), or an identifier (card, email, phone).
func (s *Service) resolve(ctx context.Context, value string) (members.Member, error) {
	if value == "" {
		return members.Member{}, validation.New("member", "is required")
	}
	if len(value) < 16 && strings.Trim(value, "0123456789") == "" {
		id, err := strconv.ParseInt(value, 10, 64)
		if err != nil || id <= 0 {
			return members.Member{}, validation.New("member", "is not a member id")
		}
		return s.members.Get(ctx, id)
	}
	typ := members.IdentifierCard
	switch {
	case strings.Contains(value, "@"):
		typ = members.IdentifierEmail
	case strings.HasPrefix(value, "+"):
		typ = members.IdentifierPhone
	}
	return s.members.Lookup(ctx, members.Identifier{Type: typ, Value: value})
}
