#!/bin/bash
# timeout: 300
# MariaDB (Debian's mariadb-server-core) with its datadir on the mount, run as the mysql user,
# with InnoDB's default innodb_flush_method (O_DIRECT in 10.11: InnoDB opens its files and sets
# O_DIRECT with fcntl), a buffer pool smaller than the table so pages are written and read back
# through the filesystem, 16 KiB pages over 4 KiB tdefs blocks and the doublewrite buffer.
#  - 40,000 rows inserted, a third updated, a tenth deleted, 300 single-row autocommit updates
#    (each one a redo-log flush); count and sum(k) must equal values computed independently
#  - CHECK TABLE ... EXTENDED ok; the error log has no O_DIRECT or corruption complaints
#  - clean shutdown; innochecksum verifies every page of the table file
#  - remount, start again: same CHECKSUM TABLE, count and sums; CHECK TABLE ok
. "$(dirname "$0")/lib.sh"

need_cmd mariadbd mariadb-server-core
need_cmd mariadb mariadb-client-core
need_cmd innochecksum mariadb-server-core
need_cmd mariadb-install-db mariadb-server-core
if ! id mysql >/dev/null 2>&1; then
	# What the mariadb-server package would create; the -core packages do not.
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin mysql || fail "cannot create the mysql user"
fi
mariadbd_bin=$(command -v mariadbd)

tdefs_setup
cd "$TDEFS_WORK"
data=$TDEFS_MNT/mariadb
run=$TDEFS_WORK/run
sock=$run/mysqld.sock
errlog=$TDEFS_WORK/mariadb.err
cnf=$TDEFS_WORK/my.cnf
mkdir -p "$data" "$run"
chown mysql:mysql "$data" "$run"
touch "$errlog"
chown mysql:mysql "$errlog"
cat >"$cnf" <<EOF
[mariadbd]
user=mysql
datadir=$data
socket=$sock
pid-file=$run/mysqld.pid
log-error=$errlog
skip-networking
skip-name-resolve
innodb_buffer_pool_size=24M
innodb_log_file_size=48M
innodb_flush_log_at_trx_commit=1
innodb_doublewrite=1
EOF

mysqld_pid=
sql() {
	mariadb --no-defaults --socket="$sock" -u root --batch --skip-column-names "$@"
}

# Runs from the EXIT trap as well: the server must be gone before the mount is taken down.
db_stop() {
	[[ -n $mysqld_pid ]] || return 0
	kill -TERM "$mysqld_pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$mysqld_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$mysqld_pid" 2>/dev/null; then
		kill -KILL "$mysqld_pid" 2>/dev/null || true
		wait "$mysqld_pid" 2>/dev/null || true
		mysqld_pid=
		return 1
	fi
	wait "$mysqld_pid" 2>/dev/null || true
	mysqld_pid=
}
db_cleanup() {
	if [[ $TDEFS_EXIT_STATUS != 0 && -s $errlog ]]; then
		echo "---- last lines of the MariaDB error log ----" >&2
		tail -n 25 "$errlog" >&2
	fi
	db_stop || true
}
on_exit db_cleanup

db_start() {
	"$mariadbd_bin" --defaults-file="$cnf" </dev/null >>"$TDEFS_WORK/mariadbd.out" 2>&1 &
	mysqld_pid=$!
	local i
	for ((i = 0; i < 600; i++)); do
		sql -e 'SELECT 1' >/dev/null 2>&1 && return 0
		kill -0 "$mysqld_pid" 2>/dev/null || { mysqld_pid=; fail "mariadbd exited during startup ($1)"; }
		sleep 0.1
	done
	fail "mariadbd did not accept connections within 60 s ($1)"
}

log "mariadb-install-db on the mount"
mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=socket \
	--skip-test-db >"$TDEFS_WORK/install-db.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/install-db.log" >&2; fail "mariadb-install-db failed on the mount"; }
db_start "first start"
method=$(sql -e 'SELECT @@innodb_flush_method')
log "innodb_flush_method=$method, innodb_page_size=$(sql -e 'SELECT @@innodb_page_size')"

log "workload"
sql <<'EOF' || fail "the workload failed"
CREATE DATABASE tdefs;
USE tdefs;
CREATE TABLE a (id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(300) NOT NULL, b BLOB,
                KEY k_idx (k)) ENGINE=InnoDB;
INSERT INTO a SELECT seq, (seq * 7919) % 10007,
                     CONCAT('v', seq, '-', REPEAT(CHAR(65 + seq % 26), seq % 150)),
                     REPEAT(CONCAT(seq, ','), seq % 100)
              FROM seq_1_to_40000;
UPDATE a SET k = k + 1 WHERE id % 3 = 0;
DELETE FROM a WHERE id % 10 = 0;
EOF
for ((i = 1; i <= 300; i++)); do
	echo "UPDATE a SET v = CONCAT(v, 'x') WHERE id = $((i * 97 % 40000 + 1));"
done | sql tdefs || fail "single-row updates failed"

# Independent expectation: the same arithmetic outside the database.
expected=$(awk 'BEGIN { for (s = 1; s <= 40000; s++) { if (s % 10 == 0) continue;
	k = (s * 7919) % 10007; if (s % 3 == 0) k++; n++; sk += k }
	printf "%d\t%d\n", n, sk }')
summary() {
	sql tdefs -e 'SELECT COUNT(*), SUM(k) FROM a'
}
got=$(summary)
[[ $got == "$expected" ]] || fail "count and sum(k) are '$got', expected '$expected'"
xcount=$(sql tdefs -e "SELECT COUNT(*) FROM a WHERE v LIKE '%x'")
((xcount > 250)) || fail "only $xcount rows carry the single-row updates"
check=$(sql tdefs -e 'CHECK TABLE a EXTENDED' | awk '{print $NF}' | tail -n 1)
[[ $check == OK ]] || fail "CHECK TABLE a EXTENDED says $check"
checksum=$(sql tdefs -e 'CHECKSUM TABLE a EXTENDED' | awk '{print $2}')
log "count, sum(k) = $(echo "$got" | tr '\t' ' '); CHECK TABLE ok; CHECKSUM TABLE $checksum"

log "clean shutdown, innochecksum"
db_stop || fail "mariadbd did not shut down within 60 s"
innochecksum "$data/tdefs/a.ibd" >"$TDEFS_WORK/innochecksum.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/innochecksum.log" >&2; fail "innochecksum found bad pages in a.ibd"; }

tdefs_remount
db_start "start after remount"
got=$(summary)
[[ $got == "$expected" ]] || fail "after remount count and sum(k) are '$got', expected '$expected'"
[[ $(sql tdefs -e 'CHECKSUM TABLE a EXTENDED' | awk '{print $2}') == "$checksum" ]] ||
	fail "CHECKSUM TABLE changed across the remount"
check=$(sql tdefs -e 'CHECK TABLE a EXTENDED' | awk '{print $NF}' | tail -n 1)
[[ $check == OK ]] || fail "after remount CHECK TABLE a EXTENDED says $check"
db_stop || fail "mariadbd did not shut down within 60 s"

if grep -iE 'O_DIRECT|corrupt|\[ERROR\]' "$errlog" >&2; then
	fail "the MariaDB error log reports problems (lines above)"
fi
pass "innodb_flush_method=$method; 36,000 rows, CHECK TABLE, innochecksum and CHECKSUM TABLE ok across a remount"
