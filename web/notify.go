package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/members"
)

// Notification mail preferences and the change of sign-in email
// (members/notify.go, members/email.go): the unsubscribe link of a mail,
// which works without signing in; the member's choice of notification kinds;
// and the change of email, applied only once the link sent to the new
// address is used. Opening a link (GET) never changes anything, so mail
// scanners that fetch links do no harm: the page's form (POST) does.

// ---- member API

type unsubscribeJSON struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Subscribed  bool   `json:"subscribed"`
}

// meUnsubscribe turns off the kind of notification mail a signed
// unsubscribe link names; no sign-in. Using it again changes nothing.
func (s *Server) meUnsubscribe(c *gin.Context) {
	var req struct {
		Token string `json:"token"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	u, err := s.deps.Members.Unsubscribe(c.Request.Context(), req.Token)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, unsubscribeJSON{Kind: string(u.Kind), Description: u.Kind.Label(), Subscribed: false})
}

type notificationJSON struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Marketing   bool   `json:"marketing"`
	Enabled     bool   `json:"enabled"`
}

func (s *Server) notificationList(c *gin.Context) ([]notificationJSON, bool) {
	on, err := s.deps.Members.Notifications(c.Request.Context(), me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return nil, false
	}
	out := make([]notificationJSON, 0, len(members.NoticeKinds))
	for _, k := range members.NoticeKinds {
		out = append(out, notificationJSON{Kind: string(k), Description: k.Label(), Marketing: k.Marketing(), Enabled: on[k]})
	}
	return out, true
}

// meNotifications lists the kinds of notification mail and whether the
// member gets each (a marketing kind also needs marketing consent).
func (s *Server) meNotifications(c *gin.Context) {
	if out, ok := s.notificationList(c); ok {
		c.JSON(http.StatusOK, gin.H{"data": out})
	}
}

// meSetNotifications turns kinds of notification mail on or off: a JSON
// object of kind to boolean. Every kind is checked before any is changed.
func (s *Server) meSetNotifications(c *gin.Context) {
	var req map[string]bool
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	kinds := make(map[members.NoticeKind]bool, len(req))
	for k, on := range req {
		kinds[members.NoticeKind(k)] = on
	}
	if err := s.deps.Members.SetNotifications(c.Request.Context(), me(c), kinds); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if out, ok := s.notificationList(c); ok {
		c.JSON(http.StatusOK, gin.H{"data": out})
	}
}

// meChangeEmail asks to change the sign-in email: a link goes to the new
// address, a notice to the old one; nothing changes until the link is used.
func (s *Server) meChangeEmail(c *gin.Context) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := s.deps.Members.RequestEmailChange(c.Request.Context(), me(c), req.Password, req.Email); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusAccepted, sentJSON{Status: "accepted",
		Message: "A link is on its way to the new address. Your sign-in email changes when it is opened and confirmed."})
}

// meVerifyEmail uses a change-of-email link; no sign-in (the link proves
// the new mailbox).
func (s *Server) meVerifyEmail(c *gin.Context) {
	var req struct {
		Token string `json:"token"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if wait, ok := s.loginLimits.allow("member:" + c.ClientIP()); !ok {
		s.tooManyRequests(c, wait)
		return
	}
	r, err := s.deps.Members.ConfirmEmailChange(c.Request.Context(), req.Token)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"member_id": r.MemberID, "email": r.Email})
}

// ---- portal pages

// portalUnsubscribePage asks to confirm an unsubscribe link; it changes
// nothing.
func (s *Server) portalUnsubscribePage(c *gin.Context) {
	token := c.Query("token")
	u, err := s.deps.Members.ParseUnsubscribe(token)
	if err != nil {
		status, msg := s.accountRefusal(c, err)
		s.accountPage(c, status, "portal_unsubscribe", "This link cannot be used", gin.H{"Dead": true}, msg)
		return
	}
	s.accountPage(c, http.StatusOK, "portal_unsubscribe", "Unsubscribe", gin.H{"Token": token, "Label": u.Kind.Label()}, "")
}

