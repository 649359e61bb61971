#!/usr/bin/env bash
# Migrations between software and HSM wallets with SoftHSM2 (two tokens, made for this test in
# its own SOFTHSM2_CONF directory), under PostgreSQL:
#  1. a software (auto-login) wallet's mount holds a pgbench database;
#  2. tdekey migrate --to-hsm: the HSM wallet has the software wallet's ID and links it, the
#     software wallet is backed up and otherwise unchanged; the mount moves to the HSM wallet;
#     tderekey rewrap runs while pgbench runs (no failed transaction); keys --usage shows no
#     header under the software key; unlink is refused before the rewrap and works after it;
#  3. HSM to HSM: the first HSM wallet (its PIN in its external store) is migrated to a wallet on
#     the second token; after the rewrap and the unlink the first token is deleted and the data
#     still opens (pg_checksums --check, pgbench's invariant);
#  4. tdekey reverse-migrate: a new software wallet linked as active takes over new files at
#     once on the running mount; after a rewrap the backing directory mounts with the software
#     wallet alone;
#  5. bad input: a target that holds a wallet, a source that does not open without a person.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd softhsm2-util softhsm2
MODULE=${TDEFS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[[ -f $MODULE ]] || skip "no SoftHSM2 module at $MODULE"
PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
need_cmd "$PGBIN/initdb" postgresql-15
need_cmd runuser util-linux
id postgres >/dev/null 2>&1 || fail "there is no postgres user (postgresql-common creates it)"
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey

export SOFTHSM2_CONF=$TDEFS_WORK/softhsm2.conf
mkdir -m 0700 "$TDEFS_WORK/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$TDEFS_WORK" >"$SOFTHSM2_CONF"
for t in a b; do
	printf 'pin-%s-%s\n' "$t" "$RANDOM$RANDOM" >"$TDEFS_WORK/pin-$t"
	chmod 0600 "$TDEFS_WORK/pin-$t"
	softhsm2-util --init-token --free --label "tde-$t" --so-pin 0000 \
		--pin "$(head -n 1 "$TDEFS_WORK/pin-$t")" >/dev/null || fail "cannot make token tde-$t"
done
SW=$TDEFS_WORK/software HA=$TDEFS_WORK/hsm-a HB=$TDEFS_WORK/hsm-b SW2=$TDEFS_WORK/software-2
B=$TDEFS_WORK/backing M=$TDEFS_WORK/mnt
TDEFS_MNT=$M
mkdir -m 0700 "$B"
mkdir -m 0755 "$M"

# ---- PostgreSQL ------------------------------------------------------------------------------
data=$M/pg/data
socket_dir sock postgres
port=$((54900 + RANDOM % 90))
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
pg_start() { as_pg "$PGBIN/pg_ctl" -D "$data" -l "$TDEFS_WORK/pg.log" -w -t 120 start >/dev/null || fail "pg_ctl start failed ($1)"; }
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop failed"; }
invariant() {
	local sums a b t h
	sums=$(psql_value "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) ||
		' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	read -r a b t h <<<"$sums"
	[[ $a == "$b" && $b == "$t" && $t == "$h" ]] || fail "pgbench invariant broken ($1): $sums"
}
checksums() { as_pg "$PGBIN/pg_checksums" --check -D "$data" >/dev/null 2>&1 || fail "pg_checksums --check failed ($1)"; }
# pgbench while the headers are rewrapped: no failed transaction.
rewrap_under_pgbench() { # WHAT
	as_pg "$PGBIN/pgbench" -n -c 4 -j 2 -T 12 >"$TDEFS_WORK/pgbench-$1.log" 2>&1 &
	local bench=$!
	sleep 2
	"$TDEREKEY_BIN" rewrap "$M" </dev/null >"$TDEFS_WORK/rewrap-$1.log" 2>&1 ||
		fail "rewrap ($1) failed: $(cat "$TDEFS_WORK/rewrap-$1.log")"
	wait "$bench" || { cat "$TDEFS_WORK/pgbench-$1.log" >&2; fail "pgbench during the rewrap ($1) failed"; }
	! grep -q "number of failed transactions: [1-9]" "$TDEFS_WORK/pgbench-$1.log" ||
		fail "pgbench had failed transactions during the rewrap ($1)"
	log "rewrap ($1) under pgbench: $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TDEFS_WORK/pgbench-$1.log" | head -n 1) tps"
}
# The files under each key, by KEYSTORE_TYPE, from keys --usage.
usage_by_type() { # WALLET PIN-OPTION...
	local wallet=$1
	shift
	"$TDEKEY_BIN" keys --wallet "$wallet" "$@" --usage "$B" --json 2>/dev/null |
		python3 -c 'import json, sys
d = json.load(sys.stdin)
by = {}
for k in d["keys"]:
    by[k["keystore_type"]] = by.get(k["keystore_type"], 0) + k["files"]
print(" ".join("%s=%d" % kv for kv in sorted(by.items())))'
}

# ---- 1. the software wallet's database ---------------------------------------------------------
"$TDEKEY_BIN" create --wallet "$SW" --auto-login </dev/null >/dev/null 2>&1 || fail "tdekey create --auto-login failed"
"$TDEFS_BIN" --init --wallet "$SW" "$B" </dev/null >/dev/null 2>&1 || fail "tdefs --init failed"
tdefs_mount "$SW" "$B" "$M"
mkdir -p "$M/pg"
chown postgres:postgres "$M/pg"
chmod 0700 "$M/pg"
as_pg "$PGBIN/initdb" --data-checksums -A trust -D "$data" >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ cat "$TDEFS_WORK/initdb.log" >&2; fail "initdb failed"; }
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\nmax_wal_size = 64MB\n" \
	"$sock" "$port" >>"$data/postgresql.conf"
