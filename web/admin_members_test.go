package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/coalitionhub/hub/access"
	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/apitest"
	jobsvc "github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/testredis"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/partners"
	"github.com/coalitionhub/hub/programme"
)

// memberAdminEnv is a contractEnv (every answer validated against the
// OpenAPI document) with every service the member admin API touches.
type memberAdminEnv struct {
	*contractEnv
	mem *members.Service
	led *ledger.Service
	xch *exchange.Service
	// Segments, campaigns, exports and the job runs behind them.
	camps *campaigns.Service
	exps  *exports.Service
	runs  *jobsvc.Service
}

func newMemberAdminEnv(t *testing.T, jobs Jobs) *memberAdminEnv {
	t.Helper()
	out := &memberAdminEnv{}
	out.contractEnv = newContractEnv(t, func(d *Deps) {
		l := ledger.NewService(d.DB, nowUTC)
		mem := members.NewService(d.DB, l, nowUTC)
		consent := members.NewBurnConsent(d.DB, nowUTC, members.DefaultConsentPolicy)
		d.Ledger, d.Members, d.Consent = l, mem, consent
		d.Programme = programme.NewService(d.DB, l, mem, consent, nowUTC)
		d.Exchange = exchange.NewService(d.DB, l, mem, d.Partners, d.Access.SecretBox(), exchange.NewHTTPPartner(time.Minute), nowUTC)
		d.Jobs = jobs
		d.Runs = jobsvc.NewService(d.DB, nowUTC, nil)
		d.Campaigns = campaigns.NewService(d.DB, mem, l, d.Programme, d.Runs, nowUTC)
		d.Exports = exports.NewService(d.DB, mem, l, d.Programme, d.Campaigns, d.Runs, nowUTC)
		out.mem, out.led, out.xch = mem, l, d.Exchange
		out.camps, out.exps, out.runs = d.Campaigns, d.Exports, d.Runs
	})
	return out
}

