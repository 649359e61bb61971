#!/bin/bash
# tdekey export, import and merge from the command line (docs/WALLET.md "Moving keys"): what a
# DBA types to move keys between wallets, and every bad input with its exit code and message:
# a wrong transport secret (15), a truncated or bit-flipped export file and a wallet given as
# one (16), a key ID the target holds with other bytes (17, nothing imported), a key the source
# wallet lacks (10), a secret or password file other users could write (7), a transport secret
# others can read (7), an export file others could write or read or that uid 65534 planted
# (7), and uid 65534 reading the export file. Backing directories for --used-by are written by
# tdefs-test-helper (headers under chosen keys, no mount). Needs no FUSE; the uid 65534 checks
# need root.
. "$(dirname "$0")/../mounted/lib.sh"

MAKE_BACKING=$TDEFS_TEST_HELPER
VECTORS=$TDEFS_SRC/tests/keystore/key_export_vectors.py
need_build "$TDEKEY_BIN" "$MAKE_BACKING"
have python3 || skip "python3 is needed to write a conflicting export file"
python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is needed"

COST=(--scrypt-cost 10,1,1)
W=$TDEFS_WORK
umask 077
chmod 0755 "$W" # uid 65534 may traverse, so that only the file's own mode stops it

# t EXPECTED_EXIT CMD...: run detached from any terminal (no prompt can appear); $OUT, $ERR.
t() {
	local expected=$1 status=0
	shift
	[[ $1 == tdekey ]] && set -- "$TDEKEY_BIN" "${@:2}"
	setsid -w "$@" </dev/null >"$W/out" 2>"$W/err" || status=$?
	OUT=$(cat "$W/out")
	ERR=$(cat "$W/err")
	[[ $status == "$expected" ]] || fail "exit $status, expected $expected: $* (stderr: $ERR)"
}
has() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }
lacks() { [[ $1 != *"$2"* ]] || fail "did not expect '$2' in: $1"; }
tdekey() { "$TDEKEY_BIN" "$@"; }
key_ids() { # key_ids WALLET: every key ID, one a line, sorted
	tdekey keys --wallet "$1" --json | python3 -c 'import json,sys
for k in json.load(sys.stdin)["keys"]: print(k["key_id"])' | sort
}
key_field() { # key_field WALLET KEY_ID FIELD
	tdekey keys --wallet "$1" --json | python3 -c 'import json,sys
for k in json.load(sys.stdin)["keys"]:
    if k["key_id"] == sys.argv[1]: print(k[sys.argv[2]])' "$2" "$3"
}
backups() { local f=("$1"/backup/*.wallet); echo ${#f[@]}; }

log "wallets A (three keys, one PREACTIVE), B (auto-login) and P (password)"
printf 'transport secret one\n' >"$W/secret"
printf 'not the secret at all\n' >"$W/wrong"
printf 'password of P\n' >"$W/p-password"
t 0 tdekey create --wallet "$W/A" --auto-login "${COST[@]}"
t 0 tdekey set-key --wallet "$W/A" --tag second
t 0 tdekey set-key --wallet "$W/A" --tag third
t 0 tdekey create-key --wallet "$W/A" --tag later
t 0 tdekey create --wallet "$W/B" --auto-login "${COST[@]}"
t 0 tdekey create --wallet "$W/P" --password-file "$W/p-password" "${COST[@]}"
mapfile -t A_KEYS < <(key_ids "$W/A")
[[ ${#A_KEYS[@]} == 4 ]] || fail "wallet A should hold 4 keys, holds ${#A_KEYS[@]}"
B_ACTIVE=$(tdekey keys --wallet "$W/B" --json | python3 -c 'import json,sys
print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["state"] == "ACTIVE"][0])')

log "--used-by: exactly the key IDs the headers under a backing directory reference"
FIRST=$(tdekey keys --wallet "$W/A" --json | python3 -c 'import json,sys
print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["tag"] is None][0])')
t 0 "$MAKE_BACKING" init "$W/A" "$W/clone.enc"
t 0 "$MAKE_BACKING" files "$W/A" "$FIRST" "$W/clone.enc/old" 2
t 0 "$MAKE_BACKING" files "$W/A" active "$W/clone.enc/new" 1
t 0 tdekey keys --wallet "$W/A" --usage "$W/clone.enc" --json
USED=$(python3 -c 'import json,sys
print("\n".join(sorted(k["key_id"] for k in json.load(sys.stdin)["keys"] if k["files"])))' <<<"$OUT")
[[ $(wc -l <<<"$USED") == 2 ]] || fail "the census should name two keys: $USED"
t 0 tdekey export --wallet "$W/A" --used-by "$W/clone.enc" --to "$W/clone.keys" \
	--secret-file "$W/secret" "${COST[@]}" --json
EXPORTED=$(python3 -c 'import json,sys; print("\n".join(sorted(json.load(sys.stdin)["keys"])))' <<<"$OUT")
[[ $EXPORTED == "$USED" ]] || fail "--used-by exported '$EXPORTED', the headers use '$USED'"
[[ $(stat -c %a "$W/clone.keys") == 600 ]] || fail "export file mode is $(stat -c %a "$W/clone.keys")"
# Not a wallet: a wallet directory holding it as its wallet file does not open.
mkdir -m 0700 "$W/fake"
cp "$W/clone.keys" "$W/fake/autologin.wallet"
t 5 tdekey keys --wallet "$W/fake"

log "import: all keys added, none active, backup first; again: nothing written"
BEFORE=$(backups "$W/B")
t 0 tdekey import --wallet "$W/B" --from "$W/clone.keys" --secret-file "$W/secret" --json
has "$OUT" '"imported": 2'
[[ $(backups "$W/B") == $((BEFORE + 1)) ]] || fail "import took no backup first"
for k in $USED; do
	[[ $(key_field "$W/B" "$k" origin) == IMPORTED ]] || fail "key $k is not ORIGIN IMPORTED"
	[[ $(key_field "$W/B" "$k" state) != ACTIVE ]] || fail "import made key $k active"
done
[[ $(key_field "$W/B" "$B_ACTIVE" state) == ACTIVE ]] || fail "B's active key changed"
t 0 tdekey import --wallet "$W/B" --from "$W/clone.keys" --secret-file "$W/secret" --json
has "$OUT" '"imported": 0'
has "$OUT" '"skipped": 2'
[[ $(backups "$W/B") == $((BEFORE + 1)) ]] || fail "an import that adds nothing wrote the wallet"

log "other selections: --key prefixes, --container, --all; and what is refused"
t 0 tdekey export --wallet "$W/A" --key "${A_KEYS[0]:0:8}" --key "${A_KEYS[1]}" \
	--to "$W/two.keys" --secret-file "$W/secret" "${COST[@]}"
has "$OUT" "exported 2 master keys"
t 0 tdekey export --wallet "$W/A" --container default --to "$W/default.keys" \
	--secret-file "$W/secret" "${COST[@]}"
has "$OUT" "exported 4 master keys"
t 0 tdekey export --wallet "$W/A" --all --to "$W/all.keys" --secret-fd 3 "${COST[@]}" 3<"$W/secret"
has "$OUT" "exported 4 master keys"
t 10 tdekey export --wallet "$W/A" --key 0123456789abcdef --to "$W/x.keys" --secret-file "$W/secret"
has "$ERR" "--key 0123456789abcdef"
t 10 tdekey export --wallet "$W/A" --container sales --to "$W/x.keys" --secret-file "$W/secret"
has "$ERR" "no keys in container sales"
t 2 tdekey export --wallet "$W/A" --all --key "${A_KEYS[0]}" --to "$W/x.keys" --secret-file "$W/secret"
t 2 tdekey export --wallet "$W/A" --to "$W/x.keys" --secret-file "$W/secret"
t 2 tdekey export --wallet "$W/A" --all --secret-file "$W/secret"
t 2 tdekey export --wallet "$W/A" --all --to "$W/x.keys" --secret "transport secret one"
t 11 tdekey export --wallet "$W/A" --all --to "$W/all.keys" --secret-file "$W/secret"
has "$ERR" "all.keys already exists"
t 4 tdekey export --wallet "$W/A" --all --to "$W/x.keys" # no secret source, no terminal
has "$ERR" "--secret-file"
printf 'short\n' >"$W/short"
t 1 tdekey export --wallet "$W/A" --all --to "$W/x.keys" --secret-file "$W/short"
has "$ERR" "at least 8 characters"
[[ ! -e $W/x.keys ]] || fail "a refused export left $W/x.keys"
# A header under a key the wallet lacks: refused, naming the key.
t 0 "$MAKE_BACKING" files "$W/B" active "$W/clone.enc/foreign" 1
t 10 tdekey export --wallet "$W/A" --used-by "$W/clone.enc" --to "$W/x.keys" --secret-file "$W/secret"
has "$ERR" "$B_ACTIVE"
has "$ERR" "lacks"
rm -rf "$W/clone.enc/foreign"
t 14 tdekey export --wallet "$W/B" --used-by "$W/clone.enc" --to "$W/x.keys" --secret-file "$W/secret"
has "$ERR" "belongs to another wallet"

log "bad export files: wrong secret (15), truncated, bit-flipped, a wallet (16)"
t 15 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-file "$W/wrong"
has "$ERR" "wrong transport secret"
has "$ERR" "all.keys"
SIZE=$(stat -c %s "$W/all.keys")
head -c $((SIZE - 1)) "$W/all.keys" >"$W/truncated.keys"
t 16 tdekey import --wallet "$W/B" --from "$W/truncated.keys" --secret-file "$W/secret"
has "$ERR" "truncated.keys is damaged"
head -c 100 "$W/all.keys" >"$W/short.keys"
t 16 tdekey import --wallet "$W/B" --from "$W/short.keys" --secret-file "$W/secret"
for offset in 20 200 $((SIZE - 40)) $((SIZE - 1)); do
	cp "$W/all.keys" "$W/flipped.keys"
	byte=$(od -An -tu1 -j "$offset" -N1 "$W/flipped.keys" | tr -d ' ')
	printf "$(printf '\\%03o' $((byte ^ 4)))" |
		dd of="$W/flipped.keys" bs=1 seek="$offset" conv=notrunc status=none
	t 16 tdekey import --wallet "$W/B" --from "$W/flipped.keys" --secret-file "$W/wrong"
	has "$ERR" "is damaged"
	rm -f "$W/flipped.keys"
done
t 16 tdekey import --wallet "$W/B" --from "$W/A/autologin.wallet" --secret-file "$W/secret"
has "$ERR" "it is a wallet file, not a key export file"
t 3 tdekey import --wallet "$W/B" --from "$W/missing.keys" --secret-file "$W/secret"
has "$ERR" "missing.keys"
[[ $(backups "$W/B") == $((BEFORE + 1)) ]] || fail "a refused import wrote the wallet"

log "a key ID the wallet holds with other bytes refuses the whole import (17)"
B_ID=$(tdekey status --wallet "$W/B" --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["wallet_id"])')
NEW_ID=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
python3 "$VECTORS" write "$W/conflict.keys" "$W/secret" "$B_ID" \
	"$NEW_ID:$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" \
	"$FIRST:$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
COUNT=$(key_ids "$W/B" | wc -l)
t 17 tdekey import --wallet "$W/B" --from "$W/conflict.keys" --secret-file "$W/secret"
has "$ERR" "$FIRST"
has "$ERR" "nothing was imported"
[[ $(key_ids "$W/B" | wc -l) == "$COUNT" ]] || fail "a refused import added keys"
key_ids "$W/B" | grep -q "$NEW_ID" && fail "the new key of a refused import was added"
[[ $(backups "$W/B") == $((BEFORE + 1)) ]] || fail "a refused import wrote the wallet"

log "secret and password files other users could write are refused (7)"
cp "$W/secret" "$W/loose"
chmod 0622 "$W/loose"
t 7 tdekey export --wallet "$W/A" --all --to "$W/x.keys" --secret-file "$W/loose"
has "$ERR" "loose"
t 7 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-file "$W/loose"
t 7 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-fd 3 3<"$W/loose"
cp "$W/p-password" "$W/p-loose"
chmod 0620 "$W/p-loose"
t 7 tdekey merge --wallet "$W/B" --from "$W/P" --from-password-file "$W/p-loose"
log "a transport secret others can read is refused too (7), and so is an export file others could write or read"
cp "$W/secret" "$W/readable"
chmod 0644 "$W/readable"
t 7 tdekey export --wallet "$W/A" --all --to "$W/x.keys" --secret-file "$W/readable"
has "$ERR" "readable by its owner only"
has "$ERR" "chmod 600 $W/readable"
t 7 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-file "$W/readable"
t 7 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-fd 3 3<"$W/readable"
chmod 0640 "$W/readable"
t 7 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-file "$W/readable"
# (the successes below import clone.keys, already in B: nothing changes)
t 0 tdekey import --wallet "$W/B" --from "$W/clone.keys" --secret-fd 3 3< <(cat "$W/secret") # a pipe
cp "$W/clone.keys" "$W/shared.keys"
chmod 0644 "$W/shared.keys"
t 7 tdekey import --wallet "$W/B" --from "$W/shared.keys" --secret-file "$W/secret"
has "$ERR" "shared.keys"
has "$ERR" "chmod 600"
chmod 0620 "$W/shared.keys"
t 7 tdekey import --wallet "$W/B" --from "$W/shared.keys" --secret-file "$W/secret"
has "$ERR" "writable by group"
chmod 0600 "$W/shared.keys"
t 0 tdekey import --wallet "$W/B" --from "$W/shared.keys" --secret-file "$W/secret"
if [[ $(id -u) == 0 ]]; then
	cp "$W/secret" "$W/theirs"
	chown 65534:65534 "$W/theirs"
	chmod 0644 "$W/theirs"
	t 7 tdekey import --wallet "$W/B" --from "$W/all.keys" --secret-file "$W/theirs"
	has "$ERR" "theirs"
	log "an export file uid 65534 planted (its own, mode 0600) is refused before it is read"
	cp "$W/all.keys" "$W/planted.keys"
	chown 65534:65534 "$W/planted.keys"
	chmod 0600 "$W/planted.keys"
	t 7 tdekey import --wallet "$W/B" --from "$W/planted.keys" --secret-file "$W/secret"
	has "$ERR" "planted.keys is owned by uid 65534"
	log "uid 65534 cannot read the export file"
	as_nobody cat "$W/all.keys" >/dev/null 2>&1 && fail "uid 65534 read the export file"
	as_nobody "$TDEKEY_BIN" import --wallet "$W/B" --from "$W/all.keys" \
		--secret-file "$W/secret" </dev/null >/dev/null 2>&1 &&
		fail "uid 65534 imported into B"
else
	log "not root: the checks of files owned by uid 65534 are left out"
fi
[[ ! -e $W/x.keys ]] || fail "a refused export left $W/x.keys"

log "merge: another wallet's keys, idempotently, nothing overwritten"
t 4 tdekey merge --wallet "$W/B" --from "$W/P" --from-password-file "$W/wrong"
t 4 tdekey merge --wallet "$W/B" --from "$W/P" # a password wallet, no terminal
has "$ERR" "--from-password-file"
P_KEY=$(tdekey keys --wallet "$W/P" --password-file "$W/p-password" --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["keys"][0]["key_id"])')
BEFORE=$(backups "$W/B")
t 0 tdekey merge --wallet "$W/B" --from "$W/P" --from-password-file "$W/p-password" --json
has "$OUT" '"merged": 1'
[[ $(key_field "$W/B" "$P_KEY" origin) == IMPORTED ]] || fail "merged key is not IMPORTED"
[[ $(key_field "$W/B" "$P_KEY" state) != ACTIVE ]] || fail "merge made P's key active"
[[ $(key_field "$W/B" "$B_ACTIVE" state) == ACTIVE ]] || fail "merge moved B's active key"
t 0 tdekey merge --wallet "$W/B" --from "$W/P" --from-password-fd 3 --json 3<"$W/p-password"
has "$OUT" '"merged": 0'
[[ $(backups "$W/B") == $((BEFORE + 1)) ]] || fail "a merge that adds nothing wrote the wallet"
t 0 tdekey merge --wallet "$W/B" --from "$W/A"
has "$OUT" "merged 2 master keys"
key_ids "$W/A" | while read -r k; do
	key_ids "$W/B" | grep -qx "$k" || fail "key $k of A is not in B after the merge"
done
# A wallet holding one of B's key IDs with other bytes: refused, naming the key.
t 0 tdekey create --wallet "$W/D" --auto-login --no-key "${COST[@]}"
t 0 tdekey import --wallet "$W/D" --from "$W/conflict.keys" --secret-file "$W/secret"
COUNT=$(key_ids "$W/B" | wc -l)
t 17 tdekey merge --wallet "$W/B" --from "$W/D"
has "$ERR" "$FIRST"
[[ $(key_ids "$W/B" | wc -l) == "$COUNT" ]] || fail "a refused merge added keys"
# The other wallet's directory must pass strict modes too.
chmod 0777 "$W/D"
t 7 tdekey merge --wallet "$W/B" --from "$W/D"
chmod 0700 "$W/D"
t 3 tdekey merge --wallet "$W/B" --from "$W/nowhere"
t 2 tdekey merge --wallet "$W/B"

log "CREATOR: the real user and host; kept by import and merge; unknown in an old wallet"
ME="$(id -un)@$(hostname)"
ME=${ME:0:64}
creators() { # creators WALLET: key_id creator (None when unknown), one a line
	tdekey keys --wallet "$1" --json | python3 -c 'import json,sys
for k in json.load(sys.stdin)["keys"]: print(k["key_id"], k["creator"])'
}
while read -r id creator; do
	[[ $creator == "$ME" ]] || fail "key $id of A: creator $creator, expected $ME"
done < <(creators "$W/A")
t 0 tdekey keys --wallet "$W/A"
has "$OUT" "CREATOR"
has "$OUT" " $ME "
# SUDO_USER is the caller's to set: it changes nothing.
t 0 env SUDO_USER=mallory "$TDEKEY_BIN" create-key --wallet "$W/A" --tag sudo
SUDO_KEY=$(tdekey keys --wallet "$W/A" --json | python3 -c 'import json,sys
print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["tag"] == "sudo"][0])')
[[ $(key_field "$W/A" "$SUDO_KEY" creator) == "$ME" ]] || fail "SUDO_USER changed the creator"
# An export file made elsewhere (creator vectors@test): import keeps it, and so does a merge.
ELSEWHERE_KEY=7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e
python3 "$VECTORS" write "$W/elsewhere.keys" "$W/secret" "$B_ID" \
	"$ELSEWHERE_KEY:$(printf '5a%.0s' {1..32})"
t 0 tdekey create --wallet "$W/E" --auto-login --no-key "${COST[@]}"
t 0 tdekey import --wallet "$W/E" --from "$W/elsewhere.keys" --secret-file "$W/secret"
[[ $(key_field "$W/E" "$ELSEWHERE_KEY" creator) == vectors@test ]] ||
	fail "import did not keep the source's creator"
t 0 tdekey create --wallet "$W/F" --auto-login --no-key "${COST[@]}"
t 0 tdekey merge --wallet "$W/F" --from "$W/E"
[[ $(key_field "$W/F" "$ELSEWHERE_KEY" creator) == vectors@test ]] ||
	fail "merge did not keep the source's creator"
# A wallet of release 0.1.0 (format version 1): creator unknown, '-' and null; the next change
# writes version 2 with the old keys still unknown and the new one recorded; an export of it
# carries both.
cp -r "$TDEFS_SRC/tests/compat/release-0.1.0/wallet" "$W/old"
chmod -R go-rwx "$W/old"
OLD_PW="$TDEFS_SRC/tests/compat/release-0.1.0/password.txt"
cp "$OLD_PW" "$W/old-password"
chmod 600 "$W/old-password"
version() { python3 -c 'import sys; print(int.from_bytes(open(sys.argv[1], "rb").read()[8:10], "little"))' "$1"; }
[[ $(version "$W/old/password.wallet") == 1 ]] || fail "the sample is not format version 1"
mapfile -t OLD < <(creators "$W/old")
[[ ${#OLD[@]} -ge 1 ]] || fail "the sample wallet lists no key"
for line in "${OLD[@]}"; do [[ $line == *" None" ]] || fail "old key with a creator: $line"; done
t 0 tdekey keys --wallet "$W/old"
rows=$(awk 'NR > 2 && length($1) == 32 && $1 ~ /^[0-9a-f]+$/' <<<"$OUT" | wc -l)
dashes=$(awk -v c="$(awk 'NR == 2 { for (i = 1; i <= NF; i++) if ($i == "CREATOR") print i }' <<<"$OUT")" \
	'NR > 2 && length($1) == 32 && $1 ~ /^[0-9a-f]+$/ && $c == "-"' <<<"$OUT" | wc -l)
[[ $rows -ge 1 && $rows == "$dashes" ]] || fail "old keys should show CREATOR '-': $OUT"
t 0 tdekey set-key --wallet "$W/old" --password-file "$W/old-password" --tag after-upgrade
[[ $(version "$W/old/password.wallet") == 2 ]] || fail "the change did not write version 2"
[[ $(version "$W/old/autologin.wallet") == 2 ]] || fail "the auto-login copy is not version 2"
NEW_KEY=$(tdekey keys --wallet "$W/old" --json | python3 -c 'import json,sys
print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["tag"] == "after-upgrade"][0])')
[[ $(key_field "$W/old" "$NEW_KEY" creator) == "$ME" ]] || fail "new key has no creator"
for line in "${OLD[@]}"; do
	[[ $(key_field "$W/old" "${line%% *}" creator) == None ]] || fail "upgrade invented a creator"
done
t 0 tdekey export --wallet "$W/old" --all --to "$W/old.keys" --secret-file "$W/secret" "${COST[@]}"
[[ $(python3 -c 'import sys; print(int.from_bytes(open(sys.argv[1], "rb").read()[8:10], "little"))' "$W/old.keys") == 2 ]] ||
	fail "export is not version 2"
t 0 tdekey create --wallet "$W/G" --auto-login --no-key "${COST[@]}"
t 0 tdekey import --wallet "$W/G" --from "$W/old.keys" --secret-file "$W/secret"
[[ $(key_field "$W/G" "$NEW_KEY" creator) == "$ME" ]] || fail "export lost the creator"
[[ $(key_field "$W/G" "${OLD[0]%% *}" creator) == None ]] || fail "export invented a creator"

pass
