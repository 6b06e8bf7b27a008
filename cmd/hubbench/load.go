package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/programme"
)

// WorkloadResult is one HTTP workload's numbers.
type WorkloadResult struct {
	Name       string         `json:"name"`
	Clients    int            `json:"clients"`
	Seconds    float64        `json:"seconds"`
	Requests   int64          `json:"requests"`
	Ops        int64          `json:"ops"` // acknowledged operations (batch items count one each)
	OpsPerSec  float64        `json:"ops_per_sec"`
	ReqPerSec  float64        `json:"requests_per_sec"`
	P50ms      float64        `json:"p50_ms"`
	P95ms      float64        `json:"p95_ms"`
	P99ms      float64        `json:"p99_ms"`
	MaxMs      float64        `json:"max_ms"`
	Errors     map[string]int `json:"errors"`
	ByKind     map[string]int `json:"ops_by_kind"`
	Verify     VerifyResult   `json:"verify"`
	AuditOK    bool           `json:"audit_ok"`
	AuditMs    float64        `json:"audit_ms"`
	HubPeakRSS int64          `json:"hub_peak_rss_mb"`
	CPU        CPUUse         `json:"cpu"`
}

// ack is one operation the hub acknowledged with a 2xx: it must exist once.
type ack struct {
	Kind        string // earn or burn
	PartnerID   int64
	ExternalRef string
	TxID        int64
}

// client is one closed-loop client: it sends the next request as soon as
// the previous one is answered.
type client struct {
	http    *http.Client
	base    string
	tokens  map[int64]string
	rng     *rand.Rand
	lat     []time.Duration
	errs    map[string]int
	acks    []ack
	ops     int64
	reqs    int64
	kinds   map[string]int
	id      int
	seq     int
	run     string
	seeded  seeded
	batchSz int
	clients int // how many clients run the workload
	burns   int // codes this client has spent
}

// runHTTP seeds the bench database, starts the hub and runs each workload.
func runHTTP(ctx context.Context, o options, workloads []string) ([]WorkloadResult, Machine, error) {
	key := secretsKey()
	fmt.Fprintf(os.Stderr, "reset %s and migrate\n", redact(o.dbURL))
	if err := resetDatabase(ctx, o, o.dbURL); err != nil {
		return nil, Machine{}, err
	}
	db, err := openDB(ctx, o.dbURL)
	if err != nil {
		return nil, Machine{}, err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	mach := machineInfo(ctx, db)
	t0 := time.Now()
	s, err := seed(ctx, o, db, key)
	if err != nil {
		return nil, mach, err
	}
	fmt.Fprintf(os.Stderr, "seeded %d partners, %d members in %s\n", len(s.partners), s.maxMember-s.minMember+1, time.Since(t0).Round(time.Millisecond))
	hub, err := startHub(ctx, o, o.dbURL, key)
	if err != nil {
		return nil, mach, err
	}
	defer hub.stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 256,
		MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
	tokens := map[int64]string{}
	for _, p := range s.partners {
		tok, err := token(ctx, hc, hub.URL, p)
		if err != nil {
			return nil, mach, err
		}
		tokens[p.ID] = tok
	}
	fmt.Fprintf(os.Stderr, "funding %d burn members\n", s.burnMembers)
	t0 = time.Now()
	slow := &http.Client{Timeout: 10 * time.Minute, Transport: hc.Transport}
	if err := fund(ctx, slow, hub.URL, tokens, s); err != nil {
		return nil, mach, err
	}
	fmt.Fprintf(os.Stderr, "funded in %s\n", time.Since(t0).Round(time.Millisecond))
	var out []WorkloadResult
	for round, w := range workloads {
		if ctx.Err() != nil {
			break
		}
		s.codeRound = round
		if kind, _ := splitWorkload(w, 0); kind == "burn" || kind == "mix" {
			if err := issueCodes(ctx, db, s, round); err != nil {
				return nil, mach, fmt.Errorf("issue redemption codes: %w", err)
			}
		}
		settle(ctx, db)
		before := sampleCPU(hub.cmd.Process.Pid)
		r := runWorkload(ctx, o, w, hc, hub.URL, tokens, s)
		r.CPU = cpuUse(before, sampleCPU(hub.cmd.Process.Pid), r.Ops)
		t := time.Now()
		r.Verify = verify(ctx, db, r.acks)
		rep, err := ledger.Audit(ctx, db, programme.AuditQueries()...)
		r.AuditOK = err == nil && rep.OK()
		if !r.AuditOK {
			fmt.Fprintf(os.Stderr, "ledger audit failed: %v %+v\n", err, rep)
		}
		r.AuditMs = ms(time.Since(t))
		r.HubPeakRSS = hub.rss()
		fmt.Fprintf(os.Stderr, "  verify: %s; audit ok=%v (%s)\n", r.Verify.Summary(), r.AuditOK, time.Since(t).Round(time.Millisecond))
		out = append(out, r.WorkloadResult)
	}
	return out, mach, nil
}

// token gets an access token with the client-credentials grant.
func token(ctx context.Context, hc *http.Client, base string, p benchPartner) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.ClientID, p.Secret)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("token for partner %d: status %d %v", p.ID, resp.StatusCode, err)
	}
	return body.AccessToken, nil
}

