#!/usr/bin/env bash
# Makes sure the tools a make target needs are installed, and installs what is
# missing with apt-get (scripts/apt.sh). PostgreSQL and Redis are
# scripts/services.sh's business.
#
#   deps.sh go     Go itself (never installed here: the version is in go.mod),
#                  and the CA certificates Go needs to fetch modules
#   deps.sh test   the above, plus a C compiler and C library headers for the
#                  race detector (cgo), and Chromium with a font for the
#                  browser tests (cmd/hub/browser_test.go)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt.sh

want=$(sed -n 's/^go //p' go.mod)
if ! command -v go >/dev/null; then
	printf '\033[1;31mGo is not installed:\033[0m install Go %s or newer, put its bin directory on PATH, and run again\n' "$want" >&2
	exit 1
fi

missing=()
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ -n "${missing[*]}" ]; then apt_install "CA certificates for the Go module proxy" "${missing[@]}"; fi
[ "${1:-go}" = test ] || exit 0

missing=()
command -v gcc >/dev/null || missing+=(gcc)
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
if [ -n "${missing[*]}" ]; then apt_install "a C compiler for the race detector" "${missing[@]}"; fi

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	apt_install "Chromium for the browser tests" chromium fonts-liberation
fi
