package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUUse is where a workload's CPU time went, per acknowledged operation, read
// from /proc (Linux). Throughput on a shared machine moves with its
// neighbours; CPU time per operation moves much less, so it is the number to
// compare between changes. Machine counts every core's busy time; Hub is the
// hub process, Postgres every process named postgres, Bench this load
// generator; the rest of Machine is the kernel and other processes.
type CPUUse struct {
	MachineUsPerOp  float64 `json:"machine_us_per_op"`
	HubUsPerOp      float64 `json:"hub_us_per_op"`
	PostgresUsPerOp float64 `json:"postgres_us_per_op"`
	BenchUsPerOp    float64 `json:"bench_us_per_op"`
	BusyPct         float64 `json:"busy_pct"`  // of all cores over the run
	StealPct        float64 `json:"steal_pct"` // taken by the hypervisor for other guests
}

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 100

type cpuSample struct {
	busy, steal, total float64           // seconds summed over cores
	hub, bench         float64           // seconds
	postgres           map[int64]float64 // seconds by process id
}

func ticks(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v / clockTick
}

// procCPU returns a process's user+system seconds and its name.
func procCPU(pid string) (float64, string) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, ""
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, ""
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return 0, ""
	}
	// After the name: state is field 3 of the line, utime 14, stime 15.
	return ticks(f[11]) + ticks(f[12]), s[open+1 : end]
}

func sampleCPU(hubPID int) cpuSample {
	var c cpuSample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) >= 9 && f[0] == "cpu" {
			// user nice system idle iowait irq softirq steal
			for i := 1; i < len(f) && i <= 8; i++ {
				c.total += ticks(f[i])
			}
			c.busy = ticks(f[1]) + ticks(f[2]) + ticks(f[3]) + ticks(f[6]) + ticks(f[7])
			c.steal = ticks(f[8])
		}
	}
	c.hub, _ = procCPU(strconv.Itoa(hubPID))
	c.postgres = map[int64]float64{}
	if dirs, err := os.ReadDir("/proc"); err == nil {
		for _, d := range dirs {
			pid, err := strconv.ParseInt(d.Name(), 10, 64)
			if err != nil {
				continue
			}
			if secs, name := procCPU(d.Name()); name == "postgres" {
				c.postgres[pid] = secs
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.bench = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return c
}

// cpuUse is the CPU between two samples per operation. PostgreSQL is summed
// process by process: a backend started between the samples counts whole, one
// that ended between them is lost (its last seconds are not in /proc any
// more), so connections closed mid-run make Postgres an underestimate.
func cpuUse(a, b cpuSample, ops int64) CPUUse {
	if ops <= 0 || b.total <= a.total {
		return CPUUse{}
	}
	var pg float64
	for pid, secs := range b.postgres {
		pg += secs - a.postgres[pid]
	}
	per := func(x float64) float64 { return x / float64(ops) * 1e6 }
	return CPUUse{
		MachineUsPerOp:  per(b.busy - a.busy),
		HubUsPerOp:      per(b.hub - a.hub),
		PostgresUsPerOp: per(pg),
		BenchUsPerOp:    per(b.bench - a.bench),
		BusyPct:         100 * (b.busy - a.busy) / (b.total - a.total),
		StealPct:        100 * (b.steal - a.steal) / (b.total - a.total),
	}
}
