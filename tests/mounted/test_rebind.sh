#!/bin/bash
# tdefs --rebind and containers with mounts (docs/WALLET.md "Moving keys", "Containers"):
#  - a copy of a backing directory written under wallet A (two keys, after a set-key) cannot be
#    rebound to wallet B before B holds its keys: the refusal names the files and the key IDs
#    B lacks, and .tdefs.conf stays byte for byte what it was; after a partial import only the
#    missing key is named; a wallet holding A's key ID with other bytes is refused too; an older
#    header copy under a key B lacks is enough to refuse; a mounted directory is refused;
#  - after the full import, --rebind succeeds and the copy mounts under B and reads back;
#  - two containers of one wallet on two mounts: set-key --container alpha changes only alpha's
#    active key; new files on alpha's mount take alpha's new key, beta's mount keeps its own;
#    beta is then isolated into a wallet of its own while both mounts run, rebound, rotated
#    there and merged back (twice: the second merge changes nothing);
#    a directory recording a container the wallet lacks is refused at mount;
#  - a restore: a copy whose headers use only keys imported into a wallet with no active key
#    for its container mounts read-only (reads back, writes EROFS, says what to do); -o rw is
#    refused with the set-key to run; after that set-key it mounts read-write.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the daemon"
MAKE_BACKING=$TDEFS_TEST_HELPER
need_build "$TDEKEY_BIN" "$MAKE_BACKING"
have python3 || skip "python3 is needed to read tdekey's JSON"
W=$TDEFS_WORK
umask 077

active() { # active WALLET CONTAINER
	"$TDEKEY_BIN" keys --wallet "$1" --json | python3 -c 'import json,sys
print("".join(k["key_id"] for k in json.load(sys.stdin)["keys"]
              if k["state"] == "ACTIVE" and k["container"] == sys.argv[1]))' "$2"
}
wait_log() { # wait_log LOG TEXT
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q -- "$2" "$1" && return 0
		sleep 0.1
	done
	fail "the daemon did not log '$2' in 10 s (log $1)"
}
has() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }
lacks() { [[ $1 != *"$2"* ]] || fail "did not expect '$2' in: $1"; }
rebind() { # rebind EXPECTED_EXIT ARGS...: $OUT, $ERR
	local expected=$1 status=0
	shift
	"$TDEFS_BIN" --rebind "$@" </dev/null >"$W/out" 2>"$W/err" || status=$?
	OUT=$(cat "$W/out")
	ERR=$(cat "$W/err")
	[[ $status == "$expected" ]] || fail "tdefs --rebind $*: exit $status, expected $expected ($OUT $ERR)"
}

