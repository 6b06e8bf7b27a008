package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/exports"
)

// TestAdminCampaignFlow drives segments, a campaign and an export through
// the admin API with a worker running the job runs: the live count, the
// preview, a run answered 202 and replayed by its key, the report, a
// second run granting nobody twice, a bad goodwill file naming its lines,
// and an export downloaded once written.
func TestAdminCampaignFlow(t *testing.T) {
	t.Parallel()
	e := newMemberAdminEnv(t, nil)
	startWorker(t, e.db, map[string]asynq.Handler{
		campaigns.TypeRun:  campaigns.HandleRun(e.camps, e.runs),
		exports.TypeExport: exports.HandleExport(e.exps, e.runs),
	})
	admin := e.login("root@hub.test", access.RoleAdmin)
	finance := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		e.member(email)
	}
	def := map[string]any{"all": []any{map[string]any{"field": "marketing_consent", "op": "is", "value": true}}}

	code, body, _ := e.send(http.MethodPost, "/v1/admin/segments/count", support, map[string]any{"definition": def})
	if code != 200 || body["members"] != float64(3) {
		t.Fatalf("live count: %d %v; want 3", code, body)
	}
	bad := map[string]any{"all": []any{map[string]any{"field": "balance", "op": "at_least", "value": "lots"}}}
	code, body, _ = e.send(http.MethodPost, "/v1/admin/segments", finance, map[string]any{"name": "x", "definition": bad})
	wantField(t, code, body, "definition.all[0].value")
	code, seg, _ := e.send(http.MethodPost, "/v1/admin/segments", finance, map[string]any{"name": "Consenting", "definition": def})
	if code != 201 {
		t.Fatalf("create segment: %d %v", code, seg)
	}
	segID := itoa(int64(seg["id"].(float64)))
	if code, body, _ := e.send(http.MethodGet, "/v1/admin/segments/"+segID+"/count", support, nil); code != 200 || body["members"] != float64(3) {
		t.Fatalf("segment count: %d %v; want 3", code, body)
	}

	code, camp, _ := e.send(http.MethodPost, "/v1/admin/campaigns", finance, map[string]any{"name": "Welcome", "kind": "points",
		"segment_id": seg["id"], "points": 100, "budget_points": 250, "reason": "welcome bonus"})
	if code != 201 {
		t.Fatalf("create campaign: %d %v", code, camp)
	}
	path := "/v1/admin/campaigns/" + itoa(int64(camp["id"].(float64)))
	code, pv, _ := e.send(http.MethodGet, path+"/preview", support, nil)
	if code != 200 || pv["members"] != float64(3) || pv["to_grant"] != float64(2) || pv["over_budget"] != float64(1) || pv["cost"] != float64(200) {
		t.Fatalf("preview: %d %v; want 3 members, 2 within the budget for 200", code, pv)
	}
	code, body, _ = e.sendKey(http.MethodPost, path+"/run", finance, "", nil)
	wantField(t, code, body, "Idempotency-Key")
	code, run, h := e.sendKey(http.MethodPost, path+"/run", finance, "run-1", nil)
	if code != 202 || h.Get("Location") == "" {
		t.Fatalf("run: %d %v; want 202 with Location", code, run)
	}
	_, again, _ := e.sendKey(http.MethodPost, path+"/run", finance, "run-1", nil)
	if again["id"] != run["id"] {
		t.Fatalf("the same key answered run %v; want %v", again["id"], run["id"])
	}
	done := awaitRun(t, func() map[string]any { _, r, _ := e.send(http.MethodGet, h.Get("Location"), support, nil); return r })
	rep, _ := done["result"].(map[string]any)
	if done["state"] != "succeeded" || done["percent"] != float64(100) || rep["granted"] != float64(2) || rep["skipped_budget"] != float64(1) || rep["cost"] != float64(200) {
		t.Fatalf("run %v; want succeeded at 100%% with 2 granted, 1 skipped, cost 200", done)
	}
	code, run2, h := e.sendKey(http.MethodPost, path+"/run", finance, "run-2", nil)
	if code != 202 || run2["id"] == run["id"] {
		t.Fatalf("second run: %d %v", code, run2)
	}
	done = awaitRun(t, func() map[string]any { _, r, _ := e.send(http.MethodGet, h.Get("Location"), support, nil); return r })
	if rep, _ := done["result"].(map[string]any); rep["granted"] != float64(0) || rep["already_granted"] != float64(2) {
		t.Fatalf("second run %v; want nobody granted twice", done)
	}
	var total int64
	e.db.Raw(`SELECT coalesce(sum(points), 0) FROM ledger_transactions WHERE external_ref LIKE 'campaign:%'`).Scan(&total)
	if total != 200 {
		t.Fatalf("campaign postings hold %d points; want 200", total)
	}

	// A goodwill file with a bad line is refused whole.
	csv := "member,points,reason\n987654,10,sorry\n"
	code, body = e.postCSV("/v1/admin/campaigns/goodwill?name=Sorry", finance, csv)
	wantField(t, code, body, "lines[2].member")

	// An export, downloaded once written.
	code, exp, h := e.send(http.MethodPost, "/v1/admin/exports", admin, map[string]any{"kind": "members", "segment_id": seg["id"]})
	if code != 202 {
		t.Fatalf("export: %d %v", code, exp)
	}
	awaitRun(t, func() map[string]any { _, r, _ := e.send(http.MethodGet, h.Get("Location"), admin, nil); return r })
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/admin/exports/"+itoa(int64(exp["id"].(float64)))+"/file", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	file, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || strings.Count(string(file), "\n") != 4 || !strings.Contains(string(file), "a@example.com") {
		t.Fatalf("download: %d %q; want the header and 3 members", res.StatusCode, file)
	}
	if code, body, _ := e.send(http.MethodPost, "/v1/admin/exports", finance, map[string]any{"kind": "members"}); code != 403 {
		t.Fatalf("finance exports: %d %v; want 403", code, body)
	}
}

// postCSV posts a CSV body with a bearer token.
func (e *contractEnv) postCSV(path, token, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/csv")
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}