// fund gives every burn member 100,000 points through the batch earn API,
// four batches of 500 at a time.
func fund(ctx context.Context, hc *http.Client, base string, tokens map[int64]string, s seeded) error {
	p := s.partners[0].ID
	const size = 500
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, 4)
	)
	for lo := s.minMember; lo < s.minMember+s.burnMembers; lo += size {
		var items []map[string]any
		for m := lo; m < min(lo+size, s.minMember+s.burnMembers); m++ {
			items = append(items, map[string]any{"idempotency_key": fmt.Sprintf("fund-%d", m), "member_id": m,
				"amount": map[string]any{"minor": 10_000_000, "currency": "EUR"}, "external_ref": fmt.Sprintf("fund-%d", m)})
		}
		body, _ := json.Marshal(map[string]any{"items": items})
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fundBatch(ctx, hc, base+"/v1/earn/batch", tokens[p], body); err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func fundBatch(ctx context.Context, hc *http.Client, u, tok string, body []byte) error {
	status, resp, err := post(ctx, hc, u, tok, "", body)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("fund burn members: status %d %v %s", status, err, resp)
	}
	var out struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	_ = json.Unmarshal(resp, &out)
	for _, r := range out.Results {
		if r.Status != http.StatusCreated {
			return fmt.Errorf("fund burn members: an item answered %d: %s", r.Status, resp)
		}
	}
	return nil
}

func post(ctx context.Context, hc *http.Client, u, tok, idemKey string, body []byte) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type workloadRun struct {
	WorkloadResult
	acks []ack
}

// runWorkload runs o.clients closed-loop clients for o.duration with a
// progress line every second.
func runWorkload(ctx context.Context, o options, name string, hc *http.Client, base string, tokens map[int64]string, s seeded) workloadRun {
	runID := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	kind, n := splitWorkload(name, o.clients)
	if kind == "batch" {
		n = o.batchClients
	}
	clients := make([]*client, n)
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		c := &client{http: hc, base: base, tokens: tokens, rng: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))),
			errs: map[string]int{}, kinds: map[string]int{}, id: i, run: runID, seeded: s, batchSz: o.batchSize, clients: n}
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := c.step(ctx, kind)
				done.Add(n)
			}
		}()
	}
	stopProgress := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				n := done.Load()
				fmt.Fprintf(os.Stderr, "\r%-12s %5.0fs  ops %9d  %7d ops/s   ", name, time.Since(start).Seconds(), n, n-last)
				last = n
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	elapsed := time.Since(start)
	fmt.Fprintln(os.Stderr)
	r := workloadRun{WorkloadResult: WorkloadResult{Name: name, Clients: n, Seconds: elapsed.Seconds(),
		Errors: map[string]int{}, ByKind: map[string]int{}}}
	var lat []time.Duration
	for _, c := range clients {
		lat = append(lat, c.lat...)
		r.Ops += c.ops
		r.Requests += c.reqs
		r.acks = append(r.acks, c.acks...)
		for k, v := range c.errs {
			r.Errors[k] += v
		}
		for k, v := range c.kinds {
			r.ByKind[k] += v
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))])
	}
	r.P50ms, r.P95ms, r.P99ms = pct(0.50), pct(0.95), pct(0.99)
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	r.ReqPerSec = float64(r.Requests) / elapsed.Seconds()
	return r
}

