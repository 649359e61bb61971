/*
 * Master-key rotation in a running daemon. The daemon learns of a new active master key by
 * re-reading its wallet whenever the wallet directory changes (inotify): tdekey set-key writes
 * the wallet with a rename, the watcher sees it, and files created from then on are wrapped
 * under the new key. Existing headers are rewrapped by a background job (tderekey rewrap) that
 * walks the backing directory and rewraps each header through header_rewrap_file(); readers and
 * writers of a file never wait for it, since data I/O does not touch the header.
 *
 * Re-reading works for every wallet the daemon can open unattended (auto-login, local
 * auto-login, or a password wallet with an external password store). A daemon started from a
 * password typed on a descriptor keeps the keys it has and says so in its log.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* --- wallet reload ----------------------------------------------------------------------- */

int keys_reload(char *error, size_t error_len)
{
	char keystore_error[KEYSTORE_ERROR_SIZE] = "";
	uint8_t old_id[16], new_id[16], active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE];
	struct keyring *fresh, *stale;
	const uint8_t *mek;
	int ret;

	ret = keystore_open_for_mount(daemon_state.wallet_path, -1, &fresh, keystore_error);
	if (ret < 0) {
		snprintf(error, error_len, "%s; keeping the %zu keys already loaded", keystore_error,
			 keyring_count(daemon_state.keyring));
		return ret;
	}
	keyring_wallet_id(fresh, new_id);
	keyring_wallet_id(daemon_state.keyring, old_id);
	if (memcmp(old_id, new_id, sizeof(old_id)) != 0) {
		keyring_free(fresh);
		snprintf(error, error_len,
			 "wallet %s now holds another wallet (different wallet ID); keeping the keys "
			 "already loaded", daemon_state.wallet_path);
		return -EINVAL;
	}
	if (keyring_active(fresh, active_id, &mek) < 0) {
		keyring_free(fresh);
		snprintf(error, error_len, "wallet %s has no active master key; keeping the keys "
			 "already loaded", daemon_state.wallet_path);
		return -ENOKEY;
	}
	pthread_rwlock_wrlock(&daemon_state.keyring_lock);
	stale = daemon_state.keyring;
	daemon_state.keyring = fresh;
	pthread_rwlock_unlock(&daemon_state.keyring_lock);
	keyring_free(stale);
	key_id_format(active_id, active_text);
	log_info("tdefs: wallet %s re-read: %zu master keys, active %s", daemon_state.wallet_path,
		 keyring_count(fresh), active_text);
	return 0;
}

static pthread_t watch_thread;
static int watch_fd = -1;
static int watch_stop_pipe[2] = { -1, -1 };

static void *watch_wallet(void *unused)
{
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char error[KEYSTORE_ERROR_SIZE + 128];

	(void)unused;
	for (;;) {
		struct pollfd fds[2] = { { watch_fd, POLLIN, 0 }, { watch_stop_pipe[0], POLLIN, 0 } };

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		if (read(watch_fd, events, sizeof(events)) <= 0)
			continue;
		/* A wallet change is several events (temp file, rename, backup): let them settle. */
		usleep(200000);
		while (poll(fds, 1, 0) > 0 && read(watch_fd, events, sizeof(events)) > 0)
			;
		if (keys_reload(error, sizeof(error)) < 0)
			log_warning("tdefs: %s", error);
	}
	return NULL;
}

