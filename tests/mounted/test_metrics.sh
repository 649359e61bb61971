#!/usr/bin/env bash
# Metrics (README.md, "Metrics"): tderekey metrics prints the Prometheus text format, parsed here
# by prometheus_client's own parser (every family parses, with the documented type and HELP);
# the byte counters move by at least what was written and read through the mount, the open
# files gauge follows a file held open, a data rekey's progress shows while it runs, a wallet
# change counts a key reload, the keystore families carry the wallet kind as a label,
# -o metrics=FILE keeps a 0644 file current within its interval.
# Refused: uid 65534 asking for the metrics, and a metrics file in a directory others can write
# (a root daemon must not write through a path another user controls), a symlinked directory,
# a relative name and a bad interval, each with one line naming the option.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd python3
# The parser: prometheus_client, from Debian's package, which is for the system's python3 (a
# python3 earlier on PATH may not see it).
py=
find_parser() {
	local p
	for p in python3 /usr/bin/python3; do
		have "$p" && "$p" -c 'import prometheus_client' 2>/dev/null && { py=$p; return 0; }
	done
	return 1
}
if ! find_parser; then
	log "installing python3-prometheus-client (the parser)"
	tdefs__apt_install python3-prometheus-client ||
		{ apt-get update -q -o DPkg::Lock::Timeout=300 </dev/null >>"$TDEFS_WORK/apt.log" 2>&1 || true
		  tdefs__apt_install python3-prometheus-client; } ||
		fail "cannot install python3-prometheus-client"
	find_parser || fail "python3-prometheus-client installed, but no python3 imports prometheus_client"
fi
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$tderekey"
tdefs_setup

# check [EXPR]: parse the text on stdin; every family must parse, have HELP and the type its
# name says, and the families below must all be there. Then EXPR (python) must hold, with
# v(name, label=value...) the value of one sample (the sum when labels match several).
check() {
	"$py" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
expect = {
    "tdefs_read_bytes": "counter", "tdefs_written_bytes": "counter",
    "tdefs_io_errors": "counter", "tdefs_file_key_errors": "counter",
    "tdefs_open_files": "gauge", "tdefs_deks_loaded": "gauge",
    "tdefs_keystore_keys": "gauge", "tdefs_keystore_active_key_info": "gauge",
    "tdefs_keystore_reloads": "counter", "tdefs_job_state": "gauge",
    "tdefs_job_files": "gauge", "tdefs_job_rekeyed_bytes": "gauge",
    "tdefs_job_current_file_done_bytes": "gauge", "tdefs_job_current_file_size_bytes": "gauge",
    "tdefs_job_started_timestamp_seconds": "gauge",
    "tdefs_job_finished_timestamp_seconds": "gauge", "tdefs_control_refused": "counter",
}
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:
    sys.exit("does not parse: %s\n%s" % (e, text[:400]))
samples = []
seen = {}
for f in families:
    if not f.name.startswith("tdefs_"):
        sys.exit("family %s is not tdefs_*" % f.name)
    if not f.documentation:
        sys.exit("family %s has no HELP" % f.name)
    seen[f.name] = f.type
    for s in f.samples:
        if f.type == "counter" and not s.name.endswith("_total"):
            sys.exit("counter sample %s does not end in _total" % s.name)
        if s.value < 0:
            sys.exit("negative sample %s %r" % (s.name, s.value))
        samples.append(s)
for name, kind in expect.items():
    if seen.get(name) != kind:
        sys.exit("family %s: type %r, want %r" % (name, seen.get(name), kind))
def v(name, **labels):
    hits = [s.value for s in samples if s.name == name and
            all(s.labels.get(k) == w for k, w in labels.items())]
    if not hits:
        sys.exit("no sample %s %r" % (name, labels))
    return sum(hits)
def label(name, key):
    return [s.labels[key] for s in samples if s.name == name][0]
expr = sys.argv[1]
if not eval(expr):
    sys.exit("does not hold: %s\nnon-zero samples:\n%s" % (expr, "\n".join(
        "%s%r %s" % (s.name, s.labels, s.value) for s in samples if s.value)))
' "${1:-True}"
}

# value EXPR: print a python expression over the current metrics.
value() {
	"$tderekey" metrics "$TDEFS_MNT" | "$py" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
samples = [s for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]
def v(name, **labels):
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == w for k, w in labels.items()))
def label(name, key):
    return [s.labels[key] for s in samples if s.name == name][0]
print(eval(sys.argv[1]))' "$1"
}

metrics() { "$tderekey" metrics "$TDEFS_MNT" || fail "tderekey metrics $TDEFS_MNT failed"; }

# The wallet kind the keys came from is a label (tdefs_setup mounts an auto-login wallet).
metrics | check "v('tdefs_keystore_keys', wallet_kind='AUTOLOGIN') >= 1 and label('tdefs_keystore_active_key_info', 'wallet_kind') == 'AUTOLOGIN'" ||
	fail "the keystore metrics do not name the wallet kind AUTOLOGIN"
