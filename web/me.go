package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// The member API behind the portal and apps: sign in, profile, balance,
// history, redemption codes for paying with points at a till, PIN.

const memberPrincipalKey = "member_principal"

// memberAuth requires a member bearer token from /v1/me/login whose session
// is still open and an active member behind it.
func (s *Server) memberAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, ok := bearerToken(c)
		if !ok {
			s.unauthorized(c, false, "a member bearer token is required")
			return
		}
		p, _, err := s.memberSession(c.Request.Context(), raw)
		if refusedSession(err) {
			s.deps.Log.InfoContext(c.Request.Context(), "member token refused", "reason", err, "request_id", requestID(c))
			s.unauthorized(c, true, "the token is invalid or expired, its session ended, or the member account is not active")
			return
		}
		if err != nil {
			fail(c, s.deps.Log, err)
			return
		}
		c.Set(memberPrincipalKey, p)
		c.Next()
	}
}

// memberSession checks a member token (signature and claims), the session it
// names (one read, so a sign-out in any process is seen at once) and the
// member behind it, who must be allowed to transact.
func (s *Server) memberSession(ctx context.Context, raw string) (members.Principal, members.Member, error) {
	p, err := s.deps.Access.VerifyMemberToken(ctx, raw)
	if err != nil {
		return members.Principal{}, members.Member{}, err
	}
	if err := s.deps.Members.CheckSession(ctx, p.MemberID, p.SessionID); err != nil {
		return members.Principal{}, members.Member{}, err
	}
	m, err := s.deps.Members.Get(ctx, p.MemberID)
	if err != nil {
		return members.Principal{}, members.Member{}, err
	}
	if err := members.CanTransact(m); err != nil {
		return members.Principal{}, members.Member{}, err
	}
	return p, m, nil
}

// refusedSession reports whether err refuses a member's token or session
// (sign in again), as opposed to a failure to check it (answered as such).
func refusedSession(err error) bool {
	return errors.Is(err, access.ErrInvalidToken) || errors.Is(err, members.ErrSessionEnded) ||
		errors.Is(err, members.ErrMemberInactive) || errors.Is(err, members.ErrNotFound)
}

// sessionInfo describes the client of a sign-in, kept with its session.
func sessionInfo(c *gin.Context) members.SessionInfo {
	return members.SessionInfo{UserAgent: c.Request.UserAgent(), IP: c.ClientIP()}
}

// memberPrincipal is the member behind a request that passed memberAuth.
func memberPrincipal(c *gin.Context) (members.Principal, bool) {
	p, ok := c.Get(memberPrincipalKey)
	if !ok {
		return members.Principal{}, false
	}
	mp, ok := p.(members.Principal)
	return mp, ok
}

func me(c *gin.Context) int64 {
	p, _ := memberPrincipal(c)
	return p.MemberID
}

func (s *Server) memberLogin(c *gin.Context) {
	var req struct {
		Email    string `json:"email"`
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
	ctx := c.Request.Context()
	m, sess, err := s.deps.Members.SignIn(ctx, req.Email, req.Password, sessionInfo(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	tok, err := s.deps.Access.IssueMemberToken(ctx, sess)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"access_token": tok.AccessToken, "token_type": "Bearer",
		"expires_in": int(tok.ExpiresIn.Seconds()), "member_id": m.ID})
}

// memberLogout ends the session of the bearer token: the token is refused
// from the next request on, in every hub process.
func (s *Server) memberLogout(c *gin.Context) {
	p, _ := memberPrincipal(c)
	if err := s.deps.Members.EndSession(c.Request.Context(), p.MemberID, p.SessionID); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// meChangePassword changes the member's password given the current one and
// ends every other session of the member (this one stays signed in).
func (s *Server) meChangePassword(c *gin.Context) {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	p, _ := memberPrincipal(c)
	if err := s.deps.Members.ChangePassword(c.Request.Context(), p.MemberID, req.CurrentPassword, req.NewPassword, p.SessionID); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type meJSON struct {
	ID               int64                `json:"id"`
	Status           string               `json:"status"`
	CardNumber       string               `json:"card_number"`
	Profile          members.Profile      `json:"profile"`
	Identifiers      []members.Identifier `json:"identifiers"`
	MarketingConsent bool                 `json:"marketing_consent"`
	Balance          balanceJSON          `json:"balance"`
}

func (s *Server) meProfile(c *gin.Context) {
	m, err := s.deps.Members.Get(c.Request.Context(), me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	bal, err := s.deps.Ledger.Balance(c.Request.Context(), m.ID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ids := m.Identifiers
	if ids == nil {
		ids = []members.Identifier{}
	}
	c.JSON(http.StatusOK, meJSON{ID: m.ID, Status: string(m.Status), CardNumber: m.CardNumber, Profile: m.Profile,
		Identifiers: ids, MarketingConsent: m.MarketingConsent, Balance: balanceOut(bal)})
}

func (s *Server) meBalance(c *gin.Context) {
	bal, err := s.deps.Ledger.Balance(c.Request.Context(), me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, balanceOut(bal))
}

// memberTransactionJSON is a ledger transaction as its member sees it: with
// the partner it happened at, without internal accounts.
type memberTransactionJSON struct {
	ID           int64  `json:"id"`
	Type         string `json:"type"`
	Points       int64  `json:"points"`
	PartnerID    int64  `json:"partner_id,omitempty"`
	OccurredAt   string `json:"occurred_at"`
	PostedAt     string `json:"posted_at"`
	Reason       string `json:"reason,omitempty"`
	BalanceAfter int64  `json:"balance_after"`
}

// meTransactions is the member's history, newest first, filterable by type
// and time like the partner list.
func (s *Server) meTransactions(c *gin.Context) {
	var v validation.Error
	f := ledger.Filter{MemberID: me(c), Cursor: c.Query("cursor")}
	for _, t := range c.QueryArray("type") {
		f.Types = append(f.Types, ledger.TxType(strings.TrimSpace(t)))
	}
	f.From = queryTime(c, "from", &v)
	f.To = queryTime(c, "to", &v)
	f.Limit = queryLimit(c, 50, 200, &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Ledger.List(c.Request.Context(), f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]memberTransactionJSON, len(list))
	for i, t := range list {
		points := int64(t.Points)
		for _, e := range t.Entries {
			if e.Kind == ledger.KindMember && e.OwnerID == f.MemberID {
				points = int64(e.Points) // signed, as it moved this member's balance
			}
		}
		out[i] = memberTransactionJSON{ID: t.ID, Type: string(t.Type), Points: points, PartnerID: t.PartnerID,
			OccurredAt: t.OccurredAt.UTC().Format(timeFormat), PostedAt: t.PostedAt.UTC().Format(timeFormat),
			Reason: t.Reason, BalanceAfter: int64(t.BalanceAfter)}
	}
	c.JSON(http.StatusOK, gin.H{"data": out, "next_cursor": next})
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

// meRedemptionCode issues a one-time code to show at a partner's till.
func (s *Server) meRedemptionCode(c *gin.Context) {
	rc, err := s.deps.Consent.IssueCode(c.Request.Context(), me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, rc)
}

func (s *Server) meSetPIN(c *gin.Context) {
	var req struct {
		PIN string `json:"pin"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := s.deps.Consent.SetPIN(c.Request.Context(), me(c), req.PIN); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
