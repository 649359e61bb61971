#!/bin/bash
# tdekey reverse-migrate from a KMIP wallet (PyKMIP on loopback): a file wallet migrated
# --to-kmip, files written under the source's key (linked), the server's first key and, after a
# set-key on the KMIP wallet, its second; reverse-migrate copies every key into a new auto-login
# wallet with the same key IDs, states (the ACTIVE key stays ACTIVE), wallet ID and container,
# and leaves the KMIP wallet and the server as they were. With the server stopped and the
# source wallet moved away, the backing directory mounts with the new wallet, every file reads
# back byte-exact and a new file goes under the same ACTIVE key. Refused, each leaving no
# wallet: --to missing, --to a directory that holds a wallet, a DIR.partial left by a crash,
# --tag (no key is made), a KMIP wallet whose server is down (named), and uid 65534 on root's
# KMIP wallet.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"
is_plain && skip "needs the real mount"
need_build "$TDEKEY_BIN" "$TDEFS_TEST_HELPER"
kmip_need
kmip_loopback "$TDEFS_WORK/tls"
json_field() { /usr/bin/python3 -c "import json,sys; v=json.load(sys.stdin)[\"$1\"]; print('null' if v is None else v)"; }
key_of() { "$TDEFS_TEST_HELPER" key-id "$W/backing/$1"; }
# "ID=STATE ..." of a wallet's keys, sorted.
keys_of() {
	"$TDEKEY_BIN" keys --wallet "$1" --json </dev/null | /usr/bin/python3 -c 'import json,sys
print(" ".join(sorted(k["key_id"] + "=" + k["state"] for k in json.load(sys.stdin)["keys"])))'
}
write_files() { # PREFIX: files of many sizes, one sparse
	local i
	for i in 1 2 3 4; do head -c $((i * 37001)) /dev/urandom >"$W/mnt/$1-$i"; done
	printf 'small %s\n' "$1" >"$W/mnt/$1-small"
	truncate -s 3M "$W/mnt/$1-sparse"
	printf 'tail' >>"$W/mnt/$1-sparse"
}

# A file wallet, its files, migrated to the key server (the source stays linked).
"$TDEKEY_BIN" create --wallet "$W/wallet" --auto-login </dev/null >/dev/null 2>"$W/err" || fail "create: $(cat "$W/err")"
tdefs_init_backing "$W/wallet" "$W/backing"
tdefs_mount "$W/wallet" "$W/backing" "$W/mnt"
write_files local
tdefs_umount "$W/mnt"
"$TDEKEY_BIN" migrate --wallet "$W/wallet" --to-kmip "$W/kms" --kmip-server "$S" --tls-wallet "$W/tls" \
	</dev/null >/dev/null 2>"$W/err" || fail "migrate --to-kmip: $(cat "$W/err")"
tdefs_mount "$W/kms" "$W/backing" "$W/mnt"
write_files kmip1
tdefs_umount "$W/mnt"
"$TDEKEY_BIN" set-key --wallet "$W/kms" </dev/null >/dev/null 2>"$W/err" || fail "set-key on the KMIP wallet: $(cat "$W/err")"
tdefs_mount "$W/kms" "$W/backing" "$W/mnt"
write_files kmip2
(cd "$W/mnt" && sha256sum -- *) >"$W/sums"
tdefs_umount "$W/mnt"
local_key=$(key_of local-1) k1=$(key_of kmip1-1) k2=$(key_of kmip2-1)
[[ $local_key != "$k1" && $k1 != "$k2" && $local_key != "$k2" ]] || fail "the files are not under three keys: $local_key $k1 $k2"
kms_keys=$(keys_of "$W/kms")
[[ $kms_keys == *"$k2=ACTIVE"* && $kms_keys == *"$k1=RETIRED"* && $kms_keys == *"$local_key="* ]] ||
	fail "the KMIP wallet's keys: $kms_keys"
