#!/usr/bin/env bash
# The availability of an HSM-keyed mount, -o hsm_heartbeat: the token is SoftHSM2 behind a
# PKCS#11 module built for this test (tests/lib/pkcs11_outage.c) that fails every call with
# CKR_DEVICE_REMOVED, and drops its sessions, while a control file exists.
#  1. bad -o hsm_heartbeat values, and the option on a software wallet, are refused at mount
#     with one line naming the option;
#  2. during the outage: a writer keeps writing (and fsyncing) a file it holds open, without an
#     error; status says key_status OPEN_UNKNOWN_MASTER_KEY_STATUS and the log says so in one
#     line; a new file and a file not opened since the mount fail with EIO; with -o key_cache
#     a file closed before the outage opens again and reads back;
#  3. after it: one line, status OPEN, new files are made and old ones open (the daemon opened
#     new sessions and logged in with the PIN it keeps); after a remount every byte is there;
#  4. uid 65534 cannot read the daemon's memory or environment, where the PIN is held, and the
#     PIN is in no log line.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd softhsm2-util softhsm2
SOFTHSM=${TDEFS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[[ -f $SOFTHSM ]] || skip "no SoftHSM2 module at $SOFTHSM"
PROXY=$TDEFS_BUILD/tests/lib/libtdefs-pkcs11-outage.so
need_build "$PROXY"
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey
export TDEFS_PKCS11_TARGET=$SOFTHSM TDEFS_PKCS11_OUTAGE_FILE=$TDEFS_WORK/token-out

export SOFTHSM2_CONF=$TDEFS_WORK/softhsm2.conf
mkdir -m 0700 "$TDEFS_WORK/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$TDEFS_WORK" >"$SOFTHSM2_CONF"
PIN=outage-pin-$RANDOM$RANDOM
softhsm2-util --init-token --free --label tde-outage --so-pin 0000 --pin "$PIN" >/dev/null ||
	fail "softhsm2-util --init-token failed"
pin=$TDEFS_WORK/pin
printf '%s\n' "$PIN" >"$pin"
chmod 0600 "$pin"

W=$TDEFS_WORK/wallet B=$TDEFS_WORK/backing M=$TDEFS_WORK/mnt
TDEFS_MNT=$M
"$TDEKEY_BIN" create --wallet "$W" --hsm-module "$PROXY" --token-label tde-outage --pin-file "$pin" \
	</dev/null >"$TDEFS_WORK/create.log" 2>&1 || fail "tdekey create on the proxy module failed: $(cat "$TDEFS_WORK/create.log")"
mkdir -m 0700 "$B"
"$TDEFS_BIN" --init --wallet "$W" --pin-file "$pin" "$B" </dev/null >/dev/null 2>&1 || fail "tdefs --init failed"

# ---- 1. bad input ---------------------------------------------------------------------------
mkdir -p "$TDEFS_WORK/mnt2"
for value in abc 0 -1 86401 5s ""; do
	rc=0
	out=$("$TDEFS_BIN" --wallet "$W" --pin-file "$pin" -o "hsm_heartbeat=$value" "$B" "$TDEFS_WORK/mnt2" </dev/null 2>&1) || rc=$?
	((rc != 0)) || fail "-o hsm_heartbeat=$value: exit 0"
	mountpoint -q "$TDEFS_WORK/mnt2" && fail "-o hsm_heartbeat=$value: mounted"
	[[ $(wc -l <<<"$out") == 1 && $out == *"-o hsm_heartbeat=$value:"* ]] ||
		fail "-o hsm_heartbeat=$value: not one line naming it: $out"
done
# ... and on a wallet with no token to watch.
tdefs_make_wallet "$TDEFS_WORK/soft"
tdefs_init_backing "$TDEFS_WORK/soft" "$TDEFS_WORK/soft-backing"
chmod 0700 "$TDEFS_WORK/soft-backing"
rc=0
out=$("$TDEFS_BIN" --wallet "$TDEFS_WORK/soft" -o hsm_heartbeat=1 "$TDEFS_WORK/soft-backing" "$TDEFS_WORK/mnt2" </dev/null 2>&1) || rc=$?
((rc != 0)) || fail "-o hsm_heartbeat on a software wallet: exit 0"
mountpoint -q "$TDEFS_WORK/mnt2" && fail "-o hsm_heartbeat on a software wallet: mounted"
[[ $(grep -vc 'syslog cannot be reached' <<<"$out") == 1 && $out == *"is not an HSM wallet"* ]] ||
	fail "-o hsm_heartbeat on a software wallet: not one line saying so: $out"
log "bad -o hsm_heartbeat values refused at mount, one line each"

# ---- 2. the outage --------------------------------------------------------------------------
head -c 100000 /dev/urandom >"$TDEFS_WORK/old.ref"
head -c 100000 /dev/urandom >"$TDEFS_WORK/recent.ref"
tdefs_mount "$W" "$B" "$M" --pin-file "$pin"
cp "$TDEFS_WORK/old.ref" "$M/old"
tdefs_umount "$M"
tdefs_mount "$W" "$B" "$M" --pin-file "$pin" -o hsm_heartbeat=1 -o key_cache=120
daemon_log=$(tdefs_daemon_log "$M")
cp "$TDEFS_WORK/recent.ref" "$M/recent" # closed again: its DEK stays in the key cache

key_status() { "$TDEREKEY_BIN" status "$M" --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("key_status"))'; }
[[ $(key_status) == OPEN ]] || fail "key_status before the outage: $(key_status)"

# The writer: records of 4 KiB, each fsynced (through the daemon), until told to stop; it
# keeps a copy of what it wrote and exits non-zero at the first error.
python3 - "$M/journal" "$TDEFS_WORK/journal.ref" "$TDEFS_WORK/writer.stop" "$TDEFS_WORK/writer.count" <<'PY' &
import os, sys, time
path, ref, stop, count = sys.argv[1:]
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
n = 0
with open(ref, "wb") as copy:
    while not os.path.exists(stop):
        record = os.urandom(4096)
        os.write(fd, record)
        os.fsync(fd)
        copy.write(record)
        n += 1
        open(count + ".new", "w").write(str(n))
        os.replace(count + ".new", count)  # never read half-written
        time.sleep(0.02)
os.close(fd)
PY
writer=$!
on_exit "touch '$TDEFS_WORK/writer.stop'; rm -f '$TDEFS_WORK/token-out'"
for ((i = 0; i < 100; i++)); do [[ -s $TDEFS_WORK/writer.count ]] && break; sleep 0.1; done
[[ -s $TDEFS_WORK/writer.count ]] || fail "the writer did not start"

touch "$TDEFS_PKCS11_OUTAGE_FILE"
for ((i = 0; i < 100; i++)); do [[ $(key_status) == OPEN_UNKNOWN_MASTER_KEY_STATUS ]] && break; sleep 0.1; done
[[ $(key_status) == OPEN_UNKNOWN_MASTER_KEY_STATUS ]] || fail "key_status during the outage: $(key_status)"
before=$(cat "$TDEFS_WORK/writer.count")

# errno of opening PATH with FLAGS (python's os names), or OK.
open_errno() {
	python3 - "$1" "$2" <<'PY'
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], eval("|".join("os." + f for f in sys.argv[2].split("|"))), 0o600))
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}
[[ $(open_errno "$M/made-during" "O_CREAT|O_WRONLY") == EIO ]] ||
	fail "creating a file during the outage did not fail with EIO"
