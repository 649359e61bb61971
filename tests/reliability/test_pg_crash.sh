#!/bin/bash
# The tdefs daemon dies under PostgreSQL: PostgreSQL 15 (Debian's postgresql-15, run privately
# as the postgres user: its own data directory on the mount, socket in a private directory, no
# TCP, no Debian cluster) with initdb --data-checksums and pgbench -i -s 2. Then rounds
# (TDEFS_REL_PG_ROUNDS, default 10), each:
#   - pgbench -c 4 -j 2 -T 120 -l in the background: its per-transaction log (-l) lists every
#     transaction whose COMMIT the client received (one pgbench_history row each)
#   - after a random 1.5-5 s: SIGKILL the tdefs daemon, lazy unmount, SIGKILL the postmaster
#     and its children (their I/O is failing), let pgbench notice and exit (it flushes its log)
#   - remount, start PostgreSQL: crash recovery must complete
#   - SELECT count(*) FROM pgbench_history >= every transaction pgbench logged so far (nothing
#     the clients saw committed is lost), and <= that + 4 clients per round (a transaction in
#     flight at the kill may have committed without the client hearing of it); pgbench's
#     balance invariant sum(abalance) = sum(bbalance) = sum(tbalance) = sum(history.delta)
# After the last round: pg_amcheck --heapallindexed, clean stop, pg_checksums --check, and the
# same again after a remount (every page decrypted from the backing files).
# TDEFS_REL_PG_UNSAFE=1 (fsync=off, synchronous_commit=off) is a negative control: commits are
# acknowledged before they are durable, so the test should fail.
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount (the daemon is killed)"

PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
rounds=${TDEFS_REL_PG_ROUNDS:-10}
clients=4

# Installs postgresql-15 when it is missing without letting Debian create or start its own
# cluster: createcluster.d turns off the "main" cluster and a policy-rc.d refuses service starts
# for the duration of the install.
need_postgres() {
	have "$PGBIN/initdb" && have "$PGBIN/pgbench" && have "$PGBIN/pg_checksums" && return 0
	local conf=/etc/postgresql-common/createcluster.d/tdefs-reliability-no-main.conf
	local policy=/usr/sbin/policy-rc.d ours=0
	mkdir -p "$(dirname "$conf")"
	echo "create_main_cluster = false" >"$conf"
	on_exit "rm -f '$conf'"
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# tdefs test_pg_crash.sh: no service starts during its install\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		ours=1
		on_exit "grep -q 'tdefs test_pg_crash' '$policy' 2>/dev/null && rm -f '$policy'; true"
	fi
	need_cmd "$PGBIN/initdb" postgresql-15
	rm -f "$conf"
	((ours == 0)) || rm -f "$policy"
}
need_postgres
need_cmd "$PGBIN/pg_amcheck" postgresql-15
need_cmd setpriv util-linux
id postgres >/dev/null 2>&1 || fail "there is no postgres user (postgresql-common creates it)"

rel_seed
tdefs_setup
data=$TDEFS_MNT/pg/data
socket_dir sock postgres
pglog=$TDEFS_WORK/postgres.log
port=54337
mkdir -p "$TDEFS_MNT/pg"
chown postgres:postgres "$TDEFS_MNT/pg"
chmod 0700 "$TDEFS_MNT/pg"
touch "$pglog"
chown postgres:postgres "$pglog"
cd "$TDEFS_WORK" # a cwd the postgres user can enter, off the mount

# setpriv execs (no fork), so $! of a background as_pg is the program itself.
as_pg() {
	setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME="$TDEFS_WORK" \
		PGHOST="$sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres "$@"
}
psql_value() {
	as_pg "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 -c "$1"
}

pm_pid=
pg_kill() {
	# The postmaster and its children, by pid; backends would exit on their own once the
	# postmaster is gone, but one blocked in failing I/O must not linger on the dead mount.
	[[ -n $pm_pid ]] || return 0
	local i
	rel_kill_tree "$pm_pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pm_pid" 2>/dev/null || break
		sleep 0.1
	done
	pm_pid=
}
bench_pid=
pg_cleanup() {
	if [[ $TDEFS_EXIT_STATUS != 0 && -s $pglog ]]; then
		echo "---- last lines of the postgres log ----" >&2
		tail -n 30 "$pglog" >&2
	fi
	[[ -z $bench_pid ]] || kill -KILL "$bench_pid" 2>/dev/null || true
	if [[ -n $pm_pid ]] && kill -0 "$pm_pid" 2>/dev/null && [[ -d $data ]]; then
		as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
	fi
	pg_kill
	return 0
}
on_exit pg_cleanup

pg_start() {
	# (its "another server might be running" after a kill goes to pg_ctl.out, not the test log)
	as_pg "$PGBIN/pg_ctl" -D "$data" -l "$pglog" -w -t 120 start >>"$TDEFS_WORK/pg_ctl.out" 2>&1 ||
		{ tail -n 5 "$TDEFS_WORK/pg_ctl.out" >&2; fail "pg_ctl start failed ($1)"; }
	pm_pid=$(head -n 1 "$data/postmaster.pid")
	[[ $pm_pid =~ ^[0-9]+$ ]] || fail "no postmaster pid in postmaster.pid ($1)"
}
pg_stop_clean() {
	as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop -m fast failed"
	pm_pid=
}

check_invariant() {
	local v a b t h
	v=$(psql_value "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' ||
		(SELECT sum(tbalance) FROM pgbench_tellers) || ' ' ||
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history)") || fail "$1: invariant query failed"
	read -r a b t h <<<"$v"
	[[ $a == "$b" && $b == "$t" && $t == "$h" ]] ||
		fail "$1: pgbench balances disagree: accounts $a, branches $b, tellers $t, history $h"
}

