/*
 * tdefs-rel-sqlite: the writer and the checker of tests/reliability/test_sqlite_crash.sh.
 *
 * The test kills the tdefs daemon under running SQLite writers and afterwards proves that every
 * transaction a writer saw committed is still there, whole. A writer appends "B <tx>" to its log
 * (a file on a plain file system, outside the mount) before it begins transaction <tx>, and
 * "C <tx>" only after sqlite3_step(COMMIT) returned SQLITE_DONE. The log is written with write(2)
 * on an O_APPEND descriptor, so a line is in the kernel before the next transaction starts; the
 * machine does not crash in this test (only the daemon dies), so no fsync is needed for it.
 * Transaction <tx> of writer <w> inserts 1 + tx % 7 rows (w, tx, j) whose blob is a pure function
 * of (w, tx, j), records itself in txs(w, tx, nrows) and, from tx 51 on, deletes the odd-j rows
 * of transaction tx - 50. So the whole expected content follows from the set of committed
 * transactions, which the checker reads from the database and compares with the logs:
 *   - PRAGMA integrity_check is "ok";
 *   - for each writer, txs holds exactly 1..N (no gap: writers resume at max + 1), with N at
 *     least the last "C" in the log (nothing acknowledged is lost) and at most the last "B"
 *     (nothing that never began exists);
 *   - every row of every present transaction is there with the right blob, except the odd rows
 *     a present later transaction deleted, and no row exists outside a present transaction.
 *
 *   tdefs-rel-sqlite init DB             create the schema, journal_mode=WAL (before writers)
 *   tdefs-rel-sqlite writer DB LOG W     write transactions until an error (or a signal); the
 *                                        daemon's death ends it with an I/O error or SIGBUS
 *   tdefs-rel-sqlite verify DB LOGDIR N  check DB against LOGDIR/writer-1.log .. writer-N.log
 * TDEFS_REL_SQLITE_SYNC overrides the synchronous pragma (FULL) for a negative control run;
 * TDEFS_REL_SQLITE_MMAP=BYTES makes the writer read the database through mmap (PRAGMA mmap_size).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#define DELETE_DISTANCE 50
#define MAX_BLOB 3000

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static unsigned rows_of(int64_t tx)
{
	return 1u + (unsigned)(tx % 7);
}

/* The blob of row (w, tx, j): its length and bytes depend on nothing else. */
static size_t make_blob(int w, int64_t tx, unsigned j, uint8_t *out)
{
	uint64_t seed = mix64(((uint64_t)w << 48) ^ ((uint64_t)tx << 8) ^ j);
	size_t len = 1 + (size_t)(seed % MAX_BLOB);

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = mix64(seed + i);
		for (size_t k = 0; k < 8 && i + k < len; k++)
			out[i + k] = (uint8_t)(v >> (8 * k));
	}
	return len;
}

static int fail_db(sqlite3 *db, const char *what)
{
	fprintf(stderr, "tdefs-rel-sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "cannot open");
	return 3;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *error = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
		fprintf(stderr, "tdefs-rel-sqlite: %s: %s\n", sql, error ? error : "?");
		sqlite3_free(error);
		return -1;
	}
	return 0;
}

static int log_line(int fd, char kind, int64_t tx)
{
	char line[40];
	int len = snprintf(line, sizeof(line), "%c %" PRId64 "\n", kind, tx);

	return write(fd, line, (size_t)len) == len ? 0 : -1;
}

/* Creates the schema in WAL mode; run once, before concurrent writers start. */
static int init(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		return fail_db(db, path);
	if (exec(db, "PRAGMA page_size=4096") < 0 || exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	    exec(db, "CREATE TABLE IF NOT EXISTS t(w INTEGER, tx INTEGER, j INTEGER, v BLOB NOT NULL,"
		     " PRIMARY KEY(w, tx, j))") < 0 ||
	    exec(db, "CREATE INDEX IF NOT EXISTS t_j ON t(j, tx)") < 0 ||
	    exec(db, "CREATE TABLE IF NOT EXISTS txs(w INTEGER, tx INTEGER, nrows INTEGER NOT NULL,"
		     " PRIMARY KEY(w, tx))") < 0)
		return 3;
	return sqlite3_close(db) == SQLITE_OK ? 0 : 3;
}

