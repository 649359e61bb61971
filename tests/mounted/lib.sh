# tests/mounted/lib.sh: shared helpers for the mounted tdefs integration tests.
#
# Every tests/mounted/test_*.sh starts with
#     . "$(dirname "$0")/lib.sh"
# which turns on `set -euo pipefail`, creates a private work directory ($TDEFS_WORK) and installs
# an EXIT trap that runs the registered cleanups, unmounts every filesystem this script mounted
# and removes the work directory. A test ends with `pass`, `fail MSG` or `skip MSG`; an error
# anywhere (set -e) also fails it. meson test runs the tests (tests/meson.build); a script can also be run alone.
#
# Environment (all optional):
#   TDEFS_BUILD        build directory (default build/ in the source tree) with fs/tdefs,
#                      tools/tdekey/tdekey, tests/mounted/tdefs-exerciser and
#                      tests/lib/tdefs-test-helper
#   TDEFS_TEST_PLAIN=1 no FUSE mount: the backing directory itself is the "mount point". For
#                      developing tests without the daemon; tdefs_remount then only syncs and
#                      drops the page cache. Tests that need the daemon should `skip` in it.
#   TDEFS_TMPDIR       parent of the work directory (default ${TMPDIR:-/tmp}); the meson wrapper sets it
#   TDEFS_KEEP=1       keep the work directory (daemon logs, wallets, backing files); it is
#                      always kept when the test fails, unless TDEFS_KEEP_ON_FAIL=0
#   TDEFS_MOUNT_OPTS   extra arguments for every mount, e.g. "-o cache=none"
#
# Shell options in force: set -euo pipefail and shopt -s nullglob.
#
# Variables for tests:
#   TEST_NAME          script name without .sh
#   TDEFS_BIN TDEKEY_BIN TDEFS_EXERCISER TDEFS_POSIX_CHECK   binaries in the build directory
#   TDEFS_TEST_HELPER  the one helper program (tests/lib/test_helper.c; `$TDEFS_TEST_HELPER
#                      help` lists its subcommands): header forging and inspection,
#                      independent decryption, keys in memory, backing directories, forged
#                      wallets, the durable-record writer
#   TDEFS_WORK         private work directory on a plain filesystem, mode 0755 (the postgres
#                      user can traverse it); put reference files and logs here
#   TDEFS_WALLET TDEFS_BACKING TDEFS_MNT   set by tdefs_setup ($TDEFS_MNT = $TDEFS_BACKING in
#                      plain mode)
#
# Functions:
#   log MSG...             progress line "[name +12.3s] MSG" on stderr
#   fail MSG...            "FAIL: name: MSG" on stderr, exit 1 (cleanup runs from the trap)
#   pass [MSG...]          "PASS: name MSG", exit 0
#   skip MSG...            "SKIP: name: MSG", exit 77 (meson counts it as skipped)
#   is_plain               true in TDEFS_TEST_PLAIN mode
#   have CMD               true if CMD (a name on PATH or an absolute path) is executable
#   need_cmd CMD [PKG]     make CMD available: apt-get install PKG (default CMD) if missing,
#                          running apt-get update once if the install fails; fail otherwise
#   need_build FILE...     fail with build instructions unless each FILE is executable
#   on_exit CMD            run the shell command CMD at exit, before unmounting (last
#                          registered runs first); e.g. stop a database server. CMD can read
#                          the test's exit status in $TDEFS_EXIT_STATUS (e.g. to show a log)
#   tdefs_setup [ARGS...]  wallet + tdefs --init + mount point + mount, ARGS go to the mount
#                          (e.g. -o cache=none); sets TDEFS_WALLET, TDEFS_BACKING, TDEFS_MNT
#   tdefs_make_wallet DIR              tdekey create --wallet DIR --auto-login
#   tdefs_init_backing WALLET DIR      mkdir DIR; tdefs --init --wallet WALLET DIR
#   tdefs_mount WALLET BACKING MNT [ARGS...]
#                          start the daemon with -f in the background (log in
#                          $TDEFS_WORK/tdefs-N.log), wait until MNT is a mount point; fail with
#                          the log if the daemon exits first or nothing is mounted in 20 s
#   tdefs_umount MNT       fusermount3 -u (retried while busy, then -uz), wait for the daemon
#                          to exit; fail if it crashed or exited non-zero
#   tdefs_remount [ARGS...]   unmount and mount $TDEFS_MNT again with ARGS (default: the
#                          previous ones): afterwards every byte read comes from the backing
#                          files through decryption, not from a cache
#   tdefs_daemon_log [MNT] path of the daemon log of MNT (default $TDEFS_MNT)
#   tdefs_daemon_pid [MNT] process ID of the daemon of MNT (default $TDEFS_MNT)
#   tdefs_teardown         unmount everything mounted by this script (the EXIT trap calls it)
#   drop_caches            sync and drop the kernel page cache if permitted
#   as_nobody CMD...       run CMD as uid/gid 65534 with no groups or capabilities (the local
#                          attacker of tests/security); returns CMD's status
#   socket_dir VAR OWNER   set VAR to a new private directory for a server's unix socket, owned
#                          by OWNER, removed at exit; it sits in /tmp, not in TDEFS_WORK, because a
#                          socket path has 107 bytes at most and a CI checkout's work area can
#                          be deeper than that allows
#
# Exit status of a test: 0 pass, 1 fail, 77 skip. A daemon that crashes or exits non-zero at
# unmount turns a passing test into a failure.

