#!/bin/bash
# United mode and bring your own key from the command line (docs/WALLET.md "Containers"): one
# wallet holding the key sets of several containers, each with its own active key and its own
# rotation (set-key, create-key, use-key, set-tag, keys and status with --container C|all),
# tdefs --init --container recording a name in full (a 40- and a 64-character name; 65 is
# refused; a container the wallet has no key of yet is recorded, with a note naming the
# set-key), and --key-file/--key-fd/--key-id, with every bad input: an unknown container, a
# 65-character name, a duplicate key ID, a short and a long key file, a key file writable or readable by others or owned by uid 65534, uid 65534 itself. A key
# brought into two wallets is shown to be the same key by unwrapping, with the second wallet, a
# header tdefs-test-helper sealed with the first. Needs no FUSE; the uid 65534 parts need root.
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
}
has() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }
lacks() { [[ $1 != *"$2"* ]] || fail "did not expect '$2' in: $1"; }
# active WALLET CONTAINER: the ACTIVE key ID of that container ("" for none)
active() {
	"$TDEKEY_BIN" keys --wallet "$1" --json | python3 -c 'import json,sys
print("".join(k["key_id"] for k in json.load(sys.stdin)["keys"]
              if k["state"] == "ACTIVE" and k["container"] == sys.argv[1]))' "$2"
}
count() { # count WALLET [CONTAINER]: how many keys
	"$TDEKEY_BIN" keys --wallet "$1" --json | python3 -c 'import json,sys
print(sum(1 for k in json.load(sys.stdin)["keys"] if len(sys.argv) < 2 or k["container"] == sys.argv[1]))' "${@:2}"
}
field() { # field WALLET KEY_ID FIELD
	"$TDEKEY_BIN" keys --wallet "$1" --json | python3 -c 'import json,sys
print("".join(str(k[sys.argv[2]]) for k in json.load(sys.stdin)["keys"] if k["key_id"] == sys.argv[1]))' "$2" "$3"
}
config_version() { od -An -tu2 -j8 -N2 "$1/.tdefs.conf" | tr -d ' '; }

log "one wallet, three containers: default, sales, hr"
t 0 tdekey create --wallet "$W/U" --auto-login "${COST[@]}"
DEFAULT0=$(active "$W/U" default)
[[ -n $DEFAULT0 ]] || fail "the new wallet has no active key in container default"
t 0 tdekey status --wallet "$W/U"
has "$OUT" "keystore mode   ISOLATED"
t 0 tdekey set-key --wallet "$W/U" --container sales --tag s1
has "$OUT" "of container sales"
SALES1=$(active "$W/U" sales)
t 0 tdekey set-key --wallet "$W/U" --container hr
HR1=$(active "$W/U" hr)
[[ -n $SALES1 && -n $HR1 && $SALES1 != "$HR1" ]] || fail "sales and hr need active keys of their own"
[[ $(active "$W/U" default) == "$DEFAULT0" ]] || fail "making sales and hr changed default's active key"

log "status and keys show KEYSTORE_MODE, CONTAINER and ORIGIN"
t 0 tdekey status --wallet "$W/U"
has "$OUT" "keystore mode   UNITED"
has "$OUT" "CONTAINER"
has "$OUT" "$DEFAULT0"
lacks "$OUT" "$SALES1"
t 0 tdekey status --wallet "$W/U" --container sales
has "$OUT" "$SALES1"
lacks "$OUT" "$HR1"
# The per-container row names its KEYSTORE_MODE too (a column, as V$ENCRYPTION_WALLET has it).
awk '$1 == "CONTAINER" { for (i = 1; i <= NF; i++) if ($i == "KEYSTORE_MODE") c = i }
	c && $1 == "sales" { print $c }' <<<"$OUT" | grep -qx UNITED ||
	fail "status --container sales has no KEYSTORE_MODE UNITED in sales' row: $OUT"
t 0 tdekey status --wallet "$W/U" --container all
has "$OUT" "$SALES1"
has "$OUT" "$HR1"
has "$OUT" "$DEFAULT0"
t 0 tdekey status --wallet "$W/U" --container all --json
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["keystore_mode"] == "UNITED", d["keystore_mode"]
c = {x["container"]: x for x in d["containers"]}
assert set(c) == {"default", "sales", "hr"}, c
assert c["sales"]["active_key_id"] == sys.argv[2] and c["sales"]["status"] == "OPEN", c
assert all(x["keystore_mode"] == "UNITED" for x in c.values()), c' "$W/out" "$SALES1" ||
	fail "status --json containers wrong: $OUT"
