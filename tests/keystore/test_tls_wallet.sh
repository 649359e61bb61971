#!/bin/bash
# tdekey tls (docs/WALLET.md "TLS wallet"): every subcommand as a DBA types it, and the wallet
# read by other tools: openssl pkcs12 reads tls.p12 with its password (and tls-autologin.p12
# with none) and finds the certificates and key display shows; keytool lists it (when Java is
# installed); openssl req -verify accepts the CSR; a certificate signed by an openssl-made CA for
# the CSR is added, one for another key refused. Bad input: a wrong password, a truncated and a
# bit-flipped file, DNs OpenSSL does not know, an expired certificate (display warns), options a
# subcommand does not take, a wallet directory writable by others, an auto-login file open to
# others, and uid 65534 reading the wallet. Needs openssl; the uid 65534 checks need root.
. "$(dirname "$0")/../mounted/lib.sh"

need_build "$TDEKEY_BIN"
have openssl || skip "openssl is needed to read the PKCS#12 files"
W=$TDEFS_WORK
umask 077
chmod 0755 "$W" # uid 65534 may traverse, so that only the files' own modes stop it

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
json_field() { # json_field PATH (python expression on j) < JSON
	python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}
have python3 || skip "python3 is needed to read --json"

PW=$W/pw
printf 'tls wallet password\n' >"$PW"
printf 'not the password\n' >"$W/wrong"
T=$W/tls
PWARG=(--password-file "$PW")

# --- create, add-self-signed, display, export-cert ---------------------------------------
t 0 tdekey tls create --wallet "$T" --auto-login "${PWARG[@]}"
[[ -f $T/tls.p12 && -f $T/tls-autologin.p12 ]] || fail "create wrote: $(ls "$T")"
[[ $(stat -c %a "$T") == 700 && $(stat -c %a "$T/tls-autologin.p12") == 600 ]] ||
	fail "modes: $(stat -c '%a %n' "$T" "$T"/*)"
t 11 tdekey tls create --wallet "$T" --auto-login "${PWARG[@]}"
has "$ERR" "already exists"
t 0 tdekey tls display --wallet "$T"
has "$OUT" "no certificates"
# An empty wallet is a PKCS#12 file too.
openssl pkcs12 -in "$T/tls.p12" -info -noout -passin "file:$PW" 2>"$W/ossl" || fail "openssl: $(cat "$W/ossl")"

t 0 tdekey tls add-self-signed --wallet "$T" --dn "CN=db17.example,O=Example\, Inc" --days 30 "${PWARG[@]}"
has "$ERR" "backup $T/backup/tls-"
t 11 tdekey tls add-self-signed --wallet "$T" --dn "CN=again" --days 30 "${PWARG[@]}"
has "$ERR" "remove --user-cert"
t 0 tdekey tls display --wallet "$T" --json
DISPLAY_JSON=$OUT
subject=$(json_field 'j["client_certificate"]["subject"]' <<<"$DISPLAY_JSON")
fpr=$(json_field 'j["client_certificate"]["fingerprint_sha256"]' <<<"$DISPLAY_JSON")
serial=$(json_field 'j["client_certificate"]["serial"]' <<<"$DISPLAY_JSON")
[[ $subject == 'CN=db17.example,O=Example\, Inc' ]] || fail "subject: $subject"
[[ $(json_field 'j["client_certificate"]["self_signed"]' <<<"$DISPLAY_JSON") == True ]] || fail "not self-signed"
[[ $(json_field 'j["client_key"]' <<<"$DISPLAY_JSON") == "EC P-256" ]] || fail "key: $DISPLAY_JSON"
t 0 tdekey tls display --wallet "$T"
has "$OUT" "$fpr"
has "$OUT" "VALID"

# --- interop: openssl and keytool read what display shows -------------------------------
openssl pkcs12 -in "$T/tls.p12" -info -passin "file:$PW" -nokeys -out "$W/certs.pem" 2>"$W/info" ||
	fail "openssl pkcs12 cannot read tls.p12: $(cat "$W/info")"
