#!/usr/bin/env bash
# tderekey close and open on a running mount (README, "Closing the keystore"):
#  1. close with a file held open is refused (exit 22: the code whose documented meaning is
#     "files on the mount are open"), and the file keeps working;
#  2. close --force: reads and writes on the held descriptor fail with EIO, new opens and new
#     files fail with ENOKEY, the jobs are refused (exit 23), status and metrics say CLOSED, the
#     backing bytes are unchanged, and neither the file's DEK nor the master key is left in the
#     daemon's memory;
#  3. open with a wrong password (exit 4, stays CLOSED), then with the right one from a file and
#     from a descriptor: the data is intact; bad inputs (no mount point, --password-fd junk,
#     both password options, --force on open) are refused with one line each;
#  4. -o key_cache=SECS: a file closed before tderekey close opens again while its entry lasts,
#     and no more once SECS have passed (the cache's own expiry, not our clock, decides); a
#     file never opened before the close fails at once; close --force wipes the cache;
#  5. as uid 65534: close and open of root's mount are refused by the control channel; a
#     password given to tderekey open is never in argv (ps), the daemon log or the tool's
#     output;
#  6. a writer at the forced close gets EIO and nothing reaches the backing once it returned;
#  7. an auto-login wallet opens with no password; readers racing eight forced closes and
#     opens get the file's bytes, ENOKEY or EIO, never other bytes, and the daemon lives.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEREKEY_BIN" "$TDEFS_TEST_HELPER"

W=$TDEFS_WORK/wallet B=$TDEFS_WORK/backing M=$TDEFS_WORK/mnt
pw=$TDEFS_WORK/password bad=$TDEFS_WORK/wrong
secret_text="keyclose-secret-$RANDOM-$RANDOM-horse"
printf '%s\n' "$secret_text" >"$pw"
printf 'not the password\n' >"$bad"
chmod 0600 "$pw" "$bad"
"$TDEKEY_BIN" create --wallet "$W" --password-file "$pw" </dev/null >/dev/null 2>&1 ||
	fail "tdekey create with a password file failed"
mkdir -m 0700 "$B" "$M"
"$TDEFS_BIN" --init --wallet "$W" --password-file "$pw" "$B" </dev/null >/dev/null 2>&1 ||
	fail "tdefs --init failed"
tdefs_mount "$W" "$B" "$M" -o "password_file=$pw" -o key_cache=4
pid=$(tdefs_daemon_pid "$M")
daemon_log=$(tdefs_daemon_log "$M")

# The exit code whose man-page meaning contains WORDS (never a number written here).
code_for() {
	python3 - "$TDEFS_SRC/man/tderekey.8.scd" "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = re.search(r"^# EXIT STATUS\n(.*?)(?=^# |\Z)", text, re.S | re.M).group(1)
for code, body in re.findall(r"^\*(\d+)\*\n((?:\t.*\n?)+)", section, re.M):
    if sys.argv[2].lower() in " ".join(body.split()).lower():
        print(code)
        break
PY
}
files_open_code=$(code_for "files on the mount are open")
closed_code=$(code_for "keystore is closed")
wrong_pw_code=$(code_for "wrong password")
usage_code=$(code_for "usage error")
denied_code=$(code_for "the daemon refused the request")
[[ -n $files_open_code && -n $closed_code && -n $wrong_pw_code && -n $usage_code && -n $denied_code ]] ||
	fail "the man page's EXIT STATUS lacks a code this test needs"

# rc_of CMD...: the exit status, output in $out.
rc_of() {
	rc=0
	out=$("$@" 2>&1) || rc=$?
}
status_of() { "$TDEREKEY_BIN" status "$M" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["keystore"])'; }

head -c 300000 /dev/urandom >"$TDEFS_WORK/held.ref"
head -c 200000 /dev/urandom >"$TDEFS_WORK/cold.ref"
head -c 100000 /dev/urandom >"$TDEFS_WORK/cached.ref"
cp "$TDEFS_WORK/held.ref" "$M/held"
cp "$TDEFS_WORK/cold.ref" "$M/cold"
cp "$TDEFS_WORK/cached.ref" "$M/cached"
sync
[[ $(status_of) == OPEN ]] || fail "status does not say OPEN after mounting"
grep -q '^tdefs_keystore_open 1$' <("$TDEREKEY_BIN" metrics "$M") || fail "metrics: tdefs_keystore_open is not 1"

