/*
 * The daemon's metrics: the counters of fs/metrics.h, rendered in the Prometheus text
 * exposition format (version 0.0.4) together with the jobs' progress (job_get_status) and the
 * keystore's state, and the -o metrics=FILE writer that keeps a file current for
 * node_exporter's textfile collector. Names are tdefs_*, counters end in _total, units are in
 * the names. No backing path or file name goes into the text: the file is world-readable.
 *
 * The file is written as a root daemon writes anywhere: never through a path another user
 * controls. Its directory is opened once, before mounting, without following a symlink in its
 * last component, and refused when anyone but root or the daemon's user could write to it;
 * each update is a temporary file in that directory, renamed over FILE (renameat on the
 * descriptor), so a reader never sees half a file. A clean unmount removes it.
 */
#include "fs/daemon.h"
#include "fs/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

struct metrics_counters metrics;

static const char *const operation_names[METRICS_OP_COUNT] = { "read", "write", "truncate",
							       "fallocate", "fsync" };
static const char *const error_kind_names[METRICS_ERR_KIND_COUNT] = { "nospc", "dquot", "io",
								      "rofs", "format", "other" };
static const char *const load_error_names[METRICS_LOAD_COUNT] = { "missing_key", "damaged",
								  "other" };

enum metrics_operation metrics_operation_of(const char *operation)
{
	for (int i = 0; i < METRICS_OP_COUNT; i++)
		if (strcmp(operation, operation_names[i]) == 0)
			return (enum metrics_operation)i;
	return METRICS_OP_READ;
}

struct text {
	char *buf;
	size_t size, used;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *text, const char *format, ...)
{
	va_list args;
	int n;

	if (text->full)
		return;
	va_start(args, format);
	n = vsnprintf(text->buf + text->used, text->size - text->used, format, args);
	va_end(args);
	if (n < 0 || (size_t)n >= text->size - text->used) {
		text->full = true;
		text->buf[text->used] = '\0';
		return;
	}
	text->used += (size_t)n;
}

static void family(struct text *text, const char *name, const char *type, const char *help)
{
	add(text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* A label value: backslash, double quote and newline escaped, as the format wants. */
static void escape_label(const char *value, char *out, size_t size)
{
	size_t n = 0;

	for (; *value && n + 3 < size; value++) {
		if (*value == '\\' || *value == '"') {
			out[n++] = '\\';
			out[n++] = *value;
		} else if (*value == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			out[n++] = *value;
		}
	}
	out[n] = '\0';
}

static void render_jobs(struct tdefs_daemon *daemon, struct text *text)
{
	static const char *const job_names[JOB_KIND_COUNT] = { "rewrap", "data", "encrypt" };
	static const enum job_state states[] = { JOB_IDLE, JOB_RUNNING, JOB_PAUSED, JOB_STOPPING,
						 JOB_STOPPED, JOB_DONE, JOB_FAILED };
	struct job_status status[JOB_KIND_COUNT];

	for (int k = 0; k < JOB_KIND_COUNT; k++)
		job_get_status(daemon, (enum job_kind)k, &status[k]);
	family(text, "tdefs_job_state", "gauge",
	       "1 for the state each background job is in (rewrap: headers under the active key; "
	       "data: fresh data keys), 0 for the others.");
	for (int k = 0; k < JOB_KIND_COUNT; k++)
		for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++)
			add(text, "tdefs_job_state{job=\"%s\",state=\"%s\"} %d\n", job_names[k],
			    job_state_name(states[s]), status[k].state == states[s]);
	family(text, "tdefs_job_files", "gauge",
	       "Files of the current or last run of each job, by outcome (visited counts all).");
	for (int k = 0; k < JOB_KIND_COUNT; k++) {
		const struct { const char *name; uint64_t value; } outcomes[] = {
			{ "visited", status[k].files_total },
			{ "changed", status[k].files_changed },
			{ "skipped", status[k].files_skipped },
			{ "failed", status[k].files_failed },
		};
		for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]); o++)
			add(text, "tdefs_job_files{job=\"%s\",outcome=\"%s\"} %llu\n", job_names[k],
			    outcomes[o].name, (unsigned long long)outcomes[o].value);
	}
	family(text, "tdefs_job_rekeyed_bytes", "gauge",
	       "Data bytes re-encrypted in the files the current or last data rekey has done "
	       "(the file in progress: tdefs_job_current_file_done_bytes).");
	add(text, "tdefs_job_rekeyed_bytes{job=\"data\"} %llu\n",
	    (unsigned long long)status[JOB_DATA_REKEY].bytes_done);
	family(text, "tdefs_job_current_file_done_bytes", "gauge",
	       "Bytes done of the file a job is working on, or worked on last.");
	for (int k = 0; k < JOB_KIND_COUNT; k++)
		add(text, "tdefs_job_current_file_done_bytes{job=\"%s\"} %llu\n", job_names[k],
		    (unsigned long long)status[k].current_done);
	family(text, "tdefs_job_current_file_size_bytes", "gauge",
	       "Size of the file a job is working on, or worked on last.");
	for (int k = 0; k < JOB_KIND_COUNT; k++)
		add(text, "tdefs_job_current_file_size_bytes{job=\"%s\"} %llu\n", job_names[k],
		    (unsigned long long)status[k].current_total);
	family(text, "tdefs_job_started_timestamp_seconds", "gauge",
	       "When the current or last run of each job started (0: never).");
	for (int k = 0; k < JOB_KIND_COUNT; k++)
		add(text, "tdefs_job_started_timestamp_seconds{job=\"%s\"} %lld\n", job_names[k],
		    (long long)status[k].started);
	family(text, "tdefs_job_finished_timestamp_seconds", "gauge",
	       "When the last run of each job ended (0: never, or still running).");
	for (int k = 0; k < JOB_KIND_COUNT; k++)
		add(text, "tdefs_job_finished_timestamp_seconds{job=\"%s\"} %lld\n", job_names[k],
		    (long long)status[k].finished);
}

