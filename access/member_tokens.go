package access

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coalitionhub/hub/members"
)

// AudienceMember is the audience of member (portal and app) tokens.
const AudienceMember = "coalition-hub-member"

// IssueMemberToken signs a token for a member session (members.SignIn): it
// names the member (sub), the session (sid) and expires with the session. It
// uses the hub's signing keys with its own audience, so a member token is
// refused by the partner and admin APIs and the other way round.
func (s *Service) IssueMemberToken(ctx context.Context, sess members.Session) (Token, error) {
	if sess.MemberID <= 0 || sess.ID == "" {
		return Token{}, fmt.Errorf("issue member token: a session is required")
	}
	now := s.now()
	claims := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.opts.Issuer, Subject: "member:" + strconv.FormatInt(sess.MemberID, 10),
		Audience: jwt.ClaimStrings{AudienceMember}, IssuedAt: jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(sess.ExpiresAt), ID: randomToken(16),
	}, SessionID: sess.ID}
	signed, kid, err := s.sign(ctx, claims)
	if err != nil {
		return Token{}, fmt.Errorf("issue member token: %w", err)
	}
	return Token{AccessToken: signed, ExpiresIn: sess.ExpiresAt.Sub(now), KeyID: kid}, nil
}

// VerifyMemberToken checks a member token's signature and claims and returns
// the member and session it names. Any defect, including a token without a
// session, is ErrInvalidToken. Whether the session is still open
// (members.CheckSession) and the member may still act is the caller's check.
func (s *Service) VerifyMemberToken(ctx context.Context, raw string) (members.Principal, error) {
	claims, err := s.parse(ctx, raw, AudienceMember)
	if err != nil {
		return members.Principal{}, err
	}
	idText, ok := strings.CutPrefix(claims.Subject, "member:")
	id, perr := strconv.ParseInt(idText, 10, 64)
	if !ok || perr != nil || id <= 0 {
		return members.Principal{}, fmt.Errorf("%w: bad member subject", ErrInvalidToken)
	}
	if claims.SessionID == "" {
		return members.Principal{}, fmt.Errorf("%w: no session", ErrInvalidToken)
	}
	return members.Principal{MemberID: id, SessionID: claims.SessionID}, nil
}
