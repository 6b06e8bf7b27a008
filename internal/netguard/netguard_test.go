package netguard

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/netguard/netguardtest"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"127.0.0.1": "loopback", "127.255.0.9": "loopback", "::1": "loopback",
		"10.0.0.1": "private", "172.16.5.4": "private", "172.31.255.255": "private", "192.168.1.1": "private",
		"fc00::1": "private", "fd12:3456::1": "private", "fec0::1": "private",
		"169.254.169.254": "link-local", "fe80::1": "link-local",
		"224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast", "ff05::2": "multicast",
		"0.0.0.0": "unspecified", "0.1.2.3": "unspecified", "::": "unspecified",
		"100.64.0.1": "shared", "100.127.255.254": "shared",
		"255.255.255.255": "reserved", "240.0.0.1": "reserved", "198.18.0.1": "reserved", "192.0.0.8": "reserved",
		"::ffff:127.0.0.1": "loopback", "::ffff:10.0.0.1": "private", "::ffff:169.254.169.254": "link-local",
		"::ffff:0.0.0.0": "unspecified", "::127.0.0.1": "reserved",
		"64:ff9b::7f00:1": "loopback", "64:ff9b::a00:1": "private", "2002:7f00:1::": "loopback", "2002:a9fe:a9fe::1": "link-local",
		"64:ff9b:1::1": "private",
		// Public.
		"93.184.216.34": "", "8.8.8.8": "", "100.63.255.255": "", "100.128.0.0": "", "172.32.0.1": "",
		"2606:4700::1111": "", "64:ff9b::808:808": "", "2002:808:808::": "", "::ffff:8.8.8.8": "",
	}
	for s, want := range cases {
		if got := Classify(netip.MustParseAddr(s)); got != want {
			t.Errorf("Classify(%s) = %q, want %q", s, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	prod, dev := Policy{}, Policy{AllowLoopback: true}
	cases := []struct {
		url       string
		prod, dev string // "" allowed, else a fragment of the reason
	}{
		{"https://hooks.partner.example/in", "", ""},
		{"https://hooks.partner.example:8443/in?x=1", "", ""},
		{"https://93.184.216.34/in", "", ""},
		{"https://[2606:4700::1111]/in", "", ""},
		{"http://hooks.partner.example/in", "https", "https"},
		{"ftp://hooks.partner.example/in", "https", "https"},
		{"hooks.partner.example/in", "absolute", "absolute"},
		{"https:///in", "absolute", "absolute"},
		{"mailto:ops@partner.example", "absolute", "absolute"},
		{"http://127.0.0.1:5432/", "loopback", ""},
		{"https://127.0.0.1/", "loopback", ""},
		{"http://[::1]:6379/", "loopback", ""},
		{"http://localhost:8080/", "loopback", ""},
		{"https://LOCALHOST./", "loopback", ""},
		{"https://api.localhost/", "loopback", ""},
		{"http://[::ffff:127.0.0.1]/", "loopback", ""},
		{"http://169.254.169.254/latest/meta-data/", "link-local", "link-local"},
		{"https://10.0.0.1/", "private", "private"},
		{"http://10.0.0.1/", "private", "private"},
		{"https://[fd00::1]/", "private", "private"},
		{"https://[fe80::1]/", "link-local", "link-local"},
		{"https://[fe80::1%25eth0]/", "zone", "zone"},
		{"https://224.0.0.1/", "multicast", "multicast"},
		{"https://0.0.0.0/", "unspecified", "unspecified"},
		{"https://[::]/", "unspecified", "unspecified"},
		{"https://100.64.0.1/", "shared", "shared"},
		{"https://[::ffff:a9fe:a9fe]/", "link-local", "link-local"},
		{"https://0x7f000001/", "four decimal", "four decimal"},
		{"https://2130706433/", "four decimal", "four decimal"},
		{"https://017700000001/", "four decimal", "four decimal"},
		{"https://127.1/", "four decimal", "four decimal"},
		{"https://0177.0.0.1/", "four decimal", "four decimal"},
		{"https://127.0.0.01/", "four decimal", "four decimal"},
		{"https://hooks.0x10/", "four decimal", "four decimal"},
		{"https://127.0.0.1./", "loopback", ""},
		{"https://%31%32%37.0.0.1/", "absolute", "absolute"},
		{"https://１２７.0.0.1/", "ASCII", "ASCII"},
	}
	for _, c := range cases {
		for _, m := range []struct {
			name   string
			p      Policy
			reason string
		}{{"production", prod, c.prod}, {"loopback allowed", dev, c.dev}} {
			err := m.p.CheckURL(c.url)
			switch {
			case m.reason == "" && err != nil:
				t.Errorf("%s, %s: refused (%v), want allowed", m.name, c.url, err)
			case m.reason != "" && err == nil:
				t.Errorf("%s, %s: allowed, want refused (%s)", m.name, c.url, m.reason)
			case m.reason != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), m.reason)):
				t.Errorf("%s, %s: %v, want a refusal saying %q", m.name, c.url, err, m.reason)
			}
		}
	}
}

