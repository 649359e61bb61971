# tests/reliability/lib-reliability.sh: helpers the reliability tests add to tests/mounted/lib.sh.
#
# Every tests/reliability/test_*.sh starts with
#     . "$(dirname "$0")/lib-reliability.sh"
# which sources tests/mounted/lib.sh (set -euo pipefail, $TDEFS_WORK, the EXIT trap, tdefs_setup,
# tdefs_mount, ... see its header) and then defines:
#
#   REL_HELPERS            $TDEFS_BUILD/tests/reliability (the C helpers built by meson.build)
#   rel_helper NAME        path of helper NAME; fails with a build hint when it is missing
#   rel_seed               sets REL_SEED (TDEFS_REL_SEED, or random) and RANDOM from it, logs it
#   rel_rand_ms MIN MAX    a random whole number MIN..MAX from $RANDOM (sets REL_MS)
#   rel_sleep_ms MS        sleep MS milliseconds
#   rel_daemon_pid [MNT]   pid of the tdefs daemon serving MNT (default $TDEFS_MNT)
#   rel_kill_daemon [MNT]  SIGKILL the daemon of MNT, reap it, lazy-unmount MNT (fusermount3
#                          -uz); afterwards tdefs_mount can mount MNT again. The crash tests'
#                          "power cut" of the daemon, as in tests/mounted/test_rewrap_crash.sh
#   rel_remount_after_kill [MNT]   tdefs_mount MNT again with its previous wallet/backing/args
#   rel_wait_pid PID SECS  wait up to SECS for PID (a child) to exit; SIGKILL it after that.
#                          Returns the child's exit status (or 137 when it had to be killed)
#   rel_kill_tree PID      SIGSTOP PID, then SIGKILL its direct children and it (by pid, nothing
#                          by name)
#   rel_daemon_log_check [MNT | --all]   fail if the daemon log of MNT (--all: every daemon log
#                          of this test, also of killed daemons) shows a sanitizer report or an
#                          assertion failure
#   rel_fault_build PROGRAM   use a build with -Dfault_injection=true whose PROGRAM
#                          (fs/tdefs, tools/tdekey/tdekey) has the fault points: TDEFS_FAULT_BUILD,
#                          else TDEFS_BUILD if it is one, else build-fault/ or build-asan/ in the
#                          source tree; sets TDEFS_BUILD, TDEFS_BIN and TDEKEY_BIN to it, or skips
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../mounted/lib.sh"

REL_HELPERS=$TDEFS_BUILD/tests/reliability

rel_helper() {
	local p=$REL_HELPERS/$1
	[[ -x $p ]] || fail "$p not built: build first (meson setup BUILD $TDEFS_SRC && ninja -C BUILD; tests/meson.build needs subdir('reliability')) and set TDEFS_BUILD=BUILD"
	echo "$p"
}

rel_seed() {
	REL_SEED=${TDEFS_REL_SEED:-$(((${EPOCHREALTIME/./} ^ $$) % 1000000))}
	RANDOM=$REL_SEED
	log "seed $REL_SEED (rerun with TDEFS_REL_SEED=$REL_SEED)"
}

rel_rand_ms() {
	local lo=$1 hi=$2
	REL_MS=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
}

rel_sleep_ms() {
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

rel_daemon_pid() {
	local mnt=${1:-$TDEFS_MNT}
	echo "${tdefs__pid[$mnt]:-}"
}

rel_kill_daemon() {
	local mnt=${1:-$TDEFS_MNT} pid
	pid=$(rel_daemon_pid "$mnt")
	[[ -n $pid ]] || fail "rel_kill_daemon: no daemon recorded for $mnt"
	kill -KILL "$pid" 2>/dev/null || true
	local st=0
	wait "$pid" 2>/dev/null || st=$?
	unset "tdefs__pid[$mnt]"
	# 137 = our SIGKILL. Anything else: the daemon had died by itself (a zombie until now).
	if ((st != 137)); then
		tdefs__show_log "$(tdefs_daemon_log "$mnt")"
		fusermount3 -uz "$mnt" 2>/dev/null || true
		fail "the tdefs daemon of $mnt (pid $pid) had exited by itself with status $st before it was killed"
	fi
	fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$mnt" || return 0
		sleep 0.05
	done
	fail "$mnt is still a mount point after the daemon was killed and lazily unmounted"
}

rel_remount_after_kill() {
	local mnt=${1:-$TDEFS_MNT} saved wallet backing args a=()
	saved=${tdefs__args[$mnt]:-}
	[[ -n $saved ]] || fail "rel_remount_after_kill: $mnt was never mounted"
	{ read -r wallet; read -r backing; read -r args; } <<<"$saved"
	read -r -a a <<<"$args"
	tdefs_mount "$wallet" "$backing" "$mnt" "${a[@]}"
}

rel_wait_pid() {
	local pid=$1 secs=$2 i st=0
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 137
	fi
	wait "$pid" 2>/dev/null || st=$?
	return $st
}

rel_kill_tree() {
	local pid=$1 c
	[[ -n $pid ]] || return 0
	# Stopped first, so that it cannot fork a child between the listing and the kill.
	kill -STOP "$pid" 2>/dev/null || return 0
	for c in $(pgrep -P "$pid" 2>/dev/null || true); do
		kill -KILL "$c" 2>/dev/null || true
	done
	kill -KILL "$pid" 2>/dev/null || true
}

rel_daemon_log_check() {
	local logs=()
	if [[ ${1:-} == --all ]]; then
		logs=("$TDEFS_WORK"/tdefs-*.log)
	else
		logs=("$(tdefs_daemon_log "${1:-$TDEFS_MNT}")")
	fi
	local logf
	for logf in "${logs[@]}"; do
		[[ -n $logf && -f $logf ]] || continue
		if grep -nE 'ERROR: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer|runtime error:|Assertion .* failed' "$logf" >&2; then
			fail "the daemon log $logf reports a sanitizer finding or crash (lines above)"
		fi
	done
}

rel_fault_build() {
	local program=$1 build=${TDEFS_FAULT_BUILD:-} candidate
	rel__is_fault_build() { [[ -x $1/fs/tdefs ]] && grep -q TDEFS_FAULT_AT "$1/$program"; }
	if [[ -z $build ]]; then
		for candidate in "$TDEFS_BUILD" "$TDEFS_SRC/build-fault" "$TDEFS_SRC/build-asan"; do
			rel__is_fault_build "$candidate" && { build=$candidate; break; }
		done
	fi
	[[ -n $build ]] && rel__is_fault_build "$build" ||
		skip "no build with fault injection: meson setup build-fault -Dfault_injection=true && ninja -C build-fault"
	TDEFS_BUILD=$(cd "$build" && pwd)
	TDEFS_BIN=$TDEFS_BUILD/fs/tdefs
	TDEKEY_BIN=$TDEFS_BUILD/tools/tdekey/tdekey
}
