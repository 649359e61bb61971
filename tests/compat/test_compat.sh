#!/bin/bash
# Every committed compatibility sample (tests/compat/*/, made by make-samples.sh with the release
# named in its "release" file) still mounts and reads with this release: with its auto-login
# wallet and with its password wallet alone, every file's size and SHA-256 as in its manifest,
# every symlink target, a write and a read back, a clean tdefs --check, and both master keys
# listed by tdekey. A sample is copied first (git checks files out 0644 and directories 0755;
# the copy gets the modes a real deployment has), so the committed files never change.
. "$(dirname "$0")/../mounted/lib.sh"

samples=()
for dir in "$TDEFS_SRC"/tests/compat/*/; do
	[[ -f $dir/manifest ]] && samples+=("${dir%/}")
done
((${#samples[@]} > 0)) || fail "no sample under $TDEFS_SRC/tests/compat"
need_build "$TDEFS_BIN" "$TDEKEY_BIN"

check_manifest() { # mount-point manifest
	local mnt=$1 type path size sum actual
	while read -r type path size sum; do
		case $type in
		dir) [[ -d $mnt/$path ]] || fail "$path: not a directory" ;;
		symlink) [[ $(readlink "$mnt/$path") == "$size" ]] || fail "$path: symlink target $(readlink "$mnt/$path"), expected $size" ;;
		file)
			[[ $(stat -c %s "$mnt/$path") == "$size" ]] || fail "$path: size $(stat -c %s "$mnt/$path"), expected $size"
			actual=$(sha256sum <"$mnt/$path" | cut -d' ' -f1)
			[[ $actual == "$sum" ]] || fail "$path: contents differ from the manifest"
			;;
		*) fail "manifest: unknown type $type" ;;
		esac
	done <"$2"
}

for sample in "${samples[@]}"; do
	name=$(basename "$sample")
	copy=$TDEFS_WORK/$name
	cp -r "$sample" "$copy"
	chmod -R go-rwx "$copy"
	chmod 0700 "$copy" "$copy/wallet" "$copy/backing"
	find "$copy/wallet" -type f -exec chmod 0600 {} +
	release=$(cat "$copy/release")
	log "$name (made by $release)"

	mnt=$TDEFS_WORK/mnt-$name
	tdefs_mount "$copy/wallet" "$copy/backing" "$mnt"
	check_manifest "$mnt" "$copy/manifest"
	printf 'appended by a later release' >>"$mnt/tail-3000"
	tdefs_umount "$mnt"
	"$TDEFS_BIN" --check --wallet "$copy/wallet" "$copy/backing" >"$TDEFS_WORK/check-$name.log" 2>&1 ||
		{ cat "$TDEFS_WORK/check-$name.log" >&2; fail "$name: tdefs --check found problems"; }

	# The password wallet alone (no auto-login copy): the same keys.
	rm "$copy/wallet/autologin.wallet"
	tdefs_mount "$copy/wallet" "$copy/backing" "$mnt" --password-file "$copy/password.txt"
	[[ $(tail -c 27 "$mnt/tail-3000") == "appended by a later release" ]] ||
		fail "$name: the appended bytes do not read back"
	grep -v ' ./tail-3000 ' "$copy/manifest" >"$TDEFS_WORK/manifest-$name"
	check_manifest "$mnt" "$TDEFS_WORK/manifest-$name"
	tdefs_umount "$mnt"
	keys=$("$TDEKEY_BIN" keys --wallet "$copy/wallet" --password-file "$copy/password.txt" --json)
	for tag in compat-first compat-second; do
		[[ $keys == *"\"$tag\""* ]] || fail "$name: tdekey keys does not list the key tagged $tag: $keys"
	done
done
pass "${#samples[@]} sample(s): $(cd "$TDEFS_SRC/tests/compat" && for s in "${samples[@]}"; do printf '%s ' "$(basename "$s")"; done)mount, read, write and check"
