package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/partners"
)

// answer is one HTTP response as the sign-in tests look at it.
type answer struct {
	status int
	code   string // problem code, when the body is problem+json
	hdr    http.Header
	body   string
}

// rawDo sends one request with extra headers, follows no redirect, and
// decodes a problem's code.
func rawDo(t testing.TB, method, u string, hdr map[string]string, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, hdr: res.Header, body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		var p struct{ Code string }
		_ = json.Unmarshal(b, &p)
		a.code = p.Code
	}
	return a
}

func loginJSON(t testing.TB, base, path, email, password, xff string) answer {
	t.Helper()
	hdr := map[string]string{}
	if xff != "" {
		hdr["X-Forwarded-For"] = xff
	}
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return rawDo(t, http.MethodPost, base+path, hdr, "application/json", string(b))
}

// retryAfter reads Retry-After in seconds (0 when absent or not a number).
func retryAfterOf(a answer) int {
	n, _ := strconv.Atoi(a.hdr.Get("Retry-After"))
	return n
}

// Without a trusted proxy, X-Forwarded-For names nobody: eight sign-ins
// with eight made-up client addresses share the connection's per-IP budget
// and the ones past it are 429. (gin trusts every proxy by default, which let
// each attempt pick a fresh budget.)
func TestLoginIgnoresForwardedForWithoutTrustedProxy(t *testing.T) {
	t.Parallel()
	e := newUIEnvWith(t, nil, func(d *Deps) { d.LoginRate, d.LoginBurst = 0.001, 5 })
	for _, path := range []string{"/v1/admin/login", "/v1/me/login"} {
		for i := range 8 {
			a := loginJSON(t, e.srv.URL, path, fmt.Sprintf("nobody%d@example.test", i), "wrong password!",
				fmt.Sprintf("198.51.100.%d", i+1))
			want, code := http.StatusUnauthorized, "invalid_credentials"
			if i >= 5 {
				want, code = http.StatusTooManyRequests, "rate_limited"
			}
			if a.status != want || a.code != code || (want == 429 && retryAfterOf(a) < 1) {
				t.Fatalf("%s attempt %d with its own X-Forwarded-For: %d %s (Retry-After %q); want %d %s",
					path, i+1, a.status, a.code, a.hdr.Get("Retry-After"), want, code)
			}
		}
	}
}

// Behind a configured proxy, the client address it forwards is the one that
// counts: each forwarded client has its own per-IP budget, and a client
// cannot escape its budget by prepending addresses of its own choosing.
func TestForwardedForFromTrustedProxyIsHonoured(t *testing.T) {
	t.Parallel()
	e := newUIEnvWith(t, nil, func(d *Deps) {
		d.LoginRate, d.LoginBurst = 0.001, 2
		d.TrustedProxies = []string{"127.0.0.1/32", "::1"}
	})
	n := 0
	attempt := func(xff string) answer {
		n++
		return loginJSON(t, e.srv.URL, "/v1/admin/login", fmt.Sprintf("nobody%d@example.test", n), "wrong password!", xff)
	}
	for i := range 2 {
		if a := attempt("203.0.113.7"); a.status != http.StatusUnauthorized {
			t.Fatalf("client 203.0.113.7 attempt %d: %d %s; want 401", i+1, a.status, a.code)
		}
	}
	if a := attempt("203.0.113.7"); a.status != http.StatusTooManyRequests || a.code != "rate_limited" {
		t.Fatalf("client 203.0.113.7 past its budget: %d %s; want 429 rate_limited", a.status, a.code)
	}
	if a := attempt("198.51.100.1, 203.0.113.7"); a.status != http.StatusTooManyRequests {
		t.Fatalf("client 203.0.113.7 behind a made-up address: %d %s; want 429", a.status, a.code)
	}
	if a := attempt("203.0.113.8"); a.status != http.StatusUnauthorized {
		t.Fatalf("another forwarded client: %d %s; want 401 (its own budget)", a.status, a.code)
	}
	if a := attempt(""); a.status != http.StatusUnauthorized {
		t.Fatalf("the proxy itself, nothing forwarded: %d %s; want 401 (its own budget)", a.status, a.code)
	}
}

