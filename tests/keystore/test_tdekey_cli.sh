#!/bin/bash
# Command-line test of tdekey: what a DBA types and what a script parses. Exit codes per kind
# of failure, the exact one-line messages, --help pages, JSON output, key ID prefixes, password
# descriptors, the external store, and a local auto-login wallet seen from another host (with
# the test build of tdekey, which takes the host identity from $TDEFS_TEST_HOST_IDENTITY).
# keys --usage and delete-key run on backing directories that tdefs-test-helper makes: the
# real `tdefs --init`, then file headers under chosen keys (no mount).
#
# Usage: test_tdekey_cli.sh [TDEKEY [TDEKEY_FOR_TESTS [TDEFS_TEST_HELPER]]]
# (default: those of $TDEFS_BUILD). The shell library is tests/mounted/lib.sh; its work
# directory holds everything. Unlike the mounted tests, this one counts failed checks and goes
# on to the end, so that one failure does not hide the next: it runs without errexit, and
# without nullglob, so that a glob matching nothing stays as written (ls then fails on it).
. "$(dirname "$0")/../mounted/lib.sh"
set +e +o pipefail
shopt -u nullglob
TDEKEY=${1:-$TDEKEY_BIN}
TDEKEY_TEST=${2:-$TDEFS_BUILD/tests/keystore/tdekey-for-tests}
HELPER=${3:-$TDEFS_TEST_HELPER}
need_build "$TDEKEY" "$TDEKEY_TEST" "$HELPER" "$TDEFS_BIN"
# Only root comes in here: the strict-mode checks below chmod it and its parent on purpose.
chmod 0700 "$TDEFS_WORK"
# The test build keeps this host's secret for local auto-login wallets here, not in
# /var/lib/tdefs (the installed tdekey ignores the variable).
export TDEFS_TEST_HOST_SECRET_DIR="$TDEFS_WORK/host-secret"
FAILURES=0
CHECKS=0
COST=(--scrypt-cost 10,1,1)

check_failed() { # a failed check: counted, and the test goes on
	echo "check failed: $*" >&2
	FAILURES=$((FAILURES + 1))
}

# run EXPECTED_EXIT COMMAND...: runs detached from any terminal (setsid, stdin /dev/null) so a
# missing password source can never turn into a prompt; output in $OUT and $ERR.
run() {
	local expected=$1 status
	shift
	CHECKS=$((CHECKS + 1))
	setsid -w "$@" </dev/null >"$TDEFS_WORK/out" 2>"$TDEFS_WORK/err"
	status=$?
	OUT=$(cat "$TDEFS_WORK/out")
	ERR=$(cat "$TDEFS_WORK/err")
	if [ "$status" -ne "$expected" ]; then
		check_failed "exit $status, expected $expected: $*"
		echo "  stdout: $OUT" >&2
		echo "  stderr: $ERR" >&2
	fi
}

contains() { # contains WHERE TEXT
	CHECKS=$((CHECKS + 1))
	case "$1" in
	*"$2"*) ;;
	*) check_failed "expected '$2' in: $1" ;;
	esac
}

json() { # json PYTHON_EXPRESSION: evaluated with j = parsed $OUT; must be true
	CHECKS=$((CHECKS + 1))
	python3 -c 'import json, sys
j = json.loads(sys.stdin.read())
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" <<<"$OUT" || check_failed "JSON check failed: $1 on $OUT"
}

umask 077
printf 'first password\n' >"$TDEFS_WORK/pw"
printf 'wrong password\n' >"$TDEFS_WORK/bad"
printf 'second password\n' >"$TDEFS_WORK/pw2"
printf 'first password\nsecond password\n' >"$TDEFS_WORK/both"

# --- help and usage ------------------------------------------------------------------------
run 0 "$TDEKEY" --help
contains "$OUT" "create-autologin"
run 0 "$TDEKEY" --version
for command in create create-autologin status keys set-key create-key use-key set-tag \
	change-password backup add-secret delete-secret delete-key; do
	run 0 "$TDEKEY" "$command" --help
	for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES FILES; do
		contains "$OUT" "$section"
	done
	run 0 "$TDEKEY" help "$command"
