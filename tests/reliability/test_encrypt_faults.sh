#!/usr/bin/env bash
# The conversion of an adopted directory (tderekey encrypt) killed at each of its fault points in
# turn (fault-injection build: TDEFS_FAULT_AT counts util/util.h's fault_point calls): after a
# copied chunk (encrypt:chunk-copied), after the copy's final sync (encrypt:copy-synced) and
# after the rename over the original (encrypt:renamed), for every file. Each run starts from the
# same plaintext directory, with a writer fdatasyncing records into plaintext files while the
# conversion runs. After the kill, seen unmounted: tdefs --check finds nothing damaged, and every
# file is either still plaintext (marker, every byte as before) or encrypted (no marker) — at
# encrypt:renamed the file in flight is encrypted, before it it is plaintext with its copy beside
# it. At the next mount the leftover copy is gone, every file reads back as its reference, every
# fsync'ed record is there, and the conversion resumes by itself from its record and finishes:
# no plaintext left on disk.
# Needs a build with -Dfault_injection=true: TDEFS_FAULT_BUILD, else TDEFS_BUILD if it is one,
# else build-fault/ or build-asan/ (tests/run-all.sh builds it) in the source tree.
# TDEFS_ENCRYPT_FAULT_STRIDE=N kills at every Nth fault point only (default 1: all of them).
. "$(dirname "$0")/lib-reliability.sh"
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
TDEFS_TEST_HELPER=$TDEFS_BUILD/tests/lib/tdefs-test-helper
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEFS_BIN" "$TDEKEY_BIN" "$tderekey" "$TDEFS_TEST_HELPER"
need_cmd getfattr attr
stride=${TDEFS_ENCRYPT_FAULT_STRIDE:-1}
log "fault-injection build: $TDEFS_BUILD"
TDEFS_WALLET=$TDEFS_WORK/wallet
TDEFS_BACKING=$TDEFS_WORK/backing
TDEFS_MNT=$TDEFS_WORK/mnt
pristine=$TDEFS_WORK/pristine
reference=$TDEFS_WORK/reference
marker="ENCRYPT-FAULT-PLAINTEXT-7a30"
files=(db/a db/b w0 w1 w2)
tdefs_make_wallet "$TDEFS_WALLET"
mkdir -p "$pristine/db" "$reference/db" "$TDEFS_MNT"

# a: three chunks and a short tail; b: one chunk with a hole; w0..w2: the writer's files.
make_file() { # name size
	{ yes "$marker" || true; } | head -c "$2" >"$pristine/$1"
}
make_file db/a $((2 * 1048576 + 700000 + 123))
make_file db/b 900001
fallocate -p -o 200000 -l 409600 "$pristine/db/b"
for i in 0 1 2; do make_file "w$i" 1048576; done
"$TDEFS_BIN" --init --adopt --wallet "$TDEFS_WALLET" "$pristine" >/dev/null || fail "tdefs --init --adopt failed"
for f in db/a db/b; do cp --sparse=always "$pristine/$f" "$reference/$f"; done

restore() {
	rm -rf "$TDEFS_BACKING"
	cp -a --sparse=always "$pristine" "$TDEFS_BACKING"
}
# The daemon killed itself: clear its dead mount and reap it.
reap_killed() {
	local pid=${tdefs__pid[$TDEFS_MNT]}
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && return 1
	fusermount3 -uz "$TDEFS_MNT" 2>/dev/null || umount -l "$TDEFS_MNT" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "tdefs__pid[$TDEFS_MNT]"
}
encrypt_state() {
	"$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"encrypt_state": "\([a-z]*\)".*/\1/p'
}
wait_encrypt_done() { # WHAT
	local state
	for _ in $(seq 1 600); do
		state=$(encrypt_state)
		[[ $state == running ]] || break
		sleep 0.1
	done
	[[ $state == done ]] || fail "$1: the conversion ended $state, not done"
}
is_plaintext() { getfattr --absolute-names -n trusted.tdefs.plaintext "$1" >/dev/null 2>&1; }
writer_pid=
stop_writer() {
	[[ -n $writer_pid ]] || return 0
	kill -KILL "$writer_pid" 2>/dev/null || true
	wait "$writer_pid" 2>/dev/null || true
	writer_pid=
}
on_exit stop_writer
verify_mount() { # WHAT
	local f
	for f in db/a db/b; do
		cmp -s "$reference/$f" "$TDEFS_MNT/$f" || fail "$1: $f does not read back as before"
	done
	"$TDEFS_TEST_HELPER" check "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" >"$TDEFS_WORK/check-records.out" ||
		fail "$1: fsync'ed records lost"
}

