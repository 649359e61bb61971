#!/usr/bin/env bash
# What lands on disk: no plaintext written through the mount appears in the backing files, two
# files with identical contents have different ciphertext, holes stay sparse on the backing
# side, and every file decrypts correctly with an independent implementation
# (tdefs-test-helper verify: OpenSSL EVP called directly with the unwrapped DEK).
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_build "$TDEFS_TEST_HELPER"
tdefs_setup

marker="TDEFS-PLAINTEXT-MARKER-0123456789"
plain=$TDEFS_WORK/plain
mkdir -p "$plain"
# Files of awkward sizes: empty, short tails (1..15 bytes), partial blocks, many blocks.
for size in 0 1 5 15 16 17 100 4095 4096 4097 8191 12288 100000 1048577; do
	{ yes "$marker" || true; } | head -c "$size" >"$plain/f$size"
	cp "$plain/f$size" "$TDEFS_MNT/f$size"
done
cp "$plain/f100000" "$TDEFS_MNT/twin"
# A sparse file: 1 MiB hole, 10 bytes, hole to 4 MiB.
printf 'tail-bytes' | dd of="$TDEFS_MNT/sparse" bs=1 seek=1048576 conv=notrunc status=none
truncate -s 4M "$TDEFS_MNT/sparse"
dd if=/dev/zero of="$plain/sparse" bs=1 count=0 seek=1048576 status=none
printf 'tail-bytes' >>"$plain/sparse"
truncate -s 4M "$plain/sparse"
sync
tdefs_remount

# Through the mount, every file reads back as written.
for f in "$plain"/*; do
	cmp "$f" "$TDEFS_MNT/$(basename "$f")" || fail "$(basename "$f") reads back differently"
done

# On the backing side: no marker anywhere, sizes are plaintext + 4096.
if grep -rl --binary-files=binary "TDEFS-PLAINTEXT" "$TDEFS_BACKING"; then
	fail "plaintext found in the backing directory"
fi
if grep -rl --binary-files=binary "tail-bytes" "$TDEFS_BACKING"; then
	fail "plaintext of the sparse file found in the backing directory"
fi
for f in "$plain"/*; do
	name=$(basename "$f")
	expected=$(($(stat -c %s "$f") + 4096))
	actual=$(stat -c %s "$TDEFS_BACKING/$name")
	[[ $actual == "$expected" ]] || fail "backing $name is $actual bytes, expected $expected"
done

# Identical plaintext, different keys: the ciphertext differs in every data block.
cmp -s <(tail -c +4097 "$TDEFS_BACKING/f100000") <(tail -c +4097 "$TDEFS_BACKING/twin") &&
	fail "two files with the same contents have the same ciphertext"
differing=$({ cmp -l <(tail -c +4097 "$TDEFS_BACKING/f100000") \
	<(tail -c +4097 "$TDEFS_BACKING/twin") || true; } | wc -l)
((differing > 99000)) || fail "only $differing of 100000 ciphertext bytes differ between twins"

# Holes stay holes: the 4 MiB sparse file uses a few blocks on the backing side.
allocated=$(($(stat -c %b "$TDEFS_BACKING/sparse") * $(stat -c %B "$TDEFS_BACKING/sparse")))
((allocated <= 65536)) || fail "sparse file allocates $allocated bytes on the backing side"

# An independent decryption of every file matches the plaintext.
for f in "$plain"/*; do
	"$TDEFS_TEST_HELPER" verify "$TDEFS_WALLET" "$TDEFS_BACKING/$(basename "$f")" "$f" >/dev/null ||
		fail "independent decryption of $(basename "$f") failed"
done
# And the verifier is not a rubber stamp: one flipped ciphertext byte is caught.
cp "$TDEFS_BACKING/f4096" "$TDEFS_WORK/damaged"
printf '\x55' | dd of="$TDEFS_WORK/damaged" bs=1 seek=5000 conv=notrunc status=none
"$TDEFS_TEST_HELPER" verify "$TDEFS_WALLET" "$TDEFS_WORK/damaged" "$plain/f4096" 2>/dev/null &&
	fail "the verifier accepted a damaged ciphertext"
pass "plaintext absent, twins differ, holes sparse, independent decryption agrees"
