package web

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

const (
	ctxPartnerPrincipal = "auth.partner"
	ctxStaffPrincipal   = "auth.staff"
	authRealm           = "coalition-hub"
)

// partnerPrincipal returns the authenticated partner client of the request
// (set by partnerAuth). Handlers behind partnerAuth may rely on ok.
func partnerPrincipal(c *gin.Context) (access.Principal, bool) {
	v, ok := c.Get(ctxPartnerPrincipal)
	p, _ := v.(access.Principal)
	return p, ok
}

// staffPrincipal returns the authenticated staff member (set by staffAuth).
func staffPrincipal(c *gin.Context) (access.StaffPrincipal, bool) {
	v, ok := c.Get(ctxStaffPrincipal)
	p, _ := v.(access.StaffPrincipal)
	return p, ok
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// unauthorized answers 401 with an RFC 6750 challenge. A request without
// credentials gets no error code in the challenge; a bad token gets
// invalid_token.
func (s *Server) unauthorized(c *gin.Context, hadToken bool, detail string) {
	challenge := `Bearer realm="` + authRealm + `"`
	err := errAuthRequired
	if hadToken {
		challenge += `, error="invalid_token", error_description="the access token is invalid, expired or revoked"`
		err = errTokenRefused
	}
	if detail != "" {
		err = withDetail(err, detail)
	}
	c.Header("WWW-Authenticate", challenge)
	fail(c, s.deps.Log, err)
}

// authenticate verifies the bearer token with verify and stores the
// principal; it answers 401 itself for a missing or bad token.
func authenticate[P any](s *Server, c *gin.Context, key string, verify func(*gin.Context, string) (P, error)) (P, bool) {
	var zero P
	raw, ok := bearerToken(c)
	if !ok {
		s.unauthorized(c, false, "send Authorization: Bearer <access token>")
		return zero, false
	}
	p, err := verify(c, raw)
	if errors.Is(err, access.ErrInvalidToken) {
		s.deps.Log.InfoContext(c.Request.Context(), "token refused", "reason", err, "request_id", requestID(c))
		s.unauthorized(c, true, "")
		return zero, false
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return zero, false
	}
	c.Set(key, p)
	return p, true
}

// partnerAuth authenticates a partner API request by its access token and
// applies the client's rate limit (429 with Retry-After when exceeded).
func (s *Server) partnerAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := authenticate(s, c, ctxPartnerPrincipal, func(c *gin.Context, raw string) (access.Principal, error) {
			return s.deps.Access.VerifyAccessToken(c.Request.Context(), raw)
		})
		if !ok {
			return
		}
		if wait, allowed := s.clientLimits.allow(p.ClientID); !allowed {
			s.tooManyRequests(c, wait)
			return
		}
		c.Next()
	}
}

// requireScope refuses (403 insufficient_scope) a partner request whose token
// lacks scope. It must run after partnerAuth.
func (s *Server) requireScope(scope access.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := partnerPrincipal(c)
		if ok && p.Has(scope) {
			c.Next()
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="`+authRealm+`", error="insufficient_scope", scope="`+string(scope)+`"`)
		fail(c, s.deps.Log, withDetail(errInsufficientScope, "this operation needs the scope "+string(scope)))
	}
}

// staffAuth authenticates an admin API request by its staff token.
func (s *Server) staffAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, ok := authenticate(s, c, ctxStaffPrincipal, func(c *gin.Context, raw string) (access.StaffPrincipal, error) {
			return s.deps.Access.VerifyStaffToken(c.Request.Context(), raw)
		}); ok {
			c.Next()
		}
	}
}

// requireRole refuses (403 forbidden) a staff request whose role is not one
// of roles. It must run after staffAuth.
func (s *Server) requireRole(roles ...access.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := staffPrincipal(c)
		if ok {
			for _, r := range roles {
				if p.Role == r {
					c.Next()
					return
				}
			}
		}
		fail(c, s.deps.Log, withDetail(errForbidden, "your role may not do this"))
	}
}

// tooManyRequests answers 429 rate_limited with Retry-After set to wait.
func (s *Server) tooManyRequests(c *gin.Context, wait time.Duration) {
	fail(c, s.deps.Log, &waitError{withDetail(errRateLimited, "slow down and retry after the number of seconds in Retry-After"), wait})
}

// keyedLimiter is a token bucket per key (client id, or client IP for
// unauthenticated endpoints). Limits are per process: with N API processes a
// client gets up to N times the rate; a shared (Redis) limiter is the step
// after that.
type keyedLimiter struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	m     map[string]*rate.Limiter
}

func newKeyedLimiter(r rate.Limit, burst int) *keyedLimiter {
	return &keyedLimiter{rate: r, burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes one token for key; when none is left it reports how long until
// one is.
func (l *keyedLimiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= 100000 { // bound memory against key floods; buckets refill anyway
			clear(l.m)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
