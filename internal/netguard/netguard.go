// Package netguard decides which network destinations the hub may reach on a
// partner's behalf, and enforces that decision where connections are made.
//
// A partner-given URL (a webhook receiver) must use https and name a public
// host. Loopback, private (RFC 1918, IPv6 ULA), link-local, multicast,
// unspecified, shared (carrier-grade NAT 100.64.0.0/10) and reserved
// addresses are refused, also when written as IPv4-mapped IPv6 or as odd
// numeric hosts (0x7f000001, 2130706433, 017700000001, 127.1). The same rule
// runs twice: CheckURL when the URL is registered, and the dialer of Client
// on the address a name resolved to, at the moment the socket connects, so a
// name that resolves (or re-resolves) to an internal address is refused too.
// Client follows no redirect.
//
// Policy.AllowLoopback relaxes the rule for local development and tests
// only: loopback destinations are allowed, and plain http to them.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Policy is the rule for outbound requests to partner-given URLs. The zero
// value is the production rule: https to public addresses only.
type Policy struct {
	// AllowLoopback permits loopback destinations (127.0.0.0/8, ::1,
	// localhost), and plain http to them. Private and other internal ranges
	// stay refused. For local development and tests only.
	AllowLoopback bool
	// Resolver resolves host names when Client dials; nil is the system's.
	Resolver *net.Resolver
}

// ErrRefused is wrapped by every refusal (see Refusal).
var ErrRefused = errors.New("destination refused")

// Refusal says why a URL or an address is refused. Reason reads as the
// completion of "the url ...", for a field error.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Is makes errors.Is(err, ErrRefused) hold for every refusal.
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

func refuse(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// CheckURL reports whether raw may be requested under p: an absolute https
// URL (http only to loopback, when loopback is allowed) whose host is a name
// or a public address in canonical form. A host name is checked again on
// every connection Client makes; CheckURL does not resolve it. The error is a
// *Refusal.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return refuse("must be a valid absolute https URL")
	}
	return p.checkURL(u)
}

func (p Policy) checkURL(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return refuse("must be an https URL")
	}
	host := u.Hostname()
	if host == "" {
		return refuse("must name a host")
	}
	loopback, err := p.checkHost(host)
	if err != nil {
		return err
	}
	if scheme == "http" && !(p.AllowLoopback && loopback) {
		if p.AllowLoopback {
			return refuse("must use https (plain http is allowed to loopback only)")
		}
		return refuse("must use https")
	}
	return nil
}

// checkHost refuses an internal or oddly written host and reports whether it
// is a loopback one (allowed only under AllowLoopback).
func (p Policy) checkHost(host string) (loopback bool, err error) {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return false, refuse("must write its host in ASCII (punycode for an international name)")
		}
	}
	if strings.Contains(host, "%") {
		return false, refuse("must not name an IPv6 zone")
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, err := netip.ParseAddr(name); err == nil {
		return ip.Unmap().IsLoopback(), p.CheckAddr(ip)
	}
	if endsInNumber(name) {
		// Not a canonical address, yet resolvers (inet_aton) and browsers
		// read it as one: 0x7f000001, 2130706433, 017700000001, 127.1.
		return false, refuse("must write an IPv4 address as four decimal numbers (a.b.c.d)")
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if !p.AllowLoopback {
			return true, refuse("must not point at a loopback address (%s)", host)
		}
		return true, nil
	}
	return false, nil
}

// endsInNumber reports whether the last label of name is a number (decimal,
// or hexadecimal with 0x), which makes the whole host an IPv4 address in the
// WHATWG URL parser and in inet_aton rather than a DNS name.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	digits := "0123456789"
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		last, digits = h, "0123456789abcdef"
		if last == "" {
			return true
		}
	}
	return strings.Trim(last, digits) == ""
}

// CheckAddr reports whether ip may be connected to under p; the error is a
// *Refusal naming the kind of address.
func (p Policy) CheckAddr(ip netip.Addr) error {
	kind := Classify(ip)
	if kind == "" || (kind == "loopback" && p.AllowLoopback) {
		return nil
	}
	return refuse("must not point at %s %s address (%s)", article(kind), kind, ip)
}

func article(kind string) string {
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an"
	}
	return "a"
}

// Classify names the kind of a non-public address ("loopback", "private",
// "link-local", "multicast", "unspecified", "shared", "reserved"), or returns
// "" for a public one. IPv4-mapped IPv6 addresses and IPv6 addresses that
// carry an IPv4 address for translation (NAT64, 6to4) are classified by the
// IPv4 address they reach.
func Classify(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "reserved"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	}
	for _, r := range nonPublic {
		if r.prefix.Contains(ip) {
			return r.kind
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return Classify(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return Classify(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return ""
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// nonPublic are the ranges net/netip has no predicate for.
var nonPublic = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},  // "this network"
	{netip.MustParsePrefix("100.64.0.0/10"), "shared"},   // carrier-grade NAT
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},  // IETF protocol assignments
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"}, // benchmarking
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},   // reserved, and 255.255.255.255 broadcast
	{netip.MustParsePrefix("::/96"), "reserved"},         // IPv4-compatible IPv6 (deprecated)
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private"}, // local-use NAT64
	{netip.MustParsePrefix("fec0::/10"), "private"},      // site-local (deprecated)
	{netip.MustParsePrefix("100::/64"), "reserved"},      // discard-only
}

// Client returns an HTTP client for partner-given URLs under p. Every request
// URL must pass CheckURL; every connection is checked on the address the
// socket actually connects to (after DNS resolution, so a name resolving to
// an internal address is refused, however often it changes its answer);
// plain http connects only to loopback; no proxy is used (the proxy's address
// would be checked instead of the receiver's); and no redirect is followed:
// a 3xx answer is returned as the response. timeout bounds a whole request.
func (p Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     &transport{policy: p, tls: p.transport(false), plain: p.transport(true)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// transport sends https through one pool and plain http through another
// whose dialer reaches loopback only, so the scheme rule holds even when a
// loopback name resolves elsewhere.
type transport struct {
	policy     Policy
	tls, plain *http.Transport
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.policy.checkURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s: %w", req.URL.Redacted(), err)
	}
	if strings.EqualFold(req.URL.Scheme, "http") {
		return t.plain.RoundTrip(req)
	}
	return t.tls.RoundTrip(req)
}

func (p Policy) transport(loopbackOnly bool) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: p.Resolver,
		Control: p.control(loopbackOnly)}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// control checks the address a socket is about to connect to: the dialer
// calls it after resolving the name and before connect(2), for every address
// it tries.
func (p Policy) control(loopbackOnly bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return refuse("cannot check the address %q", address)
		}
		if loopbackOnly && !ap.Addr().Unmap().IsLoopback() {
			return refuse("must use https (plain http is allowed to loopback only, not %s)", ap.Addr())
		}
		return p.CheckAddr(ap.Addr())
	}
}
