#!/usr/bin/env bash
# tdefs --rebind is crash-safe (README, "Moving keys"): killed at every fault point of its write
# of the config record (SIGKILL through TDEFS_FAULT_AT, the fault-injection build), the backing
# directory is bound to the old wallet or to the new one, never to neither, and mounts with the
# wallet it names with every file reading back, and the temporary file a killed write leaves
# is never shown on the mount and is removed by the next process that holds the directory's
# lock; a run without a fault then completes the rebind (before the fix, a leftover temporary
# file made that run refuse: "no valid header copy").
# Needs a build with -Dfault_injection=true: TDEFS_FAULT_BUILD, else TDEFS_BUILD if it is one,
# else build-fault/ or build-asan/ (tests/run-all.sh builds it) in the source tree.
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount"
rel_fault_build fs/tdefs
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

# Wallet A with two keys in use, a backing directory under it, wallet B holding A's keys.
tdefs_setup
for i in 1 2 3; do head -c $((100000 * i + 13)) /dev/urandom >"$TDEFS_MNT/f$i"; done
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" >/dev/null
sleep 0.5
head -c 50000 /dev/urandom >"$TDEFS_MNT/f4"
(cd "$TDEFS_MNT" && sha256sum f1 f2 f3 f4) >"$TDEFS_WORK/sums"
tdefs_umount "$TDEFS_MNT"
B=$TDEFS_WORK/walletB
"$TDEKEY_BIN" create --wallet "$B" --auto-login >/dev/null
echo "transport secret for the test" >"$TDEFS_WORK/secret"
chmod 0600 "$TDEFS_WORK/secret"
"$TDEKEY_BIN" export --wallet "$TDEFS_WALLET" --used-by "$TDEFS_BACKING" --to "$TDEFS_WORK/keys" \
	--secret-file "$TDEFS_WORK/secret" >/dev/null || fail "export --used-by failed"
"$TDEKEY_BIN" import --wallet "$B" --from "$TDEFS_WORK/keys" --secret-file "$TDEFS_WORK/secret" >/dev/null ||
	fail "import into B failed"

wallet_id_of() { "$TDEFS_BIN" --info --json "$TDEFS_BACKING" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wallet_id"])'; }
id_a=$(wallet_id_of)
cp "$TDEFS_BACKING/.tdefs.conf" "$TDEFS_WORK/conf.a"

# reads_back WALLET: the directory mounts with WALLET and every file reads back.
reads_back() {
	tdefs_mount "$1" "$TDEFS_BACKING" "$TDEFS_MNT"
	(cd "$TDEFS_MNT" && sha256sum -c --quiet "$TDEFS_WORK/sums") || fail "$2: the files do not read back under $1"
	# The temporary file of an interrupted write is the daemon's, never a user's file.
	! ls -A "$TDEFS_MNT" | grep -q '^\.tdefs\.conf' || fail "$2: the mount shows a config file: $(ls -A "$TDEFS_MNT")"
	! ls -A "$TDEFS_BACKING" | grep -q '^\.tdefs\.conf\.tmp-' || fail "$2: the mount left a temporary config file behind"
	tdefs_umount "$TDEFS_MNT"
}

kills=0 old=0 new=0
for ((at = 1; at < 200; at++)); do
	cp "$TDEFS_WORK/conf.a" "$TDEFS_BACKING/.tdefs.conf"
	rc=0
	TDEFS_FAULT_AT=$at "$TDEFS_BIN" --rebind --wallet "$B" "$TDEFS_BACKING" >"$TDEFS_WORK/rebind.out" 2>&1 || rc=$?
	if ((rc == 0)); then
		break
	fi
	((rc == 137)) || fail "rebind at fault point $at: exit $rc, not the fault's SIGKILL: $(cat "$TDEFS_WORK/rebind.out")"
	kills=$((kills + 1))
	id=$(wallet_id_of) || fail "fault point $at: the config record does not decode (bound to neither wallet)"
	if [[ $id == "$id_a" ]]; then
		old=$((old + 1))
		reads_back "$TDEFS_WALLET" "fault point $at (old binding)"
	else
		new=$((new + 1))
		reads_back "$B" "fault point $at (new binding)"
	fi
done
((kills > 0)) || fail "no fault point was reached: the test did not test anything"
[[ $(wallet_id_of) != "$id_a" ]] || fail "the run without a fault did not rebind"
reads_back "$B" "after the completed rebind"
pass "rebind killed at $kills fault points: $old times bound to the old wallet, $new to the new one, never neither; every file read back each time"
