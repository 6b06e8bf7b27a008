#!/usr/bin/env bash
# Stops the private PostgreSQL and Redis that scripts/services.sh started
# under .data/ (or where .data/pg.home says the cluster lives). Servers it
# merely reused are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$PWD/.data
PGHOME=$DATA
[ -s "$DATA/pg.home" ] && PGHOME=$(cat "$DATA/pg.home")
if [ -s "$PGHOME/pg/postmaster.pid" ]; then
	bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	runas=(); [ "$(id -u)" = 0 ] && runas=(runuser -u postgres --)
	(cd / && "${runas[@]}" "$bin/pg_ctl" -D "$PGHOME/pg" -m fast stop >/dev/null) && echo "stopped private PostgreSQL"
fi
if [ -s "$DATA/redis/redis.pid" ]; then
	kill "$(cat "$DATA/redis/redis.pid")" 2>/dev/null && echo "stopped private Redis" || true
	rm -f "$DATA/redis/redis.pid"
fi
rm -f "$DATA/pg.port" "$DATA/redis.port" "$DATA/services.env"