log "a backing directory under wallet A, its headers under two keys"
tdefs_setup
A=$TDEFS_WALLET
A1=$(active "$A" default)
mkdir -p "$TDEFS_MNT/db/sub"
echo "under the first key" >"$TDEFS_MNT/db/first.txt"
head -c 100000 /dev/urandom >"$TDEFS_MNT/db/sub/first.dat"
"$TDEKEY_BIN" set-key --wallet "$A" >/dev/null
A2=$(active "$A" default)
wait_log "$(tdefs_daemon_log)" "active $A2"
echo "under the second key" >"$TDEFS_MNT/db/second.txt"
(cd "$TDEFS_MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$W/sums"
tdefs_umount "$TDEFS_MNT"
cp -a "$TDEFS_BACKING" "$W/clone.enc"
cp "$W/clone.enc/.tdefs.conf" "$W/conf.before"

log "B lacks both keys: refused, naming the files and the key IDs, nothing changed"
B=$W/walletB
tdefs_make_wallet "$B"
rebind 1 --wallet "$B" "$W/clone.enc"
has "$ERR" "db/first.txt"
has "$ERR" "db/sub/first.dat"
has "$ERR" "db/second.txt"
has "$ERR" "lacks key $A1"
has "$ERR" "lacks key $A2"
has "$ERR" "nothing changed"
cmp -s "$W/conf.before" "$W/clone.enc/.tdefs.conf" || fail "a refused --rebind changed .tdefs.conf"

log "after importing only the first key, only the second is named"
printf 'a transport secret\n' >"$W/secret"
"$TDEKEY_BIN" export --wallet "$A" --key "$A1" --to "$W/first.keys" --secret-file "$W/secret" >/dev/null
"$TDEKEY_BIN" import --wallet "$B" --from "$W/first.keys" --secret-file "$W/secret" >/dev/null
rebind 1 --wallet "$B" "$W/clone.enc"
has "$ERR" "db/second.txt"
has "$ERR" "lacks key $A2"
lacks "$ERR" "lacks key $A1"
lacks "$ERR" "db/first.txt"
cmp -s "$W/conf.before" "$W/clone.enc/.tdefs.conf" || fail "a refused --rebind changed .tdefs.conf"

log "a wallet holding A's key IDs with other bytes is refused"
F=$W/walletF
"$TDEKEY_BIN" create --wallet "$F" --auto-login --no-key --scrypt-cost 10,1,1 >/dev/null
head -c 32 /dev/urandom >"$W/k1"; head -c 32 /dev/urandom >"$W/k2"
"$TDEKEY_BIN" set-key --wallet "$F" --key-file "$W/k1" --key-id "$A1" >/dev/null
"$TDEKEY_BIN" set-key --wallet "$F" --key-file "$W/k2" --key-id "$A2" >/dev/null
rebind 1 --wallet "$F" "$W/clone.enc"
has "$ERR" "does not unseal"
cmp -s "$W/conf.before" "$W/clone.enc/.tdefs.conf" || fail "a refused --rebind changed .tdefs.conf"

log "refused while mounted (the backing lock)"
tdefs_mount "$A" "$W/clone.enc" "$W/clone.mnt"
rebind 1 --wallet "$A" "$W/clone.enc"
has "$ERR" "in use"
cmp -s "$W/conf.before" "$W/clone.enc/.tdefs.conf" || fail "--rebind of a mounted directory changed it"
tdefs_umount "$W/clone.mnt"

log "the full import: rebound, mounted under B, every file reads back"
"$TDEKEY_BIN" export --wallet "$A" --used-by "$W/clone.enc" --to "$W/all.keys" --secret-file "$W/secret" >/dev/null
"$TDEKEY_BIN" import --wallet "$B" --from "$W/all.keys" --secret-file "$W/secret" >/dev/null
cp -a "$W/clone.enc" "$W/clone2.enc" # for the older-copy check below
rebind 0 --wallet "$B" "$W/clone.enc"
has "$OUT" "bound to wallet $B"
B_ID=$("$TDEKEY_BIN" keys --wallet "$B" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["wallet_id"])')
"$TDEFS_BIN" --info --json "$W/clone.enc" | python3 -c 'import json,sys
sys.exit(0 if json.load(sys.stdin)["wallet_id"] == sys.argv[1] else 1)' "$B_ID" ||
	fail ".tdefs.conf does not name wallet B after --rebind"
tdefs_mount "$B" "$W/clone.enc" "$W/clone.mnt"
(cd "$W/clone.mnt" && sha256sum -c --quiet "$W/sums") || fail "the rebound copy does not read back under B"
tdefs_umount "$W/clone.mnt"
status=0
"$TDEFS_BIN" --wallet "$A" -f "$W/clone.enc" "$W/clone.mnt" </dev/null >"$W/out" 2>&1 || status=$?
[[ $status != 0 ]] || fail "the copy still mounts under A after --rebind to B"

log "an older header copy under a key B lacks is enough to refuse"
X=$W/walletX
tdefs_make_wallet "$X"
"$MAKE_BACKING" files "$X" active "$W/foreign" 1 >/dev/null
FOREIGN=$(ls "$W/foreign"/* | head -n 1)
"$MAKE_BACKING" copy-slot "$FOREIGN" "$W/clone2.enc/db/second.txt" 1
cp "$W/clone2.enc/.tdefs.conf" "$W/conf2.before"
rebind 1 --wallet "$B" "$W/clone2.enc"
has "$ERR" "db/second.txt: second header copy"
has "$ERR" "lacks key $(active "$X" default)"
cmp -s "$W/conf2.before" "$W/clone2.enc/.tdefs.conf" || fail "a refused --rebind changed .tdefs.conf"

log "two containers of one wallet on two mounts, each rotated on its own"
U=$W/walletU
tdefs_make_wallet "$U"
"$TDEKEY_BIN" set-key --wallet "$U" --container alpha >/dev/null
ALPHA1=$(active "$U" alpha)
mkdir -m 0700 "$W/alpha.enc" "$W/beta.enc"
"$TDEFS_BIN" --init --wallet "$U" --container alpha "$W/alpha.enc" >/dev/null
# beta in the order a DBA types it: --init first (recorded, with a note), the mount refused
# until beta's first key exists, then set-key --container beta.
"$TDEFS_BIN" --init --wallet "$U" --container beta "$W/beta.enc" >"$W/out" 2>&1 ||
	fail "--init --container beta before beta's first key failed: $(cat "$W/out")"
has "$(cat "$W/out")" "tdekey set-key --wallet $U --container beta"
mkdir -p "$W/beta.mnt"
status=0
"$TDEFS_BIN" --wallet "$U" -f "$W/beta.enc" "$W/beta.mnt" </dev/null >"$W/out" 2>&1 || status=$?
[[ $status != 0 ]] || fail "beta mounted before the wallet held a key of beta"
has "$(cat "$W/out")" "container beta"
mountpoint -q "$W/beta.mnt" && fail "beta is mounted without a key"
"$TDEKEY_BIN" set-key --wallet "$U" --container beta >/dev/null
BETA1=$(active "$U" beta)
tdefs_mount "$U" "$W/alpha.enc" "$W/alpha.mnt"
tdefs_mount "$U" "$W/beta.enc" "$W/beta.mnt"
echo a1 >"$W/alpha.mnt/a1"
echo b1 >"$W/beta.mnt/b1"
[[ $("$MAKE_BACKING" key-id "$W/alpha.enc/a1") == "$ALPHA1" ]] || fail "a new file on alpha's mount is not under alpha's key"
[[ $("$MAKE_BACKING" key-id "$W/beta.enc/b1") == "$BETA1" ]] || fail "a new file on beta's mount is not under beta's key"
"$TDEKEY_BIN" set-key --wallet "$U" --container alpha >/dev/null
ALPHA2=$(active "$U" alpha)
[[ $ALPHA2 != "$ALPHA1" && $(active "$U" beta) == "$BETA1" ]] || fail "set-key --container alpha touched beta"
wait_log "$(tdefs_daemon_log "$W/alpha.mnt")" "active $ALPHA2 (changed)"
wait_log "$(tdefs_daemon_log "$W/beta.mnt")" "(1 new), active $BETA1"
grep -q "active $BETA1 (changed)\|active $ALPHA2" "$(tdefs_daemon_log "$W/beta.mnt")" &&
	fail "beta's mount moved its active key"
echo a2 >"$W/alpha.mnt/a2"
echo b2 >"$W/beta.mnt/b2"
[[ $("$MAKE_BACKING" key-id "$W/alpha.enc/a2") == "$ALPHA2" ]] || fail "alpha's new file is not under alpha's new key"
[[ $("$MAKE_BACKING" key-id "$W/beta.enc/b2") == "$BETA1" ]] || fail "beta's new file is not under beta's own key"
[[ $(cat "$W/alpha.mnt/a1") == a1 && $(cat "$W/beta.mnt/b1") == b1 ]] || fail "older files no longer read"

log "isolate beta into a wallet of its own while both mounts run, rebind it, merge it back"
V=$W/walletV
# Without --backing, the mounted directories are proved: a header on alpha's directory under
# beta's key refuses it (ORA-46696), naming that directory; once it is gone the keys move and
# the output names both mounted directories.
"$MAKE_BACKING" files "$U" "$BETA1" "$W/alpha.enc/borrowed" 1 >/dev/null
status=0
"$TDEKEY_BIN" isolate --wallet "$U" --container beta --to "$V" --auto-login \
	>"$W/isolate.out" 2>&1 || status=$?
[[ $status == 13 ]] || fail "isolate without --backing, alpha's mounted directory using a beta key: exit $status, expected 13: $(cat "$W/isolate.out")"
has "$(cat "$W/isolate.out")" "ORA-46696"
has "$(cat "$W/isolate.out")" "alpha.enc"
[[ ! -e $V ]] || fail "a refused isolate made the target"
rm -rf "$W/alpha.enc/borrowed"
"$TDEKEY_BIN" isolate --wallet "$U" --container beta --to "$V" --auto-login \
	>"$W/isolate.out" 2>&1 || fail "isolate of beta with both mounts up failed: $(cat "$W/isolate.out")"
has "$(cat "$W/isolate.out")" "proved against the 2 mounted backing directories"
[[ -z $(active "$U" beta) && $(active "$V" beta) == "$BETA1" ]] ||
	fail "after isolate: U should hold no beta key and V beta's active key $BETA1"
[[ $(active "$U" alpha) == "$ALPHA2" ]] || fail "isolate of beta changed alpha's active key"
echo a3 >"$W/alpha.mnt/a3"
[[ $(cat "$W/alpha.mnt/a3") == a3 && $(cat "$W/beta.mnt/b2") == b2 ]] ||
	fail "the mounts stopped serving while beta was isolated"
tdefs_umount "$W/beta.mnt"
rebind 0 --wallet "$V" "$W/beta.enc"
tdefs_mount "$V" "$W/beta.enc" "$W/beta.mnt"
[[ $(cat "$W/beta.mnt/b1") == b1 && $(cat "$W/beta.mnt/b2") == b2 ]] || fail "beta does not read back under V"
echo b3 >"$W/beta.mnt/b3"
[[ $("$MAKE_BACKING" key-id "$W/beta.enc/b3") == "$BETA1" ]] || fail "beta's new file under V is not under beta's key"
"$TDEKEY_BIN" set-key --wallet "$V" --container beta >/dev/null
BETA2=$(active "$V" beta)
[[ $BETA2 != "$BETA1" && $(active "$U" alpha) == "$ALPHA2" ]] || fail "rotating beta in V touched U"
tdefs_umount "$W/beta.mnt"
# Online: alpha's daemon, mounted with U, takes up the merged keys without a remount.
: >"$(tdefs_daemon_log "$W/alpha.mnt")"
"$TDEKEY_BIN" merge --wallet "$U" --from "$V" >"$W/merge.out" 2>&1 || fail "merge of V into U failed: $(cat "$W/merge.out")"
wait_log "$(tdefs_daemon_log "$W/alpha.mnt")" "new), active $ALPHA2"
[[ $(active "$U" alpha) == "$ALPHA2" ]] || fail "the merge changed alpha's active key"
"$TDEKEY_BIN" merge --wallet "$U" --from "$V" >"$W/merge2.out" 2>&1 || fail "a second merge failed: $(cat "$W/merge2.out")"
rebind 0 --wallet "$U" "$W/beta.enc"
tdefs_mount "$U" "$W/beta.enc" "$W/beta.mnt"
[[ $(cat "$W/beta.mnt/b1") == b1 && $(cat "$W/beta.mnt/b3") == b3 ]] || fail "beta does not read back under U after the merge"
tdefs_umount "$W/alpha.mnt"
tdefs_umount "$W/beta.mnt"

log "a container the wallet lacks is refused at mount"
cp -a "$W/beta.enc" "$W/gamma.enc"
rebind 0 --wallet "$U" --container gamma "$W/gamma.enc"
has "$OUT" "holds no key of container gamma"
mkdir -p "$W/gamma.mnt"
status=0
"$TDEFS_BIN" --wallet "$U" -f "$W/gamma.enc" "$W/gamma.mnt" </dev/null >"$W/out" 2>&1 || status=$?
[[ $status != 0 ]] || fail "a directory of container gamma mounted with a wallet without gamma"
has "$(cat "$W/out")" "container gamma"
mountpoint -q "$W/gamma.mnt" && fail "gamma is mounted"

log "a restore into a wallet without an active key: read-only, and -o rw says what to do"
R=$W/walletR
"$TDEKEY_BIN" create --wallet "$R" --auto-login --no-key --scrypt-cost 10,1,1 >/dev/null
"$TDEKEY_BIN" import --wallet "$R" --from "$W/all.keys" --secret-file "$W/secret" >/dev/null
[[ -z $(active "$R" default) ]] || fail "the import made a key active"
cp -a "$TDEFS_BACKING" "$W/restore.enc"
rebind 0 --wallet "$R" "$W/restore.enc"
mkdir -p "$W/restore.mnt"
status=0
"$TDEFS_BIN" --wallet "$R" -f -o rw "$W/restore.enc" "$W/restore.mnt" </dev/null >"$W/out" 2>&1 || status=$?
[[ $status != 0 ]] || fail "-o rw mounted a container without an active key"
has "$(cat "$W/out")" "tdekey set-key --wallet $R"
mountpoint -q "$W/restore.mnt" && fail "-o rw left a mount"
tdefs_mount "$R" "$W/restore.enc" "$W/restore.mnt"
has "$(cat "$(tdefs_daemon_log "$W/restore.mnt")")" "mounting read-only"
(cd "$W/restore.mnt" && sha256sum -c --quiet "$W/sums") || fail "the restore does not read back"
echo x 2>"$W/err" >"$W/restore.mnt/new" && fail "a read-only restore accepted a new file"
has "$(cat "$W/err")" "Read-only file system"
tdefs_umount "$W/restore.mnt"
"$TDEKEY_BIN" set-key --wallet "$R" >/dev/null
tdefs_mount "$R" "$W/restore.enc" "$W/restore.mnt" -o rw
echo x >"$W/restore.mnt/new" || fail "after set-key the restore is still read-only"
[[ $("$MAKE_BACKING" key-id "$W/restore.enc/new") == "$(active "$R" default)" ]] ||
	fail "the new file is not under R's new active key"
tdefs_umount "$W/restore.mnt"
pass
