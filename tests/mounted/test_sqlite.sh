#!/bin/bash
# SQLite in WAL mode on the mount (WAL uses a shared mmap of the -shm file and POSIX locks).
#  1. A deterministic write-heavy script: 120 transactions of 100 inserts (rows up to 3 KB, so
#     overflow pages), updates and deletes, two indexes, a tiny page cache so pages are re-read
#     from the file, synchronous=FULL, frequent checkpoints and a VACUUM. The same script runs on
#     a plain directory; integrity_check must be "ok" and the row count and SHA3 digests of the
#     table (by rowid and through each index) must equal the reference's.
#  2. Four sqlite3 processes insert concurrently into one WAL database (BEGIN IMMEDIATE, busy
#     timeout): every row must arrive exactly once.
#  3. After a remount (contents now decrypted from the backing files) the checks run again, the
#     second time with SQLite reading the database through mmap.
. "$(dirname "$0")/lib.sh"

need_cmd sqlite3
ntx=${TDEFS_SQLITE_TX:-120}
writers=4
per_writer=${TDEFS_SQLITE_WRITER_TX:-150}

tdefs_setup
mkdir -p "$TDEFS_MNT/sqlite" "$TDEFS_WORK/ref"
db=$TDEFS_MNT/sqlite/main.db
refdb=$TDEFS_WORK/ref/main.db
cdb=$TDEFS_MNT/sqlite/concurrent.db

# Deterministic (no random()): the reference database must end up with the same contents.
workload() {
	cat <<'EOF'
PRAGMA page_size=4096;
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
PRAGMA cache_size=50;
PRAGMA wal_autocheckpoint=300;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL, b BLOB);
CREATE INDEX t_k ON t(k);
CREATE INDEX t_v ON t(v);
CREATE TABLE txlog(n INTEGER PRIMARY KEY, what TEXT NOT NULL);
EOF
	local i base
	for ((i = 1; i <= ntx; i++)); do
		base=$(((i - 1) * 100 + 1))
		cat <<EOF
BEGIN;
WITH RECURSIVE c(x) AS (SELECT $base UNION ALL SELECT x + 1 FROM c WHERE x < $((base + 99)))
INSERT INTO t(id, k, v, b)
  SELECT x, (x * 7919) % 10007, printf('v%08d-%x', x, (x * 2654435761) % 4294967296),
         CAST(substr(replace(hex(zeroblob(400)), '00', printf('%d.', x * x)), 1, (x * 37) % 3000) AS BLOB)
  FROM c;
UPDATE t SET k = (k * 31 + $i) % 10007, v = v || '.$i'
  WHERE id >= $((base - 2000)) AND id < $base AND id % 7 = $((i % 7));
DELETE FROM t WHERE id >= $((base - 3000)) AND id < $((base - 500)) AND id % 40 = $((i % 5));
INSERT INTO txlog(what) VALUES('tx $i');
COMMIT;
EOF
		if ((i % 50 == 0)); then
			echo "PRAGMA wal_checkpoint(PASSIVE);"
		fi
		if ((i == ntx / 2)); then
			echo "VACUUM;"
		fi
	done
}

summary_sql="SELECT count(*), sum(k), sum(length(v)), sum(length(b)) FROM t;
SELECT hex(sha3_query('SELECT * FROM t ORDER BY id'));
SELECT hex(sha3_query('SELECT k, id FROM t INDEXED BY t_k ORDER BY k, id'));
SELECT hex(sha3_query('SELECT v, id FROM t INDEXED BY t_v ORDER BY v, id'));
SELECT count(*) FROM txlog;"

# check_db WHAT FILE [PRAGMA]: integrity_check must be ok; prints the summary. The optional
# pragma's own output is discarded so that it cannot change the summary.
check_db() {
	local what=$1 file=$2 ic
	local pre=(-bail)
	[[ -z ${3:-} ]] || pre+=(-cmd ".output /dev/null" -cmd "$3" -cmd ".output stdout")
	ic=$(sqlite3 "${pre[@]}" "$file" "PRAGMA integrity_check;") ||
		fail "$what: sqlite3 integrity_check could not run on $file"
	[[ $ic == ok ]] || { echo "$ic" | head -n 20 >&2; fail "$what: PRAGMA integrity_check is not ok"; }
	sqlite3 "${pre[@]}" "$file" "$summary_sql" || fail "$what: summary queries failed on $file"
}

log "workload: $ntx transactions on the reference database"
# synchronous=OFF changes durability, not contents: it only makes the reference quicker.
workload | sed 's/^PRAGMA synchronous=FULL;/PRAGMA synchronous=OFF;/' | sqlite3 -bail "$refdb" >/dev/null ||
	fail "the workload failed on the plain reference directory"
expected=$(check_db "reference" "$refdb")

log "workload: $ntx transactions on the mount"
workload | sqlite3 -bail "$db" >/dev/null || fail "the workload failed on the mount"
got=$(check_db "mount" "$db")
log "integrity_check ok; count, sums and digests: $(echo "$got" | head -n 1)"
[[ $got == "$expected" ]] || {
	diff <(echo "$expected") <(echo "$got") >&2 || true
	fail "table contents on the mount differ from the reference (above: < reference, > mount)"
}
rows=$(echo "$got" | head -n 1 | cut -d'|' -f1)
((rows > ntx * 80)) || fail "only $rows rows: the workload did not run as intended"

log "concurrent: $writers sqlite3 processes x $per_writer transactions"
sqlite3 -bail "$cdb" "PRAGMA journal_mode=WAL; CREATE TABLE w(p INTEGER, n INTEGER, pad TEXT, PRIMARY KEY(p, n));" >/dev/null
pids=()
for ((p = 1; p <= writers; p++)); do
	{
		echo ".timeout 60000"
		for ((n = 1; n <= per_writer; n++)); do
			echo "BEGIN IMMEDIATE; INSERT INTO w VALUES($p, $n, printf('%0${n}d', $p)); COMMIT;"
			((n % 10)) || echo "SELECT count(*) FROM w WHERE p = $p;"
		done
	} | sqlite3 -bail "$cdb" >"$TDEFS_WORK/writer-$p.out" 2>&1 &
	pids+=($!)
done
for ((p = 1; p <= writers; p++)); do
	wait "${pids[p - 1]}" || { cat "$TDEFS_WORK/writer-$p.out" >&2; fail "concurrent writer $p failed"; }
done
cexpected="$((writers * per_writer))|$((writers * per_writer * (per_writer + 1) / 2))"
check_concurrent() {
	local ic c
	ic=$(sqlite3 -bail "$cdb" "PRAGMA integrity_check;")
	[[ $ic == ok ]] || { echo "$ic" | head >&2; fail "$1: integrity_check of the concurrent database is not ok"; }
	c=$(sqlite3 -bail "$cdb" "SELECT count(*), sum(n) FROM w WHERE length(pad) = n;")
	[[ $c == "$cexpected" ]] || fail "$1: concurrent database has count|sum $c, expected $cexpected"
}
check_concurrent "concurrent writers"

tdefs_remount
got=$(check_db "after remount" "$db")
[[ $got == "$expected" ]] || fail "after remount the contents differ from the reference"
got=$(check_db "after remount, mmap reads" "$db" "PRAGMA mmap_size=268435456")
[[ $got == "$expected" ]] || fail "after remount, reading through mmap, the contents differ from the reference"
check_concurrent "after remount"

pass "$rows rows, integrity ok, digests equal to the reference; $writers concurrent writers ok"
