#!/bin/bash
# The randomised model-based exerciser (tdefs-exerciser) against a tdefs mount:
#  1. the default run: a fixed seed, 100,000 operations, plus a 4-thread concurrent phase on
#     stripes that share blocks; the files are then compared again after a remount, so the
#     final contents are read back from the backing files through decryption;
#  2. a run with a fresh random seed (printed, with the command that reproduces it);
#  3. a run doing 30% of its reads and writes with O_DIRECT (opened with it, or set by fcntl);
#  4. the same on a mount with -o cache=none (no kernel caching: every operation reaches the
#     daemon), with O_DIRECT and threads.
# Environment: TDEFS_EXERCISER_SEED (default 20240611), TDEFS_EXERCISER_OPS (default 100000),
# TDEFS_EXERCISER_RANDOM_SEED (replaces the random seed of run 2, to reproduce it).
. "$(dirname "$0")/lib.sh"

need_build "$TDEFS_EXERCISER"
seed=${TDEFS_EXERCISER_SEED:-20240611}
ops=${TDEFS_EXERCISER_OPS:-100000}
rseed=${TDEFS_EXERCISER_RANDOM_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ref=$TDEFS_WORK/ref
mkdir -p "$ref"

exercise() {
	local what=$1
	shift
	log "$what: tdefs-exerciser $*"
	local rc=0
	"$TDEFS_EXERCISER" --ref-dir "$ref" "$@" || rc=$?
	if [[ $rc != 0 ]]; then
		fail "$what failed (exit $rc); reproduce on a fresh tdefs mount (adjust the paths): $TDEFS_EXERCISER $*"
	fi
}

tdefs_setup

exercise "default run" --dir "$TDEFS_MNT" --seed "$seed" --ops "$ops" --threads 4 --keep \
	--file "$TDEFS_MNT/default.dat" --ref "$ref/default.ref"
tdefs_remount
cmp "$TDEFS_MNT/default.dat" "$ref/default.ref" ||
	fail "after a remount the file of the default run differs from its reference (seed $seed)"
rm -f "$TDEFS_MNT/default.dat" "$ref/default.ref"
log "default run: contents identical after remount"

log "random seed $rseed (reproduce with TDEFS_EXERCISER_RANDOM_SEED=$rseed)"
exercise "random-seed run" --dir "$TDEFS_MNT" --seed "$rseed" --ops 15000

exercise "O_DIRECT run" --dir "$TDEFS_MNT" --seed $((seed + 1)) --ops 15000 --direct 30 \
	--reopen 300

tdefs_remount -o cache=none
exercise "cache=none run" --dir "$TDEFS_MNT" --seed $((seed + 2)) --ops 15000 --direct 15 \
	--threads 4 --keep --file "$TDEFS_MNT/nocache.dat" --ref "$ref/nocache.ref"
tdefs_remount
cmp "$TDEFS_MNT/nocache.dat" "$ref/nocache.ref" ||
	fail "after a remount the file of the cache=none run differs from its reference"

pass "default seed $seed ($ops ops), random seed $rseed, O_DIRECT and cache=none runs"
