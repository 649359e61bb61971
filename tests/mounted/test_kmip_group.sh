#!/bin/bash
# Two hosts' wallets sharing one key group on a KMIP server (PyKMIP on loopback), as the hosts
# of a fleet do: the first tdekey create --kmip-group makes the group's first key, the second
# joins it (no key made, the same ACTIVE key); both mount their own backing directory. A
# rotation made through one wallet (set-key) is what the other fetches on tderekey reload: its
# new files go under the new key, its rewrap moves its headers, and keys --usage shows the old
# key unused there; the key before is revoked (Deactivated) on the server. A key revoked on the
# server by hand is never used to wrap again: a reload stops new files (one log line), a mount
# that finds no Active key comes up read-only, every file readable; after another rotation it
# writes again. The same for a wallet of its own whose ACTIVE key is revoked on the server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"
is_plain && skip "needs the real mount"
PROBE=$TDEFS_BUILD/tests/kmip/tdefs-kmip-probe
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEKEY_BIN" "$PROBE" "$tderekey"
kmip_need
kmip_loopback "$TDEFS_WORK/tls"
group=fleet-$$
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
json_field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

"$TDEKEY_BIN" create --wallet "$W/kmsA" --kmip-server "$S" --tls-wallet "$W/tls" --kmip-group "$group" \
	--json </dev/null >"$W/a.json" 2>"$W/err" || fail "create --kmip-group: $(cat "$W/err")"
key1=$(json_field key_id <"$W/a.json")
[[ $(json_field joined <"$W/a.json") == False ]] || fail "the first wallet of the group joined: $(cat "$W/a.json")"
"$TDEKEY_BIN" create --wallet "$W/kmsB" --kmip-server "$S" --tls-wallet "$W/tls" --kmip-group "$group" \
	--json </dev/null >"$W/b.json" 2>"$W/err" || fail "create --kmip-group (join): $(cat "$W/err")"
[[ $(json_field joined <"$W/b.json") == True && $(json_field key_id <"$W/b.json") == "$key1" ]] ||
	fail "the second wallet did not join the group's key $key1: $(cat "$W/b.json")"
grep -q "^group $group$" "$W/kmsB/kmip.wallet" || fail "kmip.wallet does not name the group"
grep -q "^key " "$W/kmsB/kmip.wallet" && fail "a group wallet lists keys: $(cat "$W/kmsB/kmip.wallet")"
# Bad input: a group name with a character a name may not have.
"$TDEKEY_BIN" create --wallet "$W/kmsX" --kmip-server "$S" --tls-wallet "$W/tls" --kmip-group "a/b" \
	</dev/null 2>"$W/err" && fail "a group named a/b"
grep -q -- "--kmip-group: 'a/b' is not" "$W/err" || fail "bad group: $(cat "$W/err")"
[[ ! -e $W/kmsX/kmip.wallet ]] || fail "a wallet was written for a bad group"
log "wallet A made group $group's key $key1, wallet B joined it"

for h in A B; do
	tdefs_init_backing "$W/kms$h" "$W/backing$h"
	tdefs_mount "$W/kms$h" "$W/backing$h" "$W/mnt$h"
	for i in $(seq 1 20); do
		printf 'host %s file %d\n' "$h" "$i" >"$W/mnt$h/f-$i"
	done
done
key_of() { "$TDEFS_TEST_HELPER" key-id "$1"; }
[[ $(key_of "$W/backingB/f-1") == "$key1" ]] || fail "host B's file is under $(key_of "$W/backingB/f-1"), not $key1"

# --- rotation through wallet A, taken up by host B --------------------------------------------
"$TDEKEY_BIN" set-key --wallet "$W/kmsA" --json </dev/null >"$W/set.json" 2>"$W/err" ||
	fail "set-key in the group: $(cat "$W/err")"
key2=$(json_field key_id <"$W/set.json")
"$tderekey" reload "$W/mntB" >"$W/reload.out" 2>&1 || fail "host B reload: $(cat "$W/reload.out")"
echo "after the rotation" >"$W/mntB/g"
[[ $(key_of "$W/backingB/g") == "$key2" ]] || fail "host B wraps under $(key_of "$W/backingB/g"), not A's new $key2"
"$TDEKEY_BIN" keys --wallet "$W/kmsB" --usage "$W/backingB" >"$W/keys.out" 2>&1 || fail "keys: $(cat "$W/keys.out")"
grep -Eq "^$key1 +RETIRED .* 20$" "$W/keys.out" || fail "keys --usage before the rewrap: $(cat "$W/keys.out")"
grep -Eq "^$key2 +ACTIVE " "$W/keys.out" || fail "keys: $(cat "$W/keys.out")"
"$tderekey" rewrap "$W/mntB" >"$W/rewrap.out" 2>&1 || fail "host B rewrap: $(cat "$W/rewrap.out")"
[[ $(key_of "$W/backingB/f-7") == "$key2" ]] || fail "rewrap left f-7 under $(key_of "$W/backingB/f-7")"
"$TDEKEY_BIN" keys --wallet "$W/kmsB" --usage "$W/backingB" >"$W/keys.out" 2>&1 || fail "keys: $(cat "$W/keys.out")"
grep -Eq "^$key1 +RETIRED .* 0$" "$W/keys.out" || fail "keys --usage after the rewrap: $(cat "$W/keys.out")"
[[ $(cat "$W/mntB/f-7") == "host B file 7" ]] || fail "f-7 after the rewrap: $(cat "$W/mntB/f-7")"
# The key before was revoked on the server: Deactivated, still fetched for what it wraps.
obj1=$(grep -E "^$key1 " "$W/keys.out" | awk '{print $4}')
[[ $("$PROBE" "$S" "$W/tls" 5000 state "$obj1") == Deactivated ]] || fail "the superseded key is $("$PROBE" "$S" "$W/tls" 5000 state "$obj1")"
[[ $(cat "$W/mntA/f-3") == "host A file 3" ]] || fail "host A reads under the old key"
"$tderekey" reload "$W/mntA" >/dev/null 2>&1 || fail "host A reload"
echo "A after" >"$W/mntA/g"
[[ $(key_of "$W/backingA/g") == "$key2" ]] || fail "host A wraps under $(key_of "$W/backingA/g")"
log "set-key through A made $key2; B reloaded, wrapped and rewrapped under it; $key1 Deactivated, 0 files on B"

