// Command partnersim runs a simulated partner programme (see package
// exchange/partnersim) on a loopback address for the demo coalition and
// end-to-end tests:
//
//	partnersim -addr 127.0.0.1:8091 -key demo-airline-key -pending-polls 2 -failure-rate 0.1
//
// With -hold-prefix HOLD, credits to accounts starting with HOLD stay
// pending (the demo member's pending exchange).
//
// With -callback-url it posts the final status of credits that were pending
// to the hub (POST <url>/<transaction id>/status, bearer -callback-token),
// twice with -duplicate-callbacks.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coalitionhub/hub/exchange"
	"github.com/coalitionhub/hub/exchange/partnersim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "partnersim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("partnersim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8091", "listen address (loopback only)")
	key := fs.String("key", "demo-partner-key", "API key the hub must present")
	latency := fs.Duration("latency", 0, "delay before every answer")
	failure := fs.Float64("failure-rate", 0, "probability (0..1) of answering 500")
	polls := fs.Int("pending-polls", 0, "answer credits pending; complete at the N-th status lookup")
	pendingFor := fs.Duration("pending-for", 0, "answer credits pending; complete after this long")
	refuseOver := fs.Int64("refuse-over", 0, "refuse credits above this many units (0 = none)")
	holdPrefix := fs.String("hold-prefix", "", "keep credits to accounts starting with this pending (never completed by polls)")
	callbackURL := fs.String("callback-url", "", "hub status callback base URL, e.g. http://127.0.0.1:8080/v1/exchanges/outbound")
	callbackToken := fs.String("callback-token", "", "bearer token for the callback")
	dup := fs.Bool("duplicate-callbacks", false, "send every callback twice")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %s: the simulator listens on loopback only", *addr)
	}
	if *failure < 0 || *failure > 1 {
		return fmt.Errorf("-failure-rate must be within 0..1")
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := partnersim.Config{APIKey: *key, Latency: *latency, FailureRate: *failure, PendingPolls: *polls,
		PendingFor: *pendingFor, RefuseOver: *refuseOver, HoldPrefix: *holdPrefix, DuplicateCallbacks: *dup, Seed: uint64(time.Now().UnixNano())}
	if *callbackURL != "" {
		client := &http.Client{Timeout: 10 * time.Second}
		cfg.Callback = func(r exchange.CreditResult) {
			b, _ := json.Marshal(r)
			req, _ := http.NewRequest(http.MethodPost, strings.TrimRight(*callbackURL, "/")+"/"+r.TransactionID+"/status", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+*callbackToken)
			resp, err := client.Do(req)
			if err != nil {
				log.Warn("callback failed", "transaction_id", r.TransactionID, "err", err)
				return
			}
			resp.Body.Close()
			log.Info("callback sent", "transaction_id", r.TransactionID, "status", resp.StatusCode)
		}
	}
	sim := partnersim.New(cfg)
	log.Info("partner simulator listening", "addr", *addr)
	srv := &http.Server{Addr: *addr, Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}
