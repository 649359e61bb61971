#!/usr/bin/env bash
# A planted wallet. The wallet ID is no secret (it is in every wallet's clear header, in the
# backing directory's .tdefs.conf and in `tdekey status`), so a local user (uid 65534) forges an
# auto-login wallet that claims it and holds a master key of their own (tdefs-test-helper
# forge-wallet, tests/lib/helper_keys.c). Then:
#  (a) the wallet directory is group-writable with group nogroup (an administrator's slip): the
#      attacker swaps the forged file in. The daemon's reload refuses with the chmod that fixes
#      the directory (and, once that is fixed, the chown that fixes the planted file), a new
#      mount refuses too, no file made afterwards is wrapped under the attacker's key and files
#      made before still read;
#  (b) a daemon started from a password (--password-file) is handed the forged file as
#      autologin.wallet by root (as a restore from a backup the attacker supplied would): a
#      reload keeps reading the password wallet and never switches to the auto-login file, and
#      a new mount with the password uses the password wallet although the file is there;
#  (c) a reload never drops a key: the wallet put back from a backup older than a rotation
#      leaves the newer key loaded, and files wrapped under it keep reading.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEFS_TEST_HELPER" "$tderekey" "$TDEKEY_BIN" "$TDEFS_BIN"

key_of() { "$TDEFS_TEST_HELPER" key-id "$1"; }
wallet_id_of() {
	"$TDEKEY_BIN" status --wallet "$1" --json | sed -n 's/.*"wallet_id": "\([0-9a-f]*\)".*/\1/p'
}
# Wait for the daemon's wallet watcher to act on a change (it lets events settle for 0.2 s).
settle() { sleep 1; }

attacker=$TDEFS_WORK/attacker
mkdir -m 700 "$attacker"
chown 65534:65534 "$attacker"

# --- (a) a group-writable wallet directory --------------------------------------------------
tdefs_setup
echo "written before the attack" >"$TDEFS_MNT/before"
sync
victim_key=$(key_of "$TDEFS_BACKING/before")
wallet_id=$(wallet_id_of "$TDEFS_WALLET")
[[ -n $wallet_id ]] || fail "no wallet ID from tdekey status"
cp -p "$TDEFS_WALLET/autologin.wallet" "$TDEFS_WORK/autologin.saved"
backing2=$TDEFS_WORK/backing2
tdefs_init_backing "$TDEFS_WALLET" "$backing2"

chgrp 65534 "$TDEFS_WALLET"
chmod 0770 "$TDEFS_WALLET"
as_nobody "$TDEFS_TEST_HELPER" forge-wallet "$wallet_id" "$attacker/forged.wallet" >"$attacker/forged.txt" ||
	fail "the attacker could not forge a wallet"
forged_key=$(head -n 1 "$attacker/forged.txt")
log "attacker forged key $forged_key for wallet $wallet_id; victim key $victim_key"
as_nobody cp "$attacker/forged.wallet" "$TDEFS_WALLET/autologin.wallet.new" ||
	fail "the attacker cannot write the group-writable wallet directory (test setup)"
as_nobody mv -f "$TDEFS_WALLET/autologin.wallet.new" "$TDEFS_WALLET/autologin.wallet" ||
	fail "the attacker cannot replace autologin.wallet (test setup)"
settle

rc=0
out=$("$tderekey" reload "$TDEFS_MNT" 2>&1) || rc=$?
((rc != 0)) || fail "(a) the daemon re-read a wallet in a group-writable directory: $out"
grep -q "wallet directory $TDEFS_WALLET is writable by group: chmod g-w $TDEFS_WALLET" <<<"$out" ||
	fail "(a) the refusal does not give the chmod: $out"
grep -q "chmod g-w $TDEFS_WALLET" "$(tdefs_daemon_log)" ||
	fail "(a) the watcher's reload did not log the refusal"
echo "written after the attack" >"$TDEFS_MNT/after"
sync
after_key=$(key_of "$TDEFS_BACKING/after")
[[ $after_key != "$forged_key" ]] || fail "(a) a new file is wrapped under the attacker's key"
[[ $after_key == "$victim_key" ]] || fail "(a) a new file is under $after_key, not the wallet's key"
drop_caches
[[ $(cat "$TDEFS_MNT/before") == "written before the attack" ]] ||
	fail "(a) a file made before the attack no longer reads"

# A new mount (and tdekey) refuse the directory as well.
mnt2=$TDEFS_WORK/mnt2
mkdir -p "$mnt2"
"$TDEFS_BIN" --wallet "$TDEFS_WALLET" -f "$backing2" "$mnt2" </dev/null >"$TDEFS_WORK/mount2.log" 2>&1 &
pid2=$!
for _ in $(seq 1 100); do
	mountpoint -q "$mnt2" && break
	kill -0 "$pid2" 2>/dev/null || break
	sleep 0.1
done
if mountpoint -q "$mnt2"; then
	fusermount3 -u "$mnt2" || true
	wait "$pid2" || true
	fail "(a) a mount with the planted wallet succeeded"
fi
rc=0
wait "$pid2" || rc=$?
((rc != 0)) || fail "(a) the mount exited 0"
grep -q "chmod g-w $TDEFS_WALLET" "$TDEFS_WORK/mount2.log" ||
	fail "(a) the mount's refusal does not give the chmod: $(cat "$TDEFS_WORK/mount2.log")"
