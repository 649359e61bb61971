#!/usr/bin/env bash
# An adopted directory (tdefs --init --adopt) and its conversion (tderekey encrypt). Files that
# existed before are served byte for byte as plaintext, among them one that begins with a real
# tdefs header, one cut off inside a header and an empty one; new files are encrypted; a new
# file whose header is damaged is refused, never served as plaintext; -o require_encrypted
# refuses plaintext files; a file held open across its conversion keeps working through the
# same descriptor. After tderekey encrypt every file is ciphertext on disk (independent
# decryption), reads back identical, and status says no plaintext file is left. Bad input: each
# refusal is one line and a non-zero exit, with nothing changed. Attack as uid 65534: a user who
# writes files on the mount cannot make one be served as plaintext (the marker cannot be set or
# read through the mount), and renaming their file to a symlink during its conversion never
# makes the conversion write outside the backing root.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_build "$TDEFS_TEST_HELPER"
need_cmd python3 python3
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
wallet=$TDEFS_WORK/wallet
backing=$TDEFS_WORK/backing
mnt=$TDEFS_WORK/mnt
reference=$TDEFS_WORK/reference
tdefs_make_wallet "$wallet"
marker="ADOPT-PLAINTEXT-MARKER-9f3c"

# A real backing file to borrow a header from: a plaintext file may hold anything.
donor=$TDEFS_WORK/donor
tdefs_init_backing "$wallet" "$donor"
mkdir -p "$TDEFS_WORK/donor-mnt"
tdefs_mount "$wallet" "$donor" "$TDEFS_WORK/donor-mnt"
printf 'donor data\n' >"$TDEFS_WORK/donor-mnt/x"
tdefs_umount "$TDEFS_WORK/donor-mnt"

mkdir -p "$backing/sub/deeper" "$reference"
{ yes "$marker" || true; } | head -c 3000000 >"$backing/big"
printf 'short %s\n' "$marker" >"$backing/short"
: >"$backing/empty"
cp "$donor/x" "$backing/looks-encrypted"       # a whole valid header, then data
head -c 2000 "$donor/x" >"$backing/truncated-header" # magic and most of one header copy
printf 'TDEFSHDR' >"$backing/magic-only"
{ yes "$marker" || true; } | head -c 12289 >"$backing/sub/deeper/tail"
mkdir -p "$backing/common" && chmod 0777 "$backing/common"
printf 'owned by nobody %s\n' "$marker" >"$backing/common/theirs"
chown 65534:65534 "$backing/common/theirs"
printf 'linked %s\n' "$marker" >"$backing/linked-a"
ln "$backing/linked-a" "$backing/linked-b"
ln -s short "$backing/a-symlink"
(cd "$backing" && cp -a . "$reference/")
stat -c '%n %s %Y' "$backing"/big "$backing"/looks-encrypted >"$TDEFS_WORK/times.before"

# --- bad input ---------------------------------------------------------------------------
expect_refusal() { # description pattern command...
	local what=$1 pattern=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	((rc != 0)) || fail "$what: accepted"
	[[ $(wc -l <<<"$out") == 1 ]] || fail "$what: expected one line, got: $out"
	grep -q -- "$pattern" <<<"$out" || fail "$what: unexpected message: $out"
}
expect_refusal "--adopt without --init" "goes with --init" \
	"$TDEFS_BIN" --adopt --wallet "$wallet" "$backing"
expect_refusal "--init of a non-empty directory" "init --adopt" \
	"$TDEFS_BIN" --init --wallet "$wallet" "$backing"
[[ ! -e $backing/.tdefs.conf ]] || fail "a refused --init left a config record"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" ||
	fail "tdefs --init --adopt failed: $(cat "$TDEFS_WORK/adopt.out")"
grep -q "10 existing files kept as plaintext" "$TDEFS_WORK/adopt.out" ||
	fail "adopt reported: $(cat "$TDEFS_WORK/adopt.out")"
expect_refusal "--init --adopt twice" "already a tdefs backing directory" \
	"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing"
# Adoption leaves every byte and time as it was.
for f in big looks-encrypted empty sub/deeper/tail; do
	cmp "$reference/$f" "$backing/$f" || fail "adoption changed $f"
done
stat -c '%n %s %Y' "$backing"/big "$backing"/looks-encrypted | cmp - "$TDEFS_WORK/times.before" ||
	fail "adoption changed a size or a modification time"
python3 -c 'import os,sys; os.getxattr(sys.argv[1], "trusted.tdefs.plaintext")' "$backing/big" ||
	fail "no plaintext marker on an adopted file"

# --- plaintext served as it is -------------------------------------------------------------
tdefs_mount "$wallet" "$backing" "$mnt"
check_all() { # when
	local f
	for f in big short empty looks-encrypted truncated-header magic-only sub/deeper/tail \
		common/theirs linked-a linked-b; do
		cmp "$reference/$f" "$mnt/$f" || fail "$1: $f does not read back as its reference"
	done
	[[ $(readlink "$mnt/a-symlink") == short ]] || fail "$1: the symlink changed"
}
check_all "adopted"
[[ $(stat -c %s "$mnt/looks-encrypted") == $(stat -c %s "$reference/looks-encrypted") ]] ||
	fail "a plaintext file's size shows less a header"