// splitWorkload splits a workload name into its kind and its clients: a
// name may end in "@N" (earn-spread@4: the earn-spread workload with 4
// clients); without it, the workload has def clients.
func splitWorkload(name string, def int) (string, int) {
	kind, clients, ok := strings.Cut(name, "@")
	if !ok {
		return name, def
	}
	n, err := strconv.Atoi(clients)
	if err != nil || n < 1 {
		return kind, def
	}
	return kind, n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// step sends one request of the workload and returns how many operations
// were acknowledged.
func (c *client) step(ctx context.Context, workload string) int64 {
	switch workload {
	case "earn-spread":
		return c.earn(ctx, c.randomPartner(), false)
	case "earn-hot":
		return c.earn(ctx, c.seeded.partners[0].ID, false)
	case "burn":
		return c.burn(ctx, false)
	case "burn-pin":
		return c.burn(ctx, true)
	case "mix":
		switch x := c.rng.IntN(100); {
		case x < 70:
			return c.earn(ctx, c.randomPartner(), false)
		case x < 90:
			return c.earn(ctx, c.randomPartner(), true)
		default:
			return c.burn(ctx, false)
		}
	case "batch":
		return c.batch(ctx)
	}
	panic("unknown workload " + workload)
}

func (c *client) randomPartner() int64 {
	return c.seeded.partners[c.rng.IntN(len(c.seeded.partners))].ID
}

func (c *client) randomMember() int64 {
	return c.seeded.minMember + c.rng.Int64N(c.seeded.maxMember-c.seeded.minMember+1)
}

func (c *client) nextRef(kind string) string {
	c.seq++
	return fmt.Sprintf("%s-%s-%d-%d", c.run, kind, c.id, c.seq)
}

func (c *client) earnBody(ref string) map[string]any {
	return map[string]any{"member_id": c.randomMember(), "external_ref": ref,
		"amount": map[string]any{"minor": 500 + c.rng.Int64N(20000), "currency": "EUR"}}
}

// do sends one request, times it and records a non-2xx answer by its
// problem code. It returns the body of a 2xx answer, or nil.
func (c *client) do(ctx context.Context, path string, partner int64, idemKey string, body []byte) []byte {
	t := time.Now()
	status, resp, err := post(ctx, c.http, c.base+path, c.tokens[partner], idemKey, body)
	if ctx.Err() != nil {
		return nil // cut off by the end of the run: neither counted nor timed
	}
	c.lat = append(c.lat, time.Since(t))
	c.reqs++
	if err != nil {
		c.errs["transport"]++
		return nil
	}
	if status/100 != 2 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(resp, &p)
		c.errs[fmt.Sprintf("%d %s", status, p.Code)]++
		return nil
	}
	return resp
}

func (c *client) earn(ctx context.Context, partner int64, quote bool) int64 {
	ref := c.nextRef("e")
	body, _ := json.Marshal(c.earnBody(ref))
	if quote {
		if c.do(ctx, "/v1/earn/quote", partner, "", body) == nil {
			return 0
		}
		c.ops++
		c.kinds["quote"]++
		return 1
	}
	resp := c.do(ctx, "/v1/earn", partner, ref, body)
	if resp == nil {
		return 0
	}
	var tr struct {
		ID int64 `json:"id"`
	}
	_ = json.Unmarshal(resp, &tr)
	c.acks = append(c.acks, ack{Kind: "earn", PartnerID: partner, ExternalRef: ref, TxID: tr.ID})
	c.ops++
	c.kinds["earn"]++
	return 1
}

