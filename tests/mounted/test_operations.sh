#!/usr/bin/env bash
# What an operator meets at mount time and in the logs (README, "Operations"):
#   - foreground log lines carry the program's name once; job start, progress every 10 %, end and
#     the unmount are logged; an ENOSPC of the backing filesystem is logged once per file, with its path;
#   - without a reachable syslog a background daemon says so once on stderr and uses
#     -o log=FILE; with one, its lines and tdekey's key changes reach syslog, prefixed once
#     (both run in a private mount namespace with a /dev of our own: see syslog_part);
#   - a non-empty mount point is refused unless -o nonempty; a stale mount point (daemon killed)
#     is named with the way to recover, and -o recover unmounts it first; tderekey status on it
#     has its own exit code;
#   - --init creates a missing backing directory 0700;
#   - a password wallet is asked for on a terminal (--tries), never otherwise, never echoed;
#   - tdekey as uid 65534 on root's 0700 wallet says permission denied; status of a missing
#     wallet is not success.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
TDEREKEY=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEFS_BIN" "$TDEKEY_BIN" "$TDEREKEY"
need_cmd python3

# wait_for FILE PATTERN: up to 10 s for PATTERN to appear in FILE.
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_gone PID: up to 10 s for process PID to end.
wait_gone() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# --- run inside a private mount namespace (see the end of this file) -------------------------
#
# /dev is replaced, in the namespace only, by a directory of bind mounts of the few devices
# the daemon needs, so /dev/log is absent (whatever the host has) or a socket of ours.
syslog_part() {
	local dev=$TDEFS_WORK/dev n
	mkdir -p "$dev"
	for n in null zero full random urandom fuse; do
		touch "$dev/$n"
		mount --bind "/dev/$n" "$dev/$n"
	done
	mount --rbind "$dev" /dev
	# Before the work directory is removed: its device files are mount points until then.
	on_exit "umount -l /dev 2>/dev/null || true; for n in null zero full random urandom fuse; do umount -l '$dev'/\$n 2>/dev/null || true; done"
	[[ ! -e /dev/log ]] || fail "namespace: /dev/log is still there"

	tdefs_make_wallet "$TDEFS_WORK/wallet"
	tdefs_init_backing "$TDEFS_WORK/wallet" "$TDEFS_WORK/backing"
	mkdir -p "$TDEFS_WORK/mnt"

	# 1. No syslog: one line on stderr, then the file of -o log=FILE.
	local err=$TDEFS_WORK/daemon.err logfile=$TDEFS_WORK/daemon.log pid
	"$TDEFS_BIN" --wallet "$TDEFS_WORK/wallet" -o "log=$logfile" "$TDEFS_WORK/backing" \
		"$TDEFS_WORK/mnt" </dev/null 2>"$err" || { cat "$err" >&2; fail "background mount failed"; }
	mountpoint -q "$TDEFS_WORK/mnt" || fail "background mount: not mounted"
	(($(grep -c "syslog cannot be reached" "$err") == 1)) ||
		fail "expected one stderr line about syslog, got: $(cat "$err")"
	(($(wc -l <"$err") == 1)) || fail "background mount: more than one stderr line: $(cat "$err")"
	grep -q "logging to $logfile" "$err" || fail "stderr does not name the log file: $(cat "$err")"
	wait_for "$logfile" "mounted $TDEFS_WORK/backing on $TDEFS_WORK/mnt" ||
		fail "the mount is not in -o log=FILE: $(cat "$logfile" 2>&1)"
	pid=$(sed -n 's/.* tdefs\[\([0-9]*\)\]: .*/\1/p' "$logfile" | tail -1)
	[[ -n $pid ]] || fail "no pid in the log file lines: $(cat "$logfile")"
	fusermount3 -u "$TDEFS_WORK/mnt"
	wait_gone "$pid" || fail "background daemon $pid did not exit after the unmount"
	grep -q "unmounted $TDEFS_WORK/backing" "$logfile" || fail "unmount not in the log file: $(cat "$logfile")"
	grep -q "tdefs: tdefs:\|\]: tdefs: " "$logfile" && fail "double prefix in the log file: $(cat "$logfile")"
	log "no syslog: one stderr line, lines in -o log=FILE"

	# 2. A syslog (a socket of ours on /dev/log): the daemon's lines and tdekey's audit line.
	local received=$TDEFS_WORK/syslog.txt
	python3 - "$dev/log" "$received" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
EOF
	local receiver=$!
	on_exit "kill $receiver 2>/dev/null || true"
	for ((n = 0; n < 100; n++)); do [[ -S $dev/log ]] && break; sleep 0.05; done
	: >"$err"
	"$TDEFS_BIN" --wallet "$TDEFS_WORK/wallet" "$TDEFS_WORK/backing" "$TDEFS_WORK/mnt" \
		</dev/null 2>"$err" || { cat "$err" >&2; fail "background mount with syslog failed"; }
	[[ ! -s $err ]] || fail "with syslog, the background mount wrote to stderr: $(cat "$err")"
	wait_for "$received" "tdefs\[[0-9]*\]: mounted " || fail "mount line not in syslog: $(cat "$received")"
	grep -q "tdefs\[[0-9]*\]: tdefs: " "$received" && fail "double prefix in syslog: $(cat "$received")"
	pid=$(sed -n 's/.*tdefs\[\([0-9]*\)\]: mounted .*/\1/p' "$received" | tail -1)
	"$TDEKEY_BIN" set-key --wallet "$TDEFS_WORK/wallet" --tag audit >/dev/null 2>"$err" ||
		{ cat "$err" >&2; fail "tdekey set-key failed"; }
	wait_for "$received" "tdekey\[[0-9]*\]: set-key by uid $(id -u) .* on wallet $TDEFS_WORK/wallet.*active key [0-9a-f]\{32\}" ||
		fail "tdekey's key change is not in syslog: $(cat "$received")"
	wait_for "$received" "wallet .* re-read" || log "note: no wallet reload line yet"
	fusermount3 -u "$TDEFS_WORK/mnt"
	wait_gone "$pid" || fail "daemon $pid did not exit"
	grep -q "tdefs\[$pid\]: unmounted " "$received" || fail "unmount not in syslog: $(cat "$received")"
	log "syslog: daemon lines and tdekey's audit line, one prefix each"
	pass
}
if [[ ${1:-} == --syslog-part ]]; then
	syslog_part
