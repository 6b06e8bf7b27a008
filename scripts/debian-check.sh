#!/usr/bin/env bash
# Repeats a newcomer's first hour on a minimal Debian 12: a fresh `minbase`
# root filesystem with nothing but Go and make, a clean clone of HEAD in
# /root/hub, and the README's two commands run as root. Not part of `make test`.
#
#   sudo bash scripts/debian-check.sh
#
# It needs root on a Debian or Ubuntu host (it installs debootstrap and
# slirp4netns there when they are missing). The root filesystem runs in its
# own network, mount and PID namespaces: its loopback is its own, so its
# PostgreSQL, Redis and hub never meet the host's, and slirp4netns gives it
# the outside network for apt-get and the Go module proxy. Everything it
# starts dies with the PID namespace. Only committed work is checked. The
# root filesystem is minbase plus the host's local CA certificates
# (/usr/local/share/ca-certificates), which only a host behind a
# TLS-inspecting proxy has.
#
#   DEBIAN_CHECK_DIR    where the root filesystem, its cached base and the logs live
#                       (default /var/tmp/hub-debian-check; never inside the repository)
#   DEBIAN_CHECK_MIRROR Debian mirror (default http://deb.debian.org/debian)
#   DEBIAN_CHECK_FRESH  1: run debootstrap again instead of unpacking the cached base
#   DEBIAN_CHECK_STEPS  which of the two commands to run, in order (default "run test")
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DIR=${DEBIAN_CHECK_DIR:-/var/tmp/hub-debian-check}
MIRROR=${DEBIAN_CHECK_MIRROR:-http://deb.debian.org/debian}
STEPS=${DEBIAN_CHECK_STEPS:-run test}
ROOT=$DIR/root
BASE=$DIR/bookworm-minbase.tar
LOGS=$DIR/logs

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mdebian-check:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it builds and enters a root filesystem)"
case "$(realpath -m "$DIR")/" in "$REPO"/*) die "DEBIAN_CHECK_DIR must be outside the repository" ;; esac
command -v go >/dev/null || die "Go is needed on the host: it is copied into the root filesystem"
GOROOT_HOST=$(go env GOROOT)

SUMMARY=()
timed() { # name command...: runs the command, records its wall time and outcome
	local name=$1 start rc=0; shift
	start=$(date +%s)
	"$@" || rc=$?
	SUMMARY+=("$(printf '%-28s %6ss  %s' "$name" "$(($(date +%s) - start))" "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")")")
	return $rc
}
report() {
	printf '\n%s\n' "debian-check summary (logs in $LOGS):" >&2
	printf '  %s\n' "${SUMMARY[@]}" >&2
}
trap report EXIT

host_tools() {
	local missing=()
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v slirp4netns >/dev/null || missing+=(slirp4netns)
	[ ${#missing[@]} = 0 ] && return
	say "installing ${missing[*]} on the host"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$LOGS/host-tools.log" 2>&1 \
		|| { cat "$LOGS/host-tools.log" >&2; return 1; }
}

root_filesystem() {
	if findmnt -rno TARGET | grep -q "^$ROOT/"; then die "something is still mounted under $ROOT"; fi
	rm -rf "$ROOT"
	if [ -n "${DEBIAN_CHECK_FRESH:-}" ] || [ ! -s "$BASE" ]; then
		say "debootstrap --variant=minbase bookworm ($MIRROR)"
		debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
			|| { tail -20 "$LOGS/debootstrap.log" >&2; return 1; }
		tar -C "$ROOT" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE" || return 1
	else
		say "unpacking the cached minbase root filesystem ($BASE)"
		mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$BASE" || return 1
	fi
	# slirp4netns answers DNS on 10.0.2.3 with the host's resolver.
	echo "nameserver 10.0.2.3" >"$ROOT/etc/resolv.conf"
	# The host's local CA certificates (Debian's place for them), so that a
	# host behind a TLS-inspecting proxy can reach the Go module proxy: when
	# make installs ca-certificates, it adds them to the bundle.
	if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
		mkdir -p "$ROOT/usr/local/share/ca-certificates"
		cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
	fi
}

copy_go() {
	say "copying Go ($(go env GOVERSION)) to /usr/local/go"
	rm -rf "$ROOT/usr/local/go"
	cp -a "$GOROOT_HOST" "$ROOT/usr/local/go"
}

clone() {
	[ -z "$(git status --porcelain --untracked-files=no)" ] || say "the worktree has uncommitted changes: they are not checked"
	say "cloning $(git rev-parse --short HEAD) into /root/hub"
	git clone --quiet --no-hardlinks "$REPO" "$ROOT/root/hub" || return 1
	git -C "$ROOT/root/hub" checkout --quiet --detach "$(git rev-parse HEAD)"
}

# inside runs a bash script as root in the root filesystem, in fresh network,
# mount and PID namespaces, with slirp4netns as its way out.
inside() {
	local script=$1 log=$2 upid spid rc=0
	unshare --net --mount --pid --fork --propagation private bash -c '
		R=$1; shift
		for _ in $(seq 100); do awk "\$1==\"tap0\" && \$2==\"00000000\"" /proc/net/route | grep -q . && break; sleep 0.1; done
		awk "\$1==\"tap0\" && \$2==\"00000000\"" /proc/net/route | grep -q . || { echo "no network in the namespace (slirp4netns)"; exit 1; }
		mount -t proc proc "$R/proc"
		mount -t sysfs sysfs "$R/sys"
		mount --rbind /dev "$R/dev"
		exec chroot "$R" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
			PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/bash -c "$1"' inside "$ROOT" "$script" >"$log" 2>&1 &
	upid=$!
	# slirp4netns joins the namespace of $upid: wait until unshare has made
	# it, or slirp4netns would configure the host's own network.
	local ns=""
	for _ in $(seq 200); do
		ns=$(readlink "/proc/$upid/ns/net" 2>/dev/null) || { ns=""; break; }
		[ "$ns" != "$(readlink /proc/self/ns/net)" ] && break
		ns=""
		sleep 0.05
	done
	[ -n "$ns" ] || { wait "$upid"; return 1; }
	slirp4netns --configure --mtu=65520 --disable-host-loopback "$upid" tap0 >"$LOGS/slirp4netns.log" 2>&1 &
	spid=$!
	wait "$upid" || rc=$?
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	return $rc
}

# The README's one install line, exactly as a newcomer types it.
install_make() {
	say "inside: apt-get install -y make"
	inside 'apt-get update && apt-get install -y make' "$LOGS/install-make.log" \
		|| { tail -20 "$LOGS/install-make.log" >&2; return 1; }
}

make_test() {
	say "inside: make test (log: $LOGS/make-test.log)"
	inside 'cd /root/hub && make test' "$LOGS/make-test.log" \
		|| { tail -40 "$LOGS/make-test.log" >&2; return 1; }
}

# make run serves until stopped: wait for the URLs and a 200 from /readyz,
# then stop it with SIGINT (as Ctrl-C would) and stop its services.
make_run() {
	say "inside: make run, until /readyz answers 200 (log: $LOGS/make-run.log)"
	inside '
		cd /root/hub
		: >/tmp/make-run.log
		setsid make run >>/tmp/make-run.log 2>&1 &
		pid=$!
		tail -n +1 -f /tmp/make-run.log &
		readyz() {
			exec 3<>/dev/tcp/127.0.0.1/8080 || return 1
			printf "GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
			local status; read -r -t 5 status <&3 || true
			exec 3<&- 3>&-
			[[ $status == *" 200 "* ]]
		}
		ok=""
		for _ in $(seq 3600); do
			kill -0 $pid 2>/dev/null || break
			if grep -q "token endpoint" /tmp/make-run.log && readyz 2>/dev/null; then ok=1; break; fi
			sleep 1
		done
		[ -n "$ok" ] && echo "debian-check: /readyz answered 200"
		kill -INT -- -$pid 2>/dev/null || true
		wait $pid || true
		make stop
		[ -n "$ok" ]' "$LOGS/make-run.log" \
		|| { tail -40 "$LOGS/make-run.log" >&2; return 1; }
}

mkdir -p "$DIR" "$LOGS"
timed "host tools" host_tools
timed "root filesystem" root_filesystem
timed "copy Go" copy_go
timed "clone" clone
timed "apt-get install -y make" install_make
failed=""
for step in $STEPS; do
	case $step in
	test) timed "make test" make_test || failed=1 ;;
	run) timed "make run (to /readyz 200)" make_run || failed=1 ;;
	*) die "unknown step $step (DEBIAN_CHECK_STEPS takes test and run)" ;;
	esac
done
[ -z "$failed" ]
