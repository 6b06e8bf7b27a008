package web

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/money"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// The operator's admin API (/v1/admin/...): staff sign in for a token, then
// manage partners, outlets, contracts, API clients, prepaid balances, signing
// keys and staff. Roles: admin does everything; finance reads everything and
// manages contracts and prepaid balances; support reads.

// --- request and response shapes ---------------------------------------------

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Role        string `json:"role"`
}

type partnerRequest struct {
	Name               string `json:"name"`
	Sector             string `json:"sector"`
	SettlementCurrency string `json:"settlement_currency"`
	TimeZone           string `json:"time_zone"`
	Market             string `json:"market"`
	Category           string `json:"category"`
	// OverrideOverlap creates the partner although it overlaps an active
	// partner of its sector and category in its market (recorded in the
	// audit log).
	OverrideOverlap bool `json:"override_overlap"`
}

type partnerJSON struct {
	ID                 int64     `json:"id"`
	Name               string    `json:"name"`
	Sector             string    `json:"sector"`
	Status             string    `json:"status"`
	SettlementCurrency string    `json:"settlement_currency"`
	TimeZone           string    `json:"time_zone"`
	Market             string    `json:"market"`
	Category           string    `json:"category"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

func partnerOut(p partners.Partner) partnerJSON {
	return partnerJSON{ID: p.ID, Name: p.Name, Sector: string(p.Sector), Status: string(p.Status),
		SettlementCurrency: p.SettlementCurrency, TimeZone: p.TimeZone, Market: p.Market, Category: p.Category,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

type statusRequest struct {
	Status string `json:"status"`
}

type outletRequest struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Address  string `json:"address"`
	TimeZone string `json:"time_zone"`
}

type outletJSON struct {
	ID        int64     `json:"id"`
	PartnerID int64     `json:"partner_id"`
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	TimeZone  string    `json:"time_zone,omitempty"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

func outletOut(o partners.Outlet) outletJSON {
	return outletJSON{ID: o.ID, PartnerID: o.PartnerID, Code: o.Code, Name: o.Name, Address: o.Address,
		TimeZone: o.TimeZone, Status: o.Status, CreatedAt: o.CreatedAt}
}

// contractRequest takes prices and rates as decimal strings ("0.0075");
// JSON numbers are accepted too but strings keep them exact end to end.
type contractRequest struct {
	EffectiveFrom         time.Time        `json:"effective_from"`
	Roles                 []string         `json:"roles"`
	IssuePrice            *decimal.Decimal `json:"issue_price"`
	RedemptionRate        *decimal.Decimal `json:"redemption_rate"`
	Currency              string           `json:"currency"`
	Billing               string           `json:"billing"`
	PrepaidAlertThreshold int64            `json:"prepaid_alert_threshold"`
	PendingDays           int              `json:"pending_days"`
	CapPerTransaction     int64            `json:"cap_per_transaction"`
	CapPerMemberDay       int64            `json:"cap_per_member_day"`
	BreakageShare         *decimal.Decimal `json:"breakage_share"`
	OperatorFeeRate       *decimal.Decimal `json:"operator_fee_rate"`
	Notes                 string           `json:"notes"`
	OverrideOverlap       bool             `json:"override_overlap"`
}

type contractJSON struct {
	ID                    int64     `json:"id"`
	PartnerID             int64     `json:"partner_id"`
	Version               int       `json:"version"`
	EffectiveFrom         time.Time `json:"effective_from"`
	Roles                 []string  `json:"roles"`
	IssuePrice            string    `json:"issue_price"`
	RedemptionRate        string    `json:"redemption_rate"`
	Currency              string    `json:"currency"`
	Billing               string    `json:"billing"`
	PrepaidAlertThreshold int64     `json:"prepaid_alert_threshold"`
	PendingDays           int       `json:"pending_days"`
	CapPerTransaction     int64     `json:"cap_per_transaction"`
	CapPerMemberDay       int64     `json:"cap_per_member_day"`
	BreakageShare         string    `json:"breakage_share"`
	OperatorFeeRate       string    `json:"operator_fee_rate"`
	Notes                 string    `json:"notes"`
	CreatedAt             time.Time `json:"created_at"`
	CreatedBy             string    `json:"created_by"`
}

func contractOut(c partners.Contract) contractJSON {
	roles := []string{}
	if c.Earn {
		roles = append(roles, "earn")
	}
	if c.Burn {
		roles = append(roles, "burn")
	}
	return contractJSON{ID: c.ID, PartnerID: c.PartnerID, Version: c.Version, EffectiveFrom: c.EffectiveFrom,
		Roles: roles, IssuePrice: c.IssuePrice.String(), RedemptionRate: c.RedemptionRate.String(),
		Currency: c.Currency, Billing: string(c.Billing), PrepaidAlertThreshold: c.PrepaidAlertThreshold,
		PendingDays: c.PendingDays, CapPerTransaction: c.CapPerTransaction, CapPerMemberDay: c.CapPerMemberDay,
		BreakageShare: c.BreakageShare.String(), OperatorFeeRate: c.OperatorFeeRate.String(), Notes: c.Notes,
		CreatedAt: c.CreatedAt, CreatedBy: c.CreatedBy}
}

type clientRequest struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	PublicKey string   `json:"public_key"` // JWK JSON text or PEM; optional
	NoSecret  bool     `json:"no_secret"`
}