fi

# --- 1. foreground logs, jobs, unmount ----------------------------------------------------
tdefs_setup
daemon_log=$(tdefs_daemon_log)
echo data >"$TDEFS_MNT/f"
# 8 MiB: ten chunks of a data rekey, so its progress passes every tenth.
head -c 8M /dev/urandom >"$TDEFS_MNT/big"
"$TDEREKEY" data "$TDEFS_MNT" >/dev/null 2>&1 || fail "tderekey data failed"
wait_for "$daemon_log" "data rekey started on /$" || fail "job start not logged: $(cat "$daemon_log")"
# Two ends: the resume pass every mount starts, and ours.
for ((i = 0; i < 200; i++)); do
	(($(grep -c "data rekey done" "$daemon_log") >= 2)) && break
	sleep 0.05
done
(($(grep -c "data rekey done" "$daemon_log") >= 2)) || fail "job end not logged: $(cat "$daemon_log")"
# Progress: one line per 10 %, in order, none twice, of the bytes counted at the start.
progress=$(sed -n 's/^tdefs: data rekey \([0-9]*\)%: [0-9.]* of 8\.0 MiB$/\1/p' "$daemon_log" | tr '\n' ' ')
[[ $progress == "10 20 30 40 50 60 70 80 90 " ]] ||
	fail "data rekey progress lines: '$progress', want every 10 % from 10 to 90: $(cat "$daemon_log")"
