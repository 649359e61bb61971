#!/bin/bash
# Small O_APPEND writes (xfstests generic/069's pattern), in each cache mode: one writer and
# four concurrent writers append numbered 100-byte records, then tdefs-append-writer checks
# that the file holds every record exactly once, whole (no bytes of another record inside),
# each writer's in its own order, and that the size is exact; the same after a remount (what
# the backing files hold), and an independent decryption agrees. Small records of 16 bytes
# cross block boundaries at every fourth block, where a short last block is rewritten at a
# new length. The same writers run on the backing filesystem for the log's figures; time is
# printed, never asserted (docs/PERFORMANCE.md, "Small appends").
. "$(dirname "$0")/lib.sh"

is_plain && skip "needs the daemon"
APPEND=$TDEFS_BUILD/tests/mounted/tdefs-append-writer
need_build "$APPEND"

tdefs_setup
PLAIN=$TDEFS_WORK/plain
mkdir -p "$PLAIN"

# run_case WHAT DIR PROCS RECORDS SIZE: write, then check; prints the seconds.
run_case() {
	local what=$1 dir=$2 procs=$3 records=$4 size=$5 seconds
	rm -f "$dir/append"
	seconds=$("$APPEND" write "$dir/append" "$procs" "$records" "$size") ||
		fail "$what: the writers failed"
	"$APPEND" check "$dir/append" "$procs" "$records" "$size" ||
		fail "$what: $procs x $records appends of $size bytes: records lost, torn or interleaved"
	echo "$seconds"
}

for mode in auto writethrough none; do
	tdefs_remount -o "cache=$mode"
	for shape in "1 20000 100" "4 5000 100" "4 4000 16"; do
		read -r procs records size <<<"$shape"
		what="cache=$mode, $procs x $records x $size bytes"
		mount_s=$(run_case "$what" "$TDEFS_MNT" "$procs" "$records" "$size")
		plain_s=$(run_case "backing, $procs x $records x $size bytes" "$PLAIN" "$procs" \
			"$records" "$size")
		cp "$PLAIN/append" "$TDEFS_WORK/last.ref"
		log "$what: ${mount_s}s on the mount, ${plain_s}s on the backing filesystem"
	done
	# The last case once more from the backing file: after a remount, and decrypted alone.
	tdefs_remount
	"$APPEND" check "$TDEFS_MNT/append" 4 4000 16 ||
		fail "cache=$mode: the appended records differ after a remount"
	"$APPEND" check "$TDEFS_WORK/last.ref" 4 4000 16 || fail "the backing filesystem's own run"
	cat "$TDEFS_MNT/append" >"$TDEFS_WORK/view"
	"$TDEFS_TEST_HELPER" verify "$TDEFS_WALLET" "$TDEFS_BACKING/append" "$TDEFS_WORK/view" \
		>/dev/null || fail "cache=$mode: the backing file does not decrypt to what the mount reads"
done

pass "concurrent O_APPEND records intact in cache=auto, writethrough and none"
