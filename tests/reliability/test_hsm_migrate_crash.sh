#!/usr/bin/env bash
# tdekey migrate and reverse-migrate are crash-safe (docs/WALLET.md, "HSM wallets"): killed at
# every one of their fault points (SIGKILL through TDEFS_FAULT_AT, the fault-injection build),
# they leave the source wallet opening with all its keys, and the target either absent (no
# hsm.wallet) or complete: an HSM wallet that links the source and has an ACTIVE key on the
# token. Every file of the backing directory opens with whichever wallet is then mounted, and a
# run after the crash (with a leftover target directory removed) completes.
# Needs a build with -Dfault_injection=true: TDEFS_FAULT_BUILD, else TDEFS_BUILD if it is one,
# else build-fault/ or build-asan/ in the source tree.
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount"
need_cmd softhsm2-util softhsm2
MODULE=${TDEFS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[[ -f $MODULE ]] || skip "no SoftHSM2 module at $MODULE"
rel_fault_build tools/tdekey/tdekey
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

export SOFTHSM2_CONF=$TDEFS_WORK/softhsm2.conf
mkdir -m 0700 "$TDEFS_WORK/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$TDEFS_WORK" >"$SOFTHSM2_CONF"
pin=$TDEFS_WORK/pin
printf 'crash-pin-%s\n' "$RANDOM$RANDOM" >"$pin"
chmod 0600 "$pin"
softhsm2-util --init-token --free --label crash --so-pin 0000 --pin "$(head -n 1 "$pin")" >/dev/null ||
	fail "cannot make the token"

tdefs_setup
for i in 1 2 3; do head -c $((70000 * i + 5)) /dev/urandom >"$TDEFS_MNT/f$i"; done
(cd "$TDEFS_MNT" && sha256sum f1 f2 f3) >"$TDEFS_WORK/sums"
tdefs_umount "$TDEFS_MNT"
SW=$TDEFS_WALLET H=$TDEFS_WORK/hsm SW2=$TDEFS_WORK/software-2
keys_of() { "$TDEKEY_BIN" keys --wallet "$1" "${@:2}" --json </dev/null 2>/dev/null |
	python3 -c 'import json, sys; print(" ".join(sorted(k["key_id"] for k in json.load(sys.stdin)["keys"])))'; }
sw_keys=$(keys_of "$SW")
[[ -n $sw_keys ]] || fail "the software wallet lists no key"
# The files read back through a mount of WALLET.
files_open() { # WALLET WHAT [PIN OPTIONS]
	tdefs_mount "$1" "$TDEFS_BACKING" "$TDEFS_MNT" "${@:3}"
	(cd "$TDEFS_MNT" && sha256sum -c --quiet "$TDEFS_WORK/sums") || fail "the files do not read back ($2)"
	tdefs_umount "$TDEFS_MNT"
}
migrate() {
	"$TDEKEY_BIN" migrate --wallet "$SW" --to-hsm "$H" --hsm-module "$MODULE" --token-label crash \
		--pin-file "$pin" </dev/null >/dev/null 2>>"$TDEFS_WORK/migrate.err"
}
fault_points() { grep -c '^fault point ' || true; }

# ---- migrate ------------------------------------------------------------------------------
points=$(TDEFS_FAULT_TRACE=1 "$TDEKEY_BIN" migrate --wallet "$SW" --to-hsm "$TDEFS_WORK/trace" \
	--hsm-module "$MODULE" --token-label crash --pin-file "$pin" </dev/null 2>&1 >/dev/null | fault_points)
((points >= 2)) || fail "migrate passes only $points fault points"
for ((n = 1; n <= points; n++)); do
	rm -rf "$H"
	rc=0
	TDEFS_FAULT_AT=$n migrate || rc=$?
	[[ $rc == 137 ]] || fail "migrate was not killed at fault point $n (exit $rc)"
	[[ $(keys_of "$SW") == "$sw_keys" ]] || fail "after a kill at point $n the software wallet lost keys"
	files_open "$SW" "software wallet, killed at point $n"
	if [[ -f $H/hsm.wallet ]]; then
		grep -q "^link $SW retired$" "$H/hsm.wallet" || fail "a kill at point $n left hsm.wallet without its link"
		grep -q '^key [0-9a-f]* ACTIVE ' "$H/hsm.wallet" || fail "a kill at point $n left hsm.wallet without an active key"
		files_open "$H" "HSM wallet after a kill at point $n" --pin-file "$pin"
	else
		rm -rf "$H"
		migrate || fail "migrate after a kill at point $n failed: $(tail -n 1 "$TDEFS_WORK/migrate.err")"
		files_open "$H" "HSM wallet made after a kill at point $n" --pin-file "$pin"
	fi
	log "migrate killed at fault point $n of $points: source intact, target absent or complete"
done
rm -rf "$H"
migrate || fail "migrate without a fault failed"

# ---- reverse-migrate ----------------------------------------------------------------------
cp "$H/hsm.wallet" "$TDEFS_WORK/hsm.wallet.before"
reverse() {
	"$TDEKEY_BIN" reverse-migrate --wallet "$H" --to "$SW2" --pin-file "$pin" </dev/null >/dev/null 2>>"$TDEFS_WORK/reverse.err"
}
points=$(TDEFS_FAULT_TRACE=1 "$TDEKEY_BIN" reverse-migrate --wallet "$H" --to "$TDEFS_WORK/trace2" \
	--pin-file "$pin" </dev/null 2>&1 >/dev/null | fault_points)
((points >= 2)) || fail "reverse-migrate passes only $points fault points"
for ((n = 1; n <= points; n++)); do
	# Each run starts from the HSM wallet as migrate left it (the traced run changed it).
	rm -rf "$SW2"
	cp "$TDEFS_WORK/hsm.wallet.before" "$H/hsm.wallet"
	rc=0
	TDEFS_FAULT_AT=$n reverse || rc=$?
	[[ $rc == 137 ]] || fail "reverse-migrate was not killed at fault point $n (exit $rc)"
	files_open "$H" "HSM wallet after reverse-migrate killed at point $n" --pin-file "$pin"
	if grep -q "^link $SW2 active$" "$H/hsm.wallet"; then
		"$TDEKEY_BIN" keys --wallet "$SW2" </dev/null >/dev/null 2>&1 ||
			fail "a kill at point $n left hsm.wallet linking a software wallet that does not open"
	fi
	log "reverse-migrate killed at fault point $n of $points: the HSM wallet opens every file"
done
pass