done
run 2 "$TDEKEY"
run 2 "$TDEKEY" frobnicate --wallet "$TDEFS_WORK/w"
run 2 "$TDEKEY" keys
contains "$ERR" "--wallet DIR is required"
run 2 "$TDEKEY" keys --wallet "$TDEFS_WORK/w" --tag x
run 2 "$TDEKEY" keys --wallet "$TDEFS_WORK/w" --password-file a --password-fd 3
run 2 "$TDEKEY" keys --wallet "$TDEFS_WORK/w" --password-fd x
run 2 "$TDEKEY" use-key --wallet "$TDEFS_WORK/w"
run 2 "$TDEKEY" create --wallet "$TDEFS_WORK/w" --scrypt-cost 30

# --- no wallet -----------------------------------------------------------------------------
run 3 "$TDEKEY" keys --wallet "$TDEFS_WORK/none"
contains "$ERR" "no wallet in $TDEFS_WORK/none"
mkdir "$TDEFS_WORK/empty"
run 3 "$TDEKEY" status --wallet "$TDEFS_WORK/empty"
contains "$OUT" "NOT_AVAILABLE"
contains "$OUT" "UNKNOWN"
run 3 "$TDEKEY" status --wallet "$TDEFS_WORK/empty" --json
json 'j["status"] == "NOT_AVAILABLE" and j["wallets"] == [] and j["external_store"] is None'

# --- auto-login only, one command, no prompt -----------------------------------------------
A="$TDEFS_WORK/auto"
run 0 "$TDEKEY" create --wallet "$A" --auto-login --tag first --json
json 'j["active_key_id"] and j["created"][0]["type"] == "AUTOLOGIN" and len(j["created"]) == 1'
[ -e "$A/password.wallet" ] && check_failed "auto-login only wallet has a password wallet"
[ "$(stat -c %a "$A/autologin.wallet")" = 600 ] || check_failed "autologin.wallet is not 0600"
[ "$(stat -c %a "$A")" = 700 ] || check_failed "wallet directory is not 0700"
run 11 "$TDEKEY" create --wallet "$A" --auto-login
run 0 "$TDEKEY" keys --wallet "$A" --json
json 'len(j["keys"]) == 1 and j["keys"][0]["state"] == "ACTIVE" and j["keys"][0]["tag"] == "first"'
json 'j["type"] == "AUTOLOGIN" and j["container"] == "default" and len(j["wallet_id"]) == 32'
run 0 "$TDEKEY" set-key --wallet "$A" --tag second
contains "$OUT" "RETIRED"
run 0 "$TDEKEY" status --wallet "$A" --json
json 'j["status"] == "OPEN" and j["wallets"][0]["fully_backed_up"] is False'
json 'all(w["wrl_type"] == "FILE" and w["wrl_parameter"] == w["location"] and w["wallet_type"] == w["type"] for w in j["wallets"]) and sorted(w["wallet_order"] for w in j["wallets"]) in (["SINGLE"], ["PRIMARY", "SECONDARY"], ["PRIMARY", "SECONDARY", "SECONDARY"])'
run 0 "$TDEKEY" backup --wallet "$A" --id weekly
contains "$OUT" "-weekly.wallet"
contains "$OUT" "opens without one"
run 0 "$TDEKEY" status --wallet "$A"
contains "$OUT" "YES"

# No master key: OPEN_NO_MASTER_KEY, exit 9 from status; set-key fixes it.
N="$TDEFS_WORK/nokey"
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

# Strict modes: the directory, its parents and its files belong to root and no one else may
# write them; every command refuses with the chmod or chown that fixes it.
KEY=$("$TDEKEY" keys --wallet "$A" --json | sed -n 's/.*"key_id": "\([0-9a-f]*\)".*/\1/p' | head -n 1)
[ -n "$KEY" ] || check_failed "no key ID from tdekey keys --json"
printf 'strict modes password\n' >"$TDEFS_WORK/sm-pw"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TDEFS_WORK/sm-secret"
chmod 600 "$TDEFS_WORK/sm-pw" "$TDEFS_WORK/sm-secret"
run 0 "$TDEKEY" export --wallet "$A" --all --to "$TDEFS_WORK/sm.export" --secret-file "$TDEFS_WORK/sm-secret"
mkdir -m 700 "$TDEFS_WORK/sm-backing"
chmod 770 "$A"
# Every command that opens the wallet, reading or changing it, refuses before anything else.
while read -r command arguments; do
	# shellcheck disable=SC2086 # the arguments are words on purpose
	run 7 "$TDEKEY" "$command" --wallet "$A" $arguments
	contains "$ERR" "wallet directory $A is writable by group: chmod g-w $A"
