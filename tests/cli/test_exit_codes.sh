#!/usr/bin/env bash
# One exit-code table for tdefs, tdekey and tderekey (tools/cli/cli.h):
#  1. the EXIT STATUS table of each man page (tdefs.8, tdekey.8, tderekey.8) and of every --help
#     of every tool (each command's) is the same list of codes and meanings;
#  2. each tool, made to fail in a known way, exits with the code whose documented meaning is
#     that failure (looked up in the man page by its words, not written here as a number):
#     usage errors and misplaced options, no wallet, a wrong password, a path on no tdefs
#     mount, a directory that is not a tdefs backing directory.
. "$(dirname "$0")/../mounted/lib.sh"
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEFS_BIN" "$TDEKEY_BIN" "$TDEREKEY_BIN"
man_src=$TDEFS_SRC/man

# "CODE<TAB>meaning" per line, whitespace folded, from a --help on stdin.
help_table() {
	awk '/^EXIT STATUS$/ { on = 1; next } on && /^$/ { exit } on' |
		python3 -c '
import re, sys
rows = []
for line in sys.stdin:
    m = re.match(r"^ {7}(\d+) +(.*)$", line.rstrip("\n"))
    if m:
        rows.append([m.group(1), m.group(2)])
    elif rows:
        rows[-1][1] += " " + line.strip()
for code, text in rows:
    print(code + "\t" + " ".join(text.split()).rstrip(".").lower())
'
}
# The same from a man page source: the "*N*" entries of its EXIT STATUS section.
page_table() {
	python3 - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
section = re.search(r"^# EXIT STATUS\n(.*?)(?=^# |\Z)", text, re.S | re.M).group(1)
for code, body in re.findall(r"^\*(\d+)\*\n((?:\t.*\n?)+)", section, re.M):
    body = re.sub(r"\\", "", " ".join(body.split()))
    print(code + "\t" + body.rstrip(".").lower())
EOF
}

reference=$TDEFS_WORK/tdekey.page
page_table "$man_src/tdekey.8.scd" >"$reference"
(($(wc -l <"$reference") >= 20)) || fail "tdekey.8.scd's EXIT STATUS has only $(wc -l <"$reference") codes"
for page in tdefs tderekey; do
	page_table "$man_src/$page.8.scd" >"$TDEFS_WORK/$page.page"
	diff -u "$reference" "$TDEFS_WORK/$page.page" >&2 ||
		fail "$page.8.scd's EXIT STATUS differs from tdekey.8.scd's (above)"