set -euo pipefail
shopt -s nullglob

TEST_NAME=$(basename "$0" .sh)
TDEFS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TDEFS_BUILD=${TDEFS_BUILD:-$TDEFS_SRC/build}
TDEFS_BIN=$TDEFS_BUILD/fs/tdefs
TDEKEY_BIN=$TDEFS_BUILD/tools/tdekey/tdekey
TDEFS_EXERCISER=$TDEFS_BUILD/tests/mounted/tdefs-exerciser
TDEFS_POSIX_CHECK=$TDEFS_BUILD/tests/mounted/tdefs-posix-check
TDEFS_TEST_HELPER=$TDEFS_BUILD/tests/lib/tdefs-test-helper
TDEFS_WALLET=${TDEFS_WALLET:-}
TDEFS_BACKING=${TDEFS_BACKING:-}
TDEFS_MNT=${TDEFS_MNT:-}

tdefs__t0=${EPOCHREALTIME/./}
tdefs__cleanups=()
tdefs__apt_updated=0
tdefs__nmount=0
tdefs__in_exit=0
declare -A tdefs__pid=() tdefs__log=() tdefs__args=()

# Microseconds since the script started (bash 5 EPOCHREALTIME: no subprocess, no bc).
tdefs_elapsed_us() {
	echo $((${EPOCHREALTIME/./} - tdefs__t0))
}

log() {
	local us
	us=$(tdefs_elapsed_us)
	printf '[%s +%d.%ds] %s\n' "$TEST_NAME" $((us / 1000000)) $((us / 100000 % 10)) "$*" >&2
}

fail() {
	printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
	# Inside the EXIT trap a cleanup that fails must not cut the remaining cleanup short.
	[[ $tdefs__in_exit == 1 ]] && return 1
	exit 1
}

pass() {
	printf 'PASS: %s%s\n' "$TEST_NAME" "${*:+: $*}" >&2
	exit 0
}

skip() {
	printf 'SKIP: %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 77
}

is_plain() {
	[[ ${TDEFS_TEST_PLAIN:-0} == 1 ]]
}

