package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/programme"
)

// Operator management of the programme (web/openapi/programme_admin.yaml):
// policy, tiers, tier grants, member standing, company levels, companies,
// their employees and corporate partners. Reads are open to every staff
// role; configuration needs admin; tier grants admin or finance.

// ---- policy

type programmePolicyJSON struct {
	Currency            string          `json:"currency"`
	ExpiryMode          string          `json:"expiry_mode"`
	ExpiryMonths        int             `json:"expiry_months"`
	ExpiryYears         int             `json:"expiry_years"`
	NoticeDays          int             `json:"notice_days"`
	TransfersEnabled    bool            `json:"transfers_enabled"`
	TransferMin         int64           `json:"transfer_min"`
	TransferPerTransfer int64           `json:"transfer_per_transfer"`
	TransferDaily       int64           `json:"transfer_daily"`
	TransferMonthly     int64           `json:"transfer_monthly"`
	TransferFeeFixed    int64           `json:"transfer_fee_fixed"`
	TransferFeeRate     decimal.Decimal `json:"transfer_fee_rate"`
	BirthdayPoints      int64           `json:"birthday_points"`
	TierWindow          string          `json:"tier_window"`
	TierDowngrade       string          `json:"tier_downgrade"`
	ErasureAfterDays    *int            `json:"erasure_after_days"`
	UpdatedAt           time.Time       `json:"updated_at"`
}

func programmePolicyOut(p programme.Policy) programmePolicyJSON {
	return programmePolicyJSON{Currency: p.Currency, ExpiryMode: string(p.ExpiryMode), ExpiryMonths: p.ExpiryMonths,
		ExpiryYears: p.ExpiryYears, NoticeDays: p.NoticeDays, TransfersEnabled: p.TransfersEnabled,
		TransferMin: p.TransferMin, TransferPerTransfer: p.TransferPerTransfer, TransferDaily: p.TransferDaily,
		TransferMonthly: p.TransferMonthly, TransferFeeFixed: p.TransferFeeFixed, TransferFeeRate: p.TransferFeeRate,
		BirthdayPoints: p.BirthdayPoints, TierWindow: string(p.TierWindow), TierDowngrade: string(p.TierDowngrade),
		ErasureAfterDays: p.ErasureAfterDays, UpdatedAt: p.UpdatedAt.UTC()}
}

// programmePolicyRequest is a full replacement of the policy: every field is
// required (pointers tell "absent" from zero).
type programmePolicyRequest struct {
	Currency            *string          `json:"currency"`
	ExpiryMode          *string          `json:"expiry_mode"`
	ExpiryMonths        *int             `json:"expiry_months"`
	ExpiryYears         *int             `json:"expiry_years"`
	NoticeDays          *int             `json:"notice_days"`
	TransfersEnabled    *bool            `json:"transfers_enabled"`
	TransferMin         *int64           `json:"transfer_min"`
	TransferPerTransfer *int64           `json:"transfer_per_transfer"`
	TransferDaily       *int64           `json:"transfer_daily"`
	TransferMonthly     *int64           `json:"transfer_monthly"`
	TransferFeeFixed    *int64           `json:"transfer_fee_fixed"`
	TransferFeeRate     *decimal.Decimal `json:"transfer_fee_rate"`
	BirthdayPoints      *int64           `json:"birthday_points"`
	TierWindow          *string          `json:"tier_window"`
	TierDowngrade       *string          `json:"tier_downgrade"`
	// ErasureAfterDays is optional: absent or null, consent withdrawal
	// schedules no erasure.
	ErasureAfterDays *int `json:"erasure_after_days"`
}

func (r programmePolicyRequest) policy() (programme.Policy, error) {
	var v validation.Error
	for _, f := range []struct {
		name    string
		present bool
	}{
		{"currency", r.Currency != nil}, {"expiry_mode", r.ExpiryMode != nil}, {"expiry_months", r.ExpiryMonths != nil},
		{"expiry_years", r.ExpiryYears != nil}, {"notice_days", r.NoticeDays != nil},
		{"transfers_enabled", r.TransfersEnabled != nil}, {"transfer_min", r.TransferMin != nil},
		{"transfer_per_transfer", r.TransferPerTransfer != nil}, {"transfer_daily", r.TransferDaily != nil},
		{"transfer_monthly", r.TransferMonthly != nil}, {"transfer_fee_fixed", r.TransferFeeFixed != nil},
		{"transfer_fee_rate", r.TransferFeeRate != nil}, {"birthday_points", r.BirthdayPoints != nil},
		{"tier_window", r.TierWindow != nil}, {"tier_downgrade", r.TierDowngrade != nil},
	} {
		v.Check(f.present, f.name, "is required")
	}
	if err := v.Err(); err != nil {
		return programme.Policy{}, err
	}
	return programme.Policy{Currency: *r.Currency, ExpiryMode: programme.ExpiryMode(*r.ExpiryMode),
		ExpiryMonths: *r.ExpiryMonths, ExpiryYears: *r.ExpiryYears, NoticeDays: *r.NoticeDays,
		TransfersEnabled: *r.TransfersEnabled, TransferMin: *r.TransferMin, TransferPerTransfer: *r.TransferPerTransfer,
		TransferDaily: *r.TransferDaily, TransferMonthly: *r.TransferMonthly, TransferFeeFixed: *r.TransferFeeFixed,
		TransferFeeRate: *r.TransferFeeRate, BirthdayPoints: *r.BirthdayPoints,
		TierWindow: programme.TierWindow(*r.TierWindow), TierDowngrade: programme.Downgrade(*r.TierDowngrade),
		ErasureAfterDays: r.ErasureAfterDays}, nil
}

