#!/usr/bin/env bash
# Bad input and bad backing states: each gives a clear one-line error naming the file or option,
# a non-zero exit or the right errno, and loses nothing already stored.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_build "$TDEFS_TEST_HELPER"

# expect_mount_failure LOG_PATTERN ARGS...: tdefs must exit non-zero at once, saying LOG_PATTERN.
expect_mount_failure() {
	local pattern=$1 out rc=0
	shift
	mkdir -p "$TDEFS_WORK/never-mounted"
	out=$("$TDEFS_BIN" "$@" "$TDEFS_WORK/never-mounted" 2>&1 </dev/null) || rc=$?
	mountpoint -q "$TDEFS_WORK/never-mounted" && fail "tdefs $* mounted although it should refuse"
	((rc != 0)) || fail "tdefs $* exited 0, expected a failure"
	grep -q -- "$pattern" <<<"$out" || fail "tdefs $*: expected '$pattern', got: $out"
	(($(wc -l <<<"$out") == 1)) || fail "tdefs $*: expected one line, got: $out"
	log "refused as expected: $out"
}

tdefs_setup
wallet=$TDEFS_WALLET

# 1. A directory that was never initialised.
mkdir -p "$TDEFS_WORK/plain-dir"
echo "not encrypted" >"$TDEFS_WORK/plain-dir/file"
expect_mount_failure "is not a tdefs backing directory" --wallet "$wallet" "$TDEFS_WORK/plain-dir"

# 2. A missing wallet. (Unmounted first: a mounted backing directory is refused for being in
# use before its wallet is looked at, and cases 2 and 4 are about the wallet.)
tdefs_umount "$TDEFS_MNT"
expect_mount_failure "$TDEFS_WORK/no-such-wallet" --wallet "$TDEFS_WORK/no-such-wallet" "$TDEFS_BACKING"

# 3. A wallet without a master key.
"$TDEKEY_BIN" create --wallet "$TDEFS_WORK/empty-wallet" --auto-login --no-key >/dev/null 2>&1 ||
	fail "tdekey create --no-key failed"
mkdir -p "$TDEFS_WORK/empty-backing"
"$TDEFS_BIN" --init --wallet "$TDEFS_WORK/empty-wallet" "$TDEFS_WORK/empty-backing" >/dev/null
expect_mount_failure "holds no active master key" --wallet "$TDEFS_WORK/empty-wallet" \
	"$TDEFS_WORK/empty-backing"

# 4. Another wallet than the one the directory was initialised with.
tdefs_make_wallet "$TDEFS_WORK/other-wallet"
expect_mount_failure "was initialised for wallet ID" --wallet "$TDEFS_WORK/other-wallet" "$TDEFS_BACKING"

# 5. --init refuses a non-empty directory and a directory already initialised.
"$TDEFS_BIN" --init --wallet "$wallet" "$TDEFS_WORK/plain-dir" >/dev/null 2>&1 &&
	fail "--init accepted a directory with plaintext files in it"
"$TDEFS_BIN" --init --wallet "$wallet" "$TDEFS_BACKING" >/dev/null 2>&1 &&
	fail "--init accepted an already initialised directory"

# 6. Damaged files: garbage header, truncated header, a header naming a key the wallet lacks.
tdefs_mount "$wallet" "$TDEFS_BACKING" "$TDEFS_MNT"
for name in good garbage truncated foreign-key; do
	head -c 20000 /dev/urandom >"$TDEFS_WORK/$name.plain"
	cp "$TDEFS_WORK/$name.plain" "$TDEFS_MNT/$name"
done
tdefs_umount "$TDEFS_MNT"
head -c 4096 /dev/urandom | dd of="$TDEFS_BACKING/garbage" conv=notrunc status=none
truncate -s 100 "$TDEFS_BACKING/truncated"
missing_key=0123456789abcdef0123456789abcdef
"$TDEFS_TEST_HELPER" set-key-id "$TDEFS_BACKING/foreign-key" "$missing_key"
tdefs_mount "$wallet" "$TDEFS_BACKING" "$TDEFS_MNT"
daemon_log=$(tdefs_daemon_log)

out=$(cat "$TDEFS_MNT/garbage" 2>&1 >/dev/null) && fail "a garbage header was read"
grep -q "Input/output error" <<<"$out" || fail "garbage header: expected EIO, got: $out"
cat "$TDEFS_MNT/garbage" >/dev/null 2>&1 || true # a second try must not log again
out=$(cat "$TDEFS_MNT/truncated" 2>&1 >/dev/null) && fail "a truncated header was read"
grep -q "Input/output error" <<<"$out" || fail "truncated header: expected EIO, got: $out"
out=$(cat "$TDEFS_MNT/foreign-key" 2>&1 >/dev/null) && fail "a header with an unknown key was read"
grep -q "Required key not available" <<<"$out" || fail "unknown key: expected ENOKEY, got: $out"
cmp "$TDEFS_WORK/good.plain" "$TDEFS_MNT/good" || fail "an intact file next to damaged ones is unreadable"
echo "still writable" >"$TDEFS_MNT/new-file"
[[ $(cat "$TDEFS_MNT/new-file") == "still writable" ]] || fail "cannot create files next to damaged ones"

