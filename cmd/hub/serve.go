package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coalitionhub/hub/web"
)

// serve runs the HTTP server until ctx ends, then stops accepting, drains
// in-flight requests for up to the shutdown timeout, and returns.
func (a *app) serve(ctx context.Context) error {
	deps, err := a.webDeps(ctx)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              a.cfg.HTTPAddr,
		Handler:           web.New(deps).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	a.log.Info("hub serving", append([]any{"url", a.cfg.PublicURL}, a.cfg.Redacted()...)...)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down HTTP server: draining requests", "timeout", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("HTTP server stopped")
	return nil
}

// webDeps builds the domain services the handlers use.
func (a *app) webDeps(ctx context.Context) (web.Deps, error) {
	svc, err := a.buildServices(a.now)
	if err != nil {
		return web.Deps{}, err
	}
	go a.reads.Run(ctx, time.Second) // the replica's lag, for routing and hub_db_replica_lag_seconds
	return web.Deps{
		DB:           a.db,
		Reads:        a.reads,
		PingRedis:    func(ctx context.Context) error { return a.redis.Ping(ctx).Err() },
		Log:          a.log,
		Registry:     a.registry,
		Version:      version,
		Partners:     svc.partners,
		Access:       svc.access,
		Transactions: svc.transactions,
		Rules:        svc.rules,
		Webhooks:     svc.webhooks,
		Members:      svc.members,
		Ledger:       svc.ledger,
		Consent:      svc.consent,
		Catalog:      svc.catalog,
		Settlement:   svc.settlement,
		// Runs: long work started from the console or the admin API.
		Runs:      svc.runs,
		Campaigns: svc.campaigns,
		Exports:   svc.exports,
		Exchange:  svc.exchange,
		Programme: svc.programme,
		Abuse:     svc.abuse,
		Jobs:      web.NewAsynqJobs(a.redisOpt),
		Now:       a.now,

		ClientRate:     a.cfg.ClientRate,
		ClientBurst:    a.cfg.ClientBurst,
		LoginRate:      a.cfg.LoginRate,
		LoginBurst:     a.cfg.LoginBurst,
		TrustedProxies: a.cfg.TrustedProxies,
	}, nil
}

// all runs serve and worker side by side; the first to fail stops both.
func (a *app) all(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- a.serve(ctx) }()
	go func() { errc <- a.worker(ctx) }()
	first := <-errc
	cancel()
	second := <-errc
	return errors.Join(first, second)
}
