// Package partnersim is a partner programme (an airline's miles, a hotel's
// points) serving the partner side of the exchange protocol (see
// exchange/client.go): member validation, credits deduplicated by
// transaction id, status lookups. Switches make it misbehave the way real
// partners do: latency, a failure rate (HTTP 500), a pending mode that
// resolves after N polls or after some time, and duplicate callbacks. The
// demo coalition runs it as `partnersim`; the tests run it in-process.
package partnersim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/coalitionhub/hub/exchange"
)

// Config holds the switches. Zero values mean a fast, reliable partner that
// answers at once.
type Config struct {
	APIKey string // required bearer key
	// Accounts that exist; nil accepts any account not starting with "X".
	Accounts map[string]bool
	// Latency delays every answer.
	Latency time.Duration
	// FailureRate is the probability (0..1) of answering 500 without doing
	// anything.
	FailureRate float64
	// PendingPolls > 0 answers new credits "pending" and completes them at
	// the PendingPolls-th status lookup; PendingFor > 0 completes them once
	// that much time (on Now) passed. Either resolves a pending credit.
	PendingPolls int
	PendingFor   time.Duration
	// RefuseOver refuses credits of more than this many units (0 = none).
	RefuseOver int64
	// HoldPrefix, when set, answers credits to accounts starting with it
	// "pending" and keeps them pending at every status lookup, whatever
	// PendingPolls and PendingFor say, until Resolve: a partner that
	// processes some credits by hand (the demo's pending exchange).
	HoldPrefix string
	// Callback, when set, is called with the final result of a credit that
	// was pending; DuplicateCallbacks calls it twice.
	Callback           func(exchange.CreditResult)
	DuplicateCallbacks bool
	Now                func() time.Time
	Seed               uint64
}

type credit struct {
	result  exchange.CreditResult
	account string
	units   int64
	created time.Time
	polls   int
	held    bool // HoldPrefix: pending until Resolve
}

// Sim is the simulated partner. Its methods are safe for concurrent use.
type Sim struct {
	mu       sync.Mutex
	cfg      Config
	rnd      *rand.Rand
	credits  map[string]*credit
	balances map[string]int64
	failNext int
	hangNext int
	hang     time.Duration
	held     chan struct{}
	requests int
	applied  int
}

// New returns a simulator with cfg.
func New(cfg Config) *Sim {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sim{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, 7)), credits: map[string]*credit{}, balances: map[string]int64{},
		held: make(chan struct{}, 64)}
}

// Set replaces the switches (the credits and balances stay).
func (s *Sim) Set(f func(*Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.cfg)
}

// FailNext makes the next n requests answer 500 without doing anything.
func (s *Sim) FailNext(n int) { s.mu.Lock(); s.failNext = n; s.mu.Unlock() }

// HangNext makes the next n requests do their work, then hold the answer for
// d (a client with a shorter timeout gives up without learning the outcome).
func (s *Sim) HangNext(n int, d time.Duration) { s.mu.Lock(); s.hangNext, s.hang = n, d; s.mu.Unlock() }

// Held receives once for each request that HangNext holds, when its work is
// done and the answer starts waiting: the moment a caller's timeout would
// strike. A test that gives up then needs no timing of its own.
func (s *Sim) Held() <-chan struct{} { return s.held }

// Balance is what the simulator credited to account, in units.
func (s *Sim) Balance(account string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.balances[account]
}

// Applied counts credits applied to balances (each transaction id at most once).
func (s *Sim) Applied() int { s.mu.Lock(); defer s.mu.Unlock(); return s.applied }

// Requests counts requests served.
func (s *Sim) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

// Handler serves the protocol.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /members/validate", s.validate)
	mux.HandleFunc("POST /credits", s.credit)
	mux.HandleFunc("GET /credits/{id}", s.status)
	return s.middleware(mux)
}