// burn is a one-step burn (capture: true) of 1 to 5 points, with the
// member's single-use redemption code (the next member of this client's
// share, each once per workload), or with pin, the member's PIN.
func (c *client) burn(ctx context.Context, pin bool) int64 {
	ref := c.nextRef("b")
	partner := c.randomPartner()
	req := map[string]any{"points": 1 + c.rng.Int64N(5), "capture": true, "external_ref": ref}
	if pin {
		req["member_id"] = c.seeded.minMember + c.rng.Int64N(min(c.seeded.burnMembers, pinMembers))
		req["pin"] = benchPIN
	} else {
		// Client i spends the codes of members i, i+clients, ...; when its
		// share is used up the next burn is refused (a consent error in the
		// report): size -burn-members to the run.
		member := c.seeded.minMember + int64(c.id) + int64(c.burns)*int64(c.clients)
		c.burns++
		req["member_id"] = member
		req["redemption_code"] = redemptionCode(member, c.seeded.codeRound)
	}
	body, _ := json.Marshal(req)
	resp := c.do(ctx, "/v1/burns", partner, ref, body)
	if resp == nil {
		return 0
	}
	var b struct {
		Transaction struct {
			ID int64 `json:"id"`
		} `json:"transaction"`
	}
	_ = json.Unmarshal(resp, &b)
	c.acks = append(c.acks, ack{Kind: "burn", PartnerID: partner, ExternalRef: ref, TxID: b.Transaction.ID})
	c.ops++
	c.kinds["burn"]++
	return 1
}

func (c *client) batch(ctx context.Context) int64 {
	partner := c.randomPartner()
	// Structs, not maps: the generator shares the cores with what it
	// measures, and encoding a map sorts its keys through reflection.
	type amount struct {
		Minor    int64  `json:"minor"`
		Currency string `json:"currency"`
	}
	type item struct {
		IdempotencyKey string `json:"idempotency_key"`
		MemberID       int64  `json:"member_id"`
		ExternalRef    string `json:"external_ref"`
		Amount         amount `json:"amount"`
	}
	items := make([]item, c.batchSz)
	refs := make([]string, c.batchSz)
	for i := range items {
		refs[i] = c.nextRef("be")
		items[i] = item{IdempotencyKey: refs[i], MemberID: c.randomMember(), ExternalRef: refs[i],
			Amount: amount{Minor: 500 + c.rng.Int64N(20000), Currency: "EUR"}}
	}
	body, _ := json.Marshal(struct {
		Items []item `json:"items"`
	}{items})
	resp := c.do(ctx, "/v1/earn/batch", partner, "", body)
	if resp == nil {
		return 0
	}
	var out struct {
		Results []struct {
			Index       int `json:"index"`
			Status      int `json:"status"`
			Transaction *struct {
				ID int64 `json:"id"`
			} `json:"transaction"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		c.errs["bad batch answer"]++
		return 0
	}
	var n int64
	for _, r := range out.Results {
		if r.Status == http.StatusCreated && r.Transaction != nil {
			c.acks = append(c.acks, ack{Kind: "earn", PartnerID: partner, ExternalRef: refs[r.Index], TxID: r.Transaction.ID})
			n++
			continue
		}
		code := ""
		if r.Error != nil {
			code = r.Error.Code
		}
		c.errs[fmt.Sprintf("item %d %s", r.Status, code)]++
	}
	c.ops += n
	c.kinds["earn"] += int(n)
	return n
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad URL)"
	}
	return u.Redacted()
}

// settle brings the bench database to the same state before every workload,
// as pgbench vacuums before its runs: VACUUM ANALYZE (the seeding, the
// funding and the previous workload left dead rows, unset visibility bits
// and stale statistics that autovacuum would otherwise work off inside the
// next short window) and a CHECKPOINT (so no workload starts in the middle of
// one, paying its full-page writes by chance). A failure (CHECKPOINT needs
// superuser or pg_checkpoint) is reported and the run goes on.
func settle(ctx context.Context, db *gorm.DB) {
	t := time.Now()
	for _, q := range []string{"VACUUM ANALYZE", "CHECKPOINT"} {
		if err := db.WithContext(ctx).Exec(q).Error; err != nil {
			fmt.Fprintf(os.Stderr, "settle: %s: %v\n", q, err)
		}
	}
	fmt.Fprintf(os.Stderr, "settled the database (VACUUM ANALYZE, CHECKPOINT) in %s\n", time.Since(t).Round(time.Millisecond))
}
