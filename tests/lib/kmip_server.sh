# Shell helpers for tests against a KMIP server: a test CA made with openssl, a server
# certificate for chosen names, client TLS wallets made with tdekey tls and signed by the CA,
# and PyKMIP's server from Debian (python3-pykmip) on a free loopback port with its SQLite
# database in the test's work directory. Sourced after tests/mounted/lib.sh.
#
#   kmip_pki DIR                       CA (DIR/ca.pem, DIR/ca.key) and a server certificate for
#                                      DNS:kms.test and IP:127.0.0.1 (DIR/server.pem, .key), or
#                                      the subjectAltName in $KMIP_SERVER_SAN
#   kmip_client_wallet WALLET CN DAYS [EKU]
#                                      a TLS wallet (password file $KMIP_PW, auto-login) whose
#                                      client certificate the CA signed; EKU defaults to
#                                      clientAuth, "none" leaves the extension out; DAYS -1 makes
#                                      one that has expired
#   kmip_server_start DIR              PyKMIP on 127.0.0.1:$KMIP_PORT (a free port; another
#                                      address in $KMIP_SERVER_BIND); stopped at exit
#   kmip_server_stop
#   kmip_free_port                     prints a free loopback TCP port
#   kmip_loopback TLS_WALLET           the usual start of a test: umask 077, $W (the test's
#                                      work directory, mode 0755), the PKI in $W/pki, a client
#                                      TLS wallet TLS_WALLET for db1.test (password file
#                                      $W/pw), the server in $W/server, S=127.0.0.1:$KMIP_PORT

kmip_need() {
	[[ -x /usr/bin/pykmip-server ]] || skip "pykmip-server (python3-pykmip) is not installed"
	have openssl || skip "openssl is needed to make the test CA"
	/usr/bin/python3 -c 'import kmip' 2>/dev/null || skip "/usr/bin/python3 cannot import kmip"
}

kmip_free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

kmip_pki() {
	local dir=$1
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
		-out "$dir/ca.pem" -subj "/CN=tdefs test KMS CA" -days 30 2>/dev/null ||
		fail "openssl cannot make the test CA"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/server.key" \
		-out "$dir/server.csr" -subj "/CN=kms.test" 2>/dev/null || fail "openssl req (server)"
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "${KMIP_SERVER_SAN:-DNS:kms.test,IP:127.0.0.1}" >"$dir/server.ext"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 30 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null ||
		fail "openssl cannot sign the server certificate"
}

# kmip_client_wallet WALLET CN DAYS [EKU] (the CA of the last kmip_pki, in $KMIP_PKI)
kmip_client_wallet() {
	local wallet=$1 cn=$2 days=$3 eku=${4:-clientAuth}
	"$TDEKEY_BIN" tls create --wallet "$wallet" --auto-login --password-file "$KMIP_PW" \
		</dev/null >/dev/null 2>&1 || fail "tdekey tls create $wallet"
	"$TDEKEY_BIN" tls request --wallet "$wallet" --dn "CN=$cn" --password-file "$KMIP_PW" \
		</dev/null >"$wallet.csr" 2>/dev/null || fail "tdekey tls request $wallet"
	: >"$wallet.ext"
	[[ $eku == none ]] || printf 'extendedKeyUsage=%s\n' "$eku" >"$wallet.ext"
	openssl x509 -req -in "$wallet.csr" -CA "$KMIP_PKI/ca.pem" -CAkey "$KMIP_PKI/ca.key" \
		-CAcreateserial -days "$days" -extfile "$wallet.ext" -out "$wallet.pem" 2>/dev/null ||
		fail "openssl cannot sign the client certificate of $wallet"
	"$TDEKEY_BIN" tls add-cert --wallet "$wallet" --cert "$wallet.pem" --password-file "$KMIP_PW" \
		</dev/null >/dev/null 2>&1 || fail "tdekey tls add-cert $wallet"
	"$TDEKEY_BIN" tls trust --wallet "$wallet" --cert "$KMIP_PKI/ca.pem" --password-file "$KMIP_PW" \
		</dev/null >/dev/null 2>&1 || fail "tdekey tls trust $wallet"
}

kmip_server_pid=

kmip_server_start() {
	local dir=$1 i
	mkdir -p "$dir/policies"
	KMIP_PORT=${KMIP_PORT:-$(kmip_free_port)}
	cat >"$dir/server.conf" <<EOF
[server]
hostname=${KMIP_SERVER_BIND:-127.0.0.1}
port=$KMIP_PORT
certificate_path=$KMIP_PKI/server.pem
key_path=$KMIP_PKI/server.key
ca_path=$KMIP_PKI/ca.pem
auth_suite=TLS1.2
policy_path=$dir/policies
enable_tls_client_auth=True
logging_level=DEBUG
database_path=$dir/pykmip.db
EOF
	/usr/bin/python3 /usr/bin/pykmip-server -f "$dir/server.conf" -l "$dir/server.log" \
		>"$dir/server.out" 2>&1 &
	kmip_server_pid=$!
	on_exit kmip_server_stop
	for ((i = 0; i < 300; i++)); do
		if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('${KMIP_SERVER_PROBE:-127.0.0.1}', $KMIP_PORT), 1)" 2>/dev/null; then
			log "PyKMIP server on ${KMIP_SERVER_BIND:-127.0.0.1}:$KMIP_PORT (pid $kmip_server_pid)"
			return 0
		fi
		kill -0 "$kmip_server_pid" 2>/dev/null || { cat "$dir/server.out" "$dir/server.log" >&2; fail "pykmip-server exited"; }
		sleep 0.1
	done
	fail "pykmip-server did not listen on 127.0.0.1:$KMIP_PORT"
}

kmip_loopback() {
	W=$TDEFS_WORK
	umask 077
	chmod 0755 "$W"
	KMIP_PW=$W/pw
	printf 'tls wallet password\n' >"$KMIP_PW"
	KMIP_PKI=$W/pki
	kmip_pki "$KMIP_PKI"
	kmip_client_wallet "$1" db1.test 30
	kmip_server_start "$W/server"
	S=127.0.0.1:$KMIP_PORT
}

kmip_server_stop() {
	[[ -n $kmip_server_pid ]] || return 0
	kill "$kmip_server_pid" 2>/dev/null || true
	wait "$kmip_server_pid" 2>/dev/null || true
	kmip_server_pid=
}
