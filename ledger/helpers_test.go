package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/coalitionhub/hub/internal/clock"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/internal/validation"
	"github.com/coalitionhub/hub/ledger"
)

var t0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t     testing.TB
	db    *gorm.DB
	svc   *ledger.Service
	clock *clock.Manual
	ctx   context.Context
	// noAudit skips the audit at cleanup (tests that corrupt data on purpose).
	noAudit bool
}

func (f *fixture) skipAudit() { f.noAudit = true }

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := testdb.New(t)
	c := clock.New(t0)
	f := &fixture{t: t, db: db, svc: ledger.NewService(db, c.Now), clock: c, ctx: context.Background()}
	t.Cleanup(func() {
		if t.Failed() || f.noAudit {
			return
		}
		f.assertAudit()
	})
	return f
}

var keySeq atomic.Int64

// key returns a fresh idempotency key in the test scope.
func key() ledger.Idempotency {
	return ledger.Idempotency{Scope: "test", Key: fmt.Sprintf("k-%d", keySeq.Add(1))}
}

func (f *fixture) earn(member, partner int64, pts ledger.Points, opts ...func(*ledger.EarnRequest)) ledger.Transaction {
	f.t.Helper()
	r := ledger.EarnRequest{Idem: key(), MemberID: member, PartnerID: partner, Points: pts, OccurredAt: f.clock.Now()}
	for _, o := range opts {
		o(&r)
	}
	tx, err := f.svc.Earn(f.ctx, r)
	if err != nil {
		f.t.Fatalf("earn %d to member %d: %v", pts, member, err)
	}
	return tx
}

func (f *fixture) burn(member, partner int64, pts ledger.Points) (ledger.Transaction, error) {
	return f.svc.Burn(f.ctx, ledger.BurnRequest{Idem: key(), MemberID: member, PartnerID: partner, Points: pts})
}

func (f *fixture) mustBurn(member, partner int64, pts ledger.Points) ledger.Transaction {
	f.t.Helper()
	tx, err := f.burn(member, partner, pts)
	if err != nil {
		f.t.Fatalf("burn %d of member %d: %v", pts, member, err)
	}
	return tx
}

func (f *fixture) balance(member int64) ledger.Balance {
	f.t.Helper()
	b, err := f.svc.Balance(f.ctx, member)
	if err != nil {
		f.t.Fatalf("balance: %v", err)
	}
	return b
}

func (f *fixture) wantBalance(member int64, total, available ledger.Points) {
	f.t.Helper()
	b := f.balance(member)
	if b.Total != total || b.Available != available {
		f.t.Fatalf("member %d: balance total=%d available=%d, want total=%d available=%d (%+v)",
			member, b.Total, b.Available, total, available, b)
	}
}

func (f *fixture) assertAudit() {
	f.t.Helper()
	rep, err := ledger.Audit(f.ctx, f.db)
	if err != nil {
		f.t.Fatalf("audit: %v", err)
	}
	if !rep.OK() {
		var b strings.Builder
		rep.Write(&b)
		f.t.Fatalf("audit failed:\n%s", b.String())
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func ptr[T any](v T) *T { return &v }

func wantValidation(t testing.TB, err error, field string) {
	t.Helper()
	var ve *validation.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a validation error on %s", err, field)
	}
	for _, fe := range ve.Fields {
		if fe.Field == field {
			return
		}
	}
	t.Fatalf("validation error %v does not name field %s", ve, field)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
