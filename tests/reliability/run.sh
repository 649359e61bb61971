#!/bin/bash
# tests/reliability/run.sh: runs the tdefs reliability tests (tests/reliability/test_*.sh):
# daemon crashes under PostgreSQL, SQLite and MariaDB, concurrency against a model and under
# ThreadSanitizer, and bad backing states with tdefs --check.
#
# usage: tests/reliability/run.sh [-v] [-b BUILD] [-t SECONDS] [FILTER...]
#   FILTER   run only tests whose name contains one of these strings (e.g. "pg" "sqlite")
#   -b DIR   build directory (sets TDEFS_BUILD; default $TDEFS_BUILD or /work/main/build)
#   -t SEC   default time limit per test (default 600); a test may set its own with a
#            "# timeout: SEC" line near its top
#   -v       stream each test's output instead of showing it only when the test fails
# Needs root and /dev/fuse. Tests run one after another, sorted by name. One line per test
# (PASS/FAIL/SKIP and duration) and a last line "N passed, N failed[, N skipped]"; the exit
# status is non-zero if any test failed. Logs are kept in a printed directory when something
# fails. The default suite takes about 3-4 minutes on 2 cores (plus ~15 s for the first TSan
# build); for soak runs raise the rounds:
#   TDEFS_REL_PG_ROUNDS (10)  TDEFS_REL_SQLITE_ROUNDS (30)  TDEFS_REL_MARIADB_ROUNDS (6)
#   TDEFS_REL_CONC_ROUNDS (6)  TDEFS_REL_SEED (random; printed by every test that uses it)
#   TDEFS_REL_TSAN=0 skips the ThreadSanitizer run; TDEFS_TSAN_BUILD names its build directory
# (and the per-test "# timeout:" lines with TDEFS_TEST_TIMEOUT / -t).
# The runner itself is tests/mounted/run.sh (same options, same output).
here=$(cd "$(dirname "$0")" && pwd)
TDEFS_SUITE_DIR=$here TDEFS_SUITE_NAME=reliability exec bash "$here/../mounted/run.sh" "$@"
