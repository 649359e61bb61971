#!/bin/bash
# tests/mounted/run.sh: runs one system suite (default: mounted) through `meson test`, for
# iterating on tests by hand; tests/run-all.sh runs every suite.
#
# usage: tests/mounted/run.sh [-b BUILD] [-v] [FILTER...]
#   FILTER   run only tests whose name contains one of these strings (e.g. "sqlite" "fio")
#   -b DIR   build directory (default $TDEFS_BUILD, else build/ in the source tree)
#   -v       stream each test's output (meson test --verbose)
# Needs root and /dev/fuse. Time limits are in the suite's meson.build; exit 77 is a skip.
# TDEFS_SUITE_NAME selects another suite (tests/reliability/run.sh, tests/security/run.sh).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
suite=${TDEFS_SUITE_NAME:-mounted}
build=${TDEFS_BUILD:-$src/build}
verbose=()
while getopts "vb:h" o; do
	case $o in
	v) verbose=(--verbose) ;;
	b) build=$OPTARG ;;
	h) sed -n '2,10p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
ninja -C "$build" >/dev/null

names=()
while read -r listed; do
	name=${listed##* }
	(($# == 0)) && { names+=("$name"); continue; }
	for filter in "$@"; do
		[[ $name == *"$filter"* ]] && { names+=("$name"); break; }
	done
done < <(meson test -C "$build" --setup system --suite "$suite" --list 2>/dev/null)
((${#names[@]} > 0)) || { echo "run.sh: no $suite test matches: $*" >&2; exit 2; }
exec meson test -C "$build" --setup system --print-errorlogs "${verbose[@]}" "${names[@]}"
