#!/bin/bash
# The daemon's resident memory stays under 64 MiB with 1,000 open files (docs/PERFORMANCE.md), also on a
# mount that has just served a heavy load: buffered and O_DIRECT requests of 4 KiB to 1 MiB from 12
# parallel jobs grow the worker threads to their maximum and their request buffers to 1 MiB.
# What this guards: with worker threads ended and restarted under load (libfuse's default
# idle policy) and glibc's sliding mmap threshold, the exited threads' buffers stayed in their
# malloc arenas, locked, and RSS after this load was 67 MiB (76 MiB after bench/compare's fio
# jobs). tdefs-open-many (bench/) creates the 1,000 files, writes and fdatasyncs 8 KiB in
# each, holds them all open and reads the daemon's VmRSS.
. "$(dirname "$0")/lib.sh"

open_many=$TDEFS_BUILD/bench/tdefs-open-many
need_build "$open_many"
need_cmd fio
is_plain && skip "measures the daemon"
limit_kib=$((64 * 1024))

tdefs_setup
pid=$(tdefs_daemon_pid)
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$pid/status"; }
log "fresh mount: RSS $(rss) KiB, $(threads) threads"

mkdir "$TDEFS_MNT/load"
# Request sizes from 4 KiB to 1 MiB, mixed, so that the buffers of different sizes are freed
# and reallocated in every worker thread, as a mixed database and backup load does.
for rw in write read randrw; do
	for direct in 0 1; do
		fio --name="load-$rw-$direct" --directory="$TDEFS_MNT/load" --rw=$rw \
			--bssplit=4k/25:16k/25:128k/25:1m/25 --size=32m --numjobs=12 --direct=$direct \
			--ioengine=psync --time_based --runtime=2 --group_reporting \
			--output="$TDEFS_WORK/fio-$rw-$direct.out" || fail "fio $rw direct=$direct failed"
	done
done
peak_threads=$(threads)
log "after the load: RSS $(rss) KiB, $peak_threads threads, peak RSS $(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status") KiB"
rm -rf "$TDEFS_MNT/load"

mkdir "$TDEFS_MNT/many"
json=$("$open_many" "$TDEFS_MNT/many" 1000 "$pid") || fail "tdefs-open-many failed"
log "1,000 open files: $json"
rss_kib=$(sed -E 's/.*"rss_kib": ([0-9]+).*/\1/' <<<"$json")
[[ $rss_kib =~ ^[0-9]+$ ]] || fail "no RSS in: $json"
((rss_kib < limit_kib)) ||
	fail "daemon RSS with 1,000 open files after the load is $((rss_kib / 1024)) MiB (limit 64 MiB)"
rm -rf "$TDEFS_MNT/many"
pass "RSS with 1,000 open files after a 12-job load: $((rss_kib / 1024)) MiB (limit 64)"