# ---- 1. refused while a file is open -------------------------------------------------------
exec 7<>"$M/held"
head -c 10 <&7 >/dev/null
rc_of "$TDEREKEY_BIN" close "$M"
[[ $rc == "$files_open_code" ]] || fail "close with a file open: exit $rc, not $files_open_code: $out"
(($(wc -l <<<"$out") == 1)) || fail "close with a file open: not one line: $out"
grep -q "open files" <<<"$out" || fail "close with a file open does not say why: $out"
[[ $(status_of) == OPEN ]] || fail "a refused close closed the keystore"
cmp -s <(dd if="$M/held" bs=4096 count=1 status=none) <(head -c 4096 "$TDEFS_WORK/held.ref") ||
	fail "the file does not read after a refused close"
log "close with a file open: refused (exit $rc), the keystore stays OPEN"

# The DEK, unwrapped by the test helper from an auto-login copy of the wallet (same keys); the
# scan sees it while the file is open, which is what makes its absence later mean something.
cp -a "$W" "$TDEFS_WORK/wallet-copy"
"$TDEKEY_BIN" create-autologin --wallet "$TDEFS_WORK/wallet-copy" --password-file "$pw" </dev/null >/dev/null 2>&1 ||
	fail "tdekey create-autologin on the wallet's copy failed"
dek=$("$TDEFS_TEST_HELPER" dek "$TDEFS_WORK/wallet-copy" "$B/held") || fail "the test helper cannot unwrap held's DEK"
"$TDEFS_TEST_HELPER" find-in-memory "$pid" "${dek:0:64}" ||
	fail "the held file's DEK is not found in the daemon's memory while open: the scan cannot see keys"

# ---- 4a. key cache: 'cached' was opened and closed before the close -------------------------
cmp -s "$M/cached" "$TDEFS_WORK/cached.ref" || fail "cached: does not read back"
drop_caches

# ---- 2. close --force ----------------------------------------------------------------------
(cd "$B" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TDEFS_WORK/backing.before"
"$TDEREKEY_BIN" close "$M" --force >"$TDEFS_WORK/close.out" 2>&1 ||
	fail "close --force failed: $(cat "$TDEFS_WORK/close.out")"
[[ $(status_of) == CLOSED ]] || fail "status does not say CLOSED after close --force"
grep -q '^tdefs_keystore_open 0$' <("$TDEREKEY_BIN" metrics "$M") || fail "metrics: tdefs_keystore_open is not 0"
grep -q '^tdefs_key_cache_entries 0$' <("$TDEREKEY_BIN" metrics "$M") ||
	fail "close --force left DEKs in the key cache"
# The held descriptor: its reads and writes fail with EIO (python reports the errno name).
held_io=$(python3 - 7 <<'PY'
import errno, os, sys
fd = int(sys.argv[1])
out = []
for what, call in (("read", lambda: os.pread(fd, 4096, 0)),
                   ("write", lambda: (os.pwrite(fd, b"x" * 4096, 8192), os.fsync(fd)))):
    try:
        call()
        out.append(what + ":ok")
    except OSError as e:
        out.append(what + ":" + errno.errorcode[e.errno])
print(" ".join(out))
PY
)
[[ $held_io == "read:EIO write:EIO" ]] || fail "I/O on the held descriptor after close --force: $held_io (want EIO for both)"
# A new open of the held file shares no wiped state: ENOKEY, as for any file without its key.
held_again=$(python3 -c '
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDONLY)); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
' "$M/held")
[[ $held_again == ENOKEY ]] || fail "a new open of the held file after close --force: $held_again (want ENOKEY)"
exec 7>&-
opened=$(python3 -c '
import errno, os, sys
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDONLY)); print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])
' "$M/cold" "$M/cached" "$M/new-file-$RANDOM")
[[ $opened == $'ENOKEY\nENOKEY\nENOENT' ]] || fail "opens after close --force: $(tr '\n' ' ' <<<"$opened") (want ENOKEY ENOKEY ENOENT)"
touch "$M/made-while-closed" 2>/dev/null && fail "a new file was made while the keystore is closed"
rc_of "$TDEREKEY_BIN" rewrap "$M" --no-wait
[[ $rc == "$closed_code" ]] || fail "rewrap while closed: exit $rc, not $closed_code: $out"
rc_of "$TDEREKEY_BIN" data "$M" --no-wait
[[ $rc == "$closed_code" ]] || fail "data rekey while closed: exit $rc, not $closed_code: $out"
rc_of "$TDEREKEY_BIN" reload "$M"
[[ $rc == "$closed_code" ]] || fail "reload while closed: exit $rc, not $closed_code: $out"
rc_of "$TDEREKEY_BIN" close "$M"
[[ $rc == 0 && $out == *"already CLOSED"* ]] || fail "a second close: exit $rc: $out"
sleep 0.5 # the held descriptor's release reaches the daemon after close(2)
"$TDEFS_TEST_HELPER" find-in-memory "$pid" "${dek:0:64}" &&
	fail "the DEK of the held file is still in the daemon's memory after close --force"