has "$(cat "$W/info")" "AES-256-CBC"
has "$(cat "$W/info")" "MAC: sha256"
[[ $(openssl x509 -in "$W/certs.pem" -noout -fingerprint -sha256 | cut -d= -f2) == "$fpr" ]] ||
	fail "openssl sees another certificate than display ($fpr)"
[[ $(openssl x509 -in "$W/certs.pem" -noout -serial | cut -d= -f2) == "$serial" ]] || fail "serial differs"
# The key in the file is the certificate's key.
openssl pkcs12 -in "$T/tls.p12" -passin "file:$PW" -nocerts -nodes -out "$W/key.pem" 2>/dev/null
[[ $(openssl pkey -in "$W/key.pem" -pubout | sha256sum) == $(openssl x509 -in "$W/certs.pem" -noout -pubkey | sha256sum) ]] ||
	fail "the key in tls.p12 is not the certificate's"
rm -f "$W/key.pem"
# The auto-login file opens under the empty password.
openssl pkcs12 -in "$T/tls-autologin.p12" -passin pass: -nokeys -out "$W/auto.pem" 2>"$W/info" ||
	fail "openssl cannot read tls-autologin.p12 without a password: $(cat "$W/info")"
cmp -s <(openssl x509 -in "$W/auto.pem" -outform DER) <(openssl x509 -in "$W/certs.pem" -outform DER) ||
	fail "the auto-login copy holds another certificate"
openssl pkcs12 -in "$T/tls.p12" -passin "file:$W/wrong" -nokeys -noout 2>/dev/null &&
	fail "openssl read tls.p12 with a wrong password"
t 0 tdekey tls export-cert --wallet "$T"
[[ $(openssl x509 -noout -fingerprint -sha256 <<<"$OUT" | cut -d= -f2) == "$fpr" ]] || fail "export-cert"

# --- trust a CA made by openssl; remove it by fingerprint and by subject ------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
	-out "$W/ca.pem" -subj "/CN=Test KMS CA/O=Example" -days 30 2>/dev/null