metrics | check "v('tdefs_keystore_keys') >= 1 and v('tdefs_open_files') == 0" ||
	fail "the metrics of a fresh mount: see above"
"$tderekey" metrics --help | grep -q 'Usage: tderekey metrics MOUNTPOINT' || fail "tderekey metrics --help"

# Bytes: N written (synced: the page cache gives writes to the daemon at writeback) and N read
# back after the cache is dropped.
n=$((3 * 1024 * 1024 + 12345))
read0=$(value "int(v('tdefs_read_bytes_total'))")
written0=$(value "int(v('tdefs_written_bytes_total'))")
head -c "$n" /dev/urandom >"$TDEFS_WORK/data"
dd if="$TDEFS_WORK/data" of="$TDEFS_MNT/data" bs=1M conv=fsync status=none || fail "writing $TDEFS_MNT/data"
drop_caches
cmp -s "$TDEFS_WORK/data" "$TDEFS_MNT/data" || fail "$TDEFS_MNT/data does not read back"
metrics | check "v('tdefs_written_bytes_total') - $written0 >= $n and v('tdefs_read_bytes_total') - $read0 >= $n" ||
	fail "the byte counters did not move by $n"

# Open files and loaded DEKs follow a file held open.
exec 7<"$TDEFS_MNT/data"
metrics | check "v('tdefs_open_files') >= 1 and v('tdefs_deks_loaded') >= 1" || fail "a file held open is not counted"
exec 7<&-
closed=
for ((i = 0; i < 50; i++)); do
	[[ $(value "int(v('tdefs_open_files'))") == 0 ]] && { closed=1; break; }
	sleep 0.1
done
[[ -n $closed ]] || fail "tdefs_open_files did not go back to 0 after the close"
[[ $(value "int(v('tdefs_deks_loaded'))") == 0 ]] || fail "a DEK stays loaded after the last close"

# A data rekey's progress, while it runs (48 MiB at 1 MiB/s: stopped half-way).
head -c $((48 << 20)) /dev/urandom >"$TDEFS_MNT/big"
sync
"$tderekey" data "$TDEFS_MNT/big" --rate 1M --no-wait >/dev/null || fail "tderekey data --no-wait failed"
on_exit "'$tderekey' stop '$TDEFS_MNT' >/dev/null 2>&1 || true"
seen=
for ((i = 0; i < 100; i++)); do
	"$tderekey" metrics "$TDEFS_MNT" >"$TDEFS_WORK/rekey.prom" || fail "tderekey metrics during a rekey failed"
	if check "v('tdefs_job_state', job='data', state='running') == 1 and v('tdefs_job_files', job='data', outcome='visited') == 0 and 0 < v('tdefs_job_current_file_done_bytes', job='data') < v('tdefs_job_current_file_size_bytes', job='data') == 48 << 20 and v('tdefs_job_started_timestamp_seconds', job='data') > 0" \
		<"$TDEFS_WORK/rekey.prom" 2>"$TDEFS_WORK/rekey.err"; then
		seen=1
		break
	fi
	sleep 0.2
done
[[ -n $seen ]] || { cat "$TDEFS_WORK/rekey.err" >&2; fail "the metrics never showed the data rekey in progress"; }
check "v('tdefs_job_state', job='data') == 1 and v('tdefs_job_state', job='rewrap', state='idle') == 1" \
	<"$TDEFS_WORK/rekey.prom" || fail "job states: exactly one state per job"
"$tderekey" stop "$TDEFS_MNT" >/dev/null || fail "tderekey stop failed"

# A key change: the watcher re-reads the wallet, the counter and the key count move.
reloads0=$(value "int(v('tdefs_keystore_reloads_total', result='ok'))")
keys0=$(value "int(v('tdefs_keystore_keys'))")
active0=$(value "label('tdefs_keystore_active_key_info', 'key_id')")
"$TDEKEY_BIN" set-key --wallet "$TDEFS_WALLET" --tag metrics >/dev/null || fail "tdekey set-key failed"
seen=
for ((i = 0; i < 50; i++)); do
	if metrics | check "v('tdefs_keystore_reloads_total', result='ok') > $reloads0 and v('tdefs_keystore_keys') == $keys0 + 1 and label('tdefs_keystore_active_key_info', 'key_id') != '$active0'" 2>/dev/null; then
		seen=1
		break
	fi
	sleep 0.2
done
[[ -n $seen ]] || { metrics | check "v('tdefs_keystore_reloads_total', result='ok') > $reloads0 and v('tdefs_keystore_keys') == $keys0 + 1" || true
	fail "no key reload counted after tdekey set-key"; }