done <<EOF_COMMANDS
keys
status
set-key
create-key
create-autologin
use-key $KEY
set-tag $KEY strict
change-password
backup
add-secret --password-file $TDEFS_WORK/sm-pw
delete-secret
delete-key $KEY --backing $TDEFS_WORK/sm-backing
export --all --to $TDEFS_WORK/sm2.export --secret-file $TDEFS_WORK/sm-secret
import --from $TDEFS_WORK/sm.export --secret-file $TDEFS_WORK/sm-secret
isolate --container other --to $TDEFS_WORK/sm-isolated --backing $TDEFS_WORK/sm-backing
change-group --group root
unlink $KEY --backing $TDEFS_WORK/sm-backing
reverse-migrate --to $TDEFS_WORK/sm-reverse
EOF_COMMANDS
[ -e "$TDEFS_WORK/sm2.export" ] && check_failed "export wrote a key export file from a group-writable wallet directory"
chmod 700 "$A"
chmod 777 "$TDEFS_WORK"
run 7 "$TDEKEY" keys --wallet "$A"
contains "$ERR" "$TDEFS_WORK, a parent of wallet directory $A, is writable by group and others: chmod go-w $TDEFS_WORK"
chmod 1777 "$TDEFS_WORK" # root's and sticky, as /tmp: others cannot replace what they do not own
run 0 "$TDEKEY" keys --wallet "$A"
chmod 700 "$TDEFS_WORK"
chown 65534 "$A/autologin.wallet"
run 7 "$TDEKEY" keys --wallet "$A"
contains "$ERR" "wallet file $A/autologin.wallet is owned by uid 65534, not by root: chown root $A/autologin.wallet"
chown 0 "$A/autologin.wallet"
mv "$A/autologin.wallet" "$TDEFS_WORK/moved.wallet"
ln -s "$TDEFS_WORK/moved.wallet" "$A/autologin.wallet"
run 7 "$TDEKEY" keys --wallet "$A"
contains "$ERR" "$A/autologin.wallet is a symbolic link"
rm "$A/autologin.wallet"
mv "$TDEFS_WORK/moved.wallet" "$A/autologin.wallet"
mkdir -m 775 "$TDEFS_WORK/open"
run 7 "$TDEKEY" create --wallet "$TDEFS_WORK/open" --auto-login
contains "$ERR" "chmod g-w $TDEFS_WORK/open"
[ -e "$TDEFS_WORK/open/autologin.wallet" ] && check_failed "create wrote a wallet into a group-writable directory"

# --- password wallet with its auto-login copy ----------------------------------------------
P="$TDEFS_WORK/pass"
run 0 "$TDEKEY" create --wallet "$P" --auto-login --password-file "$TDEFS_WORK/pw" "${COST[@]}"
contains "$OUT" "PASSWORD wallet $P/password.wallet"
contains "$OUT" "AUTOLOGIN wallet $P/autologin.wallet"
run 4 "$TDEKEY" set-key --wallet "$P" --password-file "$TDEFS_WORK/bad"
[ "$ERR" = "tdekey: wrong password for wallet $P/password.wallet" ] ||
	check_failed "wrong password message: $ERR"
