#!/usr/bin/env bash
# The hub beyond one process and one box, on loopback, with Debian's own
# engines (docs/operations.md, "A cluster on one machine"):
#
#   PostgreSQL primary :15450 and a streaming replica :15451 (pg_basebackup)
#   Redis primary :16450, a replica :16451, three Sentinels :26450-26452
#   two `hub serve` (:18510, :18511) and two `hub worker` (metrics :18520, :18521)
#   HAProxy :18500 in front of the serve processes (health check GET /readyz),
#   its statistics on :18501
#
# usage: scripts/cluster.sh [start|stop|status|env]
#        scripts/cluster.sh kill serve1|serve2|worker1|worker2   (kill -9)
#        scripts/cluster.sh restart serve1|serve2|worker1|worker2
#        scripts/cluster.sh redis-failover   stop the Redis primary, wait for the
#                                            Sentinels to promote, start it again
#        scripts/cluster.sh pg-failover      kill -9 the PostgreSQL primary, promote
#                                            the replica (pg_ctl promote), rebuild
#                                            the old primary as the new replica
#
# Everything lives under .data/cluster (git-ignored). start installs what is
# missing (apt-get: scripts/apt.sh), migrates, seeds the demo coalition
# (CLUSTER_MEMBERS members, default 300) and prints the URLs; running it again
# reuses what already runs. stop stops everything it started, cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$ROOT/.data/cluster
RUN=$DIR/run
LOG=$DIR/log
mkdir -p "$RUN" "$LOG"

