#!/usr/bin/env bash
# Walking the backing tree (docs/SECURITY.md, "Walking the backing tree"). Root's passes over a
# backing directory (the rewrap, the data rekey, the resume pass at mount, the key census of
# tderekey status and tdekey keys --usage, tdefs --check) must never open anything
# outside the tree, nor a device, nor hang on a FIFO, while an unprivileged user renames the
# names they own. Release 0.1.0 walked by path (nftw, lstat, then open by path again); a user
# swapping a directory for a symlink with renameat2(RENAME_EXCHANGE) between the two made the
# data rekey open a block device read-write and write a tdefs header over its first 4 KiB.
#
# uid 65534 owns MNT/attack and, through the mount, swaps as fast as it can (tdefs-rename-racer):
#   dI <-> lI   a directory holding files "victim" and "device" <-> a symlink to OUTSIDE, a
#               root-only directory beside the backing one holding "victim" (a copy of a
#               tdefs file of this very wallet, copy 0 damaged: what a rewrap, a rekey or a
#               repair would write) and "device" (a block device node of a loop device over a
#               sentinel image)
#   fI <-> sI   a regular file <-> a symlink to OUTSIDE/victim
#   gI <-> tI   a regular file <-> a symlink to OUTSIDE/device
#   hI <-> pI   a regular file <-> a FIFO (an open without O_NONBLOCK hangs on it)
# while root runs, each for TDEFS_SEC_RACE_SECONDS (default 30) of swapping: key rotations with
# `tderekey rewrap`, `tderekey data`, the census commands; data rekeys cut short by an unmount
# and taken up again by the resume pass of the next mount (the pass that runs at every mount);
# then, unmounted and the backing root opened to other users as a directory made by release
# 0.1.0 may be, the same swaps in the backing directory itself under `tdefs --check` (and
# --check --repair refuses such a root). Asserted: the sentinel device and OUTSIDE/victim are
# unchanged byte for byte; no command hung (each runs under a timeout); the database's own files
# read back intact; the racer really swapped, for the whole time of each phase. Where no loop
# device can be set up (a container), the sentinel is a regular file outside the tree instead.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
need_cmd losetup mount
need_cmd setpriv util-linux
racer=$TDEFS_BUILD/tests/security/tdefs-rename-racer
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$racer" "$tderekey"
seconds=${TDEFS_SEC_RACE_SECONDS:-30}
((seconds >= 2)) || seconds=2
pairs=4

tdefs_setup

# ---- the database's files and the targets outside the tree ------------------------------------
mkdir "$TDEFS_MNT/db"
for i in 1 2 3; do
	head -c $((300000 + i * 4097)) /dev/urandom >"$TDEFS_WORK/table$i.ref"
	cp "$TDEFS_WORK/table$i.ref" "$TDEFS_MNT/db/table$i"
done
sync
outside=$TDEFS_WORK/outside
mkdir -m 0700 "$outside"
cp "$TDEFS_BACKING/db/table1" "$outside/victim"
printf '\377\377\377\377' | dd of="$outside/victim" bs=1 seek=64 conv=notrunc status=none
chmod 0600 "$outside/victim"

head -c 1048576 /dev/urandom >"$TDEFS_WORK/sentinel.img"
if loop=$(losetup --find --show "$TDEFS_WORK/sentinel.img" 2>/dev/null) && [[ -b $loop ]]; then
	on_exit "losetup -d '$loop' 2>/dev/null || true"
	mknod "$outside/device" b "$((16#$(stat -c %t "$loop")))" "$((16#$(stat -c %T "$loop")))"
	sentinel=$loop
	sentinel_what="loop device $loop"
else
	# No loop device here: a sentinel file outside the backing directory takes its place.
	cp "$TDEFS_WORK/sentinel.img" "$outside/device"
	chmod 0600 "$outside/device"
	sentinel=$outside/device
	sentinel_what="a sentinel file: no loop device can be set up here"
