package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/validation"
)

// Segments, campaigns and exports in the admin API (/v1/admin/segments,
// /campaigns, /exports). Each action is one method of the Server that the
// console form and the API handler both call (saveSegment, createCampaign,
// createGoodwill, startCampaign, startExport), recorded in the audit log
// under the same name from either door. Running a campaign and exporting
// answer 202 with the job run (web/jobs.go).

func segmentTarget(id int64) string  { return "segment:" + strconv.FormatInt(id, 10) }
func campaignTarget(id int64) string { return "campaign:" + strconv.FormatInt(id, 10) }

// saveSegment creates (id 0) or replaces a segment.
func (s *Server) saveSegment(c *gin.Context, id int64, name string, d campaigns.Definition) (campaigns.Segment, error) {
	sg, err := s.deps.Campaigns.SaveSegment(c.Request.Context(), id, name, d, staffActor(staff(c)))
	target := segmentTarget(id)
	if id == 0 {
		target = segmentTarget(sg.ID)
	}
	s.audit(c, "segment.save", target, name, err)
	return sg, err
}

// createCampaign creates a campaign over a segment.
func (s *Server) createCampaign(c *gin.Context, n campaigns.NewCampaign) (campaigns.Campaign, error) {
	camp, err := s.deps.Campaigns.CreateCampaign(c.Request.Context(), n, staffActor(staff(c)))
	s.audit(c, "campaign.create", campaignTarget(camp.ID), fmt.Sprintf("%s %s to segment %d", n.Name, n.Kind, n.SegmentID), err)
	return camp, err
}

// createGoodwill creates a goodwill campaign from an uploaded list.
func (s *Server) createGoodwill(c *gin.Context, g campaigns.Goodwill, file io.Reader, filename string) (campaigns.Campaign, error) {
	camp, err := s.deps.Campaigns.CreateGoodwill(c.Request.Context(), g, file, staffActor(staff(c)))
	s.audit(c, "campaign.goodwill", campaignTarget(camp.ID), g.Name+" "+filename, err)
	return camp, err
}

// startCampaign starts a campaign's run under the request's
// Idempotency-Key (the console sends a key of its form).
func (s *Server) startCampaign(c *gin.Context, id int64, key string) (jobs.Run, bool, error) {
	run, started, err := s.deps.Campaigns.StartRun(c.Request.Context(), id, staffActor(staff(c)), staffScope(c), key)
	s.audit(c, "campaign.run", campaignTarget(id), "run "+strconv.FormatInt(run.ID, 10), err)
	return run, started, err
}

// startExport starts an export: kind members (segmentID 0: the whole base)
// or transactions.
func (s *Server) startExport(c *gin.Context, kind string, segmentID int64) (jobs.Run, bool, error) {
	ctx, actor := c.Request.Context(), staffActor(staff(c))
	var run jobs.Run
	var started bool
	var err error
	switch kind {
	case "members":
		run, started, err = s.deps.Exports.StartMembers(ctx, segmentID, actor)
	case "transactions":
		if segmentID != 0 {
			err = validation.New("segment_id", "is only for a members export")
			break
		}
		run, started, err = s.deps.Exports.StartTransactions(ctx, actor)
	default:
		err = validation.New("kind", "must be members or transactions")
	}
	s.audit(c, "export.start", "export:"+kind, fmt.Sprintf("segment %d, run %d", segmentID, run.ID), err)
	return run, started, err
}

// ---- handlers: segments

type segmentRequest struct {
	Name       string               `json:"name"`
	Definition campaigns.Definition `json:"definition"`
}

// adminListSegments is GET /v1/admin/segments.
func (s *Server) adminListSegments(c *gin.Context) {
	list, err := s.deps.Campaigns.Segments(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

// adminCreateSegment is POST /v1/admin/segments.
func (s *Server) adminCreateSegment(c *gin.Context) {
	var req segmentRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	sg, err := s.saveSegment(c, 0, req.Name, req.Definition)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, sg)
}

// adminGetSegment is GET /v1/admin/segments/{id}.
func (s *Server) adminGetSegment(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, campaigns.ErrSegmentNotFound)
		return
	}
	sg, err := s.deps.Campaigns.GetSegment(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, sg)
}

// adminUpdateSegment is PUT /v1/admin/segments/{id}: name and definition.
func (s *Server) adminUpdateSegment(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, campaigns.ErrSegmentNotFound)
		return
	}
	var req segmentRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	sg, err := s.saveSegment(c, id, req.Name, req.Definition)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, sg)
}

// adminSegmentCount is GET /v1/admin/segments/{id}/count: how many active
// members the segment selects now.
func (s *Server) adminSegmentCount(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, campaigns.ErrSegmentNotFound)
		return
	}
	sg, err := s.deps.Campaigns.GetSegment(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	n, err := s.deps.Campaigns.Count(c.Request.Context(), sg.Definition)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"segment_id": id, "members": n})
}

// adminCountDefinition is POST /v1/admin/segments/count: the count of a
// definition not saved yet (the editor's preview). It writes nothing.
func (s *Server) adminCountDefinition(c *gin.Context) {
	var req struct {
		Definition *campaigns.Definition `json:"definition"`
	}
	_, err := decodeJSON(c, &req)
	if err == nil && req.Definition == nil {
		err = validation.New("definition", "is required")
	}
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.Set(ctxAudited, true) // a read, posted because a definition is a body: not in the audit log
	n, err := s.deps.Campaigns.Count(c.Request.Context(), *req.Definition)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": n})
}