int wallet_watch_start(void)
{
	watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (watch_fd < 0)
		return -errno;
	if (inotify_add_watch(watch_fd, daemon_state.wallet_path,
			      IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0 ||
	    pipe2(watch_stop_pipe, O_CLOEXEC) < 0) {
		int ret = -errno;
		close(watch_fd);
		watch_fd = -1;
		return ret;
	}
	return -pthread_create(&watch_thread, NULL, watch_wallet, NULL);
}

void wallet_watch_stop(void)
{
	if (watch_fd < 0)
		return;
	if (write(watch_stop_pipe[1], "x", 1) == 1)
		pthread_join(watch_thread, NULL);
	close(watch_fd);
	close(watch_stop_pipe[0]);
	close(watch_stop_pipe[1]);
	watch_fd = -1;
}

/* --- the rewrap job ---------------------------------------------------------------------- */

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job_status job;          /* guarded by job_lock */
static pthread_t job_thread;           /* guarded by job_lock */
static bool job_thread_joinable;       /* guarded by job_lock */
static struct timespec job_clock_start; /* only the job thread uses it */
static uint64_t job_header_writes;      /* only the job thread uses it */

const char *job_state_name(enum job_state state)
{
	static const char *const names[] = {
		[JOB_IDLE] = "idle",       [JOB_RUNNING] = "running", [JOB_STOPPING] = "stopping",
		[JOB_STOPPED] = "stopped", [JOB_DONE] = "done",       [JOB_FAILED] = "failed",
	};
	return names[state];
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void throttle(double rate_limit)
{
	double due;

	if (rate_limit <= 0)
		return;
	due = (double)job_header_writes / rate_limit - seconds_since(&job_clock_start);
	if (due > 0)
		usleep((useconds_t)(due * 1e6));
}

static int visit_backing_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct rewrap_outcome outcome;
	double rate_limit;
	int ret;

	pthread_mutex_lock(&job_lock);
	rate_limit = job.rate_limit;
	bool stopping = job.state == JOB_STOPPING;
	pthread_mutex_unlock(&job_lock);
	if (stopping)
		return FTW_STOP;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return FTW_CONTINUE;
	if (ftw->level == 1 && strcmp(path + ftw->base, CONFIG_FILE_NAME) == 0)
		return FTW_CONTINUE;

	throttle(rate_limit);
	ret = header_rewrap_file(AT_FDCWD, path, &outcome);
	char failure[sizeof(job.last_error)] = "";

	if (ret < 0)
		snprintf(failure, sizeof(failure), "%s: %s", path,
			 ret == -ENOKEY ? "the wallet lacks its master key" : strerror(-ret));
	pthread_mutex_lock(&job_lock);
	job.files_total++;
	if (ret < 0) {
		job.files_failed++;
		memcpy(job.last_error, failure, sizeof(failure));
	} else if (outcome.rewrapped) {
		job.files_rewrapped++;
	} else {
		job.files_skipped++;
	}
	pthread_mutex_unlock(&job_lock);
	if (ret < 0)
		log_error("tdefs: rewrap %s", failure);
	if (outcome.rewrapped)
		job_header_writes++;
	return FTW_CONTINUE;
}

static void *run_rewrap(void *unused)
{
	int ret;

	(void)unused;
	clock_gettime(CLOCK_MONOTONIC, &job_clock_start);
	job_header_writes = 0;
	ret = nftw(daemon_state.backing_path, visit_backing_entry, 16,
		   FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
	pthread_mutex_lock(&job_lock);
	if (job.state == JOB_STOPPING)
		job.state = JOB_STOPPED;
	else if (ret < 0 || job.files_failed > 0)
		job.state = JOB_FAILED;
	else
		job.state = JOB_DONE;
	job.finished = time(NULL);
	log_info("tdefs: rewrap %s: %llu headers rewrapped, %llu already current, %llu failed",
		 job_state_name(job.state), (unsigned long long)job.files_rewrapped,
		 (unsigned long long)job.files_skipped, (unsigned long long)job.files_failed);
	pthread_mutex_unlock(&job_lock);
	return NULL;
}

int rewrap_start(double rate_limit, char *error, size_t error_len)
{
	int ret;

	pthread_mutex_lock(&job_lock);
	if (job.state == JOB_RUNNING || job.state == JOB_STOPPING) {
		pthread_mutex_unlock(&job_lock);
		snprintf(error, error_len, "a rewrap is already running on this mount");
		return -EBUSY;
	}
	if (job_thread_joinable) {
		pthread_join(job_thread, NULL);
		job_thread_joinable = false;
	}
	memset(&job, 0, sizeof(job));
	job.state = JOB_RUNNING;
	job.rate_limit = rate_limit;
	job.started = time(NULL);
	ret = pthread_create(&job_thread, NULL, run_rewrap, NULL);
	if (ret) {
		job.state = JOB_FAILED;
		snprintf(error, error_len, "cannot start the rewrap thread: %s", strerror(ret));
	} else {
		job_thread_joinable = true;
	}
	pthread_mutex_unlock(&job_lock);
	return -ret;
}

void rewrap_stop(void)
{
	pthread_mutex_lock(&job_lock);
	if (job.state == JOB_RUNNING)
		job.state = JOB_STOPPING;
	pthread_mutex_unlock(&job_lock);
}

void rewrap_status(struct job_status *status)
{
	pthread_mutex_lock(&job_lock);
	*status = job;
	pthread_mutex_unlock(&job_lock);
}

void rewrap_join(void)
{
	rewrap_stop();
	pthread_mutex_lock(&job_lock);
	bool joinable = job_thread_joinable;
	job_thread_joinable = false;
	pthread_mutex_unlock(&job_lock);
	if (joinable)
		pthread_join(job_thread, NULL);
}
