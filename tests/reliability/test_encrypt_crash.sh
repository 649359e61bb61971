#!/usr/bin/env bash
# Crash safety of the conversion of an adopted directory (tderekey encrypt): rounds (default 5,
# TDEFS_ENCRYPT_CRASH_ROUNDS=30 for the long run) SIGKILL the daemon at a random moment while a
# writer fdatasyncs numbered records into plaintext files that are being converted. After each
# kill, tdefs --check sees no damaged file; at the next mount the interrupted conversion goes on
# by itself (its job record), every fsync'ed record reads back, and every other file equals its
# reference. At the end every file is encrypted and no plaintext is left on disk. A forged or
# damaged job record, and a planted file under the copy's reserved name, never change a byte
# that is served.
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount"
need_build "$TDEFS_TEST_HELPER"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
rounds=${TDEFS_ENCRYPT_CRASH_ROUNDS:-5}
rel_seed
TDEFS_WALLET=$TDEFS_WORK/wallet
TDEFS_BACKING=$TDEFS_WORK/backing
TDEFS_MNT=$TDEFS_WORK/mnt
reference=$TDEFS_WORK/reference
marker="ENCRYPT-CRASH-PLAINTEXT-5d21"
tdefs_make_wallet "$TDEFS_WALLET"
mkdir -p "$TDEFS_BACKING/db" "$reference/db" "$TDEFS_MNT"

# Plaintext files with the marker in every block, partial last blocks, one with a hole; the
# writer's files are plaintext too, so that its records land in files being converted.
make_file() { # name size
	{ yes "$marker" || true; } | head -c "$2" >"$TDEFS_BACKING/$1"
	cp --sparse=always "$TDEFS_BACKING/$1" "$reference/$1"
}
for i in $(seq 1 $((rounds + 3))); do
	make_file "db/f$i" $((4194304 + i * 4099))
done
make_file db/holey 3000001
fallocate -p -o 1000000 -l 1048576 "$TDEFS_BACKING/db/holey"
cp --sparse=always "$TDEFS_BACKING/db/holey" "$reference/db/holey"
for i in 0 1 2; do
	make_file "w$i" 4194304
done
"$TDEFS_BIN" --init --adopt --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >/dev/null ||
	fail "tdefs --init --adopt failed"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"

verify_all() { # when
	local f
	for f in "$reference"/db/*; do
		cmp -s "$f" "$TDEFS_MNT/db/$(basename "$f")" || fail "$1: db/$(basename "$f") differs from its reference"
	done
	"$TDEFS_TEST_HELPER" check "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" >/dev/null ||
		fail "$1: fsync'ed records lost"
}
encrypt_state() {
	"$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"encrypt_state": "\([a-z]*\)".*/\1/p'
}

caught=0
for round in $(seq 1 "$rounds"); do
	"$TDEFS_TEST_HELPER" writer "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" 2>/dev/null &
	writer=$!
	# The first round starts the job; later ones find it resumed from its record.
	state=$(encrypt_state)
	if ((round == 1)); then
		"$tderekey" encrypt "$TDEFS_MNT" --rate 8M --no-wait >/dev/null ||
			fail "round 1: tderekey encrypt did not start"
	elif [[ $state != running && -e $TDEFS_BACKING/.tdefs.encrypt.job ]]; then
		fail "round $round: the conversion did not resume by itself (state $state)"
	fi
	rel_rand_ms 100 1500
	rel_sleep_ms "$REL_MS"
	rel_kill_daemon
	kill -KILL "$writer" 2>/dev/null || true
	wait "$writer" 2>/dev/null || true
	copies=$(find "$TDEFS_BACKING" -maxdepth 1 -name '.tdefs.encrypt-*' | wc -l)
	caught=$((caught + copies))
	# What the crash left, seen unmounted: plaintext or encrypted, nothing damaged.
	"$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >"$TDEFS_WORK/check.out" ||
		fail "round $round: tdefs --check finds problems: $(cat "$TDEFS_WORK/check.out")"
	rel_remount_after_kill
	verify_all "round $round (killed after $REL_MS ms)"
	log "round $round: killed after $REL_MS ms with $copies copy in flight; every fsync'ed record and file intact"
done
((rounds < 3 || caught > 0)) || fail "no kill caught a file in the middle of its conversion: the test proves nothing"

# To the end, then: every file encrypted, the same bytes, no plaintext on disk.
for _ in $(seq 1 600); do
	state=$(encrypt_state)
	[[ $state == running ]] || break
	sleep 0.2
done
[[ $state == done ]] || "$tderekey" encrypt "$TDEFS_MNT" >"$TDEFS_WORK/final.out" ||
	fail "the final conversion failed: $(cat "$TDEFS_WORK/final.out")"
"$tderekey" status "$TDEFS_MNT" | grep -q "no plaintext file left" || fail "plaintext files remain"
verify_all "after the conversion"
tdefs_umount "$TDEFS_MNT"
grep -rl --binary-files=binary "$marker" "$TDEFS_BACKING" && fail "plaintext left in the backing directory"
[[ ! -e $TDEFS_BACKING/.tdefs.encrypt.job ]] || fail "the finished conversion left its record"

# A forged record (another path, a damaged one, one others could write) and a planted copy.
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
"$TDEFS_TEST_HELPER" writer "$TDEFS_MNT" 3 "$TDEFS_WORK/writer.log" 2>/dev/null &
writer=$!
sleep 0.5
rel_kill_daemon
kill -KILL "$writer" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
printf 'tdefs-encrypt-job 1\nrate 0\npath ../..\n' >"$TDEFS_BACKING/.tdefs.encrypt.job"
chmod 0600 "$TDEFS_BACKING/.tdefs.encrypt.job"
head -c 100000 "$reference/db/f1" >"$TDEFS_BACKING/.tdefs.encrypt-0000000000000000"
rel_remount_after_kill
verify_all "after a forged record"
grep -q "cannot resume the conversion" "$(tdefs_daemon_log)" || fail "the forged record was not refused"
[[ ! -e $TDEFS_BACKING/.tdefs.encrypt-0000000000000000 ]] || fail "the planted copy was kept"
rel_kill_daemon
head -c 37 /dev/urandom >"$TDEFS_BACKING/.tdefs.encrypt.job"
chmod 0600 "$TDEFS_BACKING/.tdefs.encrypt.job"
rel_remount_after_kill
grep -q "is damaged: the conversion" "$(tdefs_daemon_log)" || fail "the damaged record was not reported"
verify_all "after a damaged record"
rel_kill_daemon
printf 'tdefs-encrypt-job 1\nrate 0\npath \n' >"$TDEFS_BACKING/.tdefs.encrypt.job"
chmod 0666 "$TDEFS_BACKING/.tdefs.encrypt.job"
rel_remount_after_kill
grep -q "not the daemon's own record" "$(tdefs_daemon_log)" || fail "a record others could write was used"
verify_all "after a record others could write"
tdefs_umount "$TDEFS_MNT"
rel_daemon_log_check --all
pass "$rounds kills during the conversion ($caught copies in flight): no fsync'ed byte lost, every file intact and finally encrypted; forged records refused"