have() {
	if [[ $1 == */* ]]; then
		[[ -x $1 ]]
	else
		command -v "$1" >/dev/null 2>&1
	fi
}

tdefs__apt_install() {
	# The lock timeout matters: other work on the machine may be running apt at the same time.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=300 "$@" </dev/null >>"$TDEFS_WORK/apt.log" 2>&1
}

need_cmd() {
	local cmd=$1 pkg=${2:-$1}
	have "$cmd" && return 0
	have apt-get || fail "$cmd is missing and there is no apt-get to install $pkg"
	log "installing $pkg (for $cmd)"
	if ! tdefs__apt_install "$pkg"; then
		if [[ $tdefs__apt_updated == 0 ]]; then
			tdefs__apt_updated=1
			log "apt-get install $pkg failed; running apt-get update once"
			apt-get update -q -o DPkg::Lock::Timeout=300 </dev/null \
				>>"$TDEFS_WORK/apt.log" 2>&1 || true
		fi
		if ! tdefs__apt_install "$pkg"; then
			tail -n 20 "$TDEFS_WORK/apt.log" >&2 || true
			fail "cannot install $pkg (needed for $cmd)"
		fi
	fi
	have "$cmd" || fail "installed $pkg but $cmd is still missing"
}

on_exit() {
	tdefs__cleanups+=("$1")
}

socket_dir() {
	local -n socket_dir__out=$1
	local dir
	dir=$(mktemp -d /tmp/tdefs-sock.XXXXXX) || fail "cannot create a socket directory in /tmp"
	tdefs__cleanups+=("rm -rf -- '$dir'")
	chown "$2" "$dir" && chmod 0700 "$dir" || fail "cannot hand $dir to $2"
	socket_dir__out=$dir
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# Run a command as the unprivileged local user every security test plays: uid and gid 65534
# (nobody/nogroup), no supplementary groups, no capabilities. The command's exit status is
# returned, so `as_nobody CMD && fail ...` asserts that the attack was refused.
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"
}

need_build() {
	local b
	for b in "$@"; do
		[[ -x $b ]] || fail "$b not found: build first (meson setup BUILD $TDEFS_SRC && ninja -C BUILD) and set TDEFS_BUILD=BUILD (now $TDEFS_BUILD)"
	done
}

tdefs_make_wallet() {
	is_plain && { mkdir -p "$1"; return 0; }
	need_build "$TDEKEY_BIN"
	"$TDEKEY_BIN" create --wallet "$1" --auto-login </dev/null >"$TDEFS_WORK/tdekey-create.log" 2>&1 ||
		{ cat "$TDEFS_WORK/tdekey-create.log" >&2; fail "tdekey create --wallet $1 --auto-login failed"; }
}

tdefs_init_backing() {
	local wallet=$1 backing=$2
	mkdir -p "$backing"
	is_plain && return 0
	need_build "$TDEFS_BIN"
	"$TDEFS_BIN" --init --wallet "$wallet" "$backing" </dev/null >"$TDEFS_WORK/tdefs-init.log" 2>&1 ||
		{ cat "$TDEFS_WORK/tdefs-init.log" >&2; fail "tdefs --init --wallet $wallet $backing failed"; }
}

tdefs_daemon_pid() {
	local mnt=${1:-$TDEFS_MNT}
	echo "${tdefs__pid[$mnt]:-}"
}

tdefs_daemon_log() {
	local mnt=${1:-$TDEFS_MNT}
	echo "${tdefs__log[$mnt]:-}"
}

tdefs__show_log() {
	local logf=$1
	[[ -n $logf && -s $logf ]] || return 0
	echo "---- last lines of the daemon log $logf ----" >&2
	tail -n 30 "$logf" >&2 || true
	echo "----" >&2
}

tdefs_mount() {
	local wallet=$1 backing=$2 mnt=$3
	shift 3
	tdefs__args[$mnt]="$wallet"$'\n'"$backing"$'\n'"$*"
	is_plain && return 0
	need_build "$TDEFS_BIN"
	[[ -c /dev/fuse ]] || fail "/dev/fuse is missing: the mounted tests need FUSE"
	have fusermount3 || need_cmd fusermount3 fuse3
	mkdir -p "$mnt"
	! tdefs__in_mount_table "$mnt" || fail "$mnt is already a mount point"
	local extra=()
	read -r -a extra <<<"${TDEFS_MOUNT_OPTS:-}"
	tdefs__nmount=$((tdefs__nmount + 1))
	local logf=$TDEFS_WORK/tdefs-$tdefs__nmount.log
	# -f keeps the daemon our child: its log is captured and its exit status checked.
	"$TDEFS_BIN" --wallet "$wallet" -f "${extra[@]}" "$@" "$backing" "$mnt" </dev/null >"$logf" 2>&1 &
	local pid=$!
	tdefs__pid[$mnt]=$pid
	tdefs__log[$mnt]=$logf
	local i
	for ((i = 0; i < 400; i++)); do
		mountpoint -q "$mnt" && break
		if ! kill -0 "$pid" 2>/dev/null; then
			local rc=0
			wait "$pid" || rc=$?
			unset "tdefs__pid[$mnt]"
			tdefs__show_log "$logf"
			fail "tdefs exited with status $rc before $mnt was mounted (tdefs --wallet $wallet -f ${extra[*]} $* $backing $mnt)"
		fi
		sleep 0.05
	done
	mountpoint -q "$mnt" || { tdefs__show_log "$logf"; fail "$mnt not mounted 20 s after starting tdefs"; }
	log "mounted $mnt (tdefs pid $pid${*:+, $*}${extra[*]:+ ${extra[*]}})"
}

# True if MNT is in the mount table. Unlike mountpoint(1) this does not stat MNT, so it also
# sees the mount of a daemon that died ("Transport endpoint is not connected").
tdefs__in_mount_table() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# Unmounts MNT and reaps its daemon. Returns non-zero (after saying why) instead of exiting, so
# that the EXIT trap can use it too.
tdefs__unmount() {
	local mnt=$1 rc=0 i
	if is_plain; then
		sync
		return 0
	fi
	if tdefs__in_mount_table "$mnt"; then
		for ((i = 0; i < 20; i++)); do
			fusermount3 -u "$mnt" 2>/dev/null && break
			sleep 0.25
		done
		if tdefs__in_mount_table "$mnt"; then
			echo "$TEST_NAME: $mnt still busy after 5 s; lazy unmount" >&2
			fuser -vm "$mnt" >&2 2>/dev/null || true
			fusermount3 -uz "$mnt" || rc=1
		fi
	fi
	local pid=${tdefs__pid[$mnt]:-}
	[[ -n $pid ]] || return $rc
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$TEST_NAME: tdefs (pid $pid) still running 30 s after unmounting $mnt; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		rc=1
	fi
	local st=0
	wait "$pid" || st=$?
	unset "tdefs__pid[$mnt]"
	if [[ $st != 0 ]]; then
		tdefs__show_log "${tdefs__log[$mnt]:-}"
		if ((st > 128)); then
			echo "$TEST_NAME: tdefs daemon of $mnt died by signal $((st - 128)) ($(kill -l $((st - 128)) 2>/dev/null || echo ?))" >&2
		else
			echo "$TEST_NAME: tdefs daemon of $mnt exited with status $st" >&2
		fi
		rc=1
	fi
	return $rc
}

tdefs_umount() {
	tdefs__unmount "$1" || fail "unmounting $1 failed or its daemon did not exit cleanly (see above)"
	is_plain || log "unmounted $1"
}

tdefs_setup() {
	TDEFS_WALLET=$TDEFS_WORK/wallet
	TDEFS_BACKING=$TDEFS_WORK/backing
	if is_plain; then
		TDEFS_MNT=$TDEFS_BACKING
		mkdir -p "$TDEFS_BACKING"
		tdefs__args[$TDEFS_MNT]="$TDEFS_WALLET"$'\n'"$TDEFS_BACKING"$'\n'"$*"
		log "plain mode (TDEFS_TEST_PLAIN=1): using $TDEFS_MNT without tdefs"
		return 0
	fi
	TDEFS_MNT=$TDEFS_WORK/mnt
	tdefs_make_wallet "$TDEFS_WALLET"
	tdefs_init_backing "$TDEFS_WALLET" "$TDEFS_BACKING"
	mkdir -p "$TDEFS_MNT"
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT" "$@"
}

tdefs_remount() {
	local mnt=$TDEFS_MNT saved wallet backing args
	saved=${tdefs__args[$mnt]:-}
	[[ -n $saved ]] || fail "tdefs_remount: $mnt was not mounted by tdefs_setup/tdefs_mount"
	{ read -r wallet; read -r backing; read -r args; } <<<"$saved"
	if is_plain; then
		drop_caches
		return 0
	fi
	tdefs_umount "$mnt"
	if (($# > 0)); then
		tdefs_mount "$wallet" "$backing" "$mnt" "$@"
	else
		local a=()
		read -r -a a <<<"$args"
		tdefs_mount "$wallet" "$backing" "$mnt" "${a[@]}"
	fi
}

tdefs_teardown() {
	local rc=0 mnt
	for mnt in "${!tdefs__pid[@]}"; do
		tdefs__unmount "$mnt" || rc=1
	done
	return $rc
}

tdefs__on_exit() {
	local rc=$? i
	set +e
	tdefs__in_exit=1
	TDEFS_EXIT_STATUS=$rc
	for ((i = ${#tdefs__cleanups[@]} - 1; i >= 0; i--)); do
		eval "${tdefs__cleanups[i]}" || echo "$TEST_NAME: cleanup '${tdefs__cleanups[i]}' failed" >&2
	done
	if ! tdefs_teardown; then
		if [[ $rc == 0 ]]; then
			echo "FAIL: $TEST_NAME: the test passed but the daemon did not unmount or exit cleanly" >&2
			rc=1
		fi
	fi
	if [[ -n ${TDEFS_WORK:-} && -d $TDEFS_WORK ]]; then
		if [[ ${TDEFS_KEEP:-0} == 1 || ($rc != 0 && $rc != 77 && ${TDEFS_KEEP_ON_FAIL:-1} == 1) ]]; then
			echo "$TEST_NAME: work directory kept: $TDEFS_WORK" >&2
		elif findmnt -rn -o TARGET | grep "^$TDEFS_WORK/" >/dev/null; then
			echo "$TEST_NAME: something is still mounted under $TDEFS_WORK; not removing it" >&2
		else
			rm -rf --one-file-system "$TDEFS_WORK"
		fi
	fi
	exit "$rc"
}

TDEFS_WORK=$(mktemp -d "${TDEFS_TMPDIR:-${TMPDIR:-/tmp}}/$TEST_NAME.XXXXXX")
chmod 0755 "$TDEFS_WORK"
trap tdefs__on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