(cd "$B" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TDEFS_WORK/backing.after"
cmp -s "$TDEFS_WORK/backing.before" "$TDEFS_WORK/backing.after" ||
	fail "the backing files changed while the keystore was closed: $(diff "$TDEFS_WORK/backing.before" "$TDEFS_WORK/backing.after" | head -5)"
log "close --force: EIO on the held descriptor, ENOKEY for opens, jobs refused (exit $closed_code), backing unchanged"

# ---- 3. open: bad inputs, wrong password, right password -------------------------------------
rc_of "$TDEREKEY_BIN" open
[[ $rc == "$usage_code" ]] || fail "open without a mount point: exit $rc"
rc_of "$TDEREKEY_BIN" open "$M" --password-fd junk
[[ $rc == "$usage_code" && $(wc -l <<<"$out") == 1 ]] || fail "open --password-fd junk: exit $rc: $out"
rc_of "$TDEREKEY_BIN" open "$M" --password-fd 0 --password-file "$pw"
[[ $rc == "$usage_code" ]] || fail "open with both password options: exit $rc: $out"
rc_of "$TDEREKEY_BIN" open "$M" --force
[[ $rc == "$usage_code" ]] || fail "open --force (an option of close): exit $rc: $out"
rc_of "$TDEREKEY_BIN" close "$M" --password-file "$pw"
[[ $rc == "$usage_code" ]] || fail "close --password-file (an option of open): exit $rc: $out"
rc_of "$TDEREKEY_BIN" open "$M" --password-file "$TDEFS_WORK/no-such-file"
[[ $rc == "$wrong_pw_code" && $(wc -l <<<"$out") == 1 ]] || fail "open with a missing password file: exit $rc: $out"
rc_of "$TDEREKEY_BIN" open "$M" </dev/null
[[ $rc == "$wrong_pw_code" ]] || fail "open with no password and no terminal: exit $rc: $out"
rc_of "$TDEREKEY_BIN" open "$M" --password-file "$bad"
[[ $rc == "$wrong_pw_code" ]] || fail "open with a wrong password: exit $rc, not $wrong_pw_code: $out"
(($(wc -l <<<"$out") == 1)) || fail "a wrong password: not one line: $out"
[[ $(status_of) == CLOSED ]] || fail "a wrong password opened the keystore"
# The right one, from a descriptor, while ps is watched for it.
"$TDEREKEY_BIN" open "$M" --password-fd 3 3<"$pw" >"$TDEFS_WORK/open.out" 2>&1 ||
	fail "open with the right password failed: $(cat "$TDEFS_WORK/open.out")"
[[ $(status_of) == OPEN ]] || fail "status does not say OPEN after tderekey open"
cmp -s "$M/held" "$TDEFS_WORK/held.ref" || fail "held: the data is not intact after close --force and open"
cmp -s "$M/cached" "$TDEFS_WORK/cached.ref" || fail "cached: the data is not intact after open"
echo after-open >"$M/made-after-open" || fail "no new file after open"
log "open: a wrong password refused (exit $wrong_pw_code, stays CLOSED), the right one opens, data intact"

# ---- 4b. key cache across a plain close -----------------------------------------------------
cmp -s "$M/cached" "$TDEFS_WORK/cached.ref" || fail "cached: does not read"
drop_caches
"$TDEREKEY_BIN" close "$M" >/dev/null || fail "close with no file open failed"
cmp -s "$M/cached" "$TDEFS_WORK/cached.ref" ||
	fail "key_cache=4: a file closed just before tderekey close does not open from the cache"
python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_RDONLY))' "$M/cold" 2>/dev/null &&
	fail "cold: a file whose DEK was never cached opened with the keystore closed"
# The entry's own expiry: wait until the daemon says the cache is empty (bounded), then open.
for ((i = 0; i < 100; i++)); do
	grep -q '^tdefs_key_cache_entries 0$' <("$TDEREKEY_BIN" metrics "$M") && break
	sleep 0.2
done
grep -q '^tdefs_key_cache_entries 0$' <("$TDEREKEY_BIN" metrics "$M") ||
	fail "key_cache=4: the cache still holds DEKs 20 s after the last close"
drop_caches
python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_RDONLY))' "$M/cached" 2>/dev/null &&
	fail "key_cache=4: the file still opens after its cache entry expired"
