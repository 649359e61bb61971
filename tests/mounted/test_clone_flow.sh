#!/bin/bash
# The Delphix flow end to end with PostgreSQL (README "Moving keys"): a cluster made by initdb
# --data-checksums and pgbench on a mount under wallet A, across a key rotation; a copy of the
# backing directory taken with the database stopped; 'tdekey export --used-by' the copy, 'tdekey
# import' into wallet B in another directory, 'tdefs --rebind --wallet B --container clone',
# 'tdekey set-key --container clone' (the copy's own active key); the copy mounts under B,
# PostgreSQL starts on it and runs pgbench, pg_checksums --check is clean; another set-key
# --container clone and 'tderekey rewrap' while PostgreSQL runs. Then the copy's headers
# reference only B's clone keys (keys --usage: no file under any key of A, in particular not A's
# active key), PostgreSQL still starts on it after a remount, and the source is untouched: A's
# keys and active key as before, its backing directory byte for byte, its cluster clean.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
need_cmd "$PGBIN/initdb" postgresql-15
need_cmd runuser util-linux
have python3 || skip "python3 is needed to read tdekey's JSON"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
W=$TDEFS_WORK
socket_dir sock postgres
port=54341
umask 022 # the postgres user walks into the mounts' parent directories

tdefs_setup
A=$TDEFS_WALLET
mkdir -p "$TDEFS_MNT/pg"
chown postgres:postgres "$TDEFS_MNT/pg"
chmod 0700 "$TDEFS_MNT/pg"
touch "$W/pg.log"
chown postgres:postgres "$W/pg.log"
cd "$W"
as_pg() { runuser -u postgres -- env HOME=/var/lib/postgresql PGHOST="$sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres "$@"; }
psql_value() { as_pg "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 -c "$1"; }
DATA=
pg_cleanup() {
	[[ -n $DATA && -f $DATA/postmaster.pid ]] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
}
on_exit pg_cleanup
pg_start() { DATA=$1; as_pg "$PGBIN/pg_ctl" -D "$1" -l "$W/pg.log" -w -t 120 start >/dev/null || fail "pg_ctl start on $1 failed: $(tail -n 5 "$W/pg.log")"; }
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$1" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop on $1 failed"; DATA=; }
checksums() { as_pg "$PGBIN/pg_checksums" --check -D "$1" >"$W/checksums.log" 2>&1 || fail "pg_checksums --check $1: $(cat "$W/checksums.log")"; }
invariant() {
	local sums a b t h
	sums=$(psql_value "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' ||
		(SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) ||
		' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	read -r a b t h <<<"$sums"
	[[ $a == "$b" && $b == "$t" && $t == "$h" ]] || fail "pgbench invariant broken: $sums"
}
keys_json() { "$TDEKEY_BIN" keys --wallet "$1" --container all --json "${@:2}"; }
active_of() { # active_of WALLET CONTAINER
	keys_json "$1" | python3 -c 'import json,sys
print("".join(k["key_id"] for k in json.load(sys.stdin)["keys"] if k["state"] == "ACTIVE" and k["container"] == sys.argv[1]))' "$2"
}
key_ids() { keys_json "$1" | python3 -c 'import json,sys
print("\n".join(sorted(k["key_id"] for k in json.load(sys.stdin)["keys"])))'; }
tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

log "source: initdb and pgbench on a mount under wallet A, across a set-key"
SRC_DATA=$TDEFS_MNT/pg/data
as_pg "$PGBIN/initdb" --data-checksums -A trust -D "$SRC_DATA" >"$W/initdb.log" 2>&1 ||
	{ cat "$W/initdb.log" >&2; fail "initdb failed"; }
cat >>"$SRC_DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
max_wal_size = 64MB
fsync = on
CONF
pg_start "$SRC_DATA"
as_pg "$PGBIN/pgbench" -i -s 2 -q >"$W/init.log" 2>&1 || fail "pgbench -i failed"
"$TDEKEY_BIN" set-key --wallet "$A" --tag before-clone >/dev/null
as_pg "$PGBIN/pgbench" -n -c 2 -j 2 -T 5 >"$W/bench-src.log" 2>&1 || fail "pgbench on the source failed"
psql_value "CHECKPOINT" >/dev/null
invariant
pg_stop "$SRC_DATA"
tdefs_umount "$TDEFS_MNT"
A_ACTIVE=$(active_of "$A" default)
A_KEYS=$(key_ids "$A")

log "a copy of the backing directory with the database stopped; export --used-by the copy"
cp -a "$TDEFS_BACKING" "$W/clone.enc"
tree_sums "$TDEFS_BACKING" >"$W/source.sums"
printf 'a transport secret for the clone\n' >"$W/secret"
chmod 0600 "$W/secret"
"$TDEKEY_BIN" export --wallet "$A" --used-by "$W/clone.enc" --to "$W/clone.keys" \
	--secret-file "$W/secret" --json >"$W/export.json" || fail "export --used-by failed"
EXPORTED=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keys"]))' <"$W/export.json")
((EXPORTED >= 2)) || fail "the copy's headers should use both keys of A, export took $EXPORTED"

log "wallet B in another directory: import, rebind with container clone, set-key --container clone"
mkdir -m 0700 "$W/target-host"
B=$W/target-host/wallet
tdefs_make_wallet "$B"
"$TDEKEY_BIN" import --wallet "$B" --from "$W/clone.keys" --secret-file "$W/secret" >"$W/import.out" ||
	fail "import into B failed: $(cat "$W/import.out")"
"$TDEFS_BIN" --rebind --wallet "$B" --container clone "$W/clone.enc" >"$W/rebind.out" 2>&1 ||
	fail "tdefs --rebind failed: $(cat "$W/rebind.out")"
"$TDEKEY_BIN" set-key --wallet "$B" --container clone --tag clone-1 >/dev/null || fail "set-key --container clone failed"
CLONE1=$(active_of "$B" clone)
[[ -n $CLONE1 && $CLONE1 != "$A_ACTIVE" ]] || fail "the clone needs an active key of its own"

log "PostgreSQL starts on the copy under B, pgbench runs, pg_checksums is clean"
tdefs_mount "$B" "$W/clone.enc" "$W/clone.mnt"
CLONE_DATA=$W/clone.mnt/pg/data
rm -f "$CLONE_DATA/postmaster.pid"
pg_start "$CLONE_DATA"
invariant
as_pg "$PGBIN/pgbench" -n -c 2 -j 2 -T 5 >"$W/bench-clone.log" 2>&1 || fail "pgbench on the copy failed"
invariant

log "set-key --container clone and tderekey rewrap on the copy while PostgreSQL runs"
"$TDEKEY_BIN" set-key --wallet "$B" --container clone --tag clone-2 >/dev/null
CLONE2=$(active_of "$B" clone)
sleep 1 # the daemon re-reads the wallet on inotify
"$tderekey" rewrap "$W/clone.mnt" >"$W/rewrap.out" 2>&1 || fail "rewrap of the copy failed: $(cat "$W/rewrap.out")"
invariant
pg_stop "$CLONE_DATA"
checksums "$CLONE_DATA"
tdefs_umount "$W/clone.mnt"

log "the copy references no key of A any more, only B's clone key"
keys_json "$B" --usage "$W/clone.enc" >"$W/clone-usage.json"
python3 - "$W/clone-usage.json" "$CLONE2" "$A_ACTIVE" $A_KEYS <<'PY' || fail "keys --usage of the copy: $(cat "$W/clone-usage.json")"
import json, sys
d = json.load(open(sys.argv[1]))
clone2, a_active, a_keys = sys.argv[2], sys.argv[3], set(sys.argv[4:])
files = {k["key_id"]: k["files"] for k in d["keys"]}
assert not d["unknown_keys"] and d["damaged"] == 0, d
assert files.get(a_active, 0) == 0, "A's active key still used: %s" % files
assert all(files.get(k, 0) == 0 for k in a_keys), "keys of A still used: %s" % files
assert files.get(clone2, 0) > 0, "nothing under the clone's active key: %s" % files
PY
tdefs_mount "$B" "$W/clone.enc" "$W/clone.mnt"
pg_start "$CLONE_DATA"
invariant
pg_stop "$CLONE_DATA"
checksums "$CLONE_DATA"
tdefs_umount "$W/clone.mnt"

log "the source is untouched: A's keys, its backing directory, its cluster"
[[ $(key_ids "$A") == "$A_KEYS" && $(active_of "$A" default) == "$A_ACTIVE" ]] ||
	fail "wallet A changed"
tree_sums "$TDEFS_BACKING" | cmp -s - "$W/source.sums" || fail "the source's backing directory changed"
tdefs_mount "$A" "$TDEFS_BACKING" "$TDEFS_MNT"
checksums "$SRC_DATA"
pg_start "$SRC_DATA"
invariant
pg_stop "$SRC_DATA"
pass "clone provisioned under B: $EXPORTED keys exported, rebound, rekeyed to $CLONE2; source untouched"
