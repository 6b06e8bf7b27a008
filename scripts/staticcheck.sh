#!/usr/bin/env bash
# Runs staticcheck on every package. The version is pinned here; when the
# staticcheck in Go's bin directory is missing or another version, the pinned
# one is installed there first (go install).
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.8.2 # staticcheck 2026.2.2
gobin=$(go env GOBIN)
bin="${gobin:-$(go env GOPATH)/bin}/staticcheck"
if ! [ -x "$bin" ] || ! "$bin" -version 2>/dev/null | grep -qF "($version)"; then
	echo "installing staticcheck $version (go install honnef.co/go/tools/cmd/staticcheck@v$version)"
	go install "honnef.co/go/tools/cmd/staticcheck@v$version"
fi
echo "staticcheck ./..."
CGO_ENABLED=0 "$bin" ./...
