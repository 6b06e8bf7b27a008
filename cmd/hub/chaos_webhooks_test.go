//go:build chaos

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/testredis"
)

// outage is how long Redis stays down in TestChaosRedisOutageWebhookDelay.
const outage = 20 * time.Second

// webhookBound is the longest a webhook may take to go out after Redis
// answers again (docs/reliability.md, row 22): the relay's longest backoff
// (5 s) and a verify pass started at once, or at the latest 10 s after the
// last one, bring every lost task back; the rest is the worker draining the
// backlog the outage left, with room for a loaded machine.
const webhookBound = 90 * time.Second

// hookReceiver is a partner's webhook endpoint. It records when each event
// (webhook-id) first arrived and answered 2xx, per earn (external_ref). While
// its gate is closed it holds requests, and answers the held ones with
// holdStatus when the gate opens.
type hookReceiver struct {
	mu       sync.Mutex
	srv      *httptest.Server
	first    map[string]time.Time       // event id -> first 2xx answer
	answers  map[string]int             // event id -> 2xx answers
	events   map[string]map[string]bool // external_ref -> event ids
	failed   int                        // answers other than 2xx
	gate     chan struct{}              // nil: open
	held     atomic.Int32
	heldSeen chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{first: map[string]time.Time{}, answers: map[string]int{}, events: map[string]map[string]bool{},
		heldSeen: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			Data struct {
				ExternalRef string `json:"external_ref"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		gate := r.gate
		r.mu.Unlock()
		if gate != nil {
			n := r.held.Add(1)
			r.heldSeen <- struct{}{}
			<-gate
			if n%2 == 1 { // half the held attempts fail, half succeed, while Redis is away
				r.mu.Lock()
				r.failed++
				r.mu.Unlock()
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		r.mu.Lock()
		if _, ok := r.first[id]; !ok {
			r.first[id] = time.Now()
		}
		r.answers[id]++
		if r.events[ev.Data.ExternalRef] == nil {
			r.events[ev.Data.ExternalRef] = map[string]bool{}
		}
		r.events[ev.Data.ExternalRef][id] = true
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) close() { r.mu.Lock(); r.gate = make(chan struct{}); r.mu.Unlock() }

func (r *hookReceiver) open() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

func (r *hookReceiver) delivered() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.first) }

// waitUntil polls cond until it holds or the deadline passes; it reports
// whether cond held.
func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChaosRedisOutageWebhookDelay takes Redis away for 20 s under earn load
// (restarting it empty, as a Redis without persistence comes back) and
// checks that every earn's webhook is delivered, none lost, each earn under
// one event id, and measures how long after Redis returned the last one
// went out. Some deliveries are in flight when Redis goes: the receiver
// holds every worker's request and answers half of them 503 and half 200
// once Redis is gone, so asynq can record neither outcome; others wait in
// Redis' queue and are lost with it; earns keep committing while Redis is
// down, so their deliveries wait in the outbox.
func TestChaosRedisOutageWebhookDelay(t *testing.T) {
	_, dbURL := testdb.NewWithURL(t)
	rs := testredis.StartServer(t)
	w := seedWorld(t, dbURL, 20)
	rcv := newHookReceiver(t)
	hub := startHub(t, []string{"HUB_DATABASE_URL=" + dbURL, "HUB_REDIS_URL=" + rs.URL(), noLimits}, "all")
	token := w.token(t, hub.URL)
	endpoint := func(url string) int64 {
		req, _ := http.NewRequest(http.MethodPost, hub.URL+"/v1/webhooks", strings.NewReader(`{"url":"`+url+`","events":["transaction.*"]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("webhook endpoint: %v %v", err, res)
		}
		defer res.Body.Close()
		var ep struct {
			ID int64 `json:"id"`
		}
		if err := json.NewDecoder(res.Body).Decode(&ep); err != nil || ep.ID == 0 {
			t.Fatalf("webhook endpoint: %v %+v", err, ep)
		}
		return ep.ID
	}
	live := endpoint(rcv.srv.URL)
	// A second endpoint of the partner is down for the whole test: its
	// deliveries keep retrying, as they would for a day, so more rows stay
	// in flight ahead of the lost ones than one page of the verifier holds.
	var deadCalls atomic.Int64
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		deadCalls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(dead.Close)
	endpoint(dead.URL)
	count := func(q string) int64 {
		var n int64
		if err := w.db.Raw(q).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	var base atomic.Pointer[string]
	base.Store(&hub.URL)
	stop := make(chan struct{})
	wait := load(w, &base, token, 4, stop)

	// Normal life first, until 1,200 deliveries to the dead endpoint are in
	// flight.
	if !waitUntil(3*time.Minute, func() bool {
		return count(`SELECT count(*) FROM webhook_deliveries`) >= 2400 && rcv.delivered() >= 100
	}) {
		t.Fatalf("only %d webhooks delivered before the outage\n%s", rcv.delivered(), hub.Logs())
	}
	// Every worker gets stuck in the receiver, and tasks pile up in Redis.
	rcv.close()
	for range 10 { // HUB_WORKER_CONCURRENCY's default
		select {
		case <-rcv.heldSeen:
		case <-time.After(2 * time.Minute):
			t.Fatalf("the receiver holds %d requests; want the 10 workers'", rcv.held.Load())
		}
	}
	queued := count(`SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL`) - int64(rcv.delivered())
	if !waitUntil(2*time.Minute, func() bool {
		return count(`SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL`)-int64(rcv.delivered()) >= queued+100
	}) {
		t.Fatalf("the relay did not queue 100 more tasks behind the held workers")
	}
	rs.Stop()
	down := time.Now()
	rcv.open()
	createdBefore := count(`SELECT count(*) FROM webhook_deliveries`)
	time.Sleep(outage) // the outage itself; the load keeps earning
	createdDuring := count(`SELECT count(*) FROM webhook_deliveries`) - createdBefore
	rs.Start() // empty
	back := time.Now()
	if !waitUntil(2*time.Minute, func() bool {
		return count(`SELECT count(*) FROM webhook_deliveries`) >= createdBefore+createdDuring+100
	}) {
		t.Fatalf("earns did not go on after Redis returned")
	}
	close(stop)
	attempts := wait()
	for _, a := range attempts {
		if a.status != 201 {
			t.Errorf("earn %s: %d %s; want 201 (earns never need Redis)", a.key, a.status, a.code)
		}
	}

	// Every earn's delivery succeeds; a deadline far past the bound, so a
	// late delivery is measured and reported against the bound, not taken
	// for a lost one.
	all := waitUntil(5*time.Minute, func() bool {
		return count(fmt.Sprintf(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %d AND state <> 'succeeded'`, live)) == 0 &&
			rcv.delivered() >= len(attempts)
	})
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var last time.Time
	for _, at := range rcv.first {
		if at.After(last) {
			last = at
		}
	}
	delay := last.Sub(back)
	// The verifier logs each task it enqueues again: their times show when
	// its passes after Redis returned ran.
	redone := 0
	var firstRedo, lastRedo time.Time
	for _, line := range strings.Split(hub.Logs(), "\n") {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || !strings.HasPrefix(l.Msg, "outbox task was lost by Redis") {
			continue
		}
		redone++
		if firstRedo.IsZero() {
			firstRedo = l.Time
		}
		lastRedo = l.Time
	}
	dups := 0
	for _, n := range rcv.answers {
		dups += n - 1
	}
	t.Logf("%d earns, each to a live and a dead endpoint: %d deliveries created before the outage, %d during it (%v); %d held attempts answered while Redis was away (%d failed); %d attempts at the dead endpoint",
		len(attempts), createdBefore, createdDuring, back.Sub(down).Round(time.Millisecond), rcv.held.Load(), rcv.failed, deadCalls.Load())
	t.Logf("after Redis returned: %d tasks enqueued again by the verifier, from %v to %v after; last webhook out %v after Redis returned (bound %v); %d repeated deliveries of an event id",
		redone, firstRedo.Sub(back).Round(time.Millisecond), lastRedo.Sub(back).Round(time.Millisecond), delay.Round(time.Millisecond), webhookBound, dups)

	if !all {
		var pending []struct {
			ID       int64
			State    string
			Attempts int
		}
		w.db.Raw(`SELECT id, state, attempts FROM webhook_deliveries WHERE endpoint_id = ? AND state <> 'succeeded' ORDER BY id LIMIT 20`, live).Scan(&pending)
		t.Errorf("lost: %d of %d webhooks delivered 5 minutes after Redis returned, %d deliveries not succeeded (first: %+v)",
			len(rcv.first), len(attempts), count(fmt.Sprintf(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %d AND state <> 'succeeded'`, live)), pending)
	}
	for _, a := range attempts {
		ids := rcv.events[a.key]
		if len(ids) != 1 {
			t.Errorf("earn %s reached the receiver under %d event ids (%v); want exactly one", a.key, len(ids), slices.Collect(maps.Keys(ids)))
		}
	}
	if len(rcv.events) != len(attempts) {
		t.Errorf("the receiver saw %d earns, the load made %d", len(rcv.events), len(attempts))
	}
	if all && delay > webhookBound {
		t.Errorf("the last webhook went out %v after Redis returned; the bound is %v", delay, webhookBound)
	}
	checkExactlyOnce(t, w, hub.URL, token, attempts)
}
