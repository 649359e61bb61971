#!/bin/bash
# Moving keys with mounts (docs/WALLET.md "Moving keys"): a backing directory written through a
# mount under wallet A, across a key rotation (so its headers use two keys); a copy of it; its
# keys exported with --used-by and imported into wallet B. Then:
#  - B holds every key ID the copy's headers reference (tdekey keys --usage shows none
#    unknown), and none of them became B's active key;
#  - a daemon already mounted with B can open a file whose header names an imported key
#    without a remount: it fails before the import, opens after (the daemon re-reads the wallet
#    on inotify);
#  - after 'tdefs --rebind --wallet B' (tests/mounted/test_rebind.sh covers its refusals), every
#    file of the copy reads back through a mount under B, byte for byte.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the daemon"
MAKE_BACKING=$TDEFS_TEST_HELPER
need_build "$TDEKEY_BIN" "$MAKE_BACKING"
have python3 || skip "python3 is needed to read tdekey's JSON"
W=$TDEFS_WORK
umask 077

key_ids() { # key_ids WALLET: every key ID, sorted
	"$TDEKEY_BIN" keys --wallet "$1" --json | python3 -c 'import json,sys
for k in json.load(sys.stdin)["keys"]: print(k["key_id"])' | sort
}
active_key() {
	"$TDEKEY_BIN" keys --wallet "$1" --json | python3 -c 'import json,sys
print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["state"] == "ACTIVE"][0])'
}
# wait_log LOG TEXT: the daemon logged TEXT within 10 s
wait_log() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q -- "$2" "$1" && return 0
		sleep 0.1
	done
	fail "the daemon did not log '$2' in 10 s (log $1)"
}

log "files under wallet A, before and after a set-key"
tdefs_setup
A=$TDEFS_WALLET
mkdir "$TDEFS_MNT/db"
head -c 300000 /dev/urandom >"$TDEFS_MNT/db/before.dat"
echo "written under the first key" >"$TDEFS_MNT/db/before.txt"
"$TDEKEY_BIN" set-key --wallet "$A" --tag rotated >/dev/null
wait_log "$(tdefs_daemon_log)" "(changed)"
head -c 200000 /dev/urandom >"$TDEFS_MNT/db/after.dat"
echo "written under the second key" >"$TDEFS_MNT/db/after.txt"
(cd "$TDEFS_MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$W/sums"
tdefs_umount "$TDEFS_MNT"

log "a copy of the backing directory; export --used-by the copy"
cp -a "$TDEFS_BACKING" "$W/clone.enc"
printf 'a transport secret\n' >"$W/secret"
"$TDEKEY_BIN" keys --wallet "$A" --usage "$W/clone.enc" --json >"$W/a-usage.json"
USED=$(python3 -c 'import json,sys
print("\n".join(sorted(k["key_id"] for k in json.load(sys.stdin)["keys"] if k["files"])))' <"$W/a-usage.json")
[[ $(wc -l <<<"$USED") == 2 ]] || fail "the copy's headers should use two keys of A: $USED"
"$TDEKEY_BIN" export --wallet "$A" --used-by "$W/clone.enc" --to "$W/clone.keys" \
	--secret-file "$W/secret" --json >"$W/export.json"
EXPORTED=$(python3 -c 'import json,sys; print("\n".join(sorted(json.load(sys.stdin)["keys"])))' <"$W/export.json")
[[ $EXPORTED == "$USED" ]] || fail "exported '$EXPORTED', the headers use '$USED'"

log "wallet B mounted on a directory of its own; a header under A's key does not open yet"
B=$W/walletB
tdefs_make_wallet "$B"
B_ACTIVE=$(active_key "$B")
tdefs_init_backing "$B" "$W/b.enc"
tdefs_mount "$B" "$W/b.enc" "$W/b.mnt"
FIRST=$(head -1 <<<"$USED")
"$MAKE_BACKING" files "$A" "$FIRST" "$W/b.enc/probe" 1 >/dev/null
PROBE=$(cd "$W/b.enc/probe" && ls)
cat "$W/b.mnt/probe/$PROBE" >/dev/null 2>&1 && fail "a header under a key B lacks opened"

log "import into B while it is mounted"
"$TDEKEY_BIN" import --wallet "$B" --from "$W/clone.keys" --secret-file "$W/secret" >"$W/import.out"
cat "$W/import.out" >&2
wait_log "$(tdefs_daemon_log "$W/b.mnt")" "(2 new)"
cat "$W/b.mnt/probe/$PROBE" >/dev/null || fail "the imported key does not open $PROBE through the mount"
[[ $(active_key "$B") == "$B_ACTIVE" ]] || fail "the import changed B's active key"
echo "new under B" >"$W/b.mnt/new.txt"
"$TDEKEY_BIN" keys --wallet "$B" --usage "$W/b.enc" --json >"$W/b-usage.json"
python3 -c 'import json,sys
j = json.load(sys.stdin)
used = {k["key_id"] for k in j["keys"] if k["files"]}
sys.exit(0 if sys.argv[1] in used and not j["unknown_keys"] else 1)' "$B_ACTIVE" <"$W/b-usage.json" ||
	fail "a new file under B is not wrapped under B's own active key: $(cat "$W/b-usage.json")"
tdefs_umount "$W/b.mnt"

log "B holds every key ID the copy's headers reference"
for k in $USED; do
	key_ids "$B" | grep -qx "$k" || fail "B lacks key $k, which the copy's headers reference"
done
# Bind the copy to B: tdefs --rebind proves B opens every header first.
cp -a "$W/clone.enc" "$W/clone-b.enc"
"$TDEFS_BIN" --rebind --wallet "$B" "$W/clone-b.enc" >"$W/rebind.out" 2>&1 ||
	fail "tdefs --rebind --wallet B failed after the import: $(cat "$W/rebind.out")"
"$TDEKEY_BIN" keys --wallet "$B" --usage "$W/clone-b.enc" --json >"$W/clone-b-usage.json"
python3 -c 'import json,sys
j = json.load(sys.stdin)
sys.exit(0 if not j["unknown_keys"] and j["damaged"] == 0 else 1)' <"$W/clone-b-usage.json" ||
	fail "keys --usage under B names missing keys: $(cat "$W/clone-b-usage.json")"
tdefs_mount "$B" "$W/clone-b.enc" "$W/clone-b.mnt"
(cd "$W/clone-b.mnt" && sha256sum -c --quiet "$W/sums") || fail "the copy does not read back under B"
tdefs_umount "$W/clone-b.mnt"

log "the source is untouched"
tdefs_mount "$A" "$TDEFS_BACKING" "$TDEFS_MNT"
(cd "$TDEFS_MNT" && sha256sum -c --quiet "$W/sums") || fail "the source no longer reads back"
pass