static int writer(const char *path, const char *log_path, int w)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *next = NULL, *insert = NULL, *record = NULL, *erase = NULL;
	const char *sync = getenv("TDEFS_REL_SQLITE_SYNC");
	char pragma[64];
	uint8_t blob[MAX_BLOB];
	int64_t tx;
	int log_fd;

	log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		fprintf(stderr, "tdefs-rel-sqlite: %s: %s\n", log_path, strerror(errno));
		return 2;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return fail_db(db, path);
	sqlite3_busy_timeout(db, 20000);
	snprintf(pragma, sizeof(pragma), "PRAGMA synchronous=%s", sync && *sync ? sync : "FULL");
	if (exec(db, pragma) < 0 || exec(db, "PRAGMA wal_autocheckpoint=64") < 0 ||
	    exec(db, "PRAGMA cache_size=20") < 0)
		return 3;
	if (getenv("TDEFS_REL_SQLITE_MMAP")) {
		snprintf(pragma, sizeof(pragma), "PRAGMA mmap_size=%lld",
			 strtoll(getenv("TDEFS_REL_SQLITE_MMAP"), NULL, 10));
		if (exec(db, pragma) < 0)
			return 3;
	}
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(tx), 0) + 1 FROM txs WHERE w = ?1", -1,
			       &next, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)", -1, &insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO txs VALUES (?1, ?2, ?3)", -1, &record, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM t WHERE w = ?1 AND tx = ?2 AND j % 2 = 1", -1, &erase,
			       NULL) != SQLITE_OK)
		return fail_db(db, "prepare");
	sqlite3_bind_int(next, 1, w);
	if (sqlite3_step(next) != SQLITE_ROW)
		return fail_db(db, "next transaction number");
	tx = sqlite3_column_int64(next, 0);
	sqlite3_finalize(next);

	for (;; tx++) {
		if (log_line(log_fd, 'B', tx) < 0)
			return 2;
		if (exec(db, "BEGIN IMMEDIATE") < 0)
			return 3;
		for (unsigned j = 0; j < rows_of(tx); j++) {
			size_t len = make_blob(w, tx, j, blob);
			sqlite3_reset(insert);
			sqlite3_bind_int(insert, 1, w);
			sqlite3_bind_int64(insert, 2, tx);
			sqlite3_bind_int(insert, 3, (int)j);
			sqlite3_bind_blob(insert, 4, blob, (int)len, SQLITE_STATIC);
			if (sqlite3_step(insert) != SQLITE_DONE)
				return fail_db(db, "insert");
		}
		sqlite3_reset(record);
		sqlite3_bind_int(record, 1, w);
		sqlite3_bind_int64(record, 2, tx);
		sqlite3_bind_int(record, 3, (int)rows_of(tx));
		if (sqlite3_step(record) != SQLITE_DONE)
			return fail_db(db, "insert txs");
		if (tx > DELETE_DISTANCE) {
			sqlite3_reset(erase);
			sqlite3_bind_int(erase, 1, w);
			sqlite3_bind_int64(erase, 2, tx - DELETE_DISTANCE);
			if (sqlite3_step(erase) != SQLITE_DONE)
				return fail_db(db, "delete");
		}
		if (exec(db, "COMMIT") < 0)
			return 3;
		if (log_line(log_fd, 'C', tx) < 0)
			return 2;
	}
}

struct writer_log {
	int64_t last_begun, last_committed, commits;
};

static int read_log(const char *path, struct writer_log *out)
{
	FILE *f = fopen(path, "r");
	char kind;
	int64_t tx;

	memset(out, 0, sizeof(*out));
	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (fscanf(f, " %c %" SCNd64, &kind, &tx) == 2) {
		if (kind == 'B' && tx > out->last_begun)
			out->last_begun = tx;
		if (kind == 'C') {
			out->commits++;
			if (tx > out->last_committed)
				out->last_committed = tx;
		}
	}
	fclose(f);
	return 0;
}

