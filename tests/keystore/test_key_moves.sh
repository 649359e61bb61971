#!/bin/bash
# tdekey move-keys and tdekey isolate (docs/WALLET.md "Moving keys between wallets"): keys go
# to a new wallet (made as tdekey create makes one) or to an existing one, leave the source
# only after the census of every --backing directory proves no header needs them there
# (move-keys: anywhere; isolate: outside the container, Oracle's ORA-46696), and with
# isolate --copy stay in both. The isolated container keeps its active key and its backing
# directory rebinds to the new wallet. Every bad input: no --key, --to, --backing (move-keys)
# or --container, --container all, an ACTIVE key, a key in use, a key the wallet lacks, the same
# wallet as target, a conflicting key ID, a wrong or unsafe target password,
# a target directory uid 65534 owns, and uid 65534 running it. Needs no
# FUSE; the uid 65534 parts need root. Last, tdekey create --merge-from: a new wallet holding the
# keys of several (IMPORTED, none active, its own key LOCAL), and nothing created for an
# unreadable source, a wrong or unsafe source password, a descriptor for two sources, or a key
# ID two sources hold with other bytes. Then create --group and change-group: the password
# wallet and its backups 0640 to the group across a change, the auto-login files 0600; an
# unknown group, --auto-login alone, no password wallet, a wrong password, a symbolic link in
# backup/ (never followed), and uid 65534 in the group reading (and failing to change) it.
. "$(dirname "$0")/../mounted/lib.sh"

MAKE_BACKING=$TDEFS_TEST_HELPER
need_build "$TDEKEY_BIN" "$TDEFS_BIN" "$MAKE_BACKING"
have python3 || skip "python3 is needed to read tdekey's JSON"

COST=(--scrypt-cost 10,1,1)
W=$TDEFS_WORK
umask 077
chmod 0755 "$W"

t() { # t EXPECTED_EXIT CMD...: $OUT, $ERR
	local expected=$1 status=0
	shift
	[[ $1 == tdekey ]] && set -- "$TDEKEY_BIN" "${@:2}"
	[[ $1 == tdefs ]] && set -- "$TDEFS_BIN" "${@:2}"
	setsid -w "$@" </dev/null >"$W/out" 2>"$W/err" || status=$?
	OUT=$(cat "$W/out")
	ERR=$(cat "$W/err")
	[[ $status == "$expected" ]] || fail "exit $status, expected $expected: $* (stdout: $OUT; stderr: $ERR)"
	[[ $status == 0 || $(wc -l <"$W/err") -le 2 ]] || fail "more than one line of error: $ERR"
}
has() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }
keys_of() { # keys_of WALLET [CONTAINER]: key IDs, sorted, one a line
	"$TDEKEY_BIN" keys --wallet "$1" --container all --json | python3 -c 'import json,sys
print("\n".join(sorted(k["key_id"] for k in json.load(sys.stdin)["keys"]
                       if len(sys.argv) < 2 or k["container"] == sys.argv[1])))' "${@:2}"
}
active() { # active WALLET CONTAINER
	"$TDEKEY_BIN" keys --wallet "$1" --container all --json | python3 -c 'import json,sys
print("".join(k["key_id"] for k in json.load(sys.stdin)["keys"]
              if k["state"] == "ACTIVE" and k["container"] == sys.argv[1]))' "$2"
}
field() { # field WALLET KEY_ID FIELD
	"$TDEKEY_BIN" keys --wallet "$1" --container all --json | python3 -c 'import json,sys
print("".join(str(k[sys.argv[2]]) for k in json.load(sys.stdin)["keys"] if k["key_id"] == sys.argv[1]))' "$2" "$3"
}
in_wallet() { keys_of "$1" | grep -x "$2" >/dev/null; }
new_key() { # new_key WALLET [CONTAINER]: a PREACTIVE key's ID
	"$TDEKEY_BIN" create-key --wallet "$1" --container "${2:-default}" --json | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["key_id"])'
}

