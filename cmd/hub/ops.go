package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/coalitionhub/hub/cmd/hub/demo"
	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/migrations"
	"github.com/coalitionhub/hub/programme"
	"github.com/coalitionhub/hub/web"
)

func (a *app) migrate(ctx context.Context, args []string) error {
	sqlDB, err := a.db.DB()
	if err != nil {
		return err
	}
	dir := "up"
	if len(args) > 0 {
		dir = args[0]
	}
	switch dir {
	case "up":
		return migrations.Up(ctx, sqlDB, a.log)
	case "down":
		return migrations.Down(ctx, sqlDB, a.log)
	case "status":
		return migrations.Status(ctx, sqlDB, os.Stdout)
	default:
		return usageError(fmt.Sprintf("migrate: unknown direction %q (want up, down or status)", dir))
	}
}

// seed loads the demo coalition (cmd/hub/demo) and prints how to use it.
func (a *app) seed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("members", 2500, "members to enrol")
	months := fs.Int("months", 6, "months of simulated history")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	clk := clock.New(time.Now())
	svc, err := a.buildServices(clk.Now)
	if err != nil {
		return err
	}
	started := time.Now()
	creds, err := demo.Seed(ctx, demo.Services{DB: a.db, Partners: svc.partners, Access: svc.access, Rules: svc.rules,
		Members: svc.members, Consent: svc.consent, Ledger: svc.ledger, Transactions: svc.transactions,
		Programme: svc.programme, Exchange: svc.exchange, Catalog: svc.catalog},
		clk, demo.Options{Members: *n, Months: *months, AdminPassword: os.Getenv("HUB_DEMO_PASSWORD"), Out: os.Stdout,
			PartnerSimURL: os.Getenv("HUB_DEMO_PARTNERSIM_URL"), PartnerSimKey: os.Getenv("HUB_DEMO_PARTNERSIM_KEY")})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\ndemo coalition ready in %s\n\n", time.Since(started).Round(time.Second))
	fmt.Fprintf(w, "operator staff\temail\tpassword\n")
	for _, e := range []string{"admin@demo.coalition.example", "finance@demo.coalition.example", "support@demo.coalition.example"} {
		fmt.Fprintf(w, "\t%s\t%s\n", e, creds.Staff[e])
	}
	if creds.MemberEmail != "" {
		fmt.Fprintf(w, "\nmember portal\t%s\t%s\n", creds.MemberEmail, creds.MemberPassword)
	}
	fmt.Fprintf(w, "\npartner API clients\tclient_id\tsecret (new on every seed)\n")
	for _, c := range creds.Clients {
		fmt.Fprintf(w, "%s\t%s\t%s\n", c.Partner, c.ClientID, c.Secret)
	}
	fmt.Fprintf(w, "\nmember portal\t%s/portal\n", a.cfg.PublicURL)
	fmt.Fprintf(w, "operator console\t%s/console\n", a.cfg.PublicURL)
	fmt.Fprintf(w, "API reference\t%s/docs\n", a.cfg.PublicURL)
	fmt.Fprintf(w, "token endpoint\t%s/oauth/token\n", a.cfg.PublicURL)
	return w.Flush()
}

// audit checks the ledger invariants, prints one line per check (with the
// violations of failed ones) and fails, so the process exits 1, on any breach.
func (a *app) audit(ctx context.Context, args []string) error {
	rep, err := ledger.Audit(ctx, a.db, programme.AuditQueries()...)
	if err != nil {
		return err
	}
	rep.Write(os.Stdout)
	if !rep.OK() {
		return fmt.Errorf("audit: ledger invariants breached (details above)")
	}
	fmt.Println("audit: all ledger invariants hold")
	return nil
}

// printOpenAPI writes the merged OpenAPI document, as /openapi.json serves
// it, indented so that a linter's line numbers point somewhere readable.
func printOpenAPI(w io.Writer) error {
	spec, err := web.OpenAPIJSON()
	if err != nil {
		return fmt.Errorf("openapi: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, spec, "", "  "); err != nil {
		return fmt.Errorf("openapi: %w", err)
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(w)
	return err
}