// One account attacked from many addresses (each attempt through the
// trusted proxy with its own X-Forwarded-For, so no per-IP limit bites) is
// throttled per account, on every password sign-in: the admin API and the
// console for staff, /v1/me and the portal for members. Five failures, then
// 429 login_locked with a Retry-After of the throttle's interval, even with
// the right password; an unknown email alike; one interval later one attempt
// is allowed, and a success costs nothing.
func TestSignInThrottledPerAccountFromManyAddresses(t *testing.T) {
	t.Parallel()
	e := newUIEnvWith(t, nil, func(d *Deps) { d.TrustedProxies = []string{"127.0.0.1", "::1"} })
	air := e.partner("Sky Air", partners.SectorAirline)
	e.member("ada@example.test", air.ID, 0)
	e.staffUser("root@hub.test", access.RoleAdmin)
	interval := int(throttle.DefaultPolicy.Interval.Seconds())
	ip := 0
	nextIP := func() string { ip++; return fmt.Sprintf("10.%d.%d.%d", ip/65536, ip/256%256, ip%256) }

	jsonLogin := func(path string) func(email, password string) answer {
		return func(email, password string) answer { return loginJSON(t, e.srv.URL, path, email, password, nextIP()) }
	}
	formLogin := func(area string) func(email, password string) answer {
		return func(email, password string) answer {
			hdr := map[string]string{"X-Forwarded-For": nextIP(), "Cookie": loginCSRFCookie + "=" + strings.Repeat("c", 24)}
			form := url.Values{"csrf": {strings.Repeat("c", 24)}, "email": {email}, "password": {password}}
			a := rawDo(t, http.MethodPost, e.srv.URL+"/"+area+"/login", hdr, "application/x-www-form-urlencoded", form.Encode())
			switch {
			case a.status == http.StatusSeeOther:
				a.status, a.code = http.StatusOK, "" // signed in
			case a.status == http.StatusTooManyRequests:
				a.code = "login_locked"
			case a.status == http.StatusUnauthorized:
				a.code = "invalid_credentials"
			}
			return a
		}
	}
	for _, c := range []struct {
		name, email, unknown string
		login                func(email, password string) answer
	}{
		{"admin API", "root@hub.test", "ghost@hub.test", jsonLogin("/v1/admin/login")},
		{"console", "root@hub.test", "ghost@hub.test", formLogin("console")},
		{"member API", "ada@example.test", "ghost@example.test", jsonLogin("/v1/me/login")},
		{"portal", "ada@example.test", "ghost@example.test", formLogin("portal")},
	} {
		for _, email := range []string{c.email, c.unknown} {
			for i := range 8 {
				a := c.login(email, "wrong password!")
				want, code := http.StatusUnauthorized, "invalid_credentials"
				if i >= throttle.DefaultPolicy.Burst {
					want, code = http.StatusTooManyRequests, "login_locked"
				}
				if a.status != want || a.code != code || (want == 429 && retryAfterOf(a) != interval) {
					t.Fatalf("%s, %s, attempt %d from its own address: %d %s (Retry-After %q); want %d %s (Retry-After %d)",
						c.name, email, i+1, a.status, a.code, a.hdr.Get("Retry-After"), want, code, interval)
				}
			}
		}
		if a := c.login(c.email, uiPassword); a.status != http.StatusTooManyRequests || retryAfterOf(a) != interval {
			t.Fatalf("%s: right password while throttled: %d %s (Retry-After %q); want 429 login_locked", c.name,
				a.status, a.code, a.hdr.Get("Retry-After"))
		}
		e.clock.Add(throttle.DefaultPolicy.Interval)
		for i := range 2 {
			if a := c.login(c.email, uiPassword); a.status != http.StatusOK {
				t.Fatalf("%s: sign-in %d one interval later: %d %s %s; want it to succeed", c.name, i+1, a.status, a.code, a.body)
			}
		}
		e.clock.Add(time.Hour) // a clean budget for the next surface
	}
}

// Concurrent guesses against one account are each counted before any
// password is checked: of 20 arriving at once from 20 addresses, exactly the
// burst is answered 401 and the rest 429.
func TestConcurrentSignInGuessesAreEachCounted(t *testing.T) {
	t.Parallel()
	e := newUIEnvWith(t, nil, func(d *Deps) { d.TrustedProxies = []string{"127.0.0.1", "::1"} })
	air := e.partner("Sky Air", partners.SectorAirline)
	e.member("ada@example.test", air.ID, 0)
	e.staffUser("root@hub.test", access.RoleAdmin)
	for _, c := range []struct{ path, email string }{{"/v1/me/login", "ada@example.test"}, {"/v1/admin/login", "root@hub.test"}} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]int{}
		for i := range 20 {
			wg.Go(func() {
				a := loginJSON(t, e.srv.URL, c.path, c.email, "wrong password!", fmt.Sprintf("192.0.2.%d", i+1))
				mu.Lock()
				defer mu.Unlock()
				got[fmt.Sprintf("%d %s", a.status, a.code)]++
			})
		}
		wg.Wait()
		if got["401 invalid_credentials"] != throttle.DefaultPolicy.Burst || got["429 login_locked"] != 20-throttle.DefaultPolicy.Burst {
			t.Fatalf("%s: 20 concurrent wrong passwords: %v; want %d × 401 invalid_credentials and %d × 429 login_locked",
				c.path, got, throttle.DefaultPolicy.Burst, 20-throttle.DefaultPolicy.Burst)
		}
	}
}

// X-Forwarded-Proto: https makes the console's and portal's cookies Secure
// only when a trusted proxy sends it; from any other peer the header is
// ignored, so a client cannot pick the cookie attributes of a plain-HTTP hub.
func TestForwardedProtoOnlyFromTrustedProxy(t *testing.T) {
	t.Parallel()
	secure := func(a answer) bool {
		cookies := a.hdr.Values("Set-Cookie")
		if len(cookies) == 0 {
			t.Fatalf("GET /portal/login set no cookie: %d %s", a.status, a.body)
		}
		for _, c := range cookies {
			if !strings.Contains(c, "; Secure") {
				return false
			}
		}
		return true
	}
	https := map[string]string{"X-Forwarded-Proto": "https"}
	untrusted := newUIEnvWith(t, nil, nil)
	if a := rawDo(t, http.MethodGet, untrusted.srv.URL+"/portal/login", https, "", ""); secure(a) {
		t.Errorf("X-Forwarded-Proto from an untrusted peer made cookies Secure: %v", a.hdr.Values("Set-Cookie"))
	}
	trusted := newUIEnvWith(t, nil, func(d *Deps) { d.TrustedProxies = []string{"127.0.0.1/32", "::1"} })
	if a := rawDo(t, http.MethodGet, trusted.srv.URL+"/portal/login", https, "", ""); !secure(a) {
		t.Errorf("X-Forwarded-Proto from a trusted proxy left cookies without Secure: %v", a.hdr.Values("Set-Cookie"))
	}
	if a := rawDo(t, http.MethodGet, trusted.srv.URL+"/portal/login", nil, "", ""); secure(a) {
		t.Errorf("plain HTTP from the proxy without X-Forwarded-Proto made cookies Secure: %v", a.hdr.Values("Set-Cookie"))
	}
}
