package web

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/partners"
)

// The console's segments (an editor with a live count), campaigns (create,
// preview, run with a progress bar, report; goodwill lists uploaded as CSV)
// and exports (start, progress, download). Each POST calls the method of its
// admin API route (web/admin_campaigns.go).

// option is one choice of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// segmentForm is the editor's fields: one input per condition the console
// offers, Errors keyed by input name.
type segmentForm struct {
	ID                                                      int64
	Name                                                    string
	TierIn, TierNotIn, PartnersUsed, PartnersUnused         []option
	EnrolledFrom, EnrolledBefore, ActiveWithin, InactiveFor string
	BalanceMin, BalanceMax, Consent                         string
	Errors                                                  map[string]string
	Count                                                   *int64
}

// segmentInputs are the editor's inputs in order, with the condition each
// makes: multi-valued inputs make a list, the others a number or a day.
var segmentInputs = []struct{ input, field, op, kind string }{
	{"tier_in", "tier", "in", "codes"},
	{"tier_not_in", "tier", "not_in", "codes"},
	{"enrolled_from", "enrolled", "on_or_after", "day"},
	{"enrolled_before", "enrolled", "before", "day"},
	{"partners_used", "partners", "used_any", "ids"},
	{"partners_unused", "partners", "used_none", "ids"},
	{"active_within", "last_activity", "within_days", "number"},
	{"inactive_for", "last_activity", "not_within_days", "number"},
	{"balance_min", "balance", "at_least", "number"},
	{"balance_max", "balance", "at_most", "number"},
	{"consent", "marketing_consent", "is", "bool"},
}

// formDefinition reads the editor's inputs into a definition and says which
// input made each condition, so the service's field errors land on it.
func formDefinition(form url.Values) (campaigns.Definition, []string) {
	d := campaigns.Definition{All: []campaigns.Condition{}}
	var inputs []string
	for _, in := range segmentInputs {
		vals := form[in.input]
		var raw any
		switch in.kind {
		case "codes", "ids":
			var list []any
			for _, v := range vals {
				if v = strings.TrimSpace(v); v == "" {
					continue
				}
				if in.kind == "ids" {
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						list = append(list, v) // refused by the service, named on this input
						continue
					}
					list = append(list, n)
				} else {
					list = append(list, v)
				}
			}
			if len(list) == 0 {
				continue
			}
			raw = list
		case "bool":
			switch form.Get(in.input) {
			case "yes":
				raw = true
			case "no":
				raw = false
			default:
				continue
			}
		default:
			v := strings.ReplaceAll(strings.TrimSpace(form.Get(in.input)), ",", "")
			if v == "" {
				continue
			}
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && in.kind == "number" {
				raw = n
			} else {
				raw = v
			}
		}
		b, _ := json.Marshal(raw)
		d.All = append(d.All, campaigns.Condition{Field: in.field, Op: in.op, Value: b})
		inputs = append(inputs, in.input)
	}
	return d, inputs
}

var conditionIndex = regexp.MustCompile(`^definition\.all\[(\d+)\]`)

// segmentErrors places err's field messages on the inputs that made them.
func segmentErrors(err error, inputs []string) map[string]string {
	out := map[string]string{}
	p, _ := problemFor(err)
	for _, fe := range p.Errors {
		name := fe.Field
		if m := conditionIndex.FindStringSubmatch(fe.Field); m != nil {
			if i, _ := strconv.Atoi(m[1]); i < len(inputs) {
				name = inputs[i]
			}
		}
		if out[name] == "" {
			out[name] = fe.Message
		}
	}
	return out
}

