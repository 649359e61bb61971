#!/usr/bin/env bash
# The Debian package (README, "Install"): `dpkg-buildpackage -us -uc -b` on a copy of the source
# tree builds a .deb that lintian passes without errors, that holds the binaries, man pages,
# completion and systemd units, whose dependencies this (Debian 12) host satisfies, and whose
# installed binaries run the README flow.
#  1. The source tree (git's file list when it is a checkout, else the tree without build
#     directories) is copied into the work directory, because dpkg-buildpackage writes the
#     .deb into the parent of the tree it builds; everything stays inside $TDEFS_WORK.
#  2. lintian on the .changes (the package and its dbgsym): any E: line fails, warnings are
#     logged. A copy of the package with a file in /usr/local must give an E: line, so the
#     check can fail.
#  3. `dpkg -c` lists every file the package must ship; each Depends entry is installed here in
#     a version that satisfies it.
#  4. `dpkg --root=STAGE -i` into an empty root (its own dpkg database; --force-depends, as the
#     libraries live on the host, not in STAGE): dpkg records the package as installed and
#     `dpkg -V` finds every file intact; the units' Exec lines name the packaged binaries.
#  5. The README demo with the installed binaries: an auto-login wallet, --init, the README's
#     fstab line mounted with `mount -T` (a test fstab, never the host's) in a private mount
#     namespace where STAGE/usr/bin is bind-mounted on /usr/local/bin (first on mount(8)'s
#     default PATH; the daemon's executable is checked to be the staged file), data written and
#     read back after a remount, tderekey status, unmount.
. "$(dirname "$0")/../mounted/lib.sh"
is_plain && skip "needs the real mount"
have dpkg-buildpackage || need_cmd dpkg-buildpackage dpkg-dev
need_cmd dh debhelper
need_cmd lintian
need_cmd unshare util-linux
have fusermount3 || need_cmd fusermount3 fuse3
# The Build-Depends (debian/control): the package build is its own, it does not use $TDEFS_BUILD.
need_pkg() { # PKG...: apt-get install each PKG not installed, an apt-get update once if that fails
	local pkg missing=()
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	[[ ${#missing[@]} == 0 ]] && return 0
	log "installing ${missing[*]} (build dependencies)"
	tdefs__apt_install "${missing[@]}" || {
		apt-get update -q -o DPkg::Lock::Timeout=300 </dev/null >>"$TDEFS_WORK/apt.log" 2>&1 || true
		tdefs__apt_install "${missing[@]}"
	} || { tail -n 20 "$TDEFS_WORK/apt.log" >&2; fail "cannot install ${missing[*]}"; }
}
need_pkg meson ninja-build pkg-config libfuse3-dev libssl-dev libxxhash-dev scdoc

# ---- 1. build ------------------------------------------------------------------------------------
src=$TDEFS_WORK/tdefs-src
mkdir "$src"
if git -C "$TDEFS_SRC" rev-parse --show-toplevel >/dev/null 2>&1; then
	# Tracked and new (not ignored) files, so an uncommitted debian/ change is what is built.
	(cd "$TDEFS_SRC" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
		tar --null -cf - -T -) | tar -xf - -C "$src"
else
	(cd "$TDEFS_SRC" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -xf - -C "$src"
fi
[[ -x $src/debian/rules && -f $src/debian/control ]] || fail "the source tree has no debian/rules and debian/control"
version=$(cd "$src" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
log "dpkg-buildpackage -us -uc -b (tdefs $version, $arch)"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
	>"$TDEFS_WORK/build.log" 2>&1 ||
	{ tail -n 30 "$TDEFS_WORK/build.log" >&2; fail "dpkg-buildpackage failed (log above)"; }
deb=$TDEFS_WORK/tdefs_${version}_$arch.deb changes=$TDEFS_WORK/tdefs_${version}_$arch.changes
[[ -s $deb && -s $changes ]] || fail "dpkg-buildpackage made no $(basename "$deb") and .changes: $(ls "$TDEFS_WORK")"
log "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# ---- 2. lintian ----------------------------------------------------------------------------------
lintian_run() { # FILE: lintian on FILE into lintian.out; its E: lines into lintian.errors
	lintian --info "$1" >"$TDEFS_WORK/lintian.out" 2>"$TDEFS_WORK/lintian.err" || true
	! grep -v 'running with root privileges' "$TDEFS_WORK/lintian.err" | grep -q . ||
		fail "lintian failed on $1: $(head -n 5 "$TDEFS_WORK/lintian.err")"
	grep '^E: ' "$TDEFS_WORK/lintian.out" >"$TDEFS_WORK/lintian.errors" || true
}
lintian_run "$changes"
warnings=$(grep -c '^W: ' "$TDEFS_WORK/lintian.out" || true)
{ grep '^W: ' "$TDEFS_WORK/lintian.out" || true; } | while IFS= read -r line; do log "lintian: $line"; done
[[ ! -s $TDEFS_WORK/lintian.errors ]] || fail "lintian reports errors: $(cat "$TDEFS_WORK/lintian.errors")"
# The check can fail: the same package with a file in /usr/local is an error.
bad=$TDEFS_WORK/bad
dpkg-deb -R "$deb" "$bad"
mkdir -p "$bad/usr/local/bin" && cp "$bad/usr/bin/tdekey" "$bad/usr/local/bin/"
dpkg-deb --root-owner-group -b "$bad" "$TDEFS_WORK/bad.deb" >/dev/null
lintian_run "$TDEFS_WORK/bad.deb"
grep -q 'usr-local' "$TDEFS_WORK/lintian.errors" ||
	fail "lintian does not flag a file in /usr/local: the check cannot fail ($(cat "$TDEFS_WORK/lintian.out"))"
log "lintian: no errors, $warnings warnings (the broken copy: $(wc -l <"$TDEFS_WORK/lintian.errors") errors)"

# ---- 3. contents and dependencies ----------------------------------------------------------------
contents=$(dpkg -c "$deb" | awk '{ print $6 }' | sed 's|^\./||')
for f in usr/bin/tdefs usr/bin/tdekey usr/bin/tderekey usr/bin/tdefs-bench \
	usr/share/man/man8/tdefs.8.gz usr/share/man/man8/tdekey.8.gz usr/share/man/man8/tderekey.8.gz \
	usr/share/man/man1/tdefs-bench.1.gz \
	usr/share/bash-completion/completions/tdefs usr/share/bash-completion/completions/tdekey \
	usr/share/bash-completion/completions/tderekey \
	lib/systemd/system/tdefs-mount@.service lib/systemd/system/tdefs-rewrap@.service \
	lib/systemd/system/tdefs-rewrap@.timer usr/share/doc/tdefs/copyright; do
	grep -qxF "$f" <<<"$contents" || fail "the package does not ship /$f"
done
! grep -q '^usr/local/\|^usr/lib/systemd/system/.' <<<"$contents" ||
	fail "the package ships files outside Debian's paths: $(grep '^usr/local/\|^usr/lib/systemd' <<<"$contents")"
depends=$(dpkg-deb -f "$deb" Depends)
grep -qw fuse3 <<<"$depends" || fail "the package does not depend on fuse3: $depends"
IFS=',' read -r -a entries <<<"$depends"
for entry in "${entries[@]}"; do
	ok=0
	IFS='|' read -r -a alternatives <<<"$entry"
	for alt in "${alternatives[@]}"; do
		read -r name op want <<<"$(sed -E 's/[()]/ /g' <<<"$alt")"
		have_version=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null |
			awk '/install ok installed/ { print $4 }') || true
		[[ -n $have_version ]] || continue
		if [[ -z ${op:-} ]] || dpkg --compare-versions "$have_version" "$op" "$want"; then ok=1; fi
	done
	[[ $ok == 1 ]] || fail "this host does not satisfy the package's dependency '$entry'"
done
log "dpkg -c: binaries, man pages, completion, units; Depends satisfied here: $depends"

# ---- 4. install into an empty root ----------------------------------------------------------------
stage=$TDEFS_WORK/stage
mkdir -p "$stage/var/lib/dpkg/info" "$stage/var/lib/dpkg/updates" "$stage/var/lib/dpkg/triggers"
: >"$stage/var/lib/dpkg/status"
dpkg --root="$stage" --log=/dev/null --force-depends -i "$deb" >"$TDEFS_WORK/install.log" 2>&1 ||
	fail "dpkg --root -i failed: $(tail -n 20 "$TDEFS_WORK/install.log")"
dpkg --root="$stage" -s tdefs 2>/dev/null | grep -qx 'Status: install ok installed' ||
	fail "dpkg does not record tdefs as installed in the staging root"
out=$(dpkg --root="$stage" -V tdefs 2>&1) && [[ -z $out ]] || fail "dpkg -V on the installed package: $out"
for f in tdefs tdekey tderekey tdefs-bench; do
	[[ -x $stage/usr/bin/$f ]] || fail "/usr/bin/$f is not installed executable"
done
zcat "$stage/usr/share/man/man8/tdefs.8.gz" >"$TDEFS_WORK/tdefs.8"
grep -qi '^\.TH "\?tdefs"\? "\?8' "$TDEFS_WORK/tdefs.8" ||
	fail "the installed tdefs(8) is not a man page: $(head -n 3 "$TDEFS_WORK/tdefs.8")"
# The units run the packaged binaries (prefix /usr), or a host program another package ships.
for unit in "$stage"/lib/systemd/system/*.service; do
	grep -o '^Exec[A-Za-z]*=[-@+!:]*[^ ]*' "$unit" | sed 's/^[^=]*=[-@+!:]*//' | while IFS= read -r program; do
		case $program in
		/usr/bin/td*) [[ -x $stage$program ]] || fail "${unit##*/} runs $program, which the package does not ship" ;;
		*) [[ -x $program ]] || fail "${unit##*/} runs $program, which is not on this host" ;;
		esac
	done
done
log "dpkg --root: installed, dpkg -V clean; the units run the packaged binaries"

# ---- 5. the README flow with the installed binaries -----------------------------------------------
bin=$stage/usr/bin
wallet=$TDEFS_WORK/wallet backing=$TDEFS_WORK/pgdata.enc mnt=$TDEFS_WORK/pgdata
"$bin/tdekey" create --wallet "$wallet" --auto-login </dev/null >"$TDEFS_WORK/create.log" 2>&1 ||
	fail "installed tdekey create failed: $(cat "$TDEFS_WORK/create.log")"
mkdir -p "$backing" "$mnt"
"$bin/tdefs" --init --wallet "$wallet" "$backing" </dev/null >"$TDEFS_WORK/init.log" 2>&1 ||
	fail "installed tdefs --init failed: $(cat "$TDEFS_WORK/init.log")"
readme_line=$(grep -m1 -E '^/srv/pgdata\.enc +/srv/pgdata +fuse\.tdefs ' "$TDEFS_SRC/README.md") ||
	fail "README.md has no fstab line for /srv/pgdata"
options=$(awk '{ print $4 }' <<<"$readme_line")
options=${options//\/etc\/tdefs\/wallet/$wallet}
echo "$backing $mnt fuse.tdefs $options 0 0" >"$TDEFS_WORK/fstab"
head -c 1000000 /dev/urandom >"$TDEFS_WORK/data.ref"
cat >"$TDEFS_WORK/in-namespace.sh" <<INNER
set -e
mount --bind "$bin" /usr/local/bin
mount -T "$TDEFS_WORK/fstab" "$mnt"
findmnt -n -o FSTYPE "$mnt"
# The daemon is the installed file, not a tdefs elsewhere on PATH.
installed=\$(stat -c %d:%i "$bin/tdefs") found=
for pid in \$(pgrep -f -- "$backing"); do
	[ "\$(stat -L -c %d:%i /proc/\$pid/exe 2>/dev/null)" = "\$installed" ] && found=\$pid
done
[ -n "\$found" ] || { echo "no daemon runs the installed tdefs"; exit 1; }
cp "$TDEFS_WORK/data.ref" "$mnt/data"
"$bin/tderekey" status "$mnt" >"$TDEFS_WORK/status.out"
umount "$mnt"
for i in \$(seq 100); do pgrep -f -- "$backing" >/dev/null || break; sleep 0.1; done
mount -T "$TDEFS_WORK/fstab" "$mnt"
cmp "$TDEFS_WORK/data.ref" "$mnt/data"
umount "$mnt"
INNER
out=$(unshare -m --propagation private bash "$TDEFS_WORK/in-namespace.sh" 2>&1) ||
	fail "the README flow with the installed binaries failed: $out"
grep -qx 'fuse.tdefs' <<<"$out" || fail "the mount is not fuse.tdefs: $out"
grep -q "active" "$TDEFS_WORK/status.out" ||
	fail "installed tderekey status said: $(cat "$TDEFS_WORK/status.out")"
[[ -f $backing/data ]] && ! cmp -s "$TDEFS_WORK/data.ref" "$backing/data" ||
	fail "the data did not reach the backing directory encrypted"
log "README flow: the fstab mount runs the installed tdefs; data read back after a remount"
pass "dpkg-buildpackage builds tdefs_${version}_$arch.deb: lintian without errors, installs into an empty root, README flow with its binaries"