type publicKeyRequest struct {
	PublicKey string `json:"public_key"`
}

type clientJSON struct {
	ClientID              string     `json:"client_id"`
	PartnerID             int64      `json:"partner_id"`
	Name                  string     `json:"name"`
	Scopes                []string   `json:"scopes"`
	Status                string     `json:"status"`
	HasSecret             bool       `json:"has_secret"`
	PublicKeyAlg          string     `json:"public_key_alg,omitempty"`
	CreatedAt             time.Time  `json:"created_at"`
	SecretRotatedAt       *time.Time `json:"secret_rotated_at,omitempty"`
	PreviousSecretValidTo *time.Time `json:"previous_secret_valid_until,omitempty"`
	RevokedAt             *time.Time `json:"revoked_at,omitempty"`
	// ClientSecret is present only in the answer that created or rotated it.
	ClientSecret string `json:"client_secret,omitempty"`
}

func clientOut(c access.Client, secret string) clientJSON {
	scopes := make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		scopes[i] = string(s)
	}
	return clientJSON{ClientID: c.ClientID, PartnerID: c.PartnerID, Name: c.Name, Scopes: scopes, Status: c.Status,
		HasSecret: c.HasSecret, PublicKeyAlg: c.PublicKeyAlg, CreatedAt: c.CreatedAt, SecretRotatedAt: c.SecretRotatedAt,
		PreviousSecretValidTo: c.PreviousValidTill, RevokedAt: c.RevokedAt, ClientSecret: secret}
}

type topUpRequest struct {
	Amount money.Money `json:"amount"`
	Ref    string      `json:"ref"`
}

type prepaidJSON struct {
	PartnerID int64       `json:"partner_id"`
	Balance   money.Money `json:"balance"`
}

type signingKeyJSON struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	Active      bool       `json:"active"`
	CreatedAt   time.Time  `json:"created_at"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	VerifyUntil *time.Time `json:"verify_until,omitempty"`
}

type staffRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type staffJSON struct {
	ID          int64      `json:"id"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at,omitempty"`
}

func staffOut(s access.Staff) staffJSON {
	return staffJSON{ID: s.ID, Email: s.Email, Role: string(s.Role), Status: s.Status, CreatedAt: s.CreatedAt, LastLoginAt: s.LastLoginAt}
}

// --- pagination ---------------------------------------------------------------

// adminPage reads ?cursor= (opaque: the last id of the previous page) and
// ?limit= (1..200, default 50).
func adminPage(c *gin.Context) (partners.Page, error) {
	var v validation.Error
	p := partners.Page{Limit: queryLimit(c, 50, 200, &v)}
	if raw := c.Query("cursor"); raw != "" {
		b, err := base64.RawURLEncoding.DecodeString(raw)
		n, perr := strconv.ParseInt(string(b), 10, 64)
		if v.Check(err == nil && perr == nil && n > 0, "cursor", "is not a cursor this API returned") {
			p.After = n
		}
	}
	return p, v.Err()
}