func (s *Server) adminProgrammePolicy(c *gin.Context) {
	p, err := s.deps.Programme.Policy(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, programmePolicyOut(p))
}

func (s *Server) adminSetProgrammePolicy(c *gin.Context) {
	var req programmePolicyRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, err := req.policy()
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, err = s.deps.Programme.SetPolicy(c.Request.Context(), p)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, programmePolicyOut(p))
}

// ---- tiers

type programmeEntitlementJSON struct {
	Code  string `json:"code"`
	Value string `json:"value,omitempty"`
}

type programmeTierJSON struct {
	Code           string                     `json:"code"`
	Name           string                     `json:"name"`
	Rank           int                        `json:"rank"`
	InvitationOnly bool                       `json:"invitation_only"`
	Thresholds     map[string]int64           `json:"thresholds"`
	Entitlements   []programmeEntitlementJSON `json:"entitlements"`
}

func entitlementsOut(es []programme.Entitlement) []programmeEntitlementJSON {
	out := make([]programmeEntitlementJSON, len(es))
	for i, e := range es {
		out[i] = programmeEntitlementJSON{Code: e.Code, Value: e.Value}
	}
	return out
}

func programmeTierOut(t programme.Tier) programmeTierJSON {
	th := make(map[string]int64, len(t.Thresholds))
	for m, v := range t.Thresholds {
		th[string(m)] = v
	}
	return programmeTierJSON{Code: t.Code, Name: t.Name, Rank: t.Rank, InvitationOnly: t.InvitationOnly,
		Thresholds: th, Entitlements: entitlementsOut(t.Entitlements)}
}

func (s *Server) adminProgrammeTiers(c *gin.Context) {
	tiers, err := s.deps.Programme.Tiers(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]programmeTierJSON, len(tiers))
	for i, t := range tiers {
		out[i] = programmeTierOut(t)
	}
	c.JSON(http.StatusOK, gin.H{"data": out})
}

