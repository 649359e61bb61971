#!/bin/bash
# Encrypting an existing MariaDB datadir in place while InnoDB writes it with
# innodb_flush_method=O_DIRECT: mariadb-install-db and a table of marker rows on a plain
# directory, a clean shutdown; the directory becomes the backing directory (tdefs --init --adopt)
# and mariadbd starts on the mount at once.
#  1. O_DIRECT on plaintext files: a plaintext file written and read back through the mount with
#     open(O_DIRECT) and with fcntl(F_SETFL, O_DIRECT) (InnoDB's way) leaves no pages in the
#     mount's page cache nor in the backing file's (fincore), and stays plaintext; while mariadbd
#     runs on the adopted datadir, the daemon's descriptors of its plaintext .ibd files carry
#     O_DIRECT.
#  2. A client commits transactions (printing each acknowledged commit) while tderekey encrypt
#     converts every file; CHECKSUM TABLE of the marker table is the same before and after,
#     CHECK TABLE ... EXTENDED is clean, every acknowledged transaction is there, whole.
#  3. After a clean shutdown innochecksum passes on every table's tablespace, no marker is left in the
#     backing directory, and the server starts on a mount with -o require_encrypted and gives the
#     same checksums.
# TDEFS_ADOPT_MARIADB_ROWS (default 20000) sizes the marker table.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
for cmd_pkg in mariadbd:mariadb-server-core mariadb:mariadb-client-core \
	innochecksum:mariadb-server-core mariadb-install-db:mariadb-server-core; do
	need_cmd "${cmd_pkg%%:*}" "${cmd_pkg#*:}"
done
need_cmd fincore util-linux
need_cmd getfattr attr
odirect=$TDEFS_BUILD/tests/reliability/tdefs-rel-odirect
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$odirect" "$tderekey"
if ! id mysql >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin mysql || fail "cannot create the mysql user"
fi
mariadbd_bin=$(command -v mariadbd)
rows=${TDEFS_ADOPT_MARIADB_ROWS:-20000}
wallet=$TDEFS_WORK/wallet
plain=$TDEFS_WORK/mysql          # the datadir as it was
backing=$TDEFS_WORK/mysql.enc    # the same directory, moved: the backing directory
mnt=$TDEFS_WORK/mysql-mnt        # where the server runs from then on
marker="MARIADB-ADOPT-PLAINTEXT-MARKER-41c9"
socket_dir sockdir mysql
sock=$sockdir/mysqld.sock
run=$TDEFS_WORK/run
errlog=$TDEFS_WORK/mariadb.err
cnf=$TDEFS_WORK/my.cnf
mkdir -p "$plain" "$run" "$mnt"
chown mysql:mysql "$plain" "$run" "$mnt"
chmod 0750 "$plain" "$mnt"
touch "$errlog"
chown mysql:mysql "$errlog"
cd "$TDEFS_WORK"
write_cnf() { # DATADIR
	cat >"$cnf" <<EOF
[mariadbd]
user=mysql
datadir=$1
socket=$sock
pid-file=$run/mysqld.pid
log-error=$errlog
skip-networking
skip-name-resolve
innodb_flush_method=O_DIRECT
innodb_buffer_pool_size=16M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=1
innodb_buffer_pool_load_at_startup=OFF
innodb_buffer_pool_dump_at_shutdown=OFF
EOF
}
sql() { mariadb --no-defaults --socket="$sock" -u root --batch --skip-column-names "$@"; }
mysqld_pid=
writer_pid=
db_start() {
	"$mariadbd_bin" --defaults-file="$cnf" </dev/null >>"$TDEFS_WORK/mariadbd.out" 2>&1 &
	mysqld_pid=$!
	local i
	for ((i = 0; i < 1200; i++)); do
		sql -e 'SELECT 1' >/dev/null 2>&1 && return 0
		kill -0 "$mysqld_pid" 2>/dev/null || { mysqld_pid=; tail -n 20 "$errlog" >&2; fail "mariadbd exited during startup ($1)"; }
		sleep 0.1
	done
	fail "mariadbd did not accept connections within 120 s ($1)"
}
db_stop() {
	[[ -n $mysqld_pid ]] || return 0
	kill -TERM "$mysqld_pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$mysqld_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$mysqld_pid" 2>/dev/null && { kill -KILL "$mysqld_pid"; fail "mariadbd did not shut down"; }
	wait "$mysqld_pid" 2>/dev/null || true
	mysqld_pid=
}
db_cleanup() {
	[[ -z $writer_pid ]] || kill -KILL "$writer_pid" 2>/dev/null || true
	if [[ $TDEFS_EXIT_STATUS != 0 && -s $errlog ]]; then
		echo "---- last lines of the MariaDB error log ----" >&2
		tail -n 25 "$errlog" >&2
	fi
	db_stop || true
}
on_exit db_cleanup
errlog_mark=0
errlog_check() {
	local bad
	bad=$(tail -n +$((errlog_mark + 1)) "$errlog" | grep -F '[ERROR]' || true)
	[[ -z $bad ]] || { echo "$bad" >&2; fail "$1: the MariaDB error log reports errors (above)"; }
}
check_tables() {
	local out
	out=$(sql -e 'CHECK TABLE adopt.secret EXTENDED; CHECK TABLE adopt.w EXTENDED;') || fail "$1: CHECK TABLE failed to run"
	if grep -v -P '\tstatus\tOK$' <<<"$out" | grep -q .; then
		echo "$out" >&2
		fail "$1: CHECK TABLE reports problems"
	fi
}
secret_checksum() { sql -e 'CHECKSUM TABLE adopt.secret EXTENDED' | cut -f 2; }
pad_expr='REPEAT(CHAR(65 + (k * 7 + j) % 26), 100 + (k * 31 + j * 7) % 280)'
writer_sql() { # FROM
	local k=$1
	while :; do
		echo "BEGIN;"
		echo "INSERT INTO w (k, j, pad) SELECT $k, seq, '' FROM seq_0_to_4;"
		echo "UPDATE w SET pad = $pad_expr WHERE k = $k;"
		echo "COMMIT;"
		echo "SELECT 'C', $k;"
		k=$((k + 1))
	done
}
verify_writer() {
	local acked n count bad
	acked=$(awk '$1 == "C" { k = $2 } END { print k + 0 }' "$TDEFS_WORK/writer.out")
	read -r n count bad < <(sql adopt -e "SELECT coalesce(max(k), 0), count(*),
		coalesce(sum(pad <> $pad_expr OR j > 4), 0) FROM w")
	[[ -n ${bad:-} ]] || fail "$1: the verification query failed"
	((count == 5 * n && bad == 0)) || fail "$1: $count rows for transactions 1..$n ($bad wrong): a transaction is incomplete"
	((n >= acked && n <= acked + 1)) || fail "$1: the writer saw $acked commits, the table ends at $n"
	WRITER_COMMITS=$n
}

# The existing datadir, on a plain directory, and a plaintext file for the O_DIRECT checks.
write_cnf "$plain"
mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=socket \
	--skip-test-db >"$TDEFS_WORK/install-db.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/install-db.log" >&2; fail "mariadb-install-db failed"; }
