#!/bin/bash
# The KMIP client (kmip/kmip_client.c over crypto/tls_connection.c) against PyKMIP's server on
# loopback, with its CA made by openssl and the client's TLS wallet by tdekey tls: Create,
# Activate, Locate, Get (twice: the same key), Revoke, Destroy, and Get of the destroyed key
# refused; servers tried in order (a dead one first). Each refusal one line with its own exit
# code of tdefs-kmip-probe: a client certificate the server's CA did not sign, an expired one,
# one without the clientAuth usage (the server refuses the operation), a server whose name is
# not in its certificate, a server the wallet does not trust, a server that never answers, and
# one that answers with bytes that are not TTLV. uid 65534 cannot use root's TLS wallet, and a
# TLS wallet uid 65534 could write is refused to root. Needs python3-pykmip and openssl.
. "$(dirname "$0")/../mounted/lib.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"

PROBE=$TDEFS_BUILD/tests/kmip/tdefs-kmip-probe
need_build "$TDEKEY_BIN" "$PROBE"
kmip_need
kmip_loopback "$TDEFS_WORK/client"

# p EXPECTED_EXIT SERVERS WALLET OP [ARG]: the probe with a 5 s timeout; $OUT, $ERR.
p() {
	local expected=$1 status=0
	shift
	"$PROBE" "$1" "$2" "${TIMEOUT_MS:-5000}" "${@:3}" >"$W/out" 2>"$W/err" || status=$?
	OUT=$(cat "$W/out")
	ERR=$(cat "$W/err")
	[[ $status == "$expected" ]] || fail "exit $status, expected $expected: probe $* (stderr: $ERR)"
	[[ $(wc -l <"$W/err") -le 1 ]] || fail "more than one line of error: $ERR"
}
has() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }

# --- the operations -----------------------------------------------------------------------
p 0 "$S" "$W/client" connect
has "$OUT" "connected $S"
p 0 "$S" "$W/client" create tdefs-test-key-1
id=$OUT
[[ -n $id ]] || fail "create gave no identifier"
p 0 "$S" "$W/client" activate "$id"
p 0 "$S" "$W/client" locate tdefs-test-key-1
[[ $OUT == "1 $id" ]] || fail "locate: $OUT (created $id)"
p 0 "$S" "$W/client" locate tdefs-no-such-key
[[ $OUT == "0 " ]] || fail "locate of an absent name: $OUT"
p 0 "$S" "$W/client" get "$id"
digest=$OUT
[[ $digest =~ ^[0-9a-f]{64}$ ]] || fail "get: $OUT"
p 0 "$S" "$W/client" get "$id"
[[ $OUT == "$digest" ]] || fail "a second Get returned another key"
p 0 "$S" "$W/client" create tdefs-test-key-2
id2=$OUT
p 0 "$S" "$W/client" get "$id2"
[[ $OUT != "$digest" ]] || fail "two created keys are the same"
# Servers in order: a port nobody listens on first, then the server.
dead=127.0.0.1:$(kmip_free_port)
p 0 "$dead,$S" "$W/client" get "$id"
[[ $OUT == "$digest" ]] || fail "the second server gave another key"
# Revoke, then Destroy; the destroyed key is refused by the server.
p 0 "$S" "$W/client" revoke "$id"
p 0 "$S" "$W/client" destroy "$id"
p 6 "$S" "$W/client" get "$id"
has "$ERR" "$S refused Get"
p 6 "$S" "$W/client" activate "no-such-object-$RANDOM"
has "$ERR" "refused Activate"
log "create, activate, locate, get, revoke, destroy against PyKMIP"

# --- unreachable servers: each named in the one line ------------------------------------------
p 7 "$dead" "$W/client" connect
has "$ERR" "$dead: Connection refused"
dead2=127.0.0.1:$(kmip_free_port)
p 7 "$dead,$dead2" "$W/client" get "$id2"
has "$ERR" "$dead: Connection refused; $dead2: Connection refused"
# A server that takes the connection and never answers: the timeout ends the handshake.
silent_port=$(kmip_free_port)
/usr/bin/python3 -c "import socket,time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $silent_port)); s.listen(4)
c = s.accept()[0]
time.sleep(30)" &
silent_pid=$!
on_exit "kill $silent_pid 2>/dev/null || true"
sleep 0.3
TIMEOUT_MS=1000 p 7 "127.0.0.1:$silent_port" "$W/client" connect
has "$ERR" "no answer within the timeout"
kill "$silent_pid" 2>/dev/null || true

