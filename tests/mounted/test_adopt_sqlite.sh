#!/bin/bash
# Encrypting an existing SQLite database in WAL mode in place while writers commit through
# mmap: on a plain directory a WAL database gets a table of marker rows and the transactions of
# one writer, which is then killed, so that the database, its -wal and its -shm (the index
# SQLite maps shared) are all plaintext files left as a crashed application leaves them. The
# directory becomes the backing directory (tdefs --init --adopt); on the mount two writers with
# PRAGMA mmap_size commit transactions (each logs "C <tx>" once its COMMIT returned) while
# tderekey encrypt converts the three files. Then tdefs-rel-sqlite verify: integrity_check ok,
# every acknowledged transaction present and whole, nothing that never began; the marker rows
# are all there; no plaintext file and no marker is left in the backing directory; and after a
# remount with -o require_encrypted the same checks pass again, read through mmap.
# TDEFS_ADOPT_SQLITE_RUN (seconds, default 2) is how long the writers go on after the conversion.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd sqlite3
need_cmd getfattr attr
helper=$TDEFS_BUILD/tests/reliability/tdefs-rel-sqlite
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
[[ -x $helper ]] || fail "$helper not found: libsqlite3-dev was missing when the build was set up (tests/install-deps.sh)"
need_build "$tderekey"
wallet=$TDEFS_WORK/wallet
backing=$TDEFS_WORK/sq.enc
mnt=$TDEFS_WORK/sq-mnt
logs=$TDEFS_WORK/logs
marker="SQLITE-ADOPT-PLAINTEXT-MARKER-93fe"
mmap_bytes=268435456
mkdir -p "$backing" "$logs" "$mnt"
wpids=()
stop_writers() {
	local p
	for p in "${wpids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${wpids[@]}"; do wait "$p" 2>/dev/null || true; done
	wpids=()
}
on_exit stop_writers
verify() { # DB WHEN
	local out
	out=$("$helper" verify "$1" "$logs" 2 2>&1) || { echo "$out" >&2; fail "$2: the database does not hold what its writers committed"; }
	[[ $(sqlite3 "$1" "PRAGMA mmap_size=$mmap_bytes; SELECT count(*) FROM secret WHERE t LIKE '$marker%';" | tail -n 1) == 5000 ]] ||
		fail "$2: marker rows lost"
	VERIFY_OUT=$out
}

# The existing database, as a crashed application leaves it: -wal and -shm beside it.
"$helper" init "$backing/app.db" || fail "cannot create the WAL database"
sqlite3 "$backing/app.db" "CREATE TABLE secret(t TEXT);
	WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
	INSERT INTO secret SELECT '$marker ' || x || ' ' || hex(randomblob(200)) FROM c;" >/dev/null ||
	fail "cannot fill the marker table"
TDEFS_REL_SQLITE_MMAP=$mmap_bytes "$helper" writer "$backing/app.db" "$logs/writer-1.log" 1 2>/dev/null &
wpids=($!)
sleep 1
stop_writers
for f in app.db app.db-wal app.db-shm; do
	[[ -s $backing/$f ]] || fail "$f is not there in the plain directory: the test would not convert it"
done
grep -rlq --binary-files=binary "$marker" "$backing" || fail "the marker is not in the plain database: the test proves nothing"

tdefs_make_wallet "$wallet"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" ||
	fail "tdefs --init --adopt failed: $(cat "$TDEFS_WORK/adopt.out")"
tdefs_mount "$wallet" "$backing" "$mnt"
# The writers first: the last connection to close would checkpoint and remove -wal and -shm.
for w in 1 2; do
	TDEFS_REL_SQLITE_MMAP=$mmap_bytes "$helper" writer "$mnt/app.db" "$logs/writer-$w.log" "$w" 2>>"$TDEFS_WORK/writer.err" &
	wpids+=($!)
done
sleep 1
[[ $(sqlite3 "$mnt/app.db" "PRAGMA mmap_size=$mmap_bytes; SELECT count(*) FROM secret WHERE t LIKE '$marker%';" | tail -n 1) == 5000 ]] ||
	fail "the adopted database does not read its marker rows"
for f in app.db app.db-wal app.db-shm; do
	getfattr --absolute-names -n trusted.tdefs.plaintext "$backing/$f" >/dev/null 2>&1 ||
		fail "$f is not a plaintext file of the adopted directory when the conversion starts"
done
"$tderekey" encrypt "$mnt" --rate 8M >"$TDEFS_WORK/encrypt.out" 2>&1 ||
	fail "tderekey encrypt failed: $(cat "$TDEFS_WORK/encrypt.out")"
log "$(tail -n 1 "$TDEFS_WORK/encrypt.out")"
sleep "${TDEFS_ADOPT_SQLITE_RUN:-2}"
for p in "${wpids[@]}"; do
	kill -0 "$p" 2>/dev/null || fail "a writer ended during the conversion: $(cat "$TDEFS_WORK/writer.err")"
done
stop_writers
"$tderekey" status "$mnt" >"$TDEFS_WORK/status.out"
grep -q "no plaintext file left" "$TDEFS_WORK/status.out" || fail "plaintext files left: $(cat "$TDEFS_WORK/status.out")"
grep -q " 3 files encrypted" "$TDEFS_WORK/encrypt.out" || fail "the conversion did not encrypt the database, its -wal and its -shm: $(cat "$TDEFS_WORK/encrypt.out")"
verify "$mnt/app.db" "after the conversion"
log "after the conversion: $(tr '\n' ';' <<<"$VERIFY_OUT")"
tdefs_umount "$mnt"
grep -rl --binary-files=binary "$marker" "$backing" && fail "plaintext marker left in the backing directory"
for f in app.db app.db-wal app.db-shm; do
	[[ ! -e $backing/$f ]] || ! getfattr --absolute-names -n trusted.tdefs.plaintext "$backing/$f" >/dev/null 2>&1 ||
		fail "$f is still marked plaintext"
done
tdefs_mount "$wallet" "$backing" "$mnt" -o require_encrypted
verify "$mnt/app.db" "after a remount under require_encrypted"
tdefs_umount "$mnt"
pass "WAL database with its -wal and -shm encrypted online under two mmap writers: integrity_check ok, every acknowledged transaction present, no plaintext left, reads back under require_encrypted ($(tr '\n' ';' <<<"$VERIFY_OUT"))"
