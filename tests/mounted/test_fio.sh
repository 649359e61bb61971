#!/bin/bash
# fio with --verify=crc32c on the mount: random 4 KiB and 8 KiB writes, buffered (psync) and
# direct=1 (libaio, queue depth 16), four jobs at once on their own files. Every block carries a
# crc32c and its offset; fio reads them all back after writing (verify_fatal). Then the mount is
# remounted and the same job file runs with verify_only, so the blocks are read from the backing
# files through decryption rather than from the page cache. A wrong block, a block from another
# offset or file, or an I/O error fails the test.
. "$(dirname "$0")/lib.sh"

need_cmd fio
size=${TDEFS_FIO_SIZE:-64m}
tdefs_setup
mkdir -p "$TDEFS_MNT/fio"
cd "$TDEFS_WORK"  # fio writes its verify state (and verify_dump's bad blocks) to the cwd

jobfile=$TDEFS_WORK/verify.fio
cat >"$jobfile" <<EOF
[global]
directory=$TDEFS_MNT/fio
size=$size
rw=randwrite
verify=crc32c
verify_fatal=1
verify_dump=1
do_verify=1
randrepeat=1
randseed=4242
group_reporting=0

[rand4k-buffered]
bs=4k
ioengine=psync
direct=0
end_fsync=1

[rand8k-buffered]
bs=8k
ioengine=psync
direct=0
fsync=64

[rand4k-direct]
bs=4k
ioengine=libaio
iodepth=16
direct=1

[rand8k-direct]
bs=8k
ioengine=libaio
iodepth=16
direct=1
EOF

run_fio() {
	local what=$1 out=$TDEFS_WORK/fio-$2.out
	shift 2
	log "fio $what"
	local rc=0
	fio "$@" "$jobfile" >"$out" 2>&1 || rc=$?
	grep -E '^\s*(WRITE|READ):|err=|verify' "$out" >&2 || true
	if [[ $rc != 0 ]] || grep -qiE 'verify failed|bad magic|bad header|crc32c.*(fail|mismatch)' "$out"; then
		tail -n 40 "$out" >&2
		fail "fio $what failed (exit $rc)"
	fi
	# Each of the four jobs must have read its data back; a run that verified nothing proves
	# nothing.
	local reads
	reads=$(grep -cE '^\s*read: IOPS=' "$out" || true)
	[[ $reads == 4 ]] || { cat "$out" >&2; fail "fio $what: expected 4 jobs reading back their data, found $reads"; }
}

run_fio "write + verify (size $size per job)" write
tdefs_remount
run_fio "verify_only after remount" verify --verify_only=1

pass "4 KiB and 8 KiB random writes, buffered and direct, verified before and after remount"
