#!/usr/bin/env bash
# HSM wallets over PKCS#11, with SoftHSM2 (a token made for this test in its own SOFTHSM2_CONF
# directory, so no other test or helper shares it):
#  1. tdekey create --hsm-module --token-label --pin-file makes hsm.wallet (no key material)
#     and an AES-256 key on the token; tdekey keys says KEYSTORE_TYPE HSM; the key is sensitive
#     and never extractable: C_GetAttributeValue(CKA_VALUE) fails (pkcs11-tool --read-object);
#  2. tdefs --pin-file mounts (foreground, and in the background, where the daemon connects to
#     the token again after daemonising); data written reads back after a remount; headers
#     carry cipher suite 2; tdefs --check with the wallet unseals every header;
#  3. rotation: set-key on the running mount, rewrap, keys --usage, guarded delete-key; the
#     files still read; a backup was taken before each change;
#  4. the PIN from --pin-fd, and from the external store (add-secret --pin-file) for a mount
#     with no PIN option;
#  5. bad input, each one line and its own exit code (looked up in the man page by meaning):
#     wrong PIN, missing module, no such token, the active key not on the token, a token that
#     lacks AES-GCM (p11-kit's trust module), a damaged hsm.wallet;
#  6. attacks as uid 65534: a module it may write, a module in a directory it may write, an
#     hsm.wallet it owns, a PIN file it owns: each refused before the module is loaded or the
#     file is used; the PIN is in no command line, no log and no wallet file;
#  7. PostgreSQL initdb --data-checksums, pgbench and pg_checksums --check on the HSM-keyed
#     mount, also after a remount.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd softhsm2-util softhsm2
need_cmd pkcs11-tool opensc
MODULE=${TDEFS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[[ -f $MODULE ]] || skip "no SoftHSM2 module at $MODULE"
TRUST_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so
TDEREKEY_BIN=$TDEFS_BUILD/tools/tderekey/tderekey

# The exit code whose EXIT STATUS text in tdekey.8 begins with these words.
code_for() {
	python3 - "$TDEFS_SRC/man/tdekey.8.scd" "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
section = re.search(r"^# EXIT STATUS\n(.*?)(?=^# |\Z)", text, re.S | re.M).group(1)
for code, body in re.findall(r"^\*(\d+)\*\n((?:\t.*\n?)+)", section, re.M):
    if " ".join(body.replace("\\", "").split()).lower().startswith(sys.argv[2].lower()):
        print(code)
        break
else:
    sys.exit("no exit code means: " + sys.argv[2])
EOF
}
EXIT_WRONG_PIN=$(code_for "HSM wallet: the token refused the PIN")
EXIT_MODULE=$(code_for "HSM wallet: the PKCS#11 module is missing")
EXIT_TOKEN_ABSENT=$(code_for "HSM wallet: no token with the wallet's label")
EXIT_KEY_NOT_ON_TOKEN=$(code_for "HSM wallet: a master key of the wallet is not on the token")
EXIT_MECHANISM=$(code_for "HSM wallet: the token lacks AES-256 key generation or")
EXIT_PERMISSIONS=$(code_for "auto-login wallet or external store open to group or others")
EXIT_DAMAGED=$(code_for "wallet damaged")

# ---- the token ------------------------------------------------------------------------------
export SOFTHSM2_CONF=$TDEFS_WORK/softhsm2.conf
mkdir -m 0700 "$TDEFS_WORK/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$TDEFS_WORK" >"$SOFTHSM2_CONF"
PIN=hsm-test-pin-$RANDOM$RANDOM
softhsm2-util --init-token --free --label tde --so-pin 0000 --pin "$PIN" >/dev/null ||
	fail "softhsm2-util --init-token failed"
pin=$TDEFS_WORK/pin
printf '%s\n' "$PIN" >"$pin"
chmod 0600 "$pin"
p11() { pkcs11-tool --module "$MODULE" --token-label tde --login --pin "$PIN" "$@"; }

# One line on stderr and the expected exit status.
expect_failure() { # CODE WORDS CMD...
	local code=$1 words=$2 rc=0
	shift 2
	"$@" </dev/null >"$TDEFS_WORK/out" 2>"$TDEFS_WORK/err" || rc=$?
	grep -v 'syslog cannot be reached' "$TDEFS_WORK/err" >"$TDEFS_WORK/err.lines" || true
	[[ $rc == "$code" ]] || fail "$* exited $rc, not $code: $(cat "$TDEFS_WORK/err")"
	(($(wc -l <"$TDEFS_WORK/err.lines") == 1)) ||
		fail "$* did not say it in one line: $(cat "$TDEFS_WORK/err.lines")"
	grep -q -- "$words" "$TDEFS_WORK/err.lines" ||
		fail "$*: the message does not say '$words': $(cat "$TDEFS_WORK/err.lines")"
	! grep -qF -f "$pin" "$TDEFS_WORK/err.lines" "$TDEFS_WORK/out" || fail "$*: the PIN is in its output"
}

# ---- 1. create -------------------------------------------------------------------------------
W=$TDEFS_WORK/wallet B=$TDEFS_WORK/backing M=$TDEFS_WORK/mnt
TDEFS_MNT=$M
"$TDEKEY_BIN" create --wallet "$W" --hsm-module "$MODULE" --token-label tde --pin-file "$pin" \
	</dev/null >"$TDEFS_WORK/create.log" 2>&1 || fail "tdekey create --hsm-module failed: $(cat "$TDEFS_WORK/create.log")"
[[ -f $W/hsm.wallet && ! -e $W/password.wallet && ! -e $W/autologin.wallet ]] ||
	fail "create made other files than hsm.wallet: $(ls "$W")"
key1=$("$TDEKEY_BIN" keys --wallet "$W" --pin-file "$pin" --json 2>/dev/null |
	python3 -c 'import json, sys
d = json.load(sys.stdin)
assert d["type"] == "HSM", d["type"]
(k,) = d["keys"]
assert k["keystore_type"] == "HSM" and k["state"] == "ACTIVE", k
print(k["key_id"])') || fail "tdekey keys does not list one ACTIVE key of KEYSTORE_TYPE HSM"
grep -q "^key $key1 ACTIVE " "$W/hsm.wallet" || fail "hsm.wallet does not map key $key1"
p11 -O --type secrkey >"$TDEFS_WORK/objects" 2>&1 || fail "pkcs11-tool cannot list the token's keys"
grep -q "ID: *$key1" "$TDEFS_WORK/objects" || fail "the token holds no object with CKA_ID $key1"
grep -A4 "ID: *$key1" "$TDEFS_WORK/objects" | grep -q "sensitive.*never extractable" ||
	fail "the master key is not sensitive and never extractable: $(cat "$TDEFS_WORK/objects")"
if p11 --read-object --type secrkey --id "$key1" -o "$TDEFS_WORK/value" >"$TDEFS_WORK/read.log" 2>&1; then
	fail "C_GetAttributeValue(CKA_VALUE) of the master key succeeded"
fi
grep -q CKR_ATTRIBUTE_SENSITIVE "$TDEFS_WORK/read.log" ||
	fail "reading CKA_VALUE did not fail as sensitive: $(cat "$TDEFS_WORK/read.log")"
[[ ! -s $TDEFS_WORK/value ]] || fail "pkcs11-tool wrote key bytes"
log "create: hsm.wallet, one ACTIVE HSM key, sensitive and not extractable"

# ---- 2. mount, write, remount --------------------------------------------------------------
mkdir -m 0700 "$B"
mkdir -m 0755 "$M"
"$TDEFS_BIN" --init --wallet "$W" --pin-file "$pin" "$B" </dev/null >/dev/null 2>&1 || fail "tdefs --init failed"
tdefs_mount "$W" "$B" "$M" --pin-file "$pin"
head -c 300000 /dev/urandom >"$TDEFS_WORK/data.ref"
cp "$TDEFS_WORK/data.ref" "$M/data"
for i in $(seq 1 20); do echo "file $i" >"$M/small-$i"; done
tdefs_umount "$M"
python3 - "$B/data" <<'EOF' || fail "the header does not record cipher suite 2 in both copies"
import struct, sys
head = open(sys.argv[1], "rb").read(4096)
assert all(struct.unpack_from("<H", head, 2048 * c + 10)[0] == 2 for c in (0, 1))
EOF
# In the background: the daemon that stays after the fork connects to the token again.
"$TDEFS_BIN" --wallet "$W" --pin-file "$pin" -o "log=$TDEFS_WORK/bg.log" "$B" "$M" </dev/null \
	>"$TDEFS_WORK/bg.out" 2>&1 || fail "a background mount failed: $(cat "$TDEFS_WORK/bg.out")"
on_exit "fusermount3 -u '$M' 2>/dev/null || true"
cmp -s "$TDEFS_WORK/data.ref" "$M/data" || fail "the data does not read back after a remount"
[[ $(cat "$M/small-7") == "file 7" ]] || fail "a small file does not read back"
echo "after the fork" >"$M/new-in-background" || fail "a background daemon cannot create a file"
fusermount3 -u "$M"
for ((i = 0; i < 100; i++)); do pgrep -f -- "$B $M" >/dev/null || break; sleep 0.1; done
"$TDEFS_BIN" --check --wallet "$W" --pin-file "$pin" "$B" </dev/null >"$TDEFS_WORK/check.log" 2>&1 ||
	fail "tdefs --check with the HSM wallet found problems: $(cat "$TDEFS_WORK/check.log")"
grep -q "22 files.* 0 problems" "$TDEFS_WORK/check.log" || fail "tdefs --check: $(tail -1 "$TDEFS_WORK/check.log")"
log "mount, write, remount (foreground and background), check: the token unseals every header"

# ---- 3. rotation, rewrap, usage, delete ----------------------------------------------------
tdefs_mount "$W" "$B" "$M" --pin-file "$pin"
"$TDEKEY_BIN" set-key --wallet "$W" --pin-file "$pin" </dev/null >/dev/null 2>&1 || fail "set-key on an HSM wallet failed"
ls "$W"/backup/hsm-*-g1.wallet >/dev/null 2>&1 || fail "set-key took no backup of hsm.wallet first"
key2=$("$TDEKEY_BIN" keys --wallet "$W" --pin-file "$pin" --json 2>/dev/null |
	python3 -c 'import json, sys; print([k["key_id"] for k in json.load(sys.stdin)["keys"] if k["state"] == "ACTIVE"][0])')
[[ $key2 != "$key1" ]] || fail "set-key did not make a new active key"
p11 -O --type secrkey 2>/dev/null | grep -q "ID: *$key2" || fail "the new key is not on the token"
# The daemon takes the new key up (wallet watch) before the rewrap needs it.
for ((i = 0; i < 100; i++)); do grep -q "active $key2" "$(tdefs_daemon_log "$M")" && break; sleep 0.1; done
expect_failure "$(code_for "delete-key: file headers still reference the key")" "is still used by 22 file headers" \
	"$TDEKEY_BIN" delete-key --wallet "$W" --pin-file "$pin" --backing "$B" "$key1"
"$TDEREKEY_BIN" rewrap "$M" </dev/null >"$TDEFS_WORK/rewrap.log" 2>&1 || fail "rewrap failed: $(cat "$TDEFS_WORK/rewrap.log")"
"$TDEKEY_BIN" keys --wallet "$W" --pin-file "$pin" --usage "$B" --json 2>/dev/null |
	python3 -c 'import json, sys
d = json.load(sys.stdin)
files = {k["key_id"]: k["files"] for k in d["keys"]}
assert files["'"$key1"'"] == 0 and files["'"$key2"'"] == 22, files' ||
	fail "keys --usage does not show every header moved to the new key"
"$TDEKEY_BIN" delete-key --wallet "$W" --pin-file "$pin" --backing "$B" "$key1" </dev/null >/dev/null 2>&1 ||
	fail "delete-key of the rewrapped-away key failed"
cmp -s "$TDEFS_WORK/data.ref" "$M/data" || fail "the data does not read after rotation and rewrap"
# The keystore closed and opened again on the running mount, with the token's PIN.
"$TDEREKEY_BIN" close "$M" </dev/null >/dev/null 2>&1 || fail "tderekey close of an HSM-keyed mount failed"
drop_caches
if cat "$M/small-3" >/dev/null 2>&1; then fail "a file opened with the HSM keystore closed"; fi
"$TDEREKEY_BIN" open "$M" --password-file "$pin" </dev/null >/dev/null 2>&1 || fail "tderekey open with the PIN failed"
[[ $(cat "$M/small-3") == "file 3" ]] || fail "a file does not read after the HSM keystore was opened again"
tdefs_umount "$M"
log "rotation on the token, rewrap, keys --usage, the guarded delete-key, close and open"

# ---- 4. PIN by descriptor, and from the external store ----------------------------------------
"$TDEFS_BIN" --wallet "$W" -f --pin-fd 3 "$B" "$M" 3<"$pin" </dev/null >"$TDEFS_WORK/fd.log" 2>&1 &
fd_pid=$!
for ((i = 0; i < 100; i++)); do mountpoint -q "$M" && break; sleep 0.1; done
mountpoint -q "$M" || fail "--pin-fd did not mount: $(cat "$TDEFS_WORK/fd.log")"
cmp -s "$TDEFS_WORK/data.ref" "$M/data" || fail "the data does not read through a --pin-fd mount"
fusermount3 -u "$M"
wait "$fd_pid" || fail "the --pin-fd daemon exited non-zero"
"$TDEKEY_BIN" add-secret --wallet "$W" --pin-file "$pin" </dev/null >/dev/null 2>&1 || fail "add-secret --pin-file failed"
"$TDEKEY_BIN" keys --wallet "$W" --external-store </dev/null >/dev/null 2>&1 || fail "keys --external-store does not open the HSM wallet"
"$TDEKEY_BIN" status --wallet "$W" --json </dev/null 2>/dev/null | python3 -c 'import json, sys
(w,) = json.load(sys.stdin)["wallets"]
assert w["wrl_type"] == "HSM" and w["type"] == "HSM" and w["status"] == "CLOSED", w' ||
	fail "status without the PIN does not show a CLOSED wallet of WRL_TYPE HSM"
"$TDEKEY_BIN" status --wallet "$W" --pin-file "$pin" --json </dev/null 2>/dev/null | python3 -c 'import json, sys
(w,) = json.load(sys.stdin)["wallets"]
assert w["status"] == "OPEN", w' || fail "status with the PIN does not show the HSM wallet OPEN"
tdefs_mount "$W" "$B" "$M"
cmp -s "$TDEFS_WORK/data.ref" "$M/data" || fail "the data does not read through a mount with the stored PIN"
tdefs_umount "$M"
log "the PIN from --pin-fd, and from the external store"

# ---- 5. bad input ----------------------------------------------------------------------------
wrong=$TDEFS_WORK/wrong-pin
printf 'not-the-pin\n' >"$wrong"
chmod 0600 "$wrong"
expect_failure "$EXIT_WRONG_PIN" "wrong PIN" "$TDEKEY_BIN" keys --wallet "$W" --pin-file "$wrong"
expect_failure "$EXIT_WRONG_PIN" "wrong PIN" "$TDEFS_BIN" --wallet "$W" --pin-file "$wrong" "$B" "$M"
expect_failure "$EXIT_MODULE" "no such file" "$TDEKEY_BIN" create --wallet "$TDEFS_WORK/w-nomod" \
	--hsm-module /usr/lib/no-such-dir/libnothing.so --token-label tde --pin-file "$pin"
expect_failure "$EXIT_MODULE" "does not load" "$TDEKEY_BIN" create --wallet "$TDEFS_WORK/w-notmod" \
	--hsm-module /etc/hostname --token-label tde --pin-file "$pin"
expect_failure "$EXIT_TOKEN_ABSENT" "no HSM token labelled 'nosuch'" "$TDEKEY_BIN" create \
	--wallet "$TDEFS_WORK/w-notoken" --hsm-module "$MODULE" --token-label nosuch --pin-file "$pin"
[[ ! -e $TDEFS_WORK/w-notoken/hsm.wallet ]] || fail "a create that failed left hsm.wallet behind"
if [[ -f $TRUST_MODULE ]]; then
	label=$(pkcs11-tool --module "$TRUST_MODULE" -L 2>/dev/null | sed -n 's/^ *token label *: //p' | head -n 1)
	expect_failure "$EXIT_MECHANISM" "does not offer AES-256 key generation and AES-GCM" \
		"$TDEKEY_BIN" create --wallet "$TDEFS_WORK/w-nogcm" --hsm-module "$TRUST_MODULE" \
		--token-label "$label" --pin-file "$pin"
else
	log "no $TRUST_MODULE: the token without AES-GCM is not tried"
fi
# The active key removed from the token behind the wallet's back.
W2=$TDEFS_WORK/wallet2
"$TDEKEY_BIN" create --wallet "$W2" --hsm-module "$MODULE" --token-label tde --pin-file "$pin" </dev/null >/dev/null 2>&1 ||
	fail "a second HSM wallet on the token could not be made"
key3=$(sed -n 's/^key \([0-9a-f]*\) ACTIVE .*/\1/p' "$W2/hsm.wallet")
p11 --delete-object --type secrkey --id "$key3" >/dev/null 2>&1 || fail "pkcs11-tool cannot remove the key"
expect_failure "$EXIT_KEY_NOT_ON_TOKEN" "is not on HSM token" "$TDEKEY_BIN" keys --wallet "$W2" --pin-file "$pin"
# A damaged hsm.wallet: cut short, and a field changed.
cp "$W/hsm.wallet" "$TDEFS_WORK/hsm.wallet.good"
head -c -4 "$TDEFS_WORK/hsm.wallet.good" >"$W/hsm.wallet"
expect_failure "$EXIT_DAMAGED" "damaged" "$TDEKEY_BIN" keys --wallet "$W" --pin-file "$pin"
sed 's/^generation \([0-9]*\)$/generation 0\1/' "$TDEFS_WORK/hsm.wallet.good" >"$W/hsm.wallet"
expect_failure "$EXIT_DAMAGED" "bad generation" "$TDEFS_BIN" --wallet "$W" --pin-file "$pin" "$B" "$M"
cp "$TDEFS_WORK/hsm.wallet.good" "$W/hsm.wallet"
log "bad input: wrong PIN, missing module, not a module, no token, no AES-GCM, key not on the token, damaged hsm.wallet"

# ---- 6. attacks as uid 65534 ---------------------------------------------------------------
# A module uid 65534 may replace: the file itself, then the directory it is in.
evil=$TDEFS_WORK/evil-dir
mkdir -m 0755 "$evil"
cp "$MODULE" "$evil/libsofthsm2.so"
chown 65534:65534 "$evil/libsofthsm2.so"
as_nobody test -w "$evil/libsofthsm2.so" || fail "uid 65534 cannot write its own module copy"
sed "s|^module .*|module $evil/libsofthsm2.so|" "$TDEFS_WORK/hsm.wallet.good" >"$W/hsm.wallet"
expect_failure "$EXIT_PERMISSIONS" "PKCS#11 module $evil/libsofthsm2.so" \
	"$TDEFS_BIN" --wallet "$W" --pin-file "$pin" "$B" "$M"
chown root:root "$evil/libsofthsm2.so"
chown 65534:65534 "$evil"
expect_failure "$EXIT_PERMISSIONS" "PKCS#11 module directory" \
	"$TDEKEY_BIN" keys --wallet "$W" --pin-file "$pin"
# A link to the real module, planted in a directory uid 65534 owns, is refused too.
rm -f "$evil/libsofthsm2.so"
as_nobody ln -s "$MODULE" "$evil/libsofthsm2.so" || fail "uid 65534 cannot plant a link"
expect_failure "$EXIT_PERMISSIONS" "PKCS#11 module directory" \
	"$TDEFS_BIN" --wallet "$W" --pin-file "$pin" "$B" "$M"
# An hsm.wallet uid 65534 owns (it would choose the module the daemon loads).
cp "$TDEFS_WORK/hsm.wallet.good" "$W/hsm.wallet"
chown 65534:65534 "$W/hsm.wallet"
expect_failure "$EXIT_PERMISSIONS" "hsm.wallet" "$TDEFS_BIN" --wallet "$W" --pin-file "$pin" "$B" "$M"
chown root:root "$W/hsm.wallet"
# A PIN file uid 65534 could have written.
chown 65534:65534 "$wrong"
expect_failure "$EXIT_PERMISSIONS" "wrong-pin" "$TDEFS_BIN" --wallet "$W" --pin-file "$wrong" "$B" "$M"
! mountpoint -q "$M" || fail "a refused mount is mounted"
# The PIN: never in a command line, a log, hsm.wallet or its backups (grep takes it from the
# PIN file, so that its own command line does not carry it).
tdefs_mount "$W" "$B" "$M" --pin-file "$pin"
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -qF -f "$pin" && fail "the PIN is on a command line"
grep -rlF -f "$pin" "$W" "$TDEFS_WORK"/tdefs-*.log "$TDEFS_WORK/bg.log" 2>/dev/null &&
	fail "the PIN is written in the wallet directory or a daemon log"
tdefs_umount "$M"
log "uid 65534: its module, module directory, link, hsm.wallet and PIN file are refused; the PIN is nowhere"

# ---- 7. PostgreSQL on the HSM-keyed mount ------------------------------------------------------
PGBIN=${TDEFS_PGBIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x $PGBIN/initdb ]] || ! id postgres >/dev/null 2>&1; then
	log "no PostgreSQL 15: the database part is not run"
	pass
fi
tdefs_mount "$W" "$B" "$M" --pin-file "$pin"
data=$M/pg/data
socket_dir sock postgres
port=$((54400 + RANDOM % 500))
mkdir -p "$M/pg"
chown postgres:postgres "$M/pg"
chmod 0700 "$M/pg"
touch "$TDEFS_WORK/pg.log"
chown postgres:postgres "$TDEFS_WORK/pg.log"
cd "$TDEFS_WORK"
as_pg() { runuser -u postgres -- env HOME=/var/lib/postgresql PGHOST="$sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres "$@"; }
pg_cleanup() {
	[[ -f $data/postmaster.pid ]] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
}
on_exit pg_cleanup
as_pg "$PGBIN/initdb" --data-checksums -A trust -D "$data" >"$TDEFS_WORK/initdb.log" 2>&1 ||
	{ cat "$TDEFS_WORK/initdb.log" >&2; fail "initdb on the HSM-keyed mount failed"; }
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\n" "$sock" "$port" >>"$data/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$data" -l "$TDEFS_WORK/pg.log" -w -t 120 start >/dev/null || fail "pg_ctl start failed"
as_pg "$PGBIN/pgbench" -i -s 2 -q >"$TDEFS_WORK/pgbench-init.log" 2>&1 || fail "pgbench -i failed"
as_pg "$PGBIN/pgbench" -c 4 -j 2 -T 10 >"$TDEFS_WORK/pgbench.log" 2>&1 ||
	{ cat "$TDEFS_WORK/pgbench.log" >&2; fail "pgbench on the HSM-keyed mount failed"; }
grep -q "number of failed transactions: 0" "$TDEFS_WORK/pgbench.log" || ! grep -q "failed transactions" "$TDEFS_WORK/pgbench.log" ||
	fail "pgbench had failed transactions"
log "pgbench: $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TDEFS_WORK/pgbench.log" | head -n 1) tps on the HSM-keyed mount"
as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null || fail "pg_ctl stop failed"
as_pg "$PGBIN/pg_checksums" --check -D "$data" >/dev/null 2>&1 || fail "pg_checksums --check failed"
tdefs_remount
as_pg "$PGBIN/pg_checksums" --check -D "$data" >/dev/null 2>&1 || fail "pg_checksums --check failed after a remount"
tdefs_umount "$M"
log "PostgreSQL initdb, pgbench and pg_checksums on the HSM-keyed mount"
pass