// newSegmentForm fills the editor from a definition.
func (s *Server) newSegmentForm(c *gin.Context, id int64, name string, d campaigns.Definition) (segmentForm, error) {
	f := segmentForm{ID: id, Name: name, Errors: map[string]string{}}
	chosen := map[string]map[string]bool{}
	for _, in := range segmentInputs {
		chosen[in.input] = map[string]bool{}
	}
	for _, cond := range d.All {
		for _, in := range segmentInputs {
			if in.field != cond.Field || in.op != cond.Op {
				continue
			}
			switch in.kind {
			case "codes", "ids":
				var list []any
				_ = json.Unmarshal(cond.Value, &list)
				for _, v := range list {
					chosen[in.input][strings.TrimSuffix(fmt.Sprint(v), ".0")] = true
				}
			default:
				var v any
				_ = json.Unmarshal(cond.Value, &v)
				text := fmt.Sprint(v)
				if b, ok := v.(bool); ok {
					text = map[bool]string{true: "yes", false: "no"}[b]
				}
				if n, ok := v.(float64); ok {
					text = strconv.FormatInt(int64(n), 10)
				}
				switch in.input {
				case "enrolled_from":
					f.EnrolledFrom = text
				case "enrolled_before":
					f.EnrolledBefore = text
				case "active_within":
					f.ActiveWithin = text
				case "inactive_for":
					f.InactiveFor = text
				case "balance_min":
					f.BalanceMin = text
				case "balance_max":
					f.BalanceMax = text
				case "consent":
					f.Consent = text
				}
			}
		}
	}
	tiers, err := s.deps.Programme.Tiers(c.Request.Context())
	if err != nil {
		return f, err
	}
	for _, t := range tiers {
		f.TierIn = append(f.TierIn, option{t.Code, t.Name, chosen["tier_in"][t.Code]})
		f.TierNotIn = append(f.TierNotIn, option{t.Code, t.Name, chosen["tier_not_in"][t.Code]})
	}
	ps, err := s.deps.Partners.Partners(c.Request.Context(), partners.Page{Limit: 200})
	if err != nil {
		return f, err
	}
	for _, p := range ps {
		id := strconv.FormatInt(p.ID, 10)
		f.PartnersUsed = append(f.PartnersUsed, option{id, p.Name, chosen["partners_used"][id]})
		f.PartnersUnused = append(f.PartnersUnused, option{id, p.Name, chosen["partners_unused"][id]})
	}
	return f, nil
}

// consoleSegments is GET /console/segments: the list and a new segment's editor.
func (s *Server) consoleSegments(c *gin.Context) {
	f, err := s.newSegmentForm(c, 0, "", campaigns.Definition{})
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	s.segmentsPage(c, http.StatusOK, f)
}

func (s *Server) segmentsPage(c *gin.Context, status int, f segmentForm) {
	list, err := s.deps.Campaigns.Segments(c.Request.Context())
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	counts := map[int64]int64{}
	for i, sg := range list {
		if i >= 20 { // the newest are counted; the rest on their page
			break
		}
		n, err := s.deps.Campaigns.Count(c.Request.Context(), sg.Definition)
		if err != nil {
			s.pageError(c, "console", err)
			return
		}
		counts[sg.ID] = n
	}
	p := consolePage("segments", "Segments", gin.H{"Segments": list, "Counts": counts, "Form": f})
	s.renderStatus(c, status, "console_segments", p)
}

// consoleSegment is GET /console/segments/:id: the segment's editor with its
// count, and its campaigns' and exports' starting points.
func (s *Server) consoleSegment(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.pageError(c, "console", campaigns.ErrSegmentNotFound)
		return
	}
	sg, err := s.deps.Campaigns.GetSegment(c.Request.Context(), id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	f, err := s.newSegmentForm(c, sg.ID, sg.Name, sg.Definition)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	n, err := s.deps.Campaigns.Count(c.Request.Context(), sg.Definition)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	f.Count = &n
	s.render(c, "console_segments", consolePage("segments", "Segment: "+sg.Name, gin.H{"Segment": sg, "Form": f}))
}

