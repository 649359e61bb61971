#!/bin/bash
# The tdefs daemon dies under SQLite in WAL mode (synchronous=FULL, small autocheckpoint so the
# database file is written too, shared-memory wal-index and POSIX locks through the mount).
# Rounds (TDEFS_REL_SQLITE_ROUNDS, default 30), each:
#   - two writer processes (tdefs-rel-sqlite writer, see sqlite_crash.c) commit transactions
#     into one database, each logging "C <tx>" on a plain file system only after COMMIT returned
#   - after a random 0.3-2 s the daemon gets SIGKILL; lazy unmount; the writers fail (I/O error
#     or SIGBUS on the wal-index mapping) and are reaped
#   - remount; tdefs-rel-sqlite verify: PRAGMA integrity_check ok, every acknowledged
#     transaction present with every row and byte, nothing that never began
# At the end a clean remount, verify again and the sqlite3 shell's integrity_check if present.
# TDEFS_REL_SQLITE_SYNC=OFF is a negative control (commits not durable): the test should fail.
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount (the daemon is killed)"
helper=$(rel_helper tdefs-rel-sqlite)
rounds=${TDEFS_REL_SQLITE_ROUNDS:-30}
writers=2

rel_seed
tdefs_setup
mkdir -p "$TDEFS_MNT/sq" "$TDEFS_WORK/logs"
db=$TDEFS_MNT/sq/crash.db
"$helper" init "$db" || fail "cannot create the WAL database on the mount"

wpids=()
stop_writers() {
	local p
	for p in "${wpids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wpids=()
}
on_exit stop_writers

verify() {
	local out rc=0
	out=$("$helper" verify "$db" "$TDEFS_WORK/logs" "$writers" 2>&1) || rc=$?
	if ((rc != 0)); then
		echo "$out" >&2
		fail "$1: verification failed (seed $REL_SEED)"
	fi
	VERIFY_OUT=$out
}

total_commits=0
for ((round = 1; round <= rounds; round++)); do
	for ((w = 1; w <= writers; w++)); do
		"$helper" writer "$db" "$TDEFS_WORK/logs/writer-$w.log" "$w" \
			>>"$TDEFS_WORK/writer-$w.out" 2>&1 &
		wpids+=($!)
	done
	rel_rand_ms 300 2000
	delay=$REL_MS
	rel_sleep_ms "$delay"
	for p in "${wpids[@]}"; do
		kill -0 "$p" 2>/dev/null || { tail -n 5 "$TDEFS_WORK"/writer-*.out >&2; fail "round $round: a writer ended before the daemon was killed"; }
	done
	rel_kill_daemon
	sts=()
	for p in "${wpids[@]}"; do
		st=0
		rel_wait_pid "$p" 20 || st=$?
		sts+=("$st")
	done
	wpids=()
	rel_remount_after_kill
	verify "round $round (kill after $delay ms)"
	commits=$(cat "$TDEFS_WORK"/logs/writer-*.log | grep -c '^C' || true)
	log "round $round: killed after $delay ms, writers ended with status ${sts[*]}; $((commits - total_commits)) commits this round, all $commits acknowledged commits present, integrity ok"
	total_commits=$commits
done
((total_commits > rounds * 5)) || fail "only $total_commits commits in $rounds rounds: the load did not run"

log "clean remount and final verification"
tdefs_remount
verify "after a clean remount"
echo "$VERIFY_OUT" >&2
if have sqlite3; then
	ic=$(sqlite3 "$db" 'PRAGMA integrity_check; PRAGMA journal_mode;' | tr '\n' ' ')
	[[ $ic == "ok wal " ]] || fail "sqlite3 shell: integrity_check/journal_mode say: $ic"
fi
rel_daemon_log_check --all
pass "$rounds daemon kills under 2 WAL writers: $total_commits acknowledged commits all present, integrity ok"
