#!/usr/bin/env bash
# Holes of plaintext files survive their conversion (tderekey encrypt): sparse plaintext files
# (data islands in a large hole, a file that is all hole, data ending in a short block after a
# hole, a file with a punched range) are converted; each reads back byte for byte as its
# reference, the mount reports the same data and hole ranges (SEEK_DATA/SEEK_HOLE) as the
# original did, and the encrypted backing file allocates no more than the plaintext one did
# plus its header (st_blocks), far less than its size; the conversion reads (and its rate limit
# counts) the data only, not the holes. While one of them is held open and written during its
# conversion, a hole written into and a range punched stay right too.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd python3 python3
need_cmd fallocate util-linux
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$tderekey"
wallet=$TDEFS_WORK/wallet
backing=$TDEFS_WORK/backing
mnt=$TDEFS_WORK/mnt
reference=$TDEFS_WORK/reference
marker="HOLES-PLAINTEXT-MARKER-c07a"
mkdir -p "$backing" "$reference" "$mnt"
MiB=1048576

island() { # FILE OFFSET LENGTH: marker bytes written at OFFSET, the rest untouched
	{ yes "$marker" || true; } | head -c "$3" | dd of="$1" bs=4096 seek="$2" oflag=seek_bytes conv=notrunc status=none
}
# Data islands in 96 MiB: the first MiB, one in the middle, 5000 bytes straddling two blocks.
truncate -s $((96 * MiB)) "$backing/islands"
island "$backing/islands" 0 $MiB
island "$backing/islands" $((48 * MiB)) $((2 * MiB))
island "$backing/islands" $((80 * MiB + 3000)) 5000
truncate -s $((16 * MiB)) "$backing/all-hole"
# A hole, then data ending in a short last block.
truncate -s $((32 * MiB)) "$backing/short-tail"
island "$backing/short-tail" $((32 * MiB)) 6001
# Written whole, then a range punched out.
island "$backing/punched" 0 $((8 * MiB))
fallocate -p -o $((2 * MiB)) -l $((3 * MiB)) "$backing/punched"
# Held open and written into during the conversion: a hole is filled, another punched.
truncate -s $((24 * MiB)) "$backing/live"
island "$backing/live" $((10 * MiB)) $MiB
for f in islands all-hole short-tail punched live; do
	cp --sparse=always "$backing/$f" "$reference/$f"
done

# extents FILE: its data ranges, "start-end" per line, as SEEK_DATA/SEEK_HOLE report them.
extents() {
	python3 - "$1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size, at = os.fstat(fd).st_size, 0
while at < size:
    try:
        data = os.lseek(fd, at, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, data, os.SEEK_HOLE)
    print(f"{data}-{hole}")
    at = hole
EOF
}
blocks() { stat -c %b "$1"; }
for f in islands all-hole short-tail punched live; do
	extents "$backing/$f" >"$TDEFS_WORK/$f.extents"
	declare "before_$(tr - _ <<<"$f")=$(blocks "$backing/$f")"
done

tdefs_make_wallet "$wallet"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" ||
	fail "tdefs --init --adopt failed: $(cat "$TDEFS_WORK/adopt.out")"
tdefs_mount "$wallet" "$backing" "$mnt"
for f in islands all-hole short-tail punched live; do
	cmp -s "$reference/$f" "$mnt/$f" || fail "$f: the plaintext file does not read back as its reference"
done

# The live writer: fills a hole at 20 MiB and punches one at 10.5 MiB, in the reference too,
# once before the conversion and again while it runs; the conversion is slowed to overlap it.
exec {live}<>"$mnt/live"
live_edit() { # N
	python3 - "$mnt/live" "$reference/live" "$1" <<'EOF'
import os, sys
n = int(sys.argv[3])
for path in sys.argv[1:3]:
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, (b"live %d " % n) * 1000, 20 * 1048576 + n * 8192)
    os.fsync(fd)
    os.close(fd)
EOF
	fallocate -p -o $((10 * MiB + MiB / 2)) -l 65536 "$reference/live"
	fallocate -p -o $((10 * MiB + MiB / 2)) -l 65536 "$mnt/live"
}
live_edit 0
"$tderekey" encrypt "$mnt" --rate 4M --no-wait >/dev/null || fail "tderekey encrypt did not start"
for n in 1 2 3 4 5 6; do
	live_edit "$n"
	sleep 0.3
done
for _ in $(seq 1 600); do
	"$tderekey" status "$mnt" | grep -q "no plaintext file left" && break
	sleep 0.2
done
"$tderekey" status "$mnt" | grep -q "no plaintext file left" || fail "the conversion did not finish"
exec {live}>&-
# The conversion reads data, not holes: what it counted is the islands, not the 176 MiB of sizes.
copied=$("$tderekey" status "$mnt" --json | sed -n 's/.*"encrypt_bytes": \([0-9]*\).*/\1/p')
[[ -n $copied ]] || fail "tderekey status --json has no encrypt_bytes"
((copied <= 32 * MiB)) || fail "the conversion read $copied bytes of 176 MiB of sparse files holding about 9 MiB of data: it read the holes"
extents "$reference/live" >"$TDEFS_WORK/live.extents"
before_live=$(blocks "$reference/live")

report=
for f in islands all-hole short-tail punched live; do
	cmp -s "$reference/$f" "$mnt/$f" || fail "$f: reads back differently after its conversion"
	extents "$mnt/$f" >"$TDEFS_WORK/$f.after"
	cmp -s "$TDEFS_WORK/$f.extents" "$TDEFS_WORK/$f.after" ||
		fail "$f: data and holes moved: before $(tr '\n' ' ' <"$TDEFS_WORK/$f.extents"), after $(tr '\n' ' ' <"$TDEFS_WORK/$f.after")"
	var="before_$(tr - _ <<<"$f")"
	was=${!var}
	now=$(blocks "$backing/$f")
	# The header is 4096 bytes (8 blocks of 512); ext4 may add an extent block or two.
	((now <= was + 8 + 16)) || fail "$f: the encrypted file allocates $now blocks, the plaintext one $was"
	size=$(stat -c %s "$mnt/$f")
	case $f in
	all-hole) ((now <= 24)) || fail "$f: $now blocks allocated for a file that is all hole" ;;
	punched) ;;
	*) ((now * 512 < size / 2)) || fail "$f: $now blocks allocated for $size bytes: the holes were filled" ;;
	esac
	report+="$f $was->$now; "
done
tdefs_umount "$mnt"
grep -rl --binary-files=binary "$marker" "$backing" && fail "plaintext left in the backing directory"
pass "sparse plaintext files converted with their holes, $copied bytes read for 176 MiB of file sizes (st_blocks before->after: $report) and the same SEEK_DATA/SEEK_HOLE ranges"
