#!/bin/bash
# --json output carries names other users chose; it must stay one valid JSON document.
#  - uid 65534 makes a file on the mount whose name holds a quote, a backslash, a fake JSON
#    member and a byte that is not UTF-8; root runs a data rekey and `tderekey status --json`
#    while the job is on that file: the output is valid UTF-8 JSON and data_current is the name
#    (before, the name was printed as it is: broken JSON, or members of the attacker's choosing)
#  - a backing directory whose name holds a quote, a backslash, a newline and a byte that is
#    not UTF-8: `tdekey keys --usage DIR --json` and `tderekey status --json` give it back
#    exactly, reading \u00XX as the byte XX (the escaping docs/SECURITY.md describes)
# The control channel carries one value a line, so the file name of the first part has no
# newline; the backing directory's name (in the second) reaches tdekey without that channel.
. "$(dirname "$0")/../mounted/lib.sh"

need_cmd /usr/bin/python3 python3-minimal
is_plain && skip "needs the daemon and its control channel"
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEREKEY_BIN" "$TDEKEY_BIN"

# Exit 0 if FILE holds one JSON document in valid UTF-8 whose value at the python expression
# PATH (e.g. ["data_current"]) is the bytes EXPECTED (\u00XX read back as the byte XX); with
# a fourth argument "suffix", ends with them.
json_value_is() { # FILE PATH EXPECTED [suffix]
	/usr/bin/python3 - "$@" <<'EOF'
import json, os, sys
raw = open(sys.argv[1], "rb").read()
document = json.loads(raw.decode("utf-8"))  # strict: invalid UTF-8 or JSON raises
value = eval("document" + sys.argv[2])
got, expected = value.encode("latin-1"), os.fsencode(sys.argv[3])
suffix = len(sys.argv) > 4 and sys.argv[4] == "suffix"
sys.exit(0 if got == expected or (suffix and got.endswith(b"/" + expected)) else 1)
EOF
}

tdefs_setup
root_mode=$(stat -c %a "$TDEFS_MNT")
chmod 0755 "$TDEFS_MNT"
mkdir "$TDEFS_MNT/tmp"
chmod 1777 "$TDEFS_MNT/tmp"

log "uid 65534 names a file with a quote, a backslash, a fake member and a non-UTF-8 byte"
name=$'evil", "data_state": "done\\ \xff.dat'
as_nobody dd if=/dev/urandom of="$TDEFS_MNT/tmp/$name" bs=1M count=8 status=none
"$TDEREKEY_BIN" data "$TDEFS_MNT" --rate 256K --no-wait >"$TDEFS_WORK/data.out" 2>&1 ||
	{ cat "$TDEFS_WORK/data.out" >&2; fail "tderekey data --no-wait failed"; }
on_exit "'$TDEREKEY_BIN' stop '$TDEFS_MNT' >/dev/null 2>&1 || true"
seen=0
for ((i = 0; i < 200; i++)); do
	"$TDEREKEY_BIN" status "$TDEFS_MNT" --json >"$TDEFS_WORK/status.json" 2>"$TDEFS_WORK/status.err" ||
		{ cat "$TDEFS_WORK/status.err" >&2; fail "tderekey status --json failed"; }
	if grep -F 'evil' "$TDEFS_WORK/status.json" >/dev/null; then
		seen=1
		break
	fi
	sleep 0.05
done
((seen)) || fail "the data rekey never showed the file in progress: $(cat "$TDEFS_WORK/status.json")"
json_value_is "$TDEFS_WORK/status.json" '["data_current"]' "tmp/$name" suffix ||
	fail "tderekey status --json is not valid JSON naming the file: $(cat -v "$TDEFS_WORK/status.json")"
json_value_is "$TDEFS_WORK/status.json" '["data_state"]' running ||
	fail "the file name changed data_state: $(cat -v "$TDEFS_WORK/status.json")"
"$TDEREKEY_BIN" stop "$TDEFS_MNT" >/dev/null 2>&1 || true
chmod "$root_mode" "$TDEFS_MNT"
tdefs_umount "$TDEFS_MNT"

log "a backing directory named with a quote, a backslash, a newline and a non-UTF-8 byte"
odd=$TDEFS_WORK/$'odd "dir" \\ new\nline \xfe'
tdefs_init_backing "$TDEFS_WALLET" "$odd"
"$TDEKEY_BIN" keys --wallet "$TDEFS_WALLET" --usage "$odd" --json >"$TDEFS_WORK/keys.json" ||
	fail "tdekey keys --usage --json failed"
json_value_is "$TDEFS_WORK/keys.json" '["backing"][0]["path"]' "$odd" ||
	fail "tdekey keys --usage --json does not give the directory back: $(cat -v "$TDEFS_WORK/keys.json")"
# The control channel is line-based: give tderekey a directory name without the newline.
odd_mounted=$TDEFS_WORK/$'odd "mounted" \\ \xfe'
tdefs_init_backing "$TDEFS_WALLET" "$odd_mounted"
tdefs_mount "$TDEFS_WALLET" "$odd_mounted" "$TDEFS_WORK/mnt2"
"$TDEREKEY_BIN" status "$TDEFS_WORK/mnt2" --json >"$TDEFS_WORK/status2.json" ||
	fail "tderekey status --json failed on a backing directory with an odd name"
json_value_is "$TDEFS_WORK/status2.json" '["backing"]' "$odd_mounted" ||
	fail "tderekey status --json does not give the backing directory back: $(cat -v "$TDEFS_WORK/status2.json")"
tdefs_umount "$TDEFS_WORK/mnt2"
pass "file and directory names escaped in tderekey status and tdekey keys --json"