func (s *Sim) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		cfg := s.cfg
		fail := s.failNext > 0
		if fail {
			s.failNext--
		}
		var hang time.Duration
		if !fail && s.hangNext > 0 {
			s.hangNext--
			hang = s.hang
		}
		random := cfg.FailureRate > 0 && s.rnd.Float64() < cfg.FailureRate
		s.mu.Unlock()
		if cfg.Latency > 0 {
			time.Sleep(cfg.Latency)
		}
		if r.Header.Get("Authorization") != "Bearer "+cfg.APIKey {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad api key"})
			return
		}
		if fail || random {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "simulated failure"})
			return
		}
		if hang > 0 {
			// The work is done, but the answer comes too late for the caller.
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			select {
			case s.held <- struct{}{}:
			default:
			}
			select {
			case <-time.After(hang):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Sim) known(account string) bool {
	if s.cfg.Accounts != nil {
		return s.cfg.Accounts[account]
	}
	return account != "" && !strings.HasPrefix(account, "X")
}

func (s *Sim) validate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Account string `json:"account"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.mu.Lock()
	ok := s.known(req.Account)
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, exchange.ValidateResult{Valid: false, Reason: "no such account"})
		return
	}
	writeJSON(w, http.StatusOK, exchange.ValidateResult{Valid: true})
}

func (s *Sim) credit(w http.ResponseWriter, r *http.Request) {
	var req exchange.CreditRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TransactionID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
		return
	}
	s.mu.Lock()
	c, seen := s.credits[req.TransactionID]
	if !seen {
		c = &credit{account: req.Account, units: req.Units, created: s.cfg.Now(),
			result: exchange.CreditResult{TransactionID: req.TransactionID}}
		switch {
		case !s.known(req.Account):
			c.result.Status, c.result.Reason = exchange.CreditRefused, "no such account"
		case req.Units <= 0 || req.Units >= 1_000_000 || (s.cfg.RefuseOver > 0 && req.Units > s.cfg.RefuseOver):
			c.result.Status, c.result.Reason = exchange.CreditRefused, "amount out of range"
		case s.cfg.HoldPrefix != "" && strings.HasPrefix(req.Account, s.cfg.HoldPrefix):
			c.result.Status, c.held = exchange.CreditPending, true
		case s.cfg.PendingPolls > 0 || s.cfg.PendingFor > 0:
			c.result.Status = exchange.CreditPending
		default:
			s.complete(c)
		}
		s.credits[req.TransactionID] = c
	}
	res := c.result
	s.mu.Unlock()
	writeResult(w, res)
}

// complete applies a credit; called with mu held.
func (s *Sim) complete(c *credit) {
	c.result.Status = exchange.CreditCompleted
	c.result.PartnerRef = fmt.Sprintf("SIM-%06d", s.applied+1)
	s.balances[c.account] += c.units
	s.applied++
}

func (s *Sim) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	c, ok := s.credits[id]
	var callback func(exchange.CreditResult)
	calls := 0
	if ok && c.result.Status == exchange.CreditPending && !c.held {
		c.polls++
		if (s.cfg.PendingPolls > 0 && c.polls >= s.cfg.PendingPolls) ||
			(s.cfg.PendingFor > 0 && !s.cfg.Now().Before(c.created.Add(s.cfg.PendingFor))) {
			s.complete(c)
			if s.cfg.Callback != nil {
				callback, calls = s.cfg.Callback, 1
				if s.cfg.DuplicateCallbacks {
					calls = 2
				}
			}
		}
	}
	var res exchange.CreditResult
	if ok {
		res = c.result
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown transaction"})
		return
	}
	for range calls {
		callback(res)
	}
	writeResult(w, res)
}

// Resolve completes every pending credit now (a batch partner's nightly run)
// and sends callbacks as configured. It returns how many it completed.
func (s *Sim) Resolve() int {
	s.mu.Lock()
	var done []exchange.CreditResult
	for _, c := range s.credits {
		if c.result.Status == exchange.CreditPending {
			s.complete(c)
			done = append(done, c.result)
		}
	}
	cb, dup := s.cfg.Callback, s.cfg.DuplicateCallbacks
	s.mu.Unlock()
	if cb != nil {
		for _, r := range done {
			cb(r)
			if dup {
				cb(r)
			}
		}
	}
	return len(done)
}

func writeResult(w http.ResponseWriter, res exchange.CreditResult) {
	switch res.Status {
	case exchange.CreditPending:
		writeJSON(w, http.StatusAccepted, res)
	case exchange.CreditRefused:
		writeJSON(w, http.StatusUnprocessableEntity, res)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