fi
targets_digest() {
	sha256sum "$outside/victim" "$sentinel" | awk '{ print $1 }' | tr '\n' ' '
}
before=$(targets_digest)
log "targets: $outside/victim (a tdefs file of this wallet, copy 0 damaged) and $outside/device ($sentinel_what)"

# ---- the attacker's tree, made by uid 65534 through the mount --------------------------------------
attack=$TDEFS_MNT/attack
mkdir "$attack"
chown 65534:65534 "$attack"
as_nobody bash -c '
	set -e
	cd "$1"
	for ((i = 1; i <= $3; i++)); do
		mkdir d$i
		head -c 20000 /dev/urandom >d$i/victim
		head -c 20000 /dev/urandom >d$i/device
		ln -s "$2" l$i
		head -c 20000 /dev/urandom >f$i
		ln -s "$2/victim" s$i
		head -c 20000 /dev/urandom >g$i
		ln -s "$2/device" t$i
		head -c 20000 /dev/urandom >h$i
		mkfifo p$i
	done' attack-setup "$attack" "$outside" "$pairs" || fail "uid 65534 could not build its tree on the mount"
swap_names=()
for ((i = 1; i <= pairs; i++)); do swap_names+=(d$i l$i f$i s$i g$i t$i h$i p$i); done
sync

racer_pid=
start_racer() { # DIR SECONDS
	as_nobody "$racer" "$2" "$1" "${swap_names[@]}" >"$TDEFS_WORK/racer.out" 2>&1 &
	racer_pid=$!
	on_exit "kill $racer_pid 2>/dev/null || true"
}
racer_running() { kill -0 "$racer_pid" 2>/dev/null; }
wait_racer() { # WHAT
	local rc=0
	wait "$racer_pid" || rc=$?
	((rc == 0)) || fail "$1: the racer failed: $(cat "$TDEFS_WORK/racer.out")"
	log "$1: $(head -n 1 "$TDEFS_WORK/racer.out") exchanges by uid 65534"
}
# run_bounded WHAT SECONDS CMD...: CMD must finish in time (a walk that opened a FIFO hangs).
run_bounded() {
	local what=$1 limit=$2 rc=0
	shift 2
	timeout "$limit" "$@" >"$TDEFS_WORK/last.out" 2>&1 || rc=$?
	((rc != 124)) || fail "$what did not finish within $limit s while names were swapped (a FIFO opened?): $(tail -n 3 "$TDEFS_WORK/last.out")"
	return $rc
}
check_targets() {
	[[ $(targets_digest) == "$before" ]] ||
		fail "$1: a file outside the backing directory or the sentinel device was written"
}

# race WHAT DIR ROUND_FUNCTION: the racer swaps in DIR for $seconds while ROUND_FUNCTION runs
# again and again; then nothing outside the tree may have changed.
race() {
	local what=$1 dir=$2 round_function=$3 rounds=0
	start_racer "$dir" "$seconds"
	while racer_running; do
		"$round_function"
		rounds=$((rounds + 1))
	done
	wait_racer "$what ($rounds rounds)"
	check_targets "$what"
}

# ---- 1. key rotations and rewraps ---------------------------------------------------------------
rotate_and_rewrap() {
	"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" >/dev/null 2>&1 || fail "tdekey set-key failed"
	run_bounded "tderekey rewrap" 120 "$tderekey" rewrap "$TDEFS_MNT" || true
	run_bounded "tderekey status" 60 "$tderekey" status "$TDEFS_MNT" || true
}
race "rewrap" "$attack" rotate_and_rewrap

# ---- 2. data rekeys ----------------------------------------------------------------------------------
data_rekey() {
	run_bounded "tderekey data" 300 "$tderekey" data "$TDEFS_MNT" || true
}
race "data rekey" "$attack" data_rekey

# ---- 3. the key census -----------------------------------------------------------------------------
census() {
	run_bounded "tdekey keys --usage" 60 "$TDEKEY_BIN" keys --wallet "$TDEFS_WALLET" --usage "$TDEFS_BACKING" || true
	run_bounded "tderekey status" 60 "$tderekey" status "$TDEFS_MNT" || true
}
race "census" "$attack" census

