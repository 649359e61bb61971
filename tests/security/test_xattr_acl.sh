#!/bin/bash
# POSIX ACLs and the xattr names an unprivileged user (uid 65534) could use against the root
# daemon, which stores every xattr on the backing files as root.
#  - an access ACL that denies uid 65534 a file its mode lets everyone read: reading fails with
#    EACCES (before, the mount stored the ACL and checked only the mode bits); one that grants
#    a 0600 file lets it read; chmod keeps the ACL's mask in step
#  - a default ACL on a directory: new files and directories inherit it, the umask does not
#    apply under it (POSIX), and it applies again where there is no default ACL
#  - uid 65534 cannot set security.selinux or any security.* name but security.capability on a
#    file it owns (nothing reaches the backing file), nor trusted.*; names planted on the backing
#    file that the mount does not serve are neither listed nor read
#  - security.capability set by root still works, and a write still removes it
#  - -o xattr_security=selinux serves that name instead; a bad list is refused
#  - -o xattr=off: ACLs are refused, as every xattr
# If the kernel cannot enforce ACLs on FUSE (no FUSE_CAP_POSIX_ACL), setfacl must be refused.
. "$(dirname "$0")/../mounted/lib.sh"

need_cmd setfacl acl
need_cmd getfacl acl
need_cmd setfattr attr
need_cmd getfattr attr
need_cmd setcap libcap2-bin
need_cmd getcap libcap2-bin
need_cmd /usr/bin/python3 python3-minimal # an absolute path: uid 65534 runs it too
is_plain && skip "needs the daemon: the backing directory itself enforces ACLs"

# The names of a file's xattrs as its caller sees them (listxattr), one a line.
list_names() { # CALLER(root|nobody) FILE
	local runner=()
	[[ $1 == nobody ]] && runner=(as_nobody)
	"${runner[@]}" /usr/bin/python3 -c 'import os, sys; print("\n".join(os.listxattr(sys.argv[1])))' "$2"
}

expect_refused() { # WHAT EXPECTED_MESSAGE CMD...
	local what=$1 expected=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		fail "$what succeeded"
	fi
	[[ $out == *"$expected"* ]] || fail "$what: expected '$expected', got: $out"
}

tdefs_setup
# uid 65534 needs to get into the mount; the mode of its root goes back before each unmount.
root_mode=$(stat -c %a "$TDEFS_MNT")
chmod 0755 "$TDEFS_MNT"
mkdir "$TDEFS_MNT/tmp"
chmod 1777 "$TDEFS_MNT/tmp"

acl_served=1
echo secret >"$TDEFS_MNT/open"
chmod 0644 "$TDEFS_MNT/open"
as_nobody cat "$TDEFS_MNT/open" >/dev/null || fail "control: uid 65534 cannot read a 0644 file"
if ! out=$(setfacl -m u:nobody:--- "$TDEFS_MNT/open" 2>&1); then
	[[ $out == *"Operation not supported"* ]] || fail "setfacl failed: $out"
	grep 'ACLs are refused' "$(tdefs_daemon_log)" >/dev/null ||
		fail "setfacl was refused but the daemon did not say why: $out"
	log "this kernel or backing filesystem cannot enforce ACLs: the mount refuses them"
	acl_served=0
fi

