#!/bin/bash
# A fleet on one key server: three hosts, each a network namespace joined to the server's by
# its own veth pair, each with its own TLS wallet (a certificate the one CA signed), KMIP
# wallet, backing directory and daemon (started with nsenter --net, so it reaches the server
# only through its namespace, while its mount is in the test's mount table), against one PyKMIP
# server. The hosts share one key group: host 1's tdekey create --kmip-group makes its first
# key, the others join it. Every host writes (the helper's fsync'ed records) while: host 1
# rotates the group's key on the server (tdekey set-key in its namespace), and every host takes
# it up on tderekey reload and rewraps every header under it; then
# the server stops for $TDEFS_KMIP_FLEET_OUTAGE seconds (30) while all three keep writing, each
# reports the outage (key_status OPEN_UNKNOWN_MASTER_KEY_STATUS, one log line) and reconnects on
# its own when the server is back; nothing written is lost. Root-only (network namespaces);
# about 80 s in CI, most of it the outage.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/kmip_server.sh"
is_plain && skip "needs the real mount"
[[ $(id -u) == 0 ]] || skip "needs root for network namespaces"
need_cmd ip iproute2
need_cmd nsenter util-linux
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$TDEKEY_BIN" "$tderekey" "$TDEFS_TEST_HELPER"
kmip_need
W=$TDEFS_WORK
umask 077
chmod 0755 "$W"
HOSTS=3
OUTAGE=${TDEFS_KMIP_FLEET_OUTAGE:-30}
tag=$$ # unique names: other tests may run beside this one
subnet=$((100 + $$ % 100))

ns_of() { echo "tdefs-fleet-$tag-$1"; }
cleanup_net() {
	local h
	for ((h = 1; h <= HOSTS; h++)); do
		ip link del "tdfh$tag$h" 2>/dev/null || true
		ip netns del "$(ns_of "$h")" 2>/dev/null || true
	done
}
on_exit cleanup_net
san=DNS:kms.test
for ((h = 1; h <= HOSTS; h++)); do
	ns=$(ns_of "$h")
	ip netns add "$ns" || fail "ip netns add $ns"
	ip link add "tdfh$tag$h" type veth peer name "tdfn$tag$h" || fail "ip link add veth"
	ip link set "tdfn$tag$h" netns "$ns"
	ip addr add "10.$subnet.$h.1/24" dev "tdfh$tag$h"
	ip link set "tdfh$tag$h" up
	ip -n "$ns" addr add "10.$subnet.$h.2/24" dev "tdfn$tag$h"
	ip -n "$ns" link set "tdfn$tag$h" up
	ip -n "$ns" link set lo up
	san+=",IP:10.$subnet.$h.1"
done

KMIP_PW=$W/pw
printf 'tls wallet password\n' >"$KMIP_PW"
KMIP_PKI=$W/pki
KMIP_SERVER_SAN=$san kmip_pki "$KMIP_PKI"
export KMIP_SERVER_BIND=0.0.0.0 KMIP_SERVER_PROBE=10.$subnet.1.1
kmip_server_start "$W/server"

# Each host: its TLS wallet, its KMIP wallet (made from inside its namespace), its mount.
real_tdefs=$TDEFS_BIN
for ((h = 1; h <= HOSTS; h++)); do
	ns=$(ns_of "$h")
	# PyKMIP lets the owner of an object (the CN of the certificate that made it) use it: the
	# hosts' certificates share the one CN, each with its own key pair.
	kmip_client_wallet "$W/tls$h" "fleet.test" 30
	nsenter --net="/run/netns/$ns" "$TDEKEY_BIN" create --wallet "$W/kms$h" \
		--kmip-server "10.$subnet.$h.1:$KMIP_PORT" --tls-wallet "$W/tls$h" \
		--kmip-group "fleet-$tag" --json </dev/null \
		>"$W/create$h.out" 2>"$W/create$h.err" || fail "host $h: tdekey create: $(cat "$W/create$h.err")"
	joined=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["joined"])' <"$W/create$h.out")
	[[ $joined == $([[ $h == 1 ]] && echo False || echo True) ]] ||
		fail "host $h: joined $joined the group: $(cat "$W/create$h.out")"
	nsenter --net="/run/netns/$ns" "$real_tdefs" --init --wallet "$W/kms$h" "$W/backing$h" \
		</dev/null >"$W/init$h.out" 2>&1 || fail "host $h: tdefs --init: $(cat "$W/init$h.out")"
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$ns" "$real_tdefs" >"$W/tdefs-in-$h"
	chmod 0755 "$W/tdefs-in-$h"
	TDEFS_BIN=$W/tdefs-in-$h tdefs_mount "$W/kms$h" "$W/backing$h" "$W/mnt$h"
done
TDEFS_BIN=$real_tdefs
# A host's namespace has no loopback server: its daemon reaches the server only by its veth.
nsenter --net="/run/netns/$(ns_of 1)" /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $KMIP_PORT), 2)" 2>/dev/null &&
	fail "host 1's namespace reaches the server on its own loopback"

