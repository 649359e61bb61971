#!/bin/bash
# tests/mounted/run.sh: runs the mounted tdefs integration tests (tests/mounted/test_*.sh).
#
# usage: tests/mounted/run.sh [-v] [-b BUILD] [-t SECONDS] [FILTER...]
#   FILTER   run only tests whose name contains one of these strings (e.g. "sqlite" "fio")
#   -b DIR   build directory (sets TDEFS_BUILD; default $TDEFS_BUILD or /work/main/build)
#   -t SEC   default time limit per test (default 600); a test may set its own with a
#            "# timeout: SEC" line near its top
#   -v       stream each test's output instead of showing it only when the test fails
# Needs root and /dev/fuse, except with TDEFS_TEST_PLAIN=1 (see lib.sh). Tests run one after
# another, sorted by name. One line per test (PASS/FAIL/SKIP and duration) and a last line
# "N passed, N failed[, N skipped]"; the exit status is non-zero if any test failed. Logs are
# kept in a printed directory when something fails.
# TDEFS_SUITE_DIR and TDEFS_SUITE_NAME let another suite (tests/reliability) use this runner for
# its own test_*.sh.
set -euo pipefail
shopt -s nullglob

here=${TDEFS_SUITE_DIR:-$(cd "$(dirname "$0")" && pwd)}
suite=${TDEFS_SUITE_NAME:-mounted}
verbose=0
default_limit=${TDEFS_TEST_TIMEOUT:-600}
while getopts "vb:t:h" o; do
	case $o in
	v) verbose=1 ;;
	b) TDEFS_BUILD=$(cd "$OPTARG" && pwd); export TDEFS_BUILD ;;
	t) default_limit=$OPTARG ;;
	h) sed -n '2,13p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))

tests=()
for t in $(printf '%s\n' "$here"/test_*.sh | LC_ALL=C sort); do
	name=$(basename "$t" .sh)
	if (($# > 0)); then
		keep=0
		for f in "$@"; do
			[[ $name == *"$f"* ]] && keep=1
		done
		((keep)) || continue
	fi
	tests+=("$t")
done
((${#tests[@]} > 0)) || { echo "run.sh: no test matches: $*" >&2; exit 2; }

rundir=$(mktemp -d "${TMPDIR:-/tmp}/tdefs-$suite.XXXXXX")
chmod 0755 "$rundir"
mkdir "$rundir/logs"
export TDEFS_TMPDIR=$rundir

# A test killed at its time limit can leave a mount (and its daemon) behind; clear them so the
# next test and the machine are not affected.
clean_leftovers() {
	local m
	for m in $(findmnt -rn -o TARGET | grep "^$rundir/" | sort -r); do
		echo "    run.sh: leftover mount $m; lazy unmount" >&2
		fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

echo "tdefs $suite tests: ${#tests[@]} test(s), build ${TDEFS_BUILD:-/work/main/build}$([[ ${TDEFS_TEST_PLAIN:-0} == 1 ]] && echo ', PLAIN MODE (no mount)'), logs in $rundir/logs"
passed=0 failed=0 skipped=0
failed_names=()
suite_t0=${EPOCHREALTIME/./}
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	limit=$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -n 1)
	limit=${limit:-$default_limit}
	logf=$rundir/logs/$name.log
	t0=${EPOCHREALTIME/./}
	rc=0
	if ((verbose)); then
		echo "==== $name (limit ${limit}s)"
		set +e
		timeout -k 20 "$limit" bash "$t" </dev/null 2>&1 | tee "$logf"
		rc=${PIPESTATUS[0]}
		set -e
	else
		timeout -k 20 "$limit" bash "$t" </dev/null >"$logf" 2>&1 || rc=$?
	fi
	us=$((${EPOCHREALTIME/./} - t0))
	dur=$(printf '%d.%ds' $((us / 1000000)) $((us / 100000 % 10)))
	clean_leftovers
	case $rc in
	0) status=PASS; passed=$((passed + 1)); note=$(sed -n 's/^PASS: [^:]*: /  /p' "$logf" | tail -n 1) ;;
	77) status=SKIP; skipped=$((skipped + 1)); note=" ($(grep -m1 '^SKIP:' "$logf" | sed 's/^SKIP: [^:]*: //'))" ;;
	124 | 137) status=FAIL; failed=$((failed + 1)); note=" (time limit ${limit}s exceeded)" ;;
	*) status=FAIL; failed=$((failed + 1)); note=" (exit status $rc)" ;;
	esac
	printf '%-4s %-24s %8s%s\n' "$status" "$name" "$dur" "$note"
	if [[ $status == FAIL ]]; then
		failed_names+=("$name")
		if ((!verbose)); then
			tail -n 60 "$logf" | sed 's/^/    | /'
		fi
	fi
done
us=$((${EPOCHREALTIME/./} - suite_t0))
echo "total $((us / 1000000))s"
summary="$passed passed, $failed failed"
((skipped == 0)) || summary+=", $skipped skipped"
if ((failed > 0)); then
	echo "failed: ${failed_names[*]}; full logs in $rundir/logs"
elif [[ ${TDEFS_KEEP:-0} != 1 ]]; then
	rm -rf --one-file-system "$rundir"
fi
echo "$summary"
((failed == 0))
