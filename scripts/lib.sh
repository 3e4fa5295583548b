# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the workbench scripts; sourced, never run.

# Debian's own tools first (python3 with ply for checkpatch's spdxcheck).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Downloads live outside the repo so fresh clones on one machine share them.
CACHE=${IPCNS_CACHE:-/var/cache/ipcns-rcu}
# Unpacked trees, kernel builds and guest images: gitignored, per checkout.
BUILD=${IPCNS_BUILD:-$REPO/build}
MANIFEST=$REPO/bases/manifest
T0=${T0:-$(date +%s)}
export T0

die() {
	echo "error: $*" >&2
	exit 1
}

# One progress line per stage, with the elapsed time since the command began.
stage() {
	local now
	now=$(date +%s)
	printf '[%4ds] %s\n' $((now - T0)) "$*" >&2
}

need_tools() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] ||
		die "missing tool(s): ${missing[*]} (run scripts/setup as root)"
}

# manifest_get BASE -> sets M_KIND M_PKG M_VER M_FILE M_SHA
manifest_get() {
	local line
	line=$(awk -v b="$1" '$1 == b && $1 !~ /^#/' "$MANIFEST")
	[ -n "$line" ] || die "unknown base '$1' (known: $(manifest_bases | tr '\n' ' '))"
	read -r _ M_KIND M_PKG M_VER M_FILE M_SHA <<<"$line"
}

manifest_bases() {
	awk '!/^#/ && NF { print $1 }' "$MANIFEST"
}

# Git tree of a base: tag 'base' is pristine, branch 'series' carries the patches.
tree_dir() {
	echo "$BUILD/src/$1"
}

# A queue is a directory under patches/, or any directory given by its path.
patch_dir() {
	case $1 in
	*/*) echo "$1" ;;
	*) echo "$REPO/patches/$1" ;;
	esac
}

# queue_sum BASE: checksum of the patch queue, to tell whether a tree holds it.
queue_sum() {
	local pdir
	pdir=$(patch_dir "$1")
	(cd "$pdir" && grep -v -e '^#' -e '^$' series | xargs cat series) |
		sha256sum | cut -d' ' -f1
}

# Kernel log lines that fail a test run: KASAN, BUG, WARNING, lockdep, RCU
# stalls, hung tasks, kmemleak and debugobjects reports.
REPORT_RE='BUG:|WARNING:|KASAN|UBSAN|Oops|general protection|Kernel panic|kernel BUG|'
REPORT_RE+='possible circular locking|possible recursive locking|inconsistent lock state|'
REPORT_RE+='suspicious RCU usage|lock held when returning|DEBUG_LOCKS_WARN_ON|'
REPORT_RE+='rcu: INFO:|self-detected stall|detected stalls|soft lockup|hard LOCKUP|'
REPORT_RE+='blocked for more than|new suspected memory leak|ODEBUG:|list_add corruption|'
REPORT_RE+='list_del corruption'
