package main

import (
	"context"
	"errors"
	"github.com/coalitionhub/hub/abuse"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/outbox"
	"github.com/coalitionhub/hub/internal/throttle"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/settlement"
	"github.com/coalitionhub/hub/webhooks"
)

// task is one row of the task table.
type task struct {
	typ     string
	handler asynq.Handler
	opts    []asynq.Option // queue, retries, timeout: applied when the outbox relay enqueues
	cron    string         // non-empty: the scheduler enqueues it on this schedule (operator TZ)
	// retryDelay spaces retries of a failing task; nil means asynq's default
	// exponential backoff.
	retryDelay func(n int) time.Duration
}

// tasks is the one table of task types to handlers. Reading it shows every
// background job the hub runs.
func (a *app) tasks(svc *services) []task {
	now := a.now
	return []task{
		{typ: webhooks.TypeDeliverWebhook, handler: svc.webhooks.DeliverHandler(),
			opts:       []asynq.Option{asynq.Queue("default"), asynq.MaxRetry(webhooks.WebhookMaxRetry), asynq.Timeout(30 * time.Second)},
			retryDelay: webhooks.WebhookRetryDelay},
		// Prepaid partners below their contract's alert threshold are told
		// once per crossing (webhook prepaid.low_balance).
		{typ: partners.TypePrepaidAlerts, handler: partners.HandlePrepaidAlerts(svc.partners),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(10 * time.Minute)}, cron: "*/15 * * * *"},
		{typ: ledger.TypeExpireHolds, handler: ledger.HandleExpireHolds(svc.ledger),
			opts: []asynq.Option{asynq.Queue("default"), asynq.MaxRetry(5)}, cron: "* * * * *"},
		{typ: ledger.TypeExpireLots, handler: ledger.HandleExpireLots(svc.ledger),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(5), asynq.Timeout(time.Hour)}, cron: "10 1 * * *"},
		{typ: catalog.TypeExpireOrders, handler: catalog.HandleExpireOrders(svc.catalog),
			opts: []asynq.Option{asynq.Queue("default"), asynq.MaxRetry(5), asynq.Timeout(10 * time.Minute)}, cron: "*/5 * * * *"},
		// Daily shortly after midnight (operator TZ): closes the previous month once
		// it has ended; a no-op while it is closed, so a failed close is retried.
		// A close started from the console or the admin API runs as a job run
		// (settlement.StartClose) that records its progress.
		{typ: settlement.TypeClosePeriod, handler: settlement.HandleClosePeriod(svc.settlement, svc.runs),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(2 * time.Hour)}, cron: "30 0 * * *"},
		// Campaigns and exports started from the console or the admin API,
		// each under its job run (campaigns.StartRun, exports.Start*).
		{typ: campaigns.TypeRun, handler: campaigns.HandleRun(svc.campaigns, svc.runs),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(2 * time.Hour)}},
		{typ: exports.TypeExport, handler: exports.HandleExport(svc.exports, svc.runs),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(2 * time.Hour)}},
		{typ: settlement.TypeReconcile, handler: settlement.HandleReconcile(svc.settlement),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(5), asynq.Timeout(time.Hour)}},
		{typ: exchange.TypeDeliver, handler: exchange.HandleDeliver(svc.exchange),
			opts:       []asynq.Option{asynq.Queue("default"), asynq.MaxRetry(exchange.DeliverMaxRetry), asynq.Timeout(time.Minute)},
			retryDelay: exchange.DeliverRetryDelay},
		{typ: exchange.TypePoll, handler: exchange.HandlePoll(svc.exchange),
			opts: []asynq.Option{asynq.Queue("default"), asynq.MaxRetry(2), asynq.Timeout(10 * time.Minute)}, cron: "*/5 * * * *"},
		{typ: programme.TypeDaily, handler: programme.HandleDaily(svc.programme),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(5), asynq.Timeout(time.Hour)}, cron: "30 1 * * *"},

		// Mail: rendered and sent over SMTP, once per queued message.
		{typ: mail.TypeSend, handler: mail.HandleSend(svc.mail),
			opts: []asynq.Option{asynq.Queue("default"), asynq.MaxRetry(mail.MaxRetry), asynq.Timeout(time.Minute)}},

		{typ: outbox.TypeCleanup, handler: outbox.CleanupHandler(a.db, now),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3)}, cron: "17 3 * * *"},
		// Sign-in housekeeping: spent throttle rows, and sessions ended or
		// expired more than a day ago.
		{typ: throttle.TypeCleanup, handler: throttle.CleanupHandler(a.db, now),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3)}, cron: "23 * * * *"},
		// Daily digest of the points each member earned the day before
		// (UTC day), one mail per member and day (members.SendDigests).
		{typ: members.TypePointsDigest, handler: members.HandlePointsDigest(svc.members),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(5), asynq.Timeout(time.Hour)}, cron: "0 8 * * *"},
		{typ: abuse.TypeScanRefunds, handler: abuse.HandleScanRefunds(svc.abuse, a.log),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(time.Hour)}, cron: "45 2 * * *"},
		{typ: members.TypeEraseDue, handler: members.HandleEraseDue(svc.members),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3), asynq.Timeout(time.Hour)}, cron: "50 * * * *"},
		{typ: members.TypePruneSessions, handler: members.HandlePruneSessions(svc.members),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3)}, cron: "27 * * * *"},
		{typ: access.TypePruneStaffSessions, handler: access.HandlePruneStaffSessions(svc.access),
			opts: []asynq.Option{asynq.Queue("low"), asynq.MaxRetry(3)}, cron: "29 * * * *"},
	}
}

