package exports_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coalitionhub/hub/campaigns"
	"github.com/coalitionhub/hub/exports"
	"github.com/coalitionhub/hub/internal/jobs"
	"github.com/coalitionhub/hub/internal/testdb"
	"github.com/coalitionhub/hub/ledger"
	"github.com/coalitionhub/hub/members"
	"github.com/coalitionhub/hub/programme"
)

// TestExportsWriteEveryRowWithProgress exports a base of a few thousand
// members (the file spans several chunks), a segment of it and the ledger's
// transactions as job runs, and checks each file row by row and each run's
// progress at 100%.
func TestExportsWriteEveryRowWithProgress(t *testing.T) {
	db := testdb.New(t)
	now := func() time.Time { return time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC) }
	ctx := context.Background()
	l := ledger.NewService(db, now)
	m := members.NewService(db, l, now)
	p := programme.NewService(db, l, m, members.NewBurnConsent(db, now, members.DefaultConsentPolicy), now)
	runs := jobs.NewService(db, now, nil)
	camps := campaigns.NewService(db, m, l, p, runs, now)
	svc := exports.NewService(db, m, l, p, camps, runs, now)

	const n = 2000
	ids := make([]int64, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				email := fmt.Sprintf("x%d@example.com", i)
				mem, _, err := m.Enrol(ctx, members.EnrolRequest{Identifier: members.Identifier{Type: members.IdentifierEmail, Value: email},
					Profile: members.Profile{GivenName: "Ada", FamilyName: fmt.Sprintf("Number %d", i), Email: email}, Actor: "test"})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = mem.ID
				if i%3 == 0 { // every third member has i points
					if _, err := l.Earn(ctx, ledger.EarnRequest{Idem: ledger.Idempotency{Scope: "test", Key: email}, MemberID: mem.ID,
						OperatorFunded: ledger.Points(i + 1), OccurredAt: now()}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	write := func(run jobs.Run) (jobs.Run, [][]string) {
		t.Helper()
		if err := runs.Execute(ctx, run.ID, func(ctx context.Context, pr *jobs.Progress) (any, error) {
			return svc.Write(ctx, run, pr)
		}); err != nil {
			t.Fatalf("export run %d: %v", run.ID, err)
		}
		done, err := runs.Get(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.State != jobs.Succeeded || done.Percent() != 100 || done.Done != done.Total {
			t.Fatalf("run %+v; want succeeded at 100%%", done)
		}
		var buf bytes.Buffer
		if err := svc.Stream(ctx, run.ID, &buf); err != nil {
			t.Fatal(err)
		}
		f, err := svc.File(ctx, run.ID)
		if err != nil || f.Bytes != int64(buf.Len()) {
			t.Fatalf("file %+v %v; streamed %d bytes", f, err, buf.Len())
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(rows)-1) != f.Rows {
			t.Fatalf("file has %d rows after the header; the export says %d", len(rows)-1, f.Rows)
		}
		return done, rows
	}

	t.Logf("%d members enrolled", n)
	run, started, err := svc.StartMembers(ctx, 0, "staff:test")
	if err != nil || !started {
		t.Fatalf("start: %v %v", started, err)
	}
	if again, started, err := svc.StartMembers(ctx, 0, "staff:test"); err != nil || started || again.ID != run.ID {
		t.Fatalf("starting it again while queued: %d %v %v; want run %d", again.ID, started, err, run.ID)
	}
	done, rows := write(run)
	if len(rows) != n+1 || done.Total != n {
		t.Fatalf("members export: %d rows, total %d; want %d members and a header", len(rows)-1, done.Total, n)
	}
	byID := map[string][]string{}
	for _, r := range rows[1:] {
		byID[r[0]] = r
	}
	for i, id := range ids {
		r, ok := byID[strconv.FormatInt(id, 10)]
		want := 0
		if i%3 == 0 {
			want = i + 1
		}
		if !ok || r[4] != fmt.Sprintf("Number %d", i) || r[13] != strconv.Itoa(want) || r[5] != fmt.Sprintf("x%d@example.com", i) {
			t.Fatalf("member %d's row %v; want family name Number %d, balance %d", id, r, i, want)
		}
	}
	var chunks int
	if err := db.Raw(`SELECT count(*) FROM export_chunks WHERE run_id = ?`, run.ID).Scan(&chunks).Error; err != nil || chunks < 2 {
		t.Fatalf("the file took %d chunks (%v); want several (it is bigger than one)", chunks, err)
	}

	// A segment: members with at least 2,000 points.
	raw, _ := json.Marshal(2000)
	sg, err := camps.SaveSegment(ctx, 0, "rich", campaigns.Definition{All: []campaigns.Condition{{Field: "balance", Op: "at_least", Value: raw}}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	run, _, err = svc.StartMembers(ctx, sg.ID, "staff:test")
	if err != nil {
		t.Fatal(err)
	}
	_, rows = write(run)
	want := 0
	for i := 0; i < n; i += 3 {
		if i+1 >= 2000 {
			want++
		}
	}
	if len(rows)-1 != want {
		t.Fatalf("segment export: %d rows; want %d", len(rows)-1, want)
	}
	for _, r := range rows[1:] {
		if b, _ := strconv.Atoi(r[13]); b < 2000 {
			t.Fatalf("row %v is not in the segment", r)
		}
	}

	run, _, err = svc.StartTransactions(ctx, "staff:test")
	if err != nil {
		t.Fatal(err)
	}
	_, rows = write(run)
	if earns := (n + 2) / 3; len(rows)-1 != earns {
		t.Fatalf("transactions export: %d rows; want %d earns", len(rows)-1, earns)
	}
	for _, r := range rows[1:] {
		if r[1] != "earn" {
			t.Fatalf("row %v; want an earn", r)
		}
	}
}
