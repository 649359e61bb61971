#!/usr/bin/env bash
# Status views (README.md, "Status views"): tderekey files lists every file of a mount with its
# size, master key ID and data-key state (NORMAL, EMPTY, REKEYING with its watermark while a
# data rekey runs, DAMAGED with a reason), tdefs --info describes a backing directory, tdefs
# --check --json reports what the text check reports; every JSON output is parsed and checked
# against the documented field names and types, with file names holding spaces, quotes,
# newlines and bytes that are not UTF-8. The unprivileged user gets no listing, and bad inputs
# give one line and exit 2.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd python3
tool=$TDEFS_TEST_HELPER
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$tool" "$tderekey"
tdefs_setup

# The validator: reads one JSON document on stdin, checks the schema of KIND (files, info,
# check), then evaluates the python expression CHECK with the document as `d` and the rows by
# path as `rows` (files) or problems by path as `probs` (check); exits non-zero with the reason.
validate() {
	local kind=$1 check=${2:-True}
	python3 -c '
import json, sys
kind, check = sys.argv[1], sys.argv[2]
raw = sys.stdin.buffer.read()
try:
    d = json.loads(raw.decode("utf-8"))   # must be valid UTF-8 JSON, whatever the names hold
except Exception as e:
    sys.exit("not valid JSON: %s: %r" % (e, raw[:300]))
def need(obj, field, types, where):
    if field not in obj:
        sys.exit("%s: no field %r" % (where, field))
    v = obj[field]
    if isinstance(v, bool) and bool not in types:
        sys.exit("%s: %r is a boolean" % (where, field))
    if not isinstance(v, types):
        sys.exit("%s: %r is %r, want %r" % (where, field, v, types))
    return v
N = type(None)
rows, probs = {}, {}
if kind == "files":
    for f in ("mount", "backing", "path"): need(d, f, (str,), "top")
    for r in need(d, "files", (list,), "top"):
        need(r, "path", (str,), "row"); need(r, "size", (int, N), "row")
        k = need(r, "key_id", (str, N), "row")
        if k is not None and (len(k) != 32 or k.strip("0123456789abcdef")):
            sys.exit("row: key_id %r is not 32 hex digits" % k)
        st = need(r, "state", (str,), "row")
        if st not in ("NORMAL", "REKEYING", "DAMAGED", "EMPTY"): sys.exit("row: state %r" % st)
        vc = need(r, "valid_copies", (int,), "row")
        if not 0 <= vc <= 2: sys.exit("row: valid_copies %r" % vc)
        w = need(r, "watermark_bytes", (int, N), "row")
        p = need(r, "rekey_percent", (int, float, N), "row")
        if (st == "REKEYING") != (w is not None) or (w is None) != (p is None):
            sys.exit("row %r: watermark fields %r %r do not fit state %s" % (r["path"], w, p, st))
        need(r, "reason", (str, N), "row")
        if st == "DAMAGED" and not r["reason"]: sys.exit("row %r: DAMAGED without a reason" % r["path"])
        rows[r["path"]] = r
    t = need(d, "totals", (dict,), "top")
    for f in ("files", "normal", "rekeying", "damaged", "empty", "plaintext", "unreadable"): need(t, f, (int,), "totals")
    if t["files"] != len(d["files"]): sys.exit("totals.files %d != %d rows" % (t["files"], len(d["files"])))
elif kind == "info":
    need(d, "backing", (str,), "top"); need(d, "mounted_on", (str, N), "top")
    for f in ("format_version", "cipher_suite_id", "block_size", "created", "files", "empty", "damaged", "rekey_in_progress"):
        need(d, f, (int,), "top")
    for f in ("cipher_suite", "wallet_id", "directory_id", "container", "created_utc"):
        need(d, f, (str,), "top")
    for k in need(d, "files_per_key", (list,), "top"):
        need(k, "key_id", (str,), "files_per_key"); need(k, "files", (int,), "files_per_key")
elif kind == "check":
    need(d, "backing", (str,), "top")
    for f in ("wallet_checked", "repair", "complete", "clean"): need(d, f, (bool,), "top")
    for p in need(d, "problems", (list,), "top"):
        need(p, "path", (str,), "problem"); need(p, "reason", (str,), "problem")
        if need(p, "kind", (str,), "problem") not in ("DAMAGED", "REPAIRABLE", "REPAIRED"):
            sys.exit("problem kind %r" % p["kind"])
        probs.setdefault(p["path"], []).append(p["kind"])
    for k in need(d, "keys", (list,), "top"):
        need(k, "key_id", (str,), "keys"); need(k, "files", (int,), "keys"); need(k, "in_wallet", (bool, N), "keys")
    t = need(d, "totals", (dict,), "top")
    for f in ("files", "empty", "rekey_in_progress", "problems", "repaired"): need(t, f, (int,), "totals")
    if t["problems"] != sum(1 for p in d["problems"] if p["kind"] != "REPAIRED"):
        sys.exit("totals.problems does not count the problems listed")
else:
    sys.exit("unknown kind " + kind)
if not eval("(" + check + "\n)"):
    sys.exit("check failed: %s\ndocument: %s" % (check, json.dumps(d)[:3000]))
' "$kind" "$check"
}