t 10 tdekey status --wallet "$W/U" --container nosuch
has "$ERR" "--container nosuch"
t 0 tdekey keys --wallet "$W/U" --container sales
has "$OUT" "CONTAINER"
has "$OUT" "ORIGIN"
has "$OUT" "$SALES1"
lacks "$OUT" "$HR1"
lacks "$OUT" "$DEFAULT0"
has "$OUT" "keystore mode UNITED"
t 0 tdekey keys --wallet "$W/U" --container all
has "$OUT" "$HR1"
has "$OUT" "$DEFAULT0"
t 10 tdekey keys --wallet "$W/U" --container nosuch
has "$ERR" "no key of that container"

log "each container rotates on its own"
t 0 tdekey set-key --wallet "$W/U" --container sales
SALES2=$(active "$W/U" sales)
[[ $SALES2 != "$SALES1" ]] || fail "set-key --container sales did not rotate sales"
[[ $(field "$W/U" "$SALES1" state) == RETIRED ]] || fail "sales' previous key is not RETIRED"
[[ $(active "$W/U" hr) == "$HR1" ]] || fail "set-key --container sales changed hr's active key"
[[ $(active "$W/U" default) == "$DEFAULT0" ]] || fail "set-key --container sales changed default's"
[[ $(field "$W/U" "$SALES2" container) == sales ]] || fail "the new key is not of container sales"
t 0 tdekey set-key --wallet "$W/U"
[[ $(active "$W/U" default) != "$DEFAULT0" ]] || fail "set-key without --container did not rotate default"
[[ $(active "$W/U" sales) == "$SALES2" ]] || fail "set-key without --container changed sales"
BEFORE=$(count "$W/U")
t 0 tdekey set-key --wallet "$W/U" --container all
[[ $(count "$W/U") == $((BEFORE + 3)) ]] || fail "set-key --container all should add one key per container"
for c in default sales hr; do
	[[ $(field "$W/U" "$(active "$W/U" $c)" container) == "$c" ]] || fail "container $c has no active key of its own"
done
[[ $(active "$W/U" sales) != "$SALES2" ]] || fail "set-key --container all did not rotate sales"

log "create-key, use-key and set-tag keep to their container"
HR_NOW=$(active "$W/U" hr)
SALES_NOW=$(active "$W/U" sales)
t 0 tdekey create-key --wallet "$W/U" --container hr --tag later --json
HR_PRE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$W/out")
[[ $(field "$W/U" "$HR_PRE" state) == PREACTIVE && $(field "$W/U" "$HR_PRE" container) == hr ]] ||
	fail "create-key --container hr made no PREACTIVE hr key"
t 1 tdekey use-key --wallet "$W/U" --container sales "$HR_PRE"
has "$ERR" "belongs to container hr, not sales"
t 1 tdekey use-key --wallet "$W/U" "$HR_PRE"
has "$ERR" "--container hr"
[[ $(active "$W/U" hr) == "$HR_NOW" ]] || fail "a refused use-key changed hr"
t 0 tdekey use-key --wallet "$W/U" --container hr "$HR_PRE"
[[ $(active "$W/U" hr) == "$HR_PRE" ]] || fail "use-key --container hr did not activate the key"
[[ $(field "$W/U" "$HR_NOW" state) == RETIRED ]] || fail "hr's previous key is not RETIRED"
[[ $(active "$W/U" sales) == "$SALES_NOW" ]] || fail "use-key in hr changed sales"
t 0 tdekey use-key --wallet "$W/U" --container all "$HR_NOW"
[[ $(active "$W/U" hr) == "$HR_NOW" ]] || fail "use-key --container all did not activate in hr"
t 1 tdekey set-tag --wallet "$W/U" --container sales "$HR_PRE" x
has "$ERR" "belongs to container hr"
t 0 tdekey set-tag --wallet "$W/U" --container hr "$HR_PRE" relabelled
[[ $(field "$W/U" "$HR_PRE" tag) == relabelled ]] || fail "set-tag --container hr did not retag"
SALES_COUNT=$(count "$W/U" sales)
HR_COUNT=$(count "$W/U" hr)
t 0 tdekey create-key --wallet "$W/U" --container all
[[ $(count "$W/U" sales) == $((SALES_COUNT + 1)) && $(count "$W/U" hr) == $((HR_COUNT + 1)) ]] ||
	fail "create-key --container all did not make one key per container"
[[ $(active "$W/U" hr) == "$HR_NOW" ]] || fail "create-key --container all changed an active key"

