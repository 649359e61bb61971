#!/bin/bash
# Concurrency against a model (tdefs-rel-conc, see concurrency.c): several processes write and
# read one file at overlapping and non-overlapping unaligned ranges, with truncates, fallocate
# (0, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE) and whole-record writes under and without OFD locks;
# after every phase the whole file must equal the model. Runs:
#   1. cache=auto, buffered I/O, 4 processes, TDEFS_REL_CONC_ROUNDS rounds (default 6)
#   2. cache=auto, O_DIRECT opens (every unaligned request reaches the daemon: its partial-block
#      read-modify-writes race with each other and with size changes), 6 processes
#   3. cache=none (no kernel caching at all), buffered opens, 4 processes
#   each file compared once more with the saved model after a remount (decrypted from disk)
#   4. ThreadSanitizer: the daemon built with -Db_sanitize=thread (in TDEFS_TSAN_BUILD, default
#      BUILD-tsan beside the build directory; built on first use, gcc, then clang), a short
#      O_DIRECT and buffered workload; any "WARNING: ThreadSanitizer" in its log fails the test.
#      TSan's deadlock detector is on: it follows at most 64 locks held by one thread, and the
#      daemon holds at most 33 (the size lock and 32 block-lock stripes). If TSan cannot map
#      its shadow memory on this kernel, the daemon is retried under setarch -R (no ASLR).
#      TDEFS_REL_TSAN=0 leaves this part out.
# TDEFS_REL_SEED fixes the seeds (printed on every run).
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount"
conc=$(rel_helper tdefs-rel-conc)
rounds=${TDEFS_REL_CONC_ROUNDS:-6}
rel_seed

# run_conc NAME DIR ARGS...: the helper on DIR/NAME; its model is kept in the work directory.
run_conc() {
	local name=$1 dir=$2 out rc=0
	shift 2
	# Bounded: a request that never returns (a deadlock in the daemon) must fail the test here,
	# with the daemon still alive for a look, not at the suite's time limit.
	out=$(timeout -k 5 180 "$conc" "$@" "$dir/$name" "$TDEFS_WORK/$name.model" 2>&1) || rc=$?
	if ((rc == 124 || rc == 137)); then
		echo "$out" | tail -n 20 >&2
		fail "$name: tdefs-rel-conc $* did not finish within 180 s: requests hang (daemon deadlock?)"
	fi
	if ((rc != 0)); then
		echo "$out" | head -n 80 >&2
		fail "$name: the model check failed (tdefs-rel-conc $* FILE MODEL; details above)"
	fi
	log "$name: $(tail -n 1 <<<"$out")"
}
# same_as_model NAME DIR: after a remount the file still equals the model.
same_as_model() {
	cmp "$TDEFS_WORK/$1.model" "$2/$1" >&2 || fail "$1: after a remount the file differs from the model"
}

# ---- 1-2. cache=auto ------------------------------------------------------------------------------
tdefs_setup
run_conc buffered "$TDEFS_MNT" -p 4 -r "$rounds" -n 400 -s "$REL_SEED"
run_conc direct "$TDEFS_MNT" -d -p 6 -r "$(((rounds + 1) / 2))" -n 300 -s "$((REL_SEED + 1))"
tdefs_remount
same_as_model buffered "$TDEFS_MNT"
same_as_model direct "$TDEFS_MNT"
rel_daemon_log_check

# ---- 3. cache=none --------------------------------------------------------------------------------
nocache_backing=$TDEFS_WORK/backing-nocache
nocache_mnt=$TDEFS_WORK/mnt-nocache
tdefs_init_backing "$TDEFS_WALLET" "$nocache_backing"
tdefs_mount "$TDEFS_WALLET" "$nocache_backing" "$nocache_mnt" -o cache=none
run_conc nocache "$nocache_mnt" -p 4 -r "$(((rounds + 1) / 2))" -n 400 -s "$((REL_SEED + 2))"
tdefs_umount "$nocache_mnt"
tdefs_mount "$TDEFS_WALLET" "$nocache_backing" "$nocache_mnt" -o cache=none
same_as_model nocache "$nocache_mnt"
rel_daemon_log_check "$nocache_mnt"
tdefs_umount "$nocache_mnt"

# ---- 4. ThreadSanitizer ---------------------------------------------------------------------------
if [[ ${TDEFS_REL_TSAN:-1} == 0 ]]; then
	pass "model held in $rounds buffered, O_DIRECT and cache=none rounds (TSan run left out: TDEFS_REL_TSAN=0)"
fi
tsan_build=${TDEFS_TSAN_BUILD:-${TDEFS_BUILD%/}-tsan}
build_tsan() {
	local cc
	# Reused when it was set up for this source tree (ninja rebuilds what changed).
	if [[ -f $tsan_build/build.ninja ]] &&
		grep -q "\"source\": *\"$TDEFS_SRC\"" "$tsan_build/meson-info/meson-info.json" 2>/dev/null &&
		ninja -C "$tsan_build" fs/tdefs >"$TDEFS_WORK/tsan-build.log" 2>&1; then
		return 0
	fi
	[[ ! -e $tsan_build || -d $tsan_build/meson-info ]] ||
		fail "$tsan_build exists and is not a meson build directory (set TDEFS_TSAN_BUILD)"
	for cc in gcc clang; do
		have "$cc" || continue
		rm -rf "$tsan_build"
		log "building the daemon with ThreadSanitizer ($cc) in $tsan_build"
		if CC=$cc meson setup "$tsan_build" "$TDEFS_SRC" -Db_sanitize=thread -Db_lundef=false \
			-Dbuildtype=debugoptimized -Dtests=false >"$TDEFS_WORK/tsan-build.log" 2>&1 &&
			ninja -C "$tsan_build" fs/tdefs >>"$TDEFS_WORK/tsan-build.log" 2>&1; then
			return 0
		fi
		log "the $cc ThreadSanitizer build failed: $(tail -n 3 "$TDEFS_WORK/tsan-build.log" | tr '\n' ' ')"
	done
	return 1
}
need_cmd meson
need_cmd ninja ninja-build
build_tsan || { tail -n 30 "$TDEFS_WORK/tsan-build.log" >&2; fail "cannot build the daemon with -Db_sanitize=thread (log above)"; }

