#!/usr/bin/env bash
# The control channel cannot be taken over by another local user (docs/SECURITY.md, "The control
# channel"). Replayed as uid 65534:
#  1. A squatter binds the names a daemon would use before it starts: abstract sockets
#     "tdefs-control-0:N" for every free device number, and socket files in /run/tdefs. The
#     daemon must mount with its own channel regardless, and tderekey must talk to it, not to
#     the squatter.
#  2. A fake server run by uid 65534 is put where the daemon's socket is (as if the attacker
#     could write /run/tdefs): tderekey refuses it, first for its owner, then (socket file
#     chowned to root) for its SO_PEERCRED uid, with exit 20; the daemon's socket put back, it
#     works again.
#  3. /run/tdefs planted as a symlink to the attacker's directory, or as a group-writable
#     directory: the daemon refuses to mount (in the background too: the error and a non-zero
#     exit reach the caller), nothing is created in the attacker's directory. And a real
#     daemon's socket under another mount's name is refused (its replies name its device).
#  4. A mount by a user other than root (uid 65534, /run/user/65534/tdefs): root's tderekey
#     talks to it, and refuses a server of yet another user (uid 65533) at its socket's place.
#     Needs /dev/fuse open to that user: it is made 0666 (Debian's mode) for the test and
#     restored after.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$tderekey"
need_cmd perl perl-base

# fake_server READY_FILE REPLY ADDRESS...: as the calling user, listen on each ADDRESS (a path,
# or @name for an abstract name) and answer every connection with REPLY ("\n" for newlines) at once,
# greeting and reply in one, without waiting for the request.
cat >"$TDEFS_WORK/fake_server.pl" <<'EOF'
use strict; use warnings; use Socket; use IO::Select;
my ($ready, $reply, @addresses) = @ARGV;
my $select = IO::Select->new;
my $bound = 0;
for my $address (@addresses) {
	my $name = $address =~ s/^@/\0/r;
	socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
	if (bind($s, pack_sockaddr_un($name)) && listen($s, 8)) { $select->add($s); $bound++; }
	else { print STDERR "fake server: cannot bind $address: $!\n"; }
}
open(my $r, '>', "$ready.tmp") or die "$ready: $!"; print $r "$bound\n"; close $r;
rename("$ready.tmp", $ready) or die "$ready: $!";
exit 1 unless $bound;
$reply =~ s/\\n/\n/g;
while (my @ready = $select->can_read) {
	for my $s (@ready) { accept(my $c, $s) or next; print $c $reply; close $c; }
}
EOF
chmod 0644 "$TDEFS_WORK/fake_server.pl"
attacker=$TDEFS_WORK/attacker
mkdir -m 1777 "$attacker" # the fake servers of both users leave their ready files here
chown 65534:65534 "$attacker"

fake_pids=()
on_exit 'for p in "${fake_pids[@]}"; do kill "$p" 2>/dev/null; done; true'
# start_fake UID TAG REPLY ADDRESS...: start a fake server as UID (no groups, no capabilities),
# wait until it has bound; sets fake_bound to how many addresses it got. setpriv is run
# directly (not through a function) so that $! is the server itself, for the cleanup's kill.
start_fake() {
	local uid=$1 tag=$2 reply=$3 i
	shift 3
	local ready=$attacker/$tag.ready
	setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --bounding-set=-all -- \
		perl "$TDEFS_WORK/fake_server.pl" "$ready" "$reply" "$@" 2>"$TDEFS_WORK/$tag.log" &
	fake_pids+=($!)
	for ((i = 0; i < 100; i++)); do
		[[ -s $ready ]] && break
		sleep 0.05
	done
	[[ -s $ready ]] || fail "fake server $tag did not start: $(cat "$TDEFS_WORK/$tag.log")"
	fake_bound=$(cat "$ready")
}

impostor_reply='backing /IMPOSTOR-BACKING\nwallet /IMPOSTOR-WALLET\nactive_key 00000000000000000000000000000000\nkeys 1\ncache auto\nrewrap_state done\ndata_state done\ndata_files 1000\ndata_changed 1000\nok\n'