for ((n = 0; n < 20; n++)); do echo "$n" >"$TDEFS_MNT/small-$n"; done
"$TDEREKEY" rewrap "$TDEFS_MNT" >/dev/null 2>&1 || fail "tderekey rewrap failed"
wait_for "$daemon_log" "rewrap done" || fail "rewrap end not logged: $(cat "$daemon_log")"
grep -q "^tdefs: rewrap 50%: 11 of 22 files$" "$daemon_log" ||
	fail "no rewrap progress line at 50 % (11 of the 22 files): $(cat "$daemon_log")"
(($(grep -c "^tdefs: rewrap [0-9]*%" "$daemon_log") == 9)) ||
	fail "rewrap progress: want 9 lines (10 % to 90 %): $(grep "rewrap" "$daemon_log")"
# A refused control request is logged (resume when nothing is paused).
"$TDEREKEY" resume "$TDEFS_MNT" >/dev/null 2>&1 && fail "tderekey resume with nothing paused succeeded"
wait_for "$daemon_log" "control request .* refused" || fail "refused request not logged: $(cat "$daemon_log")"
tdefs_umount "$TDEFS_MNT"
grep -q "^tdefs: unmounted $TDEFS_BACKING from $TDEFS_MNT" "$daemon_log" || fail "unmount not logged: $(cat "$daemon_log")"
grep -q "tdefs: tdefs:" "$daemon_log" && fail "double prefix in the foreground log: $(cat "$daemon_log")"
grep -qv "^tdefs: " "$daemon_log" && fail "a foreground line without its prefix: $(grep -v '^tdefs: ' "$daemon_log")"
log "foreground: one prefix, job start/progress/end, refusal and unmount logged"

# --- 2. ENOSPC on a small backing filesystem: logged once, with the path -----------------
small=$TDEFS_WORK/small
mkdir -p "$small"
mount -t tmpfs -o size=8m,mode=0700 tmpfs "$small"
on_exit "umount -l '$small' 2>/dev/null || true"
"$TDEFS_BIN" --init --wallet "$TDEFS_WALLET" "$small/b" >/dev/null
mkdir -p "$TDEFS_WORK/smnt"
tdefs_mount "$TDEFS_WALLET" "$small/b" "$TDEFS_WORK/smnt"
dd if=/dev/zero of="$TDEFS_WORK/smnt/big" bs=1M count=16 conv=fsync 2>/dev/null &&
	fail "writing 16 MiB to an 8 MiB backing filesystem succeeded"
dd if=/dev/zero of="$TDEFS_WORK/smnt/big" bs=1M count=4 seek=20 conv=notrunc,fsync 2>/dev/null || true
slog=$(tdefs_daemon_log "$TDEFS_WORK/smnt")
n=$(grep -c "ENOSPC" "$slog" || true)
((n == 1)) || fail "expected one ENOSPC line, got $n: $(cat "$slog")"
grep -q "^tdefs: write $small/b/big: No space left on device (ENOSPC" "$slog" ||
	fail "the ENOSPC line does not name the backing file: $(grep ENOSPC "$slog")"
rm -f "$TDEFS_WORK/smnt/big"
tdefs_umount "$TDEFS_WORK/smnt"
log "ENOSPC logged once with the backing path"

# --- 3. --init creates a missing directory 0700 ------------------------------------------
"$TDEFS_BIN" --init --wallet "$TDEFS_WALLET" "$TDEFS_WORK/fresh" >/dev/null ||
	fail "--init on a missing directory failed"
[[ $(stat -c %a "$TDEFS_WORK/fresh") == 700 ]] || fail "--init made $(stat -c %a "$TDEFS_WORK/fresh"), not 700"
out=$("$TDEFS_BIN" --init --wallet "$TDEFS_WALLET" "$TDEFS_WORK/no/parent" 2>&1) && fail "--init without a parent succeeded"
grep -q "cannot create it: No such file or directory" <<<"$out" || fail "--init without a parent: $out"
log "--init creates a missing directory 0700"

