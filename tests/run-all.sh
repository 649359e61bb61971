#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds tdefs three ways and
# runs every test:
#   build/        warnings as errors; cmocka unit tests (also under valgrind memcheck), then the
#                 mounted integration tests
#   build-asan/   ASan+UBSan and fault injection; the unit tests, the wallet crash test, and a
#                 subset of the mounted tests with the sanitized daemon and tools
#   build-fuzz/   clang libFuzzer targets, each run for a bounded time on its seed corpus
# then the mounted integration tests (tests/mounted), the reliability tests (tests/reliability)
# and the security tests (tests/security) against build/ (the one security test that needs
# fault injection, test_rekey_header_loss, uses build-asan/'s daemon).
# It ends with one line "N passed, N failed" and exits non-zero if anything failed.
# Options: --quick skips the fuzzers and the sanitizer build (for iterating locally).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
quick=0
[ "${1:-}" = --quick ] && quick=1
fuzz_seconds=${TDEFS_FUZZ_SECONDS:-20}

passed=0
failed=0
failures=()

note() { printf '\n=== %s\n' "$*"; }
record() { # name status
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

# meson test, counted test by test from its summary lines.
run_meson_tests() { # label builddir suites...
	local label=$1 dir=$2 log ok fail
	shift 2
	log=$(mktemp)
	meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$log"
	ok=$(awk '/^Ok:/ {print $2}' "$log")
	fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
	passed=$((passed + ${ok:-0}))
	failed=$((failed + fail))
	if [ "${ok:-0}" -eq 0 ] || [ "$fail" -ne 0 ]; then
		failures+=("$label")
		[ "${ok:-0}" -eq 0 ] && failed=$((failed + 1))
	fi
	rm -f "$log"
}

# A script suite that ends with "N passed, N failed": its counts join ours.
run_script_suite() { # label build script [filters...]
	local label=$1 build=$2 script=$3 log status suite_pass suite_fail
	shift 3
	log=$(mktemp)
	TDEFS_BUILD="$top/$build" bash "$script" "$@" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	suite_pass=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed.*/\1/p' "$log" | tail -n 1)
	suite_fail=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed.*/\2/p' "$log" | tail -n 1)
	passed=$((passed + ${suite_pass:-0}))
	failed=$((failed + ${suite_fail:-0}))
	if [ "$status" -ne 0 ] || [ -z "$suite_pass" ]; then
		failures+=("$label")
		[ -z "$suite_pass" ] && failed=$((failed + 1))
	fi
	rm -f "$log"
}

setup_build() { # dir meson-options...
	local dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi && ninja -C "$dir"
}

note "installing missing packages"
tests/install-deps.sh test || { echo "run-all: cannot install the packages the tests need" >&2; exit 1; }

note "build (warnings are errors)"
setup_build build --werror -Dbuildtype=debugoptimized
record "build" $?
[ "$failed" -eq 0 ] || { echo "0 passed, 1 failed"; exit 1; }

note "unit tests"
run_meson_tests "unit tests" build

note "unit tests under valgrind memcheck"
run_meson_tests "valgrind unit tests" build crypto format test_wallet_format test_wallet_directory \
	--wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite' \
	--timeout-multiplier 4

if [ "$quick" -eq 0 ]; then
	note "ASan+UBSan build with fault injection"
	if setup_build build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false \
		-Dfault_injection=true; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		run_meson_tests "sanitizer unit tests" build-asan
		note "mounted tests with the ASan+UBSan daemon and tools"
		# A subset that drives every daemon path (I/O, holes, headers, rotation, rekey,
		# crashes) in a few minutes; the full suite runs with build/ below.
		TDEFS_EXERCISER_OPS=30000 TDEFS_CRASH_ROUNDS=5 TDEFS_REKEY_CRASH_ROUNDS=10 \
			run_script_suite "mounted tests under ASan" build-asan tests/mounted/run.sh \
			exerciser bad_input ciphertext posix rotation secrets rewrap_crash rekey_crash
		unset ASAN_OPTIONS UBSAN_OPTIONS
	else
		record "sanitizer build" 1
	fi

	note "fuzzers (${fuzz_seconds}s each)"
	if CC=clang setup_build build-fuzz -Dfuzzers=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link; then
		while IFS= read -r fuzzer; do
			name=$(basename "$fuzzer")
			# Seeds: the corpus folder beside the target's source, read-only.
			seeds=()
			for dir in $(find "$top/tests" -type d -name "corpus*"); do seeds+=("$dir"); done
			work=$(mktemp -d)
			echo "fuzzing $name"
			"$fuzzer" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
				-print_final_stats=0 "$work" "${seeds[@]}" >"$work.log" 2>&1
			status=$?
			[ $status -eq 0 ] || tail -n 40 "$work.log"
			record "fuzz $name" $status
			rm -rf "$work" "$work.log"
		done < <(find build-fuzz -type f -perm -u+x -name 'fuzz_*' | sort)
	else
		record "fuzzer build" 1
	fi
fi

note "mounted integration tests"
run_script_suite "mounted tests" build tests/mounted/run.sh

note "reliability tests (crashes under databases, concurrency, bad backing states)"
run_script_suite "reliability tests" build tests/reliability/run.sh

note "security tests (attacks by an unprivileged local user, uid 65534)"
# test_rekey_header_loss kills the daemon at named fault points, so it runs its daemon and tools
# from a -Dfault_injection=true build: build-asan/ (without it, under --quick, it skips).
if [ -x build-asan/fs/tdefs ]; then
	TDEFS_FAULT_BUILD="$top/build-asan" run_script_suite "security tests" build tests/security/run.sh
else
	run_script_suite "security tests" build tests/security/run.sh
fi

note "summary"
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