// ---- handlers: campaigns

// campaignJSON is a campaign with its latest run, if any.
type campaignJSON struct {
	campaigns.Campaign
	LatestRun *jobRunView `json:"latest_run,omitempty"`
}

func (s *Server) campaignOut(c *gin.Context, camp campaigns.Campaign) (campaignJSON, error) {
	out := campaignJSON{Campaign: camp}
	run, found, err := s.deps.Campaigns.LatestRun(c.Request.Context(), camp.ID)
	if found {
		v := viewRun(run)
		out.LatestRun = &v
	}
	return out, err
}

// adminListCampaigns is GET /v1/admin/campaigns.
func (s *Server) adminListCampaigns(c *gin.Context) {
	list, err := s.deps.Campaigns.Campaigns(c.Request.Context())
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": list})
}

// adminCreateCampaign is POST /v1/admin/campaigns: a campaign over a segment.
func (s *Server) adminCreateCampaign(c *gin.Context) {
	var req campaigns.NewCampaign
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	camp, err := s.createCampaign(c, req)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out, err := s.campaignOut(c, camp)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

// adminCreateGoodwill is POST /v1/admin/campaigns/goodwill?name=&reason=&budget_points=
// with the list as a text/csv body.
func (s *Server) adminCreateGoodwill(c *gin.Context) {
	var v validation.Error
	g := campaigns.Goodwill{Name: c.Query("name"), Reason: c.Query("reason")}
	if raw := c.Query("budget_points"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil, "budget_points", "must be a whole number of points")
		g.BudgetPoints = n
	}
	if err := v.Err(); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	if err := csvContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	camp, err := s.createGoodwill(c, g, c.Request.Body, "")
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out, err := s.campaignOut(c, camp)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

func (s *Server) pathCampaign(c *gin.Context) (int64, bool) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, campaigns.ErrCampaignNotFound)
		return 0, false
	}
	return id, true
}

// adminGetCampaign is GET /v1/admin/campaigns/{id}: the campaign, its
// latest run (with the report once it succeeded).
func (s *Server) adminGetCampaign(c *gin.Context) {
	id, ok := s.pathCampaign(c)
	if !ok {
		return
	}
	camp, err := s.deps.Campaigns.Campaign(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out, err := s.campaignOut(c, camp)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// adminPreviewCampaign is GET /v1/admin/campaigns/{id}/preview: what a run
// now would grant and cost.
func (s *Server) adminPreviewCampaign(c *gin.Context) {
	id, ok := s.pathCampaign(c)
	if !ok {
		return
	}
	pv, err := s.deps.Campaigns.Preview(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	c.JSON(http.StatusOK, pv)
}

// adminRunCampaign is POST /v1/admin/campaigns/{id}/run: starts the
// campaign's run (202 and the run). Idempotency-Key is required: the same
// key answers the run it started.
func (s *Server) adminRunCampaign(c *gin.Context) {
	id, ok := s.pathCampaign(c)
	if !ok {
		return
	}
	idem, err := idempotency(c, staffScope(c), nil)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	run, _, err := s.startCampaign(c, id, idem.Key)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	accepted(c, run)
}

// ---- handlers: exports

type exportRequest struct {
	Kind      string `json:"kind"`
	SegmentID int64  `json:"segment_id"`
}

// exportJSON is an export's run and, once written, its file.
type exportJSON struct {
	jobRunView
	File *exports.File `json:"file,omitempty"`
}

func (s *Server) exportOut(c *gin.Context, r jobs.Run) exportJSON {
	out := exportJSON{jobRunView: viewRun(r)}
	if r.State == jobs.Succeeded {
		if f, err := s.deps.Exports.File(c.Request.Context(), r.ID); err == nil {
			out.File = &f
		}
	}
	return out
}

// adminListExports is GET /v1/admin/exports: export runs, newest first.
func (s *Server) adminListExports(c *gin.Context) {
	list, err := s.deps.Exports.List(c.Request.Context(), 50)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	out := make([]exportJSON, len(list))
	for i, r := range list {
		out[i] = s.exportOut(c, r)
	}
	c.JSON(http.StatusOK, gin.H{"data": out})
}

// adminStartExport is POST /v1/admin/exports: 202 and the export's run.
func (s *Server) adminStartExport(c *gin.Context) {
	var req exportRequest
	if _, err := decodeJSON(c, &req); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	run, _, err := s.startExport(c, strings.TrimSpace(req.Kind), req.SegmentID)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	accepted(c, run)
}

// adminExportFile is GET /v1/admin/exports/{id}/file: the finished file,
// streamed. 409 export_not_ready while the run has not finished it.
func (s *Server) adminExportFile(c *gin.Context) {
	s.exportFile(c)
}

// exportFile streams an export's CSV: the one download of the API and the
// console.
func (s *Server) exportFile(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		fail(c, s.deps.Log, exports.ErrNotFound)
		return
	}
	f, err := s.deps.Exports.File(c.Request.Context(), id)
	if err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	s.audit(c, "export.download", "export:"+strconv.FormatInt(id, 10), f.Filename, nil)
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Length", strconv.FormatInt(f.Bytes, 10))
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, f.Filename))
	c.Status(http.StatusOK)
	if err := s.deps.Exports.Stream(c.Request.Context(), id, c.Writer); err != nil {
		s.deps.Log.WarnContext(c.Request.Context(), "export download cut short", "export", id, "err", err)
	}
}