# --- mutual TLS refusals -------------------------------------------------------------------
# A client whose certificate the server's CA did not sign: the server ends the handshake.
"$TDEKEY_BIN" tls create --wallet "$W/stranger" --auto-login --password-file "$KMIP_PW" </dev/null >/dev/null 2>&1
"$TDEKEY_BIN" tls add-self-signed --wallet "$W/stranger" --dn CN=stranger.test --days 5 \
	--password-file "$KMIP_PW" </dev/null >/dev/null 2>&1
"$TDEKEY_BIN" tls trust --wallet "$W/stranger" --cert "$KMIP_PKI/ca.pem" --password-file "$KMIP_PW" </dev/null >/dev/null 2>&1
p 5 "$S" "$W/stranger" connect
has "$ERR" "the server refused the TLS session"
# An expired client certificate: named before any server is asked.
kmip_client_wallet "$W/expired" db2.test -1
p 3 "$S" "$W/expired" connect
has "$ERR" "the client certificate (CN=db2.test) expired on"
# A certificate without the clientAuth usage: PyKMIP takes the session and refuses the request.
kmip_client_wallet "$W/noeku" db3.test 30 none
p 6 "$S" "$W/noeku" create tdefs-test-key-3
has "$ERR" "refused Create: Authentication Not Successful"
# The server's name: its certificate is for kms.test and 127.0.0.1, not localhost.
p 4 "localhost:$KMIP_PORT" "$W/client" connect
has "$ERR" "the server's certificate: hostname mismatch"
# A wallet that trusts another CA only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other-ca.key" \
	-out "$W/other-ca.pem" -subj "/CN=another CA" -days 30 2>/dev/null
cp -a "$W/client" "$W/distrust"
"$TDEKEY_BIN" tls remove --wallet "$W/distrust" --trusted "CN=tdefs test KMS CA" --password-file "$KMIP_PW" </dev/null >/dev/null 2>&1 ||
	fail "tls remove --trusted"
"$TDEKEY_BIN" tls trust --wallet "$W/distrust" --cert "$W/other-ca.pem" --password-file "$KMIP_PW" </dev/null >/dev/null 2>&1
p 4 "$S" "$W/distrust" connect
has "$ERR" "$S: the server's certificate: self-signed certificate in certificate chain"
log "refused: untrusted client, expired client, no clientAuth, name mismatch, untrusted server, silent server"

# --- a server that answers with what is not TTLV ---------------------------------------------
liar_port=$(kmip_free_port)
/usr/bin/python3 -c "import socket,ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('$KMIP_PKI/server.pem', '$KMIP_PKI/server.key')
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $liar_port)); s.listen(4)
answers = [bytes.fromhex('42007b01ffffff00'), bytes.fromhex('42007b0100000010') + b'not ttlv at all!']
for answer in answers:
    c = ctx.wrap_socket(s.accept()[0], server_side=True)
    c.recv(4096)
    c.sendall(answer)
    c.close()" &
liar_pid=$!
on_exit "kill $liar_pid 2>/dev/null || true"
sleep 0.5
p 8 "127.0.0.1:$liar_port" "$W/client" get "$id2"
has "$ERR" "sent a malformed KMIP response to Get (larger than 64 KiB)"
p 8 "127.0.0.1:$liar_port" "$W/client" get "$id2"
has "$ERR" "sent a malformed KMIP response to Get (not TTLV)"
wait "$liar_pid" 2>/dev/null || true