log "a united wallet: default, sales and hr, each with a backing directory"
t 0 tdekey create --wallet "$W/U" --auto-login "${COST[@]}"
D0=$(active "$W/U" default)
t 0 tdekey set-key --wallet "$W/U" --container sales
S1=$(active "$W/U" sales)
t 0 tdekey set-key --wallet "$W/U" --container sales
S2=$(active "$W/U" sales)
t 0 tdekey set-key --wallet "$W/U" --container hr
H1=$(active "$W/U" hr)
t 0 tdekey set-key --wallet "$W/U"
D1=$(active "$W/U" default)
[[ -n $D0 && -n $D1 && $D0 != "$D1" && $S1 != "$S2" && -n $H1 ]] || fail "keys not made"
mkdir -m 0700 "$W/bdef" "$W/bsales" "$W/bhr"
t 0 tdefs --init --wallet "$W/U" "$W/bdef"
t 0 tdefs --init --wallet "$W/U" --container sales "$W/bsales"
t 0 tdefs --init --wallet "$W/U" --container hr "$W/bhr"
t 0 "$MAKE_BACKING" files "$W/U" "$D0" "$W/bdef/old" 2
t 0 "$MAKE_BACKING" files "$W/U" "$S1" "$W/bsales/old" 2
t 0 "$MAKE_BACKING" files "$W/U" "$S2" "$W/bsales/new" 1
t 0 "$MAKE_BACKING" files "$W/U" "$H1" "$W/bhr/all" 1
ALL=(--backing "$W/bdef" --backing "$W/bsales" --backing "$W/bhr")
BEFORE=$(keys_of "$W/U")

log "keys shows KEYSTORE_TYPE SOFTWARE (table and JSON)"
t 0 tdekey keys --wallet "$W/U" --container all
has "$OUT" "KEYSTORE_TYPE"
[[ $(grep -c ' SOFTWARE' <<<"$OUT") == 5 ]] || fail "every one of the 5 keys should be SOFTWARE: $OUT"
t 0 tdekey keys --wallet "$W/U" --json
python3 -c 'import json,sys
assert all(k["keystore_type"] == "SOFTWARE" for k in json.load(open(sys.argv[1]))["keys"])' "$W/out" ||
	fail "keys --json lacks keystore_type SOFTWARE: $OUT"

log "move-keys: bad input, each refused with the wallet unchanged"
FREE=$(new_key "$W/U")
t 2 tdekey move-keys --wallet "$W/U" --to "$W/T1" "${ALL[@]}"
has "$ERR" "--key ID"
t 2 tdekey move-keys --wallet "$W/U" --key "$FREE" "${ALL[@]}"
has "$ERR" "--to DIR is required"
t 2 tdekey move-keys --wallet "$W/U" --key "$FREE" --to "$W/T1"
has "$ERR" "--backing BACKING"
t 2 tdekey move-keys --wallet "$W/U" --key "$FREE" --to "$W/U" "${ALL[@]}"
has "$ERR" "is the wallet the keys come from"
t 2 tdekey move-keys --wallet "$W/U" --key "$FREE" --to "$W/T1" --copy "${ALL[@]}"
has "$ERR" "no option --copy"
t 13 tdekey move-keys --wallet "$W/U" --key "$D1" --to "$W/T1" "${ALL[@]}"
has "$ERR" "ACTIVE key of container default"
t 13 tdekey move-keys --wallet "$W/U" --key "$D0" --to "$W/T1" "${ALL[@]}"
has "$ERR" "still used by 2 file headers under $W/bdef"
t 10 tdekey move-keys --wallet "$W/U" --key ffffffffffffffff --to "$W/T1" "${ALL[@]}"
t 2 tdekey move-keys --wallet "$W/U" --key "zz" --to "$W/T1" "${ALL[@]}"
mkdir -m 0700 "$W/notbacking"
t 14 tdekey move-keys --wallet "$W/U" --key "$FREE" --to "$W/T1" --backing "$W/notbacking"
has "$ERR" "not a tdefs backing directory"
[[ ! -e $W/T1 ]] || fail "a refused move-keys made the target $W/T1"
[[ $(keys_of "$W/U") == "$(sort <<<"$BEFORE"$'\n'"$FREE")" ]] || fail "a refused move-keys changed the wallet"

