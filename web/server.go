// Package web is the HTTP surface of the hub: the one route table, the auth
// middleware, the JSON API handlers, and the operator console and member
// portal. Handlers decode and validate requests, call domain services, and
// render responses; the domain errors they get back become problem+json in
// exactly one place (errors.go).
package web

import (
	"context"
	"github.com/coalitionhub/hub/abuse"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/catalog"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/points"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/rules"
	"github.com/coalitionhub/hub/settlement"
	"github.com/coalitionhub/hub/webhooks"
)

// Deps is everything the HTTP layer needs. cmd/hub builds it; tests build it
// against their own database.
type Deps struct {
	DB *gorm.DB
	// Reads chooses the connection of stale-tolerant reads (the console
	// dashboard): the read replica while it keeps up; nil: DB.
	Reads     *database.Reads
	PingRedis func(context.Context) error
	Log       *slog.Logger
	Registry  *prometheus.Registry
	Version   string
	MaxBody   int64 // bytes; default 1 MiB

	// Partners is the registry: partners, contracts, outlets, prepaid.
	Partners *partners.Service
	// Access is API clients, OAuth, signing keys, staff and member tokens.
	Access *access.Service
	// The partner points API and what it reads.
	Transactions *points.Transactions
	Rules        *rules.Service
	Webhooks     *webhooks.Service
	Members      *members.Service
	Ledger       *ledger.Service
	Consent      *members.BurnConsent
	// Catalog: rewards, orders, vouchers (web/catalog.go).
	Catalog *catalog.Service
	// Settlement: periods, statements, reconciliation (web/settlement.go).
	Settlement *settlement.Service
	// Exchange with partner programmes (web/exchange.go).
	Exchange *exchange.Service
	// Programme: tiers, transfers, companies (web/programme.go).
	Programme *programme.Service
	// Segments and campaigns, and large exports (web/admin_campaigns.go).
	Campaigns *campaigns.Service
	Exports   *exports.Service
	// Abuse: partners' fraud rules and the flags held for review (web/abuse.go).
	Abuse *abuse.Service
	// Runs are the job runs of long work people start and wait for, such
	// as closing a period (web/jobs.go).
	Runs *jobs.Service
	// Jobs lets the console show queues and failed tasks (web/ui_jobs.go);
	// nil shows a notice. Now is the console's clock (nil: time.Now).
	Jobs Jobs
	Now  Clock

	// ClientRate and ClientBurst are each API client's token bucket
	// (requests per second, burst); defaults 20 and 40. LoginRate and
	// LoginBurst limit sign-ins per client IP; defaults 0.2 and 5.
	ClientRate  float64
	ClientBurst int
	LoginRate   float64
	LoginBurst  int

	// TrustedProxies are the addresses and CIDRs of the reverse proxies in
	// front of the hub (config HUB_TRUSTED_PROXIES). Only a request coming
	// from one of them has its client IP taken from X-Forwarded-For (or
	// X-Real-IP); every other request's client IP is its peer address.
	// Empty trusts none. Entries must parse (config.Load checks them); one
	// that does not makes the router trust none.
	TrustedProxies []string
}

// Server holds the dependencies of the handlers.
type Server struct {
	deps         Deps
	metrics      *httpMetrics
	clientLimits *keyedLimiter // per API client id
	loginLimits  *keyedLimiter // per client IP on every sign-in
}

// New builds a server. It registers its metrics on deps.Registry.
func New(deps Deps) *Server {
	if deps.MaxBody == 0 {
		deps.MaxBody = 1 << 20
	}
	if deps.ClientRate <= 0 {
		deps.ClientRate, deps.ClientBurst = 20, max(deps.ClientBurst, 40)
	}
	if deps.ClientBurst <= 0 {
		deps.ClientBurst = 40
	}
	if deps.LoginRate <= 0 {
		deps.LoginRate = 0.2
	}
	if deps.LoginBurst <= 0 {
		deps.LoginBurst = 5
	}
	if deps.Runs == nil && deps.DB != nil {
		deps.Runs = jobs.NewService(deps.DB, deps.Now, deps.Log)
	}
	return &Server{deps: deps, metrics: newHTTPMetrics(deps.Registry),
		clientLimits: newKeyedLimiter(rate.Limit(deps.ClientRate), deps.ClientBurst),
		loginLimits:  newKeyedLimiter(rate.Limit(deps.LoginRate), deps.LoginBurst)}
}

// now is the clock of the handlers (Deps.Now, or the wall clock).
func (s *Server) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}