checksums() {
	local out bad scanned
	out=$(as_pg "$PGBIN/pg_checksums" --check -D "$data" 2>&1) || { echo "$out" >&2; fail "pg_checksums --check failed ($1)"; }
	bad=$(sed -n 's/^Bad checksums: *//p' <<<"$out")
	scanned=$(sed -n 's/^Blocks scanned: *//p' <<<"$out")
	[[ $bad == 0 && ${scanned:-0} -gt 1000 ]] || { echo "$out" >&2; fail "pg_checksums ($1): bad=$bad scanned=$scanned"; }
	log "pg_checksums --check ($1): $scanned blocks, 0 bad"
}

log "initdb --data-checksums on the mount"
as_pg "$PGBIN/initdb" --data-checksums -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
	--no-instructions >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/initdb.log" >&2; fail "initdb on the mount failed"; }
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
shared_buffers = 16MB
max_wal_size = 48MB
min_wal_size = 32MB
checkpoint_timeout = 30s
checkpoint_completion_target = 0.5
fsync = $([[ ${TDEFS_REL_PG_UNSAFE:-0} == 1 ]] && echo off || echo on)
synchronous_commit = $([[ ${TDEFS_REL_PG_UNSAFE:-0} == 1 ]] && echo off || echo on)
full_page_writes = on
log_checkpoints = on
restart_after_crash = off
EOF
pg_start "first start"
as_pg "$PGBIN/pgbench" -i -s 2 -q >"$TDEFS_WORK/pgbench-init.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/pgbench-init.log" >&2; fail "pgbench -i -s 2 failed"; }
# A checkpoint now, so that later rounds' recoveries replay on top of flushed data files.
psql_value "CHECKPOINT" >/dev/null

total_logged=0  # transactions pgbench logged as committed, all rounds
slack=0         # transactions that may have committed unseen (in flight at a kill)
exact=1         # 0 once a pgbench had to be killed (its buffered log is lost: no upper bound)
for ((round = 1; round <= rounds; round++)); do
	rdir=$TDEFS_WORK/round-$round
	mkdir -p "$rdir"
	chown postgres:postgres "$rdir"
	as_pg "$PGBIN/pgbench" -n -c "$clients" -j 2 -T 120 -l --log-prefix="$rdir/tx" \
		>"$rdir/pgbench.out" 2>&1 &
	bench_pid=$!
	rel_rand_ms 1500 5000
	delay=$REL_MS
	rel_sleep_ms "$delay"
	kill -0 "$bench_pid" 2>/dev/null ||
		{ cat "$rdir/pgbench.out" >&2; fail "round $round: pgbench ended before the kill"; }
	rel_kill_daemon
	pg_kill
	bst=0
	rel_wait_pid "$bench_pid" 30 || bst=$?
	bench_pid=
	((bst != 137)) || { exact=0; log "round $round: pgbench had to be killed; its log may be short"; }
	txlogs=("$rdir"/tx.*)
	logged=0
	((${#txlogs[@]} == 0)) || logged=$(awk '$3 ~ /^[0-9]+$/ { n++ } END { print n + 0 }' "${txlogs[@]}")
	total_logged=$((total_logged + logged))
	slack=$((slack + clients))

	rel_remount_after_kill
	t0=${EPOCHREALTIME/./}
	pg_start "round $round: crash recovery"
	rec_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	count=$(psql_value "SELECT count(*) FROM pgbench_history") || fail "round $round: count query failed"
	((count >= total_logged)) ||
		fail "round $round (seed $REL_SEED, kill after $delay ms): pgbench_history has $count rows but pgbench logged $total_logged committed transactions: $((total_logged - count)) acknowledged commits lost"
	if ((exact && count > total_logged + slack)); then
		fail "round $round (seed $REL_SEED): pgbench_history has $count rows, more than the $total_logged logged commits + $slack in flight"
	fi
	check_invariant "round $round"
	log "round $round: killed after $delay ms; this round $logged commits logged; history $count >= $total_logged logged (+$((count - total_logged)) unacknowledged); recovery + start ${rec_ms} ms"
done
((total_logged > 0)) || fail "pgbench logged no committed transaction in $rounds rounds: the load did not run"
recoveries=$(grep -c 'database system was not properly shut down; automatic recovery in progress' "$pglog" || true)
redos=$(grep -c 'redo done at' "$pglog" || true)
((recoveries >= rounds)) || fail "the postgres log shows $recoveries crash recoveries for $rounds kills"
log "the postgres log shows $recoveries crash recoveries ($redos with WAL replayed) for $rounds kills"

log "pg_amcheck --heapallindexed"
as_pg "$PGBIN/pg_amcheck" --install-missing --heapallindexed -d postgres >"$TDEFS_WORK/amcheck.log" 2>&1 ||
	{ head -n 30 "$TDEFS_WORK/amcheck.log" >&2; fail "pg_amcheck found corruption"; }
pg_stop_clean
checksums "after the last round, clean stop"
tdefs_remount
checksums "after a clean remount"
pg_start "after the final remount"
check_invariant "after the final remount"
final=$(psql_value "SELECT count(*) FROM pgbench_history")
pg_stop_clean
rel_daemon_log_check --all
pass "$rounds daemon kills under pgbench: $total_logged acknowledged commits all present ($final rows), recovery, invariants, amcheck and checksums ok"
