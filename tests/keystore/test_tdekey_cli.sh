#!/bin/bash
# Command-line test of tdekey: what a DBA types and what a script parses. Exit codes per kind
# of failure, the exact one-line messages, --help pages, JSON output, key ID prefixes, password
# descriptors, the external store, and a local auto-login wallet seen from another host (with
# the test build of tdekey, which takes the host identity from $TDEFS_TEST_HOST_IDENTITY).
#
# Usage: test_tdekey_cli.sh TDEKEY TDEKEY_FOR_TESTS
set -u
TDEKEY=$1
TDEKEY_TEST=$2
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tdefs-cli-test-XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
FAILURES=0
CHECKS=0
COST=(--scrypt-cost 10,1,1)

fail() {
	echo "FAIL: $*" >&2
	FAILURES=$((FAILURES + 1))
}

# run EXPECTED_EXIT COMMAND...: runs detached from any terminal (setsid, stdin /dev/null) so a
# missing password source can never turn into a prompt; output in $OUT and $ERR.
run() {
	local expected=$1 status
	shift
	CHECKS=$((CHECKS + 1))
	setsid -w "$@" </dev/null >"$SCRATCH/out" 2>"$SCRATCH/err"
	status=$?
	OUT=$(cat "$SCRATCH/out")
	ERR=$(cat "$SCRATCH/err")
	if [ "$status" -ne "$expected" ]; then
		fail "exit $status, expected $expected: $*"
		echo "  stdout: $OUT" >&2
		echo "  stderr: $ERR" >&2
	fi
}

contains() { # contains WHERE TEXT
	CHECKS=$((CHECKS + 1))
	case "$1" in
	*"$2"*) ;;
	*) fail "expected '$2' in: $1" ;;
	esac
}

json() { # json PYTHON_EXPRESSION: evaluated with j = parsed $OUT; must be true
	CHECKS=$((CHECKS + 1))
	python3 -c 'import json, sys
j = json.loads(sys.stdin.read())
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" <<<"$OUT" || fail "JSON check failed: $1 on $OUT"
}

umask 077
printf 'first password\n' >"$SCRATCH/pw"
printf 'wrong password\n' >"$SCRATCH/bad"
printf 'second password\n' >"$SCRATCH/pw2"
printf 'first password\nsecond password\n' >"$SCRATCH/both"

# --- help and usage ------------------------------------------------------------------------
run 0 "$TDEKEY" --help
contains "$OUT" "create-autologin"
run 0 "$TDEKEY" --version
for command in create create-autologin status keys set-key create-key use-key set-tag \
	change-password backup add-secret delete-secret; do
	run 0 "$TDEKEY" "$command" --help
	for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES FILES; do
		contains "$OUT" "$section"
	done
	run 0 "$TDEKEY" help "$command"
done
run 2 "$TDEKEY"
run 2 "$TDEKEY" frobnicate --wallet "$SCRATCH/w"
run 2 "$TDEKEY" keys
contains "$ERR" "--wallet DIR is required"
run 2 "$TDEKEY" keys --wallet "$SCRATCH/w" --tag x
run 2 "$TDEKEY" keys --wallet "$SCRATCH/w" --password-file a --password-fd 3
run 2 "$TDEKEY" keys --wallet "$SCRATCH/w" --password-fd x
run 2 "$TDEKEY" use-key --wallet "$SCRATCH/w"
run 2 "$TDEKEY" create --wallet "$SCRATCH/w" --scrypt-cost 30

# --- no wallet -----------------------------------------------------------------------------
run 3 "$TDEKEY" keys --wallet "$SCRATCH/none"
contains "$ERR" "no wallet in $SCRATCH/none"
mkdir "$SCRATCH/empty"
run 0 "$TDEKEY" status --wallet "$SCRATCH/empty"
contains "$OUT" "NOT_AVAILABLE"
contains "$OUT" "UNKNOWN"
run 0 "$TDEKEY" status --wallet "$SCRATCH/empty" --json
json 'j["status"] == "NOT_AVAILABLE" and j["wallets"] == [] and j["external_store"] is None'