PG_PORTS=(15450 15451)
REDIS_PORTS=(16450 16451)
SENTINEL_PORTS=(26450 26451 26452)
LB_PORT=18500
LB_STATS=18501
SERVE_PORTS=(18510 18511)
WORKER_METRICS=(18520 18521)
MAIL_SMTP=18530
MAIL_WEB=18531
MASTER=hub

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mcluster:\033[0m %s\n' "$*" >&2; exit 1; }

. scripts/apt.sh

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port what
	for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done
	die "$2 did not start on :$1; see $LOG"
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
pgdir() { echo "$DIR/pg$1"; } # 1 or 2: the data directory of the server on PG_PORTS[n-1]
psql_at() { # port sql
	PGCONNECT_TIMEOUT=2 psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc "$2" 2>/dev/null
}
pg_is_primary() { [ "$(psql_at "$1" 'select pg_is_in_recovery()')" = f ]; }
pg_primary_port() {
	local p
	for p in "${PG_PORTS[@]}"; do pg_is_primary "$p" && { echo "$p"; return 0; }; done
	return 1
}
redis_cli() { redis-cli -h 127.0.0.1 "$@"; }
redis_primary_port() {
	redis_cli -p "${SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | sed -n 2p
}

DB_URL="postgres://postgres@127.0.0.1:${PG_PORTS[0]},127.0.0.1:${PG_PORTS[1]}/hub?sslmode=disable&connect_timeout=2&target_session_attrs=read-write"
READ_URL="postgres://postgres@127.0.0.1:${PG_PORTS[1]},127.0.0.1:${PG_PORTS[0]}/hub?sslmode=disable&connect_timeout=2&target_session_attrs=prefer-standby"
SENTINELS=$(printf '127.0.0.1:%s,' "${SENTINEL_PORTS[@]}")
SENTINELS=${SENTINELS%,}

write_env() {
	[ -s "$DIR/demo-password" ] || echo "demo-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')" >"$DIR/demo-password"
	cat >"$DIR/cluster.env" <<ENV
export HUB_DATABASE_URL='$DB_URL'
export HUB_DATABASE_READ_URL='$READ_URL'
export HUB_REDIS_URL='redis://127.0.0.1:${REDIS_PORTS[0]}/0'
export HUB_REDIS_SENTINELS='$SENTINELS'
export HUB_REDIS_MASTER_NAME='$MASTER'
export HUB_PUBLIC_URL='http://127.0.0.1:$LB_PORT'
export HUB_TRUSTED_PROXIES=127.0.0.1
export HUB_SIGNING_KEY_DIR='$DIR/keys'
export HUB_WEBHOOK_ALLOW_LOOPBACK=1
export HUB_CLIENT_RATE=${HUB_CLIENT_RATE:-2000}
export HUB_SMTP_URL=smtp://127.0.0.1:$MAIL_SMTP
export HUB_DEMO_PASSWORD='$(cat "$DIR/demo-password")'
ENV
}

# ---- PostgreSQL ----

pg_start() { # n port
	local d; d=$(pgdir "$1")
	port_open "$2" && return 0
	as_pg "$(pg_bin)/pg_ctl" -D "$d" -l "$LOG/pg$1.log" -w -o "-p $2 -k $RUN -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
		|| die "PostgreSQL $1 did not start; see $LOG/pg$1.log"
}

pg_basebackup_into() { # n from_port: a fresh replica in pgdir n, streaming from from_port
	local d; d=$(pgdir "$1")
	rm -rf "$d"
	mkdir -p "$d"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$d"
	chmod 700 "$d"
	as_pg "$(pg_bin)/pg_basebackup" -h 127.0.0.1 -p "$2" -U postgres -D "$d" -R -X stream -c fast >/dev/null
}

ensure_postgres() {
	[ -n "$(pg_bin)" ] || apt_install "PostgreSQL" postgresql postgresql-client
	command -v psql >/dev/null || apt_install "PostgreSQL's client" postgresql-client
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$RUN" "$LOG"
	local d1; d1=$(pgdir 1)
	if [ ! -s "$d1/PG_VERSION" ] && [ ! -s "$(pgdir 2)/PG_VERSION" ]; then
		say "PostgreSQL: initialising the primary in $d1"
		mkdir -p "$d1"
		[ "$(id -u)" = 0 ] && chown postgres:postgres "$d1"
		as_pg "$(pg_bin)/initdb" -D "$d1" -U postgres --auth=trust -E UTF8 >/dev/null
	fi
	pg_start 1 "${PG_PORTS[0]}"
	if [ ! -s "$(pgdir 2)/PG_VERSION" ]; then
		say "PostgreSQL: a streaming replica from pg_basebackup"
		pg_basebackup_into 2 "${PG_PORTS[0]}"
	fi
	pg_start 2 "${PG_PORTS[1]}"
	pg_primary_port >/dev/null || die "neither PostgreSQL server accepts writes"
	pg_sync "$(pg_primary_port)" on
	say "PostgreSQL: primary :$(pg_primary_port), replica streaming"
}

# pg_sync port on|off: synchronous replication. On, the primary acknowledges
# a commit only once the replica has it, so no commit the hub acknowledged is
# lost when the primary dies and the replica is promoted. Off while the
# promoted primary has no replica yet: else every write would wait for one.
pg_sync() {
	local names="'*'"
	[ "$2" = off ] && names="''"
	psql_at "$1" "ALTER SYSTEM SET synchronous_standby_names = $names" >/dev/null
	psql_at "$1" "SELECT pg_reload_conf()" >/dev/null
}

# ---- Redis and Sentinel ----

ensure_redis() {
	command -v redis-server >/dev/null || apt_install "Redis" redis-server
	command -v redis-sentinel >/dev/null || apt_install "Redis Sentinel" redis-sentinel
	local i p
	for i in 0 1; do
		p=${REDIS_PORTS[$i]}
		port_open "$p" && continue
		mkdir -p "$DIR/redis$i"
		local follow=()
		# The second server starts as a replica; after a failover the
		# Sentinels reconfigure whichever server comes back.
		[ "$i" = 1 ] && [ ! -s "$DIR/redis$i/started" ] && follow=(--replicaof 127.0.0.1 "${REDIS_PORTS[0]}")
		redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --dir "$DIR/redis$i" \
			--pidfile "$RUN/redis$i.pid" --logfile "$LOG/redis$i.log" --save "" --appendonly yes "${follow[@]}" >/dev/null
		wait_port "$p" "Redis $i"
		date >"$DIR/redis$i/started"
	done
	for i in 0 1 2; do
		p=${SENTINEL_PORTS[$i]}
		port_open "$p" && continue
		local conf=$DIR/sentinel$i.conf
		if [ ! -s "$conf" ]; then
			cat >"$conf" <<CONF
bind 127.0.0.1
port $p
dir $DIR
sentinel monitor $MASTER 127.0.0.1 ${REDIS_PORTS[0]} 2
sentinel down-after-milliseconds $MASTER 2000
sentinel failover-timeout $MASTER 10000
sentinel parallel-syncs $MASTER 1
CONF
		fi
		redis-sentinel "$conf" --daemonize yes --pidfile "$RUN/sentinel$i.pid" --logfile "$LOG/sentinel$i.log" >/dev/null
		wait_port "$p" "Sentinel $i"
	done
	for _ in $(seq 50); do [ -n "$(redis_primary_port)" ] && break; sleep 0.1; done
	say "Redis: primary :$(redis_primary_port) watched by ${#SENTINEL_PORTS[@]} Sentinels"
}

# ---- hub processes and HAProxy ----

hub_env() { # run a command in the cluster's environment
	(set -a; . "$DIR/cluster.env"; set +a; exec "$@")
}

proc_port() { # name -> the port it answers on
	case $1 in
	serve1) echo "${SERVE_PORTS[0]}" ;; serve2) echo "${SERVE_PORTS[1]}" ;;
	worker1) echo "${WORKER_METRICS[0]}" ;; worker2) echo "${WORKER_METRICS[1]}" ;;
	mail) echo "$MAIL_WEB" ;;
	*) die "unknown process $1 (serve1, serve2, worker1, worker2)" ;;
	esac
}