run 4 "$TDEKEY" set-key --wallet "$P"
contains "$ERR" "no terminal"
run 0 "$TDEKEY" set-key --wallet "$P" --password-fd 3 --backup-id pre-q1 3<"$TDEFS_WORK/pw"
contains "$OUT" "-pre-q1.wallet"
contains "$OUT" "auto-login copy $P/autologin.wallet refreshed"
run 0 "$TDEKEY" create-key --wallet "$P" --password-file "$TDEFS_WORK/pw" --tag later --json
json 'j["state"] == "PREACTIVE"'
NEW_KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])' <<<"$OUT")
run 0 "$TDEKEY" use-key --wallet "$P" --password-file "$TDEFS_WORK/pw" "${NEW_KEY:0:10}"
contains "$OUT" "$NEW_KEY is now ACTIVE"
run 0 "$TDEKEY" use-key --wallet "$P" --password-file "$TDEFS_WORK/pw" "${NEW_KEY^^}"
contains "$OUT" "already the active key"
run 0 "$TDEKEY" set-tag --wallet "$P" --password-file "$TDEFS_WORK/pw" "${NEW_KEY:0:12}" "q2 key"
run 0 "$TDEKEY" keys --wallet "$P" --json
json '[k["tag"] for k in j["keys"] if k["state"] == "ACTIVE"] == ["q2 key"] and len(j["keys"]) == 3'
json '[k["state"] for k in j["keys"]] == ["RETIRED", "RETIRED", "ACTIVE"]'
run 0 "$TDEKEY" keys --wallet "$P"
contains "$OUT" "KEY_ID"
contains "$OUT" "ACTIVATION_TIME"
contains "$OUT" "BACKED_UP"
run 0 "$TDEKEY" status --wallet "$P"
contains "$OUT" "CLOSED"
run 0 "$TDEKEY" status --wallet "$P" --password-file "$TDEFS_WORK/pw" --json
json 'all(w["status"] == "OPEN" for w in j["wallets"]) and j["mount_opens"].endswith("autologin.wallet")'

# Prefixes: with 17 or more keys two share a first digit (pigeonhole), so one is ambiguous.
for i in $(seq 1 15); do
	run 0 "$TDEKEY" create-key --wallet "$P" --password-file "$TDEFS_WORK/pw"