"$tderekey" files "$mnt" >"$TDEFS_WORK/files.out"
for f in /big /empty /looks-encrypted /truncated-header /magic-only; do
	grep -qE "^PLAINTEXT .* $f\$" "$TDEFS_WORK/files.out" || fail "tderekey files: $f not PLAINTEXT: $(cat "$TDEFS_WORK/files.out")"
done
"$tderekey" status "$mnt" --json | grep -q '"plaintext": 10,' || fail "status does not count 10 plaintext files"

# Writes to a plaintext file go to it as they are; a new file is encrypted.
printf 'appended %s\n' "$marker" | tee -a "$reference/short" >>"$mnt/short"
printf 'XXXX' | dd of="$mnt/big" bs=1 seek=1000000 conv=notrunc status=none
printf 'XXXX' | dd of="$reference/big" bs=1 seek=1000000 conv=notrunc status=none
printf 'fresh %s\n' "$marker" | tee "$reference/fresh" >"$mnt/fresh"
sync
cmp "$reference/short" "$backing/short" || fail "a plaintext write did not land as it is"
[[ $(head -c 8 "$backing/fresh") == TDEFSHDR ]] || fail "a new file was not given a header"
grep -q "$marker" "$backing/fresh" && fail "a new file's bytes are plaintext on disk"
"$TDEFS_TEST_HELPER" verify "$wallet" "$backing/fresh" "$reference/fresh" >/dev/null ||
	fail "the new file does not decrypt independently"
tdefs_umount "$mnt"

# A new file whose header is damaged is refused, not served as plaintext.
cp "$backing/fresh" "$TDEFS_WORK/fresh.saved"
dd if=/dev/zero of="$backing/fresh" bs=4096 count=1 conv=notrunc status=none
tdefs_mount "$wallet" "$backing" "$mnt"
out=$(cat "$mnt/fresh" 2>&1 >/dev/null) && fail "a file with a damaged header was served"
grep -q "Input/output error" <<<"$out" || fail "damaged header: expected EIO, got: $out"
tdefs_umount "$mnt"
cp "$TDEFS_WORK/fresh.saved" "$backing/fresh"

# -o require_encrypted refuses plaintext files, with one line in the log.
tdefs_mount "$wallet" "$backing" "$mnt" -o require_encrypted
out=$(cat "$mnt/short" 2>&1 >/dev/null) && fail "require_encrypted served a plaintext file"
grep -q "Permission denied" <<<"$out" || fail "require_encrypted: expected EACCES, got: $out"
cat "$mnt/short" >/dev/null 2>&1 || true
[[ $(grep -c "short: plaintext file refused" "$(tdefs_daemon_log "$mnt")") == 1 ]] ||
	fail "require_encrypted: expected one log line: $(cat "$(tdefs_daemon_log "$mnt")")"
cmp "$reference/fresh" "$mnt/fresh" || fail "require_encrypted refused an encrypted file"
tdefs_umount "$mnt"

# --- attacks as uid 65534 ------------------------------------------------------------------
tdefs_mount "$wallet" "$backing" "$mnt"
as_nobody python3 -c 'import os,sys; os.setxattr(sys.argv[1], "trusted.tdefs.plaintext", b"TDEFSPT1" + bytes(16))' \
	"$mnt/common/theirs" 2>/dev/null && fail "nobody set the plaintext marker through the mount"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "trusted.tdefs.plaintext", b"TDEFSPT1" + bytes(16))' \
	"$mnt/fresh" 2>/dev/null && fail "root set the plaintext marker through the mount"
python3 -c 'import os,sys; os.getxattr(sys.argv[1], "trusted.tdefs.plaintext")' "$mnt/big" 2>/dev/null &&
	fail "the plaintext marker is visible through the mount"
python3 -c 'import os,sys; sys.exit("trusted.tdefs.plaintext" in os.listxattr(sys.argv[1]))' "$mnt/big" ||
	fail "the plaintext marker is listed through the mount"
# Their new file holds a real header followed by data: it is encrypted like any other.
as_nobody sh -c 'cat "$1" >"$2"' sh "$reference/looks-encrypted" "$mnt/common/forged"
cmp "$reference/looks-encrypted" "$mnt/common/forged" || fail "nobody's file does not read back"
cmp -s "$reference/looks-encrypted" "$backing/common/forged" && fail "nobody's file is stored as plaintext"
"$TDEFS_TEST_HELPER" verify "$wallet" "$backing/common/forged" "$reference/looks-encrypted" >/dev/null ||
	fail "nobody's file is not encrypted under its own key"