static int64_t query_int(sqlite3 *db, const char *sql, int w, int64_t a, int64_t b)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, w);
	sqlite3_bind_int64(st, 2, a);
	sqlite3_bind_int64(st, 3, b);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int verify(const char *path, const char *log_dir, int writers)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st, *row;
	uint8_t blob[MAX_BLOB];
	int problems = 0;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return fail_db(db, path);
	sqlite3_busy_timeout(db, 20000);
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		return fail_db(db, "integrity_check");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		if (!text || strcmp(text, "ok") != 0) {
			fprintf(stderr, "integrity_check: %s\n", text ? text : "(null)");
			problems++;
		}
	}
	if (sqlite3_finalize(st) != SQLITE_OK)
		return fail_db(db, "integrity_check");
	if (sqlite3_prepare_v2(db, "SELECT v FROM t WHERE w = ?1 AND tx = ?2 AND j = ?3", -1, &row,
			       NULL) != SQLITE_OK)
		return fail_db(db, "prepare");

	for (int w = 1; w <= writers; w++) {
		char log_path[4096];
		struct writer_log lg;
		int64_t n, count, rows = 0, stray;

		snprintf(log_path, sizeof(log_path), "%s/writer-%d.log", log_dir, w);
		if (read_log(log_path, &lg) < 0) {
			fprintf(stderr, "tdefs-rel-sqlite: %s: %s\n", log_path, strerror(errno));
			return 2;
		}
		n = query_int(db, "SELECT coalesce(max(tx), 0) FROM txs WHERE w = ?1", w, 0, 0);
		count = query_int(db, "SELECT count(*) FROM txs WHERE w = ?1", w, 0, 0);
		if (n < 0 || count < 0)
			return fail_db(db, "txs");
		if (count != n) {
			fprintf(stderr, "writer %d: txs holds %" PRId64 " transactions but the highest is %"
				PRId64 ": a transaction in the middle is missing\n", w, count, n);
			problems++;
		}
		if (n < lg.last_committed) {
			fprintf(stderr, "writer %d: LOST COMMITS: the database ends at transaction %" PRId64
				" but the writer saw transactions up to %" PRId64 " commit (%" PRId64
				" acknowledged commits lost)\n", w, n, lg.last_committed, lg.last_committed - n);
			problems++;
		}
		if (n > lg.last_begun) {
			fprintf(stderr, "writer %d: transaction %" PRId64 " is present but the writer never "
				"began it (last begun %" PRId64 ")\n", w, n, lg.last_begun);
			problems++;
		}
		for (int64_t tx = 1; tx <= n; tx++) {
			bool odd_deleted = tx + DELETE_DISTANCE <= n;
			for (unsigned j = 0; j < rows_of(tx); j++) {
				bool expect = !(odd_deleted && j % 2 == 1);
				size_t len = make_blob(w, tx, j, blob);
				int rc;

				sqlite3_reset(row);
				sqlite3_bind_int(row, 1, w);
				sqlite3_bind_int64(row, 2, tx);
				sqlite3_bind_int(row, 3, (int)j);
				rc = sqlite3_step(row);
				if (rc == SQLITE_ROW) {
					rows++;
					if (!expect) {
						fprintf(stderr, "writer %d: row (%" PRId64 ", %u) should have been "
							"deleted by transaction %" PRId64 "\n", w, tx, j,
							tx + DELETE_DISTANCE);
						problems++;
					} else if ((size_t)sqlite3_column_bytes(row, 0) != len ||
						   memcmp(sqlite3_column_blob(row, 0), blob, len) != 0) {
						fprintf(stderr, "writer %d: row (%" PRId64 ", %u) has wrong "
							"contents (%d bytes, expected %zu)\n", w, tx, j,
							sqlite3_column_bytes(row, 0), len);
						problems++;
					}
				} else if (rc == SQLITE_DONE) {
					if (expect) {
						fprintf(stderr, "writer %d: row (%" PRId64 ", %u) of committed "
							"transaction %" PRId64 " is missing\n", w, tx, j, tx);
						problems++;
					}
				} else {
					return fail_db(db, "select row");
				}
				if (problems > 20)
					goto out;
			}
		}
		stray = query_int(db, "SELECT count(*) FROM t WHERE w = ?1 AND (tx > ?2 OR tx < 1 OR "
				  "j >= 1 + tx % 7)", w, n, 0);
		if (stray != 0) {
			fprintf(stderr, "writer %d: %" PRId64 " rows outside any committed transaction\n",
				w, stray);
			problems++;
		}
		printf("writer %d: %" PRId64 " transactions present (log: %" PRId64 " commits, last "
		       "acknowledged %" PRId64 ", last begun %" PRId64 "), %" PRId64 " rows verified\n",
		       w, n, lg.commits, lg.last_committed, lg.last_begun, rows);
	}
out:
	sqlite3_finalize(row);
	sqlite3_close(db);
	if (problems)
		fprintf(stderr, "tdefs-rel-sqlite: %d problem(s) in %s\n", problems, path);
	return problems ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "init") == 0)
		return init(argv[2]);
	if (argc == 5 && strcmp(argv[1], "writer") == 0)
		return writer(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "verify") == 0)
		return verify(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: tdefs-rel-sqlite init DB\n"
			"       tdefs-rel-sqlite writer DB LOG W\n"
			"       tdefs-rel-sqlite verify DB LOGDIR NWRITERS\n");
	return 2;
}
