#!/usr/bin/env bash
# A copied local auto-login wallet. /etc/machine-id (mode 0444) and the host name are readable
# by every local user, and a backup of /etc carries them; a local auto-login wallet bound to
# them alone opens on any machine told them. Here uid 65534 gets a copy of the wallet directory
# (a leaked backup) together with this host's machine ID and host name and tries to open it
# "elsewhere": it must not open without this host's secret, which uid 65534 cannot read. On the
# host itself, with the secret, it opens.
#
# "This host" and "elsewhere" are played by the test build of tdekey (tests/keystore), which
# takes the host identity from $TDEFS_TEST_HOST_IDENTITY and keeps the host secret in
# $TDEFS_TEST_HOST_SECRET_DIR instead of /var/lib/tdefs; the identity given is exactly what the
# installed tdekey and daemon compute from /etc/machine-id and the host name.
. "$(dirname "$0")/../mounted/lib.sh"
tdekey_test=$TDEFS_BUILD/tests/keystore/tdekey-for-tests
need_build "$tdekey_test"

machine_id=$(tr -d ' \t\r\n' </etc/machine-id 2>/dev/null || true)
[[ -n $machine_id ]] || machine_id=0123456789abcdef0123456789abcdef
identity=$(printf 'machine-id=%s\nhostname=%s' "$machine_id" "$(hostname)")

# This host: its secret directory in place of /var/lib/tdefs, under a root-only parent.
host=$TDEFS_WORK/host
mkdir -m 700 "$host"
secret_dir=$host/var-lib-tdefs
wallet=$TDEFS_WORK/wallet
TDEFS_TEST_HOST_IDENTITY=$identity TDEFS_TEST_HOST_SECRET_DIR=$secret_dir \
	"$tdekey_test" create --wallet "$wallet" --local --tag local >"$TDEFS_WORK/create.out" 2>&1 ||
	fail "tdekey create --local failed: $(cat "$TDEFS_WORK/create.out")"
[[ -f $wallet/local-autologin.wallet ]] || fail "no local-autologin.wallet"
[[ -f $secret_dir/host-secret ]] || fail "tdekey create --local made no host secret"
[[ $(stat -c '%a %u %s' "$secret_dir/host-secret") == "600 0 32" ]] ||
	fail "host secret is $(stat -c '%a %u %s' "$secret_dir/host-secret"), not 600, root's, 32 bytes"
[[ $(stat -c '%a %u' "$secret_dir") == "700 0" ]] ||
	fail "host secret directory is $(stat -c '%a %u' "$secret_dir"), not 700 and root's"
key=$(TDEFS_TEST_HOST_IDENTITY=$identity TDEFS_TEST_HOST_SECRET_DIR=$secret_dir \
	"$tdekey_test" keys --wallet "$wallet" --json | sed -n 's/.*"key_id": "\([0-9a-f]*\)".*/\1/p')
[[ -n $key ]] || fail "the local auto-login wallet does not open on the host that made it"
log "local auto-login wallet with key $key; host secret $secret_dir/host-secret"

# The secret is root's alone: uid 65534 reads neither the file nor the directory.
as_nobody cat "$secret_dir/host-secret" >/dev/null 2>&1 && fail "uid 65534 reads the host secret"
as_nobody ls "$secret_dir" >/dev/null 2>&1 && fail "uid 65534 lists the host secret directory"

# The leak: a copy of the wallet directory, /etc/machine-id and the host name.
attacker=$TDEFS_WORK/attacker
mkdir -m 700 "$attacker"
cp -r "$wallet" "$attacker/stolen-wallet"
cp /etc/machine-id "$attacker/machine-id" 2>/dev/null || echo "$machine_id" >"$attacker/machine-id"
hostname >"$attacker/hostname"
chown -R 65534:65534 "$attacker"
stolen_identity=$(printf 'machine-id=%s\nhostname=%s' "$(tr -d ' \t\r\n' <"$attacker/machine-id")" \
	"$(cat "$attacker/hostname")")
[[ $stolen_identity == "$identity" ]] || fail "test setup: the attacker's identity differs"

# Elsewhere, as uid 65534, with a host secret of their own (made by their own tdekey run).
rc=0
out=$(as_nobody env TDEFS_TEST_HOST_IDENTITY="$stolen_identity" \
	TDEFS_TEST_HOST_SECRET_DIR="$attacker/their-secret" \
	"$tdekey_test" keys --wallet "$attacker/stolen-wallet" 2>&1) || rc=$?
((rc != 0)) || fail "the copied local auto-login wallet opened elsewhere with machine ID and host name: $out"
((rc == 8)) || fail "the copy elsewhere: expected exit 8 (made on another host), got $rc: $out"
grep -q "needs the host secret" <<<"$out" || fail "the refusal does not name the host secret: $out"
grep -q "$key" <<<"$out" && fail "the attacker's output shows the key: $out"
# Nor with this host's secret directory named: they cannot read it.
rc=0
out=$(as_nobody env TDEFS_TEST_HOST_IDENTITY="$stolen_identity" \
	TDEFS_TEST_HOST_SECRET_DIR="$secret_dir" \
	"$tdekey_test" keys --wallet "$attacker/stolen-wallet" 2>&1) || rc=$?
((rc != 0)) || fail "uid 65534 opened the copy with this host's secret directory: $out"
# Another machine, even as its root, with its own host secret: still another host.
other=$TDEFS_WORK/other-host
mkdir -m 700 "$other"
cp -r "$wallet" "$other/wallet"
TDEFS_TEST_HOST_IDENTITY=$identity TDEFS_TEST_HOST_SECRET_DIR=$other/var-lib-tdefs \
	"$tdekey_test" create --wallet "$other/scratch" --local >/dev/null 2>&1 ||
	fail "the other host cannot make a wallet of its own"
rc=0
out=$(TDEFS_TEST_HOST_IDENTITY=$identity TDEFS_TEST_HOST_SECRET_DIR=$other/var-lib-tdefs \
	"$tdekey_test" keys --wallet "$other/wallet" 2>&1) || rc=$?
((rc == 8)) && grep -q "host secret" <<<"$out" ||
	fail "the copy on a host with another secret: expected exit 8 naming the host secret, got $rc: $out"

# The same host, with its secret, still opens it (the copy too: it is the same wallet).
TDEFS_TEST_HOST_IDENTITY=$identity TDEFS_TEST_HOST_SECRET_DIR=$secret_dir \
	"$tdekey_test" keys --wallet "$other/wallet" >/dev/null ||
	fail "the wallet does not open on its own host with its secret"
pass "a copy with machine ID and host name does not open without the root-only host secret"