# A file held open across its conversion: the same descriptor reads and writes the copy.
exec {held}<>"$mnt/sub/deeper/tail"
# While their file is converted, nobody swaps its name for a symlink to a file outside.
outside=$TDEFS_WORK/outside-target
printf 'outside, untouched\n' >"$outside"
cp "$outside" "$TDEFS_WORK/outside.reference"
as_nobody ln -s "$outside" "$mnt/common/lure" 2>/dev/null || true
stop_racer=$TDEFS_WORK/stop-racer
as_nobody sh -c 'while [ ! -e "$2" ]; do
	mv "$1/theirs" "$1/theirs.away" 2>/dev/null; mv "$1/lure" "$1/theirs" 2>/dev/null
	mv "$1/theirs" "$1/lure" 2>/dev/null; mv "$1/theirs.away" "$1/theirs" 2>/dev/null
	done' sh "$mnt/common" "$stop_racer" &
racer=$!
on_exit "touch '$stop_racer'"

# --- the conversion ----------------------------------------------------------------------
rc=0
"$tderekey" encrypt "$mnt" >"$TDEFS_WORK/encrypt.out" 2>&1 || rc=$?
log "$(tail -n 2 "$TDEFS_WORK/encrypt.out")"
# The hard-linked pair is left as it is (one failure): everything else is done.
((rc == 1)) || fail "encrypt with a hard-linked file: exit $rc, expected 1: $(cat "$TDEFS_WORK/encrypt.out")"
grep -q "several names" "$TDEFS_WORK/encrypt.out" || fail "no reason for the hard-linked file: $(cat "$TDEFS_WORK/encrypt.out")"
touch "$stop_racer"
wait "$racer" 2>/dev/null || true
# Wherever the race left it, the file goes back to its name.
if [[ -f $mnt/common/theirs.away && ! -L $mnt/common/theirs.away ]]; then
	mv -f "$mnt/common/theirs.away" "$mnt/common/theirs"
elif [[ -L $mnt/common/theirs ]]; then
	mv "$mnt/common/theirs" "$mnt/common/theirs.link" && mv "$mnt/common/lure" "$mnt/common/theirs"
fi
[[ -f $mnt/common/theirs && ! -L $mnt/common/theirs ]] || fail "the race lost the file: $(ls -la "$mnt/common")"
cmp "$outside" "$TDEFS_WORK/outside.reference" || fail "the conversion wrote outside the backing root"
[[ -L $backing/common/lure || -L $backing/common/theirs ]] || fail "the symlink is gone"
# Through the held descriptor: a write after the swap lands in the converted file.
printf 'AFTER' >&"$held"
exec {held}>&-
printf 'AFTER' | dd of="$reference/sub/deeper/tail" bs=1 conv=notrunc status=none
rm "$mnt/linked-b" && rm "$reference/linked-b"
"$tderekey" encrypt "$mnt" >"$TDEFS_WORK/encrypt2.out" 2>&1 ||
	fail "the second encrypt failed: $(cat "$TDEFS_WORK/encrypt2.out")"
"$tderekey" status "$mnt" >"$TDEFS_WORK/status.out"
grep -q "no plaintext file left" "$TDEFS_WORK/status.out" || fail "status: $(cat "$TDEFS_WORK/status.out")"
"$tderekey" files "$mnt" | grep -q "^PLAINTEXT" && fail "a PLAINTEXT row is left"
tdefs_umount "$mnt"

# On disk: every file has a header, no marker string anywhere, no copy left behind, and each
# decrypts independently to its reference.
grep -rl --binary-files=binary "$marker" "$backing" && fail "plaintext left in the backing directory"
ls -a "$backing" | grep -q '^\.tdefs\.encrypt' && fail "a conversion leftover remains"
for f in big short empty looks-encrypted truncated-header magic-only sub/deeper/tail \
	common/theirs linked-a fresh; do
	"$TDEFS_TEST_HELPER" verify "$wallet" "$backing/$f" "$reference/$f" >/dev/null ||
		fail "$f does not decrypt independently to its reference"
	python3 -c 'import os,sys; os.getxattr(sys.argv[1], "trusted.tdefs.plaintext")' "$backing/$f" 2>/dev/null &&
		fail "$f still carries the plaintext marker"
done
[[ $(stat -c %U "$backing/common/theirs") == nobody ]] || fail "the converted file lost its owner"
tdefs_mount "$wallet" "$backing" "$mnt" -o require_encrypted
for f in big short empty looks-encrypted truncated-header magic-only sub/deeper/tail common/theirs linked-a; do
	cmp "$reference/$f" "$mnt/$f" || fail "after the conversion $f does not read back"
done
tdefs_umount "$mnt"
tdefs_mount "$wallet" "$donor" "$TDEFS_WORK/donor-mnt"
expect_refusal "encrypt on a directory that was not adopted" "not made with tdefs --init --adopt" \
	"$tderekey" encrypt "$TDEFS_WORK/donor-mnt"
tdefs_umount "$TDEFS_WORK/donor-mnt"
pass "plaintext served byte for byte (header-like, truncated, empty), new files encrypted, damaged header refused, require_encrypted enforced, conversion complete and verified; marker unforgeable through the mount"
