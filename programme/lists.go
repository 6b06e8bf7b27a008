package programme

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Employee is a member linked to a company; CanSpend marks a designated
// employee, who may spend the company's points.
type Employee struct {
	MemberID  int64     `json:"member_id"`
	CompanyID int64     `json:"company_id"`
	CanSpend  bool      `json:"can_spend"`
	AddedAt   time.Time `json:"added_at"`
}

// CorporatePartner is a partner whose purchases also credit the buyer's
// company.
type CorporatePartner struct {
	PartnerID int64     `json:"partner_id"`
	CreatedAt time.Time `json:"created_at"`
}

// CompanyQuery filters companies: Level (a company level's code), Name
// (case-insensitive part of the name); After is the last id of the previous
// page.
type CompanyQuery struct {
	Level string
	Name  string
	After int64
	Limit int
}

// EmployeeQuery filters employees: of one company (CompanyID), designated
// or not (CanSpend); After is the last member id of the previous page.
type EmployeeQuery struct {
	CompanyID int64
	CanSpend  *bool
	After     int64
	Limit     int
}

func listLimit(n int) int {
	if n <= 0 || n > 200 {
		return 50
	}
	return n
}

// Companies pages through companies in id order. It reads one more than
// Limit to say whether another page follows (more).
func (s *Service) Companies(ctx context.Context, q CompanyQuery) (out []Company, more bool, err error) {
	limit := listLimit(q.Limit)
	where, args := "id > ?", []any{q.After}
	if q.Level != "" {
		where += " AND level_code = ?"
		args = append(args, q.Level)
	}
	if name := strings.TrimSpace(q.Name); name != "" {
		where += " AND name ILIKE ?"
		args = append(args, "%"+strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(name)+"%")
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT id, name, account_member_id, level_code AS level, level_since, created_at
		FROM programme_companies WHERE `+where+` ORDER BY id LIMIT ?`, append(args, limit+1)...).Scan(&out).Error; err != nil {
		return nil, false, fmt.Errorf("list companies: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// Employees pages through employees in member id order.
func (s *Service) Employees(ctx context.Context, q EmployeeQuery) (out []Employee, more bool, err error) {
	limit := listLimit(q.Limit)
	where, args := "member_id > ?", []any{q.After}
	if q.CompanyID > 0 {
		where += " AND company_id = ?"
		args = append(args, q.CompanyID)
	}
	if q.CanSpend != nil {
		where += " AND can_spend = ?"
		args = append(args, *q.CanSpend)
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT member_id, company_id, can_spend, added_at FROM programme_company_employees
		WHERE `+where+` ORDER BY member_id LIMIT ?`, append(args, limit+1)...).Scan(&out).Error; err != nil {
		return nil, false, fmt.Errorf("list employees: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// Employee returns the company link of a member. Errors: ErrEmployeeNotFound.
func (s *Service) Employee(ctx context.Context, memberID int64) (Employee, error) {
	var out []Employee
	if err := s.db.WithContext(ctx).Raw(`SELECT member_id, company_id, can_spend, added_at FROM programme_company_employees
		WHERE member_id = ?`, memberID).Scan(&out).Error; err != nil {
		return Employee{}, fmt.Errorf("employee %d: %w", memberID, err)
	}
	if len(out) == 0 {
		return Employee{}, fmt.Errorf("employee %d: %w", memberID, ErrEmployeeNotFound)
	}
	return out[0], nil
}

// CorporatePartners pages through corporate partners in partner id order.
func (s *Service) CorporatePartners(ctx context.Context, after int64, limit int) (out []CorporatePartner, more bool, err error) {
	limit = listLimit(limit)
	if err := s.db.WithContext(ctx).Raw(`SELECT partner_id, created_at FROM programme_corporate_partners
		WHERE partner_id > ? ORDER BY partner_id LIMIT ?`, after, limit+1).Scan(&out).Error; err != nil {
		return nil, false, fmt.Errorf("list corporate partners: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// CorporatePartner returns one corporate partner. Errors:
// ErrCorporatePartnerNotFound (the partner is not a corporate partner).
func (s *Service) CorporatePartner(ctx context.Context, partnerID int64) (CorporatePartner, error) {
	var out []CorporatePartner
	if err := s.db.WithContext(ctx).Raw(`SELECT partner_id, created_at FROM programme_corporate_partners WHERE partner_id = ?`,
		partnerID).Scan(&out).Error; err != nil {
		return CorporatePartner{}, fmt.Errorf("corporate partner %d: %w", partnerID, err)
	}
	if len(out) == 0 {
		return CorporatePartner{}, fmt.Errorf("corporate partner %d: %w", partnerID, ErrCorporatePartnerNotFound)
	}
	return out[0], nil
}
