#!/usr/bin/env bash
# The backing directory is the daemon's alone (docs/SECURITY.md, "The backing directory is the
# daemon's alone"). Backing objects carry the owners and modes the mount shows, so if others
# could enter the backing directory, uid 65534 could copy the ciphertext of a root-only file
# (from a leaked backup) over a backing file it owns and read the plaintext through the mount:
# the daemon would decrypt it for them. Checked:
#  1. as uid 65534: listing, entering, reading .tdefs.conf and copying a backup's ciphertext into
#     its own backing file all fail; through the mount its file still reads as its own content;
#  2. `tdefs --init` makes the backing root 0700 and owned by the mounting user, .tdefs.conf
#     0600;
#  3. a mount (and --check --repair) refuses a backing root that others can enter (0755, 0710,
#     0701, 0770) or that another user owns, with the chmod/chown that fixes it; the mount root
#     shows (and chmod changes) the mount point's mode, the backing root stays 0700.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"

tdefs_setup
secret="root-only secret $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$secret" >"$TDEFS_MNT/secret"
chmod 0600 "$TDEFS_MNT/secret"
mkdir -m 1777 "$TDEFS_MNT/common"
as_nobody sh -c "echo 'my own file' >'$TDEFS_MNT/common/mine'" || fail "uid 65534 cannot write its own file on the mount"
tdefs_remount
# The leaked backup: a copy of the backing directory that uid 65534 can read.
cp "$TDEFS_BACKING/secret" "$TDEFS_WORK/backup-secret"
chmod 0644 "$TDEFS_WORK/backup-secret"

# ---- 1. the attack ----------------------------------------------------------------------------
as_nobody ls "$TDEFS_BACKING" >/dev/null 2>&1 && fail "uid 65534 can list the backing directory"
as_nobody cat "$TDEFS_BACKING/.tdefs.conf" >/dev/null 2>&1 && fail "uid 65534 can read $TDEFS_BACKING/.tdefs.conf"
as_nobody stat "$TDEFS_BACKING/common/mine" >/dev/null 2>&1 && fail "uid 65534 can reach its backing file common/mine"
as_nobody cp "$TDEFS_WORK/backup-secret" "$TDEFS_BACKING/common/mine" 2>/dev/null &&
	log "uid 65534 copied the backup's ciphertext over its own backing file"
tdefs_remount
out=$(as_nobody cat "$TDEFS_MNT/common/mine" 2>&1) || true
grep -qF "$secret" <<<"$out" && fail "uid 65534 read the root-only secret through its own file: the decryption oracle is open"
[[ $out == "my own file" ]] || fail "uid 65534's file reads wrong: $out"
as_nobody cat "$TDEFS_MNT/secret" >/dev/null 2>&1 && fail "uid 65534 read the root-only file through the mount"
log "uid 65534 cannot enter the backing directory; its file reads as its own"

# ---- 2. --init ------------------------------------------------------------------------------------
fresh=$TDEFS_WORK/fresh
mkdir -m 0777 "$fresh"
chown 65534:65534 "$fresh"
"$TDEFS_BIN" --init --wallet "$TDEFS_WALLET" "$fresh" >/dev/null || fail "tdefs --init $fresh failed"
[[ $(stat -c %u:%a "$fresh") == 0:700 ]] || fail "--init left the backing root $(stat -c %U:%a "$fresh"), expected root:700"
[[ $(stat -c %u:%a "$fresh/.tdefs.conf") == 0:600 ]] ||
	fail "--init wrote .tdefs.conf $(stat -c %U:%a "$fresh/.tdefs.conf"), expected root:600"
log "--init made $fresh root's 0700, .tdefs.conf 0600"

# ---- 3. refused modes and owners --------------------------------------------------------------------
mnt2=$TDEFS_WORK/mnt2
mkdir -p "$mnt2"
on_exit "mountpoint -q '$mnt2' && fusermount3 -u '$mnt2'; true"
# expect_refused WHAT PATTERN: neither a mount nor --check --repair accepts $fresh.
expect_refused() {
	local what=$1 pattern=$2 rc=0 out
	out=$("$TDEFS_BIN" --wallet "$TDEFS_WALLET" "$fresh" "$mnt2" 2>&1 </dev/null) || rc=$?
	if mountpoint -q "$mnt2"; then
		fusermount3 -u "$mnt2"
		fail "$what: mounted a backing directory others can enter"
	fi
	((rc != 0)) && grep -qF -- "$pattern" <<<"$out" || fail "$what: expected a refusal with '$pattern', got $rc: $out"
	log "$what: $out"
	rc=0
	out=$("$TDEFS_BIN" --check --repair "$fresh" 2>&1 </dev/null) || rc=$?
	((rc == 14)) && grep -qF -- "$pattern" <<<"$out" ||
		fail "$what: --check --repair: expected exit 14 with '$pattern', got $rc: $out"
}
for mode in 0755 0710 0701 0770; do
	chmod "$mode" "$fresh"
	expect_refused "backing root $mode" "fix: chmod 0700 $fresh"
done
chmod 0700 "$fresh"
chown 65534 "$fresh"
expect_refused "backing root owned by uid 65534" "fix: chown 0 $fresh"
chown 0 "$fresh"
# The mount root shows the mount point's owner and mode, and chmod on it changes the mount
# point, never the backing root: users reach the mount, not the backing directory.
chmod 0755 "$mnt2"
tdefs_mount "$TDEFS_WALLET" "$fresh" "$mnt2"
[[ $(stat -c %a "$mnt2") == 755 ]] || fail "the mount root shows mode $(stat -c %a "$mnt2"), not its mount point's 755"
chmod 0751 "$mnt2"
[[ $(stat -c %a "$mnt2") == 751 && $(stat -c %a "$fresh") == 700 ]] ||
	fail "chmod 0751 on the mount root: mount root $(stat -c %a "$mnt2"), backing root $(stat -c %a "$fresh")"
as_nobody ls "$fresh" >/dev/null 2>&1 && fail "uid 65534 can list the backing root after a chmod on the mount root"
tdefs_umount "$mnt2"
[[ $(stat -c %a "$mnt2") == 751 ]] || fail "chmod on the mount root did not reach the mount point"

pass "backing root closed to others: no ciphertext swap; --init makes it 0700; mount refuses 0755 with the chmod fix"
