#!/usr/bin/env bash
# tderekey reads the backing directory the daemon names only if it is still the daemon's
# (docs/SECURITY.md, "Walking the backing tree"). The daemon holds its backing directory by
# descriptor, but tderekey status, files and rewrap open the path it reported. When the
# backing directory's parent belongs to another user (uid 65534 here), that user can rename the
# backing directory away and put a tree of their own at the path while the mount runs: root's
# tools would then report files, keys and states of the attacker's choosing. The daemon's
# status carries the directory's device and inode; the tools refuse a directory that is not it,
# and work again once the real one is back.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$tderekey"

parent=$TDEFS_WORK/users
mkdir "$parent"
chown 65534:65534 "$parent"
W=$TDEFS_WORK/wallet B=$parent/data.enc M=$TDEFS_WORK/mnt
tdefs_make_wallet "$W"
as_nobody mkdir -m 0700 "$B"
chown 0:0 "$B"
"$TDEFS_BIN" --init --wallet "$W" "$B" </dev/null >/dev/null 2>&1 || fail "--init failed"
tdefs_mount "$W" "$B" "$M"
echo real >"$M/real-file"
"$tderekey" files "$M" | grep -q "/real-file" || fail "tderekey files does not list the real file"

# The swap, by uid 65534, who owns the parent: the real directory moved aside, a fake in place.
as_nobody mv "$B" "$parent/moved" || fail "uid 65534 could not rename the backing directory (setup)"
as_nobody mkdir -m 0755 "$B"
as_nobody sh -c "head -c 8192 /dev/zero >'$B/planted-file'"
for command in "files" "status" "status --json"; do
	rc=0
	out=$("$tderekey" $command "$M" 2>&1) || rc=$?
	((rc != 0)) || fail "tderekey $command read the planted directory: $out"
	grep -q "planted" <<<"$out" && fail "tderekey $command showed the planted file: $out"
	grep -q "no longer the daemon's backing directory" <<<"$out" ||
		fail "tderekey $command: no message saying why: $out"
done
"$TDEKEY_BIN" set-key --wallet "$W" >/dev/null 2>&1
rc=0
out=$("$tderekey" rewrap "$M" 2>&1) || rc=$?
grep -q "planted" <<<"$out" && fail "tderekey rewrap looked at the planted directory: $out"
log "with a planted directory at the path: files, status and status --json refused; rewrap did not read it"

# The real directory back: everything works again.
as_nobody rm -rf "$B"
as_nobody mv "$parent/moved" "$B" || fail "could not move the real directory back"
"$tderekey" files "$M" | grep -q "/real-file" || fail "tderekey files does not work again"
"$tderekey" status "$M" >/dev/null || fail "tderekey status does not work again"
[[ $(cat "$M/real-file") == real ]] || fail "the mount does not read back"
tdefs_umount "$M"
pass "tderekey refuses a backing directory swapped under its path by the parent's owner"
