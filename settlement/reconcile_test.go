package settlement

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/coalitionhub/hub/internal/database"
	"github.com/coalitionhub/hub/partners"
)

// TestReconciliationFindsPlantedDiscrepancies generates a partner file from
// the hub's own month, plants one discrepancy of each kind and malformed
// lines, and checks that matching reports exactly those.
func TestReconciliationFindsPlantedDiscrepancies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	other := e.partner("Grand Hotels", partners.SectorHotel, "EUR")
	e.contract(a, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)
	e.contract(other, at(2026, 9, 1, 0, 0), "0.01", "0.006", "0", "0", partners.BillingPostpaid)

	const n = 120
	hub := map[string]int64{} // "kind ref" -> points as the hub has them
	for i := range n {
		ref := fmt.Sprintf("E-%03d", i)
		when := at(2026, 9, 2+i%25, 10, 0)
		tr := e.earn(when, int64(1000+i), a, int64(100+i), when, nil, ref)
		hub["earn "+ref] = int64(100 + i)
		if i%10 == 0 { // partly refunded: the hub nets the reversal
			e.reverse(when.Add(1), tr.ID, 30, ref+"-R")
			hub["earn "+ref] -= 30
		}
		if i%4 == 0 {
			bref := fmt.Sprintf("B-%03d", i)
			e.burn(when.Add(2), int64(1000+i), a, 50, bref)
			hub["burn "+bref] = 50
		}
	}
	// Another partner's transaction with a colliding reference is not A's.
	e.earn(at(2026, 9, 3, 10, 0), 5000, other, 10, at(2026, 9, 3, 10, 0), nil, "X-1")
	e.close(at(2026, 10, 1, 1, 0), "2026-09")

	// The file: every hub line, except the planted discrepancies.
	keys := make([]string, 0, len(hub))
	for k := range hub {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("date,external_ref,type,points\n")
	for _, k := range keys {
		kind, ref, _ := strings.Cut(k, " ")
		pts := hub[k]
		switch ref {
		case "E-007":
			continue // missing in the file
		case "E-011":
			pts += 5 // amount mismatch
		}
		fmt.Fprintf(&b, "2026-09-10,%s,%s,%d\n", ref, kind, pts)
	}
	b.WriteString("2026-09-11,Z-999,earn,40\n") // missing in the hub
	b.WriteString("2026-09-11,X-1,earn,10\n")   // the other partner's reference: missing in the hub for A
	b.WriteString("2026-09-12,E-bad,refund,1\n")
	b.WriteString("2026-09-12,E-bad2,earn,ten\n")
	b.WriteString("2026-09-12,only-two\n")
	b.WriteString("2026-09-12,\"broken,earn,1\n")
	fileLines := int64(len(keys)-1) + 6

	e.clk.Set(at(2026, 10, 3, 9, 0))
	if _, err := e.svc.Upload(e.ctx, a, "2026-10", strings.NewReader(b.String())); !errors.Is(err, ErrPeriodNotFound) && !errors.Is(err, ErrPeriodNotClosed) {
		t.Fatalf("upload for an open period: %v; want not closed", err)
	}
	up, err := e.svc.Upload(e.ctx, a, "2026-09", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if up.Status != "received" || up.Lines != fileLines || up.Malformed != 4 {
		t.Fatalf("upload: %+v; want received, %d lines, 4 malformed", up, fileLines)
	}
	bad, err := e.svc.LineErrors(e.ctx, up.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	first := int64(len(keys)-1) + 4 // header is line 1
	var badLines []int64
	for _, le := range bad {
		badLines = append(badLines, le.LineNo)
	}
	if fmt.Sprint(badLines) != fmt.Sprint([]int64{first, first + 1, first + 2, first + 3}) {
		t.Errorf("malformed lines %v (%+v); want %d..%d", badLines, bad, first, first+3)
	}

	r, err := e.svc.Match(e.ctx, up.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "matched" || r.Matched != int64(len(keys)-2) || r.MissingInFile != 1 || r.MissingInHub != 2 || r.Mismatched != 1 {
		t.Fatalf("match counts %+v; want %d matched, 1 missing in file, 2 missing in hub, 1 mismatch", r, len(keys)-2)
	}
	again, err := e.svc.Match(e.ctx, up.ID)
	if err != nil || again.MatchedAt == nil || !again.MatchedAt.Equal(*r.MatchedAt) {
		t.Fatalf("matching twice: %+v %v; want unchanged", again, err)
	}
	if again.MatchedAt, r.MatchedAt = nil, nil; again != r {
		t.Fatalf("matching twice: %+v %v; want unchanged", again, err)
	}
	lines, err := e.svc.ReconLines(e.ctx, up.ID, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	byRef := map[string]ReconLine{}
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s %s %s", l.Outcome, l.Kind, l.ExternalRef))
		byRef[l.ExternalRef] = l
	}
	sort.Strings(got)
	want := []string{"amount_mismatch earn E-011", "missing_in_file earn E-007", "missing_in_hub earn X-1", "missing_in_hub earn Z-999"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("discrepancies %v; want exactly %v", got, want)
	}
	if m := byRef["E-011"]; database.Deref(m.FilePoints) != hub["earn E-011"]+5 || database.Deref(m.HubPoints) != hub["earn E-011"] {
		t.Errorf("mismatch line %+v; want file %d hub %d", m, hub["earn E-011"]+5, hub["earn E-011"])
	}

	// Finance resolves: dispute needs a note; accepting values the difference.
	if _, err := e.svc.Resolve(e.ctx, byRef["Z-999"].ID, Resolution{Actor: "fin"}); err == nil {
		t.Fatal("dispute without a note: want a validation error")
	}
	if l, err := e.svc.Resolve(e.ctx, byRef["Z-999"].ID, Resolution{Note: "no such booking on our side", Actor: "fin"}); err != nil || l.Resolution != "disputed" {
		t.Fatalf("dispute: %+v %v", l, err)
	}
	acc, err := e.svc.Resolve(e.ctx, byRef["E-011"].ID, Resolution{Accept: true, Actor: "fin"})
	if err != nil || acc.Resolution != "accepted" || acc.AdjustmentID == 0 {
		t.Fatalf("accept: %+v %v; want an adjustment", acc, err)
	}
	if _, err := e.svc.Resolve(e.ctx, byRef["E-011"].ID, Resolution{Accept: true, Actor: "fin"}); !errors.Is(err, ErrAlreadyResolved) {
		t.Fatalf("second resolution: %v; want ErrAlreadyResolved", err)
	}
	// The accepted difference (5 points more issued, at 0.01) lands in October.
	e.close(at(2026, 11, 1, 1, 0), "2026-10")
	st := e.statementOf("2026-10", a)
	if len(st.Document.Lines) != 1 || st.Document.Lines[0].Kind != LineAdjustment || st.Document.Lines[0].Amount.Minor != -5 ||
		st.Document.Lines[0].AdjustmentID != acc.AdjustmentID {
		t.Errorf("October statement %+v; want one adjustment line of -0.05 EUR", st.Document.Lines)
	}
	e.audit()
}

// genFile streams a CSV of n lines without holding it in memory; every
// seventh line is malformed.
type genFile struct {
	n, i int
	buf  []byte
}

func (g *genFile) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.i > g.n {
			return 0, io.EOF
		}
		if g.i == 0 {
			g.buf = []byte("external_ref,type,points\n")
		} else if g.i%7 == 0 {
			g.buf = []byte(fmt.Sprintf("R-%d,earn,x\n", g.i))
		} else {
			g.buf = []byte(fmt.Sprintf("R-%d,earn,%d\n", g.i, g.i))
		}
		g.i++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// TestUploadStreamsLargeFile uploads a generated file larger than one batch
// and checks every line is accounted for, malformed ones by number.
func TestUploadStreamsLargeFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, at(2026, 8, 20, 9, 0))
	a := e.partner("Sky Air", partners.SectorAirline, "EUR")
	e.close(at(2026, 9, 1, 1, 0), "2026-08")
	const n = 5000
	up, err := e.svc.Upload(e.ctx, a, "2026-08", &genFile{n: n})
	if err != nil {
		t.Fatal(err)
	}
	if up.Lines != n || up.Malformed != n/7 {
		t.Fatalf("upload %+v; want %d lines, %d malformed", up, n, n/7)
	}
	bad, _ := e.svc.LineErrors(e.ctx, up.ID, 0, 2)
	if len(bad) != 2 || bad[0].LineNo != 8 || bad[1].LineNo != 15 {
		t.Errorf("first malformed lines %+v; want lines 8 and 15 (data line 7 and 14 after the header)", bad)
	}
	r, err := e.svc.Match(e.ctx, up.ID)
	if err != nil || r.MissingInHub != n-n/7 || r.Matched != 0 {
		t.Fatalf("match %+v %v; want %d missing in hub", r, err, n-n/7)
	}
}