# Names a DBA would not choose and another local user might: JSON must stay valid.
weird_names=("with space" 'with "quotes"' $'with\nnewline' $'latin1-\xff-byte' 'back\slash')
mkdir "$TDEFS_MNT/dir"
for n in "${weird_names[@]}"; do echo "named" >"$TDEFS_MNT/dir/$n"; done
echo "plain" >"$TDEFS_MNT/normal"
echo "victim" >"$TDEFS_MNT/damaged"
echo "one copy" >"$TDEFS_MNT/onecopy"
head -c $((48 << 20)) /dev/urandom >"$TDEFS_MNT/big"
sync

# Corrupt headers while unmounted: both copies of one file (DAMAGED), one copy of another
# (REPAIRABLE, still readable); a zero-length backing file is a file with no header yet (EMPTY).
tdefs_umount "$TDEFS_MNT"
printf 'XXXXXXXX' | dd of="$TDEFS_BACKING/damaged" bs=1 seek=0 conv=notrunc status=none
printf 'XXXXXXXX' | dd of="$TDEFS_BACKING/damaged" bs=1 seek=2048 conv=notrunc status=none
printf 'XXXXXXXX' | dd of="$TDEFS_BACKING/onecopy" bs=1 seek=2048 conv=notrunc status=none
: >"$TDEFS_BACKING/empty"

# --check --json: the findings of the text output, with the same exit code (1: problems).
rc=0
"$TDEFS_BIN" --check "$TDEFS_BACKING" >"$TDEFS_WORK/check.txt" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "tdefs --check exited $rc on a damaged tree, want 1"
rc=0
"$TDEFS_BIN" --check --json "$TDEFS_BACKING" >"$TDEFS_WORK/check.json" || rc=$?
[[ $rc == 1 ]] || fail "tdefs --check --json exited $rc, the text check 1"
validate check 'probs.get("/damaged") == ["DAMAGED"] and probs.get("/onecopy") == ["REPAIRABLE"] and d["totals"]["empty"] == 1 and d["totals"]["files"] == 10 and not d["clean"] and d["wallet_checked"] is False and all(k["in_wallet"] is None for k in d["keys"])' \
	<"$TDEFS_WORK/check.json" || fail "tdefs --check --json: see above"
text_problems=$(grep -cE '^(DAMAGED|REPAIRABLE|REPAIRED) ' "$TDEFS_WORK/check.txt")
json_problems=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["problems"]))' <"$TDEFS_WORK/check.json")
[[ $text_problems == "$json_problems" ]] || fail "text check lists $text_problems problems, JSON $json_problems"
rc=0
"$TDEFS_BIN" --check --json --wallet "$TDEFS_WALLET" "$TDEFS_BACKING" >"$TDEFS_WORK/check-w.json" || rc=$?
[[ $rc == 1 ]] || fail "tdefs --check --json --wallet exited $rc, want 1"
validate check 'd["wallet_checked"] is True and all(k["in_wallet"] is True for k in d["keys"]) and len(d["keys"]) == 1' \
	<"$TDEFS_WORK/check-w.json" || fail "tdefs --check --json --wallet: see above"