db_start "the plain datadir"
sql <<EOF || fail "cannot create the schema"
CREATE DATABASE adopt;
USE adopt;
CREATE TABLE adopt.secret (id INT PRIMARY KEY, t VARCHAR(200) NOT NULL, KEY t_idx (t(40))) ENGINE=InnoDB;
INSERT INTO adopt.secret SELECT seq, CONCAT('$marker ', seq, ' ', REPEAT('x', seq % 97)) FROM seq_1_to_$rows;
CREATE TABLE adopt.w (k INT NOT NULL, j INT NOT NULL, pad VARCHAR(400) NOT NULL,
                      PRIMARY KEY (k, j), KEY pad_idx (pad(20))) ENGINE=InnoDB;
EOF
checksum_before=$(secret_checksum)
db_stop
grep -rlq --binary-files=binary "$marker" "$plain" || fail "the marker is not in the plain datadir: the test proves nothing"
"$odirect" buffered "$plain/odirect-probe" 32 || fail "cannot write the plaintext probe file"
chown mysql:mysql "$plain/odirect-probe"

mv "$plain" "$backing"
tdefs_make_wallet "$wallet"
"$TDEFS_BIN" --init --adopt --wallet "$wallet" "$backing" >"$TDEFS_WORK/adopt.out" ||
	fail "tdefs --init --adopt failed: $(cat "$TDEFS_WORK/adopt.out")"
tdefs_mount "$wallet" "$backing" "$mnt"

# ---- 1. O_DIRECT on plaintext files ---------------------------------------------------------
pages_cached() { fincore --bytes --noheadings --output RES "$1" | awk '{ print int($1 / 4096) }'; }
for mode in open fcntl; do
	"$odirect" "$mode" "$mnt/odirect-probe" 32 || fail "O_DIRECT ($mode) on a plaintext file: writing or reading back failed"
	sync
	mnt_pages=$(pages_cached "$mnt/odirect-probe")
	back_pages=$(pages_cached "$backing/odirect-probe")
	log "O_DIRECT ($mode) on a plaintext file: 32 MiB written and read back; cached pages: mount $mnt_pages/8192, backing $back_pages/8192"
	((mnt_pages <= 8 && back_pages <= 8)) ||
		fail "O_DIRECT ($mode) on a plaintext file: $mnt_pages pages in the mount's page cache and $back_pages in the backing file's: not direct end to end"
	getfattr --absolute-names -n trusted.tdefs.plaintext "$backing/odirect-probe" >/dev/null 2>&1 ||
		fail "the probe file is no longer plaintext: the O_DIRECT check was not on a plaintext file"
