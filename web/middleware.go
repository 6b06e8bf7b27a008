package web

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

const requestIDHeader = "X-Request-Id"

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._\-]{1,64}$`)

// withRequestID takes the caller's X-Request-Id when it is sane, or makes one,
// and echoes it on the response.
func withRequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if !safeRequestID.MatchString(id) {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set("request_id", id)
		c.Header(requestIDHeader, id)
		c.Next()
	}
}

func requestID(c *gin.Context) string { return c.GetString("request_id") }

// httpMetrics observes request latency by route template (never the raw path:
// ids in paths would explode the label set), method and status.
type httpMetrics struct {
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hub_http_request_duration_seconds",
		Help:    "HTTP request latency by route, method and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method", "status"})}
	reg.MustRegister(m.duration)
	return m
}

// observe records metrics and writes one structured log line per request.
func observe(log *slog.Logger, m *httpMetrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		elapsed := time.Since(start)
		m.duration.WithLabelValues(route, c.Request.Method, strconv.Itoa(status)).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		if route == "/metrics" || route == "/healthz" || route == "/readyz" {
			level = slog.LevelDebug
		}
		log.Log(c.Request.Context(), level, "http request",
			"request_id", requestID(c), "method", c.Request.Method, "route", route,
			"status", status, "duration_ms", float64(elapsed.Microseconds())/1000,
			"bytes", c.Writer.Size(), "client", c.ClientIP())
	}
}

// recoverProblem turns a panic into a logged 500 problem instead of a dropped
// connection.
func recoverProblem(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		log.Error("panic in handler", "panic", rec, "route", c.FullPath(), "request_id", requestID(c))
		fail(c, log, errInternal)
	})
}

// uploadRoutes are the routes whose bodies stream into the database line by
// line (reconciliation files: settlement.Upload) and may hold millions of
// lines; they may carry up to uploadMax bytes instead of the usual limit.
var uploadRoutes = map[string]bool{
	"/v1/statements/:id/reconciliation":                   true,
	"/v1/admin/settlement/periods/:month/reconciliations": true,
	"/console/reconciliation":                             true,
}

const uploadMax = 1 << 30

// limitBody refuses bodies larger than max bytes (uploadMax on uploadRoutes).
func limitBody(log *slog.Logger, max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit := max
		if c.Request.Method == http.MethodPost && uploadRoutes[c.FullPath()] {
			limit = uploadMax
		}
		if c.Request.ContentLength > limit {
			fail(c, log, withDetail(errBodyTooLarge, "the limit is "+strconv.FormatInt(limit, 10)+" bytes"))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Next()
	}
}

// forwardedFromTrusted drops X-Forwarded-Proto from a request whose peer is
// not one of the trusted proxies (Deps.TrustedProxies), so that only a proxy
// can say the browser reached it over HTTPS. Client IPs are gin's business
// (SetTrustedProxies).
func forwardedFromTrusted(trusted []string) gin.HandlerFunc {
	var nets []netip.Prefix
	for _, t := range trusted {
		if p, err := netip.ParsePrefix(t); err == nil {
			nets = append(nets, p.Masked())
		} else if a, err := netip.ParseAddr(t); err == nil {
			nets = append(nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return func(c *gin.Context) {
		if c.Request.Header.Get("X-Forwarded-Proto") == "" {
			return
		}
		peer, err := netip.ParseAddrPort(c.Request.RemoteAddr)
		if err == nil {
			for _, n := range nets {
				if n.Contains(peer.Addr().Unmap()) {
					return
				}
			}
		}
		c.Request.Header.Del("X-Forwarded-Proto")
	}
}
