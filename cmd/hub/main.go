// Command hub is the coalition loyalty hub: one binary whose subcommands run
// the API, the background worker, migrations, demo seeding and the ledger audit.
// This file only parses the command line and wires config and connections.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coalitionhub/hub/internal/config"
	"github.com/coalitionhub/hub/internal/database"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `hub: the coalition loyalty hub

usage: hub <command> [args]

commands:
  serve            run the HTTP API, operator console and member portal
  worker           run background jobs, the scheduler and the outbox relay
  all              serve and worker in one process (local use)
  migrate up|down|status
                   apply, roll back one, or list database migrations
  seed             load the demo coalition (idempotent)
  staff create --email EMAIL --role admin|finance|support
                   add an operator staff account (the first admin of an empty
                   database); the password is prompted for, or read from stdin
  audit            check the ledger invariants; exits 1 on any breach
  openapi          print the API description the hub serves at /openapi.json
                   (OpenAPI 3.1, indented JSON), for linters and client generators
  version          print the version

configuration comes from HUB_* environment variables; see README.md.
`

func main() { runMain(time.Now) }

// runMain runs the command line on the clock now: time.Now, except in the
// end-to-end tests, whose hub processes may run a month ahead to close the
// month they just posted in.
func runMain(now func() time.Time) {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:], now); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		os.Exit(exitCode(err))
	}
}

func run(ctx context.Context, cmd string, args []string, now func() time.Time) error {
	switch cmd {
	case "version", "--version":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	case "openapi":
		return printOpenAPI(os.Stdout)
	}
	switch cmd {
	case "serve", "worker", "all", "migrate", "seed", "audit", "staff":
	default:
		return usageError(fmt.Sprintf("unknown command %q\n\n%s", cmd, usage))
	}
	if cmd == "migrate" && (len(args) == 0 || args[0] == "up") {
		cfg, err := config.Load(os.Getenv)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		if err := database.EnsureExists(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	app, err := newApp(ctx, os.Getenv)
	if err != nil {
		return err
	}
	defer app.Close()
	app.now = now
	if cmd == "serve" || cmd == "worker" || cmd == "all" {
		tuneGC(os.Getenv)
		app.servePprof(ctx)
	}
	switch cmd {
	case "serve":
		return app.serve(ctx)
	case "worker":
		return app.worker(ctx)
	case "all":
		return app.all(ctx)
	case "migrate":
		return app.migrate(ctx, args)
	case "seed":
		return app.seed(ctx, args)
	case "audit":
		return app.audit(ctx, args)
	case "staff":
		return app.staff(ctx, args)
	default:
		return usageError(fmt.Sprintf("unknown command %q\n\n%s", cmd, usage))
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

// exitCode is 2 for usage mistakes, 1 for everything else.
func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}