log "key_cache: a recently closed file opens while closed, not after its entry expired"

# A bad -o key_cache is refused at mount with one line naming it, and nothing is mounted.
mkdir -p "$TDEFS_WORK/mnt2"
for value in abc -1 86401 5s ""; do
	rc_of "$TDEFS_BIN" --wallet "$W" -o "password_file=$pw" -o "key_cache=$value" "$B" "$TDEFS_WORK/mnt2" </dev/null
	((rc != 0)) || fail "-o key_cache=$value: exit 0"
	mountpoint -q "$TDEFS_WORK/mnt2" && fail "-o key_cache=$value: mounted"
	[[ $(wc -l <<<"$out") == 1 && $out == *"-o key_cache=$value:"* ]] || fail "-o key_cache=$value: not one line naming it: $out"
done
log "bad -o key_cache values refused at mount, one line each"

# ---- 5. uid 65534 and the password's paths ------------------------------------------------
chmod 0711 "$TDEFS_WORK"
: >"$TDEFS_WORK/nobody.out"
for request in "open $M" "open $M --password-fd 0" "close $M" "close $M --force"; do
	rc=0
	# shellcheck disable=SC2086 # the words of the request
	as_nobody "$TDEREKEY_BIN" $request <"$pw" >>"$TDEFS_WORK/nobody.out" 2>&1 || rc=$?
	[[ $rc == "$denied_code" ]] || fail "uid 65534: tderekey $request: exit $rc, not $denied_code (refused by the control channel): $(tail -1 "$TDEFS_WORK/nobody.out")"
done
[[ $(status_of) == CLOSED ]] || fail "uid 65534 changed the keystore's state"
# A slow password source keeps tderekey running while ps is read.
mkfifo "$TDEFS_WORK/pwfifo"
"$TDEREKEY_BIN" open "$M" --password-file "$TDEFS_WORK/pwfifo" >"$TDEFS_WORK/open2.out" 2>&1 &
opener=$!
sleep 0.3
ps -eo args >"$TDEFS_WORK/ps.out"
cat "$pw" >"$TDEFS_WORK/pwfifo"
wait "$opener" || fail "open with the password from a FIFO failed: $(cat "$TDEFS_WORK/open2.out")"
grep -q "tderekey open" "$TDEFS_WORK/ps.out" || fail "ps did not see tderekey open running (the check proves nothing)"
for f in "$TDEFS_WORK/ps.out" "$daemon_log" "$TDEFS_WORK/open.out" "$TDEFS_WORK/open2.out" \
	"$TDEFS_WORK/close.out" "$TDEFS_WORK/nobody.out"; do
	[[ -f $f ]] || fail "$f is missing (nothing was checked)"
	grep -qF "$secret_text" "$f" && fail "the password appears in $f"
done
[[ $(status_of) == OPEN ]] || fail "not OPEN after the FIFO open"
# 'cold' is opened here for the first time since the forced close: never through the cache.
cmp -s "$M/cold" "$TDEFS_WORK/cold.ref" || fail "cold: the data is not intact after open"
log "uid 65534 refused; the password is in no argv, log or output"

# ---- 6. a writer running at the forced close: from the close on, nothing reaches the disk ----
python3 - "$M/busy" >"$TDEFS_WORK/writer.out" 2>&1 <<'PY' &
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
block = os.urandom(65536)
errors = 0
for i in range(1000000):
    try:
        os.pwrite(fd, block, (i % 64) * 65536)
        if i % 8 == 0:
            os.fsync(fd)
    except OSError as e:
        errors += 1
        if errors == 1:
            print("first error:", errno.errorcode[e.errno], flush=True)
        if errors >= 50:
            break
print("errors:", errors, flush=True)
PY
writer=$!
for ((i = 0; i < 100; i++)); do
	[[ -s $B/busy ]] && break
	sleep 0.05
