#!/usr/bin/env bash
# The conversion of an adopted directory (tderekey encrypt) while the database renames the
# plaintext files it has not reached yet, as PostgreSQL does when it recycles WAL segments: a
# walk lists a directory once and then opens each name, so a file renamed after the listing
# is under neither name in that pass, and a renamed directory hides everything in it. The
# conversion must notice and go round again: afterwards status says no plaintext file is left,
# no marker string is on disk, and every file reads back under its new name.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_build "$TDEFS_TEST_HELPER"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
wallet=$TDEFS_WORK/wallet
backing=$TDEFS_WORK/backing
mnt=$TDEFS_WORK/mnt
reference=$TDEFS_WORK/reference
marker="RENAMED-PLAINTEXT-MARKER-51d7"
files=64 directories=6

mkdir -p "$backing/wal" "$reference"
for ((i = 0; i < files; i++)); do
	{ yes "$marker $i" || true; } | head -c 262144 >"$backing/wal/segment-$i"
done
for ((d = 0; d < directories; d++)); do
	mkdir "$backing/dir-$d"
	for ((i = 0; i < 16; i++)); do
		{ yes "$marker dir $d $i" || true; } | head -c 65536 >"$backing/dir-$d/file-$i"
	done
done
(cd "$backing" && cp -a . "$reference/")
tdefs_make_wallet "$wallet"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" ||
	fail "tdefs --init --adopt failed: $(cat "$TDEFS_WORK/adopt.out")"
mkdir -p "$mnt"
tdefs_mount "$wallet" "$backing" "$mnt"

# 22 MiB at 4 MiB/s. While the walk is inside wal/, every other segment is renamed (a
# recycler's renames); while it is inside a dir-N, that directory and the others are renamed.
"$tderekey" encrypt "$mnt" --rate 4M >"$TDEFS_WORK/encrypt.out" 2>&1 &
job=$!
segments_renamed=0 directories_renamed=0
while kill -0 "$job" 2>/dev/null && ((segments_renamed == 0 || directories_renamed == 0)); do
	current=$("$tderekey" status "$mnt" 2>/dev/null | sed -n 's/^encrypt_current *//p')
	if [[ $current == /wal/* ]] && ((segments_renamed == 0)); then
		for ((i = files - 1; i >= 0; i--)); do
			[[ /wal/segment-$i == "$current" ]] && continue
			mv "$mnt/wal/segment-$i" "$mnt/wal/recycled-$i"
			mv "$reference/wal/segment-$i" "$reference/wal/recycled-$i"
		done
		segments_renamed=1
	elif [[ $current == /dir-* ]] && ((directories_renamed == 0)); then
		for ((d = 0; d < directories; d++)); do
			mv "$mnt/dir-$d" "$mnt/renamed-$d"
			mv "$reference/dir-$d" "$reference/renamed-$d"
		done
		directories_renamed=1
	fi
	sleep 0.02
done
((segments_renamed && directories_renamed)) ||
	fail "the conversion ended before the renames (segments $segments_renamed, directories $directories_renamed)"
wait "$job" || fail "tderekey encrypt failed: $(cat "$TDEFS_WORK/encrypt.out")"
log "$(tail -n 1 "$TDEFS_WORK/encrypt.out")"

"$tderekey" status "$mnt" >"$TDEFS_WORK/status.out"
grep -q "no plaintext file left" "$TDEFS_WORK/status.out" ||
	fail "plaintext left after the conversion: $(grep -i plaintext "$TDEFS_WORK/status.out")"
for f in "$reference"/wal/* "$reference"/renamed-*/*; do
	cmp "$f" "$mnt/${f#"$reference"/}" || fail "${f#"$reference"/} does not read back"
done
tdefs_umount "$mnt"
left=$({ grep -rl --binary-files=binary "$marker" "$backing" || true; } | wc -l)
((left == 0)) || fail "$left files still plaintext in the backing directory"
pass "$files files and $directories directories renamed under the conversion, all encrypted and read back"
