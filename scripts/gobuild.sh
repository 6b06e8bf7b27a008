#!/usr/bin/env bash
# go build with a word about what it is doing: the first build of the hub
# fetches its modules and compiles several hundred packages, which takes
# minutes on a small machine, and go build says nothing meanwhile.
#
#   gobuild.sh WHAT [go build flags, as -flag=value] PACKAGE...
#
# It fetches missing modules first (saying so), then runs go build -v and turns
# the package names it prints into a progress count. When everything is
# already compiled it prints nothing. Compiler errors pass through unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
what=$1; shift

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# Flags are given in the -flag=value form; the rest are packages. go list
# needs the packages and the flags that change which packages are built.
listflags=() pkgs=()
for a in "$@"; do
	case $a in
	-race | -tags=*) listflags+=("$a") ;;
	-*) ;;
	*) pkgs+=("$a") ;;
	esac
done

if ! GOPROXY=off go list -deps "${listflags[@]}" "${pkgs[@]}" >/dev/null 2>&1; then
	say "downloading the Go modules (go mod download)"
	go mod download
fi
total=$(go list -deps "${listflags[@]}" "${pkgs[@]}" | wc -l)

# progress reads go build -v, shows a count on stderr and prints the number of
# packages compiled on stdout. go build -v names each package as it starts
# compiling it; any other line (an error, a "# package" header) is passed on.
progress() {
	local n=0 line tty=""
	[ -t 2 ] && tty=1
	while IFS= read -r line; do
		if [[ $line =~ ^[A-Za-z0-9_.~/-]+$ ]]; then
			n=$((n + 1))
			[ $n = 1 ] && say "building $what (the first build takes a few minutes)"
			if [ -n "$tty" ]; then
				printf '\r    %d/%d packages compiled' "$n" "$total" >&2
			elif [ $((n % 50)) = 0 ]; then
				printf '    %d/%d packages compiled\n' "$n" "$total" >&2
			fi
		else
			[ -n "$tty" ] && [ $n != 0 ] && printf '\n' >&2 && tty=""
			printf '%s\n' "$line" >&2
		fi
	done
	[ -n "$tty" ] && [ $n != 0 ] && printf '\n' >&2
	echo $n
}

start=$(date +%s)
n=$(go build -v "$@" 2>&1 | progress)
[ "$n" = 0 ] || say "built $what: $n packages in $(($(date +%s) - start))s"