// consoleSaveSegment is POST /console/segments (new) and
// /console/segments/:id (replace): the calls of POST and PUT
// /v1/admin/segments. A refusal shows the editor again with what was typed.
func (s *Server) consoleSaveSegment(c *gin.Context) {
	var id int64
	if c.Param("id") != "" {
		var err error
		if id, err = pathID(c, "id"); err != nil {
			s.pageError(c, "console", campaigns.ErrSegmentNotFound)
			return
		}
	}
	_ = c.Request.ParseForm()
	d, inputs := formDefinition(c.Request.PostForm)
	name := strings.TrimSpace(c.PostForm("name"))
	sg, err := s.saveSegment(c, id, name, d)
	if err != nil {
		f, ferr := s.newSegmentForm(c, id, name, d)
		if ferr != nil {
			s.pageError(c, "console", ferr)
			return
		}
		f.Errors = segmentErrors(err, inputs)
		p := consolePage("segments", "Segments", nil)
		p.Error = s.friendly(c, err)
		if id == 0 {
			list, _ := s.deps.Campaigns.Segments(c.Request.Context())
			p.Data = gin.H{"Segments": list, "Counts": map[int64]int64{}, "Form": f}
			s.renderStatus(c, refusedStatus(err), "console_segments", withError(p, s.friendly(c, err)))
			return
		}
		p.Data = gin.H{"Segment": campaigns.Segment{ID: id, Name: name}, "Form": f}
		s.renderStatus(c, refusedStatus(err), "console_segments", withError(p, s.friendly(c, err)))
		return
	}
	okBack(c, "/console/segments/"+strconv.FormatInt(sg.ID, 10), "Segment "+sg.Name+" saved.")
}

func withError(p uiPage, msg string) uiPage { p.Error = msg; return p }

