#!/usr/bin/env bash
# One damaged header copy during a data rekey (a latent sector error, a flipped bit, or someone
# with write access to the backing storage). The daemon is killed at every fault point of a data
# rekey in turn (fault-injection build: TDEFS_FAULT_AT counts util/util.h's fault_point calls),
# which lands on each of "header-update:first-copy-synced", "header-update:second-copy-synced",
# "rekey:hot-zone-recorded" and "rekey:chunk-synced" for the begin, every chunk and the finish of
# each file. Then, separately for copy 0 and for copy 1, one bit of that copy is flipped in every
# backing file, and the directory is mounted again (the resume pass recovers and finishes the
# rekey): every byte, all fsync'ed before the rekey, must read back, before and after another
# remount. Finally two valid copies that no crash leaves side by side (spliced from two rekeys of
# the file) must be refused with EIO, logged with the file's name, reported by tdefs --check, and
# left as they are. Before every rekey step wrote both copies, recovery fell back to a copy one
# chunk behind and re-encrypted a chunk already under the new key with the old one.
#
# Needs a build with -Dfault_injection=true: TDEFS_FAULT_BUILD, else TDEFS_BUILD if it is one,
# else build-fault/ or build-asan/ (tests/run-all.sh builds it) in the source tree.
# TDEFS_SEC_REKEY_LOSS_STRIDE=N kills at every Nth fault point only (default 1: all of them).
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"

is_fault_build() { [[ -x $1/fs/tdefs ]] && grep -q TDEFS_FAULT_AT "$1/fs/tdefs"; }
fault_build=
if [[ -n ${TDEFS_FAULT_BUILD:-} ]]; then
	is_fault_build "$TDEFS_FAULT_BUILD" ||
		fail "TDEFS_FAULT_BUILD=$TDEFS_FAULT_BUILD has no fs/tdefs built with -Dfault_injection=true"
	fault_build=$TDEFS_FAULT_BUILD
else
	for candidate in "$TDEFS_BUILD" "$TDEFS_SRC/build-fault" "$TDEFS_SRC/build-asan"; do
		if is_fault_build "$candidate"; then
			fault_build=$candidate
			break
		fi
	done
fi
[[ -n $fault_build ]] || skip "no build with fault injection (TDEFS_FAULT_BUILD unset; $TDEFS_BUILD, $TDEFS_SRC/build-fault and $TDEFS_SRC/build-asan are not one): meson setup build-fault -Dfault_injection=true && ninja -C build-fault"
TDEFS_BUILD=$(cd "$fault_build" && pwd)
TDEFS_BIN=$TDEFS_BUILD/fs/tdefs
TDEKEY_BIN=$TDEFS_BUILD/tools/tdekey/tdekey
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
header_tool=$TDEFS_BUILD/tests/lib/tdefs-test-helper
need_build "$TDEFS_BIN" "$TDEKEY_BIN" "$tderekey" "$header_tool"
stride=${TDEFS_SEC_REKEY_LOSS_STRIDE:-1}
log "fault-injection build: $TDEFS_BUILD"
tdefs_setup

# a: three chunks (220 blocks each) with a hole and a 5-byte tail; b: a 13-byte file.
reference=$TDEFS_WORK/reference
mkdir -p "$reference" "$TDEFS_MNT/data"
head -c $((500 * 4096 + 5)) /dev/urandom >"$reference/a"
fallocate -p -o $((230 * 4096)) -l $((20 * 4096)) "$reference/a"
head -c 13 /dev/urandom >"$reference/b"
for f in a b; do
	cp --sparse=always "$reference/$f" "$TDEFS_MNT/data/$f"
