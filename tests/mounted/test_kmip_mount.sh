#!/bin/bash
# A mount keyed by a KMIP server (PyKMIP on loopback): the wallet directory holds kmip.wallet
# only (no key material), tdefs --init and the mount fetch the master key over mutual TLS; files
# written, read back after a remount; a key rotated on the server (kmip_keystore_rotate through
# tdefs-kmip-probe) is taken up online by tderekey reload, new files go under it and old ones
# still read; PostgreSQL (initdb --data-checksums, pgbench, pg_checksums) on the KMIP-keyed
# mount; the server stopped: the running mount keeps reading and writing, a reload says which
# server it could not reach and keeps the keys; a daemon started while the server is down fails
# naming it; the server back, the mount comes up again with every file intact; with
# -o kmip_poll=1 the daemon notices an outage and the recovery without being asked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"
# The exit code the man pages give a meaning (its words), as test_exit_codes.sh reads them.
code_meaning() {
	/usr/bin/python3 - "$TDEFS_SRC/man/tdefs.8.scd" "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = re.search(r"^# EXIT STATUS\n(.*?)(?=^# |\Z)", text, re.S | re.M).group(1)
for code, body in re.findall(r"^\*(\d+)\*\n((?:\t.*\n?)+)", section, re.M):
    if sys.argv[2] in " ".join(body.split()):
        print(code)
PY
}
is_plain && skip "needs the real mount"
PROBE=$TDEFS_BUILD/tests/kmip/tdefs-kmip-probe
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEKEY_BIN" "$PROBE" "$tderekey"
kmip_need
kmip_loopback "$TDEFS_WORK/tls"

TDEFS_WALLET=$W/kms
TDEFS_BACKING=$W/backing
TDEFS_MNT=$W/mnt
"$TDEKEY_BIN" create --wallet "$TDEFS_WALLET" --kmip-server "127.0.0.1:$(kmip_free_port),$S" \
	--tls-wallet "$W/tls" --json </dev/null >"$W/create.json" 2>"$W/err" ||
	fail "tdekey create --kmip-server: $(cat "$W/err")"
key1=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])' <"$W/create.json")
# Bad input: one of the two options alone, a password with them.
"$TDEKEY_BIN" create --wallet "$W/x" --kmip-server "$S" </dev/null 2>"$W/err" && fail "--kmip-server alone"
grep -q -- "--kmip-server and --tls-wallet go together" "$W/err" || fail "$(cat "$W/err")"
"$TDEKEY_BIN" create --wallet "$W/x" --kmip-server "$S:1" --tls-wallet "$W/tls" </dev/null 2>"$W/err" && fail "a bad server"
grep -q -- "--kmip-server: server" "$W/err" || fail "$(cat "$W/err")"
# Commands for wallet files refuse a KMIP wallet rather than make a wallet file beside it.
for cmd in "create --auto-login" "create-key" "backup" "status"; do
	"$TDEKEY_BIN" $cmd --wallet "$TDEFS_WALLET" </dev/null 2>"$W/err" && fail "tdekey $cmd on a KMIP wallet"
	grep -q "holds a KMIP wallet (kmip.wallet)" "$W/err" || fail "tdekey $cmd: $(cat "$W/err")"
done
[[ ! -e $TDEFS_WALLET/autologin.wallet ]] || fail "a wallet file was made beside kmip.wallet"
[[ $(ls "$TDEFS_WALLET") == $'backup\nkmip.wallet\nwallet.lock' || $(ls "$TDEFS_WALLET") == $'kmip.wallet\nwallet.lock' ]] ||
	fail "the KMIP wallet directory holds: $(ls "$TDEFS_WALLET")"
tdefs_init_backing "$TDEFS_WALLET" "$TDEFS_BACKING"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
key_of() { "$TDEFS_TEST_HELPER" key-id "$TDEFS_BACKING/$1"; }

for i in $(seq 1 50); do
	printf 'kmip file %d\n' "$i" >"$TDEFS_MNT/one-$i"
done
[[ $(key_of one-1) == "$key1" ]] || fail "a new file is not under the KMIP key ($(key_of one-1), expected $key1)"
grep -q 'kmip file 7' "$TDEFS_BACKING/one-7" && fail "the backing file holds the plaintext"
tdefs_remount
[[ $(cat "$TDEFS_MNT/one-7") == "kmip file 7" ]] || fail "after a remount: $(cat "$TDEFS_MNT/one-7")"
log "written, remounted and read with the key fetched from $S"

# --- rotation on the server, taken up online; the guarded delete ---------------------------
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --json </dev/null >"$W/set-key.json" 2>"$W/err" ||
	fail "tdekey set-key: $(cat "$W/err")"
