#!/usr/bin/env bash
# The manual pages (man/*.scd) and the programs' --help say the same thing, so neither can drift:
#  1. every option (--long and -x) anywhere in a program's --help texts (the program's and each
#     command's) appears in its man page source;
#  2. every option in the usage, synopsis and option lines of a --help is defined (on a line of
#     the page that starts with the option): a command's in the page's section for that command
#     (or its OPTIONS), the program's own somewhere in the page;
#  3. every option the page defines is in a --help: a command's section against that command's
#     --help, the rest against all of the program's, so an option removed from the program
#     fails too;
#  4. every command in `tdekey --help` and `tderekey --help` has a "## COMMAND" section under
#     COMMANDS, and every such section is a command; tdefs' -o mount options are each in the
#     page's MOUNT OPTIONS and back;
#  5. the rendered pages (the build's, else scdoc run here) format without a warning from
#     groff or man.
. "$(dirname "$0")/../mounted/lib.sh"
need_cmd groff groff-base
need_cmd man man-db
man_src=$TDEFS_SRC/man
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey
BENCH_BIN=$TDEFS_BUILD/bench/tdefs-bench
for bin in "$TDEFS_BIN" "$TDEKEY_BIN" "$TDEREKEY_BIN" "$BENCH_BIN"; do
	[[ -x $bin ]] || fail "$bin is not built"
done