// consoleCountSegment is POST /console/segments/count: the editor's live
// count, as JSON, of the definition its inputs make (the call of POST
// /v1/admin/segments/count). Field errors name the editor's inputs.
func (s *Server) consoleCountSegment(c *gin.Context) {
	_ = c.Request.ParseForm()
	d, inputs := formDefinition(c.Request.PostForm)
	n, err := s.deps.Campaigns.Count(c.Request.Context(), d)
	if err != nil {
		c.JSON(refusedStatus(err), gin.H{"errors": segmentErrors(err, inputs)})
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": n})
}

// ---- campaigns

// consoleCampaigns is GET /console/campaigns.
func (s *Server) consoleCampaigns(c *gin.Context) {
	s.campaignsPage(c, http.StatusOK, "", nil, nil)
}

func (s *Server) campaignsPage(c *gin.Context, status int, form string, posted url.Values, err error) {
	ctx := c.Request.Context()
	list, lerr := s.deps.Campaigns.Campaigns(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	segs, lerr := s.deps.Campaigns.Segments(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	tiers, lerr := s.deps.Programme.Tiers(ctx)
	if lerr != nil {
		s.pageError(c, "console", lerr)
		return
	}
	f := newFormState()
	f.set("campaign", "kind", campaigns.KindPoints)
	var lines []validation.FieldError
	if err != nil {
		f.refused(form, posted, err, nil)
		if form == "goodwill" {
			p, _ := problemFor(err)
			for _, fe := range p.Errors {
				if strings.HasPrefix(fe.Field, "lines[") {
					lines = append(lines, validation.FieldError{Field: fe.Field, Message: fe.Message})
				}
			}
		}
	}
	p := consolePage("campaigns", "Campaigns", gin.H{"Campaigns": list, "Segments": segs, "Tiers": tiers,
		"V": f.V, "E": f.E, "Open": f.Open, "Lines": lines})
	if err != nil {
		p.Error = s.friendly(c, err)
	}
	s.renderStatus(c, status, "console_campaigns", p)
}

// consoleCreateCampaign is POST /console/campaigns: the call of POST
// /v1/admin/campaigns.
func (s *Server) consoleCreateCampaign(c *gin.Context) {
	var v validation.Error
	n := campaigns.NewCampaign{Name: c.PostForm("name"), Kind: c.PostForm("kind"), Reason: c.PostForm("reason"),
		SegmentID: formInt(c.PostForm("segment_id"), "segment_id", &v), Points: formInt(c.PostForm("points"), "points", &v),
		BudgetPoints: formInt(c.PostForm("budget_points"), "budget_points", &v), TierCode: strings.TrimSpace(c.PostForm("tier_code"))}
	if n.Kind == campaigns.KindTier {
		n.Points, n.BudgetPoints = 0, 0
	} else {
		n.TierCode = ""
	}
	if raw := strings.TrimSpace(c.PostForm("tier_ends_at")); raw != "" && n.Kind == campaigns.KindTier {
		t, err := time.Parse("2006-01-02", raw)
		if v.Check(err == nil, "tier_ends_at", "must be a day, YYYY-MM-DD") {
			n.TierEndsAt = &t
		}
	}
	err := v.Err()
	var camp campaigns.Campaign
	if err == nil {
		camp, err = s.createCampaign(c, n)
	}
	if err != nil {
		s.campaignsPage(c, refusedStatus(err), "campaign", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/campaigns/"+strconv.FormatInt(camp.ID, 10), "Campaign created: check the preview, then run it.")
}

// consoleGoodwill is POST /console/campaigns/goodwill: a CSV list of members
// (the call of POST /v1/admin/campaigns/goodwill). A bad file is refused with
// every bad line named, and nothing is written.
func (s *Server) consoleGoodwill(c *gin.Context) {
	if err := multipartContentType(c.GetHeader("Content-Type")); err != nil {
		fail(c, s.deps.Log, err)
		return
	}
	var v validation.Error
	g := campaigns.Goodwill{Name: c.PostForm("name"), Reason: c.PostForm("reason"),
		BudgetPoints: formInt(c.PostForm("budget_points"), "budget_points", &v)}
	fh, ferr := c.FormFile("file")
	if ferr != nil {
		v.Add("file", "choose the CSV file of members")
	}
	err := v.Err()
	var camp campaigns.Campaign
	if err == nil {
		f, oerr := fh.Open()
		if oerr != nil {
			s.failBack(c, "/console/campaigns", oerr)
			return
		}
		defer f.Close()
		camp, err = s.createGoodwill(c, g, f, fh.Filename)
	}
	if err != nil {
		s.campaignsPage(c, refusedStatus(err), "goodwill", c.Request.PostForm, err)
		return
	}
	okBack(c, "/console/campaigns/"+strconv.FormatInt(camp.ID, 10),
		fmt.Sprintf("List of %d members uploaded: check the preview, then run it.", camp.ListSize))
}

// campaignRunPage is a campaign's run as its page shows it.
type campaignRunPage struct {
	jobs.Run
	Percent int64
	Report  *campaigns.Report
	Took    string
}

// consoleCampaign is GET /console/campaigns/:id: the campaign, the preview
// of a run now, the run's progress or its report.
func (s *Server) consoleCampaign(c *gin.Context) {
	ctx := c.Request.Context()
	id, err := pathID(c, "id")
	if err != nil {
		s.pageError(c, "console", campaigns.ErrCampaignNotFound)
		return
	}
	camp, err := s.deps.Campaigns.Campaign(ctx, id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	pv, err := s.deps.Campaigns.Preview(ctx, id)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	data := gin.H{"Campaign": camp, "Preview": pv, "Key": newFormKey()}
	if camp.SegmentID > 0 {
		if sg, err := s.deps.Campaigns.GetSegment(ctx, camp.SegmentID); err == nil {
			data["Segment"] = sg
		}
	}
	if run, found, err := s.deps.Campaigns.LatestRun(ctx, id); err != nil {
		s.pageError(c, "console", err)
		return
	} else if found {
		v := campaignRunPage{Run: run, Percent: run.Percent()}
		if len(run.Result) > 0 {
			var rep campaigns.Report
			if json.Unmarshal(run.Result, &rep) == nil {
				v.Report = &rep
			}
		}
		if run.StartedAt != nil && run.FinishedAt != nil {
			v.Took = run.FinishedAt.Sub(*run.StartedAt).Round(100 * time.Millisecond).String()
		}
		data["Run"] = v
	}
	s.render(c, "console_campaign", consolePage("campaigns", "Campaign: "+camp.Name, data))
}

// newFormKey is the Idempotency-Key a console form sends: one per page
// shown, so submitting that form twice starts one run.
func newFormKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

// consoleRunCampaign is POST /console/campaigns/:id/run: the call of POST
// /v1/admin/campaigns/{id}/run, with the form's key.
func (s *Server) consoleRunCampaign(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.pageError(c, "console", campaigns.ErrCampaignNotFound)
		return
	}
	key := c.PostForm("idempotency_key")
	if !idempotencyKeyPattern.MatchString(key) {
		key = newFormKey()
	}
	to := "/console/campaigns/" + strconv.FormatInt(id, 10)
	_, started, err := s.startCampaign(c, id, key)
	if err != nil {
		s.failBack(c, to, err)
		return
	}
	msg := "The campaign is running: members are granted as it goes."
	if !started {
		msg = "The campaign is already running."
	}
	okBack(c, to, msg)
}

// ---- exports

type exportRow struct {
	jobs.Run
	Percent int64
	File    *exports.File
	What    string
}

// consoleExports is GET /console/exports.
func (s *Server) consoleExports(c *gin.Context) {
	ctx := c.Request.Context()
	list, err := s.deps.Exports.List(ctx, 30)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	segs, err := s.deps.Campaigns.Segments(ctx)
	if err != nil {
		s.pageError(c, "console", err)
		return
	}
	names := map[string]string{}
	for _, sg := range segs {
		names["segment:"+strconv.FormatInt(sg.ID, 10)] = sg.Name
	}
	rows := make([]exportRow, len(list))
	for i, r := range list {
		row := exportRow{Run: r, Percent: r.Percent(), What: "Transactions"}
		if r.Kind == exports.KindMembers {
			row.What = "All members"
			if n, ok := names[r.Key]; ok {
				row.What = "Members of " + n
			} else if r.Key != "all" {
				row.What = "Members of " + r.Key
			}
		}
		if r.State == jobs.Succeeded {
			if f, err := s.deps.Exports.File(ctx, r.ID); err == nil {
				row.File = &f
			}
		}
		rows[i] = row
	}
	s.render(c, "console_exports", consolePage("exports", "Exports", gin.H{"Exports": rows, "Segments": segs}))
}

// consoleStartExport is POST /console/exports: the call of POST
// /v1/admin/exports.
func (s *Server) consoleStartExport(c *gin.Context) {
	var v validation.Error
	seg := formInt(c.PostForm("segment_id"), "segment_id", &v)
	err := v.Err()
	started := false
	if err == nil {
		_, started, err = s.startExport(c, c.PostForm("kind"), seg)
	}
	if err != nil {
		s.failBack(c, "/console/exports", err)
		return
	}
	msg := "The export has started: its file can be downloaded here when it is written."
	if !started {
		msg = "That export is already being written."
	}
	okBack(c, "/console/exports", msg)
}

// consoleExportFile is GET /console/exports/:id/file: the download of GET
// /v1/admin/exports/{id}/file.
func (s *Server) consoleExportFile(c *gin.Context) {
	if _, err := pathID(c, "id"); err != nil {
		s.pageError(c, "console", exports.ErrNotFound)
		return
	}
	if _, err := s.deps.Exports.File(c.Request.Context(), mustID(c)); err != nil {
		s.pageError(c, "console", err)
		return
	}
	s.exportFile(c)
}

func mustID(c *gin.Context) int64 {
	id, _ := strconv.ParseInt(c.Param("id"), 10, 64)
	return id
}
