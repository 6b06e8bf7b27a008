# Sourced by the other scripts: installs Debian packages quietly. apt-get's
# output goes to .data/apt.log and is shown only when the install fails.
# Packages come without their recommendations (no mail server with
# PostgreSQL); the scripts name everything they need.

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=$(command -v sudo || true); fi

# apt_install why package...: installs the packages, saying why in one line.
apt_install() {
	local why=$1; shift
	if ! command -v apt-get >/dev/null; then
		printf '\033[1;31mneeded:\033[0m %s (%s); install them by hand and run again\n' "$*" "$why" >&2
		exit 1
	fi
	if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
		printf '\033[1;31mneeded:\033[0m %s (%s); run as root, or install sudo or the packages, and run again\n' "$*" "$why" >&2
		exit 1
	fi
	printf '\033[1;34m==>\033[0m installing %s: %s (apt-get)\n' "$why" "$*" >&2
	local dir log
	dir="$(dirname "${BASH_SOURCE[0]}")/../.data"
	mkdir -p "$dir"
	log="$dir/apt.log"
	{
		# Install from the package lists as they are, and refresh them only
		# when that fails (none yet, or stale ones naming removed files).
		apt_get_install "$@" || { $SUDO apt-get update -qq && apt_get_install "$@"; }
	} >"$log" 2>&1 || {
		cat "$log" >&2
		printf '\033[1;31mapt-get failed\033[0m installing %s (output above, also in .data/apt.log)\n' "$*" >&2
		exit 1
	}
}

apt_get_install() {
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
