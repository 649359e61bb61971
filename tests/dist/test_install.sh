#!/usr/bin/env bash
# Installing (README, "Install"): `meson install` puts the binaries, the bash completion and the
# systemd units in place, and the README's flow works with what was installed.
#  1. meson install into a staging root (DESTDIR): every file is where the README says, the man
#     pages too when the build made them (scdoc found; -Dman=enabled insists).
#  2. The README demo with the installed binaries: an auto-login wallet, --init, a mount from a
#     test fstab (`mount -T`, never the host's) with the README's options, in a private mount
#     namespace where the staged bin directory is bind-mounted on /usr/local/bin, because
#     mount(8) runs the helper with the default PATH: the fstab line works once tdefs is
#     installed in a standard directory, and the mount has nosuid,nodev. Data written reads
#     back through a second mount; tderekey status talks to the daemon.
#  3. systemd-analyze verify (--man=no: test_man checks the pages) passes on every installed unit (the paths in them moved into the
#     staging root, as verify checks that each command exists), and fails on a broken copy.
#  4. The installed completion, loaded in bash, lists each tool's commands and options.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
need_cmd unshare util-linux
need_cmd systemd-analyze systemd
stage=$TDEFS_WORK/stage
meson install -C "$TDEFS_BUILD" --destdir "$stage" --no-rebuild --quiet >"$TDEFS_WORK/install.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/install.log" >&2; fail "meson install failed"; }
prefix=$(meson introspect "$TDEFS_BUILD" --buildoptions |
	python3 -c 'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
root=$stage$prefix

# ---- 1. the files --------------------------------------------------------------------------------
for f in bin/tdefs bin/tdekey bin/tderekey bin/tdefs-bench \
	share/bash-completion/completions/tdefs share/bash-completion/completions/tdekey \
	share/bash-completion/completions/tderekey \
	lib/systemd/system/tdefs-mount@.service lib/systemd/system/tdefs-rewrap@.service \
	lib/systemd/system/tdefs-rewrap@.timer; do
	[[ -f $root/$f ]] || fail "meson install did not install $prefix/$f"
done
for f in tdefs tdekey tderekey; do
	[[ -x $root/bin/$f ]] || fail "$prefix/bin/$f is not executable"
done
pages=
if [[ -d $TDEFS_BUILD/man ]]; then
	mandir=$(meson introspect "$TDEFS_BUILD" --buildoptions |
		python3 -c 'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "mandir"][0])')
	for f in man8/tdefs.8 man8/tdekey.8 man8/tderekey.8 man1/tdefs-bench.1; do
		[[ -s $root/$mandir/$f ]] || fail "meson install did not install $prefix/$mandir/$f"
	done
	pages=", man pages"
else
	log "the build has no man pages (no scdoc): not checked"
fi
log "installed under $prefix: binaries, completion, systemd units$pages"

# ---- 2. the README flow with the installed binaries -----------------------------------------------
wallet=$TDEFS_WORK/wallet backing=$TDEFS_WORK/pgdata.enc mnt=$TDEFS_WORK/pgdata
"$root/bin/tdekey" create --wallet "$wallet" --auto-login </dev/null >"$TDEFS_WORK/create.log" 2>&1 ||
	fail "installed tdekey create failed: $(cat "$TDEFS_WORK/create.log")"
mkdir -p "$backing" "$mnt"
"$root/bin/tdefs" --init --wallet "$wallet" "$backing" </dev/null >"$TDEFS_WORK/init.log" 2>&1 ||
	fail "installed tdefs --init failed: $(cat "$TDEFS_WORK/init.log")"
# The README's fstab line, with this test's paths.
readme_line=$(grep -m1 -E '^/srv/pgdata\.enc +/srv/pgdata +fuse\.tdefs ' "$TDEFS_SRC/README.md") ||
	fail "README.md has no fstab line for /srv/pgdata"
options=$(awk '{ print $4 }' <<<"$readme_line")
[[ ,$options, == *,nosuid,* && ,$options, == *,nodev,* ]] ||
	fail "the README's fstab line does not mount nosuid,nodev: $readme_line"
options=${options//\/etc\/tdefs\/wallet/$wallet}
echo "$backing $mnt fuse.tdefs $options 0 0" >"$TDEFS_WORK/fstab"
head -c 1000000 /dev/urandom >"$TDEFS_WORK/data.ref"
cat >"$TDEFS_WORK/in-namespace.sh" <<INNER
set -e
mount --bind "$root/bin" /usr/local/bin
mount -T "$TDEFS_WORK/fstab" "$mnt"
findmnt -n -o FSTYPE,OPTIONS "$mnt"
cp "$TDEFS_WORK/data.ref" "$mnt/data"
/usr/local/bin/tderekey status "$mnt" >"$TDEFS_WORK/status.out"
umount "$mnt"
# The daemon exits once unmounted, letting go of the backing directory's lock.
for ((i = 0; i < 100; i++)); do pgrep -f -- "$backing" >/dev/null || break; sleep 0.1; done
mount -T "$TDEFS_WORK/fstab" "$mnt"
cmp "$TDEFS_WORK/data.ref" "$mnt/data"
umount "$mnt"
INNER
out=$(unshare -m --propagation private bash "$TDEFS_WORK/in-namespace.sh" 2>&1) ||
	fail "the README flow from the fstab line failed: $out"
grep -q '^fuse.tdefs .*nosuid' <<<"$out" && grep -q 'nodev' <<<"$out" ||
	fail "the fstab mount is not fuse.tdefs with nosuid,nodev: $out"
grep -q "active" "$TDEFS_WORK/status.out" || fail "tderekey status on the fstab mount said: $(cat "$TDEFS_WORK/status.out")"
[[ -f $backing/data ]] || fail "the data did not reach the backing directory"
log "fstab mount from the installed binaries: $(grep "^fuse.tdefs" <<<"$out"); data read back after a remount"

# ---- 3. systemd units ------------------------------------------------------------------------------
units=$TDEFS_WORK/units
mkdir "$units"
for unit in "$root"/lib/systemd/system/*; do
	sed "s|$prefix/bin/|$root/bin/|g" "$unit" >"$units/${unit##*/}"
done
out=$(cd "$units" && systemd-analyze verify --man=no "$units"/* 2>&1) ||
	fail "systemd-analyze verify failed on the installed units: $out"
[[ -z $out ]] || fail "systemd-analyze verify complains about the installed units: $out"
sed 's/^Type=forking/Type=forkin/' "$units/tdefs-mount@.service" >"$units/broken@.service"
out=$(cd "$units" && systemd-analyze verify --man=no "$units/broken@.service" 2>&1) || true
[[ -n $out ]] || fail "systemd-analyze verify does not notice a broken unit: the check cannot fail"
log "systemd-analyze verify: $(ls "$root"/lib/systemd/system | tr '\n' ' ')ok"

# ---- 4. bash completion ---------------------------------------------------------------------------
completion=$root/share/bash-completion/completions
complete_line() { # COMMAND WORDS...: the completions for the last word (COMMAND is the first)
	PATH=$root/bin:$PATH bash -c '
		. "$1/$2"
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		"$(complete -p "$1" | awk "{ print \$3 }")"
		echo "${COMPREPLY[*]}"' completion "$completion" "$@"
}
got=$(complete_line tdekey "")
for word in create status keys set-key; do
	[[ " $got " == *" $word "* ]] || fail "tdekey completion lacks the command $word: $got"
done
got=$(complete_line tdekey set-key --)
[[ " $got " == *" --wallet "* && " $got " == *" --tag "* ]] || fail "tdekey set-key -- completes to: $got"
got=$(complete_line tderekey "")
[[ " $got " == *" rewrap "* && " $got " == *" data "* ]] || fail "tderekey completion lists: $got"
got=$(complete_line tdefs -o "")
[[ " $got " == *" cache=auto "* && " $got " == *" xattr=off "* ]] || fail "tdefs -o completes to: $got"
log "completion: tdekey, tderekey and tdefs -o complete from the installed files"
pass "meson install: binaries, completion and units in place; README fstab flow with nosuid,nodev; units verify"
