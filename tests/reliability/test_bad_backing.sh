#!/bin/bash
# Bad backing states not covered by tests/mounted/test_bad_input.sh (garbage and truncated
# headers, unknown key, read-only and full backing are there). Each must give a clear error for
# the file concerned and lose nothing else:
#  1. Splices (tdefs-test-helper, tests/lib/helper_header.c): the sealed key material (nonce, wrapped DEK,
#     tag) of two files' headers exchanged with valid checksums: both files EIO with a log line
#     "header fails authentication" (the AEAD binds the wrapped DEK to the file ID), the others
#     intact; tdefs --check --wallet names both. Then two splices no seal can see, logged as
#     measurements: a whole header copied from another file, and a single header copy from
#     another file (the copies then disagree on the file ID).
#  2. Files made in the backing directory by hand: an empty one is a valid empty file (written
#     through the mount, read back after a remount); small and large plaintext files give EIO
#     with one log line each naming them; a hand-made directory works.
#  3. Permission denied on the backing side: a daemon without CAP_DAC_OVERRIDE and
#     CAP_DAC_READ_SEARCH (as a daemon run by an ordinary user would be; root's daemon is not
#     stopped by modes), a backing directory and a backing file chmod 000: EACCES through the
#     mount, no crash, other files fine, access back after chmod.
#  4. The wallet deleted while mounted: existing files read, new files are created and written
#     with the keys the daemon holds; `tderekey reload MNT` fails and says the wallet is missing;
#     with the wallet restored, a remount reads the files made meanwhile.
#  5. tdefs --check [--wallet W] [--repair]: clean directory exit 0; a damaged header copy exit 1
#     with "REPAIRABLE <path>" and not one byte of the backing files changed; --repair restores
#     it (then exit 0, content intact, the garbage file untouched); a garbage file exit 1 naming it.
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount"
hdr=$TDEFS_TEST_HELPER
need_build "$hdr"
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
[[ -x $tderekey ]] || fail "$tderekey not built"
need_cmd setpriv util-linux

tdefs_setup
cd "$TDEFS_WORK"
daemon_log=$(tdefs_daemon_log)

# expect_errno ERRNO_TEXT CMD...: CMD must fail with that error text.
expect_error() {
	local text=$1 out
	shift
	if out=$("$@" 2>&1 >/dev/null); then
		fail "'$*' succeeded, expected '$text'"
	fi
	grep -q "$text" <<<"$out" || fail "'$*': expected '$text', got: $out"
}
# backing_digest DIR: content and mtime of every file (what --check must not change).
backing_digest() {
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum &&
		find . -type f -printf '%p %s %T@\n' | LC_ALL=C sort)
}

