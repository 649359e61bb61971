#!/usr/bin/env bash
# Where the daemon takes a password wallet's password from (README, "Operations"): never argv.
#  1. -o password_file=F (the fstab form of --password-file) mounts, and the data reads back;
#  2. --password-fd N with a pipe mounts;
#  3. a password file that another user owns or may write is refused with one line naming it
#     and its fix, and nothing is mounted: the daemon would take its keys from a password
#     someone else chose (uid 65534 owning it, or mode 0666);
#  4. -o password_file= with a relative name is refused; a wrong password in the file fails
#     with the wallet's message and no prompt (stdin is not a terminal).
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"

W=$TDEFS_WORK/wallet B=$TDEFS_WORK/backing M=$TDEFS_WORK/mnt pw=$TDEFS_WORK/password
printf 'correct horse battery staple\n' >"$pw"
chmod 0600 "$pw"
"$TDEKEY_BIN" create --wallet "$W" --password-file "$pw" </dev/null >/dev/null 2>&1 ||
	fail "tdekey create with a password file failed"
mkdir -m 0700 "$B" "$M"
"$TDEFS_BIN" --init --wallet "$W" --password-file "$pw" "$B" </dev/null >/dev/null 2>&1 ||
	fail "tdefs --init with a password file failed"

# ---- 1. -o password_file= -------------------------------------------------------------------------
tdefs_mount "$W" "$B" "$M" -o "password_file=$pw"
head -c 100000 /dev/urandom >"$TDEFS_WORK/data.ref"
cp "$TDEFS_WORK/data.ref" "$M/data"
tdefs_umount "$M"
tdefs_mount "$W" "$B" "$M" -o "password_file=$pw"
cmp -s "$TDEFS_WORK/data.ref" "$M/data" || fail "the data does not read back through a password_file mount"
tdefs_umount "$M"
log "-o password_file= mounts a password wallet"

# ---- 2. --password-fd with a pipe --------------------------------------------------------------
"$TDEFS_BIN" --wallet "$W" --password-fd 3 "$B" "$M" 3< <(cat "$pw") </dev/null >"$TDEFS_WORK/fd.log" 2>&1 ||
	fail "--password-fd with a pipe did not mount: $(cat "$TDEFS_WORK/fd.log")"
mountpoint -q "$M" || fail "--password-fd: nothing mounted"
cmp -s "$TDEFS_WORK/data.ref" "$M/data" || fail "the data does not read back through a --password-fd mount"
fusermount3 -u "$M"
for ((i = 0; i < 100; i++)); do pgrep -f -- "$B" >/dev/null || break; sleep 0.1; done
log "--password-fd with a pipe mounts"

# ---- 3. password files someone else could have written ----------------------------------------------
refused() { # refused WHAT ARGS...: the mount must fail with one line naming the file
	local what=$1 rc=0 out
	shift
	out=$("$TDEFS_BIN" --wallet "$W" "$@" "$B" "$M" </dev/null 2>&1) || rc=$?
	if mountpoint -q "$M"; then
		fusermount3 -u "$M"
		fail "$what: the daemon mounted"
	fi
	((rc != 0)) || fail "$what: exit 0: $out"
	grep -q -- "$pw" <<<"$out" || fail "$what: the refusal does not name $pw: $out"
	log "$what: $(head -n 1 <<<"$out")"
}
chown 65534:65534 "$pw"
refused "a password file owned by uid 65534" -o "password_file=$pw"
refused "--password-file owned by uid 65534" --password-file "$pw"
chown 0:0 "$pw"
chmod 0666 "$pw"
refused "a password file others may write" -o "password_file=$pw"
chmod 0600 "$pw"

# ---- 4. bad names, wrong password ----------------------------------------------------------------
rc=0
out=$("$TDEFS_BIN" --wallet "$W" -o password_file=relative/pw "$B" "$M" </dev/null 2>&1) || rc=$?
((rc != 0)) && grep -q "password_file=relative/pw: give an absolute file name" <<<"$out" ||
	fail "a relative password_file was not refused with its message: $out"
printf 'wrong password\n' >"$TDEFS_WORK/wrong"
chmod 0600 "$TDEFS_WORK/wrong"
rc=0
out=$(timeout 60 "$TDEFS_BIN" --wallet "$W" -o "password_file=$TDEFS_WORK/wrong" "$B" "$M" </dev/null 2>&1) || rc=$?
((rc != 0 && rc != 124)) || fail "a wrong password in the file: exit $rc (124: it waited for a prompt): $out"
mountpoint -q "$M" && fail "a wrong password mounted"
log "relative name refused; wrong password: $(head -n 1 <<<"$out")"
pass "password_file and --password-fd mount; files others own or may write refused; bad names and wrong passwords refused"