// countingServer is a loopback HTTP server that counts the connections made to it.
func countingServer(t *testing.T, tls bool, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tls {
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted test certificate's handshake errors
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

// A name that resolves to 127.0.0.1 passes CheckURL (no lookup there) but the
// dialer refuses the address it resolved to: the server sees no connection.
func TestClientRefusesANameResolvingToLoopback(t *testing.T) {
	t.Parallel()
	srv, conns := countingServer(t, true, func(w http.ResponseWriter, r *http.Request) {})
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	resolver := netguardtest.Resolver(map[string][]netip.Addr{"hooks.partner.test": {netip.MustParseAddr("127.0.0.1")}})
	u := "https://hooks.partner.test:" + strconv.Itoa(port) + "/in"

	p := Policy{Resolver: resolver}
	if err := p.CheckURL(u); err != nil {
		t.Fatalf("CheckURL(%s): %v; a name is checked when dialled", u, err)
	}
	_, err := p.Client(5*time.Second).Post(u, "application/json", strings.NewReader("{}"))
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Reason, "loopback address (127.0.0.1)") {
		t.Fatalf("POST %s: %v; want a refusal of the loopback address it resolved to", u, err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the loopback server got %d connections, want 0", n)
	}

	// The same name with loopback allowed does connect: the resolver works,
	// and the refusal above was the dialer's. (The test certificate is not
	// trusted, so the request itself fails after the connection.)
	dev := Policy{AllowLoopback: true, Resolver: resolver}
	_, err = dev.Client(5*time.Second).Post(u, "application/json", strings.NewReader("{}"))
	if errors.Is(err, ErrRefused) || conns.Load() != 1 {
		t.Fatalf("with loopback allowed: %v, %d connections; want one connection", err, conns.Load())
	}
}

func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	target, targetConns := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
	from, _ := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
	})
	res, err := Policy{AllowLoopback: true}.Client(5*time.Second).Post(from.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || targetConns.Load() != 0 {
		t.Fatalf("got %d and %d connections to the redirect target; want the 307 itself and none", res.StatusCode, targetConns.Load())
	}
}

// The dialer's check, on the addresses it is given (nothing is dialled).
func TestControlChecksTheConnectedAddress(t *testing.T) {
	t.Parallel()
	cases := []struct {
		p            Policy
		loopbackOnly bool
		addr         string
		refused      bool
	}{
		{Policy{}, false, "93.184.216.34:443", false},
		{Policy{}, false, "127.0.0.1:443", true},
		{Policy{}, false, "[::ffff:127.0.0.1]:443", true},
		{Policy{}, false, "[::1]:443", true},
		{Policy{}, false, "10.1.2.3:443", true},
		{Policy{}, false, "169.254.169.254:80", true},
		{Policy{AllowLoopback: true}, false, "127.0.0.1:443", false},
		{Policy{AllowLoopback: true}, false, "10.1.2.3:443", true},
		{Policy{AllowLoopback: true}, true, "127.0.0.1:80", false},
		{Policy{AllowLoopback: true}, true, "[::1]:80", false},
		// Plain http only to loopback, even when a loopback name resolves elsewhere.
		{Policy{AllowLoopback: true}, true, "93.184.216.34:80", true},
	}
	for _, c := range cases {
		err := c.p.control(c.loopbackOnly)("tcp", c.addr, nil)
		if (err != nil) != c.refused || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%+v loopbackOnly=%v %s: %v, want refused=%v", c.p, c.loopbackOnly, c.addr, err, c.refused)
		}
	}
}