# --- the ACTIVE key revoked on the server by hand ---------------------------------------------
obj2=$(grep -E "^$key2 " "$W/keys.out" | awk '{print $4}')
"$PROBE" "$S" "$W/tls" 5000 revoke "$obj2" >/dev/null || fail "revoke $obj2"
# A running daemon that reloads stops wrapping under it (it keeps no revoked key ACTIVE).
"$tderekey" reload "$W/mntB" >"$W/reload.out" 2>&1 || fail "reload after the revoke: $(cat "$W/reload.out")"
echo x 2>/dev/null >"$W/mntB/revoked-reload" && fail "a file was wrapped under the revoked key after a reload"
grep -q "the key server has revoked the active master key" "$(tdefs_daemon_log "$W/mntB")" ||
	fail "no log line for the revoked active key"
[[ $(cat "$W/mntB/g") == "after the rotation" ]] || fail "a file under the revoked key, after the reload"
tdefs_umount "$W/mntB"
tdefs_mount "$W/kmsB" "$W/backingB" "$W/mntB"
[[ $(cat "$W/mntB/f-9") == "host B file 9" ]] || fail "a file under the revoked key no longer reads"
echo x 2>/dev/null >"$W/mntB/h" && fail "a new file was wrapped although the server revoked every key"
grep -q "holds no active master key" "$(tdefs_daemon_log "$W/mntB")" || fail "no line says why the mount is read-only"
"$TDEKEY_BIN" keys --wallet "$W/kmsB" >"$W/keys.out" 2>&1 || fail "keys: $(cat "$W/keys.out")"
grep -q " ACTIVE " "$W/keys.out" && fail "a revoked key is listed ACTIVE: $(cat "$W/keys.out")"
"$TDEKEY_BIN" set-key --wallet "$W/kmsA" --json </dev/null >"$W/set.json" 2>"$W/err" || fail "set-key: $(cat "$W/err")"
key3=$(json_field key_id <"$W/set.json")
tdefs_umount "$W/mntB"
tdefs_mount "$W/kmsB" "$W/backingB" "$W/mntB"
echo "after the revoke" >"$W/mntB/h" || fail "no write after a new key"
[[ $(key_of "$W/backingB/h") == "$key3" ]] || fail "h is under $(key_of "$W/backingB/h"), not $key3"
log "a key revoked on the server: a reload stopped new files, a mount came up read-only; a new key made it writable again"

# --- a wallet of its own (no group): its ACTIVE key revoked on the server ------------------
"$TDEKEY_BIN" create --wallet "$W/kmsC" --kmip-server "$S" --tls-wallet "$W/tls" </dev/null >/dev/null 2>"$W/err" ||
	fail "create: $(cat "$W/err")"
tdefs_init_backing "$W/kmsC" "$W/backingC"
tdefs_mount "$W/kmsC" "$W/backingC" "$W/mntC"
echo "C one" >"$W/mntC/one"
objC=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kmip_unique_identifier"])' \
	< <("$TDEKEY_BIN" keys --wallet "$W/kmsC" --json))
"$PROBE" "$S" "$W/tls" 5000 revoke "$objC" >/dev/null || fail "revoke $objC"
"$tderekey" reload "$W/mntC" >"$W/reload.out" 2>&1 || fail "reload C: $(cat "$W/reload.out")"
echo x 2>/dev/null >"$W/mntC/two" && fail "wallet C wrapped a new file under its revoked key"
[[ $(cat "$W/mntC/one") == "C one" ]] || fail "wallet C's file no longer reads"
log "a wallet's own ACTIVE key revoked on the server: no new file after the reload, the old one reads"
# Its key destroyed on the server: a daemon refuses to start, with the code of a refusal.
tdefs_umount "$W/mntC"
"$PROBE" "$S" "$W/tls" 5000 destroy "$objC" >/dev/null || fail "destroy $objC"
status=0
"$TDEFS_BIN" --wallet "$W/kmsC" -f "$W/backingC" "$W/mntC" </dev/null >"$W/down.log" 2>&1 || status=$?
refused=$(code_meaning "a key server refused the operation")
[[ -n $refused && $status == "$refused" ]] || fail "a destroyed key: exit $status, not $refused: $(cat "$W/down.log")"
grep -q "refused Get: Item Not Found" "$W/down.log" || fail "the destroyed key is not named: $(cat "$W/down.log")"
mountpoint -q "$W/mntC" && fail "mounted with a destroyed key"
log "a destroyed key: the daemon refused to start (exit $status): $(head -1 "$W/down.log")"
pass