static void render_keystore(struct tdefs_daemon *daemon, struct text *text)
{
	uint8_t active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE] = "";
	char container[256];
	const char *selected, *kind;
	bool has_active;
	size_t count;

	pthread_rwlock_rdlock(&daemon->keyring_lock);
	has_active = keyring_active(daemon->keyring, active_id, NULL) == 0;
	if (has_active)
		key_id_format(active_id, active_text);
	count = keyring_count(daemon->keyring);
	selected = keyring_selected_container(daemon->keyring);
	escape_label(selected ? selected : "", container, sizeof(container));
	/* A static name (PASSWORD, AUTOLOGIN, ...): nothing to escape, valid after the unlock. */
	kind = keyring_source_kind_name(daemon->keyring);
	pthread_rwlock_unlock(&daemon->keyring_lock);

	family(text, "tdefs_keystore_keys", "gauge",
	       "Master keys loaded from the wallet; wallet_kind: the kind of wallet file they came "
	       "from.");
	add(text, "tdefs_keystore_keys{wallet_kind=\"%s\"} %zu\n", kind, count);
	family(text, "tdefs_keystore_active_key_info", "gauge",
	       "The active master key (new files are wrapped under it); absent without one.");
	if (has_active)
		add(text,
		    "tdefs_keystore_active_key_info{key_id=\"%s\",container=\"%s\","
		    "wallet_kind=\"%s\"} 1\n",
		    active_text, container, kind);
	family(text, "tdefs_keystore_open", "gauge",
	       "1 while the keystore is open, 0 after tderekey close (no master key in memory) "
	       "until tderekey open.");
	add(text, "tdefs_keystore_open %d\n", keystore_is_closed() ? 0 : 1);
	family(text, "tdefs_key_cache_entries", "gauge",
	       "DEKs of files kept in locked memory by -o key_cache (0 when it is off).");
	add(text, "tdefs_key_cache_entries %zu\n", key_cache_count());
	family(text, "tdefs_keystore_reloads_total", "counter",
	       "Wallet re-reads (a wallet change, tderekey reload) by result; a failed one keeps "
	       "the keys loaded.");
	add(text, "tdefs_keystore_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)load(&metrics.reloads_ok));
	add(text, "tdefs_keystore_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)load(&metrics.reloads_failed));
}

int metrics_render(struct tdefs_daemon *daemon, char *buf, size_t size)
{
	struct text text = { .buf = buf, .size = size };

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	family(&text, "tdefs_read_bytes_total", "counter",
	       "Plaintext bytes read through the mount.");
	add(&text, "tdefs_read_bytes_total %llu\n", (unsigned long long)load(&metrics.read_bytes));
	family(&text, "tdefs_written_bytes_total", "counter",
	       "Plaintext bytes written through the mount.");
	add(&text, "tdefs_written_bytes_total %llu\n",
	    (unsigned long long)load(&metrics.written_bytes));
	family(&text, "tdefs_io_errors_total", "counter",
	       "Data-path errors (decryption and encryption of blocks, backing I/O) by operation "
	       "and kind; format: a block or header that failed its checks.");
	for (int op = 0; op < METRICS_OP_COUNT; op++)
		for (int kind = 0; kind < METRICS_ERR_KIND_COUNT; kind++)
			add(&text, "tdefs_io_errors_total{operation=\"%s\",kind=\"%s\"} %llu\n",
			    operation_names[op], error_kind_names[kind],
			    (unsigned long long)load(&metrics.io_errors[op][kind]));
	family(&text, "tdefs_file_key_errors_total", "counter",
	       "Files whose data key could not be loaded from their header, by reason "
	       "(missing_key: the wallet lacks its master key; damaged: no copy unseals).");
	for (int r = 0; r < METRICS_LOAD_COUNT; r++)
		add(&text, "tdefs_file_key_errors_total{reason=\"%s\"} %llu\n", load_error_names[r],
		    (unsigned long long)load(&metrics.load_errors[r]));
	family(&text, "tdefs_open_files", "gauge",
	       "Files held open through the mount (and files a truncate or data rekey step is "
	       "working on).");
	add(&text, "tdefs_open_files %lld\n",
	    (long long)__atomic_load_n(&metrics.file_users, __ATOMIC_RELAXED));
	family(&text, "tdefs_deks_loaded", "gauge",
	       "Data encryption keys in memory: one per file in use, shared by its opens.");
	add(&text, "tdefs_deks_loaded %lld\n",
	    (long long)__atomic_load_n(&metrics.deks_loaded, __ATOMIC_RELAXED));
	render_keystore(daemon, &text);
	render_jobs(daemon, &text);
	family(&text, "tdefs_control_refused_total", "counter",
	       "Control channel requests refused (not root or the mount's owner, bad requests, "
	       "failed commands).");
	add(&text, "tdefs_control_refused_total %llu\n",
	    (unsigned long long)load(&metrics.control_refused));
	return text.full ? -ENOSPC : (int)text.used;
}

/* --- -o metrics=FILE --------------------------------------------------------------------- */

static char file_path[PATH_MAX];
static char file_name[NAME_MAX + 1];
static unsigned file_interval = 15;
static int directory_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t writer_thread;
static bool writer_running;

int metrics_file_option(const char *path, char *error, size_t error_size)
{
	const char *slash = strrchr(path, '/');

	if (path[0] != '/' || strlen(path) >= sizeof(file_path) || !slash[1] ||
	    strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0 ||
	    strlen(slash + 1) > NAME_MAX - 8) {
		snprintf(error, error_size, "-o metrics=%s: give an absolute file name", path);
		return -EINVAL;
	}
	snprintf(file_path, sizeof(file_path), "%s", path);
	snprintf(file_name, sizeof(file_name), "%s", slash + 1);
	return 0;
}

int metrics_interval_option(const char *value, char *error, size_t error_size)
{
	char *end = NULL;
	long seconds = strtol(value, &end, 10);

	if (end == value || *end || seconds < 1 || seconds > 86400) {
		snprintf(error, error_size,
			 "-o metrics_interval=%s: give a whole number of seconds from 1 to 86400",
			 value);
		return -EINVAL;
	}
	file_interval = (unsigned)seconds;
	return 0;
}

int metrics_file_open(char *error, size_t error_size)
{
	char directory[PATH_MAX];
	size_t length;
	struct stat st;
	uid_t uid = geteuid();

	if (!file_path[0])
		return 0;
	length = (size_t)(strrchr(file_path, '/') - file_path);
	snprintf(directory, sizeof(directory), "%.*s", (int)(length ? length : 1), file_path);
	directory_fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (directory_fd < 0) {
		int ret = -errno;

		/* O_NOFOLLOW | O_DIRECTORY on a symlink: ENOTDIR or ELOOP. Name it. */
		if (lstat(directory, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(error, error_size, "-o metrics=%s: directory %s is a symlink (give "
				 "the real directory)", file_path, directory);
		else
			snprintf(error, error_size, "-o metrics=%s: directory %s: %s", file_path,
				 directory, strerror(-ret));
		return ret;
	}
	if (fstat(directory_fd, &st) < 0 || (st.st_uid != 0 && st.st_uid != uid) ||
	    (st.st_mode & 022)) {
		snprintf(error, error_size,
			 "-o metrics=%s: directory %s (owner uid %u, mode %04o) can be changed by "
			 "other users, who could redirect the file; use a directory only root%s can "
			 "write", file_path, directory, (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777), uid == 0 ? "" : " and you");
		close(directory_fd);
		directory_fd = -1;
		return -EPERM;
	}
	return 0;
}

/* One update: a temporary file beside FILE, renamed over it. */
static int write_once(struct tdefs_daemon *daemon)
{
	static char text[32768];
	char temporary[NAME_MAX + 8];
	int length = metrics_render(daemon, text, sizeof(text)), fd, ret = 0;

	if (length < 0)
		return length;
	snprintf(temporary, sizeof(temporary), ".%s.tmp", file_name);
	fd = openat(directory_fd, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0644);
	if (fd < 0)
		return -errno;
	/* 0644 whatever the umask: node_exporter runs as a user of its own. */
	ret = fchmod(fd, 0644) < 0 ? -errno : pwrite_all(fd, text, (size_t)length, 0);
	close(fd);
	if (ret == 0 && renameat(directory_fd, temporary, directory_fd, file_name) < 0)
		ret = -errno;
	if (ret < 0)
		unlinkat(directory_fd, temporary, 0);
	return ret;
}

static void *write_loop(void *argument)
{
	struct tdefs_daemon *daemon = argument;
	bool failing = false;

	for (;;) {
		struct pollfd pfd = { stop_pipe[0], POLLIN, 0 };
		int ret = write_once(daemon);

		/* One line when writing starts failing and one when it works again, not a stream. */
		if (ret < 0 && !failing)
			log_warning("tdefs: cannot write metrics file %s: %s (trying again every %u s)",
				    file_path, strerror(-ret), file_interval);
		else if (ret == 0 && failing)
			log_info("tdefs: metrics file %s written again", file_path);
		failing = ret < 0;
		ret = poll(&pfd, 1, (int)file_interval * 1000);
		if (ret > 0 || (ret < 0 && errno != EINTR))
			break;
	}
	return NULL;
}

int metrics_file_start(struct tdefs_daemon *daemon)
{
	int ret;

	if (directory_fd < 0)
		return 0;
	if (pipe2(stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	ret = -pthread_create(&writer_thread, NULL, write_loop, daemon);
	writer_running = ret == 0;
	return ret;
}

void metrics_file_stop(void)
{
	if (writer_running && write(stop_pipe[1], "x", 1) == 1)
		pthread_join(writer_thread, NULL);
	writer_running = false;
	for (int i = 0; i < 2; i++)
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
	stop_pipe[0] = stop_pipe[1] = -1;
	/* At unmount the file goes: stale counters would look like a mount that is still there. */
	if (directory_fd >= 0) {
		unlinkat(directory_fd, file_name, 0);
		close(directory_fd);
	}
	directory_fd = -1;
}
