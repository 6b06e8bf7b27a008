// Command mailcatcher is the local SMTP server of `make run`: it accepts
// every message the hub sends (HUB_SMTP_URL=smtp://127.0.0.1:1025), keeps it,
// and shows it on a web page (package internal/mailcatcher):
//
//	mailcatcher -smtp 127.0.0.1:1025 -http 127.0.0.1:8025 -dir .data/mail
//
// It listens on loopback only and relays nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coalitionhub/hub/internal/mailcatcher"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mailcatcher:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mailcatcher", flag.ContinueOnError)
	smtpAddr := fs.String("smtp", "127.0.0.1:1025", "SMTP listen address (loopback only)")
	httpAddr := fs.String("http", "127.0.0.1:8025", "web page and JSON listen address (loopback only)")
	dir := fs.String("dir", "", "keep messages as .eml files in this folder (and load them at start)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range []string{*smtpAddr, *httpAddr} {
		if err := mailcatcher.Loopback(a); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	c, err := mailcatcher.New(*dir, log)
	if err != nil {
		return err
	}
	sl, err := net.Listen("tcp", *smtpAddr)
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	ss := c.SMTPServer()
	hs := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- ss.Serve(sl) }()
	go func() { errc <- hs.Serve(hl) }()
	log.Info("mail catcher running", "smtp", sl.Addr().String(), "web", "http://"+hl.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	_ = ss.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
