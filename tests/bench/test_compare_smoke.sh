#!/usr/bin/env bash
# bench/compare must keep working (docs/PERFORMANCE.md): a smoke run of the one benchmark
# command on three targets (the backing filesystem, libfuse's passthrough_ll, tdefs) with one
# fio job, a short pgbench, the SQLite, data rekey and scaling sections, nothing written into bench/results. Asserted: it exits 0 and its
# report has a median for every target and job and the tdefs/passthrough ratio, and --numbers
# writes a line with a median for each measurement. Speed is never
# asserted here: this machine is shared, and the numbers of a smoke run mean nothing.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
need_cmd fio
have /usr/lib/postgresql/15/bin/pgbench || skip "PostgreSQL 15 is not installed (tests/install-deps.sh test)"
out=$TDEFS_WORK/compare.out
# Bad options are refused before anything is set up, with a line naming the option.
for bad in "--pgbench-scale 0" "--pgbench-clients x" "--reps -1" "--numbers /nonexistent/numbers.tsv" "--build /nonexistent/build"; do
	# shellcheck disable=SC2086 # the option and its value are two words
	if "$TDEFS_SRC/bench/compare" $bad --no-results >"$TDEFS_WORK/bad.out" 2>&1; then
		fail "bench/compare $bad was accepted"
	fi
	grep -q -- "${bad%% *}" "$TDEFS_WORK/bad.out" ||
		fail "bench/compare $bad: the error does not name the option: $(cat "$TDEFS_WORK/bad.out")"
done
"$TDEFS_SRC/bench/compare" --build "$TDEFS_BUILD" --quick --no-results --no-plot --no-extra \
	--targets backing,passthrough,tdefs --jobs rand-write-8k --pgbench-time 5 \
	--pgbench-scale 2 --pgbench-clients 2 --numbers "$TDEFS_WORK/numbers.tsv" \
	--workdir-parent "$TDEFS_WORK" >"$out" 2>"$TDEFS_WORK/compare.err" ||
	{ tail -n 30 "$TDEFS_WORK/compare.err" >&2; fail "bench/compare --quick failed"; }
for target in backing passthrough tdefs; do
	grep -q -- "$target" "$out" || fail "the report has no column for $target: $(head -n 40 "$out")"
done
grep -q "rand-write-8k" "$out" || fail "the report has no row for rand-write-8k"
grep -qiE "tdefs ?/ ?passthrough|ratio" "$out" || fail "the report has no tdefs/passthrough ratio"
grep -qi "pgbench" "$out" || fail "the report has no pgbench result"
grep -q "^| tdefs | [0-9]" "$out" || fail "the report has no SQLite or pgbench figure for tdefs"
grep -q "^## SQLite" "$out" || fail "the report has no SQLite section"
grep -q "^| rekey | [0-9.]* |" "$out" || fail "the report has no data rekey figure"
grep -q "^| randwrite shared | 4 | [0-9.]* |" "$out" || fail "the report has no scaling row for 4 jobs on one file"
# The numbers for scripts: one tab-separated line per measurement, with its median.
numbers=$TDEFS_WORK/numbers.tsv
for row in "fio_mbps	rand-write-8k	tdefs" "fio_mbps	rand-write-8k	passthrough" \
	"daemon_cpu_us_per_mib	rand-write-8k	tdefs" "pgbench_tps	2:2	tdefs" \
	"sqlite_commits_per_s	-	tdefs" "rekey_mbps	-	rekey" "scaling_mbps	randwrite shared 4	tdefs" \
	"daemon_cpu_us_per_transaction	sqlite	tdefs" "daemon_cpu_us_per_transaction	pgbench-2:2	passthrough" \
	"syscalls_per_transaction	sqlite/writev	tdefs" "syscalls_per_transaction	pgbench-2:2/read	passthrough"; do
	grep -q "^$row	[0-9.]*	[0-9. ]*$" "$numbers" ||
		fail "--numbers has no line for '$row': $(head -n 20 "$numbers")"
done
grep -q "^| rand-write-8k |.*| [0-9.]* |$" "$out" || fail "the fio row has no ceiling column"
# The request profile: a row per load and FUSE target, the counts per transaction, the CPU.
for target in passthrough tdefs; do
	grep -qE "^\| sqlite \| $target \| 200 \|( [0-9.]+ \|)+$" "$out" ||
		fail "the request profile has no SQLite row for $target: $(grep -A8 '^## Where' "$out")"
	grep -qE "^\| pgbench-2:2 \| $target \| [1-9][0-9]* \|( [0-9.]+ \|)+$" "$out" ||
		fail "the request profile has no pgbench row for $target: $(grep -A8 '^## Where' "$out")"
done
pass "bench/compare --quick ran on backing, passthrough and tdefs: report with medians and ratios"
