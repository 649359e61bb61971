#!/usr/bin/env bash
# Crash safety of the online data rekey: 50 rounds (each with its own seed) kill the daemon with
# SIGKILL at a random moment of a data rekey while a writer fsyncs records, on files with holes
# and partial last blocks; after a lazy unmount and a remount (which recovers and finishes the
# interrupted files), every fsync'ed record and every reference file reads back exactly. Then
# the rekey runs to the end, and a forged watermark is refused rather than used.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
rounds=${TDEFS_REKEY_CRASH_ROUNDS:-50}
tdefs_setup

reference=$TDEFS_WORK/reference
mkdir -p "$reference"
# Holes, partial last blocks (including 1..15-byte tails), a file that is mostly hole.
make_file() { # name size hole_at hole_length
	head -c "$2" /dev/urandom >"$reference/$1"
	[[ $4 -gt 0 ]] && fallocate -p -o "$3" -l "$4" "$reference/$1"
	cp --sparse=always "$reference/$1" "$TDEFS_MNT/$1"
}
make_file a 3000007 500000 1048576
make_file b 1048576 0 0
make_file c 2621443 4096 2097152
make_file d 700001 100000 8192
make_file e 13 0 0
truncate -s 6M "$reference/f"
printf 'tail' >>"$reference/f"
cp --sparse=always "$reference/f" "$TDEFS_MNT/f"
sync

verify_all() { # round description
	for f in "$reference"/*; do
		cmp -s "$f" "$TDEFS_MNT/$(basename "$f")" || fail "$1: $(basename "$f") differs from its reference"
	done
	"$TDEFS_TEST_HELPER" check "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" >/dev/null || fail "$1: fsync'ed records lost"
	damaged=$("$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"damaged": \([0-9]*\).*/\1/p')
	[[ $damaged == 0 ]] || fail "$1: $damaged damaged headers"
}
wait_idle() {
	for _ in $(seq 1 300); do
		state=$("$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"data_state": "\([a-z]*\)".*/\1/p')
		[[ $state != running ]] && return 0
		sleep 0.1
	done
	fail "the data rekey did not end"
}
daemon_pid() { echo "${tdefs__pid[$TDEFS_MNT]}"; }

interrupted_total=0
for round in $(seq 1 "$rounds"); do
	seed=$((round * 104729 + ${TDEFS_CRASH_SEED:-3}))
	RANDOM=$seed
	wait_idle
	"$TDEFS_TEST_HELPER" writer "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" 2>/dev/null &
	writer=$!
	"$tderekey" data "$TDEFS_MNT" --rate 24M --no-wait >/dev/null
	delay_ms=$((20 + RANDOM % 600))
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	kill -KILL "$(daemon_pid)"
	wait "$writer" 2>/dev/null || true
	fusermount3 -uz "$TDEFS_MNT" 2>/dev/null || umount -l "$TDEFS_MNT" 2>/dev/null || true
	wait "$(daemon_pid)" 2>/dev/null || true
	unset "tdefs__pid[$TDEFS_MNT]"
	# What the crash left, seen without mounting: files with two keys, and nothing damaged.
	"$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >"$TDEFS_WORK/check.out" ||
		fail "round $round: tdefs --check finds problems: $(cat "$TDEFS_WORK/check.out")"
	in_progress=$(sed -n 's/.* \([0-9]*\) in the middle of a data rekey.*/\1/p' "$TDEFS_WORK/check.out")
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	interrupted_total=$((interrupted_total + in_progress))
	verify_all "round $round (seed $seed, kill after ${delay_ms} ms)"
	log "round $round: killed after ${delay_ms} ms, $in_progress files caught mid-rekey; all data intact"
done
((rounds < 10 || interrupted_total > 0)) || fail "no round caught a file in the middle of its rekey: the test proves nothing"

wait_idle
"$tderekey" data "$TDEFS_MNT" >"$TDEFS_WORK/final.out" || fail "final data rekey failed: $(cat "$TDEFS_WORK/final.out")"
verify_all "after the final rekey"
[[ $("$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"rekey_interrupted": \([0-9]*\).*/\1/p') == 0 ]] ||
	fail "files still carry two keys after the rekey finished"

# A forged watermark (checksum recomputed) is refused by the header's authentication.
tdefs_umount "$TDEFS_MNT"
"$TDEFS_TEST_HELPER" forge-watermark "$TDEFS_BACKING/b" 100 || fail "could not forge the header"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
out=$(cat "$TDEFS_MNT/b" 2>&1 >/dev/null) && fail "a forged rekey watermark was accepted"
grep -q "Input/output error" <<<"$out" || fail "forged watermark: expected EIO, got: $out"
grep -q "b: header fails authentication" "$(tdefs_daemon_log)" || fail "no log line for the forged header"
cmp -s "$reference/a" "$TDEFS_MNT/a" || fail "a file next to the forged one changed"
recovered=$(cat "$TDEFS_WORK"/tdefs-*.log | grep -c "data rekey was interrupted in a chunk" || true)
pass "$rounds kills during data rekey ($interrupted_total files caught mid-rekey, $recovered hot zones recovered): no fsync'ed byte lost; forged watermark refused"
