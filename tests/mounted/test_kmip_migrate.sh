#!/bin/bash
# tdekey migrate --to-kmip: a file wallet's mount moved to a key server (PyKMIP on loopback).
# The source (auto-login) is backed up first; the new KMIP wallet has the source's wallet ID,
# a new ACTIVE key made on the server, and links the source, so the backing directory mounts
# with it at once and every file reads; new files go under the server's key; tderekey rewrap,
# while a writer keeps writing fsync'ed records, moves every header, and keys --usage then shows
# the source's (linked) keys unused; nothing of the source is deleted. Refused: --to-kmip
# without --kmip-server, a target that holds a wallet, --kmip-server with --to-hsm, a source
# that uid 65534 owns (a planted wallet) or that does not open without a person.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEKEY_BIN" "$tderekey" "$TDEFS_TEST_HELPER"
kmip_need
kmip_loopback "$TDEFS_WORK/tls"
json_field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
key_of() { "$TDEFS_TEST_HELPER" key-id "$W/backing/$1"; }

"$TDEKEY_BIN" create --wallet "$W/wallet" --auto-login </dev/null >/dev/null 2>"$W/err" || fail "create: $(cat "$W/err")"
tdefs_init_backing "$W/wallet" "$W/backing"
tdefs_mount "$W/wallet" "$W/backing" "$W/mnt"
for i in $(seq 1 30); do
	printf 'file %d\n' "$i" >"$W/mnt/f-$i"
done
old=$(key_of f-1)
tdefs_umount "$W/mnt"
source_keys() { "$TDEKEY_BIN" keys --wallet "$W/wallet" --json | /usr/bin/python3 -c 'import json,sys; print(sorted(k["key_id"] for k in json.load(sys.stdin)["keys"]))'; }
before=$(source_keys)

# --- bad input -------------------------------------------------------------------------------
"$TDEKEY_BIN" migrate --wallet "$W/wallet" --to-kmip "$W/kms" </dev/null 2>"$W/err" && fail "--to-kmip alone"
grep -q -- "--to-kmip needs --kmip-server" "$W/err" || fail "$(cat "$W/err")"
"$TDEKEY_BIN" migrate --wallet "$W/wallet" --to-hsm "$W/kms" --kmip-server "$S" --tls-wallet "$W/tls" \
	</dev/null 2>"$W/err" && fail "--kmip-server with --to-hsm"
grep -q -- "go with --to-kmip" "$W/err" || fail "$(cat "$W/err")"
"$TDEKEY_BIN" create --wallet "$W/occupied" --auto-login </dev/null >/dev/null 2>&1 || fail "create occupied"
"$TDEKEY_BIN" migrate --wallet "$W/wallet" --to-kmip "$W/occupied" --kmip-server "$S" --tls-wallet "$W/tls" \
	</dev/null >/dev/null 2>"$W/err" && fail "migrated into a directory that holds a wallet"
[[ ! -e $W/occupied/kmip.wallet ]] || fail "kmip.wallet made beside a wallet"
# A source another user owns (planted by uid 65534) is refused before anything is made.
cp -a "$W/wallet" "$W/planted"
chown -R 65534 "$W/planted"
as_nobody test -O "$W/planted/autologin.wallet" || fail "the planted copy is not uid 65534's"
"$TDEKEY_BIN" migrate --wallet "$W/planted" --to-kmip "$W/kms-planted" --kmip-server "$S" --tls-wallet "$W/tls" \
	</dev/null >/dev/null 2>"$W/err" && fail "migrated a wallet uid 65534 owns"
grep -q "does not open without a person" "$W/err" || fail "planted: $(cat "$W/err")"
[[ ! -e $W/kms-planted/kmip.wallet ]] || fail "a KMIP wallet was made from a planted source"

# --- the migration -----------------------------------------------------------------------------
"$TDEKEY_BIN" migrate --wallet "$W/wallet" --to-kmip "$W/kms" --kmip-server "$S" --tls-wallet "$W/tls" \
	--json </dev/null >"$W/migrate.json" 2>"$W/err" || fail "migrate --to-kmip: $(cat "$W/err")"
new=$(json_field active_key_id <"$W/migrate.json")
backup=$(json_field source_backup <"$W/migrate.json")
[[ -f $backup ]] || fail "no source backup ($backup)"
grep -q "^link $W/wallet$" "$W/kms/kmip.wallet" || fail "kmip.wallet does not link the source: $(cat "$W/kms/kmip.wallet")"
[[ $(grep '^wallet-id ' "$W/kms/kmip.wallet" | cut -d' ' -f2) == $(json_field wallet_id <"$W/migrate.json") ]] ||
	fail "kmip.wallet has another wallet ID"
[[ $(source_keys) == "$before" ]] || fail "the source wallet's keys changed: $(source_keys)"
log "migrated: KMIP wallet $W/kms, new key $new on the server, source linked, backup $backup"

tdefs_mount "$W/kms" "$W/backing" "$W/mnt"
[[ $(cat "$W/mnt/f-17") == "file 17" ]] || fail "a file under the source's key after the migration"
echo new >"$W/mnt/g"
[[ $(key_of g) == "$new" ]] || fail "a new file is under $(key_of g), not the server's $new"
"$TDEFS_TEST_HELPER" writer "$W/mnt" 2 "$W/writer.log" &
writer=$!
stop_writer() { kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true; }
on_exit stop_writer
sleep 1
"$tderekey" rewrap "$W/mnt" >"$W/rewrap.out" 2>&1 || fail "rewrap: $(cat "$W/rewrap.out")"
sleep 1
stop_writer
[[ $(key_of f-3) == "$new" ]] || fail "rewrap left f-3 under $(key_of f-3)"
"$TDEKEY_BIN" keys --wallet "$W/kms" --usage "$W/backing" >"$W/keys.out" 2>&1 || fail "keys: $(cat "$W/keys.out")"
grep -Eq "^$old +[A-Z]+ .* linked +0$" "$W/keys.out" || fail "keys --usage: the source's key: $(cat "$W/keys.out")"
grep -Eq "^$new +ACTIVE .* 0$" "$W/keys.out" && fail "keys --usage counts no file under the new key: $(cat "$W/keys.out")"
origins=$("$TDEKEY_BIN" keys --wallet "$W/kms" --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(k["key_id"] + "=" + k["origin"] for k in json.load(sys.stdin)["keys"]))')
[[ " $origins " == *" $new=KMIP "* && " $origins " == *" $old=LOCAL "* ]] || fail "keys --json origins: $origins"
tdefs_umount "$W/mnt"
tdefs_mount "$W/kms" "$W/backing" "$W/mnt"
"$TDEFS_TEST_HELPER" check "$W/mnt" 2 "$W/writer.log" >"$W/check.out" 2>&1 || fail "records lost: $(cat "$W/check.out")"
[[ $(cat "$W/mnt/f-30") == "file 30" ]] || fail "f-30 after the rewrap and a remount"
log "mounted with the KMIP wallet at once, rewrapped under a writer ($(wc -l <"$W/writer.log") records, all read back), the source's key now unused"
pass
