package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/members"
)

// portalLocales are the languages a member may choose for the portal and
// the mail the hub sends; any other tag is refused by members.
var portalLocales = []struct{ Tag, Name string }{
	{"en", "English"}, {"pt", "Português"}, {"pt-BR", "Português (Brasil)"}, {"es", "Español"},
	{"fr", "Français"}, {"de", "Deutsch"},
}

// portalProfile shows the member's card (number and a QR code a till
// scans), the profile form (name, phone, language, marketing consent with
// its trail), and the partner identifiers and programme accounts linked to
// the account.
func (s *Server) portalProfile(c *gin.Context) {
	v, _ := c.Get("ui.member")
	m, _ := v.(members.Member)
	form := gin.H{"GivenName": m.Profile.GivenName, "FamilyName": m.Profile.FamilyName, "Phone": m.Profile.Phone,
		"Locale": m.Profile.Locale, "Marketing": m.MarketingConsent}
	s.profilePage(c, http.StatusOK, m, form, "")
}

func (s *Server) profilePage(c *gin.Context, status int, m members.Member, form gin.H, errText string) {
	ctx := c.Request.Context()
	trail, err := s.deps.Members.ConsentHistory(ctx, m.ID)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	links, err := s.deps.Exchange.Links(ctx, m.ID)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	progs, err := s.deps.Exchange.Programmes(ctx, 0)
	if err != nil {
		s.pageError(c, "portal", err)
		return
	}
	names := map[int64]string{}
	for _, p := range progs {
		names[p.ID] = p.Name
	}
	var partnerIDs []members.Identifier
	for _, id := range m.Identifiers {
		if id.Type == members.IdentifierPartnerRef {
			partnerIDs = append(partnerIDs, id)
		}
	}
	form["Member"] = m
	form["QR"] = cardQR(m.CardNumber)
	form["Trail"] = trail
	form["Links"] = links
	form["Names"] = names
	form["PartnerIDs"] = partnerIDs
	form["Partners"] = s.partnerNames(c)
	form["Locales"] = portalLocales
	p := portalPage("profile", "Profile and card", form)
	p.Error = errText
	s.renderStatus(c, status, "portal_profile", p)
}

// portalSetProfile saves the profile form. The profile is checked whole
// before anything is written: bad input shows the form again, 400, with the
// field named and the member's input kept, and changes nothing. A change of
// marketing consent is recorded as a consent event (the trail).
func (s *Server) portalSetProfile(c *gin.Context) {
	v, _ := c.Get("ui.member")
	m, _ := v.(members.Member)
	form := gin.H{"GivenName": c.PostForm("given_name"), "FamilyName": c.PostForm("family_name"),
		"Phone": c.PostForm("phone"), "Locale": c.PostForm("locale"), "Marketing": c.PostForm("marketing") == "yes"}
	p := m.Profile
	p.GivenName = c.PostForm("given_name")
	p.FamilyName = c.PostForm("family_name")
	p.Phone = strings.TrimSpace(c.PostForm("phone"))
	p.Locale = c.PostForm("locale")
	saved, err := s.deps.Members.UpdateProfile(c.Request.Context(), m.ID, p)
	if err != nil {
		status := http.StatusInternalServerError
		if pr, known := problemFor(err); known {
			status = pr.Status
		}
		s.profilePage(c, status, m, form, s.friendly(c, err))
		return
	}
	if marketing := c.PostForm("marketing") == "yes"; marketing != saved.MarketingConsent {
		actor := "member:" + strconv.FormatInt(m.ID, 10)
		if _, err := s.deps.Members.SetConsent(c.Request.Context(), m.ID, members.Consent{Marketing: marketing, Source: "portal profile"}, actor); err != nil {
			s.failBack(c, "/portal/profile", err)
			return
		}
	}
	okBack(c, "/portal/profile", "Your profile is saved.")
}

// meUpdateProfile changes the signed-in member's name, phone, language and
// marketing consent (PATCH /v1/me); fields left out keep their value. The
// whole profile is checked by members before anything is written.
func (s *Server) meUpdateProfile(c *gin.Context) {
	var req struct {
		Profile *struct {
			GivenName  *string `json:"given_name"`
			FamilyName *string `json:"family_name"`
			Phone      *string `json:"phone"`
			Locale     *string `json:"locale"`
		} `json:"profile"`
		MarketingConsent *bool `json:"marketing_consent"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ctx := c.Request.Context()
	m, err := s.deps.Members.Get(ctx, me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if r := req.Profile; r != nil {
		p := m.Profile
		for _, f := range []struct {
			in  *string
			out *string
		}{{r.GivenName, &p.GivenName}, {r.FamilyName, &p.FamilyName}, {r.Phone, &p.Phone}, {r.Locale, &p.Locale}} {
			if f.in != nil {
				*f.out = *f.in
			}
		}
		if m, err = s.deps.Members.UpdateProfile(ctx, m.ID, p); err != nil {
			fail(c, s.deps.Log, err)
			return
		}
	}
	if req.MarketingConsent != nil && *req.MarketingConsent != m.MarketingConsent {
		actor := "member:" + strconv.FormatInt(m.ID, 10)
		if _, err := s.deps.Members.SetConsent(ctx, m.ID, members.Consent{Marketing: *req.MarketingConsent, Source: "member api"}, actor); err != nil {
			fail(c, s.deps.Log, err)
			return
		}
	}
	s.meProfile(c)
}
