package web

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz answers 200 while the process runs; it checks nothing else so that
// an orchestrator never restarts a hub for a database outage.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok", "version": s.deps.Version})
}

// readyz answers 200 only when PostgreSQL and Redis both answer, so a load
// balancer sends traffic elsewhere meanwhile. The body says which failed.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ready := true
	if err := s.pingDB(ctx); err != nil {
		checks["postgres"] = "unreachable"
		ready = false
	} else {
		checks["postgres"] = "ok"
	}
	if s.deps.PingRedis == nil {
		checks["redis"] = "not configured"
		ready = false
	} else if err := s.deps.PingRedis(ctx); err != nil {
		checks["redis"] = "unreachable"
		ready = false
	} else {
		checks["redis"] = "ok"
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ready, "checks": checks})
}

func (s *Server) pingDB(ctx context.Context) error {
	sqlDB, err := s.deps.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