// worker runs the asynq server, the scheduler of periodic tasks and the outbox
// relay until ctx ends; then it stops taking tasks and waits for running ones
// up to the shutdown timeout.
func (a *app) worker(ctx context.Context) error {
	if err := a.requireRedis(ctx); err != nil {
		return err
	}
	svc, err := a.buildServices(a.now)
	if err != nil {
		return err
	}
	table := a.tasks(svc)
	mux := asynq.NewServeMux()
	mux.Use(jobMetrics(a.registry))
	optsByType := map[string][]asynq.Option{}
	delays := map[string]func(int) time.Duration{}
	for _, t := range table {
		mux.Handle(t.typ, t.handler)
		optsByType[t.typ] = t.opts
		if t.retryDelay != nil {
			delays[t.typ] = t.retryDelay
		}
	}

	srv := asynq.NewServer(a.redisOpt, asynq.Config{
		Concurrency:     a.cfg.WorkerConc,
		Queues:          map[string]int{"critical": 6, "default": 3, "low": 1},
		ShutdownTimeout: a.cfg.ShutdownTimeout,
		Logger:          asynqLogger{a.log},
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if d := delays[t.Type()]; d != nil {
				return d(n)
			}
			return asynq.DefaultRetryDelayFunc(n, err, t)
		},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			a.log.Warn("task failed", "type", t.Type(), "err", err)
		}),
	})
	if err := srv.Start(mux); err != nil {
		return err
	}

	// Several workers may run this scheduler: Unique makes one enqueue win per slot,
	// and every periodic handler is idempotent besides.
	sched := asynq.NewScheduler(a.redisOpt, &asynq.SchedulerOpts{Location: a.cfg.Location(), Logger: asynqLogger{a.log}})
	for _, t := range table {
		if t.cron == "" {
			continue
		}
		opts := append([]asynq.Option{asynq.Unique(50 * time.Second)}, t.opts...)
		if _, err := sched.Register(t.cron, asynq.NewTask(t.typ, nil), opts...); err != nil {
			srv.Shutdown()
			return err
		}
	}
	if err := sched.Start(); err != nil {
		srv.Shutdown()
		return err
	}

	client := asynq.NewClient(a.redisOpt)
	relay := outbox.NewRelay(a.db, client, a.log, func(typ string) []asynq.Option { return optsByType[typ] })
	relay.Redis = a.redisOpt
	relayDone := make(chan struct{})
	inspector := asynq.NewInspector(a.redisOpt)
	defer inspector.Close()
	go func() { _ = relay.Run(ctx, inspector); close(relayDone) }()

	a.log.Info("worker running", "concurrency", a.cfg.WorkerConc, "task_types", len(table))
	<-ctx.Done()
	a.log.Info("worker stopping: finishing running tasks", "timeout", a.cfg.ShutdownTimeout)
	<-relayDone
	sched.Shutdown()
	srv.Shutdown()
	_ = client.Close()
	a.log.Info("worker stopped")
	return nil
}

// jobMetrics counts processed tasks by queue, type and outcome, and times them.
func jobMetrics(reg prometheus.Registerer) asynq.MiddlewareFunc {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hub_jobs_total", Help: "Background tasks processed, by queue, type and outcome.",
	}, []string{"queue", "type", "outcome"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hub_job_duration_seconds", Help: "Background task duration by type.",
	}, []string{"type"})
	reg.MustRegister(total, dur)
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			queue, _ := asynq.GetQueueName(ctx)
			outcome := "success"
			switch {
			case errors.Is(err, asynq.SkipRetry):
				outcome = "dropped"
			case err != nil:
				outcome = "failure"
			}
			total.WithLabelValues(queue, t.Type(), outcome).Inc()
			dur.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
			return err
		})
	}
}
