#!/bin/bash
# PostgreSQL 15 (Debian's postgresql-15) with its data directory on the mount, run as the
# postgres user (the mount is made by root with allow_other and default_permissions):
#  - initdb --data-checksums, start on a private unix socket (no TCP), small max_wal_size so
#    checkpoints write the data files during the run
#  - pgbench -i -s 10, then pgbench -c 4 -j 2 -T 30; no failed transactions
#  - pgbench's invariant: sum(abalance) = sum(bbalance) = sum(tbalance) = sum(history.delta)
#  - crash (stop -m immediate) and restart: WAL replay reads and rewrites pages; invariant again,
#    pg_amcheck --heapallindexed on every table and index
#  - clean stop; pg_checksums --check passes; remount (every page now decrypted from the backing
#    files) and pg_checksums --check again; start, invariant, stop
#  - pg_test_fsync -s 1 on the mount: it opens with O_DIRECT, which must be supported ("n/a*"
#    in its output means the filesystem refused O_DIRECT)
# A failure stops postgres (trap) before the mount is taken down.
. "$(dirname "$0")/lib.sh"

PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
need_cmd "$PGBIN/initdb" postgresql-15
need_cmd "$PGBIN/pg_checksums" postgresql-15
need_cmd "$PGBIN/pgbench" postgresql-15
need_cmd runuser util-linux
id postgres >/dev/null 2>&1 || fail "there is no postgres user (postgresql-common creates it)"

tdefs_setup
pgroot=$TDEFS_MNT/pg
data=$pgroot/data
socket_dir sock postgres
pglog=$TDEFS_WORK/postgres.log
port=54329
mkdir -p "$pgroot"
chown postgres:postgres "$pgroot"
chmod 0700 "$pgroot"
touch "$pglog"
chown postgres:postgres "$pglog"
cd "$TDEFS_WORK"  # a cwd the postgres user can enter

as_pg() {
	runuser -u postgres -- env HOME=/var/lib/postgresql PGHOST="$sock" PGPORT="$port" \
		PGUSER=postgres PGDATABASE=postgres "$@"
}

psql_value() {
	as_pg "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 -c "$1"
}

pg_running() {
	[[ -f $data/postmaster.pid ]] && kill -0 "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null
}

# Runs from the EXIT trap: no postgres may survive the test or hold the mount busy.
pg_cleanup() {
	if [[ $TDEFS_EXIT_STATUS != 0 && -s $pglog ]]; then
		echo "---- last lines of the postgres log ----" >&2
		tail -n 25 "$pglog" >&2
	fi
	if pg_running; then
		local pid
		pid=$(head -n 1 "$data/postmaster.pid")
		as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# Backends notice their postmaster's death and exit on their own.
	return 0
}
on_exit pg_cleanup

pg_start() {
	as_pg "$PGBIN/pg_ctl" -D "$data" -l "$pglog" -w -t 120 start >/dev/null ||
		fail "pg_ctl start failed ($1)"
}

pg_stop() {
	local mode=$1
	as_pg "$PGBIN/pg_ctl" -D "$data" -m "$mode" -w -t 120 stop >/dev/null ||
		fail "pg_ctl stop -m $mode failed"
	! pg_running || fail "postgres still running after pg_ctl stop -m $mode"
}

# pgbench's tpcb-like transaction adds the same delta to one account, teller and branch and
# logs it in history, so these four sums stay equal unless a page was lost or corrupted.
check_invariant() {
	local v
	v=$(psql_value "SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' ||
		(SELECT sum(tbalance) FROM pgbench_tellers) || ' ' ||
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history) || ' ' ||
		(SELECT count(*) FROM pgbench_history)") || fail "$1: invariant query failed"
	local n a b t h hc
	read -r n a b t h hc <<<"$v"
	log "$1: accounts=$n sum(abalance)=$a sum(bbalance)=$b sum(tbalance)=$t sum(delta)=$h history=$hc"
	[[ $n == 1000000 ]] || fail "$1: pgbench_accounts has $n rows, expected 1000000"
	[[ $a == "$b" && $b == "$t" && $t == "$h" ]] ||
		fail "$1: pgbench balances disagree: accounts $a, branches $b, tellers $t, history $h"
	[[ $hc -gt 0 ]] || fail "$1: pgbench_history is empty: the benchmark did no work"
}