wallet_id=$(grep '^wallet-id ' "$W/kms/kmip.wallet" | cut -d' ' -f2)
sha256sum "$W/kms/kmip.wallet" >"$W/kmip.wallet.sum"
log "files under the linked key $local_key, the server's $k1 and (ACTIVE) $k2"

# --- bad input -------------------------------------------------------------------------------
rc=0
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" </dev/null >/dev/null 2>"$W/err" || rc=$?
[[ $rc == 2 ]] || fail "--to missing: exit $rc"
grep -q -- "--to DIR" "$W/err" || fail "--to missing: $(cat "$W/err")"
"$TDEKEY_BIN" create --wallet "$W/occupied" --auto-login </dev/null >/dev/null 2>&1 || fail "create occupied"
sha256sum "$W/occupied/autologin.wallet" >"$W/occupied.sum"
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/occupied" </dev/null >/dev/null 2>"$W/err" &&
	fail "reverse-migrate into a directory that holds a wallet"
grep -q -- "--to $W/occupied is not empty (a wallet is there)" "$W/err" || fail "occupied: $(cat "$W/err")"
sha256sum -c --quiet "$W/occupied.sum" || fail "the wallet in the occupied directory changed"
[[ ! -e $W/occupied.partial ]] || fail "occupied: a partial directory was left"
mkdir "$W/back.partial"
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/back" </dev/null >/dev/null 2>"$W/err" &&
	fail "reverse-migrate beside a leftover back.partial"
grep -q "$W/back.partial is left from a run that did not finish; remove it" "$W/err" || fail "leftover: $(cat "$W/err")"
[[ ! -e $W/back && -z $(ls -A "$W/back.partial") ]] || fail "leftover: something was made"
rmdir "$W/back.partial"
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/back" --tag x </dev/null >/dev/null 2>"$W/err" &&
	fail "reverse-migrate --tag on a KMIP wallet"
grep -q "is a KMIP wallet: its keys are copied as they are" "$W/err" || fail "--tag: $(cat "$W/err")"
# uid 65534 on root's KMIP wallet, into a directory it may write: refused, nothing made.
mkdir -m 0700 "$W/nobody"
chown 65534:65534 "$W/nobody"
as_nobody "$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/nobody/back" </dev/null >/dev/null 2>"$W/err" &&
	fail "uid 65534 copied root's KMIP wallet"
grep -Eq "permission denied|belongs to uid 0" "$W/err" || fail "uid 65534: $(cat "$W/err")"
[[ -z $(ls -A "$W/nobody") ]] || fail "uid 65534: $(ls -A "$W/nobody") was made"
# The same refusal past the directory check: a KMIP wallet root owns but others may enter.
cp -a "$W/kms" "$W/kms-open"
chmod 0755 "$W/kms-open"
as_nobody "$TDEKEY_BIN" reverse-migrate --wallet "$W/kms-open" --to "$W/nobody/back" </dev/null >/dev/null 2>"$W/err" &&
	fail "uid 65534 copied root's readable KMIP wallet"
grep -q "wallet $W/kms-open belongs to uid 0, not to you (uid 65534)" "$W/err" || fail "uid 65534 (open): $(cat "$W/err")"
[[ -z $(ls -A "$W/nobody") ]] || fail "uid 65534 (open): $(ls -A "$W/nobody") was made"
rm -rf "$W/kms-open"
# Into a directory others may write (not sticky): the new wallet fails strict modes after
# DIR.partial was made; the run removes its own DIR.partial and says why, in one line.
mkdir -m 0777 "$W/common"
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/common/back" </dev/null >/dev/null 2>"$W/err" &&
	fail "reverse-migrate into a directory others may write"
[[ $(wc -l <"$W/err") == 1 ]] || fail "common: expected one line: $(cat "$W/err")"
grep -q "$W/common" "$W/err" || fail "common: the message does not name the directory: $(cat "$W/err")"
[[ -z $(ls -A "$W/common") ]] || fail "common: $(ls -A "$W/common") was left"
rmdir "$W/common"