log "container names: 65 characters are refused everywhere, 40 and 64 are kept whole"
N40=$(printf 'c%.0s' {1..40})
N64=$(printf 'd%.0s' {1..64})
N65=$(printf 'e%.0s' {1..65})
t 2 tdekey set-key --wallet "$W/U" --container "$N65"
has "$ERR" "1 to 64"
t 2 tdefs --init --wallet "$W/U" --container "$N65" "$W/b65"
has "$ERR" "--container"
has "$ERR" "1 to 64"
t 2 tdekey keys --wallet "$W/U" --container 'bad/name'
t 2 tdekey create --wallet "$W/all-wallet" --auto-login --container all "${COST[@]}"
has "$ERR" "cannot be one"
[[ ! -e $W/all-wallet/autologin.wallet ]] || fail "a wallet with container 'all' was made"
t 0 tdekey set-key --wallet "$W/U" --container "$N40"
t 0 tdekey set-key --wallet "$W/U" --container "$N64"
[[ -n $(active "$W/U" "$N64") ]] || fail "a 64-character container has no active key"
mkdir -m 0700 "$W/b40" "$W/b64" "$W/bsales" "$W/bnone"
t 0 tdefs --init --wallet "$W/U" --container "$N40" "$W/b40"
has "$OUT" "container $N40"
t 0 tdefs --info "$W/b40"
has "$OUT" "$N40"
[[ $(config_version "$W/b40") == 2 ]] || fail "a 40-character container needs config version 2"
t 0 tdefs --init --wallet "$W/U" --container "$N64" "$W/b64"
t 0 tdefs --info --json "$W/b64"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1]))["container"]; assert c == sys.argv[2], c' \
	"$W/out" "$N64" || fail "--info does not show the 64-character container whole: $OUT"
t 0 tdefs --init --wallet "$W/U" --container sales "$W/bsales"
[[ $(config_version "$W/bsales") == 1 ]] || fail "a short container name should keep config version 1"
# A new container's order: --init records the container first, its first key comes next (the
# mount refuses it until then: tests/mounted/test_rebind.sh).
t 0 tdefs --init --wallet "$W/U" --container nosuch "$W/bnone"
has "$OUT" "holds no key of container nosuch yet"
has "$OUT" "tdekey set-key --wallet $W/U --container nosuch"
t 0 tdefs --info --json "$W/bnone"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1]))["container"]; assert c == "nosuch", c' \
	"$W/out" || fail "--init did not record container nosuch: $OUT"
t 2 tdefs --wallet "$W/U" --container sales "$W/bsales" "$W/mnt"
has "$ERR" "--container goes with --init or --rebind"

log "bring your own key: --key-file, --key-fd, --key-id"
head -c 32 /dev/urandom >"$W/key"
chmod 0600 "$W/key"
KEY_HEX=$(od -An -tx1 "$W/key" | tr -d ' \n')
MYID=0123456789abcdef0123456789abcdef
t 0 tdekey create-key --wallet "$W/U" --container sales --key-file "$W/key" --key-id "$MYID"
has "$OUT" "$MYID"
lacks "$OUT$ERR" "$KEY_HEX"
[[ $(field "$W/U" "$MYID" state) == PREACTIVE && $(field "$W/U" "$MYID" origin) == LOCAL &&
	$(field "$W/U" "$MYID" container) == sales ]] || fail "the brought key is not a PREACTIVE LOCAL sales key"
BEFORE=$(count "$W/U")
SUM=$(sha256sum "$W/U/autologin.wallet")
t 11 tdekey set-key --wallet "$W/U" --container sales --key-file "$W/key" --key-id "$MYID"
has "$ERR" "already holds a key with that ID"
t 11 tdekey create-key --wallet "$W/U" --key-fd 3 --key-id "${MYID^^}" 3<"$W/key"
[[ $(count "$W/U") == "$BEFORE" && $(sha256sum "$W/U/autologin.wallet") == "$SUM" ]] ||
	fail "a refused duplicate key ID changed the wallet"