checksums() {
	local out
	out=$(as_pg "$PGBIN/pg_checksums" --check -D "$data" 2>&1) || {
		echo "$out" >&2
		fail "pg_checksums --check failed ($1)"
	}
	local bad scanned
	bad=$(echo "$out" | sed -n 's/^Bad checksums: *//p')
	scanned=$(echo "$out" | sed -n 's/^Blocks scanned: *//p')
	[[ $bad == 0 && ${scanned:-0} -gt 10000 ]] || { echo "$out" >&2; fail "pg_checksums ($1): bad=$bad scanned=$scanned"; }
	log "pg_checksums --check ($1): $scanned blocks scanned, 0 bad"
}

log "initdb --data-checksums on the mount"
as_pg "$PGBIN/initdb" --data-checksums -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
	--no-instructions >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/initdb.log" >&2; fail "initdb on the mount failed"; }
[[ $(stat -c %U "$data/PG_VERSION") == postgres ]] ||
	fail "files created by the postgres user are owned by $(stat -c %U "$data/PG_VERSION")"
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
max_wal_size = 96MB
min_wal_size = 32MB
checkpoint_timeout = 30s
shared_buffers = 64MB
fsync = on
full_page_writes = on
log_checkpoints = on
EOF

pg_start "first start"
log "pgbench -i -s 10"
as_pg "$PGBIN/pgbench" -i -s 10 -q >"$TDEFS_WORK/pgbench-init.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/pgbench-init.log" >&2; fail "pgbench -i -s 10 failed"; }

log "pgbench -c 4 -j 2 -T 30"
as_pg "$PGBIN/pgbench" -c 4 -j 2 -T 30 -P 10 >"$TDEFS_WORK/pgbench.log" 2>&1 ||
	{ tail -n 30 "$TDEFS_WORK/pgbench.log" >&2; fail "pgbench run failed"; }
grep -E '^(number of transactions actually processed|number of failed|latency average|tps)' \
	"$TDEFS_WORK/pgbench.log" >&2 || true
tps_line=$(grep -m1 '^tps' "$TDEFS_WORK/pgbench.log" || true)
[[ -n $tps_line ]] || { cat "$TDEFS_WORK/pgbench.log" >&2; fail "pgbench printed no tps line"; }
if grep -qE '^number of failed transactions: [1-9]' "$TDEFS_WORK/pgbench.log"; then
	fail "pgbench reports failed transactions"
fi
check_invariant "after pgbench"

log "crash: pg_ctl stop -m immediate, then restart with WAL replay"
pg_stop immediate
pg_start "restart after crash"
grep -q 'redo done\|database system was not properly shut down' "$pglog" ||
	log "note: no crash recovery message in the postgres log"
check_invariant "after crash recovery"
log "pg_amcheck --heapallindexed"
as_pg "$PGBIN/pg_amcheck" --install-missing --heapallindexed -d postgres >"$TDEFS_WORK/amcheck.log" 2>&1 ||
	{ head -n 30 "$TDEFS_WORK/amcheck.log" >&2; fail "pg_amcheck found corruption"; }

log "clean stop"
pg_stop fast
checksums "after clean stop"
tdefs_remount
checksums "after remount"
pg_start "start after remount"
check_invariant "after remount"
pg_stop fast

log "pg_test_fsync -s 1 on the mount"
as_pg "$PGBIN/pg_test_fsync" -s 1 -f "$pgroot/pg_test_fsync.out" >"$TDEFS_WORK/pg_test_fsync.log" 2>&1 ||
	{ cat "$TDEFS_WORK/pg_test_fsync.log" >&2; fail "pg_test_fsync failed on the mount"; }
grep -E 'open_datasync|fdatasync|O_DIRECT|n/a' "$TDEFS_WORK/pg_test_fsync.log" | head -n 12 >&2 || true
if grep -qE 'n/a\*|do not support direct I/O' "$TDEFS_WORK/pg_test_fsync.log"; then
	fail "pg_test_fsync: the mount does not support O_DIRECT"
fi
grep -q 'ops/sec' "$TDEFS_WORK/pg_test_fsync.log" || fail "pg_test_fsync printed no results"
rm -f "$pgroot/pg_test_fsync.out"

pass "pgbench $tps_line; checksums and invariants ok"
