package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
)

// Members in the admin API (/v1/admin/members/...): search, a member with
// its balance, points adjustments, suspension, merge, export and erasure.
// Each action is one method of the Server that the console form and the
// API handler both call (adjustMember, setMemberStatus, mergeMember), so
// the two cannot drift; each records the action in the operator audit log
// under the same name from either door.

// adminMemberJSON is a member as staff see it: everything the member base
// holds (members.Member has its own JSON shape, with no storage types) and
// the balance in its parts.
type adminMemberJSON struct {
	members.Member
	Balance balanceJSON `json:"balance"`
}

func (s *Server) adminMember(ctx context.Context, m members.Member) (adminMemberJSON, error) {
	b, err := s.deps.Ledger.Balance(ctx, m.ID)
	if err != nil {
		return adminMemberJSON{}, err
	}
	if m.Identifiers == nil {
		m.Identifiers = []members.Identifier{}
	}
	return adminMemberJSON{Member: m, Balance: balanceOut(b)}, nil
}

func memberTarget(id int64) string { return "member:" + strconv.FormatInt(id, 10) }

// staffMove decodes the JSON body of a staff request that moves points or
// money into req, and reads its Idempotency-Key (required), scoped to the
// staff account.
func staffMove(c *gin.Context, req any) (ledger.Idempotency, error) {
	body, err := decodeJSON(c, req)
	if err != nil {
		return ledger.Idempotency{}, err
	}
	return idempotency(c, staffScope(c), body)
}

// staffScope is the idempotency scope of a staff member's point moves: a
// key is unique per staff account, as a partner's is per partner.
func staffScope(c *gin.Context) string {
	return "staff:" + strconv.FormatInt(staff(c).StaffID, 10)
}

// adjustMember credits (points > 0) or debits a member against the
// operator's adjustments account and records it in the audit log: the one
// path of the console form and of POST /v1/admin/members/{id}/adjustments.
// A member that is closed or merged is refused (member_inactive); a
// suspended one may be corrected.
func (s *Server) adjustMember(c *gin.Context, idem ledger.Idempotency, id, points int64, reason string) (ledger.Transaction, error) {
	ctx := c.Request.Context()
	t, err := func() (ledger.Transaction, error) {
		m, err := s.deps.Members.Get(ctx, id)
		if err != nil {
			return ledger.Transaction{}, err
		}
		if m.Status == members.StatusClosed || m.Status == members.StatusMerged {
			return ledger.Transaction{}, members.CanTransact(m)
		}
		return s.deps.Ledger.Adjust(ctx, ledger.AdjustRequest{Idem: idem, MemberID: id, Points: ledger.Points(points),
			Reason: reason, Actor: staffActor(staff(c))})
	}()
	if t.Replayed { // the same action answered again, not a second one
		c.Set(ctxAudited, true)
		return t, nil
	}
	s.audit(c, "member.adjust", memberTarget(id), fmt.Sprintf("%d points: %s", points, reason), err)
	return t, err
}

// setMemberStatus suspends (status suspended, with a reason) or reactivates
// (status active) a member and records it: the one path of the console and
// of POST /v1/admin/members/{id}/status. Suspension ends the member's
// sessions at once; a suspended member can neither sign in nor earn or burn.
func (s *Server) setMemberStatus(c *gin.Context, id int64, status members.Status, reason string) (members.Member, error) {
	ctx := c.Request.Context()
	var m members.Member
	var err error
	action := "member.suspend"
	switch status {
	case members.StatusSuspended:
		m, err = s.deps.Members.Suspend(ctx, id, reason, staffActor(staff(c)))
	case members.StatusActive:
		action = "member.reactivate"
		m, err = s.deps.Members.Reactivate(ctx, id, staffActor(staff(c)))
	default:
		action, err = "member.status", validation.New("status", "must be suspended or active")
	}
	s.audit(c, action, memberTarget(id), reason, err)
	return m, err
}

// mergeMember folds duplicate into survivor (members.Merge: identifiers,
// balance, lots and holds move; a repeated merge returns the first record)
// and records it: the one path of the console and of the admin API.
func (s *Server) mergeMember(c *gin.Context, survivor, duplicate int64, reason string) (members.Merge, error) {
	m, err := s.deps.Members.Merge(c.Request.Context(), members.MergeRequest{SurvivorID: survivor, DuplicateID: duplicate,
		Actor: staffActor(staff(c)), Reason: reason})
	s.audit(c, "member.merge", memberTarget(survivor), "duplicate "+strconv.FormatInt(duplicate, 10)+": "+reason, err)
	return m, err
}

// --- handlers -------------------------------------------------------------------

// pathMember reads the member id of the path; an id that is not one is 404
// member_not_found, answered here.
func (s *Server) pathMember(c *gin.Context) (int64, bool) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, members.ErrNotFound)
		return 0, false
	}
	return id, true
}

