package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/members"
)

// The register of data-subject requests (members/register.go): the admin
// API lists, reads and updates it and records access requests; the console's
// privacy page shows what is due, overdue first.

// registerFilter reads ?due=, ?member_id= and the page (?cursor= is an offset).
func registerFilter(c *gin.Context) (members.RequestFilter, error) {
	var v validation.Error
	f := members.RequestFilter{Due: c.Query("due") == "true", Limit: queryLimit(c, 50, 200, &v)}
	v.Check(c.Query("due") == "" || c.Query("due") == "true" || c.Query("due") == "false", "due", "must be true or false")
	if raw := c.Query("member_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && id > 0, "member_id", "must be a positive integer")
		f.MemberID = id
	}
	if raw := c.Query("cursor"); raw != "" {
		n, err := strconv.Atoi(raw)
		v.Check(err == nil && n > 0, "cursor", "is not a cursor this API returned")
		f.Offset = n
	}
	return f, v.Err()
}

// adminListRequests is GET /v1/admin/privacy/requests.
func (s *Server) adminListRequests(c *gin.Context) {
	f, err := registerFilter(c)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Members.Requests(c.Request.Context(), f)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	next := ""
	if len(list) == f.Limit {
		next = strconv.Itoa(f.Offset + len(list))
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": next})
}

// adminGetRequest is GET /v1/admin/privacy/requests/{id}.
func (s *Server) adminGetRequest(c *gin.Context) {
	id, err := pathID(c, "id")
	var r members.DataSubjectRequest
	if err == nil {
		r, err = s.deps.Members.Request(c.Request.Context(), id)
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

type requestUpdate struct {
	Status string `json:"status"`
	Note   string `json:"note"`
}

// adminUpdateRequest is PUT /v1/admin/privacy/requests/{id}: the status
// and a note, recorded with who handled it.
func (s *Server) adminUpdateRequest(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var req requestUpdate
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.updateRequest(c, id, req.Status, req.Note)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (s *Server) updateRequest(c *gin.Context, id int64, status, note string) (members.DataSubjectRequest, error) {
	r, err := s.deps.Members.UpdateRequest(c.Request.Context(), id, members.DSRStatus(status), note, actor(c))
	s.audit(c, "privacy.request."+safeStatus(status), "request:"+strconv.FormatInt(id, 10), note, err)
	return r, err
}

func safeStatus(s string) string {
	switch s {
	case "open", "done", "refused", "cancelled":
		return s
	}
	return "update"
}

type accessRequest struct {
	Note string `json:"note"`
}

// adminRecordAccessRequest is POST /v1/admin/members/{id}/access-requests:
// the member asked what the hub holds; open until an export answers it.
func (s *Server) adminRecordAccessRequest(c *gin.Context) {
	id, ok := s.pathMember(c)
	if !ok {
		return
	}
	var req accessRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.deps.Members.RecordAccessRequest(c.Request.Context(), id, actor(c), req.Note)
	s.audit(c, "privacy.access_request", memberTarget(id), req.Note, err)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, r)
}

// consolePrivacy lists the register: what is due (overdue first), then the
// latest entries.
func (s *Server) consolePrivacy(c *gin.Context) {
	ctx := c.Request.Context()
	due, err := s.deps.Members.Requests(ctx, members.RequestFilter{Due: true, Limit: 200})
	if err == nil {
		var recent []members.DataSubjectRequest
		if recent, err = s.deps.Members.Requests(ctx, members.RequestFilter{Limit: 50}); err == nil {
			s.render(c, "console_privacy", consolePage("privacy", "Privacy requests", gin.H{"Due": due, "Recent": recent,
				"Now": s.now().UTC(), "Statuses": []string{"open", "done", "refused", "cancelled"}}))
			return
		}
	}
	s.pageError(c, "console", err)
}

// consoleUpdateRequest is the console's PUT /v1/admin/privacy/requests/{id}.
func (s *Server) consoleUpdateRequest(c *gin.Context) {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	_, err := s.updateRequest(c, id, c.PostForm("status"), strings.TrimSpace(c.PostForm("note")))
	if err != nil {
		s.failBack(c, "/console/privacy", err)
		return
	}
	okBack(c, "/console/privacy", fmt.Sprintf("Request %d updated.", id))
}

// consoleAccessRequest is the console's POST /v1/admin/members/{id}/access-requests.
func (s *Server) consoleAccessRequest(c *gin.Context) {
	id, err := strconv.ParseInt(strings.TrimSpace(c.PostForm("member_id")), 10, 64)
	if err != nil || id <= 0 {
		s.failBack(c, "/console/privacy", validation.New("member_id", "must be a member number"))
		return
	}
	note := strings.TrimSpace(c.PostForm("note"))
	_, err = s.deps.Members.RecordAccessRequest(c.Request.Context(), id, staffActor(staff(c)), note)
	s.audit(c, "privacy.access_request", memberTarget(id), note, err)
	if err != nil {
		s.failBack(c, "/console/privacy", err)
		return
	}
	okBack(c, "/console/privacy", "Access request recorded: due "+s.now().UTC().Add(members.DSRDeadline).Format(time.DateOnly)+".")
}
