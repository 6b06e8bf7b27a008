package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target for serve, worker and
// all when GOGC is not set. The hub keeps a small live heap (caches and
// in-flight requests, tens of MB) and allocates fast: at Go's default of 100
// it collected after every few batch requests, a fifth of its CPU under the
// batch-earn benchmark. At 400 the heap may grow to about five times the
// live data (still well under 200 MB in the bench), and the hub spends ~20%
// less CPU per earn (docs/performance.md). GOGC, and GOMEMLIMIT for a
// container with a hard memory limit, override it as for any Go program.
const defaultGCPercent = 400

// tuneGC applies defaultGCPercent unless GOGC is set, and returns the
// percentage in force.
func tuneGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		p := debug.SetGCPercent(-1) // read the value the runtime took from GOGC
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}
