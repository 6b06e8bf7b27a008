// Package web is the HTTP surface of the hub: the one route table, the auth
// middleware, the JSON API handlers, and the operator console and member
// portal. Handlers decode and validate requests, call domain services, and
// render responses; the domain errors they get back become problem+json in
// exactly one place (errors.go).
package web

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gorm.io/gorm"
)

// Deps is everything the HTTP layer needs. cmd/hub builds it; tests build it
// against their own database.
type Deps struct {
	DB        *gorm.DB
	PingRedis func(context.Context) error
	Log       *slog.Logger
	Registry  *prometheus.Registry
	Version   string
	MaxBody   int64 // bytes; default 1 MiB
}

// Server holds the dependencies of the handlers.
type Server struct {
	deps    Deps
	metrics *httpMetrics
}

// New builds a server. It registers its metrics on deps.Registry.
func New(deps Deps) *Server {
	if deps.MaxBody == 0 {
		deps.MaxBody = 1 << 20
	}
	return &Server{deps: deps, metrics: newHTTPMetrics(deps.Registry)}
}

// Handler returns the router: the whole HTTP surface in one table.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(withRequestID(), recoverProblem(s.deps.Log), observe(s.deps.Log, s.metrics), limitBody(s.deps.MaxBody))
	r.NoRoute(func(c *gin.Context) { fail(c, s.deps.Log, errNotFound) })
	r.NoMethod(func(c *gin.Context) { fail(c, s.deps.Log, errMethodNotAllowed) })

	// Operations.
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))

	return r
}
