package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/internal/validation"
)

// Staff roles and background jobs in the admin API: change a staff
// account's role, read the queues and failed tasks, run a failed task
// again, and run a periodic job now.

type staffRoleRequest struct {
	Role string `json:"role"`
}

// adminSetStaffRole is PUT /v1/admin/staff/{id}/role. The new role applies
// to the account's open sessions from their next request.
func (s *Server) adminSetStaffRole(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, access.ErrStaffNotFound)
		return
	}
	var req staffRoleRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	st, err := s.deps.Access.SetStaffRole(c.Request.Context(), id, access.Role(req.Role))
	s.audit(c, "staff.role", "staff:"+strconv.FormatInt(id, 10), req.Role, err)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, staffOut(st))
}

type queueJSON struct {
	Queue     string `json:"queue"`
	Size      int    `json:"size"`
	Pending   int    `json:"pending"`
	Active    int    `json:"active"`
	Scheduled int    `json:"scheduled"`
	Retry     int    `json:"retry"`
	Archived  int    `json:"archived"`
	Processed int    `json:"processed_today"`
	Failed    int    `json:"failed_today"`
	Paused    bool   `json:"paused"`
	LatencyMS int64  `json:"latency_ms"`
}

type failedTaskJSON struct {
	ID           string    `json:"id"`
	Queue        string    `json:"queue"`
	Type         string    `json:"type"`
	State        string    `json:"state"`
	LastError    string    `json:"last_error"`
	Retried      int       `json:"retried"`
	MaxRetry     int       `json:"max_retry"`
	LastFailedAt time.Time `json:"last_failed_at"`
}

// jobQueue reports a queue the console and the API cannot reach.
func jobQueue(err error) error { return fmt.Errorf("%w: job queue: %v", errUnavailable, err) }

// adminListJobs is GET /v1/admin/jobs: each queue with its counts and up to
// 50 failed tasks per queue (no payloads: they may hold personal data).
func (s *Server) adminListJobs(c *gin.Context) {
	if s.deps.Jobs == nil {
		fail(c, s.deps.Log, fmt.Errorf("%w: no job queue configured", errUnavailable))
		return
	}
	ctx := c.Request.Context()
	qs, err := s.deps.Jobs.Queues(ctx)
	if err != nil {
		fail(c, s.deps.Log, jobQueue(err))
		return
	}
	queues, failed := make([]queueJSON, len(qs)), []failedTaskJSON{}
	for i, q := range qs {
		queues[i] = queueJSON{Queue: q.Queue, Size: q.Size, Pending: q.Pending, Active: q.Active, Scheduled: q.Scheduled,
			Retry: q.Retry, Archived: q.Archived, Processed: q.Processed, Failed: q.Failed, Paused: q.Paused,
			LatencyMS: q.Latency.Milliseconds()}
		ts, err := s.deps.Jobs.FailedTasks(ctx, q.Queue, 50)
		if err != nil {
			fail(c, s.deps.Log, jobQueue(err))
			return
		}
		for _, t := range ts {
			failed = append(failed, failedTaskJSON{ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State, LastError: t.LastErr,
				Retried: t.Retried, MaxRetry: t.MaxRetry, LastFailedAt: t.LastFailedAt})
		}
	}
	c.JSON(http.StatusOK, gin.H{"queues": queues, "failed": failed})
}

// retryJob runs a failed task again and records it: the one path of the
// console's retry button and of POST /v1/admin/jobs/retry.
func (s *Server) retryJob(c *gin.Context, queue, id string) error {
	var err error
	if s.deps.Jobs == nil {
		err = fmt.Errorf("%w: no job queue configured", errUnavailable)
	} else if err = s.deps.Jobs.RetryTask(c.Request.Context(), queue, id); err != nil {
		err = jobQueue(err)
	}
	s.audit(c, "job.retry", "task:"+queue+"/"+id, "", err)
	return err
}

type retryJobRequest struct {
	Queue  string `json:"queue"`
	TaskID string `json:"task_id"`
}

// adminRetryJob is POST /v1/admin/jobs/retry.
func (s *Server) adminRetryJob(c *gin.Context) {
	var req retryJobRequest
	_, err := decodeJSON(c, &req)
	if err == nil {
		var v validation.Error
		v.Check(req.Queue != "" && len(req.Queue) <= 100, "queue", "is required")
		v.Check(req.TaskID != "" && len(req.TaskID) <= 200, "task_id", "is required")
		err = v.Err()
	}
	if err == nil {
		err = s.retryJob(c, req.Queue, req.TaskID)
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// runnableJobs are the periodic jobs staff may run now, by name. Each runs
// the same programme step the worker's programme:daily handler runs
// (programme.HandleDaily), synchronously, and answers its result. Every
// step is idempotent (a lot expires once, a birthday is credited once a
// year, a member's tier is reviewed once a year), so running a job now and
// again on schedule changes nothing twice.
var runnableJobs = map[string]func(s *Server, c *gin.Context) (any, error){
	"expiry": func(s *Server, c *gin.Context) (any, error) {
		return s.deps.Programme.RunExpiry(c.Request.Context(), programmeBatch)
	},
	"tier_evaluation": func(s *Server, c *gin.Context) (any, error) {
		n, err := s.deps.Programme.ReviewTiers(c.Request.Context(), s.now(), programmeBatch)
		return gin.H{"members_changed": n}, err
	},
	"birthday": func(s *Server, c *gin.Context) (any, error) {
		n, err := s.deps.Programme.RunBirthdays(c.Request.Context())
		return gin.H{"members_credited": n}, err
	},
}

// programmeBatch is the batch size of a job run from the API, the same as
// the worker's.
const programmeBatch = 500

// adminRunJob is POST /v1/admin/jobs/{name}/run: run a periodic job now and
// answer {job, started_at, finished_at, result}. Unknown names are 404
// job_not_found.
func (s *Server) adminRunJob(c *gin.Context) {
	name := c.Param("name")
	run, ok := runnableJobs[name]
	if !ok || s.deps.Programme == nil {
		s.audit(c, "job.run", "job:"+name, "", errJobNotFound)
		fail(c, s.deps.Log, fmt.Errorf("no job %q; jobs that run on demand: birthday, expiry, tier_evaluation: %w", name, errJobNotFound))
		return
	}
	started := s.now().UTC()
	res, err := run(s, c)
	s.audit(c, "job.run", "job:"+name, fmt.Sprintf("%+v", res), err)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"job": name, "started_at": started, "finished_at": s.now().UTC(), "result": res})
}
