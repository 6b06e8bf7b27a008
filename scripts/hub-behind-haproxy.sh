#!/usr/bin/env bash
# Stands in for bin/hub in `hubbench -hub scripts/hub-behind-haproxy.sh`: its
# `all` runs two `hub serve` and one `hub worker` behind HAProxy listening on
# HUB_HTTP_ADDR, so the benchmark measures the two-process deployment of
# `make cluster` against one `hub all` (docs/scaling.md). Every other
# subcommand is bin/hub's. SIGTERM stops all of them.
set -euo pipefail
HUB=${HUB_BIN:-$(dirname "$0")/../bin/hub}
[ "${1:-}" = all ] || exec "$HUB" "$@"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
addr=$HUB_HTTP_ADDR
export HUB_PUBLIC_URL=${HUB_PUBLIC_URL:-http://$addr}
dir=$(mktemp -d)
p1=$(free_port); p2=$(free_port)
pids=()
HUB_HTTP_ADDR=127.0.0.1:$p1 "$HUB" serve & pids+=($!)
HUB_HTTP_ADDR=127.0.0.1:$p2 "$HUB" serve & pids+=($!)
"$HUB" worker & pids+=($!)
cat >"$dir/haproxy.cfg" <<CFG
global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend hub
    bind $addr
    default_backend serve
backend serve
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 1s fall 2 rise 1
    server s1 127.0.0.1:$p1 check
    server s2 127.0.0.1:$p2 check
CFG
haproxy -f "$dir/haproxy.cfg" -db & pids+=($!)
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait; rm -rf "$dir"' TERM INT
wait