# --info, unmounted: the config record and the census.
"$TDEFS_BIN" --info --json "$TDEFS_BACKING" >"$TDEFS_WORK/info.json" || fail "tdefs --info --json failed"
key1=$("$tool" key-id "$TDEFS_BACKING/normal")
validate info "d[\"mounted_on\"] is None and d[\"format_version\"] == 1 and d[\"block_size\"] == 4096 and d[\"cipher_suite\"] == \"aes-256-xts\" and d[\"files\"] == 10 and d[\"empty\"] == 1 and d[\"damaged\"] == 1 and d[\"files_per_key\"] == [{\"key_id\": \"$key1\", \"files\": 8}] and len(d[\"wallet_id\"]) == 32 and d[\"container\"] != \"\"" \
	<"$TDEFS_WORK/info.json" || fail "tdefs --info --json: see above"
"$TDEFS_BIN" --info "$TDEFS_BACKING" | grep -q "^Wallet ID: *[0-9a-f]\{32\}$" || fail "tdefs --info text has no wallet ID line"

tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
"$TDEFS_BIN" --info --json "$TDEFS_BACKING" | validate info "d[\"mounted_on\"] == \"$TDEFS_MNT\"" ||
	fail "tdefs --info on a mounted backing directory does not name the mount"

# tderekey files: every state, the weird names exactly as json_text escapes them (a byte that
# is not UTF-8 reads as the Latin-1 character of its value).
"$tderekey" files "$TDEFS_MNT" --json >"$TDEFS_WORK/files.json" || fail "tderekey files --json failed"
validate files "d['mount'] == '$TDEFS_MNT' and d['path'] == '/' and rows['/normal']['state'] == 'NORMAL' and rows['/normal']['size'] == 6 and rows['/normal']['key_id'] == '$key1' and rows['/normal']['valid_copies'] == 2 and rows['/normal']['reason'] is None
	and rows['/empty']['state'] == 'EMPTY' and rows['/empty']['key_id'] is None and rows['/empty']['size'] == 0
	and rows['/damaged']['state'] == 'DAMAGED' and rows['/damaged']['key_id'] is None and 'no valid header copy' in rows['/damaged']['reason']
	and rows['/onecopy']['state'] == 'NORMAL' and rows['/onecopy']['valid_copies'] == 1 and rows['/onecopy']['reason']
	and rows['/big']['size'] == 48 << 20
	and set(p for p in rows if p.startswith('/dir/')) == {'/dir/with space', '/dir/with \"quotes\"', '/dir/with\nnewline', '/dir/latin1-\u00ff-byte', '/dir/back\\\\slash'}
	and d['totals'] == {'files': 10, 'normal': 8, 'rekeying': 0, 'damaged': 1, 'empty': 1, 'plaintext': 0, 'unreadable': 0}" \
	<"$TDEFS_WORK/files.json" || fail "tderekey files --json: see above"
# The table: one line per file (the newline in a name escaped), a header and a summary.
"$tderekey" files "$TDEFS_MNT" >"$TDEFS_WORK/files.txt" || fail "tderekey files failed"
[[ $(wc -l <"$TDEFS_WORK/files.txt") == $((10 + 3)) ]] || { cat "$TDEFS_WORK/files.txt" >&2; fail "tderekey files table is not one line per file"; }
grep -qF 'with\x0anewline' "$TDEFS_WORK/files.txt" || fail "a newline in a name is not escaped in the table"
# PATH below the mount: only that subtree.
"$tderekey" files "$TDEFS_MNT" "$TDEFS_MNT/dir" --json | validate files "d['path'] == '/dir' and len(rows) == 5 and all(p.startswith('/dir/') for p in rows)" ||
	fail "tderekey files MNT MNT/dir: see above"
"$tderekey" files "$TDEFS_MNT" "$TDEFS_MNT/normal" --json | validate files "list(rows) == ['/normal']" ||
	fail "tderekey files on one file: see above"