// adminList renders one page; next_cursor is empty on the last page.
func adminList[T any, J any](c *gin.Context, page partners.Page, items []T, id func(T) int64, out func(T) J) {
	data := make([]J, len(items))
	for i, it := range items {
		data[i] = out(it)
	}
	next := ""
	if len(items) == page.Limit && len(items) > 0 {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id(items[len(items)-1]), 10)))
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

func actor(c *gin.Context) string {
	p, _ := staffPrincipal(c)
	return p.Actor()
}

// --- handlers -------------------------------------------------------------------

// adminLogin is POST /v1/admin/login: email + password for a staff token.
func (s *Server) adminLogin(c *gin.Context) {
	if wait, ok := s.loginLimits.allow(c.ClientIP()); !ok {
		s.tooManyRequests(c, wait)
		return
	}
	var req loginRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	tok, st, err := s.deps.Access.StaffLogin(c.Request.Context(), req.Email, req.Password, sessionInfo(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, loginResponse{AccessToken: tok.AccessToken, TokenType: "Bearer",
		ExpiresIn: int(tok.ExpiresIn.Seconds()), Role: string(st.Role)})
}

// adminLogout is POST /v1/admin/logout: it ends the session of the bearer
// token, which is refused from the next request on, in every hub process.
func (s *Server) adminLogout(c *gin.Context) {
	p, _ := staffPrincipal(c)
	if err := s.deps.Access.EndStaffSession(c.Request.Context(), p); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) adminCreatePartner(c *gin.Context) {
	var req partnerRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, err := s.createPartner(c, partners.NewPartner{Name: req.Name, Sector: partners.Sector(req.Sector),
		SettlementCurrency: req.SettlementCurrency, TimeZone: req.TimeZone, Market: req.Market, Category: req.Category,
		OverrideOverlap: req.OverrideOverlap})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, partnerOut(p))
}

func (s *Server) adminListPartners(c *gin.Context) {
	page, err := adminPage(c)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Partners.Partners(c.Request.Context(), page)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	adminList(c, page, list, func(p partners.Partner) int64 { return p.ID }, partnerOut)
}

