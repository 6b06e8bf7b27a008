package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/ledger"
)

// meTransfer sends points to another member by card number, with the
// programme's limits and fee. Idempotent under Idempotency-Key.
func (s *Server) meTransfer(c *gin.Context) {
	var req struct {
		ToCard string `json:"to_card"`
		Points int64  `json:"points"`
	}
	body, err := decodeJSON(c, &req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	idem, err := idempotency(c, "member:"+strconv.FormatInt(me(c), 10), body)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	tr, err := s.deps.Programme.Transfer(c.Request.Context(), idem, me(c), req.ToCard, req.Points)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	fee := int64(0)
	for _, e := range tr.Entries {
		if e.Kind == ledger.KindOperatorFees {
			fee = int64(e.Points)
		}
	}
	status := http.StatusCreated
	if tr.Replayed {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"id": tr.ID, "points": int64(tr.Points), "fee": fee,
		"posted_at": tr.PostedAt.UTC().Format(time.RFC3339Nano), "balance_after": int64(tr.BalanceAfter)})
}

// meProgramme is the member's standing: tier, benefits, qualifying credits
// and "points expiring" notices.
func (s *Server) meProgramme(c *gin.Context) {
	ctx := c.Request.Context()
	st, err := s.deps.Programme.Status(ctx, me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ns, err := s.deps.Programme.Notices(ctx, me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": st, "expiring": ns})
}

// meCompanyCode issues a one-time redemption code for the company account
// of a designated employee.
func (s *Server) meCompanyCode(c *gin.Context) {
	co, rc, err := s.deps.Programme.IssueCompanyCode(c.Request.Context(), me(c))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"company_id": co.ID, "account_member_id": co.AccountMemberID,
		"code": rc.Code, "expires_at": rc.ExpiresAt})
}