# The fault points a whole conversion passes, from a traced run without the writer.
restore
export TDEFS_FAULT_TRACE=1
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
"$tderekey" encrypt "$TDEFS_MNT" >/dev/null || fail "the traced conversion failed"
tdefs_umount "$TDEFS_MNT"
trace=$(tdefs_daemon_log)
points=$(sed -n 's/^fault point \([0-9]*\): encrypt:.*$/\1/p' "$trace")
[[ -n $points ]] || fail "the traced conversion passed no fault point: is $TDEFS_BUILD a -Dfault_injection=true build?"
log "a conversion of the ${#files[@]} files passes $(wc -w <<<"$points") fault points"

kills=0 plain_after=0 encrypted_after=0
declare -A hit=()
for point in $points; do
	((point % stride == 0)) || continue
	restore
	: >"$TDEFS_WORK/writer.log"
	export TDEFS_FAULT_AT=$point
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	unset TDEFS_FAULT_AT
	"$TDEFS_TEST_HELPER" writer "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" 2>/dev/null &
	writer_pid=$!
	sleep 0.2
	"$tderekey" encrypt "$TDEFS_MNT" --rate 4M --no-wait >/dev/null || fail "fault point $point: tderekey encrypt did not start"
	reap_killed || fail "fault point $point: the daemon was not killed there"
	stop_writer
	name=$(sed -n "s/^fault point $point: //p" "$(tdefs_daemon_log)")
	[[ $name == encrypt:* ]] || fail "fault point $point: the daemon died at '${name:-no fault point}', not at a conversion step"
	hit[$name]=$((${hit[$name]:-0} + 1))
	kills=$((kills + 1))
	what="killed at fault point $point ($name)"
	leftover=$(find "$TDEFS_BACKING" -maxdepth 1 -name '.tdefs.encrypt-*')
	copies=$(grep -c . <<<"$leftover" || true)
	if [[ $name == encrypt:renamed ]]; then
		((copies == 0)) || fail "$what: a copy is left beside the renamed file"
	else
		((copies == 1)) || fail "$what: $copies copies beside the file in flight, expected 1"
	fi
	"$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >"$TDEFS_WORK/check.out" ||
		fail "$what: tdefs --check finds problems: $(cat "$TDEFS_WORK/check.out")"
	# Each file whole, on one side: plaintext with its bytes, or encrypted (checked mounted).
	plain_now=0
	for f in "${files[@]}"; do
		if is_plaintext "$TDEFS_BACKING/$f"; then
			plain_now=$((plain_now + 1))
			[[ $f == w* ]] || cmp -s "$reference/$f" "$TDEFS_BACKING/$f" ||
				fail "$what: $f is marked plaintext but its bytes changed"
		else
			grep -q --binary-files=binary "$marker" "$TDEFS_BACKING/$f" &&
				fail "$what: $f has no plaintext marker but holds plaintext"
		fi
	done
	# The remount: the copy is removed, the bytes are there, the job resumes from its record.
	[[ -e $TDEFS_BACKING/.tdefs.encrypt.job ]] || fail "$what: the conversion's record is missing"
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	[[ -z $leftover || ! -e $leftover ]] || fail "$what: the leftover copy was kept"
	grep -q "the interrupted conversion to encrypted files of / goes on" "$(tdefs_daemon_log)" ||
		fail "$what: the conversion did not resume from its record"
	verify_mount "$what, remounted"
	wait_encrypt_done "$what"
	for f in "${files[@]}"; do
		! is_plaintext "$TDEFS_BACKING/$f" || fail "$what: $f is still plaintext after the resumed conversion"
	done
	verify_mount "$what, after the resumed conversion"
	tdefs_umount "$TDEFS_MNT"
	grep -rlq --binary-files=binary "$marker" "$TDEFS_BACKING" && fail "$what: plaintext left in the backing directory"
	[[ ! -e $TDEFS_BACKING/.tdefs.encrypt.job ]] || fail "$what: the finished conversion left its record"
	plain_after=$((plain_after + plain_now))
	encrypted_after=$((encrypted_after + ${#files[@]} - plain_now))
	log "$what: $plain_now files plaintext, $((${#files[@]} - plain_now)) encrypted; resumed, finished, $(cat "$TDEFS_WORK/check-records.out")"
done
((kills > 0)) || fail "no fault point was reached: the test did not test anything"
for name in encrypt:chunk-copied encrypt:copy-synced encrypt:renamed; do
	((stride > 1 || ${hit[$name]:-0} > 0)) || fail "no kill at $name"
done
summary=
for name in "${!hit[@]}"; do summary+="$name ${hit[$name]}; "; done
rel_daemon_log_check --all
pass "conversion killed at $kills fault points ($summary), each file whole on one side ($plain_after plaintext, $encrypted_after encrypted over all kills), every fsync'ed record kept, resumed from its record and finished each time"
