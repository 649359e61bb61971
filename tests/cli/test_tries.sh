#!/usr/bin/env bash
# Password prompts, the same in tdekey and tdefs: asked on a terminal only, again after a wrong
# password up to --tries N times (default 3), and never when standard input is not a terminal,
# even though a terminal is there to open (/dev/tty). python3's pty module plays the person.
#  1. --tries 3: a wrong password twice, then the right one: success (exit 0);
#  2. --tries 1: one wrong password ends the run with the wrong-password exit code, no second
#     prompt;
#  3. the default is 3 prompts;
#  4. on a terminal but with stdin from /dev/null: no prompt at all, the wrong-password code
#     at once, and the message names --password-file and --password-fd.
. "$(dirname "$0")/../mounted/lib.sh"
need_build "$TDEFS_BIN" "$TDEKEY_BIN"
need_cmd python3 python3

W=$TDEFS_WORK/wallet B=$TDEFS_WORK/backing
mkdir -m 0700 "$B"
printf 'correct horse battery staple\n' >"$TDEFS_WORK/right"
chmod 0600 "$TDEFS_WORK/right"
"$TDEKEY_BIN" create --wallet "$W" --password-file "$TDEFS_WORK/right" --scrypt-cost 10,1,1 \
	>/dev/null || fail "tdekey create failed"
"$TDEFS_BIN" --init --wallet "$W" --password-file "$TDEFS_WORK/right" "$B" >/dev/null ||
	fail "tdefs --init failed"
# The wrong-password code as the man page documents it.
wrong_code=$(awk '/^\*[0-9]+\*$/ { code = $0; gsub(/\*/, "", code); next }
	code != "" && /^\tWrong password/ { print code; exit } { code = "" }' "$TDEFS_SRC/man/tdekey.8.scd")
[[ $wrong_code =~ ^[0-9]+$ ]] || fail "no wrong-password code in tdekey.8.scd"

# on_tty ANSWERS STDIN COMMAND...: run COMMAND on a new pseudo-terminal (its controlling
# terminal), answer each password prompt with the next of ANSWERS (comma-separated), stdin the
# terminal ("tty") or /dev/null ("null"). Prints "exit=N prompts=P" and the output.
on_tty() {
	python3 - "$@" <<'EOF'
import os, pty, re, select, signal, sys, termios, time
answers, stdin_kind, argv = sys.argv[1].split(","), sys.argv[2], sys.argv[3:]
pid, master = pty.fork()
if pid == 0:
    if stdin_kind == "null":
        fd = os.open("/dev/null", os.O_RDONLY)
        os.dup2(fd, 0)
    os.execv(argv[0], argv)
output, prompts, pending, deadline, status = b"", 0, b"", time.time() + 60, None
while status is None and time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            chunk = b""
        output += chunk
        pending += chunk
    # A prompt ends with ": "; answer it once, after echo is off (the reader has set up the
    # terminal and flushed what was typed before).
    if re.search(rb"[Pp]assword[^\n]*: $", pending) and \
            not termios.tcgetattr(master)[3] & termios.ECHO:
        pending = b""
        if prompts < len(answers):
            os.write(master, answers[prompts].encode() + b"\n")
        prompts += 1
    done, code = os.waitpid(pid, os.WNOHANG)
    if done:
        status = code
if status is None:
    os.kill(pid, signal.SIGKILL)  # stuck: reported as a failure, not a hung test
    _, status = os.waitpid(pid, 0)
while select.select([master], [], [], 0.2)[0]:  # what it wrote before exiting
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    output += chunk
print("exit=%d prompts=%d" % (os.waitstatus_to_exitcode(status), prompts))
sys.stdout.write(output.decode(errors="replace"))
EOF
}
right="correct horse battery staple"
# expect WANT_EXIT WANT_PROMPTS ANSWERS STDIN COMMAND...
expect() {
	local want_exit=$1 want_prompts=$2 out
	shift 2
	out=$(on_tty "$@")
	head -1 <<<"$out" | grep -qx "exit=$want_exit prompts=$want_prompts" ||
		fail "${*:3}: want exit $want_exit after $want_prompts prompts, got: $out"
	log "exit $want_exit after $want_prompts prompts (answers $1, stdin $2): ${3##*/} ${*:4}"
	LAST=$out
}

for tool in tdekey tdefs; do
	if [[ $tool == tdekey ]]; then
		run=("$TDEKEY_BIN" keys --wallet "$W" --password-prompt)
	else
		run=("$TDEFS_BIN" --check --wallet "$W" "$B")
	fi
	# 1. Two wrong, then right, with --tries 3.
	expect 0 3 "wrong1,wrong2,$right" tty "${run[@]}" --tries 3
	grep -q "try again (2 of 3)" <<<"$LAST" && grep -q "try again (3 of 3)" <<<"$LAST" ||
		fail "$tool --tries 3: no 'try again' between the prompts: $LAST"
	# 2. --tries 1: the first wrong one is the last.
	expect "$wrong_code" 1 "wrong1,$right" tty "${run[@]}" --tries 1
	# 3. The default: three prompts, then the wrong-password code.
	expect "$wrong_code" 3 "wrong1,wrong2,wrong3,$right" tty "${run[@]}"
	# 4. A terminal exists, but stdin is not one: no prompt.
	expect "$wrong_code" 0 "$right" null "${run[@]}" --tries 3
	grep -q -- "--password-file" <<<"$LAST" && grep -q -- "--password-fd" <<<"$LAST" ||
		fail "$tool without a terminal on stdin: the message does not name the password options: $LAST"
done
pass "prompts on a terminal only, --tries N times"
