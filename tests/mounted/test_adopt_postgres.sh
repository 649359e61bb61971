#!/bin/bash
# Encrypting an existing PostgreSQL cluster in place, as README.md ("Encrypting a PostgreSQL
# cluster") tells a DBA to: initdb and pgbench -i on a plain directory, a row holding a marker
# string, stop; the directory becomes the backing directory (tdefs --init --adopt) and the
# cluster starts on the mount at once; pgbench runs while tderekey encrypt converts every file;
# no transaction fails and pgbench's invariant holds; after a clean stop pg_checksums --check
# passes, and no plaintext marker is left anywhere in the backing directory; the cluster then
# starts on a mount with -o require_encrypted and reads the marker row back.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
need_cmd "$PGBIN/initdb" postgresql-15
need_cmd runuser util-linux
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
wallet=$TDEFS_WORK/wallet
plain=$TDEFS_WORK/pgdata          # the cluster as it was
backing=$TDEFS_WORK/pgdata.enc    # the same directory, moved: the backing directory
mnt=$TDEFS_WORK/pgdata-mnt        # where the cluster runs from then on
marker="PG-ADOPT-PLAINTEXT-MARKER-7e1b"
socket_dir sock postgres
port=54341
data=$plain
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
pg_start() { as_pg "$PGBIN/pg_ctl" -D "$data" -l "$TDEFS_WORK/pg.log" -w -t 120 start >/dev/null || fail "pg_ctl start failed: $(tail -n 5 "$TDEFS_WORK/pg.log")"; }
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop failed"; }
invariant() {
	local sums
	sums=$(psql_value "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) ||
		' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	read -r a b t h <<<"$sums"
	[[ $a == "$b" && $b == "$t" && $t == "$h" ]] || fail "pgbench invariant broken: $sums"
}

# The existing cluster, on a plain directory.
mkdir -p "$plain"
chown postgres:postgres "$plain"
chmod 0700 "$plain"
as_pg "$PGBIN/initdb" --data-checksums -A trust -D "$plain" >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ cat "$TDEFS_WORK/initdb.log" >&2; fail "initdb failed"; }
cat >>"$plain/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
max_wal_size = 64MB
checkpoint_timeout = 30s
fsync = on
CONF
pg_start
as_pg "$PGBIN/pgbench" -i -s 10 -q >"$TDEFS_WORK/init.log" 2>&1 || fail "pgbench -i failed"
psql_value "CREATE TABLE secret (t text); ALTER TABLE secret ALTER t SET STORAGE PLAIN;
	INSERT INTO secret SELECT '$marker ' || g FROM generate_series(1, 1000) g; CHECKPOINT;" >/dev/null
pg_stop
grep -rlq --binary-files=binary "$marker" "$plain" || fail "the marker is not in the plain cluster: the test proves nothing"

# One short stop to move the mount in place, then the cluster runs on it.
mv "$plain" "$backing"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" 2>&1 &&
	fail "adopt without a wallet succeeded"
tdefs_make_wallet "$wallet"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" ||
	fail "tdefs --init --adopt failed: $(cat "$TDEFS_WORK/adopt.out")"
mkdir -p "$mnt"
chown postgres:postgres "$mnt"
chmod 0700 "$mnt"
data=$mnt
tdefs_mount "$wallet" "$backing" "$mnt"
pg_start
[[ $(psql_value "SELECT count(*) FROM secret WHERE t LIKE '$marker%'") == 1000 ]] ||
	fail "the adopted cluster does not read its rows"

as_pg "$PGBIN/pgbench" -n -c 4 -j 2 -T 30 >"$TDEFS_WORK/during.log" 2>&1 &
bench=$!
sleep 3
"$tderekey" encrypt "$mnt" --rate 60M >"$TDEFS_WORK/encrypt.out" 2>&1 ||
	fail "tderekey encrypt failed: $(cat "$TDEFS_WORK/encrypt.out")"
log "$(tail -n 1 "$TDEFS_WORK/encrypt.out")"
wait "$bench" || fail "pgbench failed during the conversion: $(tail -n 5 "$TDEFS_WORK/during.log")"
grep -q "number of failed transactions: 0" "$TDEFS_WORK/during.log" ||
	grep -q "^number of transactions actually processed" "$TDEFS_WORK/during.log" ||
	fail "pgbench reports failures: $(cat "$TDEFS_WORK/during.log")"
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TDEFS_WORK/during.log" | head -n 1)
invariant
"$tderekey" status "$mnt" >"$TDEFS_WORK/status.out"
grep -q "no plaintext file left" "$TDEFS_WORK/status.out" || fail "plaintext files left: $(cat "$TDEFS_WORK/status.out")"
pg_stop
as_pg "$PGBIN/pg_checksums" --check -D "$mnt" >"$TDEFS_WORK/checksums.log" 2>&1 ||
	fail "pg_checksums --check failed: $(cat "$TDEFS_WORK/checksums.log")"
tdefs_umount "$mnt"
grep -rl --binary-files=binary "$marker" "$backing" && fail "plaintext marker left in the backing directory"
grep -rl --binary-files=binary "pgbench_accounts" "$backing" && fail "catalog plaintext left in the backing directory"

tdefs_mount "$wallet" "$backing" "$mnt" -o require_encrypted
pg_start
[[ $(psql_value "SELECT count(*) FROM secret WHERE t LIKE '$marker%'") == 1000 ]] ||
	fail "the converted cluster lost rows"
invariant
pg_stop
tdefs_umount "$mnt"
pass "existing cluster adopted and encrypted online: pgbench ran at $tps TPS during tderekey encrypt, invariant holds, checksums clean, no plaintext left, starts under require_encrypted"