head -c 31 /dev/urandom >"$W/short"; head -c 33 /dev/urandom >"$W/long"
printf '%s\n' "$KEY_HEX" >"$W/hex"
chmod 0600 "$W/short" "$W/long" "$W/hex"
t 1 tdekey set-key --wallet "$W/U" --key-file "$W/short"
has "$ERR" "holds 31 bytes"
t 1 tdekey set-key --wallet "$W/U" --key-file "$W/long"
has "$ERR" "more than 32 bytes"
t 1 tdekey set-key --wallet "$W/U" --key-file "$W/hex"
has "$ERR" "exactly 32 raw bytes"
t 1 tdekey set-key --wallet "$W/U" --key-file /dev/null
t 1 tdekey set-key --wallet "$W/U" --key-file "$W/no-such-key"
has "$ERR" "no-such-key"
cp "$W/key" "$W/key-ow"; chmod 0602 "$W/key-ow"
t 7 tdekey set-key --wallet "$W/U" --key-file "$W/key-ow"
has "$ERR" "key-ow"
cp "$W/key" "$W/key-or"; chmod 0604 "$W/key-or"
t 7 tdekey set-key --wallet "$W/U" --key-file "$W/key-or"
has "$ERR" "chmod 600"
t 2 tdekey set-key --wallet "$W/U" --key-id "$MYID"
has "$ERR" "--key-id goes with --key-file or --key-fd"
t 2 tdekey set-key --wallet "$W/U" --key-file "$W/key" --key-id 0123
has "$ERR" "32 hexadecimal digits"
t 2 tdekey set-key --wallet "$W/U" --key-file "$W/key" --key-id zz23456789abcdef0123456789abcdef
t 2 tdekey set-key --wallet "$W/U" --key-file "$W/key" --key-fd 0
has "$ERR" "only one of"
t 2 tdekey set-key --wallet "$W/U" --key-fd nope
t 1 tdekey set-key --wallet "$W/U" --container all --key-file "$W/key"
has "$ERR" "not with --container all"
t 2 tdekey keys --wallet "$W/U" --key-file "$W/key"
has "$ERR" "has no option"
[[ $(count "$W/U") == "$BEFORE" ]] || fail "refused key files added keys"

log "the same brought key in two wallets opens the same header; other bytes do not"
t 0 tdekey create --wallet "$W/V" --auto-login "${COST[@]}"
t 0 tdekey create --wallet "$W/X" --auto-login "${COST[@]}"
t 0 tdekey set-key --wallet "$W/V" --key-fd 3 --key-id "$MYID" 3<"$W/key"
[[ $(active "$W/V" default) == "$MYID" ]] || fail "set-key --key-fd did not make the brought key active"
head -c 32 /dev/urandom >"$W/other-key"; chmod 0600 "$W/other-key"
t 0 tdekey set-key --wallet "$W/X" --key-file "$W/other-key" --key-id "$MYID"
t 0 tdekey create-key --wallet "$W/X" --container pipe --key-fd 3 3< <(cat "$W/key")
[[ $(count "$W/X" pipe) == 1 ]] || fail "--key-fd from a pipe made no key"
mkdir -m 0700 "$W/hdr"
t 0 "$MAKE_BACKING" files "$W/V" "$MYID" "$W/hdr" 1
F=$(ls "$W/hdr"/key-* | head -n 1)
t 0 "$MAKE_BACKING" dek "$W/U" "$F"
DEK_U=$OUT
t 0 "$MAKE_BACKING" dek "$W/V" "$F"
[[ -n $DEK_U && $OUT == "$DEK_U" ]] || fail "wallets U and V do not hold the same brought key"
status=0
"$MAKE_BACKING" dek "$W/X" "$F" >/dev/null 2>&1 || status=$?
[[ $status != 0 ]] || fail "wallet X (same key ID, other bytes) unwrapped the header"

if [[ $(id -u) == 0 ]]; then
	log "uid 65534: its key file is refused, and it cannot use or read ours"
	cp "$W/key" "$W/key-nobody"; chown 65534:65534 "$W/key-nobody"; chmod 0600 "$W/key-nobody"
	t 7 tdekey set-key --wallet "$W/U" --key-file "$W/key-nobody"
	has "$ERR" "key-nobody"
	as_nobody "$TDEKEY_BIN" set-key --wallet "$W/U" --container sales --key-file "$W/key" \
		</dev/null >"$W/out" 2>"$W/err" && fail "uid 65534 added a key to the wallet"
	as_nobody cat "$W/key" >/dev/null 2>&1 && fail "uid 65534 can read the key file"
	[[ $(count "$W/U") == "$BEFORE" ]] || fail "uid 65534 changed the wallet"
	as_nobody "$TDEFS_BIN" --rebind --wallet "$W/U" "$W/bsales" </dev/null >/dev/null 2>&1 &&
		fail "uid 65534 rebound a backing directory"
	[[ $(config_version "$W/bsales") == 1 ]] || fail "uid 65534 changed .tdefs.conf"
fi
log "ok"
