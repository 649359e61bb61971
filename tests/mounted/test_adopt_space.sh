#!/usr/bin/env bash
# The conversion of an adopted directory needs room for one encrypted copy of its largest
# plaintext file. On a backing filesystem too small for that (a 16 MiB tmpfs holding a 10 MB
# file), tderekey encrypt is refused before anything changes, with one line that names the file
# and the bytes needed: the files stay plaintext and byte for byte the same, no copy and no job
# record is left. Once the filesystem is large enough, the same command converts everything.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_build "$TDEFS_TEST_HELPER"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
small=$TDEFS_WORK/small
mkdir -p "$small"
mount -t tmpfs -o size=16m,mode=0700 tdefs-test-small "$small" || skip "cannot mount a tmpfs here"
on_exit "umount -l '$small' 2>/dev/null || true"
wallet=$TDEFS_WORK/wallet
backing=$small/backing
mnt=$TDEFS_WORK/mnt
reference=$TDEFS_WORK/reference
tdefs_make_wallet "$wallet"
mkdir -p "$backing" "$reference"
head -c 10000000 /dev/urandom >"$backing/large"
printf 'small file\n' >"$backing/little"
cp "$backing/large" "$backing/little" "$reference/"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >/dev/null 2>"$TDEFS_WORK/adopt.err" ||
	skip "tmpfs here keeps no trusted xattrs: $(cat "$TDEFS_WORK/adopt.err")"
tdefs_mount "$wallet" "$backing" "$mnt"

rc=0
"$tderekey" encrypt "$mnt" >"$TDEFS_WORK/encrypt.out" 2>"$TDEFS_WORK/encrypt.err" || rc=$?
((rc == 1)) || fail "encrypt on a full disk: exit $rc, expected 1: $(cat "$TDEFS_WORK/encrypt.err")"
[[ $(wc -l <"$TDEFS_WORK/encrypt.err") == 1 ]] || fail "expected one line: $(cat "$TDEFS_WORK/encrypt.err")"
grep -q "not enough free space.*/large.*10000000 bytes.*nothing was changed" "$TDEFS_WORK/encrypt.err" ||
	fail "unexpected refusal: $(cat "$TDEFS_WORK/encrypt.err")"
# Nothing changed: both files plaintext on disk, no copy, no record, no job ran.
cmp "$reference/large" "$backing/large" || fail "the refused conversion changed a file"
cmp "$reference/little" "$backing/little" || fail "the refused conversion changed a file"
ls -A "$backing" | grep -q '^\.tdefs\.encrypt' && fail "the refused conversion left a file behind: $(ls -A "$backing")"
"$tderekey" status "$mnt" --json | grep -q '"encrypt_state": "idle"' || fail "a job ran despite the refusal"
"$tderekey" status "$mnt" --json | grep -q '"plaintext": 2,' || fail "the plaintext files are not both left"
cmp "$reference/large" "$mnt/large" || fail "the file does not read back"

# With room for the copy, the same command converts both.
mount -o remount,size=40m "$small" || fail "cannot grow the tmpfs"
"$tderekey" encrypt "$mnt" >"$TDEFS_WORK/encrypt2.out" 2>&1 ||
	fail "encrypt with enough space failed: $(cat "$TDEFS_WORK/encrypt2.out")"
cmp "$reference/large" "$mnt/large" || fail "the converted file does not read back"
tdefs_umount "$mnt"
"$TDEFS_TEST_HELPER" verify "$wallet" "$backing/large" "$reference/large" >/dev/null ||
	fail "the converted file does not decrypt independently"
pass "refused before any change on a disk too small for the largest file's copy; converted once there was room"