log "move-keys to a new auto-login wallet"
t 0 tdekey move-keys --wallet "$W/U" --key "${FREE:0:12}" --to "$W/T1" --auto-login "${COST[@]}" "${ALL[@]}"
has "$OUT" "moved 1 master key"
has "$OUT" "a new wallet"
in_wallet "$W/T1" "$FREE" || fail "$FREE is not in the target"
! in_wallet "$W/U" "$FREE" || fail "$FREE is still in the source"
[[ $(field "$W/T1" "$FREE" origin) == IMPORTED ]] || fail "a moved key's origin should be IMPORTED"
[[ $(field "$W/T1" "$FREE" state) != ACTIVE ]] || fail "a moved key must not become active"
[[ $(keys_of "$W/U") == "$BEFORE" ]] || fail "move-keys took more than the key named"
ls "$W/U/backup/"*.wallet >/dev/null 2>&1 || fail "no backup of the source before the delete"
log "moving it again: the source no longer has it"
t 10 tdekey move-keys --wallet "$W/U" --key "$FREE" --to "$W/T1" "${ALL[@]}"

log "move-keys to an existing password wallet; its password is checked"
printf 'target-password-1\n' >"$W/ppass"
printf 'wrong-password-1\n' >"$W/wrong"
t 0 tdekey create --wallet "$W/P" --password-file "$W/ppass" "${COST[@]}"
F2=$(new_key "$W/U")
F3=$(new_key "$W/U" hr)
t 4 tdekey move-keys --wallet "$W/U" --key "$F2" --to "$W/P" --to-password-file "$W/wrong" "${ALL[@]}"
in_wallet "$W/U" "$F2" || fail "a wrong target password lost the key"
chmod 0622 "$W/ppass"
t 7 tdekey move-keys --wallet "$W/U" --key "$F2" --to "$W/P" --to-password-file "$W/ppass" "${ALL[@]}"
has "$ERR" "--to-password-file"
chmod 0600 "$W/ppass"
# --auto-login is ignored for an existing target: the same command line finishes a cut-short move
t 0 tdekey move-keys --wallet "$W/U" --key "$F2" --key "$F3" --key "$F2" --to "$W/P" \
	--to-password-file "$W/ppass" --auto-login "${ALL[@]}" --json
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["added"] == 2 and d["deleted_from_source"] and not d["created"], d
assert sorted(d["keys"]) == sorted(sys.argv[2:]), d' "$W/out" "$F2" "$F3" || fail "move-keys JSON: $OUT"
"$TDEKEY_BIN" keys --wallet "$W/P" --password-file "$W/ppass" --container all | grep "$F3" >/dev/null ||
	fail "$F3 did not reach the password wallet"
! in_wallet "$W/U" "$F2" && ! in_wallet "$W/U" "$F3" || fail "moved keys are still in the source"

log "move-keys to a new password wallet: made with --to-password-file, opened with it"
F4=$(new_key "$W/U")
printf 'short\n' >"$W/shortpass"
t 1 tdekey move-keys --wallet "$W/U" --key "$F4" --to "$W/NP" --to-password-file "$W/shortpass" "${COST[@]}" "${ALL[@]}"
has "$ERR" "at least 8 characters" # as tdekey create says it, with its exit code
in_wallet "$W/U" "$F4" || fail "a refused new target lost the key"
[[ ! -e $W/NP ]] || fail "a too short password made the target"
t 0 tdekey move-keys --wallet "$W/U" --key "$F4" --to "$W/NP" --to-password-file "$W/ppass" "${COST[@]}" "${ALL[@]}"
[[ -e $W/NP/password.wallet && ! -e $W/NP/autologin.wallet ]] || fail "the new target should be a password wallet only"
"$TDEKEY_BIN" keys --wallet "$W/NP" --password-file "$W/ppass" | grep "$F4" >/dev/null ||
	fail "$F4 is not in the new password wallet"
! in_wallet "$W/U" "$F4" || fail "$F4 is still in the source"

log "move-keys: the same key ID with other bytes in the target refuses it all"
head -c 32 /dev/urandom >"$W/k1"
head -c 32 /dev/urandom >"$W/k2"
X=0123456789abcdef0123456789abcdef
t 0 tdekey create-key --wallet "$W/U" --key-file "$W/k1" --key-id "$X"
t 0 tdekey create --wallet "$W/C" --auto-login --no-key "${COST[@]}"
t 0 tdekey create-key --wallet "$W/C" --key-file "$W/k2" --key-id "$X"
t 17 tdekey move-keys --wallet "$W/U" --key "$X" --to "$W/C" "${ALL[@]}"
in_wallet "$W/U" "$X" || fail "a conflicting move-keys lost the key"

