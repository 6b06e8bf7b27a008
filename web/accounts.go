package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/members"
)

// Members running their own accounts (members/accounts.go): sign-up, claim
// and password reset by an emailed one-time link, the link's use, the list of
// open sessions and signing out everywhere; on the member API and in the
// portal. Requests that send mail answer the same whatever is on file, and
// are limited per client address (the sign-in limiter) and per account
// (members.MailPolicy).

// sentMessage is the one answer of every request that may send a link.
const sentMessage = "If this matches an account (or can become one), a link is on its way to the email address on file. It works once and expires; check the spam folder too."

type sentJSON struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// mailRateLimited applies the per-address limit of requests that send mail,
// answering 429 when it is spent.
func (s *Server) mailRateLimited(c *gin.Context) bool {
	if wait, ok := s.loginLimits.allow("mail:" + c.ClientIP()); !ok {
		s.tooManyRequests(c, wait)
		return true
	}
	return false
}

func (s *Server) meSignup(c *gin.Context) {
	var req struct {
		Email            string `json:"email"`
		GivenName        string `json:"given_name"`
		FamilyName       string `json:"family_name"`
		Locale           string `json:"locale"`
		MarketingConsent bool   `json:"marketing_consent"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if s.mailRateLimited(c) {
		return
	}
	err := s.deps.Members.Signup(c.Request.Context(), members.SignupRequest{Email: req.Email, GivenName: req.GivenName,
		FamilyName: req.FamilyName, Locale: req.Locale, Marketing: req.MarketingConsent})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, sentJSON{Status: "accepted", Message: sentMessage})
}

func (s *Server) meClaim(c *gin.Context) {
	var req struct {
		CardNumber string `json:"card_number"`
		Email      string `json:"email"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if s.mailRateLimited(c) {
		return
	}
	if err := s.deps.Members.Claim(c.Request.Context(), members.ClaimRequest{CardNumber: req.CardNumber, Email: req.Email}); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, sentJSON{Status: "accepted", Message: sentMessage})
}