// adminPutProgrammeTier creates or replaces the tier {code}.
func (s *Server) adminPutProgrammeTier(c *gin.Context) {
	var req struct {
		Name           string                     `json:"name"`
		Rank           int                        `json:"rank"`
		InvitationOnly bool                       `json:"invitation_only"`
		Thresholds     map[string]int64           `json:"thresholds"`
		Entitlements   []programmeEntitlementJSON `json:"entitlements"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	t := programme.Tier{Code: c.Param("code"), Name: req.Name, Rank: req.Rank, InvitationOnly: req.InvitationOnly,
		Thresholds:   make(map[programme.Metric]int64, len(req.Thresholds)),
		Entitlements: make([]programme.Entitlement, len(req.Entitlements))}
	for m, v := range req.Thresholds {
		t.Thresholds[programme.Metric(m)] = v
	}
	for i, e := range req.Entitlements {
		t.Entitlements[i] = programme.Entitlement{Code: e.Code, Value: e.Value}
	}
	t, err := s.deps.Programme.PutTier(c.Request.Context(), t)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, programmeTierOut(t))
}

// ---- grants and standing

type programmeGrantJSON struct {
	ID        int64      `json:"id"`
	MemberID  int64      `json:"member_id"`
	TierCode  string     `json:"tier_code"`
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor"`
	StartsAt  time.Time  `json:"starts_at"`
	EndsAt    *time.Time `json:"ends_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// adminGrantTier gives a member a tier (lifetime without ends_at), applied at
// once when in force and higher; the actor is the signed-in staff member.
func (s *Server) adminGrantTier(c *gin.Context) {
	var req struct {
		MemberID int64      `json:"member_id"`
		TierCode string     `json:"tier_code"`
		Reason   string     `json:"reason"`
		StartsAt *time.Time `json:"starts_at"`
		EndsAt   *time.Time `json:"ends_at"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.TierCode == "" {
		fail(c, s.deps.Log, validation.New("tier_code", "is required"))
		return
	}
	st, _ := staffPrincipal(c)
	g := programme.Grant{MemberID: req.MemberID, TierCode: req.TierCode, Reason: req.Reason, Actor: st.Actor(), EndsAt: req.EndsAt}
	if req.StartsAt != nil {
		g.StartsAt = *req.StartsAt
	}
	g, err := s.deps.Programme.GrantTier(c.Request.Context(), g)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := programmeGrantJSON{ID: g.ID, MemberID: g.MemberID, TierCode: g.TierCode, Reason: g.Reason, Actor: g.Actor,
		StartsAt: g.StartsAt.UTC(), CreatedAt: g.CreatedAt.UTC()}
	if g.EndsAt != nil {
		e := g.EndsAt.UTC()
		out.EndsAt = &e
	}
	c.JSON(http.StatusCreated, out)
}

type programmeStatusJSON struct {
	MemberID     int64                      `json:"member_id"`
	Tier         string                     `json:"tier"`
	TierName     string                     `json:"tier_name"`
	Rank         int                        `json:"rank"`
	Since        *time.Time                 `json:"since,omitempty"`
	Entitlements []programmeEntitlementJSON `json:"entitlements"`
	Credits      map[string]int64           `json:"credits"`
	WindowFrom   time.Time                  `json:"window_from"`
	WindowTo     time.Time                  `json:"window_to"`
}

// adminMemberTier is a member's tier, benefits and qualifying credits of the
// current window. Errors: 404 member_not_found.
func (s *Server) adminMemberTier(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ctx := c.Request.Context()
	if _, err := s.deps.Members.Get(ctx, id); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, err := s.deps.Programme.Status(ctx, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := programmeStatusJSON{MemberID: st.MemberID, Tier: st.Tier, TierName: st.TierName, Rank: st.Rank,
		Entitlements: entitlementsOut(st.Entitlements), Credits: make(map[string]int64, len(st.Credits)),
		WindowFrom: st.WindowFrom.UTC(), WindowTo: st.WindowTo.UTC()}
	if st.Since != nil {
		since := st.Since.UTC()
		out.Since = &since
	}
	for m, v := range st.Credits {
		out.Credits[string(m)] = v
	}
	c.JSON(http.StatusOK, out)
}

// ---- corporate accounts

type programmeCompanyLevelJSON struct {
	Code          string          `json:"code"`
	Name          string          `json:"name"`
	MinSpendMinor int64           `json:"min_spend_minor"`
	Rate          decimal.Decimal `json:"rate"`
}

func (s *Server) adminCompanyLevel(c *gin.Context) {
	l, err := s.deps.Programme.CompanyLevel(c.Request.Context(), c.Param("code"))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, programmeCompanyLevelJSON{Code: l.Code, Name: l.Name, MinSpendMinor: l.MinSpendMinor, Rate: l.Rate})
}

// adminPutCompanyLevel creates or replaces the company level {code}.
func (s *Server) adminPutCompanyLevel(c *gin.Context) {
	var req struct {
		Name          string           `json:"name"`
		MinSpendMinor int64            `json:"min_spend_minor"`
		Rate          *decimal.Decimal `json:"rate"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.Rate == nil {
		fail(c, s.deps.Log, validation.New("rate", "is required"))
		return
	}
	l, err := s.deps.Programme.PutCompanyLevel(c.Request.Context(), programme.CompanyLevel{Code: c.Param("code"),
		Name: req.Name, MinSpendMinor: req.MinSpendMinor, Rate: *req.Rate})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, programmeCompanyLevelJSON{Code: l.Code, Name: l.Name, MinSpendMinor: l.MinSpendMinor, Rate: l.Rate})
}

type programmeCompanyJSON struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	AccountMemberID int64     `json:"account_member_id"`
	Level           string    `json:"level"`
	LevelSince      time.Time `json:"level_since"`
	CreatedAt       time.Time `json:"created_at"`
}

// adminCreateCompany enrols a company at the lowest level, with a member
// record of its own (identified by email) holding its points.
func (s *Server) adminCreateCompany(c *gin.Context) {
	var req struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.Email == "" {
		fail(c, s.deps.Log, validation.New("email", "is required"))
		return
	}
	co, err := s.deps.Programme.CreateCompany(c.Request.Context(), req.Name, req.Email)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, programmeCompanyJSON{ID: co.ID, Name: co.Name, AccountMemberID: co.AccountMemberID,
		Level: co.Level, LevelSince: co.LevelSince.UTC(), CreatedAt: co.CreatedAt.UTC()})
}

// adminAddEmployee links a member to company {id}; can_spend designates
// them to spend the company's points.
func (s *Server) adminAddEmployee(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req struct {
		MemberID int64 `json:"member_id"`
		CanSpend bool  `json:"can_spend"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.MemberID <= 0 {
		fail(c, s.deps.Log, validation.New("member_id", "is required"))
		return
	}
	if err := s.deps.Programme.AddEmployee(c.Request.Context(), id, req.MemberID, req.CanSpend); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"company_id": id, "member_id": req.MemberID, "can_spend": req.CanSpend})
}

// adminAddCorporatePartner makes purchases at a partner credit the buyer's
// company. Idempotent: adding a partner twice answers 200 both times.
func (s *Server) adminAddCorporatePartner(c *gin.Context) {
	var req struct {
		PartnerID int64 `json:"partner_id"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.PartnerID <= 0 {
		fail(c, s.deps.Log, validation.New("partner_id", "is required"))
		return
	}
	ctx := c.Request.Context()
	if _, err := s.deps.Partners.Partner(ctx, req.PartnerID); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := s.deps.Programme.AddCorporatePartner(ctx, req.PartnerID); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"partner_id": req.PartnerID})
}
