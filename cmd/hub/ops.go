package main

import (
	"context"
	"fmt"
	"os"

	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/migrations"
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

func (a *app) seed(ctx context.Context, args []string) error {
	return fmt.Errorf("seed: the demo coalition arrives with the ledger and partner issues")
}

// audit checks the ledger invariants, prints one line per check (with the
// violations of failed ones) and fails, so the process exits 1, on any breach.
func (a *app) audit(ctx context.Context, args []string) error {
	rep, err := ledger.Audit(ctx, a.db)
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
