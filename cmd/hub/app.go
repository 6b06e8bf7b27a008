package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
	cfg config.Config
	log *slog.Logger
	db  *gorm.DB
	// reads routes stale-tolerant reads to HUB_DATABASE_READ_URL's replica
	// while its lag is within HUB_READ_MAX_LAG; without one, to db.
	reads    *database.Reads
	redisOpt asynq.RedisConnOpt
	redis    redis.UniversalClient
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
	var replica *gorm.DB
	if cfg.DatabaseReadURL != "" {
		// A replica that does not answer yet is no reason not to start: its
		// reads go to the primary until it does (database.Reads).
		if replica, err = database.Open(ctx, cfg.DatabaseReadURL, database.Options{MaxConns: cfg.DBMaxConns}); err != nil {
			log.Warn("read replica unreachable: its reads go to the primary", "err", err)
			replica = nil
		}
	}
	reads := database.NewReads(db, replica, cfg.ReadMaxLag)
	opt, client, err := redisConns(cfg)
	if err != nil {
		database.Close(db, log)
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(reads.Collectors()...)
	return &app{cfg: cfg, log: log, db: db, reads: reads, redisOpt: opt, redis: client, registry: reg, now: time.Now}, nil
}

// redisConns gives asynq's connection option and the go-redis client for the
// configured Redis: HUB_REDIS_URL's server, or with HUB_REDIS_SENTINELS the
// primary the Sentinels name, followed through their failovers (the URL then
// gives only the database number and the password).
func redisConns(cfg config.Config) (asynq.RedisConnOpt, redis.UniversalClient, error) {
	ro, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("HUB_REDIS_URL: %w", err)
	}
	if len(cfg.RedisSentinels) == 0 {
		opt, err := asynq.ParseRedisURI(cfg.RedisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("HUB_REDIS_URL: %w", err)
		}
		return opt, redis.NewClient(ro), nil
	}
	opt := asynq.RedisFailoverClientOpt{MasterName: cfg.RedisMasterName, SentinelAddrs: cfg.RedisSentinels,
		Username: ro.Username, Password: ro.Password, DB: ro.DB}
	client := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: cfg.RedisMasterName, SentinelAddrs: cfg.RedisSentinels,
		Username: ro.Username, Password: ro.Password, DB: ro.DB})
	return opt, client, nil
}

// requireRedis fails with an actionable message when Redis does not answer.
// Only the worker needs Redis to start; the API starts without it and reports
// it through /readyz.
func (a *app) requireRedis(ctx context.Context) error {
	if err := a.redis.Ping(ctx).Err(); err != nil {
		where := config.RedactURL(a.cfg.RedisURL)
		if len(a.cfg.RedisSentinels) > 0 {
			where = fmt.Sprintf("the primary %q of the Sentinels %s", a.cfg.RedisMasterName, strings.Join(a.cfg.RedisSentinels, ","))
		}
		return fmt.Errorf("cannot reach Redis at %s: %w; run `make services` (or set HUB_REDIS_URL)", where, err)
	}
	return nil
}

func (a *app) Close() {
	_ = a.redis.Close()
	if a.reads.Configured() {
		database.Close(a.reads.Replica(), a.log)
	}
	database.Close(a.db, a.log)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
