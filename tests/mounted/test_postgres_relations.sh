#!/bin/bash
# PostgreSQL 15 with thousands of relations under the default soft limit of 1024 open files
# (Debian's and systemd's): the daemon raises its soft limit to the hard one at start (checked),
# because PostgreSQL keeps up to max_files_per_process (1000) files open per backend and each
# open file is a descriptor of the daemon's. initdb --data-checksums on the mount, pgbench -i
# --partitions=2000 (some 8,000 relation files: each partition's heap, primary key, free space
# and visibility maps), a pgbench run with no failed transactions, a clean stop and
# pg_checksums --check over every block. At each step the daemon holds fewer descriptors than
# the distinct files PostgreSQL has open on the mount plus TDEFS_MANY_FILES_FD_BOUND (default
# 400), and never logs "out of file descriptors".
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"

PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
need_cmd "$PGBIN/initdb" postgresql-15
need_cmd "$PGBIN/pg_checksums" postgresql-15
need_cmd "$PGBIN/pgbench" postgresql-15
need_cmd runuser util-linux
id postgres >/dev/null 2>&1 || fail "there is no postgres user (postgresql-common creates it)"
partitions=${TDEFS_PG_PARTITIONS:-2000}
bound=${TDEFS_MANY_FILES_FD_BOUND:-400}

ulimit -Sn 1024 # the default soft limit; the daemon raises it to the hard one
tdefs_setup
pid=$(tdefs_daemon_pid)
pgroot=$TDEFS_MNT/pg
data=$pgroot/data
socket_dir sock postgres
pglog=$TDEFS_WORK/postgres.log
port=54331
mkdir -p "$pgroot"
chown postgres:postgres "$pgroot"
chmod 0700 "$pgroot"
touch "$pglog"
chown postgres:postgres "$pglog"
cd "$TDEFS_WORK"

as_pg() {
	runuser -u postgres -- env HOME=/var/lib/postgresql PGHOST="$sock" PGPORT="$port" \
		PGUSER=postgres PGDATABASE=postgres "$@"
}
pg_running() {
	[[ -f $data/postmaster.pid ]] && kill -0 "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null
}
pg_cleanup() {
	if [[ $TDEFS_EXIT_STATUS != 0 && -s $pglog ]]; then
		echo "---- last lines of the postgres log ----" >&2
		tail -n 25 "$pglog" >&2
	fi
	if pg_running; then
		local ppid
		ppid=$(head -n 1 "$data/postmaster.pid")
		as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
		kill -0 "$ppid" 2>/dev/null && kill -KILL "$ppid" 2>/dev/null || true
	fi
	return 0
}
on_exit pg_cleanup

soft=$(awk '/Max open files/ { print $4 }' "/proc/$pid/limits")
hard=$(awk '/Max open files/ { print $5 }' "/proc/$pid/limits")
[[ $soft == "$hard" ]] || fail "the daemon did not raise its soft open-file limit ($soft) to the hard one ($hard)"
peak=0
# Distinct files on the mount that PostgreSQL's processes hold open now.
pg_open_files() {
	local p
	for p in $(pgrep -u postgres -f "$PGBIN/postgres" || true) $(pgrep -u postgres -x postgres || true); do
		find "/proc/$p/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null || true
	done | { grep -F "$TDEFS_MNT/" || true; } | sort -u | wc -l
}
check_fds() {
	local now open
	open=$(pg_open_files)
	now=$(ls "/proc/$pid/fd" | wc -l)
	((now > peak)) && peak=$now
	log "$1: daemon has $now descriptors, postgres $open files open on the mount (daemon limit $soft)"
	((now < open + bound)) || fail "$1: the daemon holds $now descriptors for $open open files (bound: open + $bound)"
	! grep -q "out of file descriptors" "$(tdefs_daemon_log)" ||
		fail "$1: $(grep "out of file descriptors" "$(tdefs_daemon_log)")"
}

as_pg "$PGBIN/initdb" --data-checksums -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
	--no-instructions >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/initdb.log" >&2; fail "initdb on the mount failed"; }
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
shared_buffers = 32MB
max_wal_size = 256MB
fsync = on
max_locks_per_transaction = 256
CONF
as_pg "$PGBIN/pg_ctl" -D "$data" -l "$pglog" -w -t 120 start >/dev/null || fail "pg_ctl start failed"
check_fds "initdb and start"

log "pgbench -i -s 2 --partitions=$partitions"
as_pg "$PGBIN/pgbench" -i -s 2 --partitions="$partitions" -q >"$TDEFS_WORK/pgbench-init.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/pgbench-init.log" >&2; fail "pgbench -i --partitions=$partitions failed"; }
files=$(find "$data/base" -type f | wc -l)
log "the cluster has $files relation files"
((files > 2 * partitions)) || fail "only $files relation files for $partitions partitions"
check_fds "load"

as_pg "$PGBIN/pgbench" -c 4 -j 2 -T 15 >"$TDEFS_WORK/pgbench.log" 2>&1 ||
	{ tail -n 30 "$TDEFS_WORK/pgbench.log" >&2; fail "pgbench run failed"; }
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$TDEFS_WORK/pgbench.log")
[[ ${failed:-0} == 0 ]] || fail "pgbench: $failed failed transactions"
log "pgbench: $(grep -E '^tps' "$TDEFS_WORK/pgbench.log" | head -n 1)"
check_fds "pgbench run"

as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop failed"
out=$(as_pg "$PGBIN/pg_checksums" --check -D "$data" 2>&1) || { echo "$out" >&2; fail "pg_checksums --check failed"; }
bad=$(sed -n 's/^Bad checksums: *//p' <<<"$out")
scanned=$(sed -n 's/^Files scanned: *//p' <<<"$out")
[[ $bad == 0 ]] || { echo "$out" >&2; fail "pg_checksums: $bad bad checksums"; }
log "pg_checksums --check: $scanned files scanned, 0 bad"
check_fds "pg_checksums"
tdefs_umount "$TDEFS_MNT"
pass "$files relation files, $partitions partitions, daemon peak $peak descriptors (soft limit 1024 raised to $soft)"
