#!/bin/bash
# MariaDB (InnoDB, Debian's mariadb-server-core: the server binaries of mariadb-server without
# its service scripts) with its datadir on the mount and innodb_flush_method=O_DIRECT, run
# privately: --user=mysql, own socket and pid file in the work directory, skip-networking, no
# systemd, no Debian service.
#  1. O_DIRECT end to end, measured with fincore(1) (per-file page cache residency; no global
#     drop_caches, which would disturb whatever else runs on the machine): a file written with
#     open(O_DIRECT) through the mount leaves no pages in the mount's page cache nor in the
#     backing file system's page cache (ASSERTED); a buffered control run leaves most pages in
#     both (asserted: it shows the measurement works). O_DIRECT set later with fcntl(F_SETFL)
#     (MySQL's os_file_set_nocache; MariaDB 10.11 opens with O_DIRECT) is asserted the same way
#     (TDEFS_REL_ODIRECT_FCNTL=warn only logs it). Then InnoDB's own I/O: after a
#     remount (the mount's cache of the file is gone) and evicting the backing files' pages
#     (POSIX_FADV_DONTNEED through dd oflag=nocache), a full scan of the table and a flushed update of every row
#     must leave less than a quarter of r.ibd's pages in either page cache (ASSERTED; buffered
#     I/O would leave all of them); the counts and the descriptors' O_DIRECT flags are logged.
#  2. Crash rounds (TDEFS_REL_MARIADB_ROUNDS, default 6): three clients commit transactions of
#     5 rows each; each prints "C <k>" after its COMMIT returned (mariadb --unbuffered), so its
#     output lists the commits it saw. After a random 2-4 s the tdefs daemon gets SIGKILL, the
#     mount is lazily unmounted, mariadbd is killed; remount, start (InnoDB crash recovery),
#     then for every client: transactions 1..N all present with 5 rows of the right content,
#     N >= its last acknowledged commit, N <= that + 1; once InnoDB's background rollback of the
#     recovered transactions and purge are over, CHECK TABLE ... EXTENDED ok.
#  3. Clean shutdown, innochecksum of the table file, remount, start, same checks.
# TDEFS_REL_MARIADB_TRX_COMMIT=2 (commits not flushed) is a negative control: the test should fail.
# TDEFS_REL_MARIADB_EARLY_CHECK=1 also runs CHECK TABLE right after each recovery, before InnoDB
# settled, and only logs its result (diagnostics: it may warn about rows that purge or the
# rollback is about to remove).
. "$(dirname "$0")/lib-reliability.sh"
is_plain && skip "needs the real mount (the daemon is killed)"
odirect=$(rel_helper tdefs-rel-odirect)
rounds=${TDEFS_REL_MARIADB_ROUNDS:-6}
clients=3