if [[ $(id -u) == 0 ]]; then
	log "uid 65534: cannot run it on root's wallet, and cannot own the target"
	t 0 chown 65534:65534 "$W/out" "$W/err"
	status=0
	as_nobody "$TDEKEY_BIN" move-keys --wallet "$W/U" --key "$X" --to "$W/nobody-target" \
		--auto-login "${ALL[@]}" </dev/null >/dev/null 2>&1 || status=$?
	[[ $status != 0 ]] || fail "uid 65534 moved a key out of root's wallet"
	in_wallet "$W/U" "$X" || fail "uid 65534 took a key"
	mkdir -m 0700 "$W/evil"
	chown 65534:65534 "$W/evil"
	status=0
	"$TDEKEY_BIN" move-keys --wallet "$W/U" --key "$X" --to "$W/evil" --auto-login \
		"${ALL[@]}" </dev/null >/dev/null 2>"$W/err" || status=$?
	[[ $status != 0 ]] || fail "keys were moved into a directory uid 65534 owns"
	[[ $(wc -l <"$W/err") == 1 ]] || fail "not one line: $(cat "$W/err")"
	in_wallet "$W/U" "$X" || fail "a refused target lost the key"
	[[ -z $(ls -A "$W/evil") ]] || fail "a wallet was written into a directory uid 65534 owns"
fi

log "isolate: bad input"
t 2 tdekey isolate --wallet "$W/U" --to "$W/T2" "${ALL[@]}"
has "$ERR" "--container C"
t 2 tdekey isolate --wallet "$W/U" --container all --to "$W/T2" "${ALL[@]}"
t 2 tdekey isolate --wallet "$W/U" --container sales "${ALL[@]}"
has "$ERR" "--to DIR is required"
# Without --backing isolate proves the mounted backing directories of the wallet (none here;
# tests/mounted/test_rebind.sh has the refusal and the success with mounts up).
t 2 tdekey isolate --wallet "$W/U" --container sales --to "$W/T2" --key "$S1" "${ALL[@]}"
t 10 tdekey isolate --wallet "$W/U" --container nosuch --to "$W/T2" "${ALL[@]}"
has "$ERR" "no key of container nosuch"
log "isolate refuses while another container's directory uses a key (ORA-46696)"
t 0 "$MAKE_BACKING" files "$W/U" "$S1" "$W/bhr/borrowed" 1
BEFORE=$(keys_of "$W/U")
t 13 tdekey isolate --wallet "$W/U" --container sales --to "$W/T2" --auto-login "${COST[@]}" "${ALL[@]}"
has "$ERR" "ORA-46696"
has "$ERR" "$W/bhr"
[[ $(keys_of "$W/U") == "$BEFORE" ]] || fail "a refused isolate changed the wallet"
[[ ! -e $W/T2 ]] || fail "a refused isolate made the target"

log "isolate --copy: the keys stay in both, the active key stays active in both"
t 0 tdekey isolate --wallet "$W/U" --container sales --to "$W/T2" --copy --auto-login "${COST[@]}"
has "$OUT" "copied 2 master keys"
[[ $(keys_of "$W/T2") == "$(keys_of "$W/U" sales)" ]] || fail "--copy did not copy every sales key"
[[ $(active "$W/T2" sales) == "$S2" && $(active "$W/U" sales) == "$S2" ]] ||
	fail "after --copy $S2 should be active in both"
[[ $(keys_of "$W/U") == "$BEFORE" ]] || fail "isolate --copy changed the source"
t 0 tdekey status --wallet "$W/T2"
has "$OUT" "sales"

log "isolate: after the borrowed file goes, the keys leave and bsales rebinds to the new wallet"
rm -rf "$W/bhr/borrowed"
t 0 tdekey isolate --wallet "$W/U" --container sales --to "$W/T3" --auto-login "${COST[@]}" "${ALL[@]}" --json
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["container"] == "sales" and d["added"] == 2 and d["deleted_from_source"] and d["created"], d' \
	"$W/out" || fail "isolate JSON: $OUT"