done
run 0 "$TDEKEY" keys --wallet "$P" --json
DIGIT=$(python3 -c 'import json, sys, collections
keys = json.load(sys.stdin)["keys"]
print(collections.Counter(k["key_id"][0] for k in keys).most_common(1)[0][0])' <<<"$OUT")
run 10 "$TDEKEY" use-key --wallet "$P" --password-file "$TDEFS_WORK/pw" "$DIGIT"
contains "$ERR" "ambiguous"
run 10 "$TDEKEY" use-key --wallet "$P" --password-file "$TDEFS_WORK/pw" 0123456789abcdef0123456789abcdef
run 2 "$TDEKEY" set-tag --wallet "$P" --password-file "$TDEFS_WORK/pw" zz x
run 2 "$TDEKEY" set-tag --wallet "$P" --password-file "$TDEFS_WORK/pw" "$DIGIT" "$(printf 'a\tb')"

# Change password with both passwords on one descriptor, then the external store.
run 0 "$TDEKEY" change-password --wallet "$P" --password-fd 3 --new-password-fd 3 3<"$TDEFS_WORK/both"
run 4 "$TDEKEY" keys --wallet "$P" --password-file "$TDEFS_WORK/pw"
run 0 "$TDEKEY" keys --wallet "$P" --password-file "$TDEFS_WORK/pw2"
run 4 "$TDEKEY" add-secret --wallet "$P" --password-file "$TDEFS_WORK/pw"
[ -e "$P/external-store.wallet" ] && check_failed "a wrong password was stored"
run 0 "$TDEKEY" add-secret --wallet "$P" --password-file "$TDEFS_WORK/pw2"
run 0 "$TDEKEY" set-key --wallet "$P" --external-store --json
json 'j["previous_key_id"] is not None and j["refreshed_copies"][0].endswith("autologin.wallet")'
run 0 "$TDEKEY" backup --wallet "$P" --external-store --to "$TDEFS_WORK/offsite" --id offsite
ls "$TDEFS_WORK/offsite"/password-*-offsite.wallet >/dev/null 2>&1 || check_failed "no backup in --to DIR"
# (the test build, so that the host secret goes to $TDEFS_TEST_HOST_SECRET_DIR, not /var/lib)
run 0 "$TDEKEY_TEST" create-autologin --wallet "$P" --local --external-store
[ -e "$P/autologin.wallet" ] && check_failed "create-autologin --local kept autologin.wallet"
run 0 "$TDEKEY" delete-secret --wallet "$P"
run 4 "$TDEKEY" set-key --wallet "$P" --external-store
run 3 "$TDEKEY" delete-secret --wallet "$P"

# --- key usage and delete-key ---------------------------------------------------------------
# Wallet K: password wallet with an auto-login copy, keys K1 (retired), K2 (active), K3
# (preactive). B1 holds 3 headers under K1 at the top, 2 under K2 two levels down and a file
# without a header yet; B2 holds 1 under K1. B3 holds a header under a key of another wallet
# and a damaged one.
K="$TDEFS_WORK/keys"
key_ids() { # key_ids WALLET: the wallet's key IDs in creation order, one per line
	"$TDEKEY" keys --wallet "$1" --json | python3 -c 'import json, sys
print("\n".join(k["key_id"] for k in json.load(sys.stdin)["keys"]))'
}
backup_keys() { # backup_keys BACKUP_FILE KIND_FILE [PASSWORD OPTION...]: key IDs a backup holds
	local file=$1 kind=$2 dir
	shift 2
	dir=$(mktemp -d "$TDEFS_WORK/restore-XXXXXX")
	cp "$file" "$dir/$kind"
	"$TDEKEY" keys --wallet "$dir" "$@" --json | python3 -c 'import json, sys
print("\n".join(k["key_id"] for k in json.load(sys.stdin)["keys"]))'
	rm -rf "$dir"
}
run 0 "$TDEKEY" create --wallet "$K" --auto-login --password-file "$TDEFS_WORK/pw" "${COST[@]}" \
	--tag one
run 0 "$TDEKEY" set-key --wallet "$K" --password-file "$TDEFS_WORK/pw" --tag two
run 0 "$TDEKEY" create-key --wallet "$K" --password-file "$TDEFS_WORK/pw" --tag three
mapfile -t KEY_IDS < <(key_ids "$K")
K1=${KEY_IDS[0]} K2=${KEY_IDS[1]} K3=${KEY_IDS[2]}
B1="$TDEFS_WORK/backing1" B2="$TDEFS_WORK/backing2" B3="$TDEFS_WORK/backing3"
O="$TDEFS_WORK/other"
run 0 "$TDEKEY" create --wallet "$O" --auto-login
OTHER_KEY=$(key_ids "$O")
for b in "$B1" "$B2" "$B3"; do
	run 0 "$HELPER" init "$K" "$b"
done
mkdir -p "$B1/base/16384"
run 0 "$HELPER" files "$K" "${K1:0:8}" "$B1" 3
run 0 "$HELPER" files "$K" active "$B1/base/16384" 2
: >"$B1/new-file"
run 0 "$HELPER" files "$K" "$K1" "$B2" 1
run 0 "$HELPER" files "$O" active "$B3" 1
head -c 8192 /dev/urandom >"$B3/damaged"

run 0 "$TDEKEY" keys --wallet "$K" --usage "$B1" --usage "$B2" --json
json '[k["files"] for k in j["keys"]] == [4, 2, 0] and j["damaged"] == 0 and j["unknown_keys"] == []'
json '[(b["files"], b["empty"], b["damaged"]) for b in j["backing"]] == [(6, 1, 0), (1, 0, 0)]'
# The same directory twice (another spelling) is counted once.
run 0 "$TDEKEY" keys --wallet "$K" --usage "$B1" --usage "$B1/" --usage "$B2/../backing2" --json
json '[k["files"] for k in j["keys"]] == [4, 2, 0] and len(j["backing"]) == 2'
run 0 "$TDEKEY" keys --wallet "$K" --usage "$B1"
contains "$OUT" "FILES"
contains "$OUT" "backing $B1: 6 files, 1 without a header yet, 0 damaged, 0 in a data rekey"
python3 -c 'import sys
rows = {l.split()[0]: l.split()[-1] for l in sys.stdin.read().splitlines() if len(l.split()) > 8}
sys.exit(0 if rows.get(sys.argv[1]) == "3" and rows.get(sys.argv[2]) == "2" else 1)' \
	"$K1" "$K2" <<<"$OUT" || check_failed "FILES column: $OUT"
CHECKS=$((CHECKS + 1))
# Without --usage the listing has no FILES column and no files field.
run 0 "$TDEKEY" keys --wallet "$K"
case "$OUT" in *FILES*) check_failed "FILES column without --usage" ;; esac
run 0 "$TDEKEY" keys --wallet "$K" --json
json 'all("files" not in k for k in j["keys"]) and "unknown_keys" not in j'
# A key the wallet lacks, and a damaged header.
run 0 "$TDEKEY" keys --wallet "$K" --usage "$B3"
contains "$OUT" "warning: key $OTHER_KEY is not in this wallet, yet 1 file header references it: those files cannot be opened"
contains "$OUT" "warning: 1 file header is damaged and counts under no key"
run 0 "$TDEKEY" keys --wallet "$K" --usage "$B1" --usage "$B3" --json
json 'j["unknown_keys"] == [{"key_id": "'"$OTHER_KEY"'", "files": 1}] and j["damaged"] == 1'
json '[k["files"] for k in j["keys"]] == [3, 2, 0]'
# Directories that prove nothing: missing, not a backing directory, another wallet's.
run 14 "$TDEKEY" keys --wallet "$K" --usage "$TDEFS_WORK/missing"
contains "$ERR" "cannot scan backing directory $TDEFS_WORK/missing: No such file or directory"
run 14 "$TDEKEY" keys --wallet "$K" --usage "$TDEFS_WORK/empty"
contains "$ERR" "$TDEFS_WORK/empty is not a tdefs backing directory (no .tdefs.conf)"
run 0 "$HELPER" init "$O" "$TDEFS_WORK/backing-other"
run 14 "$TDEKEY" keys --wallet "$K" --usage "$TDEFS_WORK/backing-other"
contains "$ERR" "belongs to another wallet"
run 14 "$TDEKEY" keys --wallet "$K" --usage "$B1/new-file"
contains "$ERR" "not a directory"
# Options belong to their command.
run 2 "$TDEKEY" keys --wallet "$K" --backing "$B1"
run 2 "$TDEKEY" set-key --wallet "$K" --usage "$B1"
run 2 "$TDEKEY" keys --wallet "$K" --usage ""