# --- auto-login only, one command, no prompt -----------------------------------------------
A="$SCRATCH/auto"
run 0 "$TDEKEY" create --wallet "$A" --auto-login --tag first --json
json 'j["active_key_id"] and j["created"][0]["type"] == "AUTOLOGIN" and len(j["created"]) == 1'
[ -e "$A/password.wallet" ] && fail "auto-login only wallet has a password wallet"
[ "$(stat -c %a "$A/autologin.wallet")" = 600 ] || fail "autologin.wallet is not 0600"
[ "$(stat -c %a "$A")" = 700 ] || fail "wallet directory is not 0700"
run 11 "$TDEKEY" create --wallet "$A" --auto-login
run 0 "$TDEKEY" keys --wallet "$A" --json
json 'len(j["keys"]) == 1 and j["keys"][0]["state"] == "ACTIVE" and j["keys"][0]["tag"] == "first"'
json 'j["type"] == "AUTOLOGIN" and j["container"] == "default" and len(j["wallet_id"]) == 32'
run 0 "$TDEKEY" set-key --wallet "$A" --tag second
contains "$OUT" "RETIRED"
run 0 "$TDEKEY" status --wallet "$A" --json
json 'j["status"] == "OPEN" and j["wallets"][0]["fully_backed_up"] == "NO"'
run 0 "$TDEKEY" backup --wallet "$A" --id weekly
contains "$OUT" "-weekly.wallet"
contains "$OUT" "opens without one"
run 0 "$TDEKEY" status --wallet "$A"
contains "$OUT" "YES"

# No master key: OPEN_NO_MASTER_KEY, exit 9 from status; set-key fixes it.
N="$SCRATCH/nokey"
run 0 "$TDEKEY" create --wallet "$N" --auto-login --no-key
contains "$OUT" "OPEN_NO_MASTER_KEY"
run 9 "$TDEKEY" status --wallet "$N"
contains "$OUT" "OPEN_NO_MASTER_KEY"
run 0 "$TDEKEY" set-key --wallet "$N"
run 0 "$TDEKEY" status --wallet "$N"

# Permissions: refused with the chmod that fixes it.
chmod 644 "$A/autologin.wallet"
run 7 "$TDEKEY" keys --wallet "$A"
contains "$ERR" "fix with: chmod 600 $A/autologin.wallet"
chmod 600 "$A/autologin.wallet"

# --- password wallet with its auto-login copy ----------------------------------------------
P="$SCRATCH/pass"
run 0 "$TDEKEY" create --wallet "$P" --auto-login --password-file "$SCRATCH/pw" "${COST[@]}"
contains "$OUT" "PASSWORD wallet $P/password.wallet"
contains "$OUT" "AUTOLOGIN wallet $P/autologin.wallet"
run 4 "$TDEKEY" set-key --wallet "$P" --password-file "$SCRATCH/bad"
[ "$ERR" = "tdekey: wrong password for wallet $P/password.wallet" ] ||
	fail "wrong password message: $ERR"
run 4 "$TDEKEY" set-key --wallet "$P"
contains "$ERR" "no terminal"
run 0 "$TDEKEY" set-key --wallet "$P" --password-fd 3 --backup-id pre-q1 3<"$SCRATCH/pw"
contains "$OUT" "-pre-q1.wallet"
contains "$OUT" "auto-login copy $P/autologin.wallet refreshed"
run 0 "$TDEKEY" create-key --wallet "$P" --password-file "$SCRATCH/pw" --tag later --json
json 'j["state"] == "PREACTIVE"'
NEW_KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])' <<<"$OUT")
run 0 "$TDEKEY" use-key --wallet "$P" --password-file "$SCRATCH/pw" "${NEW_KEY:0:10}"
contains "$OUT" "$NEW_KEY is now ACTIVE"
run 0 "$TDEKEY" use-key --wallet "$P" --password-file "$SCRATCH/pw" "${NEW_KEY^^}"
contains "$OUT" "already the active key"
run 0 "$TDEKEY" set-tag --wallet "$P" --password-file "$SCRATCH/pw" "${NEW_KEY:0:12}" "q2 key"
run 0 "$TDEKEY" keys --wallet "$P" --json
json '[k["tag"] for k in j["keys"] if k["state"] == "ACTIVE"] == ["q2 key"] and len(j["keys"]) == 3'
json '[k["state"] for k in j["keys"]] == ["RETIRED", "RETIRED", "ACTIVE"]'
run 0 "$TDEKEY" keys --wallet "$P"
contains "$OUT" "KEY_ID"
contains "$OUT" "ACTIVATION_TIME"
contains "$OUT" "BACKED_UP"
run 0 "$TDEKEY" status --wallet "$P"
contains "$OUT" "CLOSED"
run 0 "$TDEKEY" status --wallet "$P" --password-file "$SCRATCH/pw" --json
json 'all(w["status"] == "OPEN" for w in j["wallets"]) and j["mount_opens"].endswith("autologin.wallet")'

# Prefixes: with 17 or more keys two share a first digit (pigeonhole), so one is ambiguous.
for i in $(seq 1 15); do
	run 0 "$TDEKEY" create-key --wallet "$P" --password-file "$SCRATCH/pw"