key2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])' <"$W/set-key.json")
"$tderekey" reload "$TDEFS_MNT" >"$W/reload.out" 2>&1 || fail "tderekey reload: $(cat "$W/reload.out")"
echo "after the rotation" >"$TDEFS_MNT/two"
[[ $(key_of two) == "$key2" ]] || fail "a file made after the rotation is under $(key_of two), not $key2"
[[ $(cat "$TDEFS_MNT/one-9") == "kmip file 9" ]] || fail "a file under the first key no longer reads"
"$TDEKEY_BIN" keys --wallet "$TDEFS_WALLET" --usage "$TDEFS_BACKING" >"$W/keys.out" 2>&1 || fail "keys: $(cat "$W/keys.out")"
grep -Eq "^$key1 +RETIRED .* 50$" "$W/keys.out" || fail "keys --usage: $(cat "$W/keys.out")"
"$TDEKEY_BIN" delete-key --wallet "$TDEFS_WALLET" --backing "$TDEFS_BACKING" "$key1" </dev/null >"$W/del.out" 2>&1 &&
	fail "deleted a key 50 headers use"
grep -q "still used by 50 file headers" "$W/del.out" || fail "delete-key: $(cat "$W/del.out")"
"$tderekey" rewrap "$TDEFS_MNT" >"$W/rewrap.out" 2>&1 || fail "rewrap: $(cat "$W/rewrap.out")"
[[ $(key_of one-9) == "$key2" ]] || fail "rewrap left one-9 under $(key_of one-9)"
"$TDEKEY_BIN" delete-key --wallet "$TDEFS_WALLET" --backing "$TDEFS_BACKING" "$key2" </dev/null >"$W/del.out" 2>&1 &&
	fail "deleted the ACTIVE key"
grep -q "is the ACTIVE key" "$W/del.out" || fail "delete-key: $(cat "$W/del.out")"
"$TDEKEY_BIN" delete-key --wallet "$TDEFS_WALLET" --backing "$TDEFS_BACKING" "$key1" </dev/null >"$W/del.out" 2>&1 ||
	fail "delete-key after the rewrap: $(cat "$W/del.out")"
