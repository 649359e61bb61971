#!/bin/bash
# Makes one compatibility sample: a small backing directory and the wallets that open it, as
# the release in BUILD writes them, under tests/compat/NAME/. Every later release must mount and
# read every committed sample (tests/compat/test_compat.sh); a format or wallet change adds a new
# sample and never replaces an old one.
#
# usage: tests/compat/make-samples.sh BUILD NAME      (as root; mounts under a temporary dir)
#
# A sample holds:
#   wallet/             password.wallet (password in password.txt) and autologin.wallet with
#                       two master keys: the first made at create, the second active after a
#                       rotation, so files under a historical key are covered
#   backing/            the backing directory, files under both keys (git keeps no xattrs,
#                       hard links or holes: the holes come back as all-zero blocks, which is
#                       how tdefs reads a hole anyway)
#   manifest            one line per object: type, path, size, SHA-256 of the plaintext (files),
#                       target (symlinks)
#   release             the release that made it (tdefs --version)
set -euo pipefail
build=$(cd "$1" && pwd) name=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$src/tests/compat/$name
[[ ! -e $out ]] || { echo "make-samples: $out exists; samples are never replaced" >&2; exit 1; }
tdefs=$build/fs/tdefs tdekey=$build/tools/tdekey/tdekey
work=$(mktemp -d /tmp/tdefs-compat.XXXXXX)
trap 'fusermount3 -uz "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -p "$work/sample"
chmod 0700 "$work/sample"
printf 'compat sample password\n' >"$work/sample/password.txt"
chmod 0600 "$work/sample/password.txt"
cheap=(--scrypt-cost 10,8,1) # a fixture needs no brute-force resistance; opening it stays fast
"$tdekey" create --wallet "$work/sample/wallet" --auto-login "${cheap[@]}" \
	--password-file "$work/sample/password.txt" --tag compat-first
mkdir "$work/sample/backing"
"$tdefs" --init --wallet "$work/sample/wallet" "$work/sample/backing"
mkdir "$work/mnt"

mount_sample() {
	"$tdefs" --wallet "$work/sample/wallet" "$work/sample/backing" "$work/mnt"
	for _ in $(seq 100); do mountpoint -q "$work/mnt" && return 0; sleep 0.1; done
	echo "make-samples: mount failed" >&2
	exit 1
}
unmount_sample() {
	fusermount3 -u "$work/mnt"
	for _ in $(seq 100); do mountpoint -q "$work/mnt" || return 0; sleep 0.1; done
}

mount_sample
m=$work/mnt
# Under the first master key: every tail case of docs/FORMAT.md, a hole, a hard link.
: >"$m/empty"
printf 'thirteen byte' >"$m/tail-13"                           # 1..15-byte tail
head -c 3000 /dev/urandom >"$m/tail-3000"                       # ciphertext stealing
head -c 4096 /dev/urandom >"$m/one-block"
head -c $((1048576 + 5)) /dev/urandom >"$m/mebibyte-plus-5"
mkdir -p "$m/dir/sub"
head -c 20000 /dev/urandom >"$m/dir/sub/nested"
truncate -s 1M "$m/sparse"
printf 'start' | dd of="$m/sparse" conv=notrunc status=none
printf 'middle' | dd of="$m/sparse" bs=1 seek=600000 conv=notrunc status=none
ln "$m/one-block" "$m/dir/hard-link"
ln -s ../tail-13 "$m/dir/symlink"
sync
unmount_sample

# A rotation: files from here on are under the second key.
"$tdekey" set-key --wallet "$work/sample/wallet" --tag compat-second \
	--password-file "$work/sample/password.txt"
mount_sample
head -c 70000 /dev/urandom >"$m/after-rotation"
sync

(cd "$m" && find . -mindepth 1 | LC_ALL=C sort | while read -r path; do
	if [[ -L $path ]]; then
		printf 'symlink %s %s\n' "$path" "$(readlink "$path")"
	elif [[ -d $path ]]; then
		printf 'dir %s\n' "$path"
	else
		printf 'file %s %s %s\n' "$path" "$(stat -c %s "$path")" "$(sha256sum <"$path" | cut -d' ' -f1)"
	fi
done) >"$work/sample/manifest"
unmount_sample

"$tdefs" --version >"$work/sample/release"
mkdir -p "$(dirname "$out")"
cp -a "$work/sample" "$out"
echo "make-samples: wrote $out"