# MariaDB from Debian; a machine where it cannot be installed skips the test.
for cmd_pkg in mariadbd:mariadb-server-core mariadb:mariadb-client-core \
	innochecksum:mariadb-server-core mariadb-install-db:mariadb-server-core; do
	cmd=${cmd_pkg%%:*} pkg=${cmd_pkg#*:}
	have "$cmd" && continue
	have apt-get || skip "$cmd is missing and there is no apt-get to install $pkg"
	log "installing $pkg (for $cmd)"
	( need_cmd "$cmd" "$pkg" ) || skip "MariaDB cannot be installed here ($pkg for $cmd; see $TDEFS_WORK/apt.log)"
done
need_cmd fincore util-linux
if ! id mysql >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin mysql || fail "cannot create the mysql user"
fi
mariadbd_bin=$(command -v mariadbd)

rel_seed
tdefs_setup
cd "$TDEFS_WORK"

# ---- 1. O_DIRECT end to end, controlled -------------------------------------------------------
# pages_cached FILE: resident pages of FILE in the page cache (fincore, 4 KiB pages).
pages_cached() {
	fincore --bytes --noheadings --output RES "$1" | awk '{ print int($1 / 4096) }'
}
# evict FILE...: drop the files' pages from the page cache (POSIX_FADV_DONTNEED on the whole file).
evict() {
	local f
	for f in "$@"; do
		dd of="$f" oflag=nocache conv=notrunc,fdatasync count=0 status=none || fail "cannot evict $f from the page cache"
	done
}
odirect_run() {
	local mode=$1 mib=32 f=$TDEFS_MNT/odirect-$1 total mnt_pages back_pages
	"$odirect" "$mode" "$f" "$mib" || fail "tdefs-rel-odirect $mode: writing or reading back failed"
	sync
	total=$((mib * 256))
	mnt_pages=$(pages_cached "$f")
	back_pages=$(pages_cached "$TDEFS_BACKING/odirect-$mode")
	log "O_DIRECT check, $mode: $mib MiB written and read back; cached pages: mount $mnt_pages/$total, backing $back_pages/$((total + 1))"
	ODIRECT_MNT=$mnt_pages ODIRECT_BACK=$back_pages ODIRECT_TOTAL=$total
	rm -f "$f"
}
odirect_run buffered
# With -o cache=none (TDEFS_MOUNT_OPTS) the mount has no page cache even for buffered I/O.
mount_min=$((ODIRECT_TOTAL / 2))
[[ ${TDEFS_MOUNT_OPTS:-} != *cache=none* ]] || mount_min=-1
((ODIRECT_MNT > mount_min && ODIRECT_BACK > ODIRECT_TOTAL / 2)) ||
	fail "buffered control: only $ODIRECT_MNT mount / $ODIRECT_BACK backing pages cached of $ODIRECT_TOTAL; the measurement does not work here"
odirect_run open
# Allowance: the header page (read at open) and a few pages of readahead or metadata.
((ODIRECT_MNT <= 8 && ODIRECT_BACK <= 8)) ||
	fail "open(O_DIRECT): $ODIRECT_MNT pages in the mount's page cache and $ODIRECT_BACK in the backing file's (of $ODIRECT_TOTAL): O_DIRECT does not bypass the page cache end to end"
odirect_run fcntl
fcntl_note="fcntl(O_DIRECT) bypasses both caches"
if ((ODIRECT_MNT > 8 || ODIRECT_BACK > 8)); then
	fcntl_note="fcntl(F_SETFL, O_DIRECT) leaves $ODIRECT_MNT pages in the mount's and $ODIRECT_BACK in the backing file's page cache (of $ODIRECT_TOTAL)"
	if [[ ${TDEFS_REL_ODIRECT_FCNTL:-fail} == fail ]]; then
		fail "$fcntl_note: O_DIRECT set with fcntl does not bypass the page cache end to end"
	else
		log "NOTE (measurement only, TDEFS_REL_ODIRECT_FCNTL=warn): $fcntl_note"
	fi
fi

# ---- MariaDB setup ------------------------------------------------------------------------------
data=$TDEFS_MNT/mariadb
run=$TDEFS_WORK/run
socket_dir mariadb_socket_dir mysql
sock=$mariadb_socket_dir/mysqld.sock
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
innodb_flush_method=O_DIRECT
innodb_buffer_pool_size=16M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=${TDEFS_REL_MARIADB_TRX_COMMIT:-1}
innodb_doublewrite=1
innodb_buffer_pool_load_at_startup=OFF
innodb_buffer_pool_dump_at_shutdown=OFF
EOF

mysqld_pid=
sql() {
	mariadb --no-defaults --socket="$sock" -u root --batch --skip-column-names "$@"
}
db_kill() {
	[[ -n $mysqld_pid ]] || return 0
	kill -KILL "$mysqld_pid" 2>/dev/null || true
	rel_wait_pid "$mysqld_pid" 30 || true
	mysqld_pid=
}
db_stop() {
	[[ -n $mysqld_pid ]] || return 0
	kill -TERM "$mysqld_pid" 2>/dev/null || true
	local st=0
	rel_wait_pid "$mysqld_pid" 60 || st=$?
	mysqld_pid=
	((st != 137)) || return 1
}
client_pids=()
db_cleanup() {
	local p
	for p in "${client_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	if [[ $TDEFS_EXIT_STATUS != 0 && -s $errlog ]]; then
		echo "---- last lines of the MariaDB error log ----" >&2
		tail -n 25 "$errlog" >&2
	fi
	db_stop || true
}
on_exit db_cleanup

# [ERROR] lines of the error log count from the last start up to the next kill of the daemon
# (after a kill, InnoDB rightly complains about the failing I/O and aborts).
errlog_mark=0
errlog_check() {
	local bad
	bad=$(tail -n +$((errlog_mark + 1)) "$errlog" | grep -F '[ERROR]' || true)
	[[ -z $bad ]] || { echo "$bad" >&2; fail "$1: the MariaDB error log reports errors (above)"; }
}

db_start() {
	errlog_mark=$(wc -l <"$errlog")
	"$mariadbd_bin" --defaults-file="$cnf" </dev/null >>"$TDEFS_WORK/mariadbd.out" 2>&1 &
	mysqld_pid=$!
	local i
	for ((i = 0; i < 1200; i++)); do
		sql -e 'SELECT 1' >/dev/null 2>&1 && return 0
		kill -0 "$mysqld_pid" 2>/dev/null || { mysqld_pid=; fail "mariadbd exited during startup ($1)"; }
		sleep 0.1
	done
	fail "mariadbd did not accept connections within 120 s ($1)"
}

log "mariadb-install-db on the mount"
mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=socket \
	--skip-test-db >"$TDEFS_WORK/install-db.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/install-db.log" >&2; fail "mariadb-install-db failed on the mount"; }