func (e *memberAdminEnv) member(email string) members.Member {
	e.t.Helper()
	m, _, err := e.mem.Enrol(context.Background(), members.EnrolRequest{
		Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
		Profile:    members.Profile{Email: email, GivenName: "Grace", FamilyName: "Hopper", BirthDate: "1990-12-09"},
		Consent:    members.Consent{Marketing: true, Source: "enrolment"}, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// sendKey is send with an Idempotency-Key header; it returns the header
// of the answer too.
func (e *contractEnv) sendKey(method, path, token, key string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(apitest.MustJSON(e.t, body)))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

// rows counts the rows of table.
func (e *memberAdminEnv) rows(table string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Raw(`SELECT count(*) FROM ` + table).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// wantField fails unless body is a 400 invalid_request naming field.
func wantField(t *testing.T, code int, body map[string]any, field string) {
	t.Helper()
	if code != http.StatusBadRequest || body["code"] != "invalid_request" {
		t.Fatalf("got %d %v; want 400 invalid_request naming %s", code, body, field)
	}
	for _, f := range fieldErrors(t, body) {
		if f == field {
			return
		}
	}
	t.Fatalf("errors %v; want one naming %q", body["errors"], field)
}

func TestAdminMemberAdjustmentsAreIdempotentAndValidated(t *testing.T) {
	t.Parallel()
	e := newMemberAdminEnv(t, nil)
	admin := e.login("root@hub.test", access.RoleAdmin)
	finance := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)
	m := e.member("grace@example.com")
	path := "/v1/admin/members/" + itoa(m.ID) + "/adjustments"
	const post = http.MethodPost

	// Bad input names its field and writes nothing.
	before := e.rows("ledger_transactions")
	for _, c := range []struct {
		key   string
		body  any
		field string
	}{
		{"k-bad-1", map[string]any{"points": 0, "reason": "goodwill"}, "points"},
		{"k-bad-2", map[string]any{"points": 100, "reason": "  "}, "reason"},
		{"k-bad-3", map[string]any{"points": "100", "reason": "goodwill"}, "points"},
		{"", map[string]any{"points": 100, "reason": "goodwill"}, "Idempotency-Key"},
	} {
		code, body, _ := e.sendKey(post, path, finance, c.key, c.body)
		wantField(t, code, body, c.field)
	}
	if after := e.rows("ledger_transactions"); after != before {
		t.Fatalf("bad adjustments wrote %d transactions; want none", after-before)
	}
	if code, body, _ := e.sendKey(post, path, support, "k-support", map[string]any{"points": 100, "reason": "goodwill"}); code != 403 || body["code"] != "forbidden" {
		t.Fatalf("support adjusts: %d %v; want 403 forbidden", code, body)
	}

	// A credit, its replay, and the same key with another body.
	code, first, h := e.sendKey(post, path, finance, "k-1", map[string]any{"points": 700, "reason": "goodwill"})
	if code != 201 || first["points"] != float64(700) || first["balance_after"] != float64(700) || h.Get("Idempotent-Replayed") != "" {
		t.Fatalf("credit: %d %v (replayed %q); want 201, 700 points, not a replay", code, first, h.Get("Idempotent-Replayed"))
	}
	code, again, h := e.sendKey(post, path, finance, "k-1", map[string]any{"reason": "goodwill", "points": 700})
	if code != 201 || again["id"] != first["id"] || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v (replayed %q); want 201, transaction %v, Idempotent-Replayed: true", code, again, h.Get("Idempotent-Replayed"), first["id"])
	}
	if code, body, _ := e.sendKey(post, path, finance, "k-1", map[string]any{"points": 701, "reason": "goodwill"}); code != 409 || body["code"] != "idempotency_mismatch" {
		t.Fatalf("same key, other body: %d %v; want 409 idempotency_mismatch", code, body)
	}
	// Keys are per staff account: the admin's k-1 is another request.
	if code, body, _ := e.sendKey(post, path, admin, "k-1", map[string]any{"points": -200, "reason": "correction"}); code != 201 || body["balance_after"] != float64(500) {
		t.Fatalf("admin debit with its own k-1: %d %v; want 201, balance 500", code, body)
	}
	if code, body, _ := e.sendKey(post, path, finance, "k-2", map[string]any{"points": -501, "reason": "too much"}); code != 422 || body["code"] != "insufficient_points" {
		t.Fatalf("debit beyond the balance: %d %v; want 422 insufficient_points", code, body)
	}
	if code, body, _ := e.sendKey(post, "/v1/admin/members/987654/adjustments", finance, "k-3", map[string]any{"points": 1, "reason": "x"}); code != 404 || body["code"] != "member_not_found" {
		t.Fatalf("unknown member: %d %v; want 404 member_not_found", code, body)
	}
	if b, _ := e.led.Balance(context.Background(), m.ID); b.Total != 500 {
		t.Fatalf("balance after credit, replay and debit = %d; want 500", b.Total)
	}
	if got := e.rows("ledger_transactions") - before; got != 2 {
		t.Fatalf("%d transactions posted; want 2 (the replay and the refusals post none)", got)
	}
	var audited int64
	e.db.Raw(`SELECT count(*) FROM operator_audit_log WHERE action = 'member.adjust' AND target = ? AND outcome = 'ok'`, "member:"+itoa(m.ID)).Scan(&audited)
	if audited != 2 {
		t.Fatalf("audit log holds %d successful adjustments; want 2 (a replay is not a second action)", audited)
	}
	var entries int64
	e.db.Raw(`SELECT count(*) FROM operator_audit_log`).Scan(&entries)
	if entries != 6 { // support's refusal, 2 adjustments, the mismatch, the debit refused, the unknown member
		t.Fatalf("audit log holds %d entries; want 6 (every call but the bad input and the replay)", entries)
	}
}

func TestAdminMemberSearchSuspendMergeExport(t *testing.T) {
	t.Parallel()
	e := newMemberAdminEnv(t, nil)
	ctx := context.Background()
	admin := e.login("root@hub.test", access.RoleAdmin)
	finance := e.login("money@hub.test", access.RoleFinance)
	support := e.login("help@hub.test", access.RoleSupport)
	const get, post = http.MethodGet, http.MethodPost
	m := e.member("grace@example.com")
	dup := e.member("g.hopper@example.com")
	mp := "/v1/admin/members/" + itoa(m.ID)

	page := e.expect(200, "", get, "/v1/admin/members?q=grace@example.com", support, nil)
	if got := items(t, page); len(got) != 1 || got[0]["id"] != float64(m.ID) {
		t.Fatalf("search by email: %v; want member %d", page, m.ID)
	}
	e.expect(400, "invalid_request", get, "/v1/admin/members?status=asleep", support, nil)
	if got := e.expect(200, "", get, mp, support, nil); got["card_number"] != m.CardNumber {
		t.Fatalf("get member: %v", got)
	}
	e.expect(404, "member_not_found", get, "/v1/admin/members/987654", support, nil)

	// Suspension: sessions end, sign-in and the member API refuse.
	if err := e.mem.SetPassword(ctx, m.ID, "a long member password"); err != nil {
		t.Fatal(err)
	}
	tok := signedInToken(t, e.mem, e.acc, m.ID)
	e.expect(200, "", get, "/v1/me/balance", tok, nil)
	body := e.expect(400, "invalid_request", post, mp+"/status", admin, map[string]any{"status": "suspended"})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "reason" {
		t.Fatalf("suspend without reason: errors %v; want reason", f)
	}
	e.expect(400, "invalid_request", post, mp+"/status", admin, map[string]any{"status": "asleep", "reason": "x"})
	e.expect(403, "forbidden", post, mp+"/status", finance, map[string]any{"status": "suspended", "reason": "fraud review"})
	if got := e.expect(200, "", post, mp+"/status", admin, map[string]any{"status": "suspended", "reason": "fraud review"}); got["status"] != "suspended" {
		t.Fatalf("suspend: %v", got)
	}
	e.expect(401, "", get, "/v1/me/balance", tok, nil)
	e.expect(401, "invalid_credentials", post, "/v1/me/login", "", map[string]any{"email": "grace@example.com", "password": "a long member password"})
	if got := e.expect(200, "", post, mp+"/status", admin, map[string]any{"status": "active"}); got["status"] != "active" {
		t.Fatalf("reactivate: %v", got)
	}
	e.expect(200, "", post, "/v1/me/login", "", map[string]any{"email": "grace@example.com", "password": "a long member password"})

	// Merge: the duplicate's points and identifiers move; a repeat moves nothing.
	if _, err := e.led.Adjust(ctx, ledger.AdjustRequest{Idem: ledger.Idempotency{Scope: "t", Key: "dup"}, MemberID: dup.ID, Points: 300, Reason: "t", Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	body = e.expect(400, "invalid_request", post, mp+"/merge", admin, map[string]any{"duplicate_id": 0, "reason": "same person"})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "duplicate_id" {
		t.Fatalf("merge without duplicate: errors %v; want duplicate_id", f)
	}
	e.expect(409, "invalid_merge", post, mp+"/merge", admin, map[string]any{"duplicate_id": m.ID, "reason": "same person"})
	e.expect(403, "forbidden", post, mp+"/merge", support, map[string]any{"duplicate_id": dup.ID, "reason": "same person"})
	merged := e.expect(200, "", post, mp+"/merge", admin, map[string]any{"duplicate_id": dup.ID, "reason": "same person"})
	again := e.expect(200, "", post, mp+"/merge", admin, map[string]any{"duplicate_id": dup.ID, "reason": "same person"})
	if merged["id"] != again["id"] {
		t.Fatalf("repeated merge: %v then %v; want the same record", merged, again)
	}
	if b, _ := e.led.Balance(ctx, m.ID); b.Total != 300 {
		t.Fatalf("survivor balance %d after merge; want 300", b.Total)
	}

	// Export: everything, the request itself included.
	e.expect(403, "forbidden", post, mp+"/export", support, nil)
	x := e.expect(200, "", post, mp+"/export", admin, nil)
	if mm, _ := x["merged_members"].([]any); len(mm) != 1 {
		t.Fatalf("export merged_members: %v; want the duplicate", x["merged_members"])
	}
	if txs, _ := x["transactions"].([]any); len(txs) < 2 {
		t.Fatalf("export transactions: %v; want the duplicate's credit and the merge", x["transactions"])
	}
	if reqs := jsonNumAny(x["data_subject_requests"]); !strings.Contains(reqs, `"kind":"export"`) {
		t.Fatalf("export register: %s; want the export recorded", reqs)
	}
}

func TestAdminMemberErasure(t *testing.T) {
	t.Parallel()
	e := newMemberAdminEnv(t, nil)
	ctx := context.Background()
	admin := e.login("root@hub.test", access.RoleAdmin)
	finance := e.login("money@hub.test", access.RoleFinance)
	const post = http.MethodPost
	p, err := e.svc.CreatePartner(ctx, partners.NewPartner{Name: "Sky Air", Sector: partners.SectorAirline, SettlementCurrency: "EUR", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	m := e.member("grace@example.com")
	mp := "/v1/admin/members/" + itoa(m.ID)
	if _, err := e.led.Adjust(ctx, ledger.AdjustRequest{Idem: ledger.Idempotency{Scope: "t", Key: "c"}, MemberID: m.ID, Points: 5000, Reason: "t", Actor: "t"}); err != nil {
		t.Fatal(err)
	}

	// An exchange in flight blocks erasure, and says so.
	sim := partnersim.New(partnersim.Config{APIKey: "k"})
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	prog, err := e.xch.CreateProgramme(ctx, exchange.NewProgramme{PartnerID: p.ID, Code: "skymiles", Name: "Sky Miles", Unit: "miles",
		Out: &exchange.Ratio{From: 1000, To: 700}, Increment: 1000, MaxPoints: 90000, EndpointURL: simSrv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.xch.Link(ctx, m.ID, prog.ID, "FF1"); err != nil {
		t.Fatal(err)
	}
	q, err := e.xch.Quote(ctx, m.ID, prog.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.xch.Confirm(ctx, m.ID, q.ID) // processing until delivered
	if err != nil {
		t.Fatal(err)
	}
	body := e.expect(409, "erasure_blocked", post, mp+"/erasure", admin, map[string]any{"reason": "request DSR-1"})
	if d, _ := body["detail"].(string); !strings.Contains(d, "exchanges in flight") {
		t.Fatalf("erasure during an exchange: detail %q; want the exchange named", d)
	}
	if err := e.xch.Deliver(ctx, x.ID); err != nil {
		t.Fatal(err)
	}

	// A till authorisation blocks it too.
	h, err := e.led.Hold(ctx, ledger.HoldRequest{Idem: ledger.Idempotency{Scope: "t", Key: "h"}, MemberID: m.ID, PartnerID: p.ID,
		Points: 250, ExpiresAt: time.Now().Add(time.Hour), Purpose: "pos"})
	if err != nil {
		t.Fatal(err)
	}
	before := e.rows("ledger_transactions")
	body = e.expect(409, "erasure_blocked", post, mp+"/erasure", admin, map[string]any{"reason": "request DSR-1"})
	if d, _ := body["detail"].(string); !strings.Contains(d, "250 points on hold") {
		t.Fatalf("erasure with a hold: detail %q; want the held points named", d)
	}
	body = e.expect(400, "invalid_request", post, mp+"/erasure", admin, map[string]any{"reason": ""})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "reason" {
		t.Fatalf("erasure without reason: errors %v; want reason", f)
	}
	e.expect(403, "forbidden", post, mp+"/erasure", finance, map[string]any{"reason": "request DSR-1"})
	if got, _ := e.mem.Get(ctx, m.ID); got.Status != members.StatusActive || got.Profile.Email == "" || e.rows("ledger_transactions") != before {
		t.Fatalf("refused erasures changed the member (%+v) or the ledger", got)
	}
	if _, err := e.led.Void(ctx, ledger.VoidRequest{Idem: ledger.Idempotency{Scope: "t", Key: "v"}, HoldID: h.ID}); err != nil {
		t.Fatal(err)
	}

	// Now it closes and erases; ledger amounts stay.
	erased := e.expect(200, "", post, mp+"/erasure", admin, map[string]any{"reason": "request DSR-1"})
	prof := jsonNumAny(erased["profile"])
	if erased["status"] != "closed" || erased["erased_at"] == nil || strings.Contains(prof, "grace") || strings.Contains(prof, "Hopper") {
		t.Fatalf("erased member: %v; want closed, erased_at set and no personal data", erased)
	}
	if erased["card_number"] != m.CardNumber {
		t.Fatalf("erased card %v; want the card kept (%s)", erased["card_number"], m.CardNumber)
	}
	var sum int64
	e.db.Raw(`SELECT coalesce(sum(points), 0) FROM ledger_transactions WHERE member_id = ?`, m.ID).Scan(&sum)
	again := e.expect(200, "", post, mp+"/erasure", admin, map[string]any{"reason": "request DSR-1"})
	if again["erased_at"] != erased["erased_at"] {
		t.Fatalf("repeated erasure: %v; want the same erased member", again)
	}
	var sum2 int64
	e.db.Raw(`SELECT coalesce(sum(points), 0) FROM ledger_transactions WHERE member_id = ?`, m.ID).Scan(&sum2)
	if sum == 0 || sum2 != sum {
		t.Fatalf("ledger amounts of the erased member %d then %d; want them kept", sum, sum2)
	}
	rep, err := ledger.Audit(ctx, e.db, programme.AuditQueries()...)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger audit after erasure: %v %+v", err, rep)
	}
}

func TestAdminStaffRolesAndJobs(t *testing.T) {
	t.Parallel()
	jobs, in, info := failedTaskQueue(t)
	e := newMemberAdminEnv(t, jobs)
	admin := e.login("root@hub.test", access.RoleAdmin)
	support := e.login("help@hub.test", access.RoleSupport)
	const get, post, put = http.MethodGet, http.MethodPost, http.MethodPut
	staffID := func(email string) int64 {
		var id int64
		if err := e.db.Raw(`SELECT id FROM staff_users WHERE email = ?`, email).Scan(&id).Error; err != nil || id == 0 {
			t.Fatalf("staff %s: %v", email, err)
		}
		return id
	}
	rootID := staffID("root@hub.test")
	sp := "/v1/admin/staff/" + itoa(staffID("help@hub.test")) + "/role"

	// Roles: the change applies to open sessions at once.
	e.expect(403, "forbidden", get, "/v1/admin/staff", support, nil)
	body := e.expect(400, "invalid_request", put, sp, admin, map[string]any{"role": "owner"})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "role" {
		t.Fatalf("bad role: errors %v; want role", f)
	}
	e.expect(403, "forbidden", put, sp, support, map[string]any{"role": "admin"})
	if got := e.expect(200, "", put, sp, admin, map[string]any{"role": "admin"}); got["role"] != "admin" {
		t.Fatalf("promote: %v", got)
	}
	e.expect(200, "", get, "/v1/admin/staff", support, nil) // the same token, now an admin's
	e.expect(200, "", put, sp, admin, map[string]any{"role": "support"})
	body = e.expect(409, "last_admin", put, "/v1/admin/staff/"+itoa(rootID)+"/role", admin, map[string]any{"role": "finance"})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "role" {
		t.Fatalf("demote the last admin: errors %v; want role", f)
	}
	body = e.expect(409, "last_admin", post, "/v1/admin/staff/"+itoa(rootID)+"/status", admin, map[string]any{"status": "disabled"})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "status" {
		t.Fatalf("disable the last admin: errors %v; want status", f)
	}
	e.expect(200, "", get, "/v1/admin/staff", admin, nil) // still signed in: nothing was written
	e.expect(404, "staff_not_found", put, "/v1/admin/staff/987654/role", admin, map[string]any{"role": "finance"})

	// Jobs: the queue, a retry, and a run now.
	list := e.expect(200, "", get, "/v1/admin/jobs", support, nil)
	if f := jsonNumAny(list["failed"]); !strings.Contains(f, info.ID) {
		t.Fatalf("failed tasks %s; want %s", f, info.ID)
	}
	body = e.expect(400, "invalid_request", post, "/v1/admin/jobs/retry", admin, map[string]any{"queue": "low", "task_id": ""})
	if f := fieldErrors(t, body); len(f) != 1 || f[0] != "task_id" {
		t.Fatalf("retry without task: errors %v; want task_id", f)
	}
	e.expect(403, "forbidden", post, "/v1/admin/jobs/retry", support, map[string]any{"queue": "low", "task_id": info.ID})
	e.expect(204, "", post, "/v1/admin/jobs/retry", admin, map[string]any{"queue": "low", "task_id": info.ID})
	if ti, err := in.GetTaskInfo("low", info.ID); err != nil || ti.State != asynq.TaskStatePending {
		t.Fatalf("task after retry = %v (%v); want pending", ti, err)
	}

	m := e.member("grace@example.com")
	if _, err := e.led.Adjust(context.Background(), ledger.AdjustRequest{Idem: ledger.Idempotency{Scope: "t", Key: "c"}, MemberID: m.ID, Points: 10, Reason: "t", Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"expiry", "tier_evaluation", "birthday"} {
		got := e.expect(200, "", post, "/v1/admin/jobs/"+name+"/run", admin, nil)
		if got["job"] != name || got["result"] == nil {
			t.Fatalf("run %s: %v", name, got)
		}
	}
	e.expect(403, "forbidden", post, "/v1/admin/jobs/expiry/run", support, nil)
	e.expect(404, "job_not_found", post, "/v1/admin/jobs/settle_everything/run", admin, nil)
	var runs int64
	e.db.Raw(`SELECT count(*) FROM operator_audit_log WHERE action = 'job.run' AND outcome = 'ok'`).Scan(&runs)
	if runs != 3 {
		t.Fatalf("audit log holds %d job runs; want 3", runs)
	}
}

// failedTaskQueue is a real queue (its own Redis keyspace) holding one
// archived task in the queue "low", read through AsynqJobs.
func failedTaskQueue(t *testing.T) (*AsynqJobs, *asynq.Inspector, *asynq.TaskInfo) {
	t.Helper()
	ks := testredis.New(t)
	cl := asynq.NewClient(ks.Opt())
	t.Cleanup(func() { cl.Close() })
	in := asynq.NewInspector(ks.Opt())
	t.Cleanup(func() { in.Close() })
	info, err := cl.Enqueue(asynq.NewTask("test:broken", []byte(`{}`)), asynq.Queue("low"))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.ArchiveTask("low", info.ID); err != nil {
		t.Fatal(err)
	}
	jobs := NewAsynqJobs(ks.Opt())
	t.Cleanup(func() { jobs.Close() })
	return jobs, in, info
}
