package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Every admin API call that may change something (any method but GET and
// HEAD) is recorded in the operator audit log, with its outcome, like the
// console's actions. Handlers that record their own entry (with a detail
// line: web/admin_members.go, web/admin_ops.go) mark the request, and the
// middleware then leaves it alone. A call refused as bad input (400, 413,
// 415) is not recorded: it attempted nothing, and bad input writes nothing.
// Refusals for the caller's role or by the domain (403, 404, 409, 422) are
// recorded as failed.

const ctxAudited = "audit.recorded"

// errAuditFailed is the outcome of a call that answered an error status.
var errAuditFailed = errors.New("answered an error")

// adminAuditActions names the actions the console records under a name of
// its own, so that the audit log shows one name whichever door was used.
// Other routes are named after their method and path (adminAction).
var adminAuditActions = map[string]string{
	"POST /v1/admin/partners":                                    "partner.create",
	"POST /v1/admin/partners/:id/status":                         "partner.status",
	"POST /v1/admin/partners/:id/contracts":                      "contract.publish",
	"POST /v1/admin/partners/:id/clients":                        "client.create",
	"POST /v1/admin/clients/:client_id/secret":                   "client.rotate_secret",
	"POST /v1/admin/clients/:client_id/revoke":                   "client.revoke",
	"POST /v1/admin/catalog/rewards/:id/moderation":              "reward.moderate",
	"POST /v1/admin/catalog/rewards":                             "reward.create",
	"PUT /v1/admin/catalog/rewards/:id":                          "reward.update",
	"POST /v1/admin/catalog/rewards/:id/stock":                   "reward.stock",
	"POST /v1/admin/catalog/rewards/:id/vouchers":                "reward.vouchers",
	"PUT /v1/admin/catalog/rewards/:id/image":                    "reward.image",
	"POST /v1/admin/catalog/rewards/:id/retire":                  "reward.retire",
	"POST /v1/admin/settlement/periods/:month/close":             "period.close",
	"POST /v1/admin/settlement/statements/:id/approve":           "statement.approve",
	"POST /v1/admin/settlement/statements/:id/send":              "statement.send",
	"POST /v1/admin/settlement/statements/:id/payments":          "statement.payment",
	"POST /v1/admin/settlement/nettings":                         "statement.netting",
	"POST /v1/admin/settlement/periods/:month/reconciliations":   "reconciliation.upload",
	"POST /v1/admin/settlement/reconciliation-lines/:id/resolve": "reconciliation.resolve",
	"POST /v1/admin/logout":                                      "staff.logout",
	"PUT /v1/admin/settlement/accounts/:kind":                    "settlement.account",
}

// adminAction is the audit action of a route: its console name, or
// "api.<method>.<path segments without parameters>" (at most 64 characters
// of a-z, _ and .).
func adminAction(method, route string) string {
	if a, ok := adminAuditActions[method+" "+route]; ok {
		return a
	}
	parts := []string{"api", strings.ToLower(method)}
	for _, seg := range strings.Split(strings.TrimPrefix(route, "/v1/admin/"), "/") {
		if seg == "" || strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
			continue
		}
		parts = append(parts, strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r == '_':
				return r
			case r == '-':
				return '_'
			}
			return -1
		}, strings.ToLower(seg)))
	}
	a := strings.Join(parts, ".")
	if len(a) > 64 {
		a = a[:64]
	}
	return a
}

// auditAdminAPI records the admin API calls that may change something. It
// runs after staffAuth, so the caller is known; refused calls (a role
// without the right, bad input) are recorded as failed.
func (s *Server) auditAdminAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if m := c.Request.Method; m == http.MethodGet || m == http.MethodHead || c.GetBool(ctxAudited) {
			return
		}
		var err error
		switch st := c.Writer.Status(); {
		case badInputStatus(st):
			return
		case st >= 400:
			err = errAuditFailed
		}
		s.audit(c, adminAction(c.Request.Method, c.FullPath()), strings.TrimPrefix(c.Request.URL.Path, "/v1/admin/"), "", err)
	}
}

// badInputStatus reports the statuses of a request refused as bad input.
func badInputStatus(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge ||
		status == http.StatusUnsupportedMediaType
}

// badInput reports whether err is bad input (answered 400, 413 or 415).
func badInput(err error) bool {
	p, _ := problemFor(err)
	return badInputStatus(p.Status)
}