# ---- 1. splices ---------------------------------------------------------------------------------
for n in keep1 keep2 swap-a swap-b whole-src whole-dst slot-src slot-dst; do
	head -c $((20000 + ${#n} * 1111)) /dev/urandom >"$n.plain"
	cp "$n.plain" "$TDEFS_MNT/$n"
done
tdefs_umount "$TDEFS_MNT"
"$hdr" swap-keys "$TDEFS_BACKING/swap-a" "$TDEFS_BACKING/swap-b" || fail "swap-keys failed"
"$hdr" copy-header "$TDEFS_BACKING/whole-src" "$TDEFS_BACKING/whole-dst" || fail "copy-header failed"
"$hdr" copy-slot "$TDEFS_BACKING/slot-src" "$TDEFS_BACKING/slot-dst" 1 || fail "copy-slot failed"
"$hdr" describe "$TDEFS_BACKING/swap-a" | grep -c '^copy .: valid' | grep -qx 2 ||
	fail "after swap-keys the checksums of swap-a's copies are not valid: the splice would be caught by the checksum, not by the AEAD"
check_out=$("$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1) && fail "--check --wallet passed a directory with spliced headers"
for n in swap-a swap-b; do
	grep -q "DAMAGED  */$n: header fails authentication" <<<"$check_out" ||
		fail "--check --wallet does not name $n as failing authentication: $check_out"
done
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
daemon_log=$(tdefs_daemon_log)
for n in swap-a swap-b; do
	expect_error "Input/output error" cat "$TDEFS_MNT/$n"
	cat "$TDEFS_MNT/$n" >/dev/null 2>&1 || true # once more: still one log line
	(($(grep -c "/$n: header fails authentication" "$daemon_log") == 1)) ||
		fail "expected one log line 'backing/$n: header fails authentication', log: $(cat "$daemon_log")"
done
for n in keep1 keep2 whole-src slot-src; do
	cmp "$n.plain" "$TDEFS_MNT/$n" || fail "$n, next to the spliced files, changed"
done
log "wrapped-key splice: EIO and one log line per file, others intact, --check --wallet names both"
if cmp -s whole-dst.plain "$TDEFS_MNT/whole-dst"; then
	log "whole-header splice: whole-dst still reads its own plaintext"
elif cat "$TDEFS_MNT/whole-dst" >/dev/null 2>&1; then
	log "NOTE (known limitation, not asserted): a whole header copied from whole-src over whole-dst is not detected: whole-dst reads without error but as garbage (decrypted with whole-src's DEK); --check reports: $("$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1 | grep -c whole-dst) lines about whole-dst"
else
	log "whole-header splice: whole-dst read fails (detected)"
fi
slot_desc=$("$hdr" describe "$TDEFS_BACKING/slot-dst" | tr '\n' ' ')
# Two valid copies that name different file IDs were spliced from two files: refused (EIO),
# and tdefs --check names the file.
out=$(cat "$TDEFS_MNT/slot-dst" 2>&1 >/dev/null) &&
	fail "single-copy splice ($slot_desc): slot-dst read without error"
grep -q "Input/output error" <<<"$out" || fail "single-copy splice: expected EIO, got: $out"
check_out=$("$TDEFS_BIN" --check --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" 2>&1) || true
grep -q "slot-dst: header copies belong to two different files" <<<"$check_out" ||
	fail "single-copy splice: tdefs --check does not name slot-dst: $check_out"
log "single-copy splice: slot-dst refused with EIO and named by --check"

# ---- 2. files made in the backing directory by hand ---------------------------------------------
tdefs_umount "$TDEFS_MNT"
: >"$TDEFS_BACKING/hand-empty"
echo "hello, plaintext" >"$TDEFS_BACKING/hand-small"
head -c 10000 /dev/urandom >"$TDEFS_BACKING/hand-big"
mkdir "$TDEFS_BACKING/hand-dir"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
daemon_log=$(tdefs_daemon_log)
[[ -f $TDEFS_MNT/hand-empty && ! -s $TDEFS_MNT/hand-empty ]] || fail "hand-empty is not an empty file through the mount"
[[ -z $(cat "$TDEFS_MNT/hand-empty") ]] || fail "hand-empty reads as non-empty"
echo "written into a hand-made empty file" >"$TDEFS_MNT/hand-empty" || fail "cannot write into hand-empty"
expect_error "Input/output error" cat "$TDEFS_MNT/hand-small"
expect_error "Input/output error" cat "$TDEFS_MNT/hand-big"
cat "$TDEFS_MNT/hand-small" "$TDEFS_MNT/hand-big" >/dev/null 2>&1 || true
(($(grep -c "/hand-small: backing file is shorter than its 4096-byte header" "$daemon_log") == 1)) ||
	fail "expected one log line naming hand-small: $(cat "$daemon_log")"
(($(grep -c "/hand-big: damaged header" "$daemon_log") == 1)) ||
	fail "expected one log line naming hand-big: $(cat "$daemon_log")"
echo inside >"$TDEFS_MNT/hand-dir/file" || fail "cannot create a file in a hand-made directory"
for n in keep1 keep2; do cmp "$n.plain" "$TDEFS_MNT/$n" || fail "$n changed next to hand-made files"; done
[[ $(stat -c %s "$TDEFS_BACKING/hand-small") == 17 ]] || fail "the daemon modified hand-small"
tdefs_remount
[[ $(cat "$TDEFS_MNT/hand-empty") == "written into a hand-made empty file" ]] || fail "hand-empty lost its content across a remount"
[[ $(cat "$TDEFS_MNT/hand-dir/file") == inside ]] || fail "hand-dir/file lost its content"
log "hand-made files: empty one valid and writable, plaintext ones EIO with one log line each, hand-made directory works"

# ---- 3. permission denied on the backing side ---------------------------------------------------
tdefs_umount "$TDEFS_MNT"
mkdir -p "$TDEFS_BACKING/locked"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
echo "locked away" >"$TDEFS_MNT/locked/inner"
echo "mode 000" >"$TDEFS_MNT/f000"
tdefs_umount "$TDEFS_MNT"
chmod 000 "$TDEFS_BACKING/locked" "$TDEFS_BACKING/f000"
on_exit "chmod 755 '$TDEFS_BACKING/locked' 2>/dev/null; chmod 644 '$TDEFS_BACKING/f000' 2>/dev/null; true"
# A daemon with all of root's capabilities but the two that override file modes.
printf '#!/bin/sh\nexec setpriv --bounding-set=-dac_override,-dac_read_search "%s" "$@"\n' "$TDEFS_BIN" >"$TDEFS_WORK/tdefs-nodac"
chmod +x "$TDEFS_WORK/tdefs-nodac"
plain_bin=$TDEFS_BIN
TDEFS_BIN=$TDEFS_WORK/tdefs-nodac
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
TDEFS_BIN=$plain_bin
pid=$(rel_daemon_pid)
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
(((16#$caps & 0x6) == 0)) || fail "the daemon still has CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (CapEff $caps)"
expect_error "Permission denied" ls "$TDEFS_MNT/locked"
expect_error "Permission denied" cat "$TDEFS_MNT/locked/inner"
expect_error "Permission denied" cat "$TDEFS_MNT/f000"
expect_error "Permission denied" sh -c "echo more >>'$TDEFS_MNT/f000'"
expect_error "Permission denied" sh -c "echo new >'$TDEFS_MNT/locked/new'"
kill -0 "$pid" || fail "the daemon died on permission errors"
for n in keep1 keep2; do cmp "$n.plain" "$TDEFS_MNT/$n" || fail "$n unreadable next to a mode-000 backing file"; done
echo "still writable" >"$TDEFS_MNT/after-eacces" || fail "cannot create files after EACCES"
chmod 755 "$TDEFS_BACKING/locked"
chmod 644 "$TDEFS_BACKING/f000"
[[ $(cat "$TDEFS_MNT/locked/inner") == "locked away" ]] || fail "locked/inner unreadable after chmod 755"
[[ $(cat "$TDEFS_MNT/f000") == "mode 000" ]] || fail "f000 unreadable after chmod 644"
tdefs_umount "$TDEFS_MNT"
log "mode-000 backing directory and file: EACCES through the mount, no crash, access back after chmod"

# ---- 4. the wallet deleted while mounted ----------------------------------------------------------
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
daemon_log=$(tdefs_daemon_log)
head -c 50000 /dev/urandom >no-wallet.plain
mv "$TDEFS_WALLET" "$TDEFS_WALLET.deleted"
on_exit "[[ -e '$TDEFS_WALLET' ]] || mv '$TDEFS_WALLET.deleted' '$TDEFS_WALLET' 2>/dev/null; true"
sleep 0.5 # a wallet watcher, if any, notices
for n in keep1 keep2; do cmp "$n.plain" "$TDEFS_MNT/$n" || fail "$n unreadable after the wallet was deleted"; done
cp no-wallet.plain "$TDEFS_MNT/no-wallet" || fail "cannot create a file after the wallet was deleted"
cmp no-wallet.plain "$TDEFS_MNT/no-wallet" || fail "a file created without the wallet reads back wrong"
rc=0
out=$("$tderekey" reload "$TDEFS_MNT" 2>&1) || rc=$?
((rc != 0)) || fail "tderekey reload succeeded with the wallet deleted: $out"
if ! grep -qiE 'wallet' <<<"$out" || ! grep -qiE 'no such|missing|not found|cannot open|does not exist' <<<"$out"; then
	fail "tderekey reload failed without saying the wallet is missing: $out"
fi
log "wallet deleted: mount works, new files created; tderekey reload says: $out"
"$tderekey" status "$TDEFS_MNT" >/dev/null || fail "tderekey status fails after the wallet was deleted"
mv "$TDEFS_WALLET.deleted" "$TDEFS_WALLET"
tdefs_remount
cmp no-wallet.plain "$TDEFS_MNT/no-wallet" || fail "after the wallet came back, a file created meanwhile reads wrong"
tdefs_umount "$TDEFS_MNT"

# ---- 5. tdefs --check -----------------------------------------------------------------------------
clean=$TDEFS_WORK/backing-clean
tdefs_init_backing "$TDEFS_WALLET" "$clean"
tdefs_mount "$TDEFS_WALLET" "$clean" "$TDEFS_WORK/mnt-clean"
mkdir -p "$TDEFS_WORK/mnt-clean/sub"
for n in keep1 keep2 swap-a; do cp "$n.plain" "$TDEFS_WORK/mnt-clean/sub/$n"; done
: >"$TDEFS_WORK/mnt-clean/empty"
tdefs_umount "$TDEFS_WORK/mnt-clean"
run_check() { # EXPECTED_RC ARGS...: runs tdefs --check ARGS, sets CHECK_OUT
	local want=$1 rc=0
	shift
	CHECK_OUT=$("$TDEFS_BIN" --check "$@" 2>&1) || rc=$?
	((rc == want)) || { echo "$CHECK_OUT" >&2; fail "tdefs --check $* exited $rc, expected $want"; }
}
before=$(backing_digest "$clean")
run_check 0 "$clean"
run_check 0 --wallet "$TDEFS_WALLET" "$clean"
grep -qE '^[0-9a-f]{32} +4$' <<<"$CHECK_OUT" || fail "--check does not list 4 files under the master key: $CHECK_OUT"
# A damaged header copy: one byte of copy 0 of sub/keep1 flipped (its checksum fails).
flip_byte() { # FILE OFFSET: invert one byte in place
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf '%b' "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
flip_byte "$clean/sub/keep1" 100
head -c 9000 /dev/urandom >"$clean/sub/garbage"
before=$(backing_digest "$clean")
run_check 1 "$clean"
grep -q "^REPAIRABLE */sub/keep1: header copy 0 is damaged" <<<"$CHECK_OUT" || fail "--check does not report sub/keep1 as REPAIRABLE: $CHECK_OUT"
grep -q "DAMAGED .*/sub/garbage" <<<"$CHECK_OUT" || fail "--check does not name sub/garbage: $CHECK_OUT"
run_check 1 --wallet "$TDEFS_WALLET" "$clean"
grep -q "REPAIRABLE */sub/keep1" <<<"$CHECK_OUT" || fail "--check --wallet does not report sub/keep1: $CHECK_OUT"
[[ $(backing_digest "$clean") == "$before" ]] || fail "tdefs --check without --repair changed the backing files"
log "--check: clean exit 0; damaged copy REPAIRABLE and garbage named, exit 1; nothing written"
garbage_sum=$(sha256sum <"$clean/sub/garbage")
run_check 1 --repair --wallet "$TDEFS_WALLET" "$clean" # the garbage file is still a problem
grep -q "^REPAIRED */sub/keep1: header copy 0 restored from copy 1" <<<"$CHECK_OUT" || fail "--repair did not repair sub/keep1: $CHECK_OUT"
[[ $(sha256sum <"$clean/sub/garbage") == "$garbage_sum" ]] || fail "--repair modified the garbage file"
"$hdr" describe "$clean/sub/keep1" | grep -c '^copy .: valid' | grep -qx 2 || fail "after --repair sub/keep1 still has an invalid copy"
rm "$clean/sub/garbage"
run_check 0 --wallet "$TDEFS_WALLET" "$clean"
tdefs_mount "$TDEFS_WALLET" "$clean" "$TDEFS_WORK/mnt-clean"
cmp keep1.plain "$TDEFS_WORK/mnt-clean/sub/keep1" || fail "sub/keep1 reads wrong after --repair"
cmp keep2.plain "$TDEFS_WORK/mnt-clean/sub/keep2" || fail "sub/keep2 reads wrong after --repair"
tdefs_umount "$TDEFS_WORK/mnt-clean"
log "--repair: copy restored, then exit 0 and contents intact; the garbage file untouched"
rel_daemon_log_check --all
pass "wrapped-key splice, hand-made files, EACCES on the backing side, deleted wallet and tdefs --check behave"