[[ -z $(keys_of "$W/U" sales) ]] || fail "sales keys are still in the united wallet"
[[ $(active "$W/U" hr) == "$H1" && $(active "$W/U" default) == "$D1" ]] || fail "isolate touched other containers"
[[ $(active "$W/T3" sales) == "$S2" ]] || fail "sales lost its active key in the isolated wallet"
t 0 tdefs --rebind --wallet "$W/T3" "$W/bsales"
t 0 tdekey keys --wallet "$W/T3" --usage "$W/bsales" --json
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
files = {k["key_id"]: k["files"] for k in d["keys"]}
assert files.get(sys.argv[2]) == 2 and files.get(sys.argv[3]) == 1, files' "$W/out" "$S1" "$S2" ||
	fail "the rebound directory's headers do not use the isolated keys: $OUT"
log "isolate again: nothing of sales is left"
t 10 tdekey isolate --wallet "$W/U" --container sales --to "$W/T3" "${ALL[@]}"
log "create --merge-from: a new wallet from several; bad input creates nothing"
t 0 tdekey create --wallet "$W/MA" --auto-login "${COST[@]}"
t 0 tdekey set-key --wallet "$W/MA" --container sales
printf 'merge-b-password\n' >"$W/mbpass"
t 0 tdekey create --wallet "$W/MB" --password-file "$W/mbpass" "${COST[@]}"
MB_KEYS=$("$TDEKEY_BIN" keys --wallet "$W/MB" --password-file "$W/mbpass" --json | python3 -c \
	'import json,sys; print("\n".join(k["key_id"] for k in json.load(sys.stdin)["keys"]))')
t 2 tdekey create --wallet "$W/M0" --auto-login --from-password-file "$W/mbpass" "${COST[@]}"
has "$ERR" "go with --merge-from"
t 2 tdekey create --wallet "$W/M0" --auto-login --merge-from "$W/MA" --merge-from "$W/MB" \
	--from-password-fd 0 "${COST[@]}"
has "$ERR" "--from-password-fd"
t 3 tdekey create --wallet "$W/M0" --auto-login --merge-from "$W/nosuch" "${COST[@]}"
[[ ! -e $W/M0 ]] || fail "a --merge-from that cannot be read made the wallet"
t 4 tdekey create --wallet "$W/M0" --auto-login --merge-from "$W/MB" --from-password-file "$W/wrong" "${COST[@]}"
[[ ! -e $W/M0 ]] || fail "a wrong --merge-from password made the wallet"
chmod 0622 "$W/mbpass"
t 7 tdekey create --wallet "$W/M0" --auto-login --merge-from "$W/MB" --from-password-file "$W/mbpass" "${COST[@]}"
has "$ERR" "--from-password-file"
chmod 0600 "$W/mbpass"
log "--merge-from: the same key ID with other bytes in two sources refuses it all"
t 17 tdekey create --wallet "$W/M0" --auto-login --merge-from "$W/U" --merge-from "$W/C" "${COST[@]}"
has "$ERR" "$X"
[[ ! -e $W/M0 ]] || fail "conflicting --merge-from wallets made the wallet"
t 0 tdekey create --wallet "$W/M" --auto-login --merge-from "$W/MA" --merge-from "$W/MB" \
	--merge-from "$W/MA" --from-password-file "$W/mbpass" "${COST[@]}" --json
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["merged"] == 3 and len(d["merged_from"]) == 3 and d["active_key_id"], d' "$W/out" ||
	fail "create --merge-from JSON: $OUT"
OWN=$(active "$W/M" default)
for k in $(keys_of "$W/MA") $MB_KEYS; do
	in_wallet "$W/M" "$k" || fail "$k did not reach the merged wallet"
	[[ $(field "$W/M" "$k" origin) == IMPORTED && $(field "$W/M" "$k" state) != ACTIVE ]] ||
		fail "merged key $k should be IMPORTED and not ACTIVE"