func (s *Server) adminGetPartner(c *gin.Context) {
	id, err := pathID(c, "id")
	if err == nil {
		var p partners.Partner
		if p, err = s.deps.Partners.Partner(c.Request.Context(), id); err == nil {
			c.JSON(http.StatusOK, partnerOut(p))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminSetPartnerStatus(c *gin.Context) {
	id, err := pathID(c, "id")
	var req statusRequest
	if err == nil {
		_, err = decodeJSON(c, &req)
	}
	if err == nil {
		var p partners.Partner
		if p, err = s.deps.Partners.SetPartnerStatus(c.Request.Context(), id, partners.Status(req.Status)); err == nil {
			c.JSON(http.StatusOK, partnerOut(p))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminCreateOutlet(c *gin.Context) {
	id, err := pathID(c, "id")
	var req outletRequest
	if err == nil {
		_, err = decodeJSON(c, &req)
	}
	if err == nil {
		var o partners.Outlet
		o, err = s.deps.Partners.CreateOutlet(c.Request.Context(), id, partners.NewOutlet{Code: req.Code, Name: req.Name,
			Address: req.Address, TimeZone: req.TimeZone})
		if err == nil {
			c.JSON(http.StatusCreated, outletOut(o))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminListOutlets(c *gin.Context) {
	id, err := pathID(c, "id")
	var page partners.Page
	if err == nil {
		page, err = adminPage(c)
	}
	if err == nil {
		var list []partners.Outlet
		if list, err = s.deps.Partners.Outlets(c.Request.Context(), id, page); err == nil {
			adminList(c, page, list, func(o partners.Outlet) int64 { return o.ID }, outletOut)
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (req contractRequest) input() (partners.NewContract, error) {
	var v validation.Error
	in := partners.NewContract{EffectiveFrom: req.EffectiveFrom, Currency: req.Currency, Billing: partners.Billing(req.Billing),
		PrepaidAlertThreshold: req.PrepaidAlertThreshold, PendingDays: req.PendingDays,
		CapPerTransaction: req.CapPerTransaction, CapPerMemberDay: req.CapPerMemberDay, Notes: req.Notes,
		OverrideOverlap: req.OverrideOverlap}
	for i, r := range req.Roles {
		switch r {
		case "earn":
			in.Earn = true
		case "burn":
			in.Burn = true
		default:
			v.Add("roles["+strconv.Itoa(i)+"]", "must be earn or burn")
		}
	}
	dec := func(field string, d *decimal.Decimal, required bool) decimal.Decimal {
		if d == nil {
			v.Check(!required, field, "is required (a decimal string such as \"0.0075\")")
			return decimal.Zero
		}
		return *d
	}
	in.IssuePrice = dec("issue_price", req.IssuePrice, true)
	in.RedemptionRate = dec("redemption_rate", req.RedemptionRate, true)
	in.BreakageShare = dec("breakage_share", req.BreakageShare, false)
	in.OperatorFeeRate = dec("operator_fee_rate", req.OperatorFeeRate, false)
	return in, v.Err()
}

func (s *Server) adminPublishContract(c *gin.Context) {
	id, err := pathID(c, "id")
	var req contractRequest
	if err == nil {
		_, err = decodeJSON(c, &req)
	}
	var in partners.NewContract
	if err == nil {
		in, err = req.input()
	}
	if err == nil {
		var ct partners.Contract
		if ct, err = s.publishContract(c, id, in); err == nil {
			c.JSON(http.StatusCreated, contractOut(ct))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminListContracts(c *gin.Context) {
	id, err := pathID(c, "id")
	var page partners.Page
	if err == nil {
		page, err = adminPage(c)
	}
	if err == nil {
		var list []partners.Contract
		if list, err = s.deps.Partners.Contracts(c.Request.Context(), id, page); err == nil {
			adminList(c, page, list, func(ct partners.Contract) int64 { return ct.ID }, contractOut)
			return
		}
	}
	fail(c, s.deps.Log, err)
}

// adminContractAt is GET /v1/admin/partners/:id/contract?at=RFC3339 (default
// now): the version in force at that time.
func (s *Server) adminContractAt(c *gin.Context) {
	id, err := pathID(c, "id")
	var v validation.Error
	at := queryTime(c, "at", &v)
	if err == nil {
		err = v.Err()
	}
	if at.IsZero() {
		at = s.now()
	}
	if err == nil {
		var ct partners.Contract
		if ct, err = s.deps.Partners.ContractAt(c.Request.Context(), id, at); err == nil {
			c.JSON(http.StatusOK, contractOut(ct))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminCreateClient(c *gin.Context) {
	id, err := pathID(c, "id")
	var req clientRequest
	if err == nil {
		_, err = decodeJSON(c, &req)
	}
	if err == nil {
		scopes := make([]access.Scope, len(req.Scopes))
		for i, sc := range req.Scopes {
			scopes[i] = access.Scope(sc)
		}
		var cs access.ClientSecret
		cs, err = s.deps.Access.CreateClient(c.Request.Context(), id, access.NewClient{Name: req.Name, Scopes: scopes,
			PublicKey: req.PublicKey, NoSecret: req.NoSecret})
		if err == nil {
			c.Header("Cache-Control", "no-store")
			c.JSON(http.StatusCreated, clientOut(cs.Client, cs.Secret))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminListClients(c *gin.Context) {
	id, err := pathID(c, "id")
	var page partners.Page
	if err == nil {
		page, err = adminPage(c)
	}
	if err == nil {
		var list []access.Client
		if list, err = s.deps.Access.Clients(c.Request.Context(), id, page); err == nil {
			adminList(c, page, list, func(cl access.Client) int64 { return cl.ID },
				func(cl access.Client) clientJSON { return clientOut(cl, "") })
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminRotateClientSecret(c *gin.Context) {
	cs, err := s.deps.Access.RotateClientSecret(c.Request.Context(), c.Param("client_id"))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, clientOut(cs.Client, cs.Secret))
}

func (s *Server) adminRevokeClient(c *gin.Context) {
	cl, err := s.deps.Access.RevokeClient(c.Request.Context(), c.Param("client_id"))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, clientOut(cl, ""))
}

func (s *Server) adminSetClientKey(c *gin.Context) {
	var req publicKeyRequest
	_, err := decodeJSON(c, &req)
	if err == nil {
		var cl access.Client
		if cl, err = s.deps.Access.SetClientPublicKey(c.Request.Context(), c.Param("client_id"), req.PublicKey); err == nil {
			c.JSON(http.StatusOK, clientOut(cl, ""))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func prepaidOut(b partners.PrepaidBalance) prepaidJSON {
	return prepaidJSON{PartnerID: b.PartnerID, Balance: b.Balance}
}

func (s *Server) adminPrepaidBalance(c *gin.Context) {
	id, err := pathID(c, "id")
	if err == nil {
		var b partners.PrepaidBalance
		if b, err = s.deps.Partners.PrepaidBalance(c.Request.Context(), id); err == nil {
			c.JSON(http.StatusOK, prepaidOut(b))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminTopUp(c *gin.Context) {
	id, err := pathID(c, "id")
	var req topUpRequest
	if err == nil {
		_, err = decodeJSON(c, &req)
	}
	if err == nil {
		var b partners.PrepaidBalance
		b, err = s.deps.Partners.TopUp(c.Request.Context(), id, req.Amount, req.Ref, actor(c))
		if err == nil {
			c.JSON(http.StatusCreated, prepaidOut(b))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func signingKeysOut(keys []access.SigningKey) []signingKeyJSON {
	out := make([]signingKeyJSON, len(keys))
	for i, k := range keys {
		out[i] = signingKeyJSON{KID: k.KID, Alg: k.Alg, Active: k.Active(), CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, VerifyUntil: k.VerifyUntil}
	}
	return out
}

func (s *Server) adminSigningKeys(c *gin.Context) {
	keys, err := s.deps.Access.SigningKeys(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": signingKeysOut(keys)})
}

func (s *Server) adminRotateSigningKey(c *gin.Context) {
	k, err := s.deps.Access.RotateSigningKey(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	s.deps.Log.InfoContext(c.Request.Context(), "signing key rotated", "kid", k.KID, "by", actor(c))
	c.JSON(http.StatusCreated, signingKeysOut([]access.SigningKey{k})[0])
}

func (s *Server) adminCreateStaff(c *gin.Context) {
	var req staffRequest
	_, err := decodeJSON(c, &req)
	if err == nil {
		var st access.Staff
		if st, err = s.deps.Access.CreateStaff(c.Request.Context(), req.Email, req.Password, access.Role(req.Role)); err == nil {
			c.JSON(http.StatusCreated, staffOut(st))
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminListStaff(c *gin.Context) {
	page, err := adminPage(c)
	if err == nil {
		var list []access.Staff
		if list, err = s.deps.Access.StaffMembers(c.Request.Context(), page); err == nil {
			adminList(c, page, list, func(st access.Staff) int64 { return st.ID }, staffOut)
			return
		}
	}
	fail(c, s.deps.Log, err)
}

func (s *Server) adminSetStaffStatus(c *gin.Context) {
	id, err := pathID(c, "id")
	var req statusRequest
	if err == nil {
		_, err = decodeJSON(c, &req)
	}
	if err == nil {
		var st access.Staff
		if st, err = s.deps.Access.SetStaffStatus(c.Request.Context(), id, req.Status); err == nil {
			c.JSON(http.StatusOK, staffOut(st))
			return
		}
	}
	fail(c, s.deps.Log, err)
}
