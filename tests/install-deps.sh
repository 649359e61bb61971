#!/usr/bin/env bash
# Install the Debian 12 packages tdefs needs, only those missing. "build" is what the demo needs;
# "test" adds everything the full test suite drives (databases, fio, clang for the fuzzers).
set -euo pipefail

build_packages=(gcc pkg-config meson ninja-build libfuse3-dev fuse3 libssl-dev libxxhash-dev
	libcmocka-dev scdoc libp11-kit-dev)
test_packages=(clang libclang-rt-14-dev fio sqlite3 libsqlite3-dev postgresql-15 postgresql-contrib xxhash
	util-linux procps psmisc valgrind strace debhelper lintian e2fsprogs mount python3 attr
	mariadb-server-core mariadb-client-core softhsm2 opensc p11-kit)
# The KMIP server (PyKMIP) the key-server keystore is tested against.
test_packages+=(python3-pykmip)

mode=${1:-build}
packages=("${build_packages[@]}")
[ "$mode" = test ] && packages+=("${test_packages[@]}")

missing=()
for package in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep 'install ok installed' >/dev/null ||
		missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (sudo) to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The PostgreSQL package must not start a cluster of its own on this machine.
mkdir -p /etc/postgresql-common
grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
	echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