# --- 4. non-empty mount point -------------------------------------------------------------
full=$TDEFS_WORK/full
mkdir -p "$full"
echo keep >"$full/hidden"
rc=0
out=$("$TDEFS_BIN" -f --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" "$full" </dev/null 2>&1) || rc=$?
((rc != 0)) || fail "a non-empty mount point was accepted"
mountpoint -q "$full" && fail "mounted over a non-empty directory"
grep -q "mount point $full is not empty.*-o nonempty" <<<"$out" || fail "non-empty mount point: $out"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$full" -o nonempty
[[ -e $full/f ]] || fail "-o nonempty: the mount does not show the filesystem"
tdefs_umount "$full"
[[ $(cat "$full/hidden") == keep ]] || fail "the mount point's own file is gone"
log "non-empty mount point refused, -o nonempty accepted"

# --- 5. stale mount point: message, tderekey's exit code, -o recover ---------------------
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
pid=$(tdefs_daemon_pid "$TDEFS_MNT")
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
unset "tdefs__pid[$TDEFS_MNT]"
on_exit "fusermount3 -uz '$TDEFS_MNT' 2>/dev/null || true"
stat "$TDEFS_MNT" >/dev/null 2>&1 && fail "the mount point still answers after kill -9"
rc=0
out=$("$TDEFS_BIN" -f --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT" </dev/null 2>&1) || rc=$?
((rc == 1)) || fail "stale mount point: exit $rc, expected 1: $out"
grep -q "mount point $TDEFS_MNT is stale.*fusermount3 -u $TDEFS_MNT.*-o recover" <<<"$out" ||
	fail "stale mount point message: $out"
rc=0
out=$("$TDEREKEY" status "$TDEFS_MNT" 2>&1) || rc=$?
((rc == 21)) || fail "tderekey status on a dead daemon: exit $rc, expected 21: $out"
grep -q "daemon of this mount is gone.*fusermount3 -u $TDEFS_MNT" <<<"$out" || fail "tderekey status: $out"
"$TDEFS_BIN" -f --wallet "$TDEFS_WALLET" -o recover "$TDEFS_BACKING" "$TDEFS_MNT" </dev/null \
	>"$TDEFS_WORK/recover.log" 2>&1 &
pid=$!
wait_for "$TDEFS_WORK/recover.log" "^tdefs: mounted " || fail "-o recover did not mount: $(cat "$TDEFS_WORK/recover.log")"
grep -q "recover: unmounted the stale mount on $TDEFS_MNT" "$TDEFS_WORK/recover.log" ||
	fail "-o recover says nothing: $(cat "$TDEFS_WORK/recover.log")"
[[ $(cat "$TDEFS_MNT/f") == data ]] || fail "after -o recover the file is not readable"
fusermount3 -u "$TDEFS_MNT"
wait "$pid" || fail "the daemon mounted with -o recover exited non-zero"
log "stale mount point: recovery message, tderekey exit 21, -o recover"

# --- 6. password prompt on a terminal, --tries, never otherwise --------------------------
pw=$TDEFS_WORK/pw
printf 'right-password-1\n' >"$pw"
chmod 600 "$pw"
pwallet=$TDEFS_WORK/pwallet
"$TDEKEY_BIN" create --wallet "$pwallet" --password-file "$pw" --scrypt-cost 10,1,1 >/dev/null
"$TDEFS_BIN" --init --wallet "$pwallet" --password-file "$pw" "$TDEFS_WORK/pbacking" >/dev/null
mkdir -p "$TDEFS_WORK/pmnt"
rc=0
out=$("$TDEFS_BIN" -f --wallet "$pwallet" "$TDEFS_WORK/pbacking" "$TDEFS_WORK/pmnt" </dev/null 2>&1) || rc=$?
((rc != 0)) || fail "a password wallet mounted without a password"
grep -q -- "--password-file FILE or --password-fd N" <<<"$out" || fail "no-password message: $out"
grep -qi "password for wallet" <<<"$out" && fail "prompted without a terminal: $out"

# prompt_mount TRIES ANSWER...: tdefs on a pty, each ANSWER typed at a prompt; prints the pty
# output, exits with tdefs's status.
prompt_mount() {
	python3 - "$TDEFS_BIN" "$pwallet" "$TDEFS_WORK/pbacking" "$TDEFS_WORK/pmnt" "$@" <<'EOF'
import os, pty, sys, termios, time
binary, wallet, backing, mnt, tries, *answers = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "--wallet", wallet, "--tries", tries, backing, mnt])
out, pending = b"", list(answers)
deadline = time.time() + 60
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    while pending and out.count(b"Password for wallet") > len(answers) - len(pending):
        # Typed once echo is off: the prompt comes first, then a flush that drops early input.
        while termios.tcgetattr(fd)[3] & termios.ECHO:
            time.sleep(0.01)
        os.write(fd, pending.pop(0).encode() + b"\n")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
EOF
}
rc=0
out=$(prompt_mount 2 wrong-one wrong-two) || rc=$?
((rc != 0)) || fail "two wrong passwords mounted"
(($(grep -c "Password for wallet" <<<"$out") == 2)) || fail "--tries 2: expected two prompts: $out"
grep -q "wrong password for wallet $pwallet (2 tries)" <<<"$out" || fail "--tries 2: $out"
grep -q "wrong-one\|wrong-two" <<<"$out" && fail "a password was echoed: $out"
mountpoint -q "$TDEFS_WORK/pmnt" && fail "mounted after wrong passwords"
rc=0
out=$(prompt_mount 3 wrong-one right-password-1) || rc=$?
((rc == 0)) || fail "right password at the second prompt: exit $rc: $out"
grep -q "try again (2 of 3)" <<<"$out" || fail "no second-try message: $out"
grep -q "right-password-1" <<<"$out" && fail "the password was echoed: $out"
for ((i = 0; i < 100; i++)); do mountpoint -q "$TDEFS_WORK/pmnt" && break; sleep 0.05; done
mountpoint -q "$TDEFS_WORK/pmnt" || fail "not mounted after the right password"
fusermount3 -u "$TDEFS_WORK/pmnt"
log "password prompt on a pty: --tries, no echo, never without a terminal"

