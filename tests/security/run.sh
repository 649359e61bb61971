#!/bin/bash
# tests/security/run.sh: runs the tdefs security tests (tests/security/test_*.sh). Each one
# replays an attack by an unprivileged local user (uid 65534, through `as_nobody` in
# tests/mounted/lib.sh) against a root daemon, its tools or its wallets, and passes only when
# the attack fails. docs/SECURITY.md describes the threat model they check.
#
# usage: tests/security/run.sh [-v] [-b BUILD] [-t SECONDS] [FILTER...]   (as tests/mounted/run.sh)
# Needs root and /dev/fuse. Soak lengths: TDEFS_SEC_RACE_SECONDS (30) for the rename races.
# The runner itself is tests/mounted/run.sh (same options, same output).
here=$(cd "$(dirname "$0")" && pwd)
TDEFS_SUITE_NAME=security exec bash "$here/../mounted/run.sh" "$@"