// Handler returns the router: the whole HTTP surface in one table.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// gin trusts every proxy unless told otherwise, which would let any
	// client choose its own IP (and its own per-IP sign-in budget) with an
	// X-Forwarded-For header.
	if err := r.SetTrustedProxies(s.deps.TrustedProxies); err != nil {
		s.deps.Log.Error("trusted proxies refused; trusting none", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.Use(withRequestID(), recoverProblem(s.deps.Log), observe(s.deps.Log, s.metrics), limitBody(s.deps.Log, s.deps.MaxBody),
		forwardedFromTrusted(s.deps.TrustedProxies))
	r.NoRoute(func(c *gin.Context) { fail(c, s.deps.Log, errNotFound) })
	r.NoMethod(func(c *gin.Context) { fail(c, s.deps.Log, errMethodNotAllowed) })

	// ---- Partner API: a partner's systems, bearer token from /oauth/token
	// (web/oauth.go), one scope per capability. Another partner's object
	// answers 404.
	r.POST("/oauth/token", s.oauthToken)
	r.GET("/.well-known/jwks.json", s.jwks)
	scope := s.requireScope
	v1 := r.Group("/v1", s.partnerAuth())
	// Members (web/members_api.go).
	v1.POST("/members", scope(access.ScopeMembersWrite), s.enrolMember)
	v1.GET("/members", scope(access.ScopeMembersRead), s.lookupMember)
	v1.GET("/members/:id", scope(access.ScopeMembersRead), s.getMember)
	// Points: earn, burns with holds, reversals, reads (web/points.go).
	v1.POST("/earn/quote", scope(access.ScopePointsEarn), s.quoteEarn)
	v1.POST("/earn", scope(access.ScopePointsEarn), s.earn)
	v1.POST("/earn/batch", scope(access.ScopePointsEarn), s.earnBatch)
	v1.POST("/burns", scope(access.ScopePointsBurn), s.burn)
	v1.GET("/burns/:id", scope(access.ScopePointsBurn), s.getBurn)
	v1.POST("/burns/:id/capture", scope(access.ScopePointsBurn), s.captureBurn)
	v1.POST("/burns/:id/void", scope(access.ScopePointsBurn), s.voidBurn)
	v1.GET("/transactions", s.listTransactions)
	v1.GET("/transactions/:id", s.getTransaction)
	v1.POST("/transactions/:id/reversals", scope(access.ScopePointsReverse), s.reverse)
	v1.GET("/flags", s.partnerFlags)
	// Webhooks (web/webhooks.go).
	v1.POST("/webhooks", s.createWebhook)
	v1.GET("/webhooks", s.listWebhooks)
	v1.DELETE("/webhooks/:id", s.disableWebhook)
	v1.POST("/webhooks/:id/rotate-secret", s.rotateWebhookSecret)
	v1.GET("/webhook-deliveries", s.listDeliveries)
	// Catalog: publish rewards, fulfil orders (web/catalog.go).
	v1.POST("/catalog/rewards", scope(access.ScopeCatalogManage), s.createReward)
	v1.GET("/catalog/rewards", scope(access.ScopeCatalogManage), s.listRewards)
	v1.GET("/catalog/rewards/:id", scope(access.ScopeCatalogManage), s.getReward)
	v1.PUT("/catalog/rewards/:id", scope(access.ScopeCatalogManage), s.updateReward)
	v1.POST("/catalog/rewards/:id/vouchers", scope(access.ScopeCatalogManage), s.uploadVouchers)
	v1.GET("/orders", scope(access.ScopeOrdersFulfil), s.listOrders)
	v1.GET("/orders/:id", scope(access.ScopeOrdersFulfil), s.getOrder)
	v1.POST("/orders/:id/fulfil", scope(access.ScopeOrdersFulfil), s.fulfilOrder)
	v1.POST("/orders/:id/reject", scope(access.ScopeOrdersFulfil), s.rejectOrder)
	// Settlement: statements and reconciliation files; {id} of the upload is
	// the period, YYYY-MM (web/settlement.go).
	v1.GET("/statements", scope(access.ScopeSettlementRead), s.listStatements)
	v1.GET("/statements/:id", scope(access.ScopeSettlementRead), s.getStatement)
	v1.GET("/statements/:id/lines", scope(access.ScopeSettlementRead), s.getStatementLines)
	v1.GET("/statements/:id/invoice", scope(access.ScopeSettlementRead), s.getStatementInvoice)
	v1.POST("/statements/:id/reconciliation", scope(access.ScopeSettlementRead), s.uploadReconciliation)
	v1.GET("/reconciliations/:id", scope(access.ScopeSettlementRead), s.getReconciliation)
	// Exchange with partner programmes (web/exchange.go).
	v1.POST("/exchanges", scope(access.ScopeExchange), s.inboundExchange)
	v1.GET("/exchanges/:id", scope(access.ScopeExchange), s.partnerExchange)
	v1.POST("/outbound-exchanges/:public_id/status", scope(access.ScopeExchange), s.outboundStatus)
	v1.POST("/outbound-exchanges/:public_id/reversal", scope(access.ScopeExchange), s.outboundReversal)

	// ---- Member API: the portal's apps, member token from /v1/me/login
	// (web/me.go).
	r.POST("/v1/me/login", s.memberLogin)
	// Accounts by emailed link, no token (web/accounts.go).
	r.POST("/v1/me/signup", s.meSignup)
	r.POST("/v1/me/claim", s.meClaim)
	r.POST("/v1/me/password-reset", s.meRequestPasswordReset)
	r.POST("/v1/me/verify", s.meVerify)
	// Notification mail and email change by link, no token (web/notify.go).
	r.POST("/v1/me/unsubscribe", s.meUnsubscribe)
	r.POST("/v1/me/email/verify", s.meVerifyEmail)
	me := r.Group("/v1/me", s.memberAuth())
	me.POST("/logout", s.memberLogout)
	me.POST("/logout-all", s.meLogoutEverywhere)
	me.GET("/sessions", s.meSessions)
	me.PUT("/password", s.meChangePassword)
	me.POST("/email", s.meChangeEmail)
	me.GET("/notifications", s.meNotifications)
	me.PUT("/notifications", s.meSetNotifications)
	me.GET("", s.meProfile)
	me.PATCH("", s.meUpdateProfile)
	me.GET("/balance", s.meBalance)
	me.GET("/transactions", s.meTransactions)
	me.POST("/redemption-codes", s.meRedemptionCode)
	me.PUT("/pin", s.meSetPIN)
	// Catalog: browse and order (web/catalog.go).
	me.GET("/catalog", s.meCatalog)
	me.GET("/catalog/:id", s.meCatalogReward)
	me.POST("/orders", s.mePlaceOrder)
	me.GET("/orders", s.meListOrders)
	me.GET("/orders/:id", s.meGetOrder)
	me.POST("/orders/:id/cancel", s.meCancelOrder)
	// Exchange (web/exchange.go).
	me.GET("/exchange-programmes", s.meExchangeProgrammes)
	me.GET("/exchange-links", s.meExchangeLinks)
	me.PUT("/exchange-links/:id", s.meLinkExchangeAccount)
	me.POST("/exchange-quotes", s.meExchangeQuote)
	me.POST("/exchanges", s.meConfirmExchange)
	me.GET("/exchanges", s.meExchanges)
	me.GET("/exchanges/:id", s.meExchange)
	// Programme: transfers, tier standing, company codes (web/programme.go).
	me.POST("/transfers", s.meTransfer)
	me.GET("/programme", s.meProgramme)
	me.POST("/company/redemption-codes", s.meCompanyCode)

	// ---- Admin API: the operator's staff, staff token from /v1/admin/login.
	// admin: everything; finance: reads, contracts, prepaid, settlement;
	// support: reads.
	all := s.requireRole(access.RoleAdmin, access.RoleFinance, access.RoleSupport)
	fin := s.requireRole(access.RoleAdmin, access.RoleFinance)
	adm := s.requireRole(access.RoleAdmin)
	r.POST("/v1/admin/login", s.adminLogin)
	a := r.Group("/v1/admin", s.staffAuth())
	a.Use(s.auditAdminAPI()) // every call that may change something is in the audit log (web/admin_audit.go)
	a.POST("/logout", s.adminLogout)
	// Partners, contracts, prepaid, API clients, signing keys, staff (web/admin.go).
	a.GET("/partners", all, s.adminListPartners)
	a.POST("/partners", adm, s.adminCreatePartner)
	a.GET("/partners/:id", all, s.adminGetPartner)
	a.POST("/partners/:id/status", adm, s.adminSetPartnerStatus)
	a.GET("/partners/:id/outlets", all, s.adminListOutlets)
	a.POST("/partners/:id/outlets", adm, s.adminCreateOutlet)
	a.GET("/partners/:id/contracts", all, s.adminListContracts)
	a.POST("/partners/:id/contracts", fin, s.adminPublishContract)
	a.GET("/partners/:id/contract", all, s.adminContractAt)
	a.GET("/partners/:id/prepaid", all, s.adminPrepaidBalance)
	a.POST("/partners/:id/prepaid/top-ups", fin, s.adminTopUp)
	a.GET("/partners/:id/clients", all, s.adminListClients)
	a.POST("/partners/:id/clients", adm, s.adminCreateClient)
	a.POST("/clients/:client_id/secret", adm, s.adminRotateClientSecret)
	a.POST("/clients/:client_id/revoke", adm, s.adminRevokeClient)
	a.PUT("/clients/:client_id/public-key", adm, s.adminSetClientKey)
	a.GET("/signing-keys", adm, s.adminSigningKeys)
	a.POST("/signing-keys/rotate", adm, s.adminRotateSigningKey)
	a.GET("/staff", adm, s.adminListStaff)
	a.POST("/staff", adm, s.adminCreateStaff)
	a.POST("/staff/:id/status", adm, s.adminSetStaffStatus)
	a.PUT("/staff/:id/role", adm, s.adminSetStaffRole)
	// Members, jobs (web/admin_members.go, web/admin_ops.go).
	a.GET("/members", all, s.adminListMembers)
	a.GET("/members/:id", all, s.adminGetMember)
	a.POST("/members/:id/adjustments", fin, s.adminAdjustPoints)
	a.POST("/members/:id/status", adm, s.adminSetMemberStatus)
	a.POST("/members/:id/merge", adm, s.adminMergeMember)
	a.POST("/members/:id/export", adm, s.adminExportMember)
	a.POST("/members/:id/erasure", adm, s.adminEraseMember)
	a.GET("/jobs", all, s.adminListJobs)
	a.POST("/jobs/retry", adm, s.adminRetryJob)
	a.POST("/jobs/:name/run", adm, s.adminRunJob)
	// Earn rules and promotions (web/admin_rules.go).
	a.GET("/partners/:id/earn-rules", all, s.adminListRules)
	a.POST("/partners/:id/earn-rules", fin, s.adminPublishRule)
	a.GET("/partners/:id/promotions", all, s.adminListPromotions)
	a.POST("/partners/:id/promotions", fin, s.adminCreatePromotion)
	a.POST("/promotions/:id/end", fin, s.adminEndPromotion)
	// Setting a partner up: earn quote, webhooks and replays (web/admin_partner_setup.go).
	a.POST("/partners/:id/earn-rules/quote", all, s.adminQuoteRule)
	a.GET("/partners/:id/webhooks", all, s.adminPartnerWebhooks)
	a.POST("/partners/:id/webhook-deliveries/:delivery_id/replay", adm, s.adminReplayDelivery)
	// Catalog moderation (web/catalog.go).
	a.GET("/catalog/rewards", all, s.adminListRewards)
	a.POST("/catalog/rewards/:id/moderation", adm, s.adminModerateReward)
	// The operator's own rewards (web/admin_catalog.go).
	a.POST("/catalog/rewards", adm, s.adminCreateOperatorReward)
	a.GET("/catalog/rewards/:id", all, s.adminGetReward)
	a.PUT("/catalog/rewards/:id", adm, s.adminUpdateOperatorReward)
	a.POST("/catalog/rewards/:id/retire", adm, s.adminRetireReward)
	a.POST("/catalog/rewards/:id/stock", adm, s.adminChangeStock)
	a.POST("/catalog/rewards/:id/vouchers", adm, s.adminUploadOperatorVouchers)
	a.PUT("/catalog/rewards/:id/image", adm, s.adminSetRewardImage)
	a.GET("/catalog/rewards/:id/events", all, s.adminRewardEvents)
	// Settlement: periods, rates, statements, adjustments, reconciliation
	// (web/settlement.go).
	a.GET("/settlement/periods", all, s.adminListPeriods)
	a.GET("/settlement/periods/:month", all, s.adminGetPeriod)
	a.POST("/settlement/periods/:month/close", fin, s.adminClosePeriod)
	a.GET("/settlement/periods/:month/report", all, s.adminPeriodReport)
	a.GET("/settlement/periods/:month/rates", all, s.adminListRates)
	a.PUT("/settlement/periods/:month/rates", fin, s.adminSetRate)
	a.POST("/settlement/periods/:month/reconciliations", fin, s.adminUploadReconciliation)
	a.GET("/settlement/statements", all, s.adminListStatements)
	a.GET("/settlement/statements/:id", all, s.adminGetStatement)
	a.POST("/settlement/statements/:id/approve", fin, s.adminApproveStatement)
	a.POST("/settlement/statements/:id/send", fin, s.adminSendStatement)
	a.POST("/settlement/adjustments", fin, s.adminCreateAdjustment)
	a.GET("/settlement/reconciliations/:id", all, s.adminGetReconciliation)
	// The operator's result, liability roll-forward, general-ledger journal
	// and chart of accounts (web/admin_finance.go).
	a.GET("/settlement/periods/:month/result", all, s.adminPeriodResult)
	a.GET("/settlement/periods/:month/liability", all, s.adminPeriodLiability)
	a.GET("/settlement/periods/:month/journal", all, s.adminPeriodJournal)
	a.GET("/settlement/accounts", all, s.adminListAccounts)
	a.PUT("/settlement/accounts/:kind", fin, s.adminSetAccount)
	a.GET("/settlement/reconciliations/:id/lines", all, s.adminReconciliationLines)
	a.GET("/settlement/reconciliations/:id/errors", all, s.adminReconciliationErrors)
	a.POST("/settlement/reconciliation-lines/:id/resolve", fin, s.adminResolveReconLine)
	// Who moved a statement, its invoice or credit note, payments, nettings,
	// open balances and ageing, and the billing configuration
	// (web/admin_payments.go).
	a.GET("/settlement/statements/:id/transitions", all, s.adminStatementTransitions)
	a.GET("/settlement/statements/:id/invoice", all, s.adminStatementInvoice)
	a.GET("/settlement/statements/:id/payments", all, s.adminStatementPayments)
	a.POST("/settlement/statements/:id/payments", fin, s.adminRecordPayment)
	a.POST("/settlement/nettings", fin, s.adminCreateNetting)
	a.GET("/settlement/balances", all, s.adminOpenBalances)
	a.GET("/settlement/tax-rates", all, s.adminListTaxRates)
	a.PUT("/settlement/tax-rates/:country", fin, s.adminSetTaxRate)
	a.GET("/settlement/legal-entities", all, s.adminListLegalEntities)
	a.PUT("/settlement/legal-entities/:code", adm, s.adminSetLegalEntity)
	a.GET("/partners/:id/billing", all, s.adminGetPartnerBilling)
	a.PUT("/partners/:id/billing", fin, s.adminSetPartnerBilling)
	a.GET("/settlement/approval-limits", all, s.adminListApprovalLimits)
	a.PUT("/settlement/approval-limits/:currency", adm, s.adminSetApprovalLimit)
	// Exchanges and exchange programmes (web/exchange.go).
	a.GET("/exchanges", all, s.adminExchanges)
	a.GET("/exchanges/:id", all, s.adminExchange)
	a.GET("/exchange-programmes", all, s.adminExchangeProgrammes)
	a.POST("/exchange-programmes", adm, s.adminCreateExchangeProgramme)
	// Programme: policy, tiers, grants, companies (web/admin_programme.go).
	a.GET("/programme/policy", all, s.adminProgrammePolicy)
	a.PUT("/programme/policy", adm, s.adminSetProgrammePolicy)
	a.GET("/programme/tiers", all, s.adminProgrammeTiers)
	a.PUT("/programme/tiers/:code", adm, s.adminPutProgrammeTier)
	a.POST("/programme/grants", fin, s.adminGrantTier)
	a.GET("/members/:id/tier", all, s.adminMemberTier)
	a.GET("/programme/company-levels", all, s.adminCompanyLevels)
	a.GET("/programme/company-levels/:code", all, s.adminCompanyLevel)
	a.PUT("/programme/company-levels/:code", adm, s.adminPutCompanyLevel)
	a.POST("/programme/companies", adm, s.adminCreateCompany)
	a.POST("/programme/companies/:id/employees", adm, s.adminAddEmployee)
	a.POST("/programme/corporate-partners", adm, s.adminAddCorporatePartner)
	a.GET("/programme/companies", all, s.adminListCompanies)
	a.GET("/programme/companies/:id", all, s.adminGetCompany)
	a.GET("/programme/employees", all, s.adminListEmployees)
	a.GET("/programme/employees/:member_id", all, s.adminGetEmployee)
	a.GET("/programme/corporate-partners", all, s.adminListCorporatePartners)
	a.GET("/programme/corporate-partners/:partner_id", all, s.adminGetCorporatePartner)

	// Reading long work and records: job runs (long work such as closing a
	// period answers 202 with its run; web/jobs.go), the transactions behind
	// a statement line (web/statement_lines.go), the audit log filtered, as
	// JSON or CSV (web/audit_log.go).
	a.GET("/jobs/runs", all, s.adminListJobRuns)
	a.GET("/jobs/runs/:id", all, s.adminGetJobRun)
	a.GET("/settlement/statements/:id/transactions", all, s.adminStatementTransactions)
	a.GET("/audit", adm, s.adminAuditLog)
	// Segments, campaigns (points or a tier to a segment or an uploaded
	// list, as job runs) and large exports (web/admin_campaigns.go).
	a.GET("/segments", all, s.adminListSegments)
	a.POST("/segments", fin, s.adminCreateSegment)
	a.POST("/segments/count", all, s.adminCountDefinition)
	a.GET("/segments/:id", all, s.adminGetSegment)
	a.PUT("/segments/:id", fin, s.adminUpdateSegment)
	a.GET("/segments/:id/count", all, s.adminSegmentCount)
	a.GET("/campaigns", all, s.adminListCampaigns)
	a.POST("/campaigns", fin, s.adminCreateCampaign)
	a.POST("/campaigns/goodwill", fin, s.adminCreateGoodwill)
	a.GET("/campaigns/:id", all, s.adminGetCampaign)
	a.GET("/campaigns/:id/preview", all, s.adminPreviewCampaign)
	a.POST("/campaigns/:id/run", fin, s.adminRunCampaign)
	a.GET("/exports", adm, s.adminListExports)
	a.POST("/exports", adm, s.adminStartExport)
	a.GET("/exports/:id/file", adm, s.adminExportFile)

	// Fraud and abuse rules per partner and the flags held for review
	// (web/abuse.go).
	a.GET("/partners/:id/abuse-rules", all, s.adminAbuseRules)
	a.PUT("/partners/:id/abuse-rules", adm, s.adminSetAbuseRules)
	a.GET("/flags", all, s.adminListFlags)
	a.GET("/flags/:id", all, s.adminGetFlag)
	a.POST("/flags/:id/review", adm, s.adminReviewFlag)

	// The register of data-subject requests (web/privacy.go).
	a.GET("/privacy/requests", all, s.adminListRequests)
	a.GET("/privacy/requests/:id", all, s.adminGetRequest)
	a.PUT("/privacy/requests/:id", adm, s.adminUpdateRequest)
	a.POST("/members/:id/access-requests", adm, s.adminRecordAccessRequest)

	// ---- Console: the operator's server-rendered pages, cookie session and
	// CSRF check (web/ui_console.go and the ui_*.go it uses). Roles as in the
	// admin API.
	cg := r.Group("/console", uiHeaders())
	cg.GET("/static/*file", serveStatic)
	cg.GET("/login", s.consoleLoginPage)
	cg.POST("/login", s.consoleLogin)
	cs := cg.Group("", s.consoleSession(), s.requireCSRF("console"))
	cAll := s.consoleRole(access.RoleAdmin, access.RoleFinance, access.RoleSupport)
	cFin := s.consoleRole(access.RoleAdmin, access.RoleFinance)
	cAdm := s.consoleRole(access.RoleAdmin)
	cs.POST("/logout", s.consoleLogout)
	cs.GET("", cAll, s.consoleDashboard)
	cs.GET("/partners", cAll, s.consolePartners)
	cs.POST("/partners", cAdm, s.consoleCreatePartner)
	cs.GET("/partners/:id", cAll, s.consolePartner)
	cs.POST("/partners/:id/status", cAdm, s.consolePartnerStatus)
	cs.POST("/partners/:id/contracts", cFin, s.consolePublishContract)
	cs.POST("/partners/:id/clients", cAdm, s.consoleCreateClient)
	cs.POST("/clients/:client_id/secret", cAdm, s.consoleRotateSecret)
	cs.POST("/clients/:client_id/revoke", cAdm, s.consoleRevokeClient)
	cs.GET("/members", cAll, s.consoleMembers)
	cs.GET("/members/:id", cAll, s.consoleMember)
	cs.POST("/members/:id/adjustments", cFin, s.consoleAdjust)
	cs.POST("/members/:id/status", cAdm, s.consoleMemberStatus)
	cs.POST("/members/:id/merge", cAdm, s.consoleMerge)
	cs.GET("/catalog", cAll, s.consoleCatalog)
	cs.POST("/catalog/:id/moderation", cAdm, s.consoleModerate)
	// The operator's own rewards (web/ui_console_catalog.go).
	cs.POST("/catalog", cAdm, s.consoleCreateReward)
	cs.GET("/catalog/:id", cAll, s.consoleReward)
	cs.POST("/catalog/:id", cAdm, s.consoleUpdateReward)
	cs.POST("/catalog/:id/stock", cAdm, s.consoleChangeStock)
	cs.POST("/catalog/:id/vouchers", cAdm, s.consoleUploadVouchers)
	cs.POST("/catalog/:id/image", cAdm, s.consoleSetRewardImage)
	cs.POST("/catalog/:id/retire", cAdm, s.consoleRetireReward)
	cs.GET("/settlement", cAll, s.consoleSettlement)
	cs.GET("/settlement/:month", cAll, s.consolePeriod)
	cs.POST("/settlement/:month/close", cFin, s.consoleClosePeriod)
	cs.GET("/statements/:id", cAll, s.consoleStatement)
	cs.GET("/statements/:id/file/:format", cAll, s.consoleStatementFile)
	cs.POST("/statements/:id/:action", cFin, s.consoleStatementAction)
	cs.GET("/reconciliation", cAll, s.consoleReconciliation)
	cs.POST("/reconciliation", cFin, s.consoleUploadReconciliation)
	cs.GET("/reconciliations/:id", cAll, s.consoleReconciliationDetail)
	cs.POST("/reconciliation-lines/:id/resolve", cFin, s.consoleResolve)
	cs.GET("/finance", cAll, s.consoleFinance)
	cs.GET("/finance/:month", cAll, s.consoleFinancePeriod)
	cs.GET("/finance/:month/journal/:format", cAll, s.consoleFinanceJournal)
	cs.POST("/finance/accounts", cFin, s.consoleSetAccount)
	cs.GET("/jobs", cAll, s.consoleJobs)
	cs.POST("/jobs/retry", cAdm, s.consoleRetryJob)
	cs.GET("/audit", cAdm, s.consoleAudit)
	// The same reads in the console: a job run's progress as JSON for the
	// progress bars (web/ui_console_jobs.go), the transactions behind a
	// statement line (web/statement_lines.go).
	cs.GET("/jobs/runs/:id", cAll, s.consoleJobRun)
	cs.GET("/statements/:id/transactions", cAll, s.consoleStatementTransactions)
	// Receivables and payables with ageing, the invoice download, payments
	// and nettings (web/ui_console_payments.go).
	cs.GET("/receivables", cAll, s.consoleReceivables)
	cs.GET("/statements/:id/invoice", cAll, s.consoleStatementInvoice)
	cs.POST("/nettings", cFin, s.consoleNetting)
	// Setting a partner up, the programme and staff: each POST calls the
	// service method of its admin API route (web/ui_console_partner.go,
	// web/ui_console_programme.go, web/ui_console_staff.go).
	cs.POST("/partners/:id/outlets", cAdm, s.consoleCreateOutlet)
	cs.POST("/partners/:id/earn-rules", cFin, s.consolePublishRule)
	cs.POST("/partners/:id/earn-rules/quote", cAll, s.consoleQuoteRule)
	cs.POST("/partners/:id/promotions", cFin, s.consoleCreatePromotion)
	cs.POST("/promotions/:id/end", cFin, s.consoleEndPromotion)
	cs.POST("/partners/:id/prepaid/top-ups", cFin, s.consoleTopUp)
	cs.POST("/partners/:id/webhook-deliveries/:delivery_id/replay", cAdm, s.consoleReplayDelivery)
	cs.POST("/partners/:id/abuse-rules", cAdm, s.consoleSetAbuseRules)
	cs.GET("/flags", cAll, s.consoleFlags)
	cs.POST("/flags/:id/review", cAdm, s.consoleReviewFlag)
	cs.GET("/privacy", cAll, s.consolePrivacy)
	cs.POST("/privacy/access", cAdm, s.consoleAccessRequest)
	cs.POST("/privacy/:id", cAdm, s.consoleUpdateRequest)
	cs.GET("/programme", cAll, s.consoleProgramme)
	cs.POST("/programme/policy", cAdm, s.consoleSetPolicy)
	cs.POST("/programme/tiers", cAdm, s.consolePutTier)
	cs.POST("/programme/company-levels", cAdm, s.consolePutCompanyLevel)
	cs.POST("/programme/companies", cAdm, s.consoleCreateCompany)
	cs.POST("/programme/employees", cAdm, s.consoleAddEmployee)
	cs.POST("/programme/corporate-partners", cAdm, s.consoleAddCorporatePartner)
	// Segments with their live count, campaigns (preview, run, report,
	// goodwill lists) and exports (web/ui_console_campaigns.go): each POST
	// calls the method of its admin API route.
	cs.GET("/segments", cAll, s.consoleSegments)
	cs.POST("/segments", cFin, s.consoleSaveSegment)
	cs.POST("/segments/count", cAll, s.consoleCountSegment)
	cs.GET("/segments/:id", cAll, s.consoleSegment)
	cs.POST("/segments/:id", cFin, s.consoleSaveSegment)
	cs.GET("/campaigns", cAll, s.consoleCampaigns)
	cs.POST("/campaigns", cFin, s.consoleCreateCampaign)
	cs.POST("/campaigns/goodwill", cFin, s.consoleGoodwill)
	cs.GET("/campaigns/:id", cAll, s.consoleCampaign)
	cs.POST("/campaigns/:id/run", cFin, s.consoleRunCampaign)
	cs.GET("/exports", cAdm, s.consoleExports)
	cs.POST("/exports", cAdm, s.consoleStartExport)
	cs.GET("/exports/:id/file", cAdm, s.consoleExportFile)
	cs.GET("/staff", cAdm, s.consoleStaff)
	cs.POST("/staff", cAdm, s.consoleCreateStaff)
	cs.POST("/staff/:id/status", cAdm, s.consoleStaffStatus)
	cs.POST("/staff/:id/role", cAdm, s.consoleStaffRole)

	// ---- Portal: the member's server-rendered pages, cookie session and
	// CSRF check (web/ui_portal.go).
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/portal") })
	pg := r.Group("/portal", uiHeaders())
	pg.GET("/static/*file", serveStatic)
	pg.GET("/login", s.portalLoginPage)
	pg.POST("/login", s.portalLogin)
	pg.GET("/signup", s.portalSignupPage)
	pg.POST("/signup", s.portalSignup)
	pg.GET("/claim", s.portalClaimPage)
	pg.POST("/claim", s.portalClaim)
	pg.GET("/reset", s.portalResetPage)
	pg.POST("/reset", s.portalReset)
	pg.GET("/verify", s.portalVerifyPage)
	pg.POST("/verify", s.portalVerify)
	pg.GET("/verify-email", s.portalVerifyEmailPage)
	pg.POST("/verify-email", s.portalVerifyEmail)
	pg.GET("/unsubscribe", s.portalUnsubscribePage)
	pg.POST("/unsubscribe", s.portalUnsubscribe)
	pm := pg.Group("", s.portalSession(), s.requireCSRF("portal"))
	pm.POST("/logout", s.portalLogout)
	pm.GET("", s.portalHome)
	pm.GET("/history", s.portalHistory)
	pm.GET("/catalog", s.portalCatalog)
	pm.POST("/orders", s.portalOrder)
	pm.POST("/orders/:id/cancel", s.portalCancelOrder)
	pm.GET("/redeem", s.portalRedeemPage)
	pm.POST("/redeem", s.portalRedeem)
	pm.POST("/pin", s.portalSetPIN)
	pm.GET("/exchange", s.portalExchange)
	pm.POST("/exchange/link", s.portalLink)
	pm.POST("/exchange/quote", s.portalQuote)
	pm.POST("/exchange/confirm", s.portalConfirm)
	pm.GET("/transfers", s.portalTransfers)
	pm.POST("/transfers", s.portalTransfer)
	pm.GET("/accounts", s.portalAccounts)
	pm.GET("/profile", s.portalProfile)
	pm.POST("/profile", s.portalSetProfile)
	pm.GET("/consent", s.portalConsent)
	pm.POST("/consent", s.portalSetConsent)
	pm.POST("/password", s.portalChangePassword)
	pm.POST("/email", s.portalChangeEmail)
	pm.POST("/notifications", s.portalSetNotifications)
	pm.POST("/sessions/end-all", s.portalLogoutEverywhere)
	pm.GET("/export", s.portalExport)

	// ---- Operations and the API description: probes, metrics, OpenAPI 3.1
	// and its reference page (web/health.go, web/openapi.go).
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))
	r.GET("/openapi.json", s.openapi)
	// Reward images, public like the catalog they illustrate (web/admin_catalog.go).
	r.GET("/catalog/images/:id", s.rewardImage)
	docs := r.Group("/docs", docsHeaders())
	docs.GET("", s.docsPage)
	docs.GET("/static/*file", serveStatic)

	return r
}