writers=()
start_writers() {
	local h
	writers=()
	for ((h = 1; h <= HOSTS; h++)); do
		"$TDEFS_TEST_HELPER" writer "$W/mnt$h" 4 "$W/writer$h.log" &
		writers+=($!)
	done
}
stop_writers() {
	kill "${writers[@]}" 2>/dev/null || true
	wait "${writers[@]}" 2>/dev/null || true
}
on_exit stop_writers
key_status() {
	"$tderekey" status "$W/mnt$1" --json |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("key_status"))'
}
active_key() {
	"$tderekey" status "$W/mnt$1" --json |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("active_key"))'
}

# --- rotate once (host 1) in the group; every host takes it up and rewraps while all write --
start_writers
sleep 2
before=$(active_key 1)
for ((h = 2; h <= HOSTS; h++)); do
	[[ $(active_key "$h") == "$before" ]] || fail "host $h wraps under $(active_key "$h"), not the group's $before"
done
nsenter --net="/run/netns/$(ns_of 1)" "$TDEKEY_BIN" set-key --wallet "$W/kms1" --json \
	</dev/null >"$W/set.json" 2>"$W/set.err" || fail "host 1: set-key: $(cat "$W/set.err")"
new=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])' <"$W/set.json")
[[ $new != "$before" ]] || fail "set-key made the key there was"
for ((h = 1; h <= HOSTS; h++)); do
	"$tderekey" reload "$W/mnt$h" >/dev/null 2>&1 || fail "host $h: reload after set-key"
	[[ $(active_key "$h") == "$new" ]] || fail "host $h: active $(active_key "$h"), set-key on host 1 made $new"
	"$tderekey" rewrap "$W/mnt$h" >"$W/rewrap$h.out" 2>&1 || fail "host $h: rewrap: $(cat "$W/rewrap$h.out")"
	"$tderekey" status "$W/mnt$h" --json | grep -q "\"files_per_key\": {\"$new\": " ||
		fail "host $h: headers left under the old key: $("$tderekey" status "$W/mnt$h")"
	nsenter --net="/run/netns/$(ns_of "$h")" "$TDEKEY_BIN" keys --wallet "$W/kms$h" --usage "$W/backing$h" \
		>"$W/keys$h.out" 2>&1 || fail "host $h: keys: $(cat "$W/keys$h.out")"
	grep -Eq "^$before +RETIRED .* 0$" "$W/keys$h.out" || fail "host $h: keys --usage: $(cat "$W/keys$h.out")"
done
log "host 1 rotated the group's key on the server; every host reloaded and rewrapped every header while writing"

# --- the server away for $OUTAGE s while all write ------------------------------------------
kmip_server_stop
for ((h = 1; h <= HOSTS; h++)); do
	"$tderekey" reload "$W/mnt$h" >"$W/reload$h.out" 2>&1 && fail "host $h: reload with the server down"
	grep -q "10.$subnet.$h.1:$KMIP_PORT" "$W/reload$h.out" || fail "host $h: $(cat "$W/reload$h.out")"
	[[ $(key_status "$h") == OPEN_UNKNOWN_MASTER_KEY_STATUS ]] || fail "host $h: status $(key_status "$h")"
done
sleep "$OUTAGE"
for ((h = 1; h <= HOSTS; h++)); do
	kill -0 "${writers[h - 1]}" 2>/dev/null || fail "host $h: the writer stopped during the outage"
done
kmip_server_start "$W/server"
for ((h = 1; h <= HOSTS; h++)); do
	for ((i = 0; i < 4000; i++)); do
		[[ $(key_status "$h") == OPEN ]] && break
		sleep 0.1
	done
	[[ $(key_status "$h") == OPEN ]] || fail "host $h did not reconnect: $(key_status "$h")"
	logf=$(tdefs_daemon_log "$W/mnt$h")
	[[ $(grep -c "status OPEN_UNKNOWN_MASTER_KEY_STATUS" "$logf") == 1 ]] || fail "host $h: the outage is not one line"
	grep -q "key server reachable again" "$logf" || fail "host $h: no line for the recovery"
done
stop_writers
for ((h = 1; h <= HOSTS; h++)); do
	records=$(wc -l <"$W/writer$h.log")
	tdefs_umount "$W/mnt$h"
	TDEFS_BIN=$W/tdefs-in-$h tdefs_mount "$W/kms$h" "$W/backing$h" "$W/mnt$h"
	"$TDEFS_TEST_HELPER" check "$W/mnt$h" 4 "$W/writer$h.log" >"$W/check$h.out" 2>&1 ||
		fail "host $h lost records: $(cat "$W/check$h.out")"
	log "host $h: $records records written across the rotation and the outage, all read back after a remount"
done
TDEFS_BIN=$real_tdefs
pass