(($(grep -c "garbage: damaged header" "$daemon_log") == 1)) ||
	fail "expected one log line naming the garbage file: $(cat "$daemon_log")"
(($(grep -c "truncated: backing file is shorter than its 4096-byte header" "$daemon_log") == 1)) ||
	fail "expected one log line naming the truncated file"
grep -q "foreign-key: header names master key $missing_key" "$daemon_log" ||
	fail "expected a log line naming the missing key ID $missing_key"
# The damaged backing files are left exactly as they were: nothing is "repaired" behind the user.
[[ $(stat -c %s "$TDEFS_BACKING/truncated") == 100 ]] || fail "the truncated file was modified"

# 7. A read-only backing directory: refused without -o ro, served read-only with it.
tdefs_umount "$TDEFS_MNT"
mkdir -p "$TDEFS_WORK/ro-view"
mount --bind "$TDEFS_BACKING" "$TDEFS_WORK/ro-view"
on_exit "umount '$TDEFS_WORK/ro-view' 2>/dev/null || true"
mount -o remount,bind,ro "$TDEFS_WORK/ro-view"
expect_mount_failure "is read-only: mount with -o ro" --wallet "$wallet" "$TDEFS_WORK/ro-view"
tdefs_mount "$wallet" "$TDEFS_WORK/ro-view" "$TDEFS_MNT" -o ro
cmp "$TDEFS_WORK/good.plain" "$TDEFS_MNT/good" || fail "read-only mount cannot read"
out=$(sh -c "echo x >> '$TDEFS_MNT/good'" 2>&1) && fail "read-only mount accepted a write"
grep -q "Read-only file system" <<<"$out" || fail "read-only mount: expected EROFS, got: $out"
tdefs_umount "$TDEFS_MNT"
umount "$TDEFS_WORK/ro-view"

# 8. A full backing file system: ENOSPC reaches the writer, no header is left half-written,
# and what was stored before stays readable.
small=$TDEFS_WORK/small
mkdir -p "$small"
mount -t tmpfs -o size=4m tmpfs "$small"
on_exit "umount -l '$small' 2>/dev/null || true"
mkdir -p "$small/backing" "$TDEFS_WORK/small-mnt"
"$TDEFS_BIN" --init --wallet "$wallet" "$small/backing" >/dev/null
tdefs_mount "$wallet" "$small/backing" "$TDEFS_WORK/small-mnt"
head -c 1000000 /dev/urandom >"$TDEFS_WORK/before.plain"
cp "$TDEFS_WORK/before.plain" "$TDEFS_WORK/small-mnt/before"
sync
out=$(dd if=/dev/urandom of="$TDEFS_WORK/small-mnt/filler" bs=64k count=200 conv=fsync 2>&1) &&
	fail "filling a 4 MiB backing file system with 12.8 MiB succeeded"
grep -q "No space left on device" <<<"$out" || fail "expected ENOSPC from the writer, got: $out"
# Creating files on the full file system fails cleanly too.
for i in 1 2 3 4 5; do
	: >"$TDEFS_WORK/small-mnt/new$i" 2>/dev/null || true
done
for f in "$small"/backing/*; do
	size=$(stat -c %s "$f")
	((size == 0 || size >= 4096)) || fail "$(basename "$f") has a half-written header ($size bytes)"
done
rm -f "$TDEFS_WORK/small-mnt/filler"
cmp "$TDEFS_WORK/before.plain" "$TDEFS_WORK/small-mnt/before" || fail "a file stored before ENOSPC changed"
tdefs_umount "$TDEFS_WORK/small-mnt"
tdefs_mount "$wallet" "$small/backing" "$TDEFS_WORK/small-mnt"
cmp "$TDEFS_WORK/before.plain" "$TDEFS_WORK/small-mnt/before" || fail "after remount, the file stored before ENOSPC changed"
for i in 1 2 3 4 5; do
	[[ ! -e $TDEFS_WORK/small-mnt/new$i ]] || [[ ! -s $TDEFS_WORK/small-mnt/new$i ]] ||
		fail "new$i has content"
	cat "$TDEFS_WORK/small-mnt/new$i" >/dev/null 2>&1 || [[ ! -e $TDEFS_WORK/small-mnt/new$i ]] ||
		fail "new$i exists but cannot be opened"
done
tdefs_umount "$TDEFS_WORK/small-mnt"
pass "uninitialised dir, missing/empty/other wallet, damaged headers, unknown key, read-only and full backing"
