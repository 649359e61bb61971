#!/usr/bin/env bash
# Crash safety of the rewrap: 20 rounds, each with its own seed, kill the daemon with SIGKILL at
# a random moment of a rewrap while a writer fsyncs records; after a lazy unmount and a remount,
# every fsync'ed record reads back and every header is valid. Then the same with the tool
# killed instead of the daemon: the job belongs to the daemon and finishes anyway.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
rounds=${TDEFS_CRASH_ROUNDS:-20}
tdefs_setup
for i in $(seq 1 400); do
	head -c $((i * 37)) /dev/urandom >"$TDEFS_MNT/data-$i"
done
( cd "$TDEFS_MNT" && sha256sum data-* ) >"$TDEFS_WORK/data.sha256"

daemon_pid() { pgrep -f -- "--wallet $TDEFS_WALLET -f .*$TDEFS_BACKING $TDEFS_MNT" | head -n 1; }

for round in $(seq 1 "$rounds"); do
	seed=$((round * 7919 + ${TDEFS_CRASH_SEED:-1}))
	RANDOM=$seed
	"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag "round-$round" >/dev/null
	"$TDEFS_TEST_HELPER" writer "$TDEFS_MNT" 4 "$TDEFS_WORK/writer.log" 2>/dev/null &
	writer=$!
	"$tderekey" rewrap "$TDEFS_MNT" --rate 400 --no-wait >/dev/null 2>&1 || true
	delay_ms=$((50 + RANDOM % 900))
	sleep "$(printf '0.%03d' "$delay_ms")"
	pid=$(daemon_pid)
	[[ -n $pid ]] || fail "round $round: daemon not found"
	kill -KILL "$pid"
	wait "$writer" 2>/dev/null || true
	fusermount3 -uz "$TDEFS_MNT" 2>/dev/null || umount -l "$TDEFS_MNT" 2>/dev/null || true
	wait 2>/dev/null || true
	unset "tdefs__pid[$TDEFS_MNT]"
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	"$TDEFS_TEST_HELPER" check "$TDEFS_MNT" 4 "$TDEFS_WORK/writer.log" >/dev/null ||
		fail "round $round (seed $seed, kill after ${delay_ms} ms): fsync'ed data lost"
	( cd "$TDEFS_MNT" && sha256sum --quiet -c "$TDEFS_WORK/data.sha256" ) ||
		fail "round $round (seed $seed): file contents changed"
	damaged=$("$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"damaged": \([0-9]*\).*/\1/p')
	[[ $damaged == 0 ]] || fail "round $round (seed $seed): $damaged damaged headers"
	log "round $round: killed after ${delay_ms} ms; data and headers intact"
done

# Finish the rewrap; every header ends under the active key.
"$tderekey" rewrap "$TDEFS_MNT" >/dev/null || fail "final rewrap failed"
keys=$("$tderekey" status "$TDEFS_MNT" --json | grep -o '"files_per_key": {[^}]*}')
[[ $(grep -oE '"[0-9a-f]{32}": ' <<<"$keys" | wc -l) == 1 ]] || fail "headers still under several keys: $keys"

# Killing the tool does not stop or damage the daemon's job.
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag tool-kill >/dev/null
"$tderekey" rewrap "$TDEFS_MNT" --rate 300 >/dev/null 2>&1 &
rewrapper=$!
sleep 0.5
kill -KILL "$rewrapper"
wait "$rewrapper" 2>/dev/null || true
for _ in $(seq 1 100); do
	state=$("$tderekey" status "$TDEFS_MNT" --json | sed -n 's/.*"rewrap_state": "\([a-z]*\)".*/\1/p')
	[[ $state == running ]] || break
	sleep 0.2
done
[[ $state == done ]] || fail "after the tool was killed the job ended as $state"
( cd "$TDEFS_MNT" && sha256sum --quiet -c "$TDEFS_WORK/data.sha256" ) || fail "contents changed"
pass "$rounds daemon kills during rewrap and a tool kill: no fsync'ed byte lost, no damaged header"
