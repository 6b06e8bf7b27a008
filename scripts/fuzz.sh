#!/usr/bin/env bash
# Runs every fuzz target of the module for a short exploratory spell
# (FUZZTIME, default 3s each) on top of the seed corpora that plain `go test`
# already replays. New crashers are written to the package's testdata/fuzz and
# fail the run: commit them as regression inputs once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
# One fuzz worker per target: FuzzDecodeEarnRequest runs a whole hub over a
# real database in every worker process, and with several workers at once its
# exploration stalled (0 execs/s after ~1,200); with one it runs at ~700/s.
# FUZZ_SKIP lists targets to replay from their corpus only. FUZZ_LIMIT bounds
# one target's whole run, compiling included: the first run of a package builds
# it again with coverage instrumentation, which took over ten minutes on a
# machine loaded by other builds, so the bound is generous (default 30 min).
FUZZ_SKIP=${FUZZ_SKIP-}
FUZZ_LIMIT=${FUZZ_LIMIT:-1800}
printf '\033[1;34m==>\033[0m fuzzing each target for %s (the first run compiles every package again, instrumented)\n' "$FUZZTIME"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
		case " $FUZZ_SKIP " in *" $target "*) echo "fuzz $pkg $target: corpus only (FUZZ_SKIP)"; continue ;; esac
		echo "fuzz $pkg $target ($FUZZTIME)"
		rc=0
		timeout "$FUZZ_LIMIT" go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel 1 "$pkg" >/tmp/fuzz-$$.log 2>&1 || rc=$?
		if [ "$rc" != 0 ]; then
			cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log
			[ "$rc" = 124 ] && echo "fuzz $pkg $target: stopped after ${FUZZ_LIMIT}s (FUZZ_LIMIT), compiling included" >&2
			exit 1
		fi
	done
done
rm -f /tmp/fuzz-$$.log
