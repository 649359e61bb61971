#!/usr/bin/env bash
# Many files at a low descriptor limit: the daemon runs under `ulimit -n 1024` (soft and hard, so
# its own raise to the hard limit cannot help) and must still create 3,000 files in one
# directory and TDEFS_MANY_FILES files (default 40,000, to stay near 3 minutes on 2 cores: the
# rewrap and the data rekey fsync every header, and 100,000 took 6 minutes there; the million is a
# soak: TDEFS_MANY_FILES=1000000) in directories of up to 10,000, list and hash them all, read them back
# after a remount, pass tdefs --check, rewrap them after a key rotation, rekey their data, and
# count them in tdekey keys --usage. The daemon's descriptors (/proc/PID/fd) stay below
# TDEFS_MANY_FILES_FD_BOUND (default 400) at every step, sampled in the background too; peak RSS
# (VmHWM) and the descriptors per 100,000 cached inodes are reported. Today's failure mode was one
# O_PATH descriptor per cached inode: EMFILE from about the 1,009th file.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
total=${TDEFS_MANY_FILES:-40000}
per_dir=${TDEFS_MANY_FILES_PER_DIR:-10000}
bound=${TDEFS_MANY_FILES_FD_BOUND:-400}
[[ $total =~ ^[0-9]+$ && $total -ge 1 ]] || fail "TDEFS_MANY_FILES=$total: want a positive number"
[[ $per_dir =~ ^[0-9]+$ && $per_dir -ge 1 ]] || fail "TDEFS_MANY_FILES_PER_DIR=$per_dir: want a positive number"
need_cmd md5sum coreutils

# The whole test (daemon, tools, shell) under the Debian/systemd default soft limit, made hard.
ulimit -n 1024
tdefs_setup
pid=$(tdefs_daemon_pid)

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
peak_fds=0
# check_fds STEP: the daemon's descriptors now, and the background sampler's peak so far.
check_fds() {
	local now sampled
	now=$(fd_count "$pid")
	sampled=$(sort -n "$TDEFS_WORK/fd-samples" 2>/dev/null | tail -n 1)
	((now > peak_fds)) && peak_fds=$now
	[[ -n $sampled ]] && ((sampled > peak_fds)) && peak_fds=$sampled
	log "$1: daemon has $now descriptors (peak so far $peak_fds, limit $(awk '/Max open files/ { print $4 }' "/proc/$pid/limits"))"
	((peak_fds < bound)) || fail "$1: the daemon reached $peak_fds descriptors (bound $bound)"
	if grep -q "out of file descriptors" "$(tdefs_daemon_log)"; then
		fail "$1: the daemon ran out of descriptors: $(grep "out of file descriptors" "$(tdefs_daemon_log)")"
	fi
}
# A sampler every 0.2 s for the daemon in $pid (restarted after each mount).
start_sampler() {
	(while kill -0 "$pid" 2>/dev/null; do fd_count "$pid" >>"$TDEFS_WORK/fd-samples"; sleep 0.2; done) &
	sampler=$!
	on_exit "kill $sampler 2>/dev/null || true"
}
start_sampler
t0=$(date +%s)

# 3,000 files in one directory: the case that failed from about f1009.
mkdir "$TDEFS_MNT/flat"
for ((i = 1; i <= 3000; i++)); do
	printf 'flat %d\n' "$i" >"$TDEFS_MNT/flat/f$i" || fail "creating flat/f$i failed"
done
n=$(ls -l "$TDEFS_MNT/flat" | grep -c '^-') || true
((n == 3000)) || fail "ls -l flat shows $n of 3000 files"
check_fds "3,000 files in one directory"

# The tree: $total files in directories of up to $per_dir.
dirs=$(((total + per_dir - 1) / per_dir))
made=0
for ((d = 0; d < dirs; d++)); do
	mkdir "$TDEFS_MNT/d$d"
	for ((i = 0; i < per_dir && made < total; i++, made++)); do
		printf 'file %d/%d\n' "$d" "$i" >"$TDEFS_MNT/d$d/f$i" || fail "creating d$d/f$i failed"
	done
done
check_fds "created $total files in $dirs directories"
t_create=$(date +%s)

lines=$(ls -lR "$TDEFS_MNT" | grep -c '^-') || true
((lines == total + 3000)) || fail "ls -lR shows $lines regular files, want $((total + 3000))"
check_fds "ls -lR"
(cd "$TDEFS_MNT" && find . -type f -print0 | sort -z | xargs -0 md5sum) >"$TDEFS_WORK/sums" ||
	fail "find | xargs md5sum failed on the mount"
(($(wc -l <"$TDEFS_WORK/sums") == total + 3000)) || fail "md5sum hashed $(wc -l <"$TDEFS_WORK/sums") files"
grep -q "^$(printf 'file 0/7\n' | md5sum | cut -d' ' -f1)  ./d0/f7\$" "$TDEFS_WORK/sums" ||
	fail "d0/f7 does not hash to what was written"