rc=0
out=$("$TDEKEY_BIN" keys --wallet "$TDEFS_WALLET" 2>&1) || rc=$?
((rc == 7)) && grep -q "chmod g-w" <<<"$out" || fail "(a) tdekey keys: exit $rc: $out"

# The directory fixed, the planted file (the attacker's) is still refused, for its owner.
chmod 0700 "$TDEFS_WALLET"
rc=0
out=$("$tderekey" reload "$TDEFS_MNT" 2>&1) || rc=$?
((rc != 0)) && grep -q "owned by uid 65534, not by root: chown root $TDEFS_WALLET/autologin.wallet" <<<"$out" ||
	fail "(a) the attacker's file was not refused for its owner: $out"
cp -p "$TDEFS_WORK/autologin.saved" "$TDEFS_WALLET/autologin.wallet"
chgrp 0 "$TDEFS_WALLET"
"$tderekey" reload "$TDEFS_MNT" >/dev/null || fail "(a) the repaired wallet does not reload"
tdefs_umount "$TDEFS_MNT"

# --- (b) a daemon started from a password ---------------------------------------------------
printf 'a long wallet password\n' >"$TDEFS_WORK/password"
chmod 600 "$TDEFS_WORK/password"
wallet_b=$TDEFS_WORK/wallet-b
backing_b=$TDEFS_WORK/backing-b
mnt_b=$TDEFS_WORK/mnt-b
"$TDEKEY_BIN" create --wallet "$wallet_b" --password-file "$TDEFS_WORK/password" \
	--scrypt-cost 10,1,1 >/dev/null || fail "(b) tdekey create failed"
mkdir -p "$backing_b"
"$TDEFS_BIN" --init --wallet "$wallet_b" --password-file "$TDEFS_WORK/password" "$backing_b" \
	>/dev/null 2>&1 || fail "(b) tdefs --init with a password failed"
tdefs_mount "$wallet_b" "$backing_b" "$mnt_b" --password-file "$TDEFS_WORK/password"
echo "b before" >"$mnt_b/before"
sync
victim_b=$(key_of "$backing_b/before")
as_nobody "$TDEFS_TEST_HELPER" forge-wallet "$(wallet_id_of "$wallet_b")" "$attacker/forged-b.wallet" >"$attacker/forged-b.txt" ||
	fail "(b) the attacker could not forge a wallet"
forged_b=$(head -n 1 "$attacker/forged-b.txt")
install -m 600 -o root -g root "$attacker/forged-b.wallet" "$wallet_b/autologin.wallet"
settle
rc=0
out=$("$tderekey" reload "$mnt_b" 2>&1) || rc=$?
((rc != 0)) && grep -q "an auto-login wallet is not used instead" <<<"$out" ||
	fail "(b) a password-started daemon's reload did not keep to the password wallet (exit $rc): $out"
echo "b after" >"$mnt_b/after"
sync
[[ $(key_of "$backing_b/after") == "$victim_b" ]] ||
	fail "(b) after the auto-login file appeared, a new file is under $(key_of "$backing_b/after"), not $victim_b (forged $forged_b)"
tdefs_umount "$mnt_b"
# At mount, the password given wins over the auto-login file beside the password wallet.
tdefs_mount "$wallet_b" "$backing_b" "$mnt_b" --password-file "$TDEFS_WORK/password"
grep -q "a password was given: opening $wallet_b/password.wallet" "$(tdefs_daemon_log "$mnt_b")" ||
	fail "(b) the mount did not log that the password given wins"
echo "b remounted" >"$mnt_b/remounted"
sync
[[ $(key_of "$backing_b/remounted") == "$victim_b" ]] ||
	fail "(b) a mount with --password-file used the auto-login file (new file under $(key_of "$backing_b/remounted"))"
[[ $(cat "$mnt_b/before") == "b before" ]] || fail "(b) an old file does not read"
tdefs_umount "$mnt_b"

# --- (c) a reload never drops a key -----------------------------------------------------------
wallet_c=$TDEFS_WORK/wallet-c
backing_c=$TDEFS_WORK/backing-c
mnt_c=$TDEFS_WORK/mnt-c
tdefs_make_wallet "$wallet_c"
tdefs_init_backing "$wallet_c" "$backing_c"
cp -p "$wallet_c/autologin.wallet" "$TDEFS_WORK/autologin-c.before-rotation"
tdefs_mount "$wallet_c" "$backing_c" "$mnt_c"
"$TDEKEY_BIN" set-key --wallet "$wallet_c" --tag second >/dev/null
settle
head -c 200000 /dev/urandom >"$TDEFS_WORK/reference"
cp "$TDEFS_WORK/reference" "$mnt_c/newer"
sync
newer_key=$(key_of "$backing_c/newer")
# The wallet as it was before the rotation comes back (a restore from an older backup).
cp -p "$TDEFS_WORK/autologin-c.before-rotation" "$wallet_c/autologin.wallet"
settle
"$tderekey" reload "$mnt_c" >/dev/null || fail "(c) the older wallet does not reload"
grep -q "lacks 1 of the master keys loaded" "$(tdefs_daemon_log "$mnt_c")" ||
	fail "(c) the reload did not log the key the wallet lacks"
drop_caches
cmp -s "$TDEFS_WORK/reference" "$mnt_c/newer" ||
	fail "(c) a file under key $newer_key no longer reads after the reload: the key was dropped"
tdefs_umount "$mnt_c"
pass "planted wallet refused with the fix, password-started daemon keeps its kind, no key dropped"
