package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/validation"
)

// Job runs: long work a person starts and waits for (closing a settlement
// period) answers 202 with its run's URL at once; the run's state and
// progress are read here, by the admin API and by the console's progress
// bar, which polls the console twin of the same call.

// jobRunView is a run as the API shows it: with its share done and its URL.
type jobRunView struct {
	jobs.Run
	Percent int64  `json:"percent"`
	URL     string `json:"url"`
}

func viewRun(r jobs.Run) jobRunView {
	return jobRunView{Run: r, Percent: r.Percent(), URL: "/v1/admin/jobs/runs/" + strconv.FormatInt(r.ID, 10)}
}

// runs is Deps.Runs (New sets one over Deps.DB when it is nil).
func (s *Server) runs() *jobs.Service { return s.deps.Runs }

// accepted answers a started (or already running) run: 202, its URL in
// Location, the run in the body.
func accepted(c *gin.Context, r jobs.Run) {
	v := viewRun(r)
	c.Header("Location", v.URL)
	c.JSON(http.StatusAccepted, v)
}

// adminGetJobRun is GET /v1/admin/jobs/runs/:id: a run's state, progress and
// outcome.
func (s *Server) adminGetJobRun(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	r, err := s.runs().Get(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, viewRun(r))
}

// adminListJobRuns is GET /v1/admin/jobs/runs: runs newest first, by kind and
// key when asked.
func (s *Server) adminListJobRuns(c *gin.Context) {
	var v validation.Error
	before := queryCursorID(c, &v)
	limit := queryLimit(c, 50, 200, &v)
	kind, key := c.Query("kind"), c.Query("key")
	v.Check(len(kind) <= 100, "kind", "must be at most 100 characters")
	v.Check(len(key) <= 200, "key", "must be at most 200 characters")
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	list, err := s.runs().List(c.Request.Context(), jobs.Filter{Kind: kind, Key: key, Before: before, Limit: limit})
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]jobRunView, len(list))
	for i, r := range list {
		out[i] = viewRun(r)
	}
	next := ""
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	c.JSON(http.StatusOK, gin.H{"data": out, "next_cursor": next})
}