check_fds "find | xargs md5sum"
cached=$(awk '/^(VmHWM)/ { print $2 }' "/proc/$pid/status")
hwm_first=$cached
t_read=$(date +%s)

# Remount (the kernel's inode cache starts empty) and read everything back.
kill "$sampler" 2>/dev/null || true
tdefs_remount
pid=$(tdefs_daemon_pid)
start_sampler
(cd "$TDEFS_MNT" && md5sum --quiet -c "$TDEFS_WORK/sums") || fail "contents differ after the remount"
check_fds "read back after the remount"

# Offline check of the whole tree (the daemon is up: a read-only walk of the backing files).
"$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >"$TDEFS_WORK/check.out" 2>&1 ||
	fail "tdefs --check: $(tail -n 5 "$TDEFS_WORK/check.out")"

# A rotation and a rewrap of every header, then a data rekey of every file, online.
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag many >/dev/null
"$tderekey" reload "$TDEFS_MNT" >/dev/null
"$tderekey" rewrap "$TDEFS_MNT" >"$TDEFS_WORK/rewrap.out" 2>&1 || fail "rewrap: $(cat "$TDEFS_WORK/rewrap.out")"
grep -q "rewrap done" "$TDEFS_WORK/rewrap.out" || fail "rewrap: no summary: $(cat "$TDEFS_WORK/rewrap.out")"
check_fds "rewrap"
# The data rekey in the background, followed through tderekey status until it is done.
field_of() { sed -n "s/.*\"$1\": \"\{0,1\}\([a-z0-9]*\).*/\1/p" <<<"$2"; }
"$tderekey" data "$TDEFS_MNT" --no-wait >"$TDEFS_WORK/data.out" 2>&1 || fail "data rekey: $(cat "$TDEFS_WORK/data.out")"
partial=0
state=
# Up to 20 minutes, or one poll per 20 files for a soak (a million files: about 7 hours at most).
polls=$(((total + 3000) / 20 > 2400 ? (total + 3000) / 20 : 2400))
for ((poll = 0; poll < polls; poll++)); do
	# A status answer may fail while headers are rewritten under its census: ask again.
	out=$("$tderekey" status "$TDEFS_MNT" --json 2>&1) || {
		echo "$out" >>"$TDEFS_WORK/status-errors"
		sleep 0.5
		continue
	}
	state=$(field_of data_state "$out")
	changed=$(field_of data_changed "$out")
	[[ $state == running && ${changed:-0} -gt 0 ]] && partial=$changed
	[[ $state == running || $state == "" ]] || break
	sleep 0.5
done
[[ $state == done ]] || fail "data rekey ended in state '$state': $("$tderekey" status "$TDEFS_MNT")"
[[ $changed == $((total + 3000)) ]] || fail "data rekey changed $changed files, want $((total + 3000))"
# Logged, not asserted: each status call also counts every header of the tree (its census), so
# under load the first answer may come only as the job ends.
((partial > 0 && partial < total + 3000)) || log "tderekey status answered only after the data rekey ended"
check_fds "data rekey"
[[ -s $TDEFS_WORK/status-errors ]] &&
	log "tderekey status failed $(grep -c . "$TDEFS_WORK/status-errors") times during the rekey: $(head -n 1 "$TDEFS_WORK/status-errors")"
log "rewrap: $(tail -n 1 "$TDEFS_WORK/rewrap.out"); data rekey: $changed files, status showed $partial part-way"
(cd "$TDEFS_MNT" && md5sum --quiet -c "$TDEFS_WORK/sums") || fail "contents differ after the rekey"
check_fds "read back after the rekey"

usage=$("$TDEKEY_BIN" keys --wallet "$TDEFS_WALLET" --usage "$TDEFS_BACKING" --json) ||
	fail "tdekey keys --usage failed"
grep -q "\"files\": $((total + 3000))[,}]" <<<"$usage" ||
	fail "tdekey keys --usage does not count $((total + 3000)) files under one key: $usage"

hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
t_end=$(date +%s)
log "figures: $((total + 3000)) files under ulimit -n 1024; peak descriptors $peak_fds;" \
	"$(awk -v p="$peak_fds" -v n="$((total + 3000))" 'BEGIN { printf "%.1f", p * 100000 / n }') per 100,000 cached inodes;" \
	"peak RSS ${hwm_first} kB (first mount), ${hwm} kB (after the remount, rewrap and rekey);" \
	"create $((t_create - t0)) s, ls+md5sum $((t_read - t_create)) s, the rest $((t_end - t_read)) s"
tdefs_umount "$TDEFS_MNT"
pass