[[ $(open_errno "$M/old" O_RDONLY) == EIO ]] ||
	fail "opening a file not opened since the mount did not fail with EIO during the outage"
cmp -s "$TDEFS_WORK/recent.ref" "$M/recent" ||
	fail "key_cache: a file closed before the outage does not open and read back during it"
for ((i = 0; i < 50; i++)); do (($(cat "$TDEFS_WORK/writer.count") > before + 20)) && break; sleep 0.1; done
(($(cat "$TDEFS_WORK/writer.count") > before + 20)) || fail "the writer stopped during the outage"
kill -0 "$writer" 2>/dev/null || fail "the writer failed during the outage"
(($(grep -c OPEN_UNKNOWN_MASTER_KEY_STATUS "$daemon_log") == 1)) ||
	fail "the outage is not one log line: $(grep -c OPEN_UNKNOWN_MASTER_KEY_STATUS "$daemon_log") lines"
log "outage: the writer goes on, new opens fail with EIO, the cached file reopens, one log line"

# ---- 3. the token back ----------------------------------------------------------------------
rm -f "$TDEFS_PKCS11_OUTAGE_FILE"
for ((i = 0; i < 100; i++)); do [[ $(key_status) == OPEN ]] && break; sleep 0.1; done
[[ $(key_status) == OPEN ]] || fail "key_status after the outage: $(key_status)"
(($(grep -c "HSM token reachable again" "$daemon_log") == 1)) || fail "the reconnect is not one log line"
echo "made after" >"$M/made-after" || fail "no new file after the token came back"
cmp -s "$TDEFS_WORK/old.ref" "$M/old" || fail "an old file does not open after the token came back"
touch "$TDEFS_WORK/writer.stop"
wait "$writer" || fail "the writer failed"
grep -qF -f "$pin" "$daemon_log" && fail "the PIN is in the daemon log"

# ---- 4. uid 65534 and the PIN the daemon keeps ----------------------------------------------
pid=$(tdefs_daemon_pid "$M")
as_nobody head -c 1 "/proc/$pid/environ" >/dev/null 2>&1 && fail "uid 65534 reads the daemon's environment"
as_nobody python3 -c "open('/proc/$pid/mem', 'rb')" >/dev/null 2>&1 && fail "uid 65534 opens the daemon's memory"
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -f "$pin" && fail "the PIN is on the daemon's command line"
log "after: one line, status OPEN, new and old files open; uid 65534 cannot read the daemon"

tdefs_umount "$M"
tdefs_mount "$W" "$B" "$M" --pin-file "$pin"
cmp -s "$TDEFS_WORK/journal.ref" "$M/journal" || fail "the file written during the outage differs after a remount"
cmp -s "$TDEFS_WORK/old.ref" "$M/old" && cmp -s "$TDEFS_WORK/recent.ref" "$M/recent" &&
	[[ $(cat "$M/made-after") == "made after" ]] || fail "data lost after a remount"
[[ ! -s $M/made-during ]] || fail "the file refused during the outage holds data"
tdefs_umount "$M"
pass "HSM outage: open files served, bounded EIO for new opens, key cache, reconnect"