db_start "first start"
method=$(sql -e 'SELECT @@innodb_flush_method')
[[ $method == O_DIRECT ]] || fail "innodb_flush_method is $method, expected O_DIRECT"
sql <<'EOF' || fail "cannot create the schema"
CREATE DATABASE rel;
CREATE TABLE rel.r (c INT NOT NULL, k INT NOT NULL, j INT NOT NULL, pad VARCHAR(400) NOT NULL,
                    u INT NOT NULL DEFAULT 0,
                    PRIMARY KEY (c, k, j), KEY pad_idx (pad(20))) ENGINE=InnoDB;
CREATE TABLE rel.cnt (c INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB;
INSERT INTO rel.cnt VALUES (1, 0), (2, 0), (3, 0);
EOF
# The pad of row (c, k, j): a pure function of the key, checked in SQL after every recovery.
pad_expr='REPEAT(CHAR(65 + (c * 7 + k + j) % 26), 100 + (k * 31 + j * 7 + c) % 280)'

# ---- 2. crash rounds ------------------------------------------------------------------------------
# client C FROM: transactions FROM, FROM+1, ... of client C until the server goes away.
client_sql() {
	local c=$1 k=$2
	echo "SET SESSION innodb_lock_wait_timeout = 50;"
	while :; do
		echo "BEGIN;"
		echo "INSERT INTO r (c, k, j, pad) SELECT $c, $k, seq, '' FROM seq_0_to_4;"
		echo "UPDATE r SET pad = $pad_expr WHERE c = $c AND k = $k;"
		echo "UPDATE cnt SET n = $k WHERE c = $c;"
		echo "COMMIT;"
		echo "SELECT 'C', $k;"
		k=$((k + 1))
	done
}

verify_clients() {
	local what=$1 c acked n rows bad cntn
	for ((c = 1; c <= clients; c++)); do
		acked=$(awk '$1 == "C" { k = $2 } END { print k + 0 }' "$TDEFS_WORK"/client-"$c".out 2>/dev/null || echo 0)
		read -r n rows bad cntn < <(sql rel -e "SELECT coalesce(max(k), 0), count(*),
			sum(pad <> $pad_expr OR j > 4), (SELECT n FROM cnt WHERE c = $c) FROM r WHERE c = $c" |
			sed 's/NULL/0/g')
		[[ -n ${cntn:-} ]] || fail "$what: client $c: the verification query failed"
		((rows == 5 * n)) || fail "$what: client $c: $rows rows for transactions 1..$n, expected $((5 * n)) (a transaction is incomplete or missing)"
		((bad == 0)) || fail "$what: client $c: $bad rows with wrong contents"
		((cntn == n)) || fail "$what: client $c: cnt says $cntn, the rows end at $n (a transaction was applied in part)"
		((n >= acked)) || fail "$what (seed $REL_SEED): client $c saw transaction $acked commit but the table ends at $n: $((acked - n)) acknowledged commits lost"
		((n <= acked + 1)) || fail "$what: client $c: transactions up to $n present but the client saw only $acked commit"
		VERIFIED[$c]=$n
	done
}
declare -A VERIFIED=()
# CHECK TABLE ... EXTENDED is only meaningful once InnoDB has finished the work it does in the
# background after a start; before that it warns about delete-marked secondary index records
# that are about to go away, e.g. "Clustered index record not found for index `pad_idx`" for
# ('', c, k, j): every transaction inserts its rows with pad '' and then updates pad, which
# delete-marks the ('', ...) entries; purge removes them later, and for the transactions that
# were in flight at the crash the background rollback does (srv_start: "Starting in background
# the rollback of recovered transactions"), while mariadbd already accepts connections. So wait
#  - for the rollback: the error log says "Rollback of non-prepared transactions completed" when
#    it announced "... transaction(s) which must be rolled back", and
#    information_schema.innodb_trx lists no transaction in state ROLLING BACK (InnoDB refreshes
#    that table only when it was not read for 100 ms: poll every 0.3 s, not faster);
#  - for purge: the history list (Innodb_history_list_length) is empty.
# No client runs meanwhile. A real inconsistency (an entry without its row, a row without its
# entry, a record that does not match) outlives both and still fails check_tables.
innodb_settle() {
	local i since trx=? hist=?
	for ((i = 0; i < 400; i++)); do
		since=$(tail -n +$((errlog_mark + 1)) "$errlog")
		if ! grep -qF 'must be rolled back' <<<"$since" ||
			grep -qF 'Rollback of non-prepared transactions completed' <<<"$since"; then
			read -r trx hist < <(sql -e "SELECT (SELECT count(*) FROM information_schema.innodb_trx
				WHERE trx_state = 'ROLLING BACK'), (SELECT variable_value FROM
				information_schema.global_status WHERE variable_name = 'INNODB_HISTORY_LIST_LENGTH')") ||
				fail "$1: cannot read information_schema.innodb_trx and the history list length"
			((trx == 0 && hist == 0)) && return 0
		fi
		sleep 0.3
	done
	fail "$1: InnoDB has not settled after 120 s: recovered transactions rolling back: $trx, history list length: $hist"
}
check_tables() {
	local out
	out=$(sql -e 'CHECK TABLE rel.r EXTENDED; CHECK TABLE rel.cnt EXTENDED;') || fail "$1: CHECK TABLE failed to run"
	if grep -v -P '\tstatus\tOK$' <<<"$out" | grep -q .; then
		echo "$out" >&2
		fail "$1: CHECK TABLE reports problems"
	fi
}

for ((c = 1; c <= clients; c++)); do : >"$TDEFS_WORK/client-$c.out"; done
for ((round = 1; round <= rounds; round++)); do
	client_pids=()
	for ((c = 1; c <= clients; c++)); do
		from=$(($(sql rel -e "SELECT n FROM cnt WHERE c = $c") + 1))
		client_sql "$c" "$from" | sql --unbuffered rel >>"$TDEFS_WORK/client-$c.out" 2>>"$TDEFS_WORK/client-$c.err" &
		client_pids+=($!)
	done
	rel_rand_ms 2000 4000
	delay=$REL_MS
	rel_sleep_ms "$delay"
	for p in "${client_pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { cat "$TDEFS_WORK"/client-*.err >&2; fail "round $round: a client ended before the kill"; }
	done
	errlog_check "round $round, before the kill"
	rel_kill_daemon
	db_kill
	for p in "${client_pids[@]}"; do rel_wait_pid "$p" 30 || true; done
	client_pids=()
	rel_remount_after_kill
	t0=${EPOCHREALTIME/./}
	db_start "round $round: crash recovery"
	rec_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	if [[ ${TDEFS_REL_MARIADB_EARLY_CHECK:-0} == 1 ]]; then
		# Diagnostics only: CHECK TABLE before rollback and purge are over; logged, never fatal.
		early=$(sql -e 'CHECK TABLE rel.r EXTENDED' 2>&1 | grep -v -P '\tstatus\tOK$' || true)
		log "round $round: early CHECK TABLE (before InnoDB settled): ${early:-OK}"
	fi
	verify_clients "round $round (kill after $delay ms)"
	innodb_settle "round $round"
	rb_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	check_tables "round $round"
	log "round $round: killed after $delay ms; transactions present per client: ${VERIFIED[1]} ${VERIFIED[2]} ${VERIFIED[3]} (each >= acknowledged); CHECK TABLE ok; recovery + start ${rec_ms} ms, rollback and purge done after ${rb_ms} ms"
done
total=$(sql rel -e 'SELECT count(*) FROM r')
((total > 0)) || fail "no rows were committed in $rounds rounds: the load did not run"

# ---- InnoDB's own I/O: which page caches did it go through? ------------------------------------
# Fresh caches: clean stop, remount (the mount's page cache of every file goes with the old
# mount), the backing files evicted, start without loading the buffer pool dump.
# A full scan then reads every page of r.ibd through InnoDB, an update of every row dirties every
# page and innodb_max_dirty_pages_pct=0 makes InnoDB write them all back.
db_stop || fail "mariadbd did not shut down within 60 s"
tdefs_remount
mapfile -d '' backing_files < <(find "$TDEFS_BACKING/mariadb" -type f -print0)
evict "${backing_files[@]}"
(($(pages_cached "$TDEFS_BACKING/mariadb/rel/r.ibd") <= 1)) || fail "evicting the backing r.ibd from the page cache did not work"
errlog_check "the last recovery"
db_start "O_DIRECT measurement"
sql rel -e 'SELECT count(*), sum(length(pad)) FROM r IGNORE INDEX (pad_idx)' >/dev/null
sql rel -e 'SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0; SET GLOBAL innodb_max_dirty_pages_pct = 0;
	UPDATE r SET u = u + 1;' || fail "the update of every row failed"
for ((i = 0; i < 300; i++)); do
	dirty=$(sql -e "SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'")
	((dirty == 0)) && break
	sleep 0.1
done
# Whether the descriptors carry O_DIRECT (octal 040000 in /proc/PID/fdinfo "flags"): InnoDB's
# descriptor of r.ibd, and the daemon's descriptors of the backing r.ibd.
fd_flags() {
	local pid=$1 target=$2 fd f out=
	for fd in /proc/"$pid"/fd/*; do
		[[ $(readlink "$fd" 2>/dev/null) == "$target" ]] || continue
		f=$(awk '/^flags:/ { print $2 }' "/proc/$pid/fdinfo/${fd##*/}")
		out+="${out:+, }fd ${fd##*/} flags $f"
		(((8#$f & 8#40000) == 0)) || out+=" (O_DIRECT)"
	done
	echo "${out:-none open}"
}
ibd_pages=$(($(stat -c %s "$data/rel/r.ibd") / 4096))
innodb_fds=$(fd_flags "$mysqld_pid" "$data/rel/r.ibd")
daemon_fds=$(fd_flags "$(rel_daemon_pid)" "$TDEFS_BACKING/mariadb/rel/r.ibd")
ibd_mnt=$(pages_cached "$data/rel/r.ibd")
ibd_back=$(pages_cached "$TDEFS_BACKING/mariadb/rel/r.ibd")
log "InnoDB r.ibd ($ibd_pages pages) after a full scan and a flushed update of every row ($dirty dirty pages left): mount page cache $ibd_mnt pages, backing page cache $ibd_back pages (measurement)"
log "descriptors of r.ibd: mariadbd $innodb_fds; tdefs daemon (backing file) $daemon_fds"
innodb_note="InnoDB r.ibd: $ibd_mnt/$ibd_pages pages cached on the mount, $ibd_back on the backing side"
((ibd_pages >= 1000)) || fail "r.ibd has only $ibd_pages pages: too small for the O_DIRECT measurement"
((ibd_mnt * 4 < ibd_pages && ibd_back * 4 < ibd_pages)) ||
	fail "InnoDB with innodb_flush_method=O_DIRECT: $innodb_note after reading and rewriting all of it: its I/O does not bypass the page cache"

# ---- 3. clean shutdown, innochecksum, remount ------------------------------------------------------
errlog_check "the O_DIRECT measurement"
db_stop || fail "mariadbd did not shut down within 60 s"
innochecksum "$data/rel/r.ibd" >"$TDEFS_WORK/innochecksum.log" 2>&1 ||
	{ tail -n 20 "$TDEFS_WORK/innochecksum.log" >&2; fail "innochecksum found bad pages in r.ibd"; }
tdefs_remount
db_start "after a clean remount"
verify_clients "after a clean remount"
innodb_settle "after a clean remount"
check_tables "after a clean remount"
db_stop || fail "mariadbd did not shut down within 60 s"
errlog_check "after a clean remount"
rel_daemon_log_check --all
pass "O_DIRECT end to end ($fcntl_note; $innodb_note); $rounds daemon kills under 3 InnoDB clients: $total rows, every acknowledged commit present, CHECK TABLE and innochecksum ok"
