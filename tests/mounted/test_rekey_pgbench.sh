#!/bin/bash
# Both rekeys against a running PostgreSQL: pgbench runs on the mount while a master-key rotation
# (tdekey set-key + tderekey rewrap) and a full data rekey (tderekey data) run at the same time;
# no transaction fails, pgbench's invariant holds, and after a clean stop pg_checksums --check
# passes, also after a remount (every page decrypted from disk under the new DEKs). Prints the
# TPS of a run without a rekey and of the run with both (the note quotes them). The second run
# uses -n: without it pgbench truncates pgbench_history and the invariant would span two runs.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
need_cmd "$PGBIN/initdb" postgresql-15
need_cmd runuser util-linux
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
tdefs_setup
data=$TDEFS_MNT/pg/data
socket_dir sock postgres
port=54331
mkdir -p "$TDEFS_MNT/pg"
chown postgres:postgres "$TDEFS_MNT/pg"
chmod 0700 "$TDEFS_MNT/pg"
touch "$TDEFS_WORK/pg.log"
chown postgres:postgres "$TDEFS_WORK/pg.log"
cd "$TDEFS_WORK"
as_pg() { runuser -u postgres -- env HOME=/var/lib/postgresql PGHOST="$sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres "$@"; }
psql_value() { as_pg "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 -c "$1"; }
pg_cleanup() {
	[[ -f $data/postmaster.pid ]] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
}
on_exit pg_cleanup
pg_start() { as_pg "$PGBIN/pg_ctl" -D "$data" -l "$TDEFS_WORK/pg.log" -w -t 120 start >/dev/null || fail "pg_ctl start failed"; }
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop failed"; }
invariant() {
	local sums
	sums=$(psql_value "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) ||
		' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	read -r a b t h <<<"$sums"
	[[ $a == "$b" && $b == "$t" && $t == "$h" ]] || fail "pgbench invariant broken: $sums"
}
tps_of() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$1" | head -n 1; }

as_pg "$PGBIN/initdb" --data-checksums -A trust -D "$data" >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ cat "$TDEFS_WORK/initdb.log" >&2; fail "initdb failed"; }
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
max_wal_size = 64MB
checkpoint_timeout = 30s
fsync = on
CONF
pg_start
as_pg "$PGBIN/pgbench" -i -s 10 -q >"$TDEFS_WORK/init.log" 2>&1 || fail "pgbench -i failed"

as_pg "$PGBIN/pgbench" -c 4 -j 2 -T 15 >"$TDEFS_WORK/baseline.log" 2>&1 || fail "baseline pgbench failed"
baseline=$(tps_of "$TDEFS_WORK/baseline.log")

# The rekeys, concurrent with pgbench and with each other.
as_pg "$PGBIN/pgbench" -n -c 4 -j 2 -T 40 >"$TDEFS_WORK/during.log" 2>&1 &
bench=$!
sleep 3
: >"$TDEFS_WORK/rewrap.out"
: >"$TDEFS_WORK/data.out"
if [[ ${TDEFS_SKIP_REWRAP:-0} == 0 ]]; then
	"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag during-pgbench >/dev/null
	"$tderekey" rewrap "$TDEFS_MNT" --rate 200 >"$TDEFS_WORK/rewrap.out" 2>&1 &
	rewrapper=$!
fi
if [[ ${TDEFS_SKIP_DATA:-0} == 0 ]]; then
	"$tderekey" data "$TDEFS_MNT" --rate 40M >"$TDEFS_WORK/data.out" 2>&1 ||
		fail "data rekey failed: $(cat "$TDEFS_WORK/data.out")"
fi
if [[ -n ${rewrapper:-} ]]; then
	wait "$rewrapper" || fail "rewrap failed: $(cat "$TDEFS_WORK/rewrap.out")"
fi
wait "$bench" || fail "pgbench failed during the rekeys: $(tail -n 5 "$TDEFS_WORK/during.log")"
during=$(tps_of "$TDEFS_WORK/during.log")
grep -q "number of failed transactions: 0" "$TDEFS_WORK/during.log" ||
	grep -q "^number of transactions actually processed" "$TDEFS_WORK/during.log" ||
	fail "pgbench reports failures: $(cat "$TDEFS_WORK/during.log")"
log "$(cat "$TDEFS_WORK/data.out")"
log "$(cat "$TDEFS_WORK/rewrap.out" | tail -n 1)"
invariant

status=$("$tderekey" status "$TDEFS_MNT" --json)
grep -q '"rekey_interrupted": 0' <<<"$status" || fail "files left mid-rekey: $status"
[[ $(grep -oE '"[0-9a-f]{32}": [0-9]+' <<<"${status#*files_per_key}" | wc -l) == 1 ]] ||
	fail "headers under several master keys after the rewrap: $status"

pg_stop
as_pg "$PGBIN/pg_checksums" --check -D "$data" >"$TDEFS_WORK/checksums.log" 2>&1 ||
	fail "pg_checksums --check failed: $(cat "$TDEFS_WORK/checksums.log")"
tdefs_remount
as_pg "$PGBIN/pg_checksums" --check -D "$data" >"$TDEFS_WORK/checksums2.log" 2>&1 ||
	fail "pg_checksums --check after remount failed: $(cat "$TDEFS_WORK/checksums2.log")"
pg_start
invariant
pg_stop
pass "pgbench TPS without rekey $baseline, during rewrap + data rekey $during; checksums clean"