alive() { [ -s "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start_proc() { # name
	alive "$1" && return 0
	local port; port=$(proc_port "$1")
	local cmd=serve addr=(HUB_HTTP_ADDR="127.0.0.1:$port")
	case $1 in worker*) cmd=worker; addr=(HUB_PPROF_ADDR="127.0.0.1:$port") ;; esac
	if [ "$1" = mail ]; then
		setsid "$ROOT/bin/mailcatcher" -smtp "127.0.0.1:$MAIL_SMTP" -http "127.0.0.1:$MAIL_WEB" -dir "$DIR/mail" >>"$LOG/mail.log" 2>&1 </dev/null &
	else
		# exec all the way down, so that $! is the hub's own pid
		(set -a; . "$DIR/cluster.env"; set +a; exec env "${addr[@]}" setsid "$ROOT/bin/hub" "$cmd") >>"$LOG/$1.log" 2>&1 </dev/null &
	fi
	echo $! >"$RUN/$1.pid"
	wait_port "$port" "$1"
}

stop_proc() { # name: SIGTERM, then wait for the drain
	alive "$1" || { rm -f "$RUN/$1.pid"; return 0; }
	local pid; pid=$(cat "$RUN/$1.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	rm -f "$RUN/$1.pid"
}

ensure_haproxy() {
	command -v haproxy >/dev/null || apt_install "HAProxy" haproxy
	port_open "$LB_PORT" && return 0
	cat >"$DIR/haproxy.cfg" <<CFG
global
    maxconn 2000
    log stdout format raw local0 warning

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A request whose connection to one serve process fails goes to the
    # other: it never reached the hub, so nothing was written.
    retries 2
    retry-on conn-failure
    option redispatch

frontend hub
    bind 127.0.0.1:$LB_PORT
    default_backend serve

backend serve
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
    server serve1 127.0.0.1:${SERVE_PORTS[0]} check
    server serve2 127.0.0.1:${SERVE_PORTS[1]} check

listen stats
    bind 127.0.0.1:$LB_STATS
    stats enable
    stats uri /
CFG
	haproxy -c -q -f "$DIR/haproxy.cfg" || die "HAProxy refused $DIR/haproxy.cfg"
	haproxy -D -f "$DIR/haproxy.cfg" -p "$RUN/haproxy.pid" >>"$LOG/haproxy.log" 2>&1
	wait_port "$LB_PORT" HAProxy
}

start() {
	[ -x bin/hub ] || die "bin/hub is missing: run make cluster (it builds it)"
	ensure_postgres
	ensure_redis
	write_env
	say "migrating"
	hub_env "$ROOT/bin/hub" migrate up >>"$LOG/migrate.log" 2>&1 || die "migrate failed; see $LOG/migrate.log"
	if [ ! -s "$DIR/seeded" ]; then
		say "seeding the demo coalition (${CLUSTER_MEMBERS:-300} members; output in $DIR/seed.txt)"
		hub_env "$ROOT/bin/hub" seed -members "${CLUSTER_MEMBERS:-300}" -months "${CLUSTER_MONTHS:-2}" >"$DIR/seed.txt" 2>>"$LOG/seed.log" \
			|| die "seed failed; see $LOG/seed.log"
		date >"$DIR/seeded"
	fi
	local p
	for p in mail serve1 serve2 worker1 worker2; do start_proc "$p"; done
	ensure_haproxy
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LB_PORT/readyz")" = 200 ] && break
		sleep 0.2
	done
	status
	cat <<MSG

hub (through HAProxy)   http://127.0.0.1:$LB_PORT        console /console, portal /portal, API /v1
HAProxy statistics      http://127.0.0.1:$LB_STATS
serve processes         http://127.0.0.1:${SERVE_PORTS[0]}  http://127.0.0.1:${SERVE_PORTS[1]}
worker metrics          http://127.0.0.1:${WORKER_METRICS[0]}/metrics  http://127.0.0.1:${WORKER_METRICS[1]}/metrics
mail catcher            http://127.0.0.1:$MAIL_WEB
demo accounts           $DIR/seed.txt (staff password in $DIR/demo-password)
environment             . $DIR/cluster.env   (then bin/hub audit, bin/hub staff ...)
logs                    $LOG
stop                    make cluster-stop
MSG
}