grep -q "revoked and destroyed on the key server" "$W/del.out" || fail "delete-key: $(cat "$W/del.out")"
"$TDEKEY_BIN" keys --wallet "$TDEFS_WALLET" --json >"$W/keys.json" || fail "keys --json"
[[ $(/usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keys"]))' <"$W/keys.json") == 1 ]] ||
	fail "keys after delete: $(cat "$W/keys.json")"
log "rotation on the server: set-key, reload took key $key2, rewrap, guarded delete-key of $key1"

# --- PostgreSQL on the KMIP-keyed mount ------------------------------------------------------
PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
if [[ -x $PGBIN/initdb && -x $PGBIN/pgbench && -x $PGBIN/pg_checksums ]] && id postgres >/dev/null 2>&1; then
	pgroot=$TDEFS_MNT/pg
	data=$pgroot/data
	socket_dir sock postgres
	port=$((20000 + RANDOM % 20000))
	pglog=$W/postgres.log
	chmod 0755 "$TDEFS_MNT" # made under umask 077; the postgres user must enter it
	mkdir -p "$pgroot"
	chown postgres:postgres "$pgroot"
	chmod 0700 "$pgroot"
	touch "$pglog"
	chown postgres:postgres "$pglog"
	cd "$W"
	as_pg() {
		runuser -u postgres -- env HOME=/var/lib/postgresql PGHOST="$sock" PGPORT="$port" \
			PGUSER=postgres PGDATABASE=postgres "$@"
	}
	pg_cleanup() {
		[[ -f $data/postmaster.pid ]] || return 0
		as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
	}
	on_exit pg_cleanup
	as_pg "$PGBIN/initdb" --data-checksums -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
		--no-instructions >"$W/initdb.log" 2>&1 || { tail "$W/initdb.log" >&2; fail "initdb"; }
	printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\nshared_buffers = 32MB\n" \
		"$sock" "$port" >>"$data/postgresql.conf"
	as_pg "$PGBIN/pg_ctl" -D "$data" -l "$pglog" -w -t 120 start >/dev/null || fail "pg_ctl start"
	as_pg "$PGBIN/pgbench" -i -s 2 -q >"$W/pgbench-init.log" 2>&1 || fail "pgbench -i"
	as_pg "$PGBIN/pgbench" -c 2 -j 2 -T 10 >"$W/pgbench.log" 2>&1 || fail "pgbench: $(tail -5 "$W/pgbench.log")"
	grep -q 'number of failed transactions: 0' "$W/pgbench.log" || fail "pgbench: $(cat "$W/pgbench.log")"
	as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop"
	tdefs_remount
	as_pg "$PGBIN/pg_checksums" --check -D "$data" >"$W/checksums.log" 2>&1 ||
		fail "pg_checksums: $(cat "$W/checksums.log")"
	grep -q '^Bad checksums: *0$' "$W/checksums.log" || fail "pg_checksums: $(cat "$W/checksums.log")"
	log "PostgreSQL: pgbench without failures, pg_checksums clean after a remount"
else
	log "PostgreSQL 15 not installed: the pgbench part is skipped"
fi

# --- the server down ---------------------------------------------------------------------------
kmip_server_stop
[[ $(cat "$TDEFS_MNT/one-11") == "kmip file 11" ]] || fail "reading while the server is down"
echo "written while the server was down" >"$TDEFS_MNT/outage"
sync "$TDEFS_MNT/outage"
status=0
"$tderekey" reload "$TDEFS_MNT" >"$W/reload.out" 2>&1 || status=$?
[[ $status != 0 ]] || fail "a reload with the server down succeeded: $(cat "$W/reload.out")"
unreachable=$(code_meaning "no key server could be reached")
[[ -n $unreachable && $status == "$unreachable" ]] || fail "reload with the server down: exit $status, not $unreachable"

grep -q "$S: Connection refused" "$W/reload.out" || fail "the failed reload does not name the server: $(cat "$W/reload.out")"
echo "still writing" >"$TDEFS_MNT/outage2"
[[ $(cat "$TDEFS_MNT/outage2") == "still writing" ]] || fail "the mount stopped serving"
key_status() { "$tderekey" status "$TDEFS_MNT" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("key_status"))'; }
[[ $(key_status) == OPEN_UNKNOWN_MASTER_KEY_STATUS ]] || fail "status during the outage: $(key_status)"
"$tderekey" reload "$TDEFS_MNT" >/dev/null 2>&1 && fail "a second reload succeeded"
logf=$(tdefs_daemon_log "$TDEFS_MNT")
[[ $(grep -c "status OPEN_UNKNOWN_MASTER_KEY_STATUS" "$logf") == 1 ]] ||
	fail "the outage is not one log line: $(grep -c OPEN_UNKNOWN "$logf") lines"
# The server back while mounted: the daemon's retry takes it up on its own.
kmip_server_start "$W/server"
for ((i = 0; i < 600; i++)); do
	[[ $(key_status) == OPEN ]] && break
	sleep 0.1
done
[[ $(key_status) == OPEN ]] || fail "the daemon did not reconnect: $(key_status)"
grep -q "key server reachable again" "$logf" || fail "no line for the recovery"
log "outage: status OPEN_UNKNOWN_MASTER_KEY_STATUS, one log line, the retry reconnected (OPEN)"
kmip_server_stop
tdefs_umount "$TDEFS_MNT"
# A daemon started now cannot fetch its key: one clear line naming the server.
status=0
"$TDEFS_BIN" --wallet "$TDEFS_WALLET" -f "$TDEFS_BACKING" "$TDEFS_MNT" </dev/null >"$W/down.log" 2>&1 || status=$?
[[ $status == "$unreachable" ]] || fail "tdefs with every key server down: exit $status, not $unreachable"
grep -q "$S: Connection refused" "$W/down.log" || fail "the mount failure does not name the server: $(cat "$W/down.log")"
mountpoint -q "$TDEFS_MNT" && fail "mounted anyway"
log "server down: the mount served, reload named $S, a new daemon refused to start: $(head -1 "$W/down.log")"

kmip_server_start "$W/server"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
[[ $(cat "$TDEFS_MNT/outage") == "written while the server was down" ]] || fail "the file of the outage"
[[ $(cat "$TDEFS_MNT/one-50") == "kmip file 50" ]] || fail "one-50 after the outage"
log "the server back: mounted again, every file intact"

# -o kmip_poll: the daemon notices an outage, and the recovery, by itself.
tdefs_remount -o kmip_poll=1
kmip_server_stop
for ((i = 0; i < 600; i++)); do
	[[ $(key_status) == OPEN_UNKNOWN_MASTER_KEY_STATUS ]] && break
	sleep 0.1
done
[[ $(key_status) == OPEN_UNKNOWN_MASTER_KEY_STATUS ]] || fail "kmip_poll did not notice the outage"
kmip_server_start "$W/server"
for ((i = 0; i < 600; i++)); do
	[[ $(key_status) == OPEN ]] && break
	sleep 0.1
done
[[ $(key_status) == OPEN ]] || fail "kmip_poll: no recovery: $(key_status)"
[[ $(cat "$TDEFS_MNT/one-3") == "kmip file 3" ]] || fail "one-3 after the polled outage"
log "-o kmip_poll=1: the outage and the recovery noticed without a reload"
pass
