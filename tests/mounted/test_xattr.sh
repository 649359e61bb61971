#!/bin/bash
# Extended attributes and the kernel's per-write file-capability check.
#  - default mount: xattrs round-trip; the daemon remembers that a file has no
#    security.capability (the kernel asks on a file's first buffered write: test_killpriv.sh), and forgets it when one
#    is set: a file given a capability after such writes loses it on its next write, as on any
#    filesystem (the kernel must see it to remove it)
#  - -o xattr=off: the mount serves no extended attributes, and the kernel stops asking
#  - with xattr=off: setfattr/getfattr fail with "Operation not supported", nothing reaches the
#    backing file, and after 400 buffered writes the trace shows at most one GETXATTR (the one
#    answered ENOSYS): the per-write security.capability lookup that docs/PERFORMANCE.md
#    measures is gone (the default mount sends one per file since FUSE_HANDLE_KILLPRIV_V2).
#  - data written with xattr=off reads back on a default mount (the option is not on disk)
#  - a bad value is refused with a one-line error naming the option
. "$(dirname "$0")/lib.sh"

need_cmd setfattr attr
need_cmd getfattr attr
need_cmd setcap libcap2-bin
need_cmd getcap libcap2-bin
is_plain && skip "needs the daemon's request trace"

count_getxattr() { # daemon log
	grep -c 'opcode: GETXATTR' "$1" || true
}

buffered_writes() { # file: 400 separate 4 KiB write(2) calls into the page cache
	dd if=/dev/urandom of="$1" bs=4096 count=400 conv=notrunc status=none
}

tdefs_setup -d
log "control: default mount serves xattrs"
echo data >"$TDEFS_MNT/control"
setfattr -n user.tdefs -v on "$TDEFS_MNT/control"
[[ $(getfattr --absolute-names --only-values -n user.tdefs "$TDEFS_MNT/control") == on ]] ||
	fail "the default mount does not return the xattr it was given"
before=$(count_getxattr "$(tdefs_daemon_log)")
buffered_writes "$TDEFS_MNT/written-on"
with_xattrs=$(($(count_getxattr "$(tdefs_daemon_log)") - before))
log "default mount: $with_xattrs GETXATTR requests for 400 buffered writes"
((with_xattrs >= 1)) || fail "the request trace shows no GETXATTR on the default mount"

log "file capabilities: set after writes that found none, removed by the next write"
cp /bin/true "$TDEFS_MNT/tool"
buffered_writes "$TDEFS_MNT/tool" # the daemon now knows: no capability
setcap cap_net_raw+ep "$TDEFS_MNT/tool"
[[ $(getcap "$TDEFS_MNT/tool") == *cap_net_raw* ]] || fail "setcap on the mount did not stick"
[[ $(getcap "$TDEFS_BACKING/tool") == *cap_net_raw* ]] || fail "the capability is not on the backing file"
dd if=/dev/zero of="$TDEFS_MNT/tool" bs=1 count=1 conv=notrunc status=none
[[ -z $(getcap "$TDEFS_MNT/tool") ]] ||
	fail "a write did not remove the file capability (the daemon still answered 'none'): $(getcap "$TDEFS_MNT/tool")"
tdefs_umount "$TDEFS_MNT"

tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT" -d -o xattr=off
log "xattr=off"
[[ $(cat "$TDEFS_MNT/control") == data ]] || fail "the file written before reads back wrong"
if out=$(setfattr -n user.other -v 1 "$TDEFS_MNT/control" 2>&1); then
	fail "setfattr succeeded on an xattr=off mount"
fi
[[ $out == *"Operation not supported"* ]] || fail "setfattr on xattr=off said: $out"
if out=$(getfattr --absolute-names -n user.tdefs "$TDEFS_MNT/control" 2>&1); then
	fail "getfattr succeeded on an xattr=off mount: $out"
fi
[[ $out == *"Operation not supported"* ]] || fail "getfattr on xattr=off said: $out"
getfattr --absolute-names -d -m - "$TDEFS_BACKING/control" 2>/dev/null | grep 'user.other' >/dev/null &&
	fail "an xattr set on the xattr=off mount reached the backing file"
buffered_writes "$TDEFS_MNT/written-off"
cp "$TDEFS_MNT/written-off" "$TDEFS_WORK/reference"
without=$(count_getxattr "$(tdefs_daemon_log)")
log "xattr=off: $without GETXATTR requests in the whole trace (setfattr, getfattr, 400 writes)"
((without <= 1)) || fail "xattr=off: the kernel sent $without GETXATTR requests (expected at most 1)"
tdefs_umount "$TDEFS_MNT"

log "data written with xattr=off reads back on a default mount; the old xattr is still there"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
cmp "$TDEFS_MNT/written-off" "$TDEFS_WORK/reference" || fail "data written with xattr=off differs"
[[ $(getfattr --absolute-names --only-values -n user.tdefs "$TDEFS_MNT/control") == on ]] ||
	fail "the xattr set before the xattr=off mount is gone"
tdefs_umount "$TDEFS_MNT"

log "a bad value is refused"
if out=$("$TDEFS_BIN" --wallet "$TDEFS_WALLET" -f -o xattr=maybe "$TDEFS_BACKING" "$TDEFS_MNT" 2>&1); then
	fail "-o xattr=maybe was accepted"
fi
[[ $out == *"-o xattr=maybe"* ]] || fail "the error for -o xattr=maybe does not name the option: $out"
pass "default mount: $with_xattrs GETXATTR for 400 writes; xattr=off: $without"
