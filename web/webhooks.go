package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/webhooks"
)

// Partners manage their own webhook endpoints and read their delivery log.

func (s *Server) createWebhook(c *gin.Context) {
	var req struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	ep, secret, err := s.deps.Webhooks.CreateEndpoint(c.Request.Context(), principal(c).PartnerID, req.URL, req.Events)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": ep.ID, "url": ep.URL, "events": ep.Events, "status": ep.Status,
		"created_at": ep.CreatedAt, "secret": secret})
}

func (s *Server) listWebhooks(c *gin.Context) {
	list, err := s.deps.Webhooks.ListEndpoints(c.Request.Context(), principal(c).PartnerID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": ""})
}

func (s *Server) disableWebhook(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := s.deps.Webhooks.DisableEndpoint(c.Request.Context(), principal(c).PartnerID, id); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) rotateWebhookSecret(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	secret, err := s.deps.Webhooks.RotateEndpointSecret(c.Request.Context(), principal(c).PartnerID, id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "secret": secret})
}

// listDeliveries pages through the delivery log, newest first; cursor is the
// last delivery id of the previous page.
func (s *Server) listDeliveries(c *gin.Context) {
	var v validation.Error
	var before int64
	if raw := c.Query("cursor"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && n > 0, "cursor", "is not a cursor this API returned")
		before = n
	}
	limit := queryLimit(c, 50, 200, &v)
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.deps.Webhooks.Deliveries(c.Request.Context(), principal(c).PartnerID, before, limit)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	next := ""
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	if list == nil {
		list = []webhooks.Delivery{}
	}
	c.JSON(http.StatusOK, gin.H{"data": list, "next_cursor": next})
}
