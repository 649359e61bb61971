#!/usr/bin/env bash
# bench/hsm_opens must not rot: a small run (50 files, one round) prints a rate for each wallet
# kind and their ratio. Never asserts a speed.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
need_cmd softhsm2-util softhsm2
[[ -f ${TDEFS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so} ]] || skip "no SoftHSM2 module"
"$TDEFS_SRC/bench/hsm_opens" 50 "$TDEFS_BUILD" 1 >"$TDEFS_WORK/out" 2>&1 ||
	fail "bench/hsm_opens failed: $(cat "$TDEFS_WORK/out")"
grep -qE '^round 1  file wallet +50 files .* [0-9]+ first opens/s$' "$TDEFS_WORK/out" &&
	grep -qE '^round 1  hsm wallet +50 files .* [0-9]+ first opens/s$' "$TDEFS_WORK/out" &&
	grep -qE '^median first opens/s: file wallet [0-9]+, HSM wallet [0-9]+; HSM / file wallet: [0-9.]+$' "$TDEFS_WORK/out" ||
	fail "bench/hsm_opens printed: $(cat "$TDEFS_WORK/out")"
pass "$(tail -n 1 "$TDEFS_WORK/out")"