# delete-key refusals: the wallet and its backups stay as they are.
BACKUPS_BEFORE=$(ls "$K/backup" | wc -l)
cp "$K/password.wallet" "$TDEFS_WORK/keys-before.wallet"
run 2 "$TDEKEY" delete-key --wallet "$K" --password-file "$TDEFS_WORK/pw" "$K1"
contains "$ERR" "with --backing BACKING: a key is deleted only after proving that no file header"
run 2 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --password-file "$TDEFS_WORK/pw"
run 2 "$TDEKEY" delete-key --wallet "$K" --usage "$B1" --password-file "$TDEFS_WORK/pw" "$K3"
run 2 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --password-file "$TDEFS_WORK/pw" xyz
run 10 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --password-file "$TDEFS_WORK/pw" \
	0123456789abcdef0123456789abcdef
run 4 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --password-file "$TDEFS_WORK/bad" "$K3"
run 4 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" "$K3"
contains "$ERR" "no terminal"
run 13 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --password-file "$TDEFS_WORK/pw" "$K2"
contains "$ERR" "key $K2 is the ACTIVE key"
run 13 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --backing "$B2" \
	--password-file "$TDEFS_WORK/pw" "${K1:0:6}"
[ "$ERR" = "tdekey: key $K1 is still used by 4 file headers under $B1 (3), $B2 (1); rewrap them under the active key with 'tderekey rewrap MOUNTPOINT' on the mount of each directory, then delete again" ] ||
	check_failed "key in use message: $ERR"
CHECKS=$((CHECKS + 1))
run 13 "$TDEKEY" delete-key --wallet "$K" --backing "$B2" --password-file "$TDEFS_WORK/pw" "$K1"
contains "$ERR" "still used by 1 file header under $B2 (1);"
run 14 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --backing "$B3" \
	--password-file "$TDEFS_WORK/pw" "$K3"