# The options in the text on stdin, one a line, sorted: --long, and -x not inside a word.
options_in() {
	{ grep -oE -- '(^|[^[:alnum:]_-])--?[[:alpha:]][[:alnum:]-]*' || true; } | sed -E 's/^[^-]+//' |
		awk 'substr($0, 1, 2) == "--" || length($0) == 2' | sort -u
}
# The usage, synopsis and option-definition lines of a --help on stdin (up to its trailing
# shared sections, which list other commands' password options). An option line is one indented
# by two spaces (a program's own --help) or by seven inside OPTIONS (a command's manual, where
# prose is indented by seven too). Plain patterns, no interval expressions: mawk, Debian's
# default awk, has none, and gawk must read the test the same way.
help_heads() {
	awk '/^(PASSWORD SOURCES|EXIT STATUS|FILES|SEE ALSO)$/ { exit }
		/^Usage:/ || /^SYNOPSIS$/ { usage = 1 }
		/^$/ { usage = 0 }
		/^[A-Z][A-Z ]*$/ { section = $0 }
		usage || /^  --?[[:alpha:]]/ || (section == "OPTIONS" && /^       --?[[:alpha:]]/)'
}
# scdoc source on stdin without its markup: *bold*, _underline_ (not inside a word), \escapes.
plain_scd() {
	sed -E 's/\\//g; s/\*//g; s/(^|[^[:alnum:]])_/\1/g; s/_($|[^[:alnum:]])/\1/g'
}
# The definition lines ("*-x*, *--long* _ARG_") of a man page source, as "SECTION<TAB>line",
# SECTION being "## command" inside COMMANDS and "# TITLE" elsewhere.
page_definitions() {
	awk '/^# / { top = $0; section = $0 }
		/^## / && top == "# COMMANDS" { section = $0 }
		/^\*-/ { print section "\t" $0 }' "$1" | plain_scd
}
# The definition lines of one section of a page.
section_definitions() { # PAGE SECTION
	page_definitions "$1" | awk -F'\t' -v s="$2" '$1 == s { print $2 }'
}
# The commands a program's --help lists.
commands_of() {
	"$1" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

checked=0
# check_program NAME BINARY PAGE [COMMANDS...]
check_program() {
	local name=$1 bin=$2 page=$3 cmd opt all_help own_help heads
	shift 3
	[[ -f $page ]] || fail "$name: no man page source $page"
	all_help=$TDEFS_WORK/$name.all-help
	"$bin" --help >"$all_help"
	for cmd in "$@"; do
		"$bin" "$cmd" --help >>"$all_help"
	done
	# 1. Anywhere in --help -> anywhere in the page (its text: not the ';' comments).
	local text=$TDEFS_WORK/$name.page-text
	grep -v '^;' "$page" >"$text"
	while read -r opt; do
		grep -qF -- "$opt" "$text" || fail "$name: $opt is in --help but not in ${page##*/}"
		checked=$((checked + 1))
	done < <(options_in <"$all_help")
	# 2. --help's own usage and option lines -> defined somewhere in the page.
	while read -r opt; do
		page_definitions "$page" | cut -f2 | options_in | grep -xF -- "$opt" >/dev/null ||
			fail "$name: $opt (in $name --help) is defined nowhere in ${page##*/}"
	done < <("$bin" --help | help_heads | options_in)
	for cmd in "$@"; do
		own_help=$TDEFS_WORK/$name.$cmd.help
		"$bin" "$cmd" --help >"$own_help"
		heads=$(help_heads <"$own_help" | options_in)
		while read -r opt; do
			[[ -n $opt ]] || continue
			{ section_definitions "$page" "## $cmd"; section_definitions "$page" "# OPTIONS"; } |
				options_in | grep -xF -- "$opt" >/dev/null ||
				fail "$name: $opt (in $name $cmd --help) is not defined in the section '## $cmd' of ${page##*/}"
		done <<<"$heads"
		# 3. A command's definitions -> that command's --help.
		while read -r opt; do
			[[ -n $opt ]] || continue
			options_in <"$own_help" | grep -xF -- "$opt" >/dev/null ||
				fail "$name: ${page##*/} defines $opt under '## $cmd', but $name $cmd --help has no $opt"
		done < <(section_definitions "$page" "## $cmd" | options_in)
	done
	# 3. Every definition in the page -> some --help of the program.
	while read -r opt; do
		options_in <"$all_help" | grep -xF -- "$opt" >/dev/null ||
			fail "$name: ${page##*/} defines $opt, which no $name --help has"
	done < <(page_definitions "$page" | cut -f2 | options_in)
	# 4. The commands and the page's command sections, both ways.
	local listed
	listed=$(awk '/^# / { top = $0 } /^## / && top == "# COMMANDS" { print $2 }' "$page" | sort)
	[[ $listed == "$(printf '%s\n' "$@" | sed '/^$/d' | sort)" ]] ||
		fail "$name: the commands of --help ($(echo "$@")) and the sections under COMMANDS in ${page##*/} ($(echo $listed)) differ"
	log "$name: $(options_in <"$all_help" | wc -l) options, $# commands agree with ${page##*/}"
}

mapfile -t tdekey_commands < <(commands_of "$TDEKEY_BIN")
mapfile -t tderekey_commands < <(commands_of "$TDEREKEY_BIN")
((${#tdekey_commands[@]} >= 10)) || fail "tdekey --help lists only: ${tdekey_commands[*]}"
((${#tderekey_commands[@]} >= 5)) || fail "tderekey --help lists only: ${tderekey_commands[*]}"
check_program tdefs "$TDEFS_BIN" "$man_src/tdefs.8.scd"
check_program tdekey "$TDEKEY_BIN" "$man_src/tdekey.8.scd" "${tdekey_commands[@]}"
check_program tderekey "$TDEREKEY_BIN" "$man_src/tderekey.8.scd" "${tderekey_commands[@]}"
check_program tdefs-bench "$BENCH_BIN" "$man_src/tdefs-bench.1.scd"

# (grep reads all its input here: with pipefail, grep -q would end a long pipe early and
# the writer's SIGPIPE would count as a failure.)
# 4. tdefs -o: the mount options of --help ("       name  text") and MOUNT OPTIONS, both ways.
help_mount=$("$TDEFS_BIN" --help | sed -nE 's/^ {7}([a-z_]+(=[A-Za-z]+)?)  .*/\1/p' | sort -u)
page_mount=$(awk '/^# / { s = $0 } s == "# MOUNT OPTIONS" && /^\*[a-z]/' "$man_src/tdefs.8.scd" |
	plain_scd | awk '{ print $1 }' | sort -u)
[[ $(wc -l <<<"$help_mount") -ge 6 ]] || fail "tdefs --help lists only these mount options: $(echo $help_mount)"
for o in $help_mount; do
	grep -qxF -- "$o" <<<"$page_mount" || fail "tdefs: -o $o is in --help but not in MOUNT OPTIONS of tdefs.8.scd"
done
for o in $page_mount; do
	"$TDEFS_BIN" --help | grep -F -- "$o" >/dev/null || fail "tdefs.8.scd: MOUNT OPTIONS has $o, which tdefs --help has not"
done
log "tdefs: mount options agree: $(echo $help_mount)"

# 5. Rendering.
rendered=$TDEFS_WORK/rendered
mkdir "$rendered"
for src in "$man_src"/*.scd; do
	page=${src##*/}
	page=${page%.scd}
	if [[ -f $TDEFS_BUILD/man/$page ]]; then
		cp "$TDEFS_BUILD/man/$page" "$rendered/$page"
	else
		need_cmd scdoc
		scdoc <"$src" >"$rendered/$page" || fail "scdoc rejects $src"
	fi
	out=$(groff -man -Tutf8 -ww -z "$rendered/$page" 2>&1)
	[[ -z $out ]] || fail "groff warns about $page: $out"
	out=$(MANWIDTH=80 man --warnings -l "$rendered/$page" 2>&1 >/dev/null)
	[[ -z $out ]] || fail "man warns about $page: $out"
	MANWIDTH=80 man -l "$rendered/$page" 2>/dev/null | grep '^NAME' >/dev/null || fail "$page renders without a NAME section"
done
log "rendered without warnings: $(ls "$rendered" | tr '\n' ' ')"
pass "$checked option mentions, every command and option line of --help agree with the man pages"
