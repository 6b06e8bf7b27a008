package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// targets are the goals in docs/performance.md, printed beside the numbers.
var targets = map[string]string{
	"earn-spread": ">= 1500 ops/s at 16 clients, p99 <= 50 ms",
	"earn-hot":    ">= 90% of earn-spread",
	"burn":        ">= 1000 ops/s",
	"burn-pin":    "(PIN consent: bcrypt at cost 4)",
	"mix":         "(70% earn, 20% quote, 10% burn)",
	"batch":       ">= 15000 earns/s",
}

// printTable writes the human summary of a run.
func printTable(w io.Writer, r Result) {
	m := r.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (%s), %d MB; PostgreSQL %s, synchronous_commit=%s, fsync=%s, shared_buffers=%s\n",
		m.CPUs, m.CPUModel, m.MemoryMB, m.Postgres, m.SynchronousCommit, m.Fsync, m.SharedBuffers)
	if len(r.Workloads) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "workload\tclients\tops\tops/s\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tonce\taudit\t\ttarget")
		var spread float64
		for _, x := range r.Workloads {
			if x.Name == "earn-spread" {
				spread = x.OpsPerSec
			}
		}
		for _, x := range r.Workloads {
			errs := 0
			for _, n := range x.Errors {
				errs += n
			}
			tgt := targets[x.Name]
			if x.Name == "earn-hot" && spread > 0 {
				tgt += fmt.Sprintf(" (%.0f%%)", 100*x.OpsPerSec/spread)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%v\t%v\t\t%s\n", x.Name, x.Clients, x.Ops,
				x.OpsPerSec, x.ReqPerSec, x.P50ms, x.P95ms, x.P99ms, x.MaxMs, errs, x.Verify.OK, x.AuditOK, tgt)
		}
		tw.Flush()
		fmt.Fprintln(w, "\nCPU per operation (µs of one core; machine = every process and the kernel):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "workload\tmachine\thub\tpostgres\tbench\tbusy %\tsteal %\t")
		for _, x := range r.Workloads {
			c := x.CPU
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", x.Name, c.MachineUsPerOp, c.HubUsPerOp,
				c.PostgresUsPerOp, c.BenchUsPerOp, c.BusyPct, c.StealPct)
		}
		tw.Flush()
		for _, x := range r.Workloads {
			if len(x.Errors) == 0 {
				continue
			}
			var keys []string
			for k := range x.Errors {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s: %d", k, x.Errors[k]))
			}
			fmt.Fprintf(w, "errors of %s: %s\n", x.Name, strings.Join(parts, ", "))
		}
	}
	if s := r.Settlement; s != nil {
		fmt.Fprintf(w, "\nsettlement close of %s: %d transactions, %d members, %d partners\n", s.Month, s.Transactions, s.Members, s.Partners)
		fmt.Fprintf(w, "  generate %.1fs (%.0f rows/s); close %.1fs (%.0f transactions/s); close peak RSS %.0f MB, peak Go heap %.0f MB; %d statements\n",
			s.GenerateSeconds, s.GenerateRowsSec, s.CloseSeconds, s.CloseRowsPerSec, s.PeakRSSMB, s.PeakHeapMB, s.Statements)
		fmt.Fprintf(w, "  target: 5,000,000 transactions closed in <= 60 s with peak memory < 300 MB\n")
	}
}
