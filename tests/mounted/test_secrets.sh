#!/usr/bin/env bash
# Keys in the daemon's memory: core dumps are off, memory is locked, a file's data key is in
# memory (as the AES key schedule, whose first round keys are the key itself) only while the
# file is open, and is wiped once the last open of it is released. Keys never reach the log.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
tdefs_setup
pid=${tdefs__pid[$TDEFS_MNT]}

grep -Eq '^Max core file size +0 +0 ' "/proc/$pid/limits" ||
	fail "core dumps are not disabled: $(grep 'core file' "/proc/$pid/limits")"
locked_kb=$(awk '/^VmLck:/ {print $2}' "/proc/$pid/status")
if ldd "$TDEFS_BIN" | grep libasan >/dev/null; then
	# AddressSanitizer turns mlock and mlockall into no-ops (its shadow memory cannot be locked).
	log "AddressSanitizer build: memory locking is not in effect, not checked"
else
	((locked_kb > 0)) || fail "the daemon locks no memory (VmLck $locked_kb kB)"
fi

head -c 100000 /dev/urandom >"$TDEFS_MNT/secret-file"
sync
dek=$("$TDEFS_TEST_HELPER" dek "$TDEFS_WALLET" "$TDEFS_BACKING/secret-file")
data_key=${dek:0:64} # XTS key 1: AES-256 round keys 0 and 1 are these 32 bytes

# While the file is open its key schedule is in memory (this proves the scan can see it).
exec 7<"$TDEFS_MNT/secret-file"
head -c 10 <&7 >/dev/null
"$TDEFS_TEST_HELPER" find-in-memory "$pid" "$data_key" ||
	fail "the open file's key is not found in the daemon's memory: the scan cannot see keys"
exec 7<&-
# The release reaches the daemon after close(); give it a moment.
for _ in $(seq 1 50); do
	"$TDEFS_TEST_HELPER" find-in-memory "$pid" "$data_key" || break
	sleep 0.1
done
"$TDEFS_TEST_HELPER" find-in-memory "$pid" "$data_key" && fail "the key of a closed file is still in the daemon's memory"

# Neither the key nor the master key's wrap of it ever appears in the log.
! grep -q "${dek:0:16}" "$(tdefs_daemon_log)" || fail "a key appears in the daemon log"
pass "core dumps off, ${locked_kb} kB locked, a released file's key wiped from memory"
