#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis are reachable for the hub and its tests, and
# writes their URLs to .data/services.env for the Makefile to source.
#
#   1. HUB_DATABASE_URL / HUB_REDIS_URL already set: use them as they are.
#   2. A server answering on the standard port (127.0.0.1:5432, :6379): use it.
#   3. Otherwise install what is missing (apt-get, quietly: scripts/apt.sh)
#      and start private servers with their data under .data/ (git-ignored;
#      see pg_home for the one exception), on the standard port when it is
#      free and on another one when it is taken.
# Running it again is safe: it reuses whatever already runs.
# HUB_PRIVATE_SERVICES=1 skips step 2 (always use private servers under .data/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=$ROOT/.data
mkdir -p "$DATA"
ENVFILE=$DATA/services.env

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mservices:\033[0m %s\n' "$*" >&2; exit 1; }

. scripts/apt.sh

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() { # first free port from $1 upwards
	local p=$1
	while port_open "$p"; do p=$((p + 1)); done
	echo "$p"
}

redis_pong() {
	local reply=""
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	read -r -t 2 reply <&3 || true
	exec 3<&- 3>&-
	[[ $reply == +PONG* ]]
}

pg_bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
	[ -n "$d" ] && echo "$d"
}

# pg_home prints the directory that holds the private cluster (pg/) and its
# sockets (run/): .data/, unless the postgres user cannot reach it. As root
# the server runs as postgres, and a clone in root's home (mode 0700) is out
# of its reach; the cluster then lives in /var/lib/hub-dev/<hash of the
# clone's path>, owned by postgres, and that directory's clone file names the
# clone. .data/pg.home records the choice for scripts/stop.sh.
pg_home() {
	if [ "$(id -u)" != 0 ] || (cd / && runuser -u postgres -- test -x "$DATA"); then
		echo "$DATA"
		return
	fi
	local home
	home=/var/lib/hub-dev/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)
	mkdir -p "$home"
	chown postgres:postgres "$home"
	chmod 700 "$home"
	printf '%s\n' "$ROOT" >"$home/clone"
	echo "$home"
}

pg_accepts() { # port -> can user postgres connect without a password?
	local bin; bin=$(pg_bindir) || true
	if command -v psql >/dev/null; then
		PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
	elif [ -n "$bin" ]; then
		PGCONNECT_TIMEOUT=3 "$bin/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
	else
		return 1
	fi
}

ensure_postgres() {
	if [ -n "${HUB_DATABASE_URL:-}" ]; then PG_URL_BASE=${HUB_DATABASE_URL%/*}; PG_DB=${HUB_DATABASE_URL##*/}; return; fi
	if [ -z "${HUB_PRIVATE_SERVICES:-}" ] && port_open 5432 && pg_accepts 5432; then
		say "PostgreSQL: using the server on 127.0.0.1:5432"
		PG_PORT=5432
	else
		if [ -z "$(pg_bindir)" ]; then apt_install "PostgreSQL" postgresql postgresql-client; fi
		local bin; bin=$(pg_bindir) || die "PostgreSQL binaries not found after install"
		local home pgdata runas=()
		home=$(pg_home)
		pgdata=$home/pg
		echo "$home" >"$DATA/pg.home"
		if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); fi
		if [ -f "$DATA/pg.port" ] && port_open "$(cat "$DATA/pg.port")" && pg_accepts "$(cat "$DATA/pg.port")"; then
			PG_PORT=$(cat "$DATA/pg.port")
			say "PostgreSQL: using the private server on 127.0.0.1:$PG_PORT"
		else
			if [ ! -s "$pgdata/PG_VERSION" ]; then
				say "PostgreSQL: initialising a private cluster in $pgdata"
				mkdir -p "$pgdata"
				[ "$(id -u)" = 0 ] && chown postgres:postgres "$pgdata" && chmod 700 "$pgdata"
				(cd / && "${runas[@]}" "$bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 >/dev/null)
			fi
			PG_PORT=$(free_port 5432)
			say "PostgreSQL: starting the private cluster on 127.0.0.1:$PG_PORT"
			local sockets=$home/run
			mkdir -p "$sockets"
			[ "$(id -u)" = 0 ] && chown postgres:postgres "$sockets"
			(cd / && "${runas[@]}" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
				-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $sockets -c max_connections=300" start >/dev/null) \
				|| die "PostgreSQL did not start; see $pgdata/server.log"
			echo "$PG_PORT" >"$DATA/pg.port"
		fi
	fi
	PG_URL_BASE="postgres://postgres@127.0.0.1:$PG_PORT"
	PG_DB=hub
}

ensure_redis() {
	if [ -n "${HUB_REDIS_URL:-}" ]; then REDIS_URL_BASE=${HUB_REDIS_URL%/*}; return; fi
	if [ -z "${HUB_PRIVATE_SERVICES:-}" ] && redis_pong 6379; then
		say "Redis: using the server on 127.0.0.1:6379"
		REDIS_PORT=6379
	elif [ -f "$DATA/redis.port" ] && redis_pong "$(cat "$DATA/redis.port")"; then
		REDIS_PORT=$(cat "$DATA/redis.port")
		say "Redis: using the private server on 127.0.0.1:$REDIS_PORT"
	else
		command -v redis-server >/dev/null || apt_install "Redis" redis-server
		REDIS_PORT=$(free_port 6379)
		mkdir -p "$DATA/redis"
		say "Redis: starting a private server on 127.0.0.1:$REDIS_PORT"
		redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" \
			--pidfile "$DATA/redis/redis.pid" --logfile "$DATA/redis/redis.log" --save "" --appendonly yes >/dev/null
		for _ in $(seq 50); do redis_pong "$REDIS_PORT" && break; sleep 0.1; done
		redis_pong "$REDIS_PORT" || die "Redis did not start; see .data/redis/redis.log"
		echo "$REDIS_PORT" >"$DATA/redis.port"
	fi
	REDIS_URL_BASE="redis://127.0.0.1:$REDIS_PORT"
}

# Tests need redis-server on PATH to simulate outages with a throwaway server.
command -v redis-server >/dev/null || apt_install "Redis" redis-server

ensure_postgres
ensure_redis

cat >"$ENVFILE" <<ENV
export HUB_DATABASE_URL=${HUB_DATABASE_URL:-$PG_URL_BASE/$PG_DB?sslmode=disable}
export HUB_REDIS_URL=${HUB_REDIS_URL:-$REDIS_URL_BASE/0}
export HUB_TEST_DATABASE_URL=${HUB_TEST_DATABASE_URL:-$PG_URL_BASE/postgres?sslmode=disable}
export HUB_TEST_REDIS_URL=${HUB_TEST_REDIS_URL:-$REDIS_URL_BASE/0}
ENV
say "services ready (.data/services.env)"