# ---- 1. squatting before the daemon starts --------------------------------------------------
# Anonymous device numbers (major 0) are handed out lowest free first: squat every free one up
# to well past the highest in use.
declare -A used=()
while read -r device; do
	[[ $device == 0:* ]] && used[${device#0:}]=1
done < <(awk '{ print $3 }' /proc/self/mountinfo)
highest=0
for minor in "${!used[@]}"; do ((minor > highest)) && highest=$minor; done
names=() files=()
for ((minor = 1; minor <= highest + 64 && ${#names[@]} < 400; minor++)); do
	[[ -n ${used[$minor]:-} ]] && continue
	names+=("@tdefs-control-0:$minor")
	files+=("/run/tdefs/control-0:$minor.sock")
done
start_fake 65534 squat-abstract "$impostor_reply" "${names[@]}"
((fake_bound == ${#names[@]})) || fail "the squatter bound only $fake_bound of ${#names[@]} abstract names"
# The socket directory exists once a daemon has run; make sure it does, as root would have it.
[[ -e /run/tdefs ]] || { mkdir -m 0755 /run/tdefs; on_exit "rmdir /run/tdefs 2>/dev/null; true"; }
rc=0
as_nobody timeout 5 perl "$TDEFS_WORK/fake_server.pl" "$attacker/squat-files.ready" "$impostor_reply" \
	"${files[@]:0:20}" 2>"$TDEFS_WORK/squat-files.log" || rc=$?
[[ $(cat "$attacker/squat-files.ready" 2>/dev/null) == 0 ]] && ((rc != 0)) ||
	fail "uid 65534 could create control sockets in /run/tdefs: $(cat "$TDEFS_WORK/squat-files.log")"
log "squatter holds ${#names[@]} abstract names; creating sockets in /run/tdefs refused"

tdefs_setup
device=$(awk -v m="$TDEFS_MNT" '$5 == m { print $3 }' /proc/self/mountinfo)
out=$("$tderekey" status "$TDEFS_MNT" 2>&1) || fail "tderekey status on a squatted mount failed: $out"
grep -q IMPOSTOR <<<"$out" && fail "tderekey talked to the squatter (device $device): $out"
grep -q "^wallet  *$TDEFS_WALLET\$" <<<"$out" || fail "tderekey status did not show the daemon's wallet: $out"
grep -qi "address already in use\|control channel unavailable" "$(tdefs_daemon_log)" &&
	fail "the daemon lost its channel to the squatter: $(cat "$(tdefs_daemon_log)")"
socket=/run/tdefs/control-$device.sock
[[ -S $socket && $(stat -c %u:%a "$socket") == 0:600 ]] ||
	fail "the daemon's socket $socket is missing or not root's 0600: $(ls -l "$socket" 2>&1)"
log "the daemon serves $socket; tderekey talks to it, not to the squatter"

# ---- 2. a fake server at the socket's place ---------------------------------------------------
# The attacker's socket is made on the same file system as /run/tdefs, so that root can move
# it into place (a rename keeps the listener), as if the attacker could write /run/tdefs.
staging=$(mktemp -d /run/tdefs-test.XXXXXX)
on_exit "rm -rf '$staging'"
chown 65534:65534 "$staging"
start_fake 65534 fake-peer "device $device\nmount_point $TDEFS_MNT\n$impostor_reply" "$staging/sock"
mv "$socket" "$socket.saved"
on_exit "[[ -e '$socket.saved' ]] && mv -f '$socket.saved' '$socket'; true"
mv "$staging/sock" "$socket"
rc=0
out=$("$tderekey" status "$TDEFS_MNT" 2>&1) || rc=$?
((rc == 20)) && grep -q "refusing the control socket" <<<"$out" && ! grep -q IMPOSTOR <<<"$out" ||
	fail "a socket owned by uid 65534 in /run/tdefs: expected a refusal with exit 20, got $rc: $out"
log "socket owned by uid 65534: $out"
chown 0:0 "$socket"
chmod 0600 "$socket"
rc=0
out=$("$tderekey" data "$TDEFS_MNT" 2>&1) || rc=$?
((rc == 20)) && grep -q "served by uid 65534" <<<"$out" && ! grep -q "1000" <<<"$out" ||
	fail "a root-owned socket served by uid 65534: expected a refusal with exit 20, got $rc: $out"
log "root-owned socket, server uid 65534: $out"
mv -f "$socket.saved" "$socket"
"$tderekey" status "$TDEFS_MNT" >/dev/null || fail "tderekey status fails after the daemon's socket was put back"

# ---- 3. the daemon refuses to mount without a channel of its own ------------------------------
backing2=$TDEFS_WORK/backing2
mnt2=$TDEFS_WORK/mnt2
tdefs_init_backing "$TDEFS_WALLET" "$backing2"
mkdir -p "$mnt2"
on_exit "mountpoint -q '$mnt2' && fusermount3 -u '$mnt2'; true"
saved_run=/run/tdefs.test-saved.$$
mv /run/tdefs "$saved_run"
on_exit "if [[ -d '$saved_run' ]]; then rm -rf /run/tdefs; mv '$saved_run' /run/tdefs; fi"
# expect_no_mount WHAT PATTERN: the daemon, in the background as from fstab, must refuse.
expect_no_mount() {
	local what=$1 pattern=$2 rc=0 out
	out=$("$TDEFS_BIN" --wallet "$TDEFS_WALLET" "$backing2" "$mnt2" 2>&1 </dev/null) || rc=$?
	if mountpoint -q "$mnt2"; then
		fusermount3 -u "$mnt2"
		fail "$what: mounted although its control channel could not be made: $out"
	fi
	((rc != 0)) || fail "$what: tdefs exited 0 without mounting: $out"
	grep -q -- "$pattern" <<<"$out" || fail "$what: expected '$pattern', got: $out"
	log "$what: $out"
}
ln -s "$attacker" /run/tdefs
expect_no_mount "/run/tdefs a symlink to uid 65534's directory" "/run/tdefs is a symlink"
[[ -z $(find "$attacker" -type s) ]] || fail "the daemon made a socket in the attacker's directory"
rm /run/tdefs
mkdir -m 0775 /run/tdefs
chgrp 65534 /run/tdefs
expect_no_mount "/run/tdefs group-writable" "chmod 0755 /run/tdefs"
rmdir /run/tdefs
mv "$saved_run" /run/tdefs
"$tderekey" status "$TDEFS_MNT" >/dev/null || fail "tderekey status fails after /run/tdefs was restored"
# A genuine daemon, but of another mount (as a stale name would lead to): refused too.
tdefs_mount "$TDEFS_WALLET" "$backing2" "$mnt2"
device2=$(awk -v m="$mnt2" '$5 == m { print $3 }' /proc/self/mountinfo)
mv "$socket" "$socket.saved"
ln "/run/tdefs/control-$device2.sock" "$socket"
rc=0
out=$("$tderekey" status "$TDEFS_MNT" 2>&1) || rc=$?
((rc == 20)) && grep -q "comes from the daemon of device $device2" <<<"$out" ||
	fail "the socket of $mnt2's daemon under $TDEFS_MNT's name: expected a refusal with exit 20, got $rc: $out"
log "another mount's daemon: $out"
rm "$socket"
mv "$socket.saved" "$socket"
tdefs_umount "$mnt2"

# ---- 4. a mount by another user -----------------------------------------------------------------
fuse_mode=$(stat -c %a /dev/fuse)
chmod 0666 /dev/fuse
on_exit "chmod $fuse_mode /dev/fuse"
if [[ ! -d /run/user/65534 ]]; then
	mkdir -p /run/user
	mkdir -m 0700 /run/user/65534
	on_exit "rm -rf /run/user/65534"
fi
chown 65534:65534 /run/user/65534
user_work=$TDEFS_WORK/user
mkdir -m 0700 "$user_work"
chown 65534:65534 "$user_work"
as_nobody env HOME="$user_work" "$TDEKEY_BIN" create --wallet "$user_work/wallet" --auto-login \
	>"$TDEFS_WORK/user-wallet.log" 2>&1 || fail "tdekey create as uid 65534: $(cat "$TDEFS_WORK/user-wallet.log")"
as_nobody mkdir "$user_work/backing" "$user_work/mnt"
as_nobody "$TDEFS_BIN" --init --wallet "$user_work/wallet" "$user_work/backing" \
	>"$TDEFS_WORK/user-init.log" 2>&1 || fail "tdefs --init as uid 65534: $(cat "$TDEFS_WORK/user-init.log")"
# Not as_nobody: a user's mount goes through the set-user-ID fusermount3, which an empty
# capability bounding set would leave powerless; a login session keeps the full one.
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- \
	env -u XDG_RUNTIME_DIR "$TDEFS_BIN" --wallet "$user_work/wallet" -f "$user_work/backing" \
	"$user_work/mnt" </dev/null >"$TDEFS_WORK/user-daemon.log" 2>&1 &
user_pid=$!
on_exit "fusermount3 -u '$user_work/mnt' 2>/dev/null; wait $user_pid 2>/dev/null; true"
for ((i = 0; i < 200; i++)); do
	tdefs__in_mount_table "$user_work/mnt" && break
	kill -0 "$user_pid" 2>/dev/null || fail "the mount by uid 65534 failed: $(cat "$TDEFS_WORK/user-daemon.log")"
	sleep 0.05
done
user_device=$(awk -v m="$user_work/mnt" '$5 == m { print $3 }' /proc/self/mountinfo)
[[ -n $user_device ]] || fail "the mount by uid 65534 did not appear: $(cat "$TDEFS_WORK/user-daemon.log")"
user_socket=/run/user/65534/tdefs/control-$user_device.sock
[[ -S $user_socket && $(stat -c %u:%a "$user_socket") == 65534:600 ]] ||
	fail "the socket of uid 65534's mount is missing or wrong: $(ls -l "$user_socket" 2>&1)"
out=$("$tderekey" status "$user_work/mnt" 2>&1) || fail "root's tderekey on uid 65534's mount failed: $out"
grep -q "^wallet  *$user_work/wallet\$" <<<"$out" || fail "root's tderekey on uid 65534's mount: $out"
log "root's tderekey talks to the daemon of uid 65534 at $user_socket"
other_staging=$(mktemp -d /run/tdefs-test.XXXXXX)
on_exit "rm -rf '$other_staging'"
chown 65533:65533 "$other_staging"
start_fake 65533 other-user "device $user_device\nmount_point $user_work/mnt\n$impostor_reply" \
	"$other_staging/sock"
mv "$user_socket" "$user_socket.saved"
on_exit "[[ -e '$user_socket.saved' ]] && mv -f '$user_socket.saved' '$user_socket'; true"
mv "$other_staging/sock" "$user_socket"
chown 65534:65534 "$user_socket"
rc=0
out=$("$tderekey" status "$user_work/mnt" 2>&1) || rc=$?
((rc == 20)) && grep -q "served by uid 65533" <<<"$out" && ! grep -q IMPOSTOR <<<"$out" ||
	fail "uid 65534's mount, a server of uid 65533: expected a refusal with exit 20, got $rc: $out"
log "uid 65534's mount, server uid 65533: $out"
mv -f "$user_socket.saved" "$user_socket"
"$tderekey" status "$user_work/mnt" >/dev/null || fail "tderekey fails on uid 65534's mount after the socket was put back"
fusermount3 -u "$user_work/mnt"
rc=0
wait "$user_pid" || rc=$?
((rc == 0)) || fail "the daemon of uid 65534 exited with $rc: $(cat "$TDEFS_WORK/user-daemon.log")"
[[ ! -e $user_socket ]] || fail "the daemon of uid 65534 left its socket $user_socket behind"

pass "squatted names ignored, fake servers refused (owner, peer uid, another user's mount), no mount without a channel"
