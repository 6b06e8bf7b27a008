package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/coalitionhub/hub/abuse"
	"path/filepath"
	"time"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/config"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/settlement"
	"github.com/coalitionhub/hub/webhooks"
)

// services are the domain services of one process, all on one clock.
type services struct {
	partners     *partners.Service
	access       *access.Service
	rules        *rules.Service
	ledger       *ledger.Service
	members      *members.Service
	consent      *members.BurnConsent
	transactions *points.Transactions
	webhooks     *webhooks.Service
	catalog      *catalog.Service
	settlement   *settlement.Service
	exchange     *exchange.Service
	programme    *programme.Service
	abuse        *abuse.Service
	// mail sends what the domains queue (the worker's mail:send).
	mail *mail.Sender
	// runs records long work people start and wait for (internal/jobs).
	runs *jobs.Service
	// Segments and campaigns; exports of the member base and the ledger.
	campaigns *campaigns.Service
	exports   *exports.Service
}

// buildServices wires the domains. now is time.Now in production; the seed
// passes its simulated clock.
func (a *app) buildServices(now func() time.Time) (*services, error) {
	ps := partners.NewService(a.db, now)
	acc, err := a.accessService(ps, now)
	if err != nil {
		return nil, err
	}
	l := ledger.NewService(a.db, now)
	l.Reads = a.reads
	unsubscribeKey, err := a.unsubscribeKey()
	if err != nil {
		return nil, err
	}
	var prog *programme.Service // built below; the member base asks it for the erasure schedule
	m := members.NewService(a.db, l, now, members.WithUnsubscribeKey(unsubscribeKey),
		members.WithErasureSchedule(func(ctx context.Context) (int, bool, error) {
			if prog == nil {
				return 0, false, nil
			}
			p, err := prog.Policy(ctx)
			if err != nil || p.ErasureAfterDays == nil {
				return 0, false, err
			}
			return *p.ErasureAfterDays, true, nil
		}))
	c := members.NewBurnConsent(a.db, now, members.DefaultConsentPolicy)
	r := rules.NewService(a.db, now)
	svc := &services{
		partners: ps, access: acc, rules: r, ledger: l, members: m, consent: c,
		transactions: points.NewTransactions(a.db, l, m, c, ps, r, now),
		webhooks:     webhooks.NewService(a.db, acc.SecretBox(), netguard.Policy{AllowLoopback: a.cfg.WebhookAllowLoopback}, now),
	}
	if a.cfg.WebhookAllowLoopback {
		a.log.Warn("HUB_WEBHOOK_ALLOW_LOOPBACK is set: webhooks may go to loopback receivers over plain http (local development and tests only)")
	}
	svc.catalog = catalog.NewService(a.db, l, m, ps, now)
	svc.catalog.TierOf = func(ctx context.Context, memberID int64) (string, error) {
		if svc.programme == nil { // built below
			return "", nil
		}
		return svc.programme.MemberTier(ctx, memberID)
	}
	svc.runs = jobs.NewService(a.db, now, a.log)
	svc.settlement = settlement.NewService(a.db, settlement.Options{Location: a.cfg.Location(), BaseCurrency: "EUR", Now: now, Reads: a.reads})
	svc.exchange = exchange.NewService(a.db, l, m, ps, acc.SecretBox(), exchange.NewHTTPPartner(15*time.Second), now)
	svc.programme = programme.NewService(a.db, l, m, c, now)
	prog = svc.programme
	svc.transactions.Programme = svc.programme
	svc.campaigns = campaigns.NewService(a.db, m, l, svc.programme, svc.runs, now)
	svc.exports = exports.NewService(a.db, m, l, svc.programme, svc.campaigns, svc.runs, now)
	svc.abuse = abuse.NewService(a.db, l, now)
	svc.transactions.GroupCommit = groupCommit(a.cfg)
	if svc.mail, err = mail.NewSender(a.db, mail.Config{SMTPURL: a.cfg.SMTPURL, From: a.cfg.MailFrom,
		BaseURL: a.cfg.PublicURL, Now: now, Log: a.log}); err != nil {
		return nil, err
	}
	return svc, nil
}

// accessService builds the API client, token and staff service on the
// registry. Without
// HUB_SECRETS_KEY (local development) it uses a key generated once into the
// git-ignored signing key directory, and says so; the key itself is never logged.
func (a *app) accessService(registry *partners.Service, now func() time.Time) (*access.Service, error) {
	var key []byte
	var err error
	if a.cfg.SecretsKey != "" {
		key, err = access.ParseSecretsKey(a.cfg.SecretsKey)
	} else {
		path := filepath.Join(a.cfg.SigningKeyDir, "secrets.key")
		var created bool
		key, created, err = access.LoadOrCreateSecretsKey(path)
		if created {
			a.log.Warn("HUB_SECRETS_KEY is unset: generated a local secrets key (set HUB_SECRETS_KEY in production)", "path", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("HUB_SECRETS_KEY: %w", err)
	}
	return access.NewService(a.db, registry, access.Options{Issuer: a.cfg.PublicURL, SecretsKey: key, Now: now})
}

// unsubscribeKey is the key signing the unsubscribe links of notification
// mail. Without HUB_UNSUBSCRIBE_KEY (local development) it is generated once
// into the git-ignored signing key directory, which serve and worker share.
func (a *app) unsubscribeKey() ([]byte, error) {
	if a.cfg.UnsubscribeKey != "" {
		return base64.StdEncoding.DecodeString(a.cfg.UnsubscribeKey)
	}
	path := filepath.Join(a.cfg.SigningKeyDir, "unsubscribe.key")
	key, created, err := access.LoadOrCreateSecretsKey(path)
	if err != nil {
		return nil, fmt.Errorf("HUB_UNSUBSCRIBE_KEY: %w", err)
	}
	if created {
		a.log.Warn("HUB_UNSUBSCRIBE_KEY is unset: generated a local unsubscribe key (set HUB_UNSUBSCRIBE_KEY in production)", "path", path)
	}
	return key, nil
}

// groupCommit is the group commit of single earns as configured: the batch
// size and wait from the settings, the rest (batches in flight) as
// points.DefaultGroupCommit has it.
func groupCommit(cfg config.Config) points.GroupCommit {
	g := points.DefaultGroupCommit
	g.MaxItems, g.Wait, g.InFlight = cfg.EarnBatchMax, cfg.EarnBatchWait, cfg.EarnBatchInFlight
	return g
}