func (s *Server) meRequestPasswordReset(c *gin.Context) {
	var req struct {
		Email string `json:"email"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if s.mailRateLimited(c) {
		return
	}
	if err := s.deps.Members.RequestPasswordReset(c.Request.Context(), req.Email); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, sentJSON{Status: "accepted", Message: sentMessage})
}

// meVerify uses an emailed link: it sets the password, and a sign-up's
// member is made. It does not sign in: the app signs in with the new
// password, as the portal does.
func (s *Server) meVerify(c *gin.Context) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if wait, ok := s.loginLimits.allow("member:" + c.ClientIP()); !ok {
		s.tooManyRequests(c, wait)
		return
	}
	r, err := s.deps.Members.UseLink(c.Request.Context(), req.Token, req.Password)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"purpose": string(r.Purpose), "member_id": r.MemberID, "email": r.Email,
		"card_number": r.CardNumber, "created": r.Created})
}

type sessionJSON struct {
	CreatedAt  string `json:"created_at"`
	LastSeenAt string `json:"last_seen_at"`
	ExpiresAt  string `json:"expires_at"`
	UserAgent  string `json:"user_agent"`
	IP         string `json:"ip"`
	Current    bool   `json:"current"`
}

// meSessions lists the member's open sessions (this one marked current).
func (s *Server) meSessions(c *gin.Context) {
	p, _ := memberPrincipal(c)
	list, err := s.deps.Members.OpenSessions(c.Request.Context(), p.MemberID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]sessionJSON, len(list))
	for i, x := range list {
		out[i] = sessionJSON{CreatedAt: x.CreatedAt.Format(timeFormat), LastSeenAt: x.LastSeenAt.Format(timeFormat),
			ExpiresAt: x.ExpiresAt.Format(timeFormat), UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == p.SessionID}
	}
	c.JSON(http.StatusOK, gin.H{"data": out})
}

// meLogoutEverywhere ends every session of the member, this one included.
func (s *Server) meLogoutEverywhere(c *gin.Context) {
	if err := s.deps.Members.EndAllSessions(c.Request.Context(), me(c)); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// The portal's pages for the same flows. They have no session yet, so their
// forms carry the sign-in form's double-submit CSRF token.

// accountPage renders one of the signed-out account pages.
func (s *Server) accountPage(c *gin.Context, status int, name, title string, data gin.H, errMsg string) {
	p := portalPage("login", title, data)
	p.CSRF = loginCSRF(c, "/portal")
	p.Error = errMsg
	s.renderStatus(c, status, name, p)
}

// accountRefusal is the page status and message of a refused request.
func (s *Server) accountRefusal(c *gin.Context, err error) (int, string) {
	p, _ := problemFor(err)
	setRetryAfter(c, err)
	status := max(p.Status, http.StatusBadRequest)
	if fc := (*validation.Cause)(nil); errors.As(err, &fc) && fc.Field == "token" {
		return status, "This link " + fc.Message + "."
	}
	return status, s.friendly(c, err)
}

func (s *Server) portalSignupPage(c *gin.Context) {
	s.accountPage(c, http.StatusOK, "portal_signup", "Join Coalition Rewards", gin.H{}, "")
}

func (s *Server) portalSignup(c *gin.Context) {
	form := gin.H{"Email": c.PostForm("email"), "GivenName": c.PostForm("given_name"), "FamilyName": c.PostForm("family_name"),
		"Marketing": c.PostForm("marketing") == "yes"}
	refuse := func(status int, msg string) {
		s.accountPage(c, status, "portal_signup", "Join Coalition Rewards", form, msg)
	}
	if !s.accountFormAllowed(c, refuse) {
		return
	}
	err := s.deps.Members.Signup(c.Request.Context(), members.SignupRequest{Email: c.PostForm("email"),
		GivenName: c.PostForm("given_name"), FamilyName: c.PostForm("family_name"), Marketing: c.PostForm("marketing") == "yes"})
	if err != nil {
		refuse(s.accountRefusal(c, err))
		return
	}
	s.sentPage(c)
}

func (s *Server) portalClaimPage(c *gin.Context) {
	s.accountPage(c, http.StatusOK, "portal_claim", "Claim your account", gin.H{}, "")
}

func (s *Server) portalClaim(c *gin.Context) {
	form := gin.H{"Card": c.PostForm("card_number"), "Email": c.PostForm("email")}
	refuse := func(status int, msg string) {
		s.accountPage(c, status, "portal_claim", "Claim your account", form, msg)
	}
	if !s.accountFormAllowed(c, refuse) {
		return
	}
	err := s.deps.Members.Claim(c.Request.Context(), members.ClaimRequest{CardNumber: c.PostForm("card_number"), Email: c.PostForm("email")})
	if err != nil {
		refuse(s.accountRefusal(c, err))
		return
	}
	s.sentPage(c)
}

func (s *Server) portalResetPage(c *gin.Context) {
	s.accountPage(c, http.StatusOK, "portal_reset", "Forgot your password?", gin.H{}, "")
}

func (s *Server) portalReset(c *gin.Context) {
	form := gin.H{"Email": c.PostForm("email")}
	refuse := func(status int, msg string) {
		s.accountPage(c, status, "portal_reset", "Forgot your password?", form, msg)
	}
	if !s.accountFormAllowed(c, refuse) {
		return
	}
	if err := s.deps.Members.RequestPasswordReset(c.Request.Context(), c.PostForm("email")); err != nil {
		refuse(s.accountRefusal(c, err))
		return
	}
	s.sentPage(c)
}

// accountFormAllowed checks the form's CSRF token and the per-address limit.
func (s *Server) accountFormAllowed(c *gin.Context, refuse func(int, string)) bool {
	if !checkLoginCSRF(c) {
		refuse(http.StatusForbidden, "The form expired. Please try again.")
		return false
	}
	if wait, ok := s.loginLimits.allow("mail:" + c.ClientIP()); !ok {
		retryAfter(c, wait)
		refuse(http.StatusTooManyRequests, "Too many requests from here. Please wait a minute and try again.")
		return false
	}
	return true
}

func (s *Server) sentPage(c *gin.Context) {
	s.accountPage(c, http.StatusOK, "portal_sent", "Check your email", gin.H{"Message": sentMessage}, "")
}

var linkHeadings = map[members.LinkPurpose]string{
	members.LinkSignup: "Confirm your email and choose a password",
	members.LinkClaim:  "Claim your account: choose a password",
	members.LinkReset:  "Choose a new password",
}

// portalVerifyPage shows the form of an emailed link; it does not use the
// link (mail scanners open links), the form's POST does.
func (s *Server) portalVerifyPage(c *gin.Context) {
	token := c.Query("token")
	info, err := s.deps.Members.Link(c.Request.Context(), token)
	if err != nil {
		status, msg := s.accountRefusal(c, err)
		s.accountPage(c, status, "portal_verify", "This link cannot be used", gin.H{"Dead": true}, msg)
		return
	}
	s.accountPage(c, http.StatusOK, "portal_verify", linkHeadings[info.Purpose], gin.H{"Token": token, "Info": info}, "")
}

func (s *Server) portalVerify(c *gin.Context) {
	token := c.PostForm("token")
	refuse := func(status int, msg string) {
		data := gin.H{"Token": token}
		title := "Choose a password"
		if info, err := s.deps.Members.Link(c.Request.Context(), token); err == nil {
			data["Info"], title = info, linkHeadings[info.Purpose]
		} else {
			data["Dead"], title = true, "This link cannot be used"
		}
		s.accountPage(c, status, "portal_verify", title, data, msg)
	}
	if !checkLoginCSRF(c) {
		refuse(http.StatusForbidden, "The form expired. Please try again.")
		return
	}
	if c.PostForm("password") != c.PostForm("password_again") {
		refuse(http.StatusBadRequest, s.friendly(c, validation.New("password_again", "must repeat the password")))
		return
	}
	if wait, ok := s.loginLimits.allow("member:" + c.ClientIP()); !ok {
		retryAfter(c, wait)
		refuse(http.StatusTooManyRequests, "Too many attempts from here. Please wait a minute and try again.")
		return
	}
	r, err := s.deps.Members.UseLink(c.Request.Context(), token, c.PostForm("password"))
	if err != nil {
		refuse(s.accountRefusal(c, err))
		return
	}
	msg := "Your password is set. Sign in with " + r.Email + "."
	if r.Created {
		msg = "Welcome! Your card number is " + r.CardNumber + ". Sign in with " + r.Email + "."
	}
	clearCookie(c, portalCookie, "/portal") // any session of the account has ended
	okBack(c, "/portal/login?email="+url.QueryEscape(r.Email), msg)
}

// portalLogoutEverywhere ends every session of the member, this one too.
func (s *Server) portalLogoutEverywhere(c *gin.Context) {
	if err := s.deps.Members.EndAllSessions(c.Request.Context(), me(c)); err != nil {
		s.failBack(c, "/portal/consent", err)
		return
	}
	clearCookie(c, portalCookie, "/portal")
	okBack(c, "/portal/login", "You are signed out everywhere.")
}

// portalSetPIN sets or changes the PIN that pays at partners' tills.
func (s *Server) portalSetPIN(c *gin.Context) {
	pin := strings.TrimSpace(c.PostForm("pin"))
	if pin != strings.TrimSpace(c.PostForm("pin_again")) {
		s.failBack(c, "/portal/redeem", validation.New("pin_again", "must repeat the PIN"))
		return
	}
	if err := s.deps.Consent.SetPIN(c.Request.Context(), me(c), pin); err != nil {
		s.failBack(c, "/portal/redeem", err)
		return
	}
	okBack(c, "/portal/redeem", "Your PIN is set. Give it at a partner's till to pay with points.")
}