# --- 7. tdekey: permission denied, missing wallet -----------------------------------------
chmod 0700 "$TDEFS_WALLET"
rc=0
out=$(as_nobody "$TDEKEY_BIN" status --wallet "$TDEFS_WALLET" 2>&1) || rc=$?
((rc == 7)) || fail "tdekey as nobody on a 0700 root wallet: exit $rc, expected 7: $out"
grep -q "permission denied" <<<"$out" || fail "tdekey as nobody: $out"
grep -q "no wallet" <<<"$out" && fail "tdekey as nobody says there is no wallet: $out"
rc=0
out=$("$TDEKEY_BIN" status --wallet "$TDEFS_WORK/no-such-wallet" 2>&1) || rc=$?
((rc == 3)) || fail "tdekey status on a missing wallet: exit $rc, expected 3: $out"
grep -q "NOT_AVAILABLE" <<<"$out" || fail "tdekey status on a missing wallet: $out"
log "tdekey: permission denied as nobody, exit 3 on a missing wallet"

# --- 8. syslog absent and present, in a private mount namespace ---------------------------
need_cmd unshare util-linux
rc=0
TDEFS_TMPDIR=$TDEFS_WORK unshare -m --propagation private bash "$0" --syslog-part || rc=$?
((rc == 0)) || fail "the syslog part failed (exit $rc)"
pass