done
rm "$mnt/odirect-probe"

# ---- 2. the conversion while a client commits ------------------------------------------------
write_cnf "$mnt"
db_start "the adopted datadir on the mount"
errlog_mark=$(wc -l <"$errlog")
[[ $(sql -e 'SELECT @@innodb_flush_method') == O_DIRECT ]] || fail "innodb_flush_method is not O_DIRECT"
[[ $(secret_checksum) == "$checksum_before" ]] || fail "the adopted datadir reads the marker table differently"
# The daemon's descriptors of plaintext tablespaces: O_DIRECT (octal 040000 in fdinfo flags).
direct=0
daemon=$(tdefs_daemon_pid "$mnt")
for fd in /proc/"$daemon"/fd/*; do
	target=$(readlink "$fd" 2>/dev/null) || continue
	[[ $target == "$backing"/*.ibd || $target == "$backing"/*/*.ibd || $target == "$backing"/ibdata1 ]] || continue
	flags=$(awk '$1 == "flags:" { print $2 }' /proc/"$daemon"/fdinfo/"${fd##*/}" 2>/dev/null) || continue
	((8#$flags & 8#040000)) && direct=$((direct + 1))
done
((direct > 0)) || fail "no daemon descriptor of a plaintext tablespace has O_DIRECT while InnoDB runs with innodb_flush_method=O_DIRECT"
log "$direct daemon descriptors of plaintext tablespaces carry O_DIRECT"

: >"$TDEFS_WORK/writer.out"
# The client itself last in the pipeline (not the sql function's subshell), so that $! is its pid.
writer_sql 1 | mariadb --no-defaults --socket="$sock" -u root --batch --skip-column-names \
	--unbuffered adopt >>"$TDEFS_WORK/writer.out" 2>"$TDEFS_WORK/writer.err" &
writer_pid=$!
sleep 2
start_us=$(tdefs_elapsed_us)
"$tderekey" encrypt "$mnt" --rate 60M >"$TDEFS_WORK/encrypt.out" 2>&1 ||
	fail "tderekey encrypt failed: $(cat "$TDEFS_WORK/encrypt.out")"
encrypt_ms=$((($(tdefs_elapsed_us) - start_us) / 1000))
sleep 1
kill -0 "$writer_pid" 2>/dev/null || fail "the writer ended during the conversion: $(cat "$TDEFS_WORK/writer.err")"
kill -KILL "$writer_pid" # the client takes SIGTERM as a Ctrl-C of the running statement
wait "$writer_pid" 2>/dev/null || true
writer_pid=
verify_writer "after the conversion"
"$tderekey" status "$mnt" >"$TDEFS_WORK/status.out"
grep -q "no plaintext file left" "$TDEFS_WORK/status.out" || fail "plaintext files left: $(cat "$TDEFS_WORK/status.out")"
[[ $(secret_checksum) == "$checksum_before" ]] || fail "CHECKSUM TABLE of the marker table changed during the conversion"
check_tables "after the conversion"
errlog_check "during the conversion"

# ---- 3. clean shutdown, on-disk checks, restart under require_encrypted ---------------------
db_stop
# The tablespaces of tables (innochecksum also fails on the system tablespace ibdata1 of a
# datadir that never saw tdefs: page 64 starts the doublewrite buffer).
for ibd in "$mnt"/adopt/*.ibd "$mnt"/mysql/*.ibd; do
	innochecksum "$ibd" >"$TDEFS_WORK/innochecksum.out" 2>&1 ||
		fail "innochecksum ${ibd#"$mnt"/} failed: $(cat "$TDEFS_WORK/innochecksum.out")"
done
tdefs_umount "$mnt"
grep -rl --binary-files=binary "$marker" "$backing" && fail "plaintext marker left in the backing directory"
tdefs_mount "$wallet" "$backing" "$mnt" -o require_encrypted
errlog_mark=$(wc -l <"$errlog")
db_start "the converted datadir under require_encrypted"
[[ $(secret_checksum) == "$checksum_before" ]] || fail "the converted marker table reads back differently"
verify_writer "after the restart"
check_tables "after the restart"
errlog_check "after the restart"
db_stop
tdefs_umount "$mnt"
pass "existing MariaDB datadir (O_DIRECT) encrypted online in $encrypt_ms ms under $WRITER_COMMITS committed transactions: checksums equal, CHECK TABLE clean, innochecksum clean, no plaintext left, starts under require_encrypted; O_DIRECT on plaintext files bypasses both page caches"