status() {
	local p pg rp
	pg=$(pg_primary_port || echo none)
	rp=$(redis_primary_port || true)
	echo "PostgreSQL primary :$pg; Redis primary :${rp:-unknown}"
	for p in serve1 serve2 worker1 worker2; do
		if alive "$p"; then echo "$p running (pid $(cat "$RUN/$p.pid"), :$(proc_port "$p"))"; else echo "$p stopped"; fi
	done
}

stop() {
	local p i
	for p in serve1 serve2 worker1 worker2 mail; do stop_proc "$p"; done
	if [ -s "$RUN/haproxy.pid" ]; then kill "$(cat "$RUN/haproxy.pid")" 2>/dev/null || true; rm -f "$RUN/haproxy.pid"; fi
	for i in 0 1 2; do
		redis_cli -p "${SENTINEL_PORTS[$i]}" shutdown >/dev/null 2>&1 || true
	done
	for i in 0 1; do
		redis_cli -p "${REDIS_PORTS[$i]}" shutdown >/dev/null 2>&1 || true
	done
	if [ -n "$(pg_bin)" ]; then
		for i in 1 2; do
			[ -s "$(pgdir $i)/postmaster.pid" ] && as_pg "$(pg_bin)/pg_ctl" -D "$(pgdir $i)" -m fast -w stop >/dev/null 2>&1 || true
		done
	fi
	say "cluster stopped (data kept in $DIR; remove it for a fresh start)"
}

redis_failover() {
	local old new i
	old=$(redis_primary_port)
	[ -n "$old" ] || die "the Sentinels name no Redis primary"
	i=0; [ "$old" = "${REDIS_PORTS[1]}" ] && i=1
	say "stopping the Redis primary :$old"
	kill -9 "$(cat "$RUN/redis$i.pid")"
	local t0=$SECONDS
	for _ in $(seq 300); do
		new=$(redis_primary_port)
		[ -n "$new" ] && [ "$new" != "$old" ] && break
		sleep 0.1
	done
	[ "$new" != "$old" ] || die "the Sentinels promoted no replica within 30s"
	say "Sentinels promoted :$new after $((SECONDS - t0))s; starting :$old again (it rejoins as a replica)"
	ensure_redis
}

pg_failover() {
	local old new n_old n_new
	old=$(pg_primary_port) || die "no PostgreSQL primary"
	if [ "$old" = "${PG_PORTS[0]}" ]; then n_old=1 n_new=2 new=${PG_PORTS[1]}; else n_old=2 n_new=1 new=${PG_PORTS[0]}; fi
	say "kill -9 the PostgreSQL primary :$old"
	kill -9 "$(head -1 "$(pgdir $n_old)/postmaster.pid")"
	for _ in $(seq 50); do port_open "$old" || break; sleep 0.1; done
	say "promoting the replica :$new"
	as_pg "$(pg_bin)/pg_ctl" -D "$(pgdir $n_new)" -w promote >/dev/null
	for _ in $(seq 100); do pg_is_primary "$new" && break; sleep 0.1; done
	pg_is_primary "$new" || die "the replica :$new did not become primary"
	pg_sync "$new" off
	say "rebuilding :$old as the new primary's replica (pg_basebackup)"
	pg_basebackup_into $n_old "$new"
	pg_start $n_old "$old"
	for _ in $(seq 100); do [ "$(psql_at "$new" "select count(*) from pg_stat_replication where state = 'streaming'")" = 1 ] && break; sleep 0.1; done
	pg_sync "$new" on
}

case ${1:-start} in
start) start ;;
stop) stop ;;
status) status ;;
env) write_env; cat "$DIR/cluster.env" ;;
kill) alive "$2" && kill -9 "$(cat "$RUN/$2.pid")"; rm -f "$RUN/$2.pid" ;;
restart) stop_proc "$2"; start_proc "$2" ;;
redis-failover) redis_failover ;;
pg-failover) pg_failover ;;
*) die "unknown command $1 (start, stop, status, env, kill, restart, redis-failover, pg-failover)" ;;
esac
