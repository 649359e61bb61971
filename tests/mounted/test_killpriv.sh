#!/bin/bash
# Set-id bits and file capabilities on write, truncate, open(O_TRUNC) and chown, now that the
# mount clears them itself (FUSE_HANDLE_KILLPRIV_V2, fs/fuse_channel.c): each case is run on
# the mount and, with the same operations, on a plain directory of the backing filesystem, and
# the resulting mode and capability must be the same.
#  - non-owner (uid 65534) write, truncate and open(O_TRUNC) on a 06777 file: suid and sgid go
#  - non-owner fallocate (the kernel's bare SETATTR, no kill flag of its own)
#  - non-owner write on a 02766 file (sgid, no group exec): dropped when the writer is not in
#    the file's group, kept when it is
#  - non-owner O_DIRECT write: the request path that never sees the page cache
#  - root writer keeps suid and sgid (CAP_FSETID), as on ext4
#  - chown clears suid (and group-exec sgid)
#  - a file capability goes on write, on truncate and on open(O_TRUNC), by root or not
#  - the modes are the backing files' own: the same after a remount
#  - and the point of it all: 400 buffered writes to one file cost at most one GETXATTR of
#    security.capability (the kernel asks once per inode; without the flag, once per write)
. "$(dirname "$0")/lib.sh"

need_cmd setcap libcap2-bin
need_cmd getcap libcap2-bin
is_plain && skip "compares the mount with the plain backing filesystem"

tdefs_setup -d
REF=$TDEFS_WORK/ref
mkdir -m 0777 "$REF" "$TDEFS_MNT/t"
chmod 0777 "$TDEFS_MNT/t"

# Each case: NAME MODE SETUP-CAP(0/1) WHO(root/nobody) GROUP ACTION, ACTION a command with F
# for the file.
cases=()
add_case() { # NAME MODE CAP WHO GROUP ACTION (GROUP: the file's gid)
	local IFS='|'
	cases+=("$*")
}
add_case write_nonowner 6777 0 nobody 0 'dd if=/dev/zero of="$F" bs=1 count=1 seek=5 conv=notrunc status=none'
add_case truncate_nonowner 6777 0 nobody 0 'truncate -s 3 "$F"'
add_case open_trunc_nonowner 6777 0 nobody 0 ': >"$F"'
add_case fallocate_nonowner 6777 0 nobody 0 'fallocate -l 65536 "$F"'
add_case write_sgid_noexec 2766 0 nobody 0 'dd if=/dev/zero of="$F" bs=1 count=1 conv=notrunc status=none'
add_case write_sgid_noexec_ingroup 2766 0 nobody 65534 'dd if=/dev/zero of="$F" bs=1 count=1 conv=notrunc status=none'
add_case direct_write_nonowner 6777 0 nobody 0 'dd if=/dev/zero of="$F" bs=4096 count=1 oflag=direct conv=notrunc status=none'
add_case write_root 6755 0 root 0 'dd if=/dev/zero of="$F" bs=1 count=1 conv=notrunc status=none'
add_case truncate_root 6755 0 root 0 'truncate -s 3 "$F"'
add_case chown_root 6755 0 root 0 'chown 65534 "$F"'
add_case chown_sgid_exec 2775 0 root 0 'chgrp 65534 "$F"'
add_case cap_write_root 0755 1 root 0 'dd if=/dev/zero of="$F" bs=1 count=1 conv=notrunc status=none'
add_case cap_write_nonowner 0777 1 nobody 0 'dd if=/dev/zero of="$F" bs=1 count=1 conv=notrunc status=none'
add_case cap_truncate_root 0755 1 root 0 'truncate -s 3 "$F"'
add_case cap_open_trunc_root 0755 1 root 0 ': >"$F"'

run_case() { # DIR NAME MODE CAP WHO GROUP ACTION: prints "mode caps"
	local dir=$1 name=$2 mode=$3 cap=$4 who=$5 group=$6 action=$7 F
	F=$dir/$name
	head -c 8192 /dev/urandom >"$F"
	chgrp "$group" "$F"
	chmod "$mode" "$F"
	if ((cap)); then
		setcap cap_net_raw+ep "$F" || fail "$name: setcap failed in $dir"
		[[ -n $(getcap "$F") ]] || fail "$name: the capability did not stick in $dir"
	fi
	if [[ $who == nobody ]]; then
		as_nobody env F="$F" sh -c "$action" || fail "$name: the action failed as uid 65534 in $dir"
	else
		F=$F sh -c "$action" || fail "$name: the action failed as root in $dir"
	fi
	echo "$(stat -c %a "$F") caps=[$(getcap "$F" | awk '{print $2}')]"
}

declare -A on_mount=()
for c in "${cases[@]}"; do
	IFS='|' read -r name mode cap who group action <<<"$c"
	want=$(run_case "$REF" "$name" "$mode" "$cap" "$who" "$group" "$action")
	got=$(run_case "$TDEFS_MNT/t" "$name" "$mode" "$cap" "$who" "$group" "$action")
	log "$name: backing filesystem $want, mount $got"
	[[ $got == "$want" ]] || fail "$name ($mode, $who: $action): the mount gives $got, the backing filesystem $want"
	on_mount[$name]=$want
done
# The cases must test something: set-id bits cleared in one, kept in another, a capability gone.
[[ ${on_mount[write_nonowner]} == "777 "* ]] || fail "the reference did not clear suid/sgid: ${on_mount[write_nonowner]}"
[[ ${on_mount[write_root]} == "6755 "* ]] || fail "the reference did not keep suid/sgid for root: ${on_mount[write_root]}"
[[ ${on_mount[cap_write_root]} == *"caps=[]" ]] || fail "the reference kept the capability: ${on_mount[cap_write_root]}"

log "after a remount: the modes are the backing files' own"
tdefs_remount
for c in "${cases[@]}"; do
	name=${c%%|*}
	got="$(stat -c %a "$TDEFS_MNT/t/$name") caps=[$(getcap "$TDEFS_MNT/t/$name" | awk '{print $2}')]"
	[[ $got == "${on_mount[$name]}" ]] || fail "$name after a remount: $got, the backing filesystem ${on_mount[$name]}"
done

log "400 buffered writes: the kernel asks for security.capability once, not per write"
before=$(grep -c 'opcode: GETXATTR' "$(tdefs_daemon_log)" || true)
dd if=/dev/urandom of="$TDEFS_MNT/t/many" bs=4096 count=400 conv=notrunc status=none
dd if=/dev/urandom of="$TDEFS_MNT/t/many" bs=4096 count=400 conv=notrunc status=none
asked=$(($(grep -c 'opcode: GETXATTR' "$(tdefs_daemon_log)" || true) - before))
log "$asked GETXATTR requests for 800 buffered writes"
((asked <= 2)) || fail "$asked GETXATTR requests for 800 buffered writes: the superblock is not SB_NOSEC (FUSE_HANDLE_KILLPRIV_V2 not in force)"
pass