pg_start "software wallet"
as_pg "$PGBIN/pgbench" -i -s 2 -q >"$TDEFS_WORK/pgbench-init.log" 2>&1 || fail "pgbench -i failed"
pg_stop
tdefs_umount "$M"

# ---- 5. bad input (before the migration, so that nothing is left behind) -------------------------
mkdir -m 0700 "$TDEFS_WORK/occupied"
"$TDEKEY_BIN" create --wallet "$TDEFS_WORK/occupied" --auto-login </dev/null >/dev/null 2>&1
rc=0
"$TDEKEY_BIN" migrate --wallet "$SW" --to-hsm "$TDEFS_WORK/occupied" --hsm-module "$MODULE" \
	--token-label tde-a --pin-file "$TDEFS_WORK/pin-a" </dev/null >/dev/null 2>"$TDEFS_WORK/err" || rc=$?
((rc != 0)) && grep -q "already exists" "$TDEFS_WORK/err" || fail "migrate into a wallet directory: exit $rc: $(cat "$TDEFS_WORK/err")"
printf 'a password of the test\n' >"$TDEFS_WORK/pw"
chmod 0600 "$TDEFS_WORK/pw"
"$TDEKEY_BIN" create --wallet "$TDEFS_WORK/password-only" --password-file "$TDEFS_WORK/pw" </dev/null >/dev/null 2>&1
rc=0
"$TDEKEY_BIN" migrate --wallet "$TDEFS_WORK/password-only" --to-hsm "$TDEFS_WORK/never" --hsm-module "$MODULE" \
	--token-label tde-a --pin-file "$TDEFS_WORK/pin-a" </dev/null >/dev/null 2>"$TDEFS_WORK/err" || rc=$?
((rc != 0)) && grep -q "does not open without a person" "$TDEFS_WORK/err" && [[ ! -e $TDEFS_WORK/never/hsm.wallet ]] ||
	fail "migrate from a password wallet without a store: exit $rc: $(cat "$TDEFS_WORK/err")"
log "bad input: a target holding a wallet, a source that needs a person"

# ---- 2. software to HSM ------------------------------------------------------------------------
"$TDEKEY_BIN" migrate --wallet "$SW" --to-hsm "$HA" --hsm-module "$MODULE" --token-label tde-a \
	--pin-file "$TDEFS_WORK/pin-a" </dev/null >"$TDEFS_WORK/migrate-a.log" 2>&1 ||
	fail "migrate to HSM failed: $(cat "$TDEFS_WORK/migrate-a.log")"
grep -q "^link $SW retired$" "$HA/hsm.wallet" || fail "the HSM wallet does not link the software wallet"
ls "$SW"/backup/autologin-*-migrate.wallet >/dev/null 2>&1 || fail "migrate took no backup of the source"
"$TDEKEY_BIN" keys --wallet "$SW" </dev/null >/dev/null 2>&1 || fail "the software wallet no longer opens"
[[ $(usage_by_type "$HA" --pin-file "$TDEFS_WORK/pin-a") == "HSM=0 SOFTWARE="* ]] ||
	fail "after migrate the HSM wallet does not show the headers under the software key: $(usage_by_type "$HA" --pin-file "$TDEFS_WORK/pin-a")"
