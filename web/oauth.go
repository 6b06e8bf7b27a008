package web

import (
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/coalitionhub/hub/access"
	"github.com/gin-gonic/gin"
)

const assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// tokenResponse is an RFC 6749 §5.1 access token response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

func oauthFail(c *gin.Context, status int, code, desc string) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.AbortWithStatusJSON(status, oauthError{Error: code, ErrorDescription: desc})
}

// oauthToken is POST /oauth/token: the client-credentials grant, with the
// client authenticated by HTTP Basic (client_secret_basic) or by a JWT
// assertion signed with its registered key (private_key_jwt). Errors follow
// RFC 6749: invalid_request 400, invalid_client 401, invalid_scope 400,
// unsupported_grant_type 400.
func (s *Server) oauthToken(c *gin.Context) {
	ctx := c.Request.Context()
	mt, _, _ := mime.ParseMediaType(c.ContentType())
	if mt != "application/x-www-form-urlencoded" {
		oauthFail(c, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	if err := c.Request.ParseForm(); err != nil {
		oauthFail(c, http.StatusBadRequest, "invalid_request", "the form could not be parsed")
		return
	}
	form := c.Request.PostForm
	for _, k := range []string{"grant_type", "scope", "client_id", "client_assertion", "client_assertion_type"} {
		if len(form[k]) > 1 {
			oauthFail(c, http.StatusBadRequest, "invalid_request", k+" is repeated")
			return
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		oauthFail(c, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		oauthFail(c, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}

	user, pass, basic := c.Request.BasicAuth()
	assertion := form.Get("client_assertion")
	var client access.Client
	var err error
	switch {
	case basic && assertion != "":
		oauthFail(c, http.StatusBadRequest, "invalid_request", "use one client authentication method")
		return
	case basic:
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
		id, e1 := url.QueryUnescape(user)
		secret, e2 := url.QueryUnescape(pass)
		if e1 != nil || e2 != nil {
			err = access.ErrInvalidClient
			break
		}
		client, err = s.deps.Access.AuthenticateSecret(ctx, id, secret)
	case assertion != "":
		if form.Get("client_assertion_type") != assertionTypeJWTBearer {
			oauthFail(c, http.StatusBadRequest, "invalid_request", "client_assertion_type must be "+assertionTypeJWTBearer)
			return
		}
		client, err = s.deps.Access.AuthenticateAssertion(ctx, form.Get("client_id"), assertion, s.deps.Access.TokenURL())
	default:
		c.Header("WWW-Authenticate", `Basic realm="`+authRealm+`"`)
		oauthFail(c, http.StatusUnauthorized, "invalid_client",
			"authenticate with HTTP Basic (client_secret_basic) or a client assertion (private_key_jwt)")
		return
	}
	if errors.Is(err, access.ErrInvalidClient) {
		s.deps.Log.InfoContext(ctx, "client authentication failed", "reason", err, "request_id", requestID(c))
		if basic {
			c.Header("WWW-Authenticate", `Basic realm="`+authRealm+`"`)
		}
		oauthFail(c, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if err != nil {
		s.deps.Log.ErrorContext(ctx, "token request failed", "err", err, "request_id", requestID(c))
		oauthFail(c, http.StatusInternalServerError, "server_error", "quote request id "+requestID(c))
		return
	}
	if wait, ok := s.clientLimits.allow(client.ClientID); !ok {
		s.tooManyRequests(c, wait)
		return
	}
	tok, err := s.deps.Access.IssueToken(ctx, client, form.Get("scope"))
	if errors.Is(err, access.ErrInvalidScope) {
		oauthFail(c, http.StatusBadRequest, "invalid_scope", "the requested scope is unknown or not granted to this client")
		return
	}
	if err != nil {
		s.deps.Log.ErrorContext(ctx, "issuing token failed", "err", err, "request_id", requestID(c))
		oauthFail(c, http.StatusInternalServerError, "server_error", "quote request id "+requestID(c))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, tokenResponse{AccessToken: tok.AccessToken, TokenType: "Bearer",
		ExpiresIn: int(tok.ExpiresIn.Seconds()), Scope: access.JoinScopes(tok.Scopes)})
}

// jwks is GET /.well-known/jwks.json: the public keys that verify the hub's
// tokens, the active one and retired ones still within their overlap.
func (s *Server) jwks(c *gin.Context) {
	keys, err := s.deps.Access.JWKS(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=60")
	c.JSON(http.StatusOK, gin.H{"keys": keys})
}