# ---- 4. the resume pass at mount -------------------------------------------------------------------
# Each round: a data rekey slowed down by --rate is cut short by an unmount, so that the next
# mount's resume pass takes it up (the job goes on where it was, and the pass over files left
# with two keys writes them); the racer swaps through the mount for 5 s from the mount on, while
# that pass walks. Rounds go on until $seconds of swapping are done.
data_state() {
	"$tderekey" status "$TDEFS_MNT" --json 2>/dev/null | sed -n 's/.*"data_state": "\([a-z]*\)".*/\1/p'
}
resume_rounds=0 resumed=0 swapped_for=0
while ((swapped_for < seconds)); do
	run_bounded "tderekey data --rate 1M" 60 "$tderekey" data "$TDEFS_MNT" --rate 1M --no-wait ||
		fail "tderekey data --rate 1M --no-wait did not start: $(cat "$TDEFS_WORK/last.out")"
	sleep 0.3
	tdefs_umount "$TDEFS_MNT"
	tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
	started=$SECONDS
	start_racer "$attack" 5
	wait_racer "resume pass, mount $((resume_rounds + 1))"
	swapped_for=$((swapped_for + SECONDS - started))
	grep -q "the interrupted data rekey of / goes on" "$(tdefs_daemon_log)" && resumed=$((resumed + 1))
	resume_rounds=$((resume_rounds + 1))
	check_targets "resume pass, mount $resume_rounds"
	# Let the resumed job end before the next round starts one of its own.
	for _ in $(seq 1 300); do
		[[ $(data_state) == running ]] || break
		sleep 0.2
	done
done
((resumed > 0)) || fail "no mount took up an interrupted data rekey in $resume_rounds rounds: the resume pass was not raced"
log "resume pass: $resume_rounds mounts under swaps ($swapped_for s), $resumed took up an interrupted data rekey"

# ---- 5. tdefs --check on a backing directory other users can enter ----------------------------------
# A backing root made by release 0.1.0 may still be 0755. --check --repair (the only pass that
# opens files read-write outside the daemon) refuses such a root, so no user can be renaming
# under it; the read-only --check runs there and must neither follow a swapped name nor hang on
# a swapped-in FIFO. The attacker's files get a damaged copy 0 each, so that --check has
# something to report in them.
tdefs_umount "$TDEFS_MNT"
for ((i = 1; i <= pairs; i++)); do
	for f in "d$i/victim" "d$i/device" "f$i" "g$i" "h$i"; do
		[[ -f $TDEFS_BACKING/attack/$f && ! -L $TDEFS_BACKING/attack/$f ]] || continue
		printf '\377\377\377\377' | dd of="$TDEFS_BACKING/attack/$f" bs=1 seek=64 conv=notrunc status=none
	done
done
chmod 0755 "$TDEFS_BACKING"
on_exit "chmod 0700 '$TDEFS_BACKING'"
rc=0
"$TDEFS_BIN" --check --repair --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >"$TDEFS_WORK/repair.out" 2>&1 || rc=$?
((rc == 14)) && grep -q "chmod 0700" "$TDEFS_WORK/repair.out" ||
	fail "--check --repair on a backing root others can enter: expected a refusal (exit 14), got $rc: $(cat "$TDEFS_WORK/repair.out")"
check_backing() {
	run_bounded "tdefs --check" 120 "$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" || true
}
race "--check" "$TDEFS_BACKING/attack" check_backing
chmod 0700 "$TDEFS_BACKING"

# ---- the database's files --------------------------------------------------------------------------
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
for i in 1 2 3; do
	cmp -s "$TDEFS_WORK/table$i.ref" "$TDEFS_MNT/db/table$i" || fail "db/table$i does not read back after the rewraps and rekeys"
done
"$tderekey" status "$TDEFS_MNT" --json >"$TDEFS_WORK/status.json" || fail "tderekey status failed at the end"
pass "rewrap, data rekey, census, resume pass and --check under RENAME_EXCHANGE swaps by uid 65534: nothing outside the tree written, no hang, data intact"