done
run 0 "$TDEKEY" keys --wallet "$P" --json
DIGIT=$(python3 -c 'import json, sys, collections
keys = json.load(sys.stdin)["keys"]
print(collections.Counter(k["key_id"][0] for k in keys).most_common(1)[0][0])' <<<"$OUT")
run 10 "$TDEKEY" use-key --wallet "$P" --password-file "$SCRATCH/pw" "$DIGIT"
contains "$ERR" "ambiguous"
run 10 "$TDEKEY" use-key --wallet "$P" --password-file "$SCRATCH/pw" 0123456789abcdef0123456789abcdef
run 2 "$TDEKEY" set-tag --wallet "$P" --password-file "$SCRATCH/pw" zz x
run 2 "$TDEKEY" set-tag --wallet "$P" --password-file "$SCRATCH/pw" "$DIGIT" "$(printf 'a\tb')"

# Change password with both passwords on one descriptor, then the external store.
run 0 "$TDEKEY" change-password --wallet "$P" --password-fd 3 --new-password-fd 3 3<"$SCRATCH/both"
run 4 "$TDEKEY" keys --wallet "$P" --password-file "$SCRATCH/pw"
run 0 "$TDEKEY" keys --wallet "$P" --password-file "$SCRATCH/pw2"
run 4 "$TDEKEY" add-secret --wallet "$P" --password-file "$SCRATCH/pw"
[ -e "$P/external-store.wallet" ] && fail "a wrong password was stored"
run 0 "$TDEKEY" add-secret --wallet "$P" --password-file "$SCRATCH/pw2"
run 0 "$TDEKEY" set-key --wallet "$P" --external-store --json
json 'j["previous_key_id"] is not None and j["refreshed_copies"][0].endswith("autologin.wallet")'
run 0 "$TDEKEY" backup --wallet "$P" --external-store --to "$SCRATCH/offsite" --id offsite
ls "$SCRATCH/offsite"/password-*-offsite.wallet >/dev/null 2>&1 || fail "no backup in --to DIR"
run 0 "$TDEKEY" create-autologin --wallet "$P" --local --external-store
[ -e "$P/autologin.wallet" ] && fail "create-autologin --local kept autologin.wallet"
run 0 "$TDEKEY" delete-secret --wallet "$P"
run 4 "$TDEKEY" set-key --wallet "$P" --external-store
run 3 "$TDEKEY" delete-secret --wallet "$P"

# --- damage, truncation, newer versions ----------------------------------------------------
D="$SCRATCH/damaged"
cp -a "$P" "$D"
printf '\x01' | dd of="$D/password.wallet" bs=1 seek=200 conv=notrunc status=none
run 5 "$TDEKEY" keys --wallet "$D" --password-file "$SCRATCH/pw2"
contains "$ERR" "wallet $D/password.wallet is damaged: checksum mismatch; newest backup: $D/backup/password-"
run 5 "$TDEKEY" keys --wallet "$D" --password-file "$SCRATCH/bad"
run 5 "$TDEKEY" status --wallet "$D"
contains "$OUT" "problem: wallet $D/password.wallet is damaged"
: >"$D/password.wallet"
run 5 "$TDEKEY" set-key --wallet "$D" --password-file "$SCRATCH/pw2"
contains "$ERR" "is damaged: the file is empty"
cp "$P/password.wallet" "$D/password.wallet"
python3 - "$D/password.wallet" <<'PY'
import hashlib, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[8:10] = (2).to_bytes(2, "little")
data[-32:] = hashlib.sha256(bytes(data[:-32])).digest()
open(path, "wb").write(data)
PY
run 6 "$TDEKEY" keys --wallet "$D" --password-file "$SCRATCH/pw2"
contains "$ERR" "written by a newer version of tdefs"

# --- local auto-login on another host (test build) -----------------------------------------
L="$SCRATCH/local"
export TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1"
run 0 "$TDEKEY_TEST" create --wallet "$L" --local
run 0 "$TDEKEY_TEST" keys --wallet "$L"
export TDEFS_TEST_HOST_IDENTITY="machine-id=2222 hostname=db2"
run 8 "$TDEKEY_TEST" keys --wallet "$L"
contains "$ERR" "local auto-login wallet $L/local-autologin.wallet was made on another host"
unset TDEFS_TEST_HOST_IDENTITY
# The installed tdekey ignores the variable: this host is neither of the two above. (The
# first line proves the variable does reach the program this way.)
TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1" run 0 "$TDEKEY_TEST" keys --wallet "$L"
TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1" run 8 "$TDEKEY" keys --wallet "$L"

echo "$CHECKS checks, $FAILURES failures"
[ "$FAILURES" -eq 0 ]
