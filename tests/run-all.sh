#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds tdefs three ways and
# runs every meson test suite (tests/meson.build lists them):
#   build/        warnings as errors: unit and keystore suites, the C unit tests again under
#                 valgrind memcheck, then the system suites mounted, reliability, security and
#                 compat (root, /dev/fuse, real fio, sqlite3, PostgreSQL and MariaDB)
#   build-asan/   ASan+UBSan and fault injection: unit and keystore suites, and a subset of the
#                 mounted suite with the sanitized daemon and tools
#   build-fuzz/   clang libFuzzer targets (suite fuzz), each for TDEFS_FUZZ_SECONDS (20) on its
#                 seed corpus
# Each `meson test` prints its own summary; the last line is "N passed, N failed, N skipped",
# counted from meson's JSON logs, and the exit status is non-zero if anything failed.
# Options: --quick skips the sanitizer and fuzzer builds (for iterating locally).
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = --quick ] && quick=1

failed_steps=()
logs=()

note() { printf '\n=== %s\n' "$*"; }

setup_build() { # dir meson-options...
	local dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi && ninja -C "$dir" >/dev/null || { failed_steps+=("build $dir"); return 1; }
}

# meson test in BUILD with a log of its own, counted at the end. Meson names the log
# NAME[-SETUP][-WRAPPER].json; every NAME here is no prefix of another.
run_suites() { # build name meson-test-arguments...
	local dir=$1 name=$2 log
	shift 2
	rm -f "$dir/meson-logs/$name".json "$dir/meson-logs/$name"-*.json
	meson test -C "$dir" --print-errorlogs --logbase "$name" "$@" || true
	log=$(ls "$dir/meson-logs/$name".json "$dir/meson-logs/$name"-*.json 2>/dev/null | head -n 1)
	logs+=("${log:-$dir/meson-logs/$name.json}")
}

note "installing missing packages"
tests/install-deps.sh test || { echo "run-all: cannot install the packages the tests need" >&2; exit 1; }

note "build (warnings are errors)"
if ! setup_build build --werror -Dbuildtype=debugoptimized; then
	echo "0 passed, 1 failed"
	exit 1
fi

note "unit and keystore suites"
run_suites build unit --suite unit --suite keystore

note "C unit tests under valgrind memcheck"
run_suites build valgrind crypto format backing_walk file_io json_text test_wallet_format \
	test_wallet_directory test_tdekey_exit_codes \
	--wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite' \
	--timeout-multiplier 4

if [ "$quick" -eq 0 ]; then
	note "ASan+UBSan build with fault injection"
	if setup_build build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false \
		-Dfault_injection=true; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		run_suites build-asan asan-unit --suite unit --suite keystore
		note "mounted tests with the ASan+UBSan daemon and tools"
		# A subset that drives every daemon path (I/O, holes, headers, rotation, rekey and
		# its progress across files, the conversion of sparse plaintext files, crashes) in
		# a few minutes; the whole suite runs with build/ below.
		TDEFS_EXERCISER_OPS=30000 TDEFS_CRASH_ROUNDS=5 TDEFS_REKEY_CRASH_ROUNDS=10 \
			run_suites build-asan asan-mounted --setup system --timeout-multiplier 2 \
			test_exerciser test_bad_input test_ciphertext test_posix test_rotation \
			test_secrets test_rewrap_crash test_rekey_crash test_rekey_resume \
			test_adopt_holes
		unset ASAN_OPTIONS UBSAN_OPTIONS
	fi

	note "fuzzers (${TDEFS_FUZZ_SECONDS:-20}s each)"
	if CC=clang setup_build build-fuzz -Dfuzzers=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link; then
		run_suites build-fuzz fuzz --suite fuzz
	fi
fi

note "mounted suite"
run_suites build mounted --setup system --suite mounted

note "reliability suite (crashes under databases, concurrency, bad backing states)"
run_suites build reliability --setup system --suite reliability

note "security suite (attacks by an unprivileged local user, uid 65534)"
# test_rekey_header_loss kills the daemon at named fault points: it takes its daemon and tools
# from build-asan/ (fault injection), and skips under --quick.
run_suites build security --setup system --suite security

note "compat suite (backing directories and wallets made by earlier releases)"
run_suites build compat --setup system --suite compat

note "dist suite (what meson install puts in place)"
run_suites build dist --setup system --suite dist

note "bench suite (a smoke run of bench/compare: the benchmark itself works)"
run_suites build bench --setup system --suite bench

note "summary"
python3 - "${failed_steps[@]/#/--step=}" -- "${logs[@]}" <<'PY'
import json, sys
args = sys.argv[1:]
split = args.index('--')
steps, logs = [a[len('--step='):] for a in args[:split]], args[split + 1:]
passed = failed = skipped = 0
failures = ['%s (did not build)' % s for s in steps]
failed += len(steps)
for path in logs:
    run = path.rsplit('/', 1)[-1][:-len('.json')]
    try:
        records = [json.loads(line) for line in open(path) if line.strip()]
    except OSError:
        failures.append('%s (meson test did not run)' % run)
        failed += 1
        continue
    if not records:
        failures.append('%s (no test ran)' % run)
        failed += 1
    for record in records:
        result = record.get('result')
        if result in ('OK', 'EXPECTEDFAIL'):
            passed += 1
        elif result == 'SKIP':
            skipped += 1
        else:
            failed += 1
            failures.append('%s: %s (%s)' % (run, record.get('name'), result))
for failure in failures:
    print('failed:', failure)
print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PY