if ((acl_served)); then
	log "an access ACL that denies"
	getfacl -p --omit-header "$TDEFS_MNT/open" | grep '^user:nobody:---' >/dev/null ||
		fail "the ACL did not stick: $(getfacl -p --omit-header "$TDEFS_MNT/open")"
	expect_refused "uid 65534 reading a 0644 file whose ACL denies it" "Permission denied" \
		as_nobody cat "$TDEFS_MNT/open"
	as_nobody sh -c "echo x >>'$TDEFS_MNT/open'" 2>/dev/null &&
		fail "uid 65534 wrote a file whose ACL denies it"

	log "an access ACL that grants; chmod moves its mask"
	echo private >"$TDEFS_MNT/granted"
	chmod 0600 "$TDEFS_MNT/granted"
	expect_refused "control: uid 65534 reading a 0600 file" "Permission denied" \
		as_nobody cat "$TDEFS_MNT/granted"
	setfacl -m u:nobody:r-- "$TDEFS_MNT/granted"
	[[ $(as_nobody cat "$TDEFS_MNT/granted") == private ]] ||
		fail "uid 65534 cannot read a file whose ACL grants it read"
	[[ $(stat -c %a "$TDEFS_MNT/granted") == 640 ]] ||
		fail "the mode does not show the ACL mask: $(stat -c %a "$TDEFS_MNT/granted")"
	chmod 0600 "$TDEFS_MNT/granted"
	getfacl -p --omit-header "$TDEFS_MNT/granted" | grep '^mask::---' >/dev/null ||
		fail "chmod 0600 did not clear the ACL mask: $(getfacl -p --omit-header "$TDEFS_MNT/granted")"
	expect_refused "uid 65534 reading after chmod 0600 masked its ACL entry" "Permission denied" \
		as_nobody cat "$TDEFS_MNT/granted"

	log "a default ACL is inherited, and the umask does not apply under it"
	mkdir -m 0755 "$TDEFS_MNT/common"
	setfacl -d -m u::rwx,g::r-x,o::r-x,u:nobody:--- "$TDEFS_MNT/common"
	(
		umask 077
		echo inherited >"$TDEFS_MNT/common/file"
		mkdir "$TDEFS_MNT/common/sub"
	)
	acl=$(getfacl -p --omit-header "$TDEFS_MNT/common/file")
	[[ $acl == *"user:nobody:---"* ]] || fail "a new file did not inherit the default ACL: $acl"
	# open(0666) under the default ACL: owner rw-, mask r-- (r-x & rw-), other r--.
	[[ $(stat -c %a "$TDEFS_MNT/common/file") == 644 ]] ||
		fail "a file created under a default ACL has mode $(stat -c %a "$TDEFS_MNT/common/file"), not 644 (the umask 077 must not apply)"
	[[ $(stat -c %a "$TDEFS_MNT/common/sub") == 755 ]] ||
		fail "a directory created under a default ACL has mode $(stat -c %a "$TDEFS_MNT/common/sub"), not 755"
	getfacl -p --omit-header --default "$TDEFS_MNT/common/sub" | grep '^user:nobody:---' >/dev/null ||
		fail "a new directory did not inherit the default ACL as its own default"
	expect_refused "uid 65534 reading a file whose inherited ACL denies it" "Permission denied" \
		as_nobody cat "$TDEFS_MNT/common/file"
	expect_refused "uid 65534 listing a directory whose inherited ACL denies it" \
		"Permission denied" as_nobody ls "$TDEFS_MNT/common/sub"
fi

log "the umask applies where there is no default ACL"
(
	umask 077
	echo x >"$TDEFS_MNT/masked-file"
	mkdir "$TDEFS_MNT/masked-dir"
	mkfifo "$TDEFS_MNT/masked-fifo"
)
(
	umask 022
	echo x >"$TDEFS_MNT/umask-022"
)
for f in masked-file:600 masked-dir:700 masked-fifo:600 umask-022:644; do
	[[ $(stat -c %a "$TDEFS_MNT/${f%:*}") == "${f#*:}" ]] ||
		fail "${f%:*} has mode $(stat -c %a "$TDEFS_MNT/${f%:*}"), expected ${f#*:}"
done

log "uid 65534 and the security.* and trusted.* names"
as_nobody sh -c "echo mine >'$TDEFS_MNT/tmp/mine'"
as_nobody setfattr -n user.note -v ok "$TDEFS_MNT/tmp/mine" ||
	fail "control: uid 65534 cannot set user.* on its own file"
expect_refused "uid 65534 setting security.selinux on its own file" "Operation not supported" \
	as_nobody setfattr -n security.selinux -v system_u:object_r:shadow_t:s0 "$TDEFS_MNT/tmp/mine"