# --- the reverse migration, into an empty directory ---------------------------------------------
mkdir -m 0700 "$W/back"
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/back" </dev/null >"$W/reverse.out" 2>"$W/err" ||
	fail "reverse-migrate: $(cat "$W/err")"
grep -q "^created AUTOLOGIN wallet $W/back with the 3 master keys of KMIP wallet $W/kms (wallet ID $wallet_id" "$W/reverse.out" ||
	fail "reverse-migrate said: $(cat "$W/reverse.out")"
grep -q "^active master key $k2, as on the key server: no rewrap is needed$" "$W/reverse.out" || fail "$(cat "$W/reverse.out")"
grep -q "left as they were: no key was revoked or destroyed" "$W/reverse.out" || fail "$(cat "$W/reverse.out")"
grep -q "now mount with --wallet $W/back" "$W/reverse.out" || fail "$(cat "$W/reverse.out")"
[[ ! -e $W/back.partial ]] || fail "back.partial is left after a run that finished"
[[ $(stat -c '%a %u %F' "$W/back") == "700 0 directory" ]] || fail "the new wallet directory: $(stat -c '%a %u %F' "$W/back")"
[[ -f $W/back/autologin.wallet && ! -e $W/back/password.wallet && ! -e $W/back/kmip.wallet ]] ||
	fail "the new wallet holds: $(ls "$W/back")"
[[ $(keys_of "$W/back") == "$kms_keys" ]] || fail "the new wallet's keys $(keys_of "$W/back"), the KMIP wallet's $kms_keys"
"$TDEKEY_BIN" status --wallet "$W/back" --json </dev/null >"$W/status.json" || fail "status of the new wallet"
grep -q "\"wallet_id\": \"$wallet_id\"" "$W/status.json" || fail "the new wallet has another wallet ID: $(cat "$W/status.json")"
sha256sum -c --quiet "$W/kmip.wallet.sum" || fail "kmip.wallet changed"
# Nothing was revoked or destroyed on the server: the keys are fetched again, as JSON this time.
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/again" --json </dev/null >"$W/again.json" 2>"$W/err" ||
	fail "a second reverse-migrate: $(cat "$W/err")"
[[ $(json_field active_key_id <"$W/again.json") == "$k2" && $(json_field keys <"$W/again.json") == 3 &&
	$(json_field kmip_wallet_unchanged <"$W/again.json") == True ]] || fail "JSON: $(cat "$W/again.json")"
log "reverse-migrated: $W/back holds $kms_keys; kmip.wallet unchanged, the server still serves every key"

# --- the server down: refused, naming it, nothing made; the new wallet mounts without it -------
kmip_server_stop
rc=0
"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/down" </dev/null >/dev/null 2>"$W/err" || rc=$?
[[ $rc == 30 ]] || fail "reverse-migrate with the server down: exit $rc, not 30 (no key server)"
grep -q "cannot fetch the keys of KMIP wallet $W/kms: .*$S" "$W/err" || fail "server down: $(cat "$W/err")"
[[ ! -e $W/down && ! -e $W/down.partial ]] || fail "server down: a wallet directory was made"
mv "$W/wallet" "$W/wallet.moved" # the source the KMIP wallet linked: not needed any more
tdefs_mount "$W/back" "$W/backing" "$W/mnt"
(cd "$W/mnt" && sha256sum -c --quiet "$W/sums") || fail "the files do not read back through the new wallet"
echo new >"$W/mnt/after"
tdefs_umount "$W/mnt"
[[ $(key_of after) == "$k2" ]] || fail "a new file is under $(key_of after), not the ACTIVE key $k2"
log "server stopped, source moved away: every file read back byte-exact with --wallet $W/back; new files under $k2"
pass