ldd "$tsan_build/fs/tdefs" | grep libtsan >/dev/null || fail "$tsan_build/fs/tdefs is not linked with the ThreadSanitizer runtime"
export TSAN_OPTIONS="halt_on_error=0 detect_deadlocks=1 second_deadlock_stack=1 history_size=3 ${TSAN_OPTIONS:-}"
tsan_backing=$TDEFS_WORK/backing-tsan
tsan_mnt=$TDEFS_WORK/mnt-tsan
tdefs_init_backing "$TDEFS_WALLET" "$tsan_backing"
plain_bin=$TDEFS_BIN
TDEFS_BIN=$tsan_build/fs/tdefs
tsan_mode="TSan"
# A TSan runtime that cannot place its shadow memory dies at start with one of these messages
# (kernels with a large mmap_rnd_bits); then try without address space randomisation.
tsan_fatal='FATAL: ThreadSanitizer|unexpected memory mapping|ThreadSanitizer: CHECK failed'
"$TDEFS_BIN" --help >"$TDEFS_WORK/tsan-probe.log" 2>&1 || true
if grep -qE "$tsan_fatal" "$TDEFS_WORK/tsan-probe.log"; then
	log "TSan cannot start on this kernel ($(grep -m1 -E "$tsan_fatal" "$TDEFS_WORK/tsan-probe.log")); retrying under setarch -R"
	need_cmd setarch util-linux
	printf '#!/bin/sh\nexec setarch "$(uname -m)" -R "%s" "$@"\n' "$tsan_build/fs/tdefs" >"$TDEFS_WORK/tdefs-tsan-norandom"
	chmod +x "$TDEFS_WORK/tdefs-tsan-norandom"
	TDEFS_BIN=$TDEFS_WORK/tdefs-tsan-norandom
	tsan_mode="TSan under setarch -R"
	"$TDEFS_BIN" --help >"$TDEFS_WORK/tsan-probe.log" 2>&1 || true
	if grep -qE "$tsan_fatal" "$TDEFS_WORK/tsan-probe.log"; then
		cat "$TDEFS_WORK/tsan-probe.log" >&2
		fail "the ThreadSanitizer daemon cannot run on this kernel, not even under setarch -R (TDEFS_REL_TSAN=0 leaves the TSan run out)"
	fi
fi
tdefs_mount "$TDEFS_WALLET" "$tsan_backing" "$tsan_mnt"
TDEFS_BIN=$plain_bin
tsan_log=$(tdefs_daemon_log "$tsan_mnt")
run_conc tsan-direct "$tsan_mnt" -d -p 4 -r 2 -n 300 -s "$((REL_SEED + 3))"
run_conc tsan-buffered "$tsan_mnt" -p 4 -r 2 -n 300 -s "$((REL_SEED + 4))"
# Metadata paths too: create, rename, unlink and readdir from several processes.
meta_pids=()
for p in 1 2 3 4; do
	(
		for i in $(seq 1 30); do
			head -c $((i * 1000 + p)) /dev/zero >"$tsan_mnt/meta-$p-$i"
			mv "$tsan_mnt/meta-$p-$i" "$tsan_mnt/meta-$p-$i.renamed"
			ls "$tsan_mnt" >/dev/null
			((i % 3)) || rm -f "$tsan_mnt/meta-$p-$i.renamed"
		done
	) &
	meta_pids+=($!)
done
for p in "${meta_pids[@]}"; do
	wait "$p" || fail "the metadata workload on the TSan mount failed"
done
if grep -q 'WARNING: ThreadSanitizer' "$tsan_log"; then
	grep -c 'WARNING: ThreadSanitizer' "$tsan_log" >&2
	grep -A 40 -m 3 'WARNING: ThreadSanitizer' "$tsan_log" | head -n 120 >&2
	fail "ThreadSanitizer reports data races in the daemon ($tsan_log; first reports above)"
fi
if grep -qE 'ThreadSanitizer: CHECK failed|FATAL: ThreadSanitizer' "$tsan_log"; then
	head -n 20 "$tsan_log" >&2
	fail "the ThreadSanitizer runtime failed inside the daemon (above)"
fi
tdefs_umount "$tsan_mnt"
if grep -q 'WARNING: ThreadSanitizer' "$tsan_log"; then
	grep -A 40 -m 1 'WARNING: ThreadSanitizer' "$tsan_log" >&2
	fail "ThreadSanitizer reported a data race at unmount (above)"
fi
rel_daemon_log_check --all
pass "model held in $rounds buffered, O_DIRECT and cache=none rounds; $tsan_mode: no data race reported"