contains "$ERR" "cannot prove that key $K3 is unused: 1 file header cannot be read and might reference it, under $B3 (1)"
contains "$ERR" "tdefs --check --wallet $K BACKING"
run 14 "$TDEKEY" delete-key --wallet "$K" --backing "$TDEFS_WORK/empty" --password-file "$TDEFS_WORK/pw" "$K3"
contains "$ERR" "is not a tdefs backing directory"
run 14 "$TDEKEY" delete-key --wallet "$K" --backing "$TDEFS_WORK/backing-other" \
	--password-file "$TDEFS_WORK/pw" "$K3"
run 14 "$TDEKEY" delete-key --wallet "$K" --backing "$TDEFS_WORK/missing" --password-file "$TDEFS_WORK/pw" "$K3"
[ "$(ls "$K/backup" | wc -l)" = "$BACKUPS_BEFORE" ] || check_failed "a refused delete-key wrote a backup"
cmp -s "$K/password.wallet" "$TDEFS_WORK/keys-before.wallet" || check_failed "a refused delete-key changed the wallet"
CHECKS=$((CHECKS + 2))

# Success: K3 (no header anywhere), with the password, a backup ID and JSON.
run 0 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --backing "$B2" \
	--password-file "$TDEFS_WORK/pw" --backup-id before-delete --json "${K3:0:10}"
json 'j["key_id"] == "'"$K3"'" and j["state"] == "PREACTIVE" and j["tag"] == "three"'
json 'j["files_scanned"] == 7 and j["backup"].endswith("-before-delete.wallet") and j["type"] == "PASSWORD"'
json 'j["refreshed_copies"] == ["'"$K/autologin.wallet"'"]'
BACKUP=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["backup"])' <<<"$OUT")
[ "$(key_ids "$K" | tr '\n' ' ')" = "$K1 $K2 " ] || check_failed "K3 still listed by keys (auto-login copy)"
run 0 "$TDEKEY" keys --wallet "$K" --password-file "$TDEFS_WORK/pw" --json
json '[k["key_id"] for k in j["keys"]] == ["'"$K1"'", "'"$K2"'"]'
[ "$(backup_keys "$BACKUP" password.wallet --password-file "$TDEFS_WORK/pw" | tr '\n' ' ')" = "$K1 $K2 $K3 " ] ||
	check_failed "the backup does not hold the deleted key"
CHECKS=$((CHECKS + 2))
run 10 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --password-file "$TDEFS_WORK/pw" "$K3"

# After a "rewrap" (the files under K1 rewritten under the active key) K1 goes too, in text.
rm "$B1"/key-"${K1:0:8}"-* "$B2"/key-"${K1:0:8}"-*
run 0 "$HELPER" files "$K" active "$B2" 4
run 0 "$TDEKEY" keys --wallet "$K" --usage "$B1" --usage "$B2" --json
json '[k["files"] for k in j["keys"]] == [0, 6]'
run 0 "$TDEKEY" delete-key --wallet "$K" --backing "$B1" --backing "$B2" --password-fd 3 "$K1" 3<"$TDEFS_WORK/pw"
contains "$OUT" "master key $K1 (RETIRED, tag one) deleted: no file header under 2 backing directories references it (7 files scanned)"
contains "$OUT" "backup $K/backup/password-"
contains "$OUT" "auto-login copy $K/autologin.wallet refreshed"
run 0 "$TDEKEY" keys --wallet "$K" --usage "$B2" --json
json '[(k["key_id"], k["files"], k["state"]) for k in j["keys"]] == [("'"$K2"'", 4, "ACTIVE")]'
# Rotation still works after a deletion (the copy is level: no exit 12).
run 0 "$TDEKEY" set-key --wallet "$K" --password-file "$TDEFS_WORK/pw"
run 0 "$TDEKEY" status --wallet "$K" --password-file "$TDEFS_WORK/pw" --json
json 'all(w["status"] == "OPEN" and not w["out_of_step"] for w in j["wallets"])'