// renderMember answers m with its balance, or err as a problem.
func (s *Server) renderMember(c *gin.Context, m members.Member, err error) {
	if err == nil {
		var out adminMemberJSON
		if out, err = s.adminMember(c.Request.Context(), m); err == nil {
			c.JSON(http.StatusOK, out)
			return
		}
	}
	fail(c, s.deps.Log, err)
}

// adminListMembers is GET /v1/admin/members?q=&status=&cursor=&limit=.
func (s *Server) adminListMembers(c *gin.Context) {
	var v validation.Error
	q := members.Query{Text: strings.TrimSpace(c.Query("q")), Status: members.Status(c.Query("status")),
		Cursor: c.Query("cursor"), Limit: queryLimit(c, 50, 200, &v)}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, next, err := s.deps.Members.Search(c.Request.Context(), q)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	data := make([]adminMemberJSON, len(list))
	for i, m := range list {
		if data[i], err = s.adminMember(c.Request.Context(), m); err != nil {
			fail(c, s.deps.Log, err)
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// adminGetMember is GET /v1/admin/members/{id}.
func (s *Server) adminGetMember(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	m, err := s.deps.Members.Get(c.Request.Context(), id)
	s.renderMember(c, m, err)
}

type adjustmentRequest struct {
	Points int64  `json:"points"`
	Reason string `json:"reason"`
}

// adminAdjustPoints is POST /v1/admin/members/{id}/adjustments: points > 0
// credit, < 0 debit. Idempotent under Idempotency-Key (per staff account):
// a replay answers the first result with Idempotent-Replayed: true.
func (s *Server) adminAdjustPoints(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	var req adjustmentRequest
	idem, err := staffMove(c, &req)
	if err == nil {
		var v validation.Error
		v.Check(req.Points != 0, "points", "must be a whole number other than 0, negative to deduct")
		v.Check(strings.TrimSpace(req.Reason) != "" && len(req.Reason) <= 500, "reason", "is required (at most 500 characters)")
		err = v.Err()
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	t, err := s.adjustMember(c, idem, id, req.Points, strings.TrimSpace(req.Reason))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	replayed(c, t.Replayed)
	c.JSON(http.StatusCreated, transactionOut(t))
}

type memberStatusRequest struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// adminSetMemberStatus is POST /v1/admin/members/{id}/status.
func (s *Server) adminSetMemberStatus(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	var req memberStatusRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	m, err := s.setMemberStatus(c, id, members.Status(req.Status), strings.TrimSpace(req.Reason))
	s.renderMember(c, m, err)
}

type mergeRequest struct {
	DuplicateID int64  `json:"duplicate_id"`
	Reason      string `json:"reason"`
}

// adminMergeMember is POST /v1/admin/members/{id}/merge: {id} survives.
func (s *Server) adminMergeMember(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	var req mergeRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	m, err := s.mergeMember(c, id, req.DuplicateID, strings.TrimSpace(req.Reason))
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, m)
}

// adminExportMember is POST /v1/admin/members/{id}/export: everything the
// hub holds about the member (members.Export). A POST because it records
// the request in the register of data-subject requests.
func (s *Server) adminExportMember(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	x, err := s.deps.Members.Export(c.Request.Context(), id, staffActor(staff(c)))
	s.audit(c, "member.export", memberTarget(id), "", err)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="member-%d.json"`, id))
	c.JSON(http.StatusOK, x)
}

type erasureRequest struct {
	Reason string `json:"reason"`
}

// adminEraseMember is POST /v1/admin/members/{id}/erasure. It is refused
// (409 erasure_blocked, the reason in detail) while the member has
// exchanges in flight or points on hold; otherwise the account is closed if
// it is open (remaining points forfeited) and erased (members.EraseAccount).
// Repeating it answers the erased member again.
func (s *Server) adminEraseMember(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	var req erasureRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	reason := strings.TrimSpace(req.Reason)
	m, err := s.eraseMember(c, id, reason)
	s.audit(c, "member.erase", memberTarget(id), reason, err)
	s.renderMember(c, m, err)
}

// eraseMember refuses an erasure while an exchange of the member is open
// (processing or pending: the partner programme may still answer), then
// runs members.EraseAccount, which refuses while points are held.
func (s *Server) eraseMember(c *gin.Context, id int64, reason string) (members.Member, error) {
	ctx := c.Request.Context()
	if s.deps.Exchange != nil {
		open := 0
		for _, st := range []exchange.Status{exchange.StatusProcessing, exchange.StatusPending} {
			list, err := s.deps.Exchange.List(ctx, exchange.Filter{MemberID: id, Status: st, Limit: 200})
			if err != nil {
				return members.Member{}, err
			}
			open += len(list)
		}
		if open > 0 {
			return members.Member{}, fmt.Errorf("member %d has %d exchanges in flight; wait until the partner programme answers: %w",
				id, open, members.ErrErasureBlocked)
		}
	}
	return s.deps.Members.EraseAccount(ctx, id, reason, staffActor(staff(c)))
}