ca_fpr=$(openssl x509 -in "$W/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2)
t 0 tdekey tls trust --wallet "$T" --cert "$W/ca.pem" "${PWARG[@]}"
t 11 tdekey tls trust --wallet "$T" --cert "$W/ca.pem" "${PWARG[@]}"
has "$ERR" "trusted already"
t 0 tdekey tls display --wallet "$T" --json
[[ $(json_field 'j["trusted"][0]["fingerprint_sha256"]' <<<"$OUT") == "$ca_fpr" ]] || fail "trusted: $OUT"
[[ $(json_field 'j["trusted"][0]["subject"]' <<<"$OUT") == "CN=Test KMS CA,O=Example" ]] || fail "trusted: $OUT"
openssl pkcs12 -in "$T/tls.p12" -passin "file:$PW" -nokeys -cacerts 2>/dev/null | openssl x509 -noout -fingerprint -sha256 |
	grep -qF "$ca_fpr" || fail "openssl does not see the trusted CA"
if have keytool; then
	keytool -list -storetype PKCS12 -keystore "$T/tls.p12" -storepass:file "$PW" >"$W/kt" 2>&1 ||
		fail "keytool cannot read tls.p12: $(cat "$W/kt")"
	has "$(cat "$W/kt")" "PrivateKeyEntry"
	has "$(cat "$W/kt")" "trustedCertEntry"
	has "$(cat "$W/kt")" "$fpr"
	keytool -list -storetype PKCS12 -keystore "$T/tls.p12" -storepass:file "$W/wrong" >/dev/null 2>&1 &&
		fail "keytool read tls.p12 with a wrong password"
	log "keytool lists the client key and the trusted CA"
else
	log "keytool not installed: the keytool check is skipped"
fi
t 10 tdekey tls remove --wallet "$T" --trusted "CN=nobody" "${PWARG[@]}"
t 0 tdekey tls remove --wallet "$T" --trusted "$(tr -d : <<<"$ca_fpr" | tr A-F a-f)" "${PWARG[@]}"
t 0 tdekey tls display --wallet "$T" --json
[[ $(json_field 'len(j["trusted"])' <<<"$OUT") == 0 ]] || fail "not removed by fingerprint"
t 0 tdekey tls trust --wallet "$T" --cert "$W/ca.pem" "${PWARG[@]}"
t 0 tdekey tls remove --wallet "$T" --trusted "CN=Test KMS CA,O=Example" "${PWARG[@]}"
t 0 tdekey tls display --wallet "$T" --json
[[ $(json_field 'len(j["trusted"])' <<<"$OUT") == 0 ]] || fail "not removed by subject"

# --- request, a CA-signed certificate, a certificate for another key refused --------------
t 0 tdekey tls remove --wallet "$T" --user-cert "${PWARG[@]}"
t 0 tdekey tls display --wallet "$T" --json
[[ $(json_field 'j["client_certificate"]' <<<"$OUT") == None ]] || fail "user cert still there"
t 10 tdekey tls export-cert --wallet "$T"
t 0 tdekey tls request --wallet "$T" --dn "CN=db17.example,OU=Databases" --key-type rsa-3072 "${PWARG[@]}"
printf '%s\n' "$OUT" >"$W/host.csr"
openssl req -in "$W/host.csr" -verify -noout 2>"$W/verify" || fail "openssl req -verify: $(cat "$W/verify")"
has "$(openssl req -in "$W/host.csr" -noout -subject)" "db17.example"
t 0 tdekey tls display --wallet "$T"
has "$OUT" "client key: RSA 3072, no certificate yet"
openssl x509 -req -in "$W/host.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
	-days 20 -out "$W/host.pem" 2>/dev/null
t 1 tdekey tls add-cert --wallet "$T" --cert "$W/ca.pem" "${PWARG[@]}"
has "$ERR" "not for the client key"
t 0 tdekey tls add-cert --wallet "$T" --cert "$W/host.pem" "${PWARG[@]}"
t 0 tdekey tls trust --wallet "$T" --cert "$W/ca.pem" "${PWARG[@]}"
t 0 tdekey tls display --wallet "$T" --json
[[ $(json_field 'j["client_certificate"]["issuer"]' <<<"$OUT") == "CN=Test KMS CA,O=Example" ]] || fail "issuer: $OUT"
openssl pkcs12 -in "$T/tls.p12" -passin "file:$PW" -clcerts -nokeys 2>/dev/null | openssl verify -CAfile "$W/ca.pem" >/dev/null ||
	fail "the client certificate in tls.p12 does not verify against the CA"

# --- bad input ------------------------------------------------------------------------------
t 4 tdekey tls display --wallet "$T" --password-file "$W/wrong"
has "$ERR" "wrong password for TLS wallet $T/tls.p12"
t 4 tdekey tls trust --wallet "$T" --cert "$W/ca.pem" # a change needs the password: no terminal
t 2 tdekey tls add-self-signed --wallet "$W/x" --dn "XX=foo" "${PWARG[@]}"
has "$ERR" "unknown DN attribute type 'XX'"
t 2 tdekey tls request --wallet "$T" --dn "CN" "${PWARG[@]}"
has "$ERR" "not TYPE=value"
t 2 tdekey tls request --wallet "$T" "${PWARG[@]}"
has "$ERR" "--dn DN is required"
t 2 tdekey tls display --wallet "$T" --dn CN=x
has "$ERR" "takes no --dn"
t 2 tdekey tls add-self-signed --wallet "$T" --dn CN=x --days 0
t 2 tdekey tls add-self-signed --wallet "$T" --dn CN=x --key-type dsa
t 2 tdekey tls frobnicate --wallet "$T"
t 2 tdekey tls remove --wallet "$T" "${PWARG[@]}"
printf 'not a certificate\n' >"$W/junk.pem"
t 2 tdekey tls trust --wallet "$T" --cert "$W/junk.pem" "${PWARG[@]}"
has "$ERR" "no certificate in it"
t 3 tdekey tls display --wallet "$W/none"
# Damaged files: truncated, and one byte flipped (the MAC catches it).
cp -a "$T" "$W/damaged"
head -c 200 "$T/tls-autologin.p12" >"$W/damaged/tls-autologin.p12"
t 5 tdekey tls display --wallet "$W/damaged"
has "$ERR" "is damaged"
has "$ERR" "newest backup: $W/damaged/backup/tls"
cp "$T/tls.p12" "$W/damaged/tls.p12"
size=$(stat -c %s "$W/damaged/tls.p12")
printf '\x5a' | dd of="$W/damaged/tls.p12" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
cmp -s "$T/tls.p12" "$W/damaged/tls.p12" && fail "the flip changed nothing"
t 4 tdekey tls display --wallet "$W/damaged" "${PWARG[@]}"
has "$ERR" "or the file was altered"
# An expired certificate: display warns and says EXPIRED.
faketime_ok=0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
	-out "$W/old.pem" -subj "/CN=Old CA" -not_before 20200101000000Z -not_after 20210101000000Z 2>/dev/null && faketime_ok=1
if ((faketime_ok == 0)); then
	# openssl 3.0 has no -not_after: sign with a CA whose validity is over, via x509 -days.
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/old.key" \
		-subj "/CN=Old CA" -out "$W/old.csr" 2>/dev/null
	openssl x509 -req -in "$W/old.csr" -signkey "$W/old.key" -days -1 -out "$W/old.pem" 2>/dev/null ||
		fail "cannot make an expired certificate"
fi
t 0 tdekey tls trust --wallet "$T" --cert "$W/old.pem" "${PWARG[@]}"
t 0 tdekey tls display --wallet "$T"
has "$OUT" "EXPIRED"
has "$ERR" "warning: the trusted certificate CN=Old CA expired"

# --- strict modes and the local attacker ------------------------------------------------
chmod 0604 "$T/tls-autologin.p12"
t 7 tdekey tls display --wallet "$T"
has "$ERR" "chmod 600 $T/tls-autologin.p12"
chmod 0600 "$T/tls-autologin.p12"
chmod 0777 "$T"
t 7 tdekey tls display --wallet "$T"
has "$ERR" "$T"
t 7 tdekey tls trust --wallet "$T" --cert "$W/ca.pem" "${PWARG[@]}"
chmod 0700 "$T"
t 0 tdekey tls display --wallet "$T"
if [[ $(id -u) == 0 ]]; then
	chmod 0755 "$T" # even with the directory open to it, the files are not
	as_nobody cat "$T/tls.p12" >/dev/null 2>&1 && fail "uid 65534 read tls.p12"
	as_nobody cat "$T/tls-autologin.p12" >/dev/null 2>&1 && fail "uid 65534 read tls-autologin.p12"
	as_nobody "$TDEKEY_BIN" tls display --wallet "$T" </dev/null >/dev/null 2>&1 &&
		fail "uid 65534 displayed the TLS wallet"
	as_nobody "$TDEKEY_BIN" tls export-cert --wallet "$T" </dev/null >/dev/null 2>&1 &&
		fail "uid 65534 exported the client certificate"
	for f in "$T"/backup/*; do
		[[ $(stat -c %a "$f") == 600 ]] || fail "backup $f has mode $(stat -c %a "$f")"
		as_nobody cat "$f" >/dev/null 2>&1 && fail "uid 65534 read $f"
	done
	chmod 0700 "$T"
	log "uid 65534 can read no file of the TLS wallet"
else
	log "not root: the uid 65534 checks are skipped"
fi

# --- an auto-login-only wallet, and one without auto-login -------------------------------
t 0 tdekey tls create --wallet "$W/auto" --auto-login
[[ ! -e $W/auto/tls.p12 && -f $W/auto/tls-autologin.p12 ]] || fail "auto-login only: $(ls "$W/auto")"
t 0 tdekey tls add-self-signed --wallet "$W/auto" --dn CN=auto.example
t 0 tdekey tls create --wallet "$W/pwonly" "${PWARG[@]}"
[[ -f $W/pwonly/tls.p12 && ! -e $W/pwonly/tls-autologin.p12 ]] || fail "password only: $(ls "$W/pwonly")"
t 4 tdekey tls display --wallet "$W/pwonly"
printf 'short\n' >"$W/short"
t 1 tdekey tls create --wallet "$W/short-pw" --password-file "$W/short"
n_backups=$(find "$T/backup" -name 'tls-2*' | wc -l)
((n_backups >= 10)) || fail "only $n_backups backups of tls.p12 after the changes"
log "tdekey tls: every subcommand, openssl/keytool interop and the refusals pass ($n_backups backups)"