# --- the KMIP wallet: create, fetch, rotate, delete ----------------------------------------
K=$W/kms
p 0 "$S" "$W/client" wallet-create "$K"
first=$OUT
[[ -f $K/kmip.wallet && $(stat -c %a "$K/kmip.wallet") == 600 ]] || fail "kmip.wallet: $(ls -l "$K")"
grep -q "^key $first ACTIVE " "$K/kmip.wallet" || fail "kmip.wallet lacks the key: $(cat "$K/kmip.wallet")"
# Never key material: the file holds no 32-byte value the server handed out.
p 0 - - wallet-fetch "$K"
[[ $OUT =~ ^$first\ ACTIVE\ [0-9a-f]{64}$ ]] || fail "fetch: $OUT"
first_digest=${OUT##* }
grep -q "$first_digest" "$K/kmip.wallet" && fail "kmip.wallet holds the key's digest"
p 9 "$S" "$W/client" wallet-create "$K"
has "$ERR" "already exists"
p 0 - - wallet-rotate "$K"
second=$OUT
ls "$K"/backup/kmip-*.wallet >/dev/null || fail "no backup before the rotation"
p 0 - - wallet-fetch "$K"
[[ $(sed -n 1p <<<"$OUT") == "$first RETIRED $first_digest" ]] || fail "after rotate: $OUT"
[[ $(sed -n 2p <<<"$OUT") =~ ^$second\ ACTIVE\ [0-9a-f]{64}$ ]] || fail "after rotate: $OUT"
# The server has the keys under their names.
p 0 "$S" "$W/client" locate "tdefs-$(sed -n 's/^wallet-id //p' "$K/kmip.wallet")-$second"
[[ $OUT == 1\ * ]] || fail "the rotated key is not on the server by its name: $OUT"
second_object=${OUT#1 }
first_object=$(awk -v id="$first" '$1 == "key" && $2 == id { print $6 }' "$K/kmip.wallet")
p 9 - - wallet-delete "$K" "$second"
has "$ERR" "is the ACTIVE key"
p 0 - - wallet-delete "$K" "$first"
p 6 "$S" "$W/client" get "$first_object"
has "$ERR" "refused Get"
p 0 - - wallet-fetch "$K"
[[ $(wc -l <<<"$OUT") == 1 && $OUT == "$second ACTIVE "* ]] || fail "after delete: $OUT"
[[ $second_object != "$first_object" ]] || fail "two keys, one object"
# A damaged kmip.wallet is refused with its newest backup named.
cp "$K/kmip.wallet" "$W/kmip.wallet.good"
sed -i 's/^timeout-ms 5000$/timeout-ms 5001/' "$K/kmip.wallet"
p 9 - - wallet-fetch "$K"
has "$ERR" "is damaged: its sha256 line does not match"
has "$ERR" "newest backup: $K/backup/kmip-"
cp "$W/kmip.wallet.good" "$K/kmip.wallet"
# A key destroyed on the server behind the wallet's back: the fetch names it and the refusal.
cp -a "$K" "$W/kms-copy"
p 0 - - wallet-rotate "$W/kms-copy"
third=$OUT
third_object=$(awk -v id="$third" '$1 == "key" && $2 == id { print $6 }' "$W/kms-copy/kmip.wallet")
p 0 "$S" "$W/client" revoke "$third_object"
p 0 "$S" "$W/client" destroy "$third_object"
p 6 - - wallet-fetch "$W/kms-copy"
has "$ERR" "cannot fetch master key $third (KMIP object $third_object): $S refused Get: Item Not Found"
log "kmip.wallet: create, fetch, rotate, guarded delete with revoke and destroy, damage, a destroyed key"

# --- the local attacker (uid 65534) --------------------------------------------------------
if [[ $(id -u) == 0 ]]; then
	as_nobody "$PROBE" "$S" "$W/client" 5000 get "$id2" >"$W/out" 2>"$W/err" &&
		fail "uid 65534 used root's TLS wallet"
	has "$(cat "$W/err")" "$W/client"
	# A TLS wallet uid 65534 owns (it could have planted the key and CA) is refused to root.
	cp -a "$W/client" "$W/planted"
	chown -R 65534:65534 "$W/planted"
	p 9 "$S" "$W/planted" get "$id2"
	has "$ERR" "$W/planted"
	log "uid 65534: root's TLS wallet unreadable, its own planted wallet refused to root"
	# A kmip.wallet in a directory uid 65534 owns (it could name its own server and TLS
	# wallet) is refused to root, and so is one root owns that names a TLS wallet uid 65534 can
	# write.
	cp -a "$K" "$W/kms-planted"
	chown -R 65534:65534 "$W/kms-planted"
	p 9 - - wallet-fetch "$W/kms-planted"
	has "$ERR" "$W/kms-planted"
	mkdir -m 0777 "$W/open"
	cp -a "$W/client" "$W/open/tls"
	chown -R 65534:65534 "$W/open/tls"
	mkdir "$W/kms-open-tls"
	sed "s|^tls-wallet .*|tls-wallet $W/open/tls|" "$K/kmip.wallet" | head -n -1 >"$W/body"
	{ cat "$W/body"; printf 'sha256 %s\n' "$(sha256sum <"$W/body" | cut -d' ' -f1)"; } >"$W/kms-open-tls/kmip.wallet"
	chmod 0600 "$W/kms-open-tls/kmip.wallet"
	p 9 - - wallet-fetch "$W/kms-open-tls"
	has "$ERR" "$W/open"
	as_nobody "$PROBE" - - 0 wallet-fetch "$K" >"$W/out" 2>"$W/err" && fail "uid 65534 fetched root's keys"
	has "$(cat "$W/err")" "$K"
	log "uid 65534: planted kmip.wallet and TLS wallet refused, root's kmip.wallet unreadable"
else
	log "not root: the uid 65534 checks are skipped"
fi
# --- every server down: the fetch names each ------------------------------------------------
kmip_server_stop
p 7 - - wallet-fetch "$K"
has "$ERR" "cannot fetch master key $second"
has "$ERR" "$S: Connection refused"
pass
