#!/usr/bin/env bash
# tdekey reverse-migrate from a KMIP wallet is crash-safe (docs/WALLET.md, "KMIP wallets"):
# killed at every one of its fault points (SIGKILL through TDEFS_FAULT_AT, the fault-injection
# build), it leaves either no DIR or a complete DIR: an auto-login wallet holding every key of
# the KMIP wallet with its state, through which the backing directory mounts and every file
# reads back byte-exact. A DIR.partial left by the kill is refused by the next run, with a
# message naming it; once it is removed the run completes. The KMIP wallet is never changed.
# Needs PyKMIP and a build with -Dfault_injection=true: TDEFS_FAULT_BUILD, else TDEFS_BUILD if
# it is one, else build-fault/ or build-asan/ in the source tree.
. "$(dirname "$0")/lib-reliability.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"
is_plain && skip "needs the real mount"
rel_fault_build tools/tdekey/tdekey
kmip_need
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

kmip_loopback "$TDEFS_WORK/tls"

# A file wallet's files, migrated to the server (the source linked), a second key made there.
"$TDEKEY_BIN" create --wallet "$W/wallet" --auto-login </dev/null >/dev/null 2>"$W/err" || fail "create: $(cat "$W/err")"
tdefs_init_backing "$W/wallet" "$W/backing"
tdefs_mount "$W/wallet" "$W/backing" "$W/mnt"
for i in 1 2; do head -c $((50000 * i + 3)) /dev/urandom >"$W/mnt/old-$i"; done
tdefs_umount "$W/mnt"
"$TDEKEY_BIN" migrate --wallet "$W/wallet" --to-kmip "$W/kms" --kmip-server "$S" --tls-wallet "$W/tls" \
	</dev/null >/dev/null 2>"$W/err" || fail "migrate --to-kmip: $(cat "$W/err")"
"$TDEKEY_BIN" set-key --wallet "$W/kms" </dev/null >/dev/null 2>"$W/err" || fail "set-key: $(cat "$W/err")"
tdefs_mount "$W/kms" "$W/backing" "$W/mnt"
for i in 1 2; do head -c $((60000 * i + 7)) /dev/urandom >"$W/mnt/new-$i"; done
(cd "$W/mnt" && sha256sum -- *) >"$W/sums"
tdefs_umount "$W/mnt"
keys_of() {
	"$TDEKEY_BIN" keys --wallet "$1" --json </dev/null 2>/dev/null | /usr/bin/python3 -c 'import json,sys
print(" ".join(sorted(k["key_id"] + "=" + k["state"] for k in json.load(sys.stdin)["keys"])))'
}
kms_keys=$(keys_of "$W/kms")
[[ $kms_keys == *=ACTIVE* ]] || fail "the KMIP wallet lists no ACTIVE key: $kms_keys"
sha256sum "$W/kms/kmip.wallet" >"$W/kmip.wallet.sum"

R=$W/back
reverse() {
	"$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$R" </dev/null >/dev/null 2>"$W/reverse.err"
}
# DIR is a complete wallet: the KMIP wallet's keys and states, and every file reads through it.
complete() { # WHAT
	[[ ! -e $R.partial ]] || fail "$1: $R.partial is left beside a complete $R"
	[[ $(keys_of "$R") == "$kms_keys" ]] || fail "$1: $R holds $(keys_of "$R"), not $kms_keys"
	tdefs_mount "$R" "$W/backing" "$W/mnt"
	(cd "$W/mnt" && sha256sum -c --quiet "$W/sums") || fail "$1: the files do not read back through $R"
	tdefs_umount "$W/mnt"
}
fault_points() { grep -c '^fault point ' || true; }

points=$(TDEFS_FAULT_TRACE=1 "$TDEKEY_BIN" reverse-migrate --wallet "$W/kms" --to "$W/trace" \
	</dev/null 2>&1 >/dev/null | fault_points)
((points >= 4)) || fail "reverse-migrate passes only $points fault points"
for ((n = 1; n <= points; n++)); do
	rm -rf "$R" "$R.partial"
	rc=0
	TDEFS_FAULT_AT=$n reverse || rc=$?
	[[ $rc == 137 ]] || fail "reverse-migrate was not killed at fault point $n (exit $rc): $(cat "$W/reverse.err")"
	sha256sum -c --quiet "$W/kmip.wallet.sum" || fail "a kill at point $n changed kmip.wallet"
	if [[ -e $R ]]; then
		complete "killed at point $n"
		what="DIR complete"
	else
		if [[ -e $R.partial ]]; then
			rc=0
			reverse || rc=$?
			[[ $rc != 0 ]] || fail "a rerun beside the $R.partial of a kill at point $n succeeded"
			grep -q "$R.partial is left from a run that did not finish; remove it" "$W/reverse.err" ||
				fail "rerun after point $n: $(cat "$W/reverse.err")"
			[[ ! -e $R ]] || fail "a refused rerun after point $n made $R"
			rm -rf "$R.partial"
			what="no DIR, DIR.partial refused and removed"
		else
			what="no DIR"
		fi
		reverse || fail "reverse-migrate after a kill at point $n failed: $(cat "$W/reverse.err")"
		complete "rerun after a kill at point $n"
	fi
	log "reverse-migrate killed at fault point $n of $points: $what; the wallet then mounts and reads every file"
done
pass