done
checked=0
compare_help() { # WHAT, then the --help on stdin
	help_table >"$TDEFS_WORK/help.table"
	diff -u "$reference" "$TDEFS_WORK/help.table" >&2 ||
		fail "$1: its EXIT STATUS differs from the man pages' (above)"
	checked=$((checked + 1))
}
compare_help "tdefs --help" < <("$TDEFS_BIN" --help)
commands_of() { "$1" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'; }
for cmd in $(commands_of "$TDEKEY_BIN"); do
	compare_help "tdekey $cmd --help" < <("$TDEKEY_BIN" "$cmd" --help)
done
for cmd in $(commands_of "$TDEREKEY_BIN"); do
	compare_help "tderekey $cmd --help" < <("$TDEREKEY_BIN" "$cmd" --help)
done
((checked >= 25)) || fail "only $checked --help pages compared"
log "one EXIT STATUS table in 3 man pages and $checked --help pages"

# The documented code of the meaning that matches PATTERN (exactly one must).
code_for() {
	local found
	found=$(grep -iE -- "$1" "$reference" | cut -f1)
	[[ $(wc -w <<<"$found") == 1 ]] || fail "the man pages have no single code meaning '$1' (found: $found)"
	echo "$found"
}
# expect MEANING PATTERN-IN-STDERR COMMAND...: COMMAND exits with MEANING's code, saying PATTERN.
expect() {
	local meaning=$1 pattern=$2 want rc=0 out
	shift 2
	want=$(code_for "$meaning")
	out=$("$@" 2>&1 </dev/null) || rc=$?
	((rc == want)) || fail "${*##*/}: exit $rc, want $want ($meaning): $out"
	tr "\n" " " <<<"$out" | grep -qiE -- "$pattern" || fail "${*##*/}: exit $rc without '$pattern': $out"
	log "exit $rc ($meaning): ${*##*/}"
}

usage="^2	usage error"
W=$TDEFS_WORK/wallet B=$TDEFS_WORK/backing plain=$TDEFS_WORK/plain
mkdir -m 0700 "$B" "$plain"
printf 'correct horse battery staple\n' >"$TDEFS_WORK/right"
printf 'wrong horse\n' >"$TDEFS_WORK/wrong"
chmod 0600 "$TDEFS_WORK/right" "$TDEFS_WORK/wrong"
"$TDEKEY_BIN" create --wallet "$W" --password-file "$TDEFS_WORK/right" --scrypt-cost 10,1,1 \
	>/dev/null || fail "tdekey create failed"
"$TDEFS_BIN" --init --wallet "$W" --password-file "$TDEFS_WORK/right" "$B" >/dev/null ||
	fail "tdefs --init failed"

# Usage errors, one wording in all three: the option named, and the --help to read.
expect "$usage" "unknown option --bogus.*try 'tdefs --help'" "$TDEFS_BIN" --bogus "$B"
expect "$usage" "unknown option --bogus.*try 'tdekey keys --help'" "$TDEKEY_BIN" keys --wallet "$W" --bogus
expect "$usage" "unknown option --bogus.*try 'tderekey status --help'" "$TDEREKEY_BIN" status --bogus "$plain"
# An option of the tool that this command does not take is refused, not ignored.
expect "$usage" "tderekey stop: this command has no option --rate.*try 'tderekey stop --help'" \
	"$TDEREKEY_BIN" stop --rate 5 "$plain"
expect "$usage" "tderekey metrics: this command has no option --json" "$TDEREKEY_BIN" metrics --json "$plain"
expect "$usage" "tdekey status: this command has no option --tag" "$TDEKEY_BIN" status --wallet "$W" --tag x
expect "$usage" "tdekey delete-secret: this command has no option --tries" \
	"$TDEKEY_BIN" delete-secret --wallet "$W" --tries 2
expect "$usage" "option --password-fd needs an argument" "$TDEKEY_BIN" keys --wallet "$W" --password-fd
expect "$usage" "--tries takes 1 to 100" "$TDEKEY_BIN" keys --wallet "$W" --tries 0
expect "$usage" "--tries x: give a number from 1 to 100" "$TDEFS_BIN" --tries x --check "$B"

# No wallet.
expect "no wallet in the directory" "no wallet|not available" \
	"$TDEKEY_BIN" status --wallet "$TDEFS_WORK/none"
expect "no wallet in the directory" "wallet" \
	"$TDEFS_BIN" --check --wallet "$TDEFS_WORK/none" "$B"
# A wrong password, from a file: the same code from tdekey and tdefs.
expect "^4	wrong password" "wrong password" \
	"$TDEKEY_BIN" keys --wallet "$W" --password-file "$TDEFS_WORK/wrong"
expect "^4	wrong password" "wrong password" \
	"$TDEFS_BIN" --check --wallet "$W" --password-file "$TDEFS_WORK/wrong" "$B"
# Not a tdefs mount (tderekey), not a tdefs backing directory (tdefs).
expect "not on a tdefs mount" "not on a tdefs mount" "$TDEREKEY_BIN" status "$plain"
expect "not on a tdefs mount" "not on a tdefs mount" "$TDEREKEY_BIN" files "$plain" --json
expect "not a tdefs backing directory" "not a tdefs backing directory" "$TDEFS_BIN" --info "$plain"
# And success is 0 everywhere.
"$TDEFS_BIN" --check --wallet "$W" --password-file "$TDEFS_WORK/right" "$B" >/dev/null ||
	fail "tdefs --check with the right password failed"
"$TDEKEY_BIN" keys --wallet "$W" --password-file "$TDEFS_WORK/right" >/dev/null ||
	fail "tdekey keys with the right password failed"
pass "every tool's exit codes match the one documented table"
