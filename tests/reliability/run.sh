#!/bin/bash
# tests/reliability/run.sh: runs the reliability suite (tests/reliability/test_*.sh): daemon
# crashes under PostgreSQL, SQLite and MariaDB, concurrency against a model and under
# ThreadSanitizer, and bad backing states with tdefs --check. Same options as
# tests/mounted/run.sh. The default suite takes about 3-4 minutes on 2 cores (plus ~15 s for the
# first TSan build); for soak runs raise the rounds:
#   TDEFS_REL_PG_ROUNDS (10)  TDEFS_REL_SQLITE_ROUNDS (30)  TDEFS_REL_MARIADB_ROUNDS (6)
#   TDEFS_REL_CONC_ROUNDS (6)  TDEFS_REL_SEED (random; printed by every test that uses it)
#   TDEFS_REL_TSAN=0 skips the ThreadSanitizer run; TDEFS_TSAN_BUILD names its build directory
here=$(cd "$(dirname "$0")" && pwd)
TDEFS_SUITE_NAME=reliability exec bash "$here/../mounted/run.sh" "$@"