done
sync "$TDEFS_MNT"/data/*
tdefs_umount "$TDEFS_MNT"
pristine=$TDEFS_WORK/pristine
cp -a --sparse=always "$TDEFS_BACKING" "$pristine"

restore() { # SOURCE DEST
	rm -rf "$2"
	cp -a --sparse=always "$1" "$2"
}
# The daemon killed itself: clear its dead mount and reap it.
reap_killed() { # MNT
	local pid=${tdefs__pid[$1]}
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && return 1
	fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "tdefs__pid[$1]"
}
wait_idle() { # MNT
	local state
	for _ in $(seq 1 600); do
		state=$("$tderekey" status "$1" --json | sed -n 's/.*"data_state": "\([a-z]*\)".*/\1/p')
		[[ $state != running ]] && return 0
		sleep 0.1
	done
	fail "the data rekey on $1 did not end"
}
flip_bit() { # FILE OFFSET
	local byte
	byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $((byte ^ 0x10)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# Every file reads back as its reference, or (only where expected) is refused with EIO, logged
# with its name and reported by tdefs --check. Prints the names refused.
verify_files() { # MNT BACKING CHECK_OUTPUT WHAT
	local f out
	for f in a b; do
		if out=$(cmp "$reference/$f" "$1/data/$f" 2>&1); then
			continue
		fi
		grep -q "Input/output error" <<<"$out" ||
			fail "$4: data/$f reads back wrong, silently: $out"
		grep -q "$2/data/$f: " "$(tdefs_daemon_log "$1")" ||
			fail "$4: data/$f refused with EIO but no log line names it"
		grep -q "^DAMAGED  /data/$f: " "$3" ||
			fail "$4: data/$f refused by the daemon, but tdefs --check does not report it: $(cat "$3")"
		echo "$f"
	done
}

# The fault points a whole data rekey passes, from a traced run.
restore "$pristine" "$TDEFS_BACKING"
export TDEFS_FAULT_TRACE=1
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
"$tderekey" data "$TDEFS_MNT" >/dev/null || fail "the traced data rekey failed"
tdefs_umount "$TDEFS_MNT"
trace=$(tdefs_daemon_log)
points=$(sed -n 's/^fault point \([0-9]*\): \(rekey:.*\|header-update:.*\)$/\1/p' "$trace")
[[ -n $points ]] || fail "the traced rekey passed no fault point: is $TDEFS_BUILD a -Dfault_injection=true build?"
log "a data rekey of the two files passes $(wc -w <<<"$points") rekey fault points"

kills=0 caught=0
declare -A hit=()
mkdir -p "$TDEFS_WORK/mnt2"
for point in $points; do
	((point % stride == 0)) || continue
	restore "$pristine" "$TDEFS_BACKING"
	export TDEFS_FAULT_AT=$point
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	unset TDEFS_FAULT_AT
	"$tderekey" data "$TDEFS_MNT" --no-wait >/dev/null 2>&1 || true
	# The rekey workers run in parallel, so a run may pass fewer fault points than the traced
	# one: a point past its end is not reached, the mount finishes, and the next point is tried.
	if ! reap_killed "$TDEFS_MNT"; then
		log "fault point $point not reached in this run (worker order differs from the traced run)"
		tdefs_umount "$TDEFS_MNT"
		continue
	fi
	name=$(sed -n "s/^fault point $point: //p" "$(tdefs_daemon_log)")
	[[ -n $name ]] || fail "the daemon died before fault point $point"
	hit[$name]=1
	kills=$((kills + 1))
	killed=$TDEFS_WORK/killed-$point
	restore "$TDEFS_BACKING" "$killed"
	for copy in 0 1; do
		what="killed at fault point $point ($name), bit flipped in header copy $copy"
		damaged=$TDEFS_WORK/damaged
		restore "$killed" "$damaged"
		for f in "$damaged"/data/*; do
			flip_bit "$f" $((copy * 2048 + 100))
		done
		"$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$damaged" >"$TDEFS_WORK/check.out" || true
		in_rekey=$(sed -n 's/.* \([0-9]*\) in the middle of a data rekey.*/\1/p' "$TDEFS_WORK/check.out")
		caught=$((caught + in_rekey))
		tdefs_mount "$TDEFS_WALLET" "$damaged" "$TDEFS_WORK/mnt2"
		wait_idle "$TDEFS_WORK/mnt2"
		refused=$(verify_files "$TDEFS_WORK/mnt2" "$damaged" "$TDEFS_WORK/check.out" "$what")
		# One lost copy is always decidable: nothing may be refused, let alone misread.
		[[ -z $refused ]] || fail "$what: refused $refused, though one valid copy decides it"
		tdefs_umount "$TDEFS_WORK/mnt2"
		tdefs_mount "$TDEFS_WALLET" "$damaged" "$TDEFS_WORK/mnt2"
		refused=$(verify_files "$TDEFS_WORK/mnt2" "$damaged" "$TDEFS_WORK/check.out" "$what, after a remount")
		[[ -z $refused ]] || fail "$what, after a remount: refused $refused"
		[[ $("$tderekey" status "$TDEFS_WORK/mnt2" --json | sed -n 's/.*"rekey_interrupted": \([0-9]*\).*/\1/p') == 0 ]] ||
			fail "$what: the resume pass left files with two keys"
		tdefs_umount "$TDEFS_WORK/mnt2"
	done
	log "fault point $point ($name): either copy damaged, every byte reads back"
done
unset TDEFS_FAULT_TRACE
for name in rekey:hot-zone-recorded rekey:chunk-synced header-update:first-copy-synced header-update:second-copy-synced; do
	[[ -n ${hit[$name]:-} ]] || fail "no kill landed on fault point $name"
done
((caught > 0)) || fail "no kill left a file in the middle of its rekey: the test proves nothing"

# Two valid copies of data/a that no crash leaves side by side: the newest copy of a later step
# of another rekey run (other DEKs, higher sequence) spliced over the newest copy of an early
# step. The daemon must refuse the file rather than pick either; --check must say so.
newest() { # FILE: "SEQUENCE SLOT WATERMARK" of the copy with the higher sequence, if in a rekey
	"$header_tool" describe "$1" |
		sed -n 's/^copy \([01]\): valid, sequence \([0-9]*\), file ID [0-9a-f]*\(, rekey watermark \([0-9]*\)\)\{0,1\}.*/\2 \1 \4/p' |
		sort -n | tail -n 1
}
# early: a kill state with data/a in its rekey at the lowest sequence; late: the one with the
# highest watermark (so its copy is the newest once spliced, and names blocks under its own DEK).
early= late= early_sequence= late_watermark=-1
for killed in "$TDEFS_WORK"/killed-*; do
	read -r sequence slot watermark <<<"$(newest "$killed/data/a")"
	[[ -n ${watermark:-} ]] || continue
	if [[ -z $early || $sequence -lt $early_sequence ]]; then
		early=$killed early_sequence=$sequence
	fi
	if ((watermark > late_watermark)); then
		late=$killed late_watermark=$watermark late_slot=$slot
	fi
done
[[ -n $early && -n $late && $early != "$late" && $late_watermark -gt 0 ]] ||
	fail "no two kill states of data/a to splice (stride $stride too large?)"
spliced=$TDEFS_WORK/spliced
restore "$early" "$spliced"
"$header_tool" copy-slot "$late/data/a" "$spliced/data/a" "$late_slot" ||
	fail "cannot splice the header copy"
"$header_tool" describe "$spliced/data/a" >&2
"$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$spliced" >"$TDEFS_WORK/check.out" &&
	fail "tdefs --check finds nothing wrong with spliced copies: $(cat "$TDEFS_WORK/check.out")"
grep -q "^DAMAGED  /data/a: data rekey state cannot be decided" "$TDEFS_WORK/check.out" ||
	fail "tdefs --check does not report the undecidable rekey state: $(cat "$TDEFS_WORK/check.out")"
before=$(head -c 4096 "$spliced/data/a" | sha256sum)
tdefs_mount "$TDEFS_WALLET" "$spliced" "$TDEFS_WORK/mnt2"
wait_idle "$TDEFS_WORK/mnt2"
refused=$(verify_files "$TDEFS_WORK/mnt2" "$spliced" "$TDEFS_WORK/check.out" "spliced copies")
[[ $refused == a ]] || fail "spliced header copies of data/a were not refused (refused: '$refused')"
grep -q "$spliced/data/a: data rekey state cannot be decided" "$(tdefs_daemon_log "$TDEFS_WORK/mnt2")" ||
	fail "no log line says why data/a is refused"
# No header update (a rewrap writes both copies) may paper over it either.
"$tderekey" rewrap "$TDEFS_WORK/mnt2" >/dev/null 2>&1 || true
tdefs_umount "$TDEFS_WORK/mnt2"
[[ $(head -c 4096 "$spliced/data/a" | sha256sum) == "$before" ]] ||
	fail "the header of the refused file was rewritten"
pass "$kills kills at rekey fault points, each header copy damaged in turn: every byte read back ($caught files caught mid-rekey); spliced copies refused with EIO, logged and reported"