# The unprivileged user gets nothing: refused by the daemon (exit 19), no row printed.
rc=0
as_nobody "$tderekey" files "$TDEFS_MNT" >"$TDEFS_WORK/nobody.out" 2>"$TDEFS_WORK/nobody.err" || rc=$?
[[ $rc == 19 ]] || fail "tderekey files as uid 65534 exited $rc, want 19 (refused by the daemon)"
[[ ! -s $TDEFS_WORK/nobody.out ]] || fail "tderekey files printed to uid 65534: $(head -c 200 "$TDEFS_WORK/nobody.out")"
rc=0
as_nobody "$tderekey" files "$TDEFS_MNT" "$TDEFS_MNT/dir" --json >"$TDEFS_WORK/nobody.out" 2>/dev/null || rc=$?
[[ $rc == 19 && ! -s $TDEFS_WORK/nobody.out ]] || fail "tderekey files --json as uid 65534: exit $rc, output $(wc -c <"$TDEFS_WORK/nobody.out") bytes"

# Bad inputs: one line naming the path; exit 2 (usage) or 14 (not a backing directory one can
# use), from the one exit-code table of the three tools.
mkdir -p "$TDEFS_WORK/plain"
echo data >"$TDEFS_WORK/plain/file"
expect_usage() { expect_exit 2 "$@"; }
expect_backing() { expect_exit 14 "$@"; }
expect_exit() {
	local want=$1 what=$2 name=$3 rc=0
	shift 3
	"$@" >"$TDEFS_WORK/bad.out" 2>"$TDEFS_WORK/bad.err" || rc=$?
	[[ $rc == "$want" ]] || fail "$what: exit $rc, want $want"
	[[ $(wc -l <"$TDEFS_WORK/bad.err") == 1 ]] || { cat "$TDEFS_WORK/bad.err" >&2; fail "$what: not a one-line error"; }
	grep -qF -- "$name" "$TDEFS_WORK/bad.err" || fail "$what: the error does not name $name: $(cat "$TDEFS_WORK/bad.err")"
	[[ ! -s $TDEFS_WORK/bad.out ]] || fail "$what: printed on stdout"
}
expect_backing "tdefs --info on a plain directory" "$TDEFS_WORK/plain" "$TDEFS_BIN" --info "$TDEFS_WORK/plain"
expect_backing "tdefs --info --json on a plain directory" "$TDEFS_WORK/plain" "$TDEFS_BIN" --info --json "$TDEFS_WORK/plain"
expect_backing "tdefs --info on a file" "$TDEFS_WORK/plain/file" "$TDEFS_BIN" --info "$TDEFS_WORK/plain/file"
expect_backing "tdefs --info on a missing directory" "$TDEFS_WORK/missing" "$TDEFS_BIN" --info "$TDEFS_WORK/missing"
expect_usage "tdefs --json alone" "--json" "$TDEFS_BIN" --json "$TDEFS_BACKING"
expect_usage "tderekey files on a path off the mount" "$TDEFS_WORK/plain" "$tderekey" files "$TDEFS_MNT" "$TDEFS_WORK/plain"
expect_usage "tderekey files on a missing path" "$TDEFS_MNT/missing" "$tderekey" files "$TDEFS_MNT" "$TDEFS_MNT/missing"
expect_usage "tderekey files with three paths" "PATH" "$tderekey" files "$TDEFS_MNT" "$TDEFS_MNT/dir" "$TDEFS_MNT/normal"
rc=0
"$tderekey" files "$TDEFS_WORK/plain" >/dev/null 2>&1 || rc=$?
[[ $rc == 18 ]] || fail "tderekey files on a plain directory exited $rc, want 18 (not a tdefs mount)"

# REKEYING: a slow data rekey of the big file, looked at while it runs, then stopped.
"$tderekey" data "$TDEFS_MNT/big" --rate 1M --no-wait >/dev/null || fail "tderekey data --no-wait failed"
on_exit "'$tderekey' stop '$TDEFS_MNT' >/dev/null 2>&1 || true"
seen=
for ((i = 0; i < 100; i++)); do
	"$tderekey" files "$TDEFS_MNT" "$TDEFS_MNT/big" --json >"$TDEFS_WORK/rekey.json" || fail "tderekey files during a rekey failed"
	if validate files "rows['/big']['state'] == 'REKEYING' and rows['/big']['watermark_bytes'] > 0" <"$TDEFS_WORK/rekey.json" 2>/dev/null; then
		seen=1
		break
	fi
	sleep 0.2