tdefs_mount "$HA" "$B" "$M" --pin-file "$TDEFS_WORK/pin-a"
pg_start "HSM wallet, before the rewrap"
invariant "after migrate"
rc=0
"$TDEKEY_BIN" unlink --wallet "$HA" --pin-file "$TDEFS_WORK/pin-a" --backing "$B" "$SW" </dev/null >/dev/null 2>"$TDEFS_WORK/err" || rc=$?
[[ $rc == 13 ]] && grep -q "rewrap them" "$TDEFS_WORK/err" || fail "unlink before the rewrap: exit $rc: $(cat "$TDEFS_WORK/err")"
rewrap_under_pgbench "software to HSM"
pg_stop
[[ $(usage_by_type "$HA" --pin-file "$TDEFS_WORK/pin-a") == "HSM="*" SOFTWARE=0" ]] ||
	fail "after the rewrap headers are still under the software key: $(usage_by_type "$HA" --pin-file "$TDEFS_WORK/pin-a")"
"$TDEKEY_BIN" unlink --wallet "$HA" --pin-file "$TDEFS_WORK/pin-a" --backing "$B" "$SW" </dev/null >/dev/null 2>"$TDEFS_WORK/err" ||
	fail "unlink after the rewrap failed: $(cat "$TDEFS_WORK/err")"
! grep -q "^link " "$HA/hsm.wallet" || fail "the link is still in hsm.wallet"
ls "$HA"/backup/hsm-*.wallet >/dev/null 2>&1 || fail "unlink took no backup of hsm.wallet"
[[ -f $SW/autologin.wallet ]] || fail "the software wallet was removed"
checksums "HSM wallet"
tdefs_umount "$M"
log "software to HSM: migrate, rewrap under pgbench, unlink; the software wallet is kept"

# ---- 3. HSM to HSM -----------------------------------------------------------------------------
"$TDEKEY_BIN" add-secret --wallet "$HA" --pin-file "$TDEFS_WORK/pin-a" </dev/null >/dev/null 2>&1 ||
	fail "add-secret --pin-file on the first HSM wallet failed"
"$TDEKEY_BIN" migrate --wallet "$HA" --to-hsm "$HB" --hsm-module "$MODULE" --token-label tde-b \
	--pin-file "$TDEFS_WORK/pin-b" </dev/null >"$TDEFS_WORK/migrate-b.log" 2>&1 ||
	fail "migrate HSM to HSM failed: $(cat "$TDEFS_WORK/migrate-b.log")"
tdefs_mount "$HB" "$B" "$M" --pin-file "$TDEFS_WORK/pin-b"
pg_start "second HSM wallet"
rewrap_under_pgbench "HSM to HSM"
pg_stop
"$TDEKEY_BIN" unlink --wallet "$HB" --pin-file "$TDEFS_WORK/pin-b" --backing "$B" "$HA" </dev/null >/dev/null 2>"$TDEFS_WORK/err" ||
	fail "unlink of the first HSM wallet failed: $(cat "$TDEFS_WORK/err")"
tdefs_umount "$M"
softhsm2-util --delete-token --token tde-a >/dev/null 2>&1 || fail "cannot delete token tde-a"
tdefs_mount "$HB" "$B" "$M" --pin-file "$TDEFS_WORK/pin-b"
checksums "after the first token was deleted"
pg_start "first token gone"
invariant "first token gone"
pg_stop
log "HSM to HSM: the first token deleted after rewrap and unlink, the data still opens"

# ---- 4. HSM to software -------------------------------------------------------------------------
"$TDEKEY_BIN" reverse-migrate --wallet "$HB" --pin-file "$TDEFS_WORK/pin-b" --to "$SW2" </dev/null \
	>"$TDEFS_WORK/reverse.log" 2>&1 || fail "reverse-migrate failed: $(cat "$TDEFS_WORK/reverse.log")"
grep -q "^link $SW2 active$" "$HB/hsm.wallet" || fail "the HSM wallet does not link the new software wallet as active"
key=$(sed -n 's/^active master key \([0-9a-f]*\)$/\1/p;s/^new active master key \([0-9a-f]*\) (software).*/\1/p' "$TDEFS_WORK/reverse.log")
# The running daemon takes the software key up for new files.
for ((i = 0; i < 100; i++)); do grep -q "active $key" "$(tdefs_daemon_log "$M")" && break; sleep 0.1; done
grep -q "active $key" "$(tdefs_daemon_log "$M")" || fail "the mount did not take up the software key"
pg_start "reverse migration"
rewrap_under_pgbench "HSM to software"
pg_stop
tdefs_umount "$M"
[[ $(usage_by_type "$SW2") == "SOFTWARE="* ]] || fail "headers are left under an HSM key: $(usage_by_type "$SW2")"
tdefs_mount "$SW2" "$B" "$M"
checksums "software wallet alone"
pg_start "software wallet alone"
invariant "software wallet alone"
pg_stop
tdefs_umount "$M"
"$TDEKEY_BIN" keys --wallet "$SW" </dev/null >/dev/null 2>&1 || fail "the first software wallet no longer opens"
log "HSM to software: the software key wraps new files at once; after the rewrap the software wallet alone opens every file"
pass