done
[[ $(keys_of "$W/M" | wc -l) == 4 && -n $OWN ]] || fail "the merged wallet should hold 3 merged keys and its own"
[[ $(field "$W/M" "$OWN" origin) == LOCAL ]] || fail "the new wallet's own key should be LOCAL"
t 11 tdekey create --wallet "$W/M" --auto-login --merge-from "$W/MA" "${COST[@]}"
SHADOW_BEFORE=$(stat -c '%a %G' /etc/shadow)
log "create --group and change-group: the password wallet and its backups 0640 to the group"
GROUP=$(getent group 65534 | cut -d: -f1)
[[ -n $GROUP ]] || fail "no group 65534 on this system"
mode_group() { stat -c '%a %G' "$1"; }
t 2 tdekey create --wallet "$W/G0" --password-file "$W/ppass" --group no-such-group-here "${COST[@]}"
has "$ERR" "--group no-such-group-here: no such group"
t 2 tdekey create --wallet "$W/G0" --auto-login --group "$GROUP" "${COST[@]}"
has "$ERR" "--auto-login alone"
[[ ! -e $W/G0 ]] || fail "a refused create --group made the wallet"
t 0 tdekey create --wallet "$W/G" --password-file "$W/ppass" --auto-login --group "$GROUP" "${COST[@]}"
[[ $(mode_group "$W/G/password.wallet") == "640 $GROUP" ]] || fail "password.wallet is $(mode_group "$W/G/password.wallet")"
[[ $(stat -c %a "$W/G/autologin.wallet") == 600 ]] || fail "the auto-login wallet must stay 0600"
[[ $(mode_group "$W/G") == "2750 $GROUP" ]] || fail "the wallet directory is $(mode_group "$W/G")"
t 0 tdekey set-key --wallet "$W/G" --password-file "$W/ppass"
[[ $(mode_group "$W/G/password.wallet") == "640 $GROUP" ]] || fail "a change lost the group's read access"
[[ $(stat -c %a "$W/G/autologin.wallet") == 600 ]] || fail "a change opened the auto-login wallet"
for b in "$W/G/backup/"*; do
	case ${b##*/} in
	password-*) [[ $(mode_group "$b") == "640 $GROUP" ]] || fail "backup $b is $(mode_group "$b")" ;;
	*) [[ $(stat -c %a "$b") == 600 ]] || fail "backup $b of an auto-login file is not 0600" ;;
	esac
done
t 0 tdekey status --wallet "$W/G"
log "change-group on an existing wallet; bad input"
t 2 tdekey change-group --wallet "$W/P"
has "$ERR" "--group G is required"
t 2 tdekey change-group --wallet "$W/P" --group no-such-group-here --password-file "$W/ppass"
t 2 tdekey change-group --wallet "$W/T1" --group "$GROUP"
has "$ERR" "no password wallet"
[[ $(stat -c %a "$W/T1/autologin.wallet") == 600 ]] || fail "change-group touched an auto-login-only wallet"
t 4 tdekey change-group --wallet "$W/P" --group "$GROUP" --password-file "$W/wrong"
[[ $(stat -c %a "$W/P/password.wallet") == 600 ]] || fail "a wrong password still changed the group"
ln -s /etc/shadow "$W/P/backup/password-20000101T000000Z-g1.wallet"
t 7 tdekey change-group --wallet "$W/P" --group "$GROUP" --password-file "$W/ppass"
has "$ERR" "symbolic link"
[[ $(stat -c '%a %G' /etc/shadow) == "$SHADOW_BEFORE" ]] || fail "change-group followed a link to /etc/shadow"
rm "$W/P/backup/password-20000101T000000Z-g1.wallet"
t 0 tdekey change-group --wallet "$W/P" --group "$GROUP" --password-file "$W/ppass" --json
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["files"] >= 2, d' "$W/out" ||
	fail "change-group JSON: $OUT"
[[ $(mode_group "$W/P/password.wallet") == "640 $GROUP" ]] || fail "change-group: password.wallet is $(mode_group "$W/P/password.wallet")"
if [[ $(id -u) == 0 ]]; then
	log "uid 65534 in the group reads the password wallet, never the auto-login one, and cannot change the group"
	as_nobody cat "$W/G/password.wallet" >/dev/null || fail "the group cannot read password.wallet"
	! as_nobody cat "$W/G/autologin.wallet" >/dev/null 2>&1 || fail "the group read the auto-login wallet"
	as_nobody "$TDEKEY_BIN" keys --wallet "$W/G" --password-fd 0 <"$W/ppass" >"$W/nobody-keys" 2>&1 ||
		fail "the group cannot list the keys with the password: $(cat "$W/nobody-keys")"
	status=0
	as_nobody "$TDEKEY_BIN" change-group --wallet "$W/G" --group 0 --password-fd 0 <"$W/ppass" \
		>/dev/null 2>&1 || status=$?
	[[ $status != 0 && $(stat -c %G "$W/G/password.wallet") == "$GROUP" ]] || fail "uid 65534 changed the group"
fi
pass
