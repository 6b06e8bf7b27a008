package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"time"

	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/config"
	"github.com/coalitionhub/hub/internal/mail"
	"github.com/coalitionhub/hub/internal/netguard"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/settlement"
)

// services are the domain services of one process, all on one clock.
type services struct {
	partners     *partners.Service
	rules        *partners.Rules
	ledger       *ledger.Service
	members      *members.Service
	consent      *members.BurnConsent
	transactions *partners.Transactions
	webhooks     *partners.Webhooks
	// [catalog] fields
	catalog *catalog.Service
	// [settlement] fields
	settlement *settlement.Service
	// [exchange] fields
	exchange *exchange.Service
	// [programme] fields
	programme *programme.Service
	// mail sends what the domains queue (the worker's mail:send).
	mail *mail.Sender
}

// buildServices wires the domains. now is time.Now in production; the seed
// passes its simulated clock.
func (a *app) buildServices(now func() time.Time) (*services, error) {
	ps, err := a.partnersService(now)
	if err != nil {
		return nil, err
	}
	l := ledger.NewService(a.db, now)
	unsubscribeKey, err := a.unsubscribeKey()
	if err != nil {
		return nil, err
	}
	m := members.NewService(a.db, l, now, members.WithUnsubscribeKey(unsubscribeKey))
	c := members.NewBurnConsent(a.db, now, members.DefaultConsentPolicy)
	r := partners.NewRules(a.db, now)
	svc := &services{
		partners: ps, rules: r, ledger: l, members: m, consent: c,
		transactions: partners.NewTransactions(a.db, l, m, c, ps, r, now),
		webhooks:     partners.NewWebhooks(a.db, ps.SecretBox(), netguard.Policy{AllowLoopback: a.cfg.WebhookAllowLoopback}, now),
	}
	if a.cfg.WebhookAllowLoopback {
		a.log.Warn("HUB_WEBHOOK_ALLOW_LOOPBACK is set: webhooks may go to loopback receivers over plain http (local development and tests only)")
	}
	// [catalog] services
	svc.catalog = catalog.NewService(a.db, l, m, ps, now)
	svc.catalog.TierOf = func(ctx context.Context, memberID int64) (string, error) {
		if svc.programme == nil { // built below
			return "", nil
		}
		return svc.programme.MemberTier(ctx, memberID)
	}
	// [settlement] services
	svc.settlement = settlement.NewService(a.db, settlement.Options{Location: a.cfg.Location(), BaseCurrency: "EUR", Now: now})
	// [exchange] services
	svc.exchange = exchange.NewService(a.db, l, m, ps, exchange.NewHTTPPartner(15*time.Second), now)
	// [programme] services
	svc.programme = programme.NewService(a.db, l, m, c, now)
	svc.transactions.Programme = svc.programme
	svc.transactions.GroupCommit = groupCommit(a.cfg)
	if svc.mail, err = mail.NewSender(a.db, mail.Config{SMTPURL: a.cfg.SMTPURL, From: a.cfg.MailFrom,
		BaseURL: a.cfg.PublicURL, Now: now, Log: a.log}); err != nil {
		return nil, err
	}
	return svc, nil
}

// partnersService builds the partner registry and auth service. Without
// HUB_SECRETS_KEY (local development) it uses a key generated once into the
// git-ignored signing key directory, and says so; the key itself is never logged.
func (a *app) partnersService(now func() time.Time) (*partners.Service, error) {
	var key []byte
	var err error
	if a.cfg.SecretsKey != "" {
		key, err = partners.ParseSecretsKey(a.cfg.SecretsKey)
	} else {
		path := filepath.Join(a.cfg.SigningKeyDir, "secrets.key")
		var created bool
		key, created, err = partners.LoadOrCreateSecretsKey(path)
		if created {
			a.log.Warn("HUB_SECRETS_KEY is unset: generated a local secrets key (set HUB_SECRETS_KEY in production)", "path", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("HUB_SECRETS_KEY: %w", err)
	}
	return partners.NewService(a.db, partners.Options{Issuer: a.cfg.PublicURL, SecretsKey: key, Now: now})
}

// unsubscribeKey is the key signing the unsubscribe links of notification
// mail. Without HUB_UNSUBSCRIBE_KEY (local development) it is generated once
// into the git-ignored signing key directory, which serve and worker share.
func (a *app) unsubscribeKey() ([]byte, error) {
	if a.cfg.UnsubscribeKey != "" {
		return base64.StdEncoding.DecodeString(a.cfg.UnsubscribeKey)
	}
	path := filepath.Join(a.cfg.SigningKeyDir, "unsubscribe.key")
	key, created, err := partners.LoadOrCreateSecretsKey(path)
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
// partners.DefaultGroupCommit has it.
func groupCommit(cfg config.Config) partners.GroupCommit {
	g := partners.DefaultGroupCommit
	g.MaxItems, g.Wait = cfg.EarnBatchMax, cfg.EarnBatchWait
	return g
}
