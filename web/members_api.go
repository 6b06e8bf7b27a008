package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
)

// Members as a partner sees them: the basic profile, balance and tier, and
// only the identifiers that are the hub's (card) or the partner's own
// references; nothing that another partner holds.

type partnerMemberJSON struct {
	ID          int64       `json:"id"`
	Status      string      `json:"status"`
	CardNumber  string      `json:"card_number"`
	GivenName   string      `json:"given_name,omitempty"`
	FamilyName  string      `json:"family_name,omitempty"`
	Locale      string      `json:"locale,omitempty"`
	Balance     balanceJSON `json:"balance"`
	PartnerRefs []string    `json:"partner_refs"`
	// Tier and its named entitlements (e.g. late_checkout = 16:00), for the
	// partner to honour at the desk.
	Tier         string                  `json:"tier,omitempty"`
	Entitlements []programme.Entitlement `json:"entitlements"`
}

// balanceJSON is a member's balance in parts that add up:
// total = available + pending + held + expired − owed (ledger.Balance).
type balanceJSON struct {
	Total     int64 `json:"total"`
	Available int64 `json:"available"`
	Pending   int64 `json:"pending"`
	Held      int64 `json:"held"`
	Expired   int64 `json:"expired"`
	Owed      int64 `json:"owed"`
}

func balanceOut(b ledger.Balance) balanceJSON {
	return balanceJSON{Total: int64(b.Total), Available: int64(b.Available), Pending: int64(b.Pending), Held: int64(b.Held),
		Expired: int64(b.Expired), Owed: int64(b.Owed)}
}

func (s *Server) partnerMember(c *gin.Context, p access.Principal, m members.Member) (partnerMemberJSON, error) {
	bal, err := s.deps.Ledger.Balance(c.Request.Context(), m.ID)
	if err != nil {
		return partnerMemberJSON{}, err
	}
	out := partnerMemberJSON{ID: m.ID, Status: string(m.Status), CardNumber: m.CardNumber,
		GivenName: m.Profile.GivenName, FamilyName: m.Profile.FamilyName, Locale: m.Profile.Locale,
		Balance: balanceOut(bal), PartnerRefs: []string{}, Entitlements: []programme.Entitlement{}}
	if s.deps.Programme != nil {
		st, err := s.deps.Programme.Status(c.Request.Context(), m.ID)
		if err != nil {
			return partnerMemberJSON{}, err
		}
		out.Tier = st.Tier
		if st.Entitlements != nil {
			out.Entitlements = st.Entitlements
		}
	}
	for _, id := range m.Identifiers {
		if id.Type == members.IdentifierPartnerRef && id.PartnerID == p.PartnerID {
			out.PartnerRefs = append(out.PartnerRefs, id.Value)
		}
	}
	return out, nil
}

type identifierJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type enrolRequest struct {
	Identifier       *identifierJSON `json:"identifier"`
	Profile          members.Profile `json:"profile"`
	MarketingConsent bool            `json:"marketing_consent"`
}

// enrolMember enrols a member by the identifier the partner knows, or
// returns the member who already holds it (200 instead of 201). Safe to
// retry: enrolment is idempotent by identifier.
func (s *Server) enrolMember(c *gin.Context) {
	var req enrolRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if req.Identifier == nil {
		fail(c, s.deps.Log, validation.New("identifier", "is required: {\"type\": \"card|email|phone|partner_ref\", \"value\": \"...\"}"))
		return
	}
	p := principal(c)
	ident := members.Identifier{Type: members.IdentifierType(req.Identifier.Type), Value: req.Identifier.Value}
	if ident.Type == members.IdentifierPartnerRef {
		ident.PartnerID = p.PartnerID
	}
	m, created, err := s.deps.Members.Enrol(c.Request.Context(), members.EnrolRequest{Identifier: ident, Profile: req.Profile,
		Consent:         members.Consent{Marketing: req.MarketingConsent, Source: partnerScope(p)},
		SourcePartnerID: p.PartnerID, Actor: partnerScope(p)})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if !created {
		// Knowing an identifier is what entitles a partner to the member, but
		// it must have presented it: check visibility as for lookups.
		if ok, err := s.canSee(c, p, m.ID, &ident); err != nil || !ok {
			fail(c, s.deps.Log, firstErr(err, errMemberNotFound))
			return
		}
	}
	out, err := s.partnerMember(c, p, m)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, out)
}

var errMemberNotFound = points.ErrMemberNotVisible

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// canSee: a partner sees a member it names by an identifier it was given
// (card, email, phone, its own reference), or one it has a relationship with.
func (s *Server) canSee(c *gin.Context, p access.Principal, memberID int64, by *members.Identifier) (bool, error) {
	if by != nil && (by.Type != members.IdentifierPartnerRef || by.PartnerID == p.PartnerID) {
		return true, nil
	}
	return s.deps.Transactions.Visible(c.Request.Context(), p.PartnerID, memberID)
}

func (s *Server) getMember(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, errMemberNotFound)
		return
	}
	p := principal(c)
	ok, err := s.canSee(c, p, id, nil)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if !ok {
		fail(c, s.deps.Log, errMemberNotFound)
		return
	}
	m, err := s.deps.Members.Get(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out, err := s.partnerMember(c, p, m)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// lookupMember finds a member by ?identifier=type:value (e.g.
// card:7301000000000003, email:ana@example.com, partner_ref:FF123456).
func (s *Server) lookupMember(c *gin.Context) {
	raw := c.Query("identifier")
	typ, value, ok := strings.Cut(raw, ":")
	if !ok || value == "" {
		fail(c, s.deps.Log, validation.New("identifier", "query parameter must be type:value, e.g. card:7301000000000003"))
		return
	}
	p := principal(c)
	var pid int64
	if typ == string(members.IdentifierPartnerRef) {
		pid = p.PartnerID
	}
	ident, err := members.ParseIdentifier(typ, value, pid)
	if err != nil {
		fail(c, s.deps.Log, prefixValidation(err, "identifier"))
		return
	}
	m, err := s.deps.Members.Lookup(c.Request.Context(), ident)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out, err := s.partnerMember(c, p, m)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": []partnerMemberJSON{out}})
}

// prefixValidation renames the fields of a validation error to live under name.
func prefixValidation(err error, name string) error {
	var ve *validation.Error
	if !errors.As(err, &ve) {
		return err
	}
	out := &validation.Error{}
	for _, f := range ve.Fields {
		out.Add(name, f.Field+" "+f.Message)
	}
	return out
}