# The kernel itself asks for CAP_SYS_ADMIN for security.* names no loaded LSM claims (Smack's,
# here); security.selinux is the owner's to set while SELinux has no policy loaded.
expect_refused "uid 65534 setting security.SMACK64 on its own file" "Operation not" \
	as_nobody setfattr -n security.SMACK64 -v 1 "$TDEFS_MNT/tmp/mine"
expect_refused "uid 65534 setting trusted.overlay.opaque on its own file" "Operation not permitted" \
	as_nobody setfattr -n trusted.overlay.opaque -v y "$TDEFS_MNT/tmp/mine"
names=$(getfattr --absolute-names -d -m - "$TDEFS_BACKING/tmp/mine" 2>/dev/null || true)
[[ $names == *user.note* ]] || fail "control: user.note is not on the backing file"
[[ $names != *security.selinux* && $names != *security.SMACK64* && $names != *trusted.* ]] ||
	fail "a refused name reached the backing file: $names"
expect_refused "uid 65534 setting security.capability" "Operation not permitted" \
	as_nobody setcap cap_net_raw+ep "$TDEFS_MNT/tmp/mine"

log "names the mount does not serve, planted on the backing file, stay hidden"
setfattr -n security.selinux -v planted "$TDEFS_BACKING/tmp/mine"
setfattr -n trusted.note -v planted "$TDEFS_BACKING/tmp/mine"
expect_refused "reading a planted security.selinux through the mount" "No such attribute" \
	getfattr --absolute-names -n security.selinux "$TDEFS_MNT/tmp/mine"
[[ $(list_names root "$TDEFS_MNT/tmp/mine") != *security.selinux* ]] ||
	fail "the mount lists security.selinux, which it does not serve"
[[ $(list_names root "$TDEFS_MNT/tmp/mine") == *trusted.note* ]] ||
	fail "root does not see trusted.note in the list"
listed=$(list_names nobody "$TDEFS_MNT/tmp/mine")
[[ $listed == *user.note* && $listed != *trusted.* ]] ||
	fail "uid 65534 is listed trusted.* names (or not user.note): $listed"

log "security.capability: set by root, removed by a write"
cp /bin/true "$TDEFS_MNT/tool"
setcap cap_net_raw+ep "$TDEFS_MNT/tool"
[[ $(getcap "$TDEFS_MNT/tool") == *cap_net_raw* ]] || fail "setcap by root on the mount did not stick"
dd if=/dev/zero of="$TDEFS_MNT/tool" bs=1 count=1 conv=notrunc status=none
[[ -z $(getcap "$TDEFS_MNT/tool") ]] || fail "a write did not remove the file capability"
chmod "$root_mode" "$TDEFS_MNT"
tdefs_umount "$TDEFS_MNT"

log "-o xattr_security=selinux serves that name and no longer capability"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT" -o xattr_security=selinux
[[ $(getfattr --absolute-names --only-values -n security.selinux "$TDEFS_MNT/tmp/mine") == planted ]] ||
	fail "xattr_security=selinux does not serve security.selinux"
expect_refused "setcap on an xattr_security=selinux mount" "Operation not supported" \
	setcap cap_net_raw+ep "$TDEFS_MNT/tool"
tdefs_umount "$TDEFS_MNT"
for bad in "selinux::capability" "a/b" ""; do
	if out=$("$TDEFS_BIN" --wallet "$TDEFS_WALLET" -f -o "xattr_security=$bad" "$TDEFS_BACKING" "$TDEFS_MNT" 2>&1); then
		fail "-o xattr_security=$bad was accepted"
	fi
	[[ $out == *"-o xattr_security=$bad:"* ]] || fail "the error for -o xattr_security=$bad does not name the option: $out"
done

log "-o xattr=off refuses ACLs"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT" -o xattr=off
expect_refused "setfacl on an xattr=off mount" "Operation not supported" \
	setfacl -m u:nobody:r-- "$TDEFS_MNT/masked-file"
tdefs_umount "$TDEFS_MNT"
pass "ACLs $( ((acl_served)) && echo enforced || echo refused); security.* and trusted.* held"
