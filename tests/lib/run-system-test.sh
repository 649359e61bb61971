#!/bin/bash
# The wrapper `meson test` runs each system test through (suites mounted, reliability and
# security: shell tests that need root, /dev/fuse and minutes). It gives every test a work area
# below the build directory, keeps the test's log beside it when the test fails, and clears
# mounts a killed test left behind (a daemon killed at meson's time limit cannot unmount), so
# the next test and the machine are not affected. Exit status is the test's: 0 pass, 77 skip.
#
# usage: run-system-test.sh WORK_ROOT SCRIPT
set -uo pipefail
work_root=$1 script=$2
mkdir -p "$work_root"
chmod 0755 "$work_root" # the postgres and nobody users traverse into the tests' work dirs

clear_leftover_mounts() {
	local mount_point
	for mount_point in $(findmnt -rn -o TARGET | grep "^$work_root/" | sort -r); do
		echo "run-system-test: leftover mount $mount_point; lazy unmount" >&2
		fusermount3 -uz "$mount_point" 2>/dev/null || umount -l "$mount_point" 2>/dev/null || true
	done
}

clear_leftover_mounts
export TDEFS_TMPDIR=$work_root
bash "$script" </dev/null &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; clear_leftover_mounts; exit 124' TERM INT
wait "$child"
status=$?
clear_leftover_mounts
exit "$status"
