#!/bin/bash
# POSIX behaviour databases and their tools rely on, and persistence across a remount:
#  - tdefs-posix-check (posix_check.c) as root and as the postgres user: edge file sizes, I/O
#    past 4 GiB, unlink/rename of open files, renameat2 flags, links, O_APPEND, O_DIRECT, locks,
#    xattrs, times, directory fsync, sync_file_range, readdir, statfs, copy_file_range
#  - permissions on a root mount with allow_other + default_permissions: the postgres user's
#    files are its own with its umask, and it cannot read root's 0600 file or write root's dir
#  - holes stay sparse in the backing file and punching a hole frees backing space
#  - files of edge sizes, a sparse file, a punched file and a `cp` within the mount keep their
#    contents, owners and modes across a remount (read back through decryption)
. "$(dirname "$0")/lib.sh"

checker=$TDEFS_POSIX_CHECK
need_build "$checker"
need_cmd runuser util-linux
need_cmd fallocate util-linux
id postgres >/dev/null 2>&1 || need_cmd /usr/lib/postgresql/15/bin/postgres postgresql-15
tdefs_setup
cd "$TDEFS_WORK"

as_pg() {
	runuser -u postgres -- "$@"
}

mkdir "$TDEFS_MNT/root-checks"
log "tdefs-posix-check as root"
"$checker" "$TDEFS_MNT/root-checks" >"$TDEFS_WORK/posix-root.out" 2>&1 || {
	grep -v '^ok' "$TDEFS_WORK/posix-root.out" >&2
	fail "tdefs-posix-check as root failed (not ok lines above)"
}
mkdir "$TDEFS_MNT/pgdir"
chown postgres:postgres "$TDEFS_MNT/pgdir"
log "tdefs-posix-check as postgres"
as_pg "$checker" "$TDEFS_MNT/pgdir" >"$TDEFS_WORK/posix-pg.out" 2>&1 || {
	grep -v '^ok' "$TDEFS_WORK/posix-pg.out" >&2
	fail "tdefs-posix-check as the postgres user failed (not ok lines above)"
}

log "permissions with allow_other and default_permissions"
echo secret >"$TDEFS_MNT/root-only"
chmod 0600 "$TDEFS_MNT/root-only"
if as_pg cat "$TDEFS_MNT/root-only" >/dev/null 2>&1; then
	fail "the postgres user can read root's 0600 file: permissions are not enforced"
fi
if as_pg touch "$TDEFS_MNT/root-checks/intruder" 2>/dev/null; then
	fail "the postgres user can create a file in root's 0755 directory"
fi
as_pg sh -c "umask 077 && echo mine >'$TDEFS_MNT/pgdir/owned' && mkdir '$TDEFS_MNT/pgdir/sub'" ||
	fail "the postgres user cannot create files in its own directory"
[[ $(stat -c '%U:%G %a' "$TDEFS_MNT/pgdir/owned") == "postgres:postgres 600" ]] ||
	fail "postgres's new file is $(stat -c '%U:%G %a' "$TDEFS_MNT/pgdir/owned"), expected postgres:postgres 600"
[[ $(stat -c '%U:%G %a' "$TDEFS_MNT/pgdir/sub") == "postgres:postgres 700" ]] ||
	fail "postgres's new directory is $(stat -c '%U:%G %a' "$TDEFS_MNT/pgdir/sub"), expected postgres:postgres 700"
chown root:postgres "$TDEFS_MNT/root-only"
chmod 0640 "$TDEFS_MNT/root-only"
[[ $(as_pg cat "$TDEFS_MNT/root-only") == secret ]] ||
	fail "after chown root:postgres and chmod 0640 the postgres group cannot read the file"

log "sparse files and punch-hole on the backing side"
sparse=$TDEFS_MNT/sparse
truncate -s 256M "$sparse"
head -c 8192 /dev/urandom >"$TDEFS_WORK/chunk"
dd if="$TDEFS_WORK/chunk" of="$sparse" bs=4096 seek=32768 conv=notrunc,fsync status=none
sync
backing_of() {
	echo "$TDEFS_BACKING/${1#"$TDEFS_MNT"/}"
}
used=$(($(stat -c '%b * %B' "$(backing_of "$sparse")")))
((used < 4 * 1024 * 1024)) ||
	fail "a 256 MiB file with 8 KiB written occupies $used bytes in the backing directory: holes are not sparse"
punched=$TDEFS_MNT/punched
head -c $((16 * 1024 * 1024)) /dev/urandom >"$TDEFS_WORK/punched.ref"
cp "$TDEFS_WORK/punched.ref" "$punched"
sync
before=$(($(stat -c '%b * %B' "$(backing_of "$punched")")))
fallocate --punch-hole --offset $((1024 * 1024 + 100)) --length $((12 * 1024 * 1024)) "$punched"
fallocate --punch-hole --offset $((1024 * 1024 + 100)) --length $((12 * 1024 * 1024)) "$TDEFS_WORK/punched.ref"
sync
after=$(($(stat -c '%b * %B' "$(backing_of "$punched")")))
((before - after >= 10 * 1024 * 1024)) ||
	fail "punching 12 MiB freed only $((before - after)) bytes in the backing file ($before -> $after)"
cmp "$punched" "$TDEFS_WORK/punched.ref" || fail "the punched file differs from its reference"

log "persistence across a remount"
mkdir -p "$TDEFS_MNT/persist" "$TDEFS_WORK/persist"
for n in 0 1 15 16 17 4095 4096 4097 4111 4112 4113 65535 1048579; do
	head -c "$n" /dev/urandom >"$TDEFS_WORK/persist/f$n"
	cp "$TDEFS_WORK/persist/f$n" "$TDEFS_MNT/persist/f$n"
done
cp "$TDEFS_MNT/persist/f1048579" "$TDEFS_MNT/persist/copy-within-mount"
cp "$TDEFS_WORK/persist/f1048579" "$TDEFS_WORK/persist/copy-within-mount"
cmp "$TDEFS_MNT/persist/copy-within-mount" "$TDEFS_WORK/persist/copy-within-mount" ||
	fail "cp within the mount (copy_file_range) produced different contents"
(cd "$TDEFS_MNT" && sha256sum sparse punched persist/* pgdir/owned) >"$TDEFS_WORK/manifest"
stat -c '%n %U:%G %a %s' "$TDEFS_MNT"/pgdir/owned "$TDEFS_MNT"/root-only "$TDEFS_MNT"/pgdir/sub >"$TDEFS_WORK/meta.before"
tdefs_remount
(cd "$TDEFS_MNT" && sha256sum --quiet -c "$TDEFS_WORK/manifest") ||
	fail "contents changed across the remount (sha256sum -c above)"
for f in "$TDEFS_WORK"/persist/*; do
	cmp "$f" "$TDEFS_MNT/persist/$(basename "$f")" || fail "persist/$(basename "$f") differs from its plain copy after remount"
done
stat -c '%n %U:%G %a %s' "$TDEFS_MNT"/pgdir/owned "$TDEFS_MNT"/root-only "$TDEFS_MNT"/pgdir/sub >"$TDEFS_WORK/meta.after"
diff "$TDEFS_WORK/meta.before" "$TDEFS_WORK/meta.after" >&2 ||
	fail "owners, modes or sizes changed across the remount"

pass "posix checks as root and postgres, permissions, sparseness, persistence"
