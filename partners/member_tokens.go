package partners

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AudienceMember is the audience of member (portal and app) tokens.
const AudienceMember = "coalition-hub-member"

// MemberTokenTTL is how long a member token lives.
const MemberTokenTTL = time.Hour

// IssueMemberToken signs a token for a member who signed in to the portal or
// an app. It uses the hub's signing keys with its own audience, so a member
// token is refused by the partner and admin APIs and the other way round.
func (s *Service) IssueMemberToken(ctx context.Context, memberID int64) (Token, error) {
	now := s.now()
	claims := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.opts.Issuer, Subject: "member:" + strconv.FormatInt(memberID, 10),
		Audience: jwt.ClaimStrings{AudienceMember}, IssuedAt: jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(MemberTokenTTL)), ID: randomToken(16),
	}}
	signed, kid, err := s.sign(ctx, claims)
	if err != nil {
		return Token{}, fmt.Errorf("issue member token: %w", err)
	}
	return Token{AccessToken: signed, ExpiresIn: MemberTokenTTL, KeyID: kid}, nil
}

// VerifyMemberToken checks a member token and returns the member id.
// Any defect is ErrInvalidToken. Whether the member may still act (closed,
// suspended) is the caller's check.
func (s *Service) VerifyMemberToken(ctx context.Context, raw string) (int64, error) {
	claims, err := s.parse(ctx, raw, AudienceMember)
	if err != nil {
		return 0, err
	}
	var id int64
	if _, err := fmt.Sscanf(claims.Subject, "member:%d", &id); err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: bad member subject", ErrInvalidToken)
	}
	return id, nil
}
