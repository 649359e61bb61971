#!/bin/sh
# Run a libFuzzer target briefly over the committed seeds without writing into the source
# tree: new inputs go to a scratch corpus, which is removed after a clean run and kept (with
# the crash input) after a failure.
# Usage: run_fuzzer.sh FUZZER SEED_DIR SECONDS ($TDEFS_FUZZ_SECONDS overrides SECONDS)
set -u
fuzzer=$1 seeds=$2 seconds=${TDEFS_FUZZ_SECONDS:-$3}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tdefs-fuzz-XXXXXX") || exit 1
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 -artifact_prefix="$scratch/" "$scratch" "$seeds"
status=$?
if [ "$status" -eq 0 ]; then
	rm -rf "$scratch"
else
	echo "fuzzer failed; corpus and crash input kept in $scratch" >&2
fi
exit "$status"
