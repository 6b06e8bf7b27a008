package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coalitionhub/hub/points"
	"gorm.io/gorm"
)

// batchMember enrols a member through partner tok.
func batchMember(e *hubEnv, tok string) int64 {
	e.t.Helper()
	m := e.must(201, "POST", "/v1/members", tok, map[string]any{"identifier": map[string]string{"type": "partner_ref", "value": "B-1"}})
	return int64(m["id"].(float64))
}

// POST /v1/earn/batch answers a result per item in input order: decoding
// problems with the item's path, domain problems with their codes, replays
// of an earlier item with the same key; a retry of the batch replays every
// item with the same transactions.
func TestEarnBatchResultsPerItem(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, nil)
	_, tok := e.partner("Hotel", e.clock.Now().Add(-time.Hour))
	member := batchMember(e, tok)
	item := func(key string, minor int64) map[string]any {
		return map[string]any{"idempotency_key": key, "member_id": member,
			"amount": map[string]any{"minor": minor, "currency": "EUR"}, "external_ref": key}
	}
	items := []any{
		item("a", 1000),
		map[string]any{"idempotency_key": "b", "member_id": member, "colour": "red"},
		map[string]any{"member_id": member},
		item("a", 1000), // the same key and body as item 0
		item("a", 2000), // the same key, another body
		map[string]any{"idempotency_key": "c", "member_id": 999999, "amount": map[string]any{"minor": 1000, "currency": "EUR"}},
		item("d", 50), // half a euro earns no point
		item("e", 500),
	}
	type result struct {
		Index       int  `json:"index"`
		Status      int  `json:"status"`
		Replayed    bool `json:"replayed"`
		Transaction *struct {
			ID     int64 `json:"id"`
			Points int64 `json:"points"`
		} `json:"transaction"`
		Error *Problem `json:"error"`
	}
	send := func() []result {
		code, body, _ := e.raw(http.MethodPost, "/v1/earn/batch", tok, map[string]any{"items": items})
		if code != http.StatusOK {
			t.Fatalf("batch: %d %s", code, body)
		}
		var out struct{ Results []result }
		if err := json.Unmarshal(body, &out); err != nil || len(out.Results) != len(items) {
			t.Fatalf("batch answer %s: %v", body, err)
		}
		return out.Results
	}
	first := send()
	want := []struct {
		status   int
		replayed bool
		code     string
		field    string
	}{
		{201, false, "", ""},
		{400, false, "invalid_request", "items[1].colour"},
		{400, false, "invalid_request", "items[2].idempotency_key"},
		{201, true, "", ""},
		{409, false, "idempotency_mismatch", ""},
		{404, false, "member_not_found", ""},
		{422, false, "nothing_to_earn", ""},
		{201, false, "", ""},
	}
	for i, w := range want {
		r := first[i]
		if r.Index != i || r.Status != w.status || r.Replayed != w.replayed {
			t.Errorf("item %d: %+v; want status %d replayed %v", i, r, w.status, w.replayed)
			continue
		}
		if w.code != "" && (r.Error == nil || r.Error.Code != w.code) {
			t.Errorf("item %d: error %+v; want code %s", i, r.Error, w.code)
		}
		if w.field != "" && (r.Error == nil || len(r.Error.Errors) == 0 || r.Error.Errors[0].Field != w.field) {
			t.Errorf("item %d: error %+v; want field %s", i, r.Error, w.field)
		}
	}
	if first[0].Transaction == nil || first[3].Transaction == nil || first[3].Transaction.ID != first[0].Transaction.ID ||
		first[0].Transaction.Points != 10 {
		t.Fatalf("items 0 and 3: %+v %+v; want one transaction of 10 points", first[0], first[3])
	}
	again := send()
	for _, i := range []int{0, 7} {
		if !again[i].Replayed || again[i].Transaction.ID != first[i].Transaction.ID {
			t.Errorf("retry of item %d: %+v; want a replay of transaction %d", i, again[i], first[i].Transaction.ID)
		}
	}
	if n := e.count("ledger_transactions"); n != 2 {
		t.Fatalf("%d transactions, want 2", n)
	}
	e.audit()
}

// brokenProgramme fails when told of an earn, as a database error inside the
// batch's transaction would.
type brokenProgramme struct{ points.Programme }

func (brokenProgramme) EarnExpiry(context.Context, time.Time) (*time.Time, error) {
	return nil, nil
}
func (brokenProgramme) CreditEarns(context.Context, *gorm.DB, []points.PostedEarn) (points.EarnedRest, error) {
	return nil, errors.New("programme: connection lost")
}

// A failure of the batch's database transaction answers the whole request
// with a problem (not 200 with per-item errors) and posts nothing: the
// client retries the batch.
func TestEarnBatchFailsAsAWhole(t *testing.T) {
	t.Parallel()
	e := newHubEnv(t, func(d *Deps) { d.Transactions.Programme = brokenProgramme{} })
	_, tok := e.partner("Hotel", e.clock.Now().Add(-time.Hour))
	member := batchMember(e, tok)
	var items []any
	for i := 0; i < 3; i++ {
		items = append(items, map[string]any{"idempotency_key": fmt.Sprint("k", i), "member_id": member,
			"amount": map[string]any{"minor": 1000, "currency": "EUR"}})
	}
	code, body, hdr := e.raw(http.MethodPost, "/v1/earn/batch", tok, map[string]any{"items": items})
	if code != http.StatusInternalServerError || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("batch with a failing transaction: %d %s %s; want 500 problem+json", code, hdr.Get("Content-Type"), body)
	}
	if n := e.count("ledger_transactions"); n != 0 {
		t.Fatalf("%d transactions posted, want none", n)
	}
	if n := e.count("ledger_idempotency"); n != 0 {
		t.Fatalf("%d keys claimed, want none", n)
	}
}
