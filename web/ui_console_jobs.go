package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/settlement"
)

// Job runs in the console: the period page's progress bar of a close, fed by
// consoleJobRun, which answers what GET /v1/admin/jobs/runs/:id answers (the
// same service call) to the console's cookie session.

// consoleJobRun is GET /console/jobs/runs/:id: the run as JSON, polled by
// the progress bar (ui.js).
func (s *Server) consoleJobRun(c *gin.Context) {
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

// closeRunPage is a close run as the period page shows it.
type closeRunPage struct {
	jobs.Run
	Percent int64
	Result  *settlement.CloseResult
	Took    string
}

func closeRunView(r jobs.Run) closeRunPage {
	v := closeRunPage{Run: r, Percent: r.Percent()}
	if len(r.Result) > 0 {
		var res settlement.CloseResult
		if json.Unmarshal(r.Result, &res) == nil {
			v.Result = &res
		}
	}
	if r.StartedAt != nil && r.FinishedAt != nil {
		v.Took = r.FinishedAt.Sub(*r.StartedAt).Round(100 * time.Millisecond).String()
	}
	return v
}
