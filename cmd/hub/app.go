package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/config"
	"github.com/coalitionhub/hub/internal/database"
)

// app holds the connections one hub process shares between its subcommands.
type app struct {
	cfg      config.Config
	log      *slog.Logger
	db       *gorm.DB
	redisOpt asynq.RedisClientOpt
	redis    *redis.Client
	registry *prometheus.Registry
	now      func() time.Time // the clock of serve, worker and all
}

func newApp(ctx context.Context, getenv func(string) string) (*app, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(cfg.LogLevel)
	db, err := database.Open(ctx, cfg.DatabaseURL, database.Options{MaxConns: cfg.DBMaxConns})
	if err != nil {
		return nil, err
	}
	opt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("HUB_REDIS_URL: %w", err)
	}
	ro, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("HUB_REDIS_URL: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &app{cfg: cfg, log: log, db: db, redisOpt: opt.(asynq.RedisClientOpt), redis: redis.NewClient(ro), registry: reg, now: time.Now}, nil
}

// requireRedis fails with an actionable message when Redis does not answer.
// Only the worker needs Redis to start; the API starts without it and reports
// it through /readyz.
func (a *app) requireRedis(ctx context.Context) error {
	if err := a.redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cannot reach Redis at %s: %w; run `make services` (or set HUB_REDIS_URL)",
			config.RedactURL(a.cfg.RedisURL), err)
	}
	return nil
}

func (a *app) Close() {
	_ = a.redis.Close()
	database.Close(a.db, a.log)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