# An auto-login-only wallet: no password at all, the backup is of autologin.wallet.
AO="$TDEFS_WORK/auto-only"
run 0 "$TDEKEY" create --wallet "$AO" --auto-login
run 0 "$TDEKEY" set-key --wallet "$AO"
mapfile -t KEY_IDS < <(key_ids "$AO")
run 0 "$HELPER" init "$AO" "$TDEFS_WORK/backing-auto"
run 0 "$HELPER" files "$AO" active "$TDEFS_WORK/backing-auto" 2
run 13 "$TDEKEY" delete-key --wallet "$AO" --backing "$TDEFS_WORK/backing-auto" "${KEY_IDS[1]}"
run 0 "$TDEKEY" delete-key --wallet "$AO" --backing "$TDEFS_WORK/backing-auto" "${KEY_IDS[0]}"
contains "$OUT" "wallet $AO/autologin.wallet (AUTOLOGIN"
BACKUP=$(ls "$AO"/backup/autologin-*-g2.wallet)
[ "$(key_ids "$AO")" = "${KEY_IDS[1]}" ] || check_failed "auto-login only: key not deleted"
[ "$(backup_keys "$BACKUP" autologin.wallet | tr '\n' ' ')" = "${KEY_IDS[0]} ${KEY_IDS[1]} " ] ||
	check_failed "auto-login only: the backup does not hold the deleted key"
CHECKS=$((CHECKS + 2))

# --- damage, truncation, newer versions ----------------------------------------------------
D="$TDEFS_WORK/damaged"
cp -a "$P" "$D"
printf '\x01' | dd of="$D/password.wallet" bs=1 seek=200 conv=notrunc status=none
run 5 "$TDEKEY" keys --wallet "$D" --password-file "$TDEFS_WORK/pw2"
contains "$ERR" "wallet $D/password.wallet is damaged: checksum mismatch; newest backup: $D/backup/password-"
run 5 "$TDEKEY" keys --wallet "$D" --password-file "$TDEFS_WORK/bad"
run 5 "$TDEKEY" status --wallet "$D"
contains "$OUT" "problem: wallet $D/password.wallet is damaged"
: >"$D/password.wallet"
run 5 "$TDEKEY" set-key --wallet "$D" --password-file "$TDEFS_WORK/pw2"
contains "$ERR" "is damaged: the file is empty"
cp "$P/password.wallet" "$D/password.wallet"
python3 - "$D/password.wallet" <<'PY'
import hashlib, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[8:10] = (3).to_bytes(2, "little")  # one past WALLET_FORMAT_VERSION (2)
data[-32:] = hashlib.sha256(bytes(data[:-32])).digest()
open(path, "wb").write(data)
PY
run 6 "$TDEKEY" keys --wallet "$D" --password-file "$TDEFS_WORK/pw2"
contains "$ERR" "written by a newer version of tdefs"

# --- local auto-login on another host (test build) -----------------------------------------
L="$TDEFS_WORK/local"
export TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1"
run 0 "$TDEKEY_TEST" create --wallet "$L" --local
run 0 "$TDEKEY_TEST" keys --wallet "$L"
export TDEFS_TEST_HOST_IDENTITY="machine-id=2222 hostname=db2"
run 8 "$TDEKEY_TEST" keys --wallet "$L"
contains "$ERR" "local auto-login wallet $L/local-autologin.wallet was made on another host"
# Same machine ID and host name, but not this host's secret: another host all the same.
export TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1"
[ "$(stat -c %a "$TDEFS_TEST_HOST_SECRET_DIR")" = 700 ] || check_failed "host secret directory is not 0700"
[ "$(stat -c %a "$TDEFS_TEST_HOST_SECRET_DIR/host-secret")" = 600 ] || check_failed "host secret is not 0600"
TDEFS_TEST_HOST_SECRET_DIR="$TDEFS_WORK/elsewhere" run 8 "$TDEKEY_TEST" keys --wallet "$L"
contains "$ERR" "it needs the host secret $TDEFS_WORK/elsewhere/host-secret, which this host does not have"
[ -e "$TDEFS_WORK/elsewhere" ] && check_failed "reading a local wallet made a host secret"
unset TDEFS_TEST_HOST_IDENTITY
# The installed tdekey ignores the variable: this host is neither of the two above. (The
# first line proves the variable does reach the program this way.)
TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1" run 0 "$TDEKEY_TEST" keys --wallet "$L"
TDEFS_TEST_HOST_IDENTITY="machine-id=1111 hostname=db1" run 8 "$TDEKEY" keys --wallet "$L"

((FAILURES == 0)) || fail "$FAILURES of $CHECKS checks failed"
pass "$CHECKS checks"