// portalUnsubscribe turns the kind off. The form carries the signed-out
// pages' CSRF token; the link's signature is what authorises it. A mail
// client's one-click unsubscribe (RFC 8058: a POST of
// "List-Unsubscribe=One-Click" to the link of the List-Unsubscribe header)
// has no form token and needs none: the token in the link is the
// authorisation, and all it can do is stop one kind of mail.
func (s *Server) portalUnsubscribe(c *gin.Context) {
	if c.PostForm("List-Unsubscribe") == "One-Click" {
		if _, err := s.deps.Members.Unsubscribe(c.Request.Context(), c.Query("token")); err != nil {
			fail(c, s.deps.Log, err)
			return
		}
		c.String(http.StatusOK, "Unsubscribed.\n")
		return
	}
	token := c.PostForm("token")
	if !checkLoginCSRF(c) {
		s.accountPage(c, http.StatusForbidden, "portal_unsubscribe", "Unsubscribe", gin.H{"Token": token}, "The form expired. Please try again.")
		return
	}
	u, err := s.deps.Members.Unsubscribe(c.Request.Context(), token)
	if err != nil {
		status, msg := s.accountRefusal(c, err)
		s.accountPage(c, status, "portal_unsubscribe", "This link cannot be used", gin.H{"Dead": true}, msg)
		return
	}
	s.accountPage(c, http.StatusOK, "portal_unsubscribe", "You are unsubscribed", gin.H{"Done": true, "Label": u.Kind.Label()}, "")
}

// portalVerifyEmailPage asks to confirm a change-of-email link; it does not
// use it.
func (s *Server) portalVerifyEmailPage(c *gin.Context) {
	token := c.Query("token")
	info, err := s.deps.Members.EmailChangeLink(c.Request.Context(), token)
	if err != nil {
		status, msg := s.accountRefusal(c, err)
		s.accountPage(c, status, "portal_verify_email", "This link cannot be used", gin.H{"Dead": true}, msg)
		return
	}
	s.accountPage(c, http.StatusOK, "portal_verify_email", "Confirm your new email", gin.H{"Token": token, "Info": info}, "")
}

func (s *Server) portalVerifyEmail(c *gin.Context) {
	token := c.PostForm("token")
	refuse := func(status int, msg string) {
		data, title := gin.H{"Token": token}, "Confirm your new email"
		if info, err := s.deps.Members.EmailChangeLink(c.Request.Context(), token); err == nil {
			data["Info"] = info
		} else {
			data["Dead"], title = true, "This link cannot be used"
		}
		s.accountPage(c, status, "portal_verify_email", title, data, msg)
	}
	if !checkLoginCSRF(c) {
		refuse(http.StatusForbidden, "The form expired. Please try again.")
		return
	}
	if wait, ok := s.loginLimits.allow("member:" + c.ClientIP()); !ok {
		retryAfter(c, wait)
		refuse(http.StatusTooManyRequests, "Too many attempts from here. Please wait a minute and try again.")
		return
	}
	r, err := s.deps.Members.ConfirmEmailChange(c.Request.Context(), token)
	if err != nil {
		refuse(s.accountRefusal(c, err))
		return
	}
	okBack(c, "/portal/login", "Your sign-in email is now "+r.Email+".")
}

// portalChangeEmail is the profile page's change-of-email form.
func (s *Server) portalChangeEmail(c *gin.Context) {
	if err := s.deps.Members.RequestEmailChange(c.Request.Context(), me(c), c.PostForm("password"), c.PostForm("email")); err != nil {
		s.failBack(c, "/portal/profile", err)
		return
	}
	okBack(c, "/portal/profile", "A link is on its way to "+c.PostForm("email")+". Your sign-in email changes when you open it and confirm.")
}

// portalSetNotifications saves the notification checkboxes of the privacy
// page: a kind whose box is unticked is turned off.
func (s *Server) portalSetNotifications(c *gin.Context) {
	kinds := map[members.NoticeKind]bool{}
	for _, k := range members.NoticeKinds {
		kinds[k] = c.PostForm(string(k)) == "yes"
	}
	if err := s.deps.Members.SetNotifications(c.Request.Context(), me(c), kinds); err != nil {
		s.failBack(c, "/portal/consent", err)
		return
	}
	okBack(c, "/portal/consent", "Your email choices are saved.")
}