done
[[ -s $B/busy ]] || fail "the writer did not start"
sleep 0.3
"$TDEREKEY_BIN" close "$M" --force >/dev/null 2>&1 || fail "close --force under a writer failed"
(cd "$B" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TDEFS_WORK/busy.before"
wait "$writer" || fail "the writer died: $(cat "$TDEFS_WORK/writer.out")"
(cd "$B" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TDEFS_WORK/busy.after"
grep -q "first error: EIO" "$TDEFS_WORK/writer.out" || fail "the writer's first error after close --force is not EIO: $(cat "$TDEFS_WORK/writer.out")"
cmp -s "$TDEFS_WORK/busy.before" "$TDEFS_WORK/busy.after" ||
	fail "the backing changed after close --force returned: $(diff "$TDEFS_WORK/busy.before" "$TDEFS_WORK/busy.after" | head -4)"
kill -0 "$pid" 2>/dev/null || fail "the daemon died under close --force with a writer"
"$TDEREKEY_BIN" open "$M" --password-file "$pw" >/dev/null || fail "open after the writer's close failed"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if len(d) % 65536 == 0 and len(d) > 0 else 1)' "$M/busy" ||
	fail "busy: does not read back whole after the forced close and open"
tdefs_umount "$M"
log "a writer at close --force: EIO, and nothing written to the backing once the close returned"

# An auto-login wallet opens with no password.
"$TDEKEY_BIN" create-autologin --wallet "$W" --password-file "$pw" </dev/null >/dev/null 2>&1 ||
	fail "tdekey create-autologin failed"
tdefs_mount "$W" "$B" "$M"
"$TDEREKEY_BIN" close "$M" >/dev/null || fail "close of the auto-login mount failed"
[[ $(status_of) == CLOSED ]] || fail "the auto-login mount is not CLOSED"
"$TDEREKEY_BIN" open "$M" </dev/null >/dev/null || fail "an auto-login wallet did not open without a password"
cmp -s "$M/held" "$TDEFS_WORK/held.ref" || fail "held: not intact on the auto-login mount"

# ---- 7. readers racing forced closes and opens: an error, never other bytes -----------------
python3 - "$M" "$TDEFS_WORK" "$TDEFS_WORK/stop-readers" >"$TDEFS_WORK/readers.out" 2>&1 <<'PY' &
import errno, os, sys
mnt, work, stop = sys.argv[1:4]
refs = {name: open(os.path.join(work, name + ".ref"), "rb").read() for name in ("held", "cold", "cached")}
seen = {}
while not os.path.exists(stop):
    for name, ref in refs.items():
        try:
            fd = os.open(os.path.join(mnt, name), os.O_RDONLY | os.O_DIRECT)
        except OSError as e:
            seen[errno.errorcode[e.errno]] = seen.get(errno.errorcode[e.errno], 0) + 1
            continue
        try:
            data = b""
            while True:
                chunk = os.pread(fd, 1 << 20, len(data))
                if not chunk:
                    break
                data += chunk
            outcome = "ok" if data == ref else "WRONG"
        except OSError as e:
            outcome = errno.errorcode[e.errno]
        os.close(fd)
        seen[outcome] = seen.get(outcome, 0) + 1
    if not os.path.exists(stop + ".started"):
        open(stop + ".started", "w").close()
print(" ".join("%s=%d" % kv for kv in sorted(seen.items())))
PY
readers=$!
for ((i = 0; i < 200; i++)); do
	[[ -e $TDEFS_WORK/stop-readers.started ]] && break
	sleep 0.05
done
[[ -e $TDEFS_WORK/stop-readers.started ]] || fail "the readers did not start"
for ((round = 0; round < 8; round++)); do
	"$TDEREKEY_BIN" close "$M" --force >/dev/null || fail "round $round: close --force failed"
	"$TDEREKEY_BIN" open "$M" </dev/null >/dev/null || fail "round $round: open failed"
	sleep 0.1 # let the readers load the files again before the next close
done
touch "$TDEFS_WORK/stop-readers"
wait "$readers" || fail "the readers died: $(cat "$TDEFS_WORK/readers.out")"
grep -q WRONG "$TDEFS_WORK/readers.out" && fail "a reader got other bytes than the file's: $(cat "$TDEFS_WORK/readers.out")"
grep -Eq '^[A-Za-z]+=[0-9]+( [A-Za-z]+=[0-9]+)*$' "$TDEFS_WORK/readers.out" ||
	fail "the readers report nothing: $(cat "$TDEFS_WORK/readers.out")"
grep -Eqv 'ENOKEY|EIO|ok' <(tr ' ' '\n' <"$TDEFS_WORK/readers.out" | cut -d= -f1) &&
	fail "a reader got an error other than ENOKEY or EIO: $(cat "$TDEFS_WORK/readers.out")"
kill -0 "$(tdefs_daemon_pid "$M")" || fail "the daemon died under the close/open rounds"
for name in held cold cached; do
	cmp -s "$M/$name" "$TDEFS_WORK/$name.ref" || fail "$name: not intact after the close/open rounds"
done
log "readers racing 8 forced closes and opens: $(cat "$TDEFS_WORK/readers.out"), never other bytes"
tdefs_umount "$M"
pass "close refused with files open, --force gives EIO/ENOKEY and changes nothing on disk, open with the wrong then right password, key cache bounded, uid 65534 refused"
