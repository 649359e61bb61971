#!/usr/bin/env bash
# The README's first command: install what is missing, build, and mount a demo backing directory
# with an auto-login wallet (no password prompt), then show a file as the database sees it and
# as it lies on disk. The mount stays up; the last lines say how to take it down.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=${TDEFS_DEMO_DIR:-/var/tmp/tdefs-demo}

tests/install-deps.sh build
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

wallet=$demo/wallet backing=$demo/pgdata.enc mnt=$demo/pgdata
if mountpoint -q "$mnt"; then
	fusermount3 -u "$mnt"
fi
mkdir -p "$demo" "$backing" "$mnt"
[ -e "$wallet" ] || build/tools/tdekey/tdekey create --wallet "$wallet" --auto-login
[ -e "$backing/.tdefs.conf" ] || build/fs/tdefs --init --wallet "$wallet" "$backing"
build/fs/tdefs --wallet "$wallet" "$backing" "$mnt"

printf 'tablespace page: account 42 balance 1000000\n' >"$mnt/demo.dat"
echo
echo "== through the mount ($mnt/demo.dat):"
cat "$mnt/demo.dat"
echo "== on disk ($backing/demo.dat, header then ciphertext):"
od -A d -t x1 "$backing/demo.dat" | sed -n '1,3p;256,$p'
echo
echo "Mounted $backing on $mnt with wallet $wallet."
echo "Point a database at $mnt; unmount with: fusermount3 -u $mnt"