done
[[ -n $seen ]] || { cat "$TDEFS_WORK/rekey.json" >&2; fail "tderekey files never showed /big as REKEYING with a watermark"; }
validate files "0 < rows['/big']['rekey_percent'] < 100 and rows['/big']['key_id'] == '$key1' and rows['/big']['watermark_bytes'] < rows['/big']['size']" \
	<"$TDEFS_WORK/rekey.json" || fail "REKEYING row: see above"
"$tderekey" files "$TDEFS_MNT" | grep -qE '^REKEYING [0-9.]+% .* /big  \(watermark at byte [0-9]+\)$' ||
	fail "the table does not show /big as REKEYING with its percentage"
# tderekey status --json while the rekey runs: numbers are numbers, the flag a boolean, and the
# file in progress is named; once the job has ended no "current" file is shown.
"$tderekey" status "$TDEFS_MNT" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["data_state"] == "running", d["data_state"]
for k in ("keys", "data_files", "data_bytes", "rewrap_files", "data_current_done"):
    assert type(d[k]) is int, (k, d[k])
assert type(d["data_rate"]) in (int, float), d["data_rate"]
assert type(d["data_resume_only"]) is bool, d["data_resume_only"]
assert d["data_current"] == "/big", d.get("data_current")' || fail "tderekey status --json during a rekey: see above"
"$tderekey" stop "$TDEFS_MNT" >/dev/null || fail "tderekey stop failed"
for ((i = 0; i < 100; i++)); do
	"$tderekey" status "$TDEFS_MNT" --json | grep -q '"data_state": "stopping"' || break
	sleep 0.1
done
"$tderekey" status "$TDEFS_MNT" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["data_state"] in ("stopped", "done"), d["data_state"]
assert not any(k.endswith(("_current", "_current_done", "_current_total")) for k in d), d' ||
	fail "tderekey status --json shows a stale current file after the job ended"
"$tderekey" status "$TDEFS_MNT" | grep -q "^data_current " && fail "tderekey status shows a stale data_current after the job ended"
"$tderekey" files "$TDEFS_MNT" --json | validate files "d['totals']['damaged'] == 1 and rows['/normal']['state'] == 'NORMAL'" ||
	fail "tderekey files after the stop: see above"

# --check --repair --json, unmounted: the damaged copy is REPAIRED, the unreadable file stays
# DAMAGED (exit 1), and the interrupted data rekey is counted.
tdefs_umount "$TDEFS_MNT"
rc=0
"$TDEFS_BIN" --check --repair --json "$TDEFS_BACKING" >"$TDEFS_WORK/repair.json" || rc=$?
[[ $rc == 1 ]] || fail "tdefs --check --repair --json exited $rc, want 1 (one file stays damaged)"
validate check 'probs.get("/onecopy") == ["REPAIRED"] and probs.get("/damaged") == ["DAMAGED"] and d["repair"] is True and d["totals"]["repaired"] == 1 and d["totals"]["rekey_in_progress"] == 1' \
	<"$TDEFS_WORK/repair.json" || fail "tdefs --check --repair --json: see above"
# --progress-json on both long jobs: every line a JSON object with numbers, the last one final.
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
rm -f "$TDEFS_MNT/damaged"
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" >/dev/null
for job in rewrap data; do
	"$tderekey" "$job" "$TDEFS_MNT" --progress-json >"$TDEFS_WORK/progress-$job.json" 2>"$TDEFS_WORK/progress-$job.err" || true
	python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines, "no progress line"
for d in lines:
    assert d["job"] == sys.argv[2] and isinstance(d["elapsed_seconds"], (int, float)), d
    assert all(type(d[k]) is int for k in ("files", "changed", "skipped", "failed")), d
assert lines[-1]["state"] in ("done", "failed"), lines[-1]
assert lines[-1]["files"] > 0, lines[-1]' "$TDEFS_WORK/progress-$job.json" "$job" ||
		fail "tderekey $job --progress-json: $(cat "$TDEFS_WORK/progress-$job.json" "$TDEFS_WORK/progress-$job.err")"
done

pass "NORMAL, EMPTY, DAMAGED, REKEYING rows; --info, --check --json; uid 65534 refused; bad inputs"
