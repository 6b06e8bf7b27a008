package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/ledger"
)

// The browser surface: the member portal (/portal) and the operator console
// (/console), server-rendered with html/template. This file holds what both
// share: templates, the session cookies, CSRF, security headers, flash
// messages and the error page. A session cookie holds the hub's own signed
// token (a member token or a staff token), HttpOnly, SameSite=Lax, scoped to
// the area's path; the token names a session row in PostgreSQL that every
// request checks, so any number of hub processes serve the same sessions and
// a sign-out ends one in all of them at once.

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/*
var staticFiles embed.FS

const (
	portalCookie    = "hub_portal"
	consoleCookie   = "hub_console"
	loginCSRFCookie = "hub_login_csrf"
	flashCookie     = "hub_flash"
	csrfField       = "csrf"

	// contentSecurityPolicy allows nothing but the hub's own origin: no
	// inline script or style, no framing, forms post only to the hub.
	contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// uiPage is what every template gets. Data holds the page's own values.
type uiPage struct {
	Title  string
	Area   string // "portal" or "console"
	Nav    string // key of the active navigation item
	CSRF   string
	User   string
	Role   string
	Flash  string
	Error  string
	Fields []string // field errors of a refused form, "field: message"
	Data   gin.H
}

// pages are the parsed templates, one set per page file, each with the
// shared layout. They are immutable after start-up.
var pages = mustParsePages()

func mustParsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t := template.Must(template.New(base).Funcs(uiFuncs).ParseFS(templateFiles, "templates/layout.html", n))
		out[base] = t
	}
	return out
}

var uiFuncs = template.FuncMap{
	"points": func(v any) string {
		switch n := v.(type) {
		case int64:
			return formatPoints(n)
		case ledger.Points:
			return formatPoints(int64(n))
		case int:
			return formatPoints(int64(n))
		case *int64:
			if n == nil {
				return "—"
			}
			return formatPoints(*n)
		}
		return fmt.Sprint(v)
	},
	"signed": func(n int64) string {
		if n > 0 {
			return "+" + formatPoints(n)
		}
		return formatPoints(n)
	},
	"money": func(minor int64, currency string) string {
		if currency == "" {
			return formatPoints(minor)
		}
		return formatMoney(minor, currency)
	},
	"when": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			return readableTime(t)
		case *time.Time:
			if t == nil {
				return "—"
			}
			return readableTime(*t)
		}
		return "—"
	},
	"day": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2 Jan 2006")
		case *time.Time:
			if t == nil || t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2 Jan 2006")
		}
		return "—"
	},
	"dash": func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "—"
		}
		return s
	},
	"human": func(s any) string { return strings.ReplaceAll(fmt.Sprint(s), "_", " ") },
	"pct":   func(p int) string { return fmt.Sprintf("%d%%", p) },
	// bytes is a file size: B, KiB or MiB with one decimal.
	"bytes": func(n int64) string {
		switch {
		case n < 1<<10:
			return fmt.Sprintf("%d B", n)
		case n < 1<<20:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	},
}

func readableTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

// uiHeaders sets the security headers of every page and static file.
func uiHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.Contains(c.Request.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		c.Next()
	}
}

// serveStatic serves web/static (CSS and the little JavaScript) under
// /portal/static and /console/static, so the pages need no other prefix.
func serveStatic(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	b, err := staticFiles.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		c.Status(http.StatusNotFound)
		return
	}
	ctype := "text/plain; charset=utf-8"
	switch {
	case strings.HasSuffix(name, ".css"):
		ctype = "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		ctype = "text/javascript; charset=utf-8"
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, ctype, b)
}

// secureRequest reports whether the browser reached us over HTTPS (directly
// or through a trusted proxy that says so: forwardedFromTrusted drops the
// header of any other peer); cookies are then Secure.
func secureRequest(c *gin.Context) bool {
	return c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https")
}

func setCookie(c *gin.Context, name, value, path string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: secureRequest(c), SameSite: http.SameSiteLaxMode})
}

func clearCookie(c *gin.Context, name, path string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: secureRequest(c), SameSite: http.SameSiteLaxMode})
}

// csrfToken binds a form token to the session: a hash of the session token,
// which the page can print but another site cannot compute (the session
// cookie is HttpOnly and never leaves the hub). No server key is needed, so
// the check holds across processes and restarts.
func csrfToken(session string) string {
	sum := sha256.Sum256([]byte("hub-ui-csrf-v1\x00" + session))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginCSRF returns the double-submit token of a sign-in form, setting its
// cookie when the browser has none yet (there is no session to bind to).
func loginCSRF(c *gin.Context, path string) string {
	if v, err := c.Cookie(loginCSRFCookie); err == nil && len(v) >= 20 {
		return v
	}
	v := randomString(24)
	setCookie(c, loginCSRFCookie, v, path, time.Hour)
	return v
}

// checkLoginCSRF compares the form's token with the sign-in cookie.
func checkLoginCSRF(c *gin.Context) bool {
	v, err := c.Cookie(loginCSRFCookie)
	return err == nil && v != "" && hmac.Equal([]byte(v), []byte(c.PostForm(csrfField)))
}

// requireCSRF refuses (403) a POST whose csrf field does not match the
// session's token. It runs after the area's session middleware.
func (s *Server) requireCSRF(area string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Method != http.MethodPost {
			c.Next()
			return
		}
		want := c.GetString("ui.csrf")
		if want == "" || !hmac.Equal([]byte(want), []byte(c.PostForm(csrfField))) {
			s.renderStatus(c, http.StatusForbidden, "error", uiPage{Title: "Request refused", Area: area,
				Error: "This form has expired or did not come from this site. Go back, reload the page and try again."})
			c.Abort()
			return
		}
		c.Next()
	}
}

// setFlash keeps a one-shot message for the page after a redirect.
func setFlash(c *gin.Context, kind, msg string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + ":" + msg), Path: "/",
		MaxAge: 60, HttpOnly: true, Secure: secureRequest(c), SameSite: http.SameSiteLaxMode})
}

func takeFlash(c *gin.Context, p *uiPage) {
	v, err := c.Cookie(flashCookie)
	if err != nil || v == "" {
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: secureRequest(c), SameSite: http.SameSiteLaxMode})
	kind, msg, _ := strings.Cut(v, ":")
	switch kind {
	case "ok":
		p.Flash = msg
	case "err":
		p.Error = msg
	}
}

// friendly turns an error into a sentence for a person: the problem title
// of a known domain error with its field errors, or a generic apology with
// the request id for anything unexpected (which is logged, never shown).
func (s *Server) friendly(c *gin.Context, err error) string {
	p, known := problemFor(err)
	if !known {
		s.deps.Log.ErrorContext(c.Request.Context(), "page action failed", "err", err, "route", c.FullPath(),
			"request_id", requestID(c))
		return "Something went wrong on our side. Please try again; if it persists, quote reference " + requestID(c) + "."
	}
	msg := p.Title + "."
	if len(p.Errors) > 0 {
		parts := make([]string, len(p.Errors))
		for i, f := range p.Errors {
			parts[i] = strings.ReplaceAll(f.Field, "_", " ") + " " + f.Message
		}
		msg += " Please check: " + strings.Join(parts, "; ") + "."
	}
	return msg
}

// failBack redirects to the page the form came from with err as a message.
func (s *Server) failBack(c *gin.Context, to string, err error) {
	setFlash(c, "err", s.friendly(c, err))
	c.Redirect(http.StatusSeeOther, to)
}

func okBack(c *gin.Context, to, msg string) {
	setFlash(c, "ok", msg)
	c.Redirect(http.StatusSeeOther, to)
}

// render writes page name with status 200.
func (s *Server) render(c *gin.Context, name string, p uiPage) {
	s.renderStatus(c, http.StatusOK, name, p)
}

func (s *Server) renderStatus(c *gin.Context, status int, name string, p uiPage) {
	t, ok := pages[name]
	if !ok {
		s.deps.Log.ErrorContext(c.Request.Context(), "unknown page template", "page", name)
		c.Status(http.StatusInternalServerError)
		return
	}
	if p.CSRF == "" {
		p.CSRF = c.GetString("ui.csrf")
	}
	if p.User == "" {
		p.User = c.GetString("ui.user")
	}
	if p.Role == "" {
		p.Role = c.GetString("ui.role")
	}
	if status == http.StatusOK {
		takeFlash(c, &p)
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.deps.Log.ErrorContext(c.Request.Context(), "render page", "page", name, "err", err, "request_id", requestID(c))
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("The page could not be shown; reference "+requestID(c)))
		return
	}
	c.Data(status, "text/html; charset=utf-8", []byte(buf.String()))
}

// pageError renders a full error page for a GET that could not load its data.
func (s *Server) pageError(c *gin.Context, area string, err error) {
	status := http.StatusInternalServerError
	if p, known := problemFor(err); known {
		status = p.Status
	}
	s.renderStatus(c, status, "error", uiPage{Title: "Not available", Area: area, Error: s.friendly(c, err)})
}

// staffActor is how console actions are attributed in domain records.
func staffActor(p access.StaffPrincipal) string { return p.Actor() }

// Clock returns the current time; Deps.Now is one (nil: time.Now).
type Clock func() time.Time