# The unprivileged user gets no metrics (exit 19, refused by the daemon).
refused0=$(value "int(v('tdefs_control_refused_total'))")
rc=0
as_nobody "$tderekey" metrics "$TDEFS_MNT" >"$TDEFS_WORK/nobody.out" 2>"$TDEFS_WORK/nobody.err" || rc=$?
[[ $rc == 19 ]] || fail "tderekey metrics as uid 65534 exited $rc, want 19 (refused by the daemon)"
[[ ! -s $TDEFS_WORK/nobody.out ]] || fail "uid 65534 got metrics output"
grep -q "permission denied" "$TDEFS_WORK/nobody.err" || fail "uid 65534: no 'permission denied' in: $(cat "$TDEFS_WORK/nobody.err")"
# (uid 65534 cannot even reach the 0600 socket; a request the daemon refuses is counted.)
"$tderekey" pause "$TDEFS_MNT" >/dev/null 2>&1 && fail "tderekey pause without a data rekey succeeded"
metrics | check "v('tdefs_control_refused_total') > $refused0" || fail "a refused request was not counted"

# -o metrics=FILE, rewritten every second, atomically (no temporary file left), mode 0644.
mdir=$TDEFS_WORK/textfile
mkdir -p "$mdir"
chmod 0755 "$mdir"
prom=$mdir/tdefs.prom
tdefs_remount -o metrics="$prom",metrics_interval=1
for ((i = 0; i < 30; i++)); do
	[[ -s $prom ]] && break
	sleep 0.1
done
[[ -s $prom ]] || fail "-o metrics=$prom: no file 3 s after the mount"
[[ $(stat -c %a "$prom") == 644 ]] || fail "$prom has mode $(stat -c %a "$prom"), want 644"
check <"$prom" || fail "$prom does not parse"
grep -q "$TDEFS_BACKING" "$prom" && fail "$prom (world-readable) names the backing directory"
written1=$(check "print(int(v('tdefs_written_bytes_total'))) or True" <"$prom" | head -n1)
head -c 100000 /dev/urandom | dd of="$TDEFS_MNT/more" conv=fsync status=none || fail "writing more"
updated=
for ((i = 0; i < 30; i++)); do
	if check "v('tdefs_written_bytes_total') >= $written1 + 100000" <"$prom" 2>/dev/null; then
		updated=1
		break
	fi
	sleep 0.1
done
[[ -n $updated ]] || fail "$prom not updated within 3 s with metrics_interval=1"
tdefs_umount "$TDEFS_MNT"
[[ ! -e $prom ]] || fail "$prom is still there after the unmount (stale counters)"
[[ -z $(ls -A "$mdir") ]] || fail "files left in $mdir: $(ls -A "$mdir")"

# Refused at mount, with one line naming the option: nothing mounted, nothing written.
refuse() {
	local what=$1 want=$2 rc=0
	shift 2
	timeout 30 "$TDEFS_BIN" --wallet "$TDEFS_WALLET" -f "$@" "$TDEFS_BACKING" "$TDEFS_MNT" \
		</dev/null >"$TDEFS_WORK/refuse.out" 2>&1 || rc=$?
	if mountpoint -q "$TDEFS_MNT"; then
		fusermount3 -u "$TDEFS_MNT" || true
		fail "$what: mounted anyway"
	fi
	[[ $rc != 0 && $rc != 124 ]] || fail "$what: exit status $rc, want a refusal"
	[[ $(wc -l <"$TDEFS_WORK/refuse.out") == 1 ]] || fail "$what: not one line: $(cat "$TDEFS_WORK/refuse.out")"
	grep -q -- "$want" "$TDEFS_WORK/refuse.out" || fail "$what: '$want' not in: $(cat "$TDEFS_WORK/refuse.out")"
	log "refused $what: $(cat "$TDEFS_WORK/refuse.out")"
}
open_dir=$TDEFS_WORK/world
mkdir -p "$open_dir"
chmod 1777 "$open_dir"
refuse "a metrics file in a world-writable directory" "metrics=$open_dir/tdefs.prom.*other users" \
	-o metrics="$open_dir/tdefs.prom"
[[ ! -e $open_dir/tdefs.prom ]] || fail "a metrics file was written in $open_dir"
chmod 0775 "$open_dir"
chown 0:65534 "$open_dir"
refuse "a metrics file in a group-writable directory" "can be changed by" -o metrics="$open_dir/tdefs.prom"
ln -s "$mdir" "$TDEFS_WORK/link"
refuse "a metrics file in a symlinked directory" "symlink" -o metrics="$TDEFS_WORK/link/tdefs.prom"
refuse "a relative metrics file" "metrics=tdefs.prom: give an absolute file name" -o metrics=tdefs.prom
refuse "a bad metrics interval" "metrics_interval=0" -o metrics="$prom",metrics_interval=0
refuse "a metrics directory that is missing" "$TDEFS_WORK/missing" -o metrics="$TDEFS_WORK/missing/tdefs.prom"
pass
