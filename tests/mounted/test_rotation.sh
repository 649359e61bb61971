#!/usr/bin/env bash
# Online master-key rotation: the daemon adopts a new active key without a remount, files made
# after it are wrapped under it at once, every historical key still opens its files, tderekey
# rewrap moves every header to the active key while a writer runs (stop, resume, --rate), a copy
# of the backing directory taken before the rotation still mounts with the rotated wallet, and
# the control channel refuses other users and paths that are not tdefs mounts.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
tdefs_setup

key_of() { "$TDEFS_TEST_HELPER" key-id "$TDEFS_BACKING/$1"; }
active_key() { "$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"active_key": "\([0-9a-f]*\)".*/\1/p'; }

# Files under key 1.
for i in $(seq 1 300); do
	printf 'key one file %d\n' "$i" >"$TDEFS_MNT/one-$i"
done
key1=$(key_of one-1)
[[ $key1 == "$(active_key)" ]] || fail "files are not under the active key"

# Two rotations; after each, new files are under the new key at once (no remount).
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag second >/dev/null
sleep 1
echo "key two" >"$TDEFS_MNT/two"
key2=$(key_of two)
[[ $key2 != "$key1" ]] || fail "a file created after set-key is still under the old key"
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag third >/dev/null
sleep 1
echo "key three" >"$TDEFS_MNT/three"
key3=$(key_of three)
[[ $key3 != "$key2" && $key3 != "$key1" ]] || fail "third key not adopted"
[[ $(active_key) == "$key3" ]] || fail "tderekey status does not show the new active key"

# Historical keys: everything still reads, also after a remount.
tdefs_remount
[[ $(cat "$TDEFS_MNT/one-17") == "key one file 17" ]] || fail "a file under key 1 is unreadable"
[[ $(cat "$TDEFS_MNT/two") == "key two" ]] || fail "a file under key 2 is unreadable"

# A backup of the backing directory taken now (before the rewrap).
cp -a "$TDEFS_BACKING" "$TDEFS_WORK/backup-before-rewrap"

# Rewrap while a writer appends and fsyncs; stop part-way, then resume to the end.
"$TDEFS_TEST_HELPER" writer "$TDEFS_MNT" 8 "$TDEFS_WORK/writer.log" &
writer=$!
on_exit "kill $writer 2>/dev/null || true"
"$tderekey" rewrap "$TDEFS_MNT" --rate 100 --no-wait >/dev/null
sleep 1
"$tderekey" stop "$TDEFS_MNT" >/dev/null
sleep 0.5
state=$("$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"rewrap_state": "\([a-z]*\)".*/\1/p')
[[ $state == stopped ]] || fail "rewrap did not stop (state $state)"
partial=$(key_of one-300)
"$tderekey" rewrap "$TDEFS_MNT" >"$TDEFS_WORK/rewrap.out" || fail "rewrap failed: $(cat "$TDEFS_WORK/rewrap.out")"
grep -q "rewrap done" "$TDEFS_WORK/rewrap.out" || fail "no summary: $(cat "$TDEFS_WORK/rewrap.out")"
kill "$writer"
wait "$writer" 2>/dev/null || true
log "after stop the last file was under ${partial:0:8}...; rewrap resumed: $(cat "$TDEFS_WORK/rewrap.out")"
for name in one-1 one-150 one-300 two three w0 w7; do
	[[ $(key_of "$name") == "$key3" ]] || fail "$name is not under the active key after rewrap"
done
"$tderekey" status "$TDEFS_MNT" --json | grep "\"files_per_key\": {\"$key3\": " >/dev/null ||
	fail "status shows headers under other keys: $("$tderekey" status "$TDEFS_MNT")"
"$TDEFS_TEST_HELPER" check "$TDEFS_MNT" 8 "$TDEFS_WORK/writer.log" || fail "fsync'ed records lost during rewrap"
[[ $(cat "$TDEFS_MNT/one-250") == "key one file 250" ]] || fail "content changed by rewrap"

# The restored backup (headers under keys 1 and 2) mounts with the rotated wallet.
tdefs_umount "$TDEFS_MNT"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_WORK/backup-before-rewrap" "$TDEFS_MNT"
[[ $(cat "$TDEFS_MNT/one-99") == "key one file 99" ]] || fail "a restored pre-rotation backup does not read"
[[ $(cat "$TDEFS_MNT/two") == "key two" ]] || fail "a restored backup's key-2 file does not read"
tdefs_umount "$TDEFS_MNT"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"

# Reloads at the same instant: the wallet watcher (after each set-key) and tderekey reload from
# several clients each replace the ring and free the one before. A reload once read the ring it
# had put in place after letting the lock go, for its log line, while the next reload freed it:
# the daemon died of a segfault in a rename-race run (and ASan names the use after free here).
reload_loop() {
	local i
	for ((i = 0; i < ${TDEFS_RELOAD_ROUNDS:-150}; i++)); do
		"$tderekey" reload "$TDEFS_MNT" >/dev/null 2>&1 || true
	done
}
reloaders=()
for _ in 1 2 3; do
	reload_loop &
	reloaders+=($!)
done
for i in $(seq 1 20); do
	"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag "concurrent-$i" >/dev/null || fail "set-key $i failed"
	sleep 0.05
done
wait "${reloaders[@]}"
"$tderekey" reload "$TDEFS_MNT" >/dev/null || fail "the daemon did not survive concurrent reloads"
[[ $(cat "$TDEFS_MNT/one-250") == "key one file 250" ]] || fail "a file does not read after concurrent reloads"
"$tderekey" status "$TDEFS_MNT" --json | grep -q '"active_key"' ||
	fail "status after concurrent reloads: $("$tderekey" status "$TDEFS_MNT" 2>&1)"
# In a fault-injection build the race is made certain: each reload pauses after letting the
# lock go (fault_pause "reload:replaced"), the watcher's (after a set-key) while tderekey
# reload replaces and frees rings on the control channel.
if grep -q TDEFS_FAULT_PAUSE "$TDEFS_BIN"; then
	tdefs_umount "$TDEFS_MNT"
	TDEFS_FAULT_PAUSE=reload:replaced tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	for round in 1 2 3; do
		"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag "paused-$round" >/dev/null || fail "set-key failed"
		for _ in 1 2 3 4 5 6; do
			"$tderekey" reload "$TDEFS_MNT" >/dev/null ||
				fail "tderekey reload while the watcher's reload was paused: the daemon died?"
		done
	done
	[[ $(cat "$TDEFS_MNT/one-250") == "key one file 250" ]] || fail "a file does not read after paused reloads"
	tdefs_umount "$TDEFS_MNT"
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	log "paused reloads: the watcher's ring outlived the reloads of the control channel"
fi

# The control channel: another user is refused; a path that is not a tdefs mount is named.
rc=0
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$tderekey" status "$TDEFS_MNT" 2>&1) || rc=$?
((rc == 19)) || fail "another user got exit $rc from the control channel: $out"
grep -q "permission denied" <<<"$out" || fail "another user: expected permission denied, got: $out"
rc=0
out=$("$tderekey" status "$TDEFS_WORK" 2>&1) || rc=$?
((rc == 18)) && grep -q "is not on a tdefs mount" <<<"$out" ||
	fail "a plain directory: expected 'not on a tdefs mount' and exit 18, got $rc: $out"
pass "keys adopted online, historical keys read, rewrap stop/resume under a writer, old backup mounts"
