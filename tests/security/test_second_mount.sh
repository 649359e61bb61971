#!/usr/bin/env bash
# One daemon per backing directory (docs/SECURITY.md, "One daemon per backing directory"). Two
# daemons on one backing directory corrupt each other's files (a data rekey on one rewrote
# files the other was writing). While a mount is up:
#  1. uid 65534 cannot take the backing directory's lock to keep the daemon from mounting (the
#     backing root is closed to it);
#  2. a second mount of the same directory (by root, in the background as from fstab) is
#     refused with a message naming the mount point that holds it, and nothing is mounted;
#  3. `tdefs --init` and `tdefs --check --repair` on it are refused the same way, and change
#     nothing; a plain (read-only) `tdefs --check` runs, with a note naming the mount;
#  4. the data written (and fsync'ed) through the mount is intact, before and after a remount;
#     once unmounted, --check --repair runs and the directory mounts again.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
need_cmd flock util-linux

tdefs_setup
head -c 3000000 /dev/urandom >"$TDEFS_WORK/data.plain"
dd if="$TDEFS_WORK/data.plain" of="$TDEFS_MNT/data" bs=64k conv=fsync status=none
mkdir "$TDEFS_MNT/dir"
echo "small file" >"$TDEFS_MNT/dir/small"
sync

# backing_digest: content and mtime of every backing file (what a refused command must not change).
backing_digest() {
	(cd "$TDEFS_BACKING" && find . -type f -printf '%p %T@ %s\n' | sort && find . -type f -exec sha256sum {} + | sort)
}
before=$(backing_digest)

# ---- 1. the lock is not for others to take -------------------------------------------------------
as_nobody flock -n "$TDEFS_BACKING" true 2>/dev/null &&
	fail "uid 65534 could open and lock the backing directory $TDEFS_BACKING"
log "uid 65534 cannot open the backing directory to hold its lock"

# ---- 2. a second mount ---------------------------------------------------------------------------
mnt2=$TDEFS_WORK/mnt2
mkdir -p "$mnt2"
on_exit "mountpoint -q '$mnt2' && fusermount3 -u '$mnt2'; true"
rc=0
out=$("$TDEFS_BIN" --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" "$mnt2" 2>&1 </dev/null) || rc=$?
if mountpoint -q "$mnt2"; then
	fusermount3 -u "$mnt2"
	fail "a second daemon mounted $TDEFS_BACKING on $mnt2 while it is mounted on $TDEFS_MNT"
fi
((rc != 0)) || fail "the second mount exited 0: $out"
grep -q "in use: mounted on $TDEFS_MNT" <<<"$out" || fail "the second mount's refusal does not name $TDEFS_MNT: $out"
log "second mount: $out"

# ---- 3. --init, --check --repair, --check ------------------------------------------------------
rc=0
out=$("$TDEFS_BIN" --init --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1 </dev/null) || rc=$?
((rc != 0)) && grep -q "in use: mounted on $TDEFS_MNT" <<<"$out" ||
	fail "--init on a mounted backing directory: expected a refusal naming $TDEFS_MNT, got $rc: $out"
log "--init: $out"
rc=0
out=$("$TDEFS_BIN" --check --repair --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1 </dev/null) || rc=$?
((rc == 14)) && grep -q "in use: mounted on $TDEFS_MNT" <<<"$out" ||
	fail "--check --repair on a mounted backing directory: expected exit 14 naming $TDEFS_MNT, got $rc: $out"
log "--check --repair: $out"
rc=0
out=$("$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1 </dev/null) || rc=$?
((rc == 0)) || fail "a plain --check of the mounted, clean directory exited $rc: $out"
grep -q "note: in use, mounted on $TDEFS_MNT" <<<"$out" || fail "a plain --check did not note the mount: $out"
log "plain --check runs next to the daemon, with a note"
[[ $(backing_digest) == "$before" ]] || fail "a refused command changed the backing files"

# ---- 4. the data is intact ------------------------------------------------------------------------
cmp "$TDEFS_WORK/data.plain" "$TDEFS_MNT/data" || fail "data changed while the second daemon was refused"
tdefs_remount
cmp "$TDEFS_WORK/data.plain" "$TDEFS_MNT/data" || fail "data changed (read from the backing files after a remount)"
[[ $(cat "$TDEFS_MNT/dir/small") == "small file" ]] || fail "dir/small changed"
tdefs_umount "$TDEFS_MNT"
out=$("$TDEFS_BIN" --check --repair --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1 </dev/null) ||
	fail "--check --repair of the unmounted directory failed: $out"
grep -q "note:" <<<"$out" && fail "--check of the unmounted directory says it is in use: $out"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
cmp "$TDEFS_WORK/data.plain" "$TDEFS_MNT/data" || fail "data changed after --check --repair"

pass "second mount, --init and --check --repair refused naming $TDEFS_MNT; data intact"
