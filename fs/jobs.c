/*
 * Background jobs over a backing directory: the master-key rewrap and the online data rekey.
 * Each kind has one slot, so a rewrap and a data rekey can run at the same time; both funnel
 * their header writes through header_update(), which serialises them per file. A job walks the
 * backing tree (or one subtree), hands each regular file to its worker, throttles to
 * its rate, and can be paused (the thread waits between chunks), stopped and started again.
 * The walk goes by descriptor (fs/backing_walk.c): the tree's names belong to the database's
 * users, who can rename them while root's job runs, so a worker gets the file already opened
 * and checked to be a regular file, never a path to open again.
 *
 * A data rekey is bound by the two syncs per chunk that make it crash-safe, not by AES, so it
 * works on several files at once: the walk feeds a short queue that REKEY_WORKERS threads drain,
 * and the device overlaps their syncs.
 * Its progress across files survives a stop, an unmount and a crash: a record in the backing
 * root names the job (a random ID, its path and rate, whether it was stopped on request), each
 * file it finished carries the ID (fs/data_rekey.c), and the same job, taken up again, skips
 * those files (docs/REKEY.md, "Progress across files").
 *
 * The conversion of an adopted directory's plaintext files (fs/encrypt.c) goes one file at a
 * time, as it needs room for one encrypted copy: it checks before it starts that the largest
 * file's copy fits.
 */
#include "fs/daemon.h"
#include "fs/backing_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define REKEY_WORKERS 4
/* Walks of a conversion while files move under it, before it gives up on them. */
#define ENCRYPT_PASSES 8
#define QUEUE_SLOTS 8

struct job {
	enum job_kind kind;
	/* The mount whose slot this is (tdefs_daemon.jobs): set by jobs_init. */
	struct tdefs_daemon *daemon;
	pthread_mutex_t lock;
	pthread_cond_t resumed;
	struct job_status status; /* guarded by lock */
	pthread_t thread;         /* guarded by lock */
	bool joinable;            /* guarded by lock */
	char start[PATH_MAX];     /* where the walk starts, relative to the backing root */
	struct timespec clock_start; /* set before the workers start */
	uint64_t throttled_amount;   /* guarded by lock */
	/*
	 * The work under start, counted before the workers start: files for a rewrap, plaintext
	 * bytes for a data rekey (but those of the files it finished before it was stopped or cut
	 * short); 0 when unknown. progress_logged: tenths of it already logged
	 * (guarded by lock).
	 */
	uint64_t work_total;
	unsigned progress_logged;
	/* The data rekey's work queue, guarded by lock. */
	struct queued_file {
		int path_fd; /* O_PATH descriptor of a regular file, checked by the walk */
		char *relative;
	} queue[QUEUE_SLOTS];
	unsigned queue_head, queue_count;
	bool walk_done;
	/* encrypt: files the database renamed or removed under the conversion, for another pass */
	unsigned moved_files;
	/*
	 * A data rekey (not a resume-only pass): its ID, in its record and on each file it
	 * finished; and whether tderekey asked it to stop (guarded by lock).
	 */
	uint8_t rekey_id[REKEY_JOB_ID_SIZE];
	bool rekey_id_set;
	bool stop_on_request;
	pthread_cond_t queue_changed;
};

int jobs_init(struct tdefs_daemon *daemon)
{
	daemon->jobs = calloc(JOB_KIND_COUNT, sizeof(*daemon->jobs));
	if (!daemon->jobs)
		return -ENOMEM;
	for (int kind = 0; kind < JOB_KIND_COUNT; kind++) {
		struct job *job = &daemon->jobs[kind];

		job->kind = (enum job_kind)kind;
		job->daemon = daemon;
		pthread_mutex_init(&job->lock, NULL);
		pthread_cond_init(&job->resumed, NULL);
		pthread_cond_init(&job->queue_changed, NULL);
	}
	return 0;
}

void jobs_end(struct tdefs_daemon *daemon)
{
	if (!daemon->jobs)
		return;
	for (int kind = 0; kind < JOB_KIND_COUNT; kind++) {
		struct job *job = &daemon->jobs[kind];

		pthread_mutex_destroy(&job->lock);
		pthread_cond_destroy(&job->resumed);
		pthread_cond_destroy(&job->queue_changed);
	}
	free(daemon->jobs);
	daemon->jobs = NULL;
}

static const char *job_kind_name(enum job_kind kind)
{
	return kind == JOB_REWRAP ? "rewrap" : kind == JOB_DATA_REKEY ? "data rekey" : "encrypt";
}

const char *job_state_name(enum job_state state)
{
	static const char *const names[] = {
		[JOB_IDLE] = "idle",       [JOB_RUNNING] = "running", [JOB_PAUSED] = "paused",
		[JOB_STOPPING] = "stopping", [JOB_STOPPED] = "stopped", [JOB_DONE] = "done",
		[JOB_FAILED] = "failed",
	};
	return names[state];
}

bool job_should_stop(struct job *job)
{
	bool stop;

	pthread_mutex_lock(&job->lock);
	while (job->status.state == JOB_PAUSED)
		pthread_cond_wait(&job->resumed, &job->lock);
	stop = job->status.state == JOB_STOPPING;
	pthread_mutex_unlock(&job->lock);
	return stop;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/*
 * Call with job->lock held: the next tenth of the work reached, or 0. One line per 10 % per
 * job, from the files visited (rewrap) or the bytes re-encrypted, chunk by chunk (data rekey),
 * so a long job shows in the log between its start and end lines. Not for a resume-only data
 * rekey, whose work is the few interrupted files, not the tree counted.
 */
static unsigned progress_step_locked(struct job *job)
{
	uint64_t done = job->kind == JOB_REWRAP ? job->status.files_total : job->throttled_amount;
	unsigned tenths;

	if (job->work_total == 0 || job->status.resume_only)
		return 0;
	tenths = done >= job->work_total ? 10 : (unsigned)(done * 10 / job->work_total);
	if (tenths <= job->progress_logged || tenths >= 10)
		return 0; /* the end line says 100 % */
	job->progress_logged = tenths;
	return tenths;
}

static void log_progress(struct job *job, unsigned tenths, uint64_t done)
{
	if (job->kind == JOB_REWRAP)
		log_info("rewrap %u%%: %llu of %llu files", tenths * 10,
			 (unsigned long long)done, (unsigned long long)job->work_total);
	else
		log_info("data rekey %u%%: %.1f of %.1f MiB", tenths * 10,
			 (double)done / (1024 * 1024), (double)job->work_total / (1024 * 1024));
}

static int count_work(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct job *job = context;

	(void)fd_taken;
	if (entry->kind != BACKING_WALK_FILE || config_reserved_name(entry->relative))
		return 0;
	if (job->kind == JOB_REWRAP)
		job->work_total++;
	else if (job->kind == JOB_DATA_REKEY && job->rekey_id_set &&
		 data_rekey_done_by(entry->fd, job->rekey_id))
		return 0; /* done before a stop or a restart: not part of what is left */
	else if (entry->st.st_size > TDEFS_HEADER_SIZE)
		job->work_total += (uint64_t)entry->st.st_size - TDEFS_HEADER_SIZE;
	return 0;
}

void job_throttle(struct job *job, uint64_t amount)
{
	double due, rate;

	unsigned step = 0;
	uint64_t done;

	pthread_mutex_lock(&job->lock);
	job->throttled_amount += amount;
	done = job->throttled_amount;
	if (job->kind == JOB_DATA_REKEY)
		step = progress_step_locked(job);
	rate = job->status.rate_limit;
	due = rate > 0 ? (double)job->throttled_amount / rate - seconds_since(&job->clock_start) : 0;
	pthread_mutex_unlock(&job->lock);
	if (step)
		log_progress(job, step, done);
	if (due > 0)
		usleep((useconds_t)(due * 1e6));
}

void job_set_current(struct job *job, uint64_t done, uint64_t total)
{
	pthread_mutex_lock(&job->lock);
	job->status.current_done = done;
	job->status.current_total = total;
	pthread_mutex_unlock(&job->lock);
}

int job_record_replace(struct tdefs_daemon *daemon, const char *name, const char *text,
		       size_t length)
{
	char temp[64];
	uint8_t random[8];
	int fd, ret;

	ret = crypto_random_bytes(random, sizeof(random));
	if (ret < 0)
		return ret;
	snprintf(temp, sizeof(temp), "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", name, random[0],
		 random[1], random[2], random[3], random[4], random[5], random[6], random[7]);
	fd = openat(daemon->backing_fd, temp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = pwrite_all(fd, text, length, 0);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && renameat(daemon->backing_fd, temp, daemon->backing_fd, name) < 0)
		ret = -errno;
	if (ret < 0) {
		unlinkat(daemon->backing_fd, temp, 0);
		return ret;
	}
	fd = openat(daemon->backing_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			ret = -errno;
		close(fd);
	}
	return ret;
}

int job_record_read(struct tdefs_daemon *daemon, const char *name, char *text, size_t size,
		    size_t *length)
{
	struct stat st;
	int fd, ret;

	*length = 0;
	fd = openat(daemon->backing_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : errno == ELOOP ? -EPERM : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077))
		ret = -EPERM;
	else
		ret = pread_full(fd, text, size, 0, length);
	close(fd);
	return ret;
}

/*
 * The conversion of one file, in the directory the walk listed it from (dir_fd), so that a
 * directory the database renamed meanwhile changes nothing; a walk that starts at a file
 * resolves its directory beneath the root, as the walk resolved the file.
 */
static int encrypt_worker(struct job *job, const char *relative, int dir_fd, int fd,
			  struct file_job_result *result)
{
	const char *slash = strrchr(relative, '/');
	char directory[PATH_MAX];
	struct stat st;
	int parent_fd, ret;

	if (dir_fd >= 0)
		return encrypt_file(job->daemon, job, dir_fd, slash ? slash + 1 : relative, fd,
				    result);
	snprintf(directory, sizeof(directory), "%.*s", slash ? (int)(slash - relative) : 0,
		 relative);
	ret = backing_open_beneath(job->daemon->backing_fd, directory, &parent_fd, &st);
	if (ret == 0 && !S_ISDIR(st.st_mode)) {
		close(parent_fd);
		ret = -ENOTDIR;
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ret = encrypt_file(job->daemon, job, parent_fd, slash ? slash + 1 : relative, fd, result);
	close(parent_fd);
	return ret;
}

/* fd: the file, O_RDWR for a rewrap, O_PATH for a data rekey or encrypt (which consume it). */
static int run_worker(struct job *job, const char *relative, int dir_fd, int fd,
		      struct file_job_result *result)
{
	struct rewrap_outcome outcome;
	int ret;

	memset(result, 0, sizeof(*result));
	if (job->kind == JOB_DATA_REKEY)
		return data_rekey_file(job->daemon, job, fd, job->status.resume_only,
				       job->rekey_id_set ? job->rekey_id : NULL, result);
	if (job->kind == JOB_ENCRYPT)
		return encrypt_worker(job, relative, dir_fd, fd, result);
	ret = header_rewrap_fd(job->daemon, fd, &outcome);
	result->changed = outcome.rewrapped;
	result->skipped = outcome.skipped;
	if (outcome.rewrapped)
		job_throttle(job, 1);
	return ret;
}

static void record_failure(struct job *job, const char *relative, int error)
{
	char failure[sizeof(job->status.last_error)];

	snprintf(failure, sizeof(failure), "/%s: %s", relative,
		 error == -ENOKEY ? "the wallet lacks the master key its header names"
		 : error == -ELOOP ? "directories nested deeper than tdefs walks"
		 : error == -EMLINK && job->kind == JOB_ENCRYPT
			 ? "has several names (hard links): not converted, copy it through the mount"
		 : error == -ENOSPC && job->kind == JOB_ENCRYPT
			 ? "not enough free space in the backing directory for its encrypted copy"
		 : error == -ESTALE && job->kind == JOB_ENCRYPT
			 ? "renamed, linked or removed while it was converted: run the conversion "
			   "again"
			 : format_error_message(error));
	pthread_mutex_lock(&job->lock);
	job->status.files_failed++;
	memcpy(job->status.last_error, failure, sizeof(failure));
	pthread_mutex_unlock(&job->lock);
	log_error("tdefs: %s %s", job_kind_name(job->kind), failure);
}

static void process_file(struct job *job, const char *relative, int dir_fd, int fd)
{
	struct file_job_result result;
	unsigned step = 0;
	uint64_t visited;
	int ret;

	pthread_mutex_lock(&job->lock);
	snprintf(job->status.current, sizeof(job->status.current), "/%s", relative);
	job->status.current_done = 0;
	job->status.current_total = 0;
	pthread_mutex_unlock(&job->lock);

	ret = run_worker(job, relative, dir_fd, fd, &result);
	/*
	 * The database renamed or removed the file while it was converted (PostgreSQL recycles
	 * WAL segments by renaming them): the walk goes round once more for whatever it became.
	 */
	if (ret == -ESTALE && job->kind == JOB_ENCRYPT) {
		pthread_mutex_lock(&job->lock);
		job->moved_files++;
		pthread_mutex_unlock(&job->lock);
		return;
	}
	pthread_mutex_lock(&job->lock);
	job->status.files_total++;
	job->status.bytes_done += result.bytes;
	if (ret >= 0 && result.changed)
		job->status.files_changed++;
	else if (ret >= 0)
		job->status.files_skipped++;
	visited = job->status.files_total;
	if (job->kind == JOB_REWRAP)
		step = progress_step_locked(job);
	pthread_mutex_unlock(&job->lock);
	if (step)
		log_progress(job, step, visited);
	if (ret < 0)
		record_failure(job, relative, ret);
}

static void *rekey_worker(void *argument)
{
	struct job *job = argument;

	for (;;) {
		struct queued_file item = { -1, NULL };

		pthread_mutex_lock(&job->lock);
		while (job->queue_count == 0 && !job->walk_done)
			pthread_cond_wait(&job->queue_changed, &job->lock);
		if (job->queue_count > 0) {
			item = job->queue[job->queue_head];
			job->queue_head = (job->queue_head + 1) % QUEUE_SLOTS;
			job->queue_count--;
			pthread_cond_broadcast(&job->queue_changed);
		}
		pthread_mutex_unlock(&job->lock);
		if (!item.relative)
			return NULL;
		if (!job_should_stop(job))
			process_file(job, item.relative, -1, item.path_fd); /* consumes path_fd */
		else
			close(item.path_fd);
		free(item.relative);
	}
}

static int visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct job *job = context;
	char *copy;

	if (job_should_stop(job))
		return 1;
	if (entry->kind == BACKING_WALK_ERROR) {
		record_failure(job, entry->relative, -entry->error);
		return 0;
	}
	if (config_reserved_name(entry->relative))
		return 0;
	if (job->kind == JOB_REWRAP) {
		process_file(job, entry->relative, -1, entry->fd);
		return 0;
	}
	if (job->kind == JOB_ENCRYPT) {
		*fd_taken = true;
		process_file(job, entry->relative, entry->dir_fd, entry->fd); /* consumes fd */
		return 0;
	}
	copy = strdup(entry->relative);
	if (!copy)
		return -ENOMEM;
	*fd_taken = true;
	pthread_mutex_lock(&job->lock);
	while (job->queue_count == QUEUE_SLOTS)
		pthread_cond_wait(&job->queue_changed, &job->lock);
	job->queue[(job->queue_head + job->queue_count) % QUEUE_SLOTS] =
		(struct queued_file){ entry->fd, copy };
	job->queue_count++;
	pthread_cond_broadcast(&job->queue_changed);
	pthread_mutex_unlock(&job->lock);
	return 0;
}

/*
 * The data rekey's record when its walk is over: gone when every file under its path was
 * rekeyed; kept as stopped after a stop tderekey asked for or a failure, so that the next
 * 'tderekey data' of the path goes on with it but the next mount does not; kept as running
 * after a stop for the unmount, so that the next mount goes on with it.
 */
static void data_rekey_job_ended(struct job *job, int walk_result)
{
	bool stopping, on_request, failed;
	int ret;

	pthread_mutex_lock(&job->lock);
	stopping = job->status.state == JOB_STOPPING;
	on_request = job->stop_on_request;
	failed = walk_result < 0 || job->status.files_failed > 0;
	pthread_mutex_unlock(&job->lock);
	if (!stopping && !failed)
		ret = data_rekey_record_remove(job->daemon);
	else if (on_request || failed)
		ret = data_rekey_record_write(job->daemon, job->rekey_id, true, job->start,
					      job->status.rate_limit);
	else
		return;
	if (ret < 0)
		log_warning("tdefs: cannot update the data rekey's record %s: %s", REKEY_JOB_RECORD,
			    strerror(-ret));
}

static void *run_job(void *argument)
{
	struct job *job = argument;
	int ret;

	pthread_t workers[REKEY_WORKERS];
	unsigned started = 0;
	uint64_t renames = 0;

	/* The count only sizes the progress lines: a tree that changes meanwhile shifts them. */
	job->work_total = 0;
	backing_walk(job->daemon->backing_fd, job->start, O_PATH, count_work, job);
	clock_gettime(CLOCK_MONOTONIC, &job->clock_start);
	pthread_mutex_lock(&job->lock);
	job->progress_logged = 0;
	job->throttled_amount = 0;
	pthread_mutex_unlock(&job->lock);
	job->queue_head = job->queue_count = 0;
	job->walk_done = false;
	job->moved_files = 0;
	if (job->kind == JOB_DATA_REKEY)
		while (started < REKEY_WORKERS &&
		       pthread_create(&workers[started], NULL, rekey_worker, job) == 0)
			started++;
	if (job->kind == JOB_ENCRYPT) {
		encrypt_watch_renames(true);
		renames = encrypt_renames_seen();
	}
	if (job->kind == JOB_DATA_REKEY && started == 0)
		ret = -EAGAIN;
	else
		ret = backing_walk(job->daemon->backing_fd, job->start,
				   job->kind == JOB_REWRAP ? O_RDWR : O_PATH, visit, job);
	/*
	 * Files the database renamed while they were converted, or renamed past the walk (which
	 * then saw them under neither name): the walk goes round again until a pass saw neither.
	 */
	for (unsigned pass = 1; job->kind == JOB_ENCRYPT && ret == 0 &&
	     (job->moved_files > 0 || encrypt_renames_seen() != renames) && !job_should_stop(job);
	     pass++) {
		if (pass == ENCRYPT_PASSES) {
			record_failure(job, job->start, -ESTALE);
			break;
		}
		job->moved_files = 0;
		renames = encrypt_renames_seen();
		ret = backing_walk(job->daemon->backing_fd, job->start, O_PATH, visit, job);
	}
	if (job->kind == JOB_ENCRYPT)
		encrypt_watch_renames(false);
	/* A conversion that went through is forgotten; a stop or a crash is taken up again. */
	if (job->kind == JOB_ENCRYPT && ret == 0 && !job_should_stop(job) &&
	    job->status.files_failed == 0 && encrypt_record_job(job->daemon, false, NULL, 0) < 0)
		log_warning("tdefs: cannot remove the record of the finished conversion: %s",
			    strerror(errno));
	pthread_mutex_lock(&job->lock);
	job->walk_done = true;
	pthread_cond_broadcast(&job->queue_changed);
	pthread_mutex_unlock(&job->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	if (job->kind == JOB_DATA_REKEY && !job->status.resume_only && job->rekey_id_set)
		data_rekey_job_ended(job, ret);
	pthread_mutex_lock(&job->lock);
	if (job->status.state == JOB_STOPPING)
		job->status.state = JOB_STOPPED;
	else if (ret < 0 || job->status.files_failed > 0)
		job->status.state = JOB_FAILED;
	else
		job->status.state = JOB_DONE;
	if (ret < 0 && !job->status.last_error[0])
		snprintf(job->status.last_error, sizeof(job->status.last_error), "/%.400s: %s",
			 job->start, strerror(-ret));
	job->status.finished = time(NULL);
	log_info("tdefs: %s %s: %llu files changed, %llu already current, %llu failed",
		 job_kind_name(job->kind), job_state_name(job->status.state),
		 (unsigned long long)job->status.files_changed,
		 (unsigned long long)job->status.files_skipped,
		 (unsigned long long)job->status.files_failed);
	pthread_mutex_unlock(&job->lock);
	return NULL;
}

struct preflight {
	uint64_t largest, total, files;
	char largest_path[PATH_MAX];
};

static int preflight_visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct preflight *found = context;

	(void)fd_taken;
	if (entry->kind != BACKING_WALK_FILE || config_reserved_name(entry->relative) ||
	    plaintext_marker_read(entry->fd, NULL) != 1)
		return 0;
	found->files++;
	found->total += (uint64_t)entry->st.st_size;
	if ((uint64_t)entry->st.st_size >= found->largest) {
		found->largest = (uint64_t)entry->st.st_size;
		snprintf(found->largest_path, sizeof(found->largest_path), "/%s", entry->relative);
	}
	return 0;
}

/*
 * Before a conversion changes anything: it is for an adopted, writable directory, and the
 * backing filesystem has room for the encrypted copy of the largest plaintext file (one copy
 * exists at a time), with the margin the conversion keeps.
 */
static int encrypt_preflight(const struct tdefs_daemon *daemon, const char *relative_path,
			     char *error, size_t error_len)
{
	struct preflight found = { 0 };
	struct statvfs vfs;
	uint64_t available, needed;
	int fd, ret;

	if (!daemon->adopted) {
		snprintf(error, error_len, "this backing directory was not adopted (tdefs --init "
					   "--adopt): every file in it is encrypted already");
		return -EINVAL;
	}
	if (daemon->read_only) {
		snprintf(error, error_len, "the mount is read-only");
		return -EROFS;
	}
	ret = backing_walk(daemon->backing_fd, relative_path, O_RDONLY, preflight_visit,
			   &found);
	fd = openat(daemon->backing_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ret == 0 && (fd < 0 || fstatvfs(fd, &vfs) < 0))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret < 0) {
		snprintf(error, error_len, "cannot survey the plaintext files: %s", strerror(-ret));
		return ret;
	}
	available = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	needed = found.largest + found.largest / 64 + 16 * TDEFS_BLOCK_SIZE;
	if (found.files > 0 && available < needed) {
		snprintf(error, error_len,
			 "not enough free space: the encrypted copy of the largest plaintext file "
			 "(%.300s, %llu bytes) needs %llu bytes free in the backing directory, which "
			 "has %llu; nothing was changed",
			 found.largest_path, (unsigned long long)found.largest,
			 (unsigned long long)needed, (unsigned long long)available);
		return -ENOSPC;
	}
	log_info("encrypt: %llu plaintext files, %llu bytes; the largest, %s, needs %llu bytes "
		 "free, %llu are", (unsigned long long)found.files,
		 (unsigned long long)found.total, found.files ? found.largest_path : "-",
		 (unsigned long long)needed, (unsigned long long)available);
	return 0;
}

/*
 * A data rekey of the path the record names, not finished: the same job goes on, with its ID,
 * and skips the files it finished. Any other start is a new job with a new ID (a record of
 * another path is replaced: its job would start over). Called with job->lock held.
 */
static void data_rekey_job_begin(struct job *job, const char *relative_path, double rate_limit)
{
	char recorded_path[PATH_MAX];
	double recorded_rate;
	bool stopped;
	int ret;

	ret = data_rekey_record_read(job->daemon, job->rekey_id, &stopped, recorded_path,
				     sizeof(recorded_path), &recorded_rate);
	if (ret == 0 && strcmp(recorded_path, relative_path) == 0) {
		log_info("tdefs: data rekey of /%s goes on where it %s: the files it rekeyed are "
			 "skipped", relative_path, stopped ? "was stopped" : "was cut short");
	} else {
		if (ret != -ENOENT && ret != 0)
			log_warning("tdefs: %s is %s: a new data rekey starts", REKEY_JOB_RECORD,
				    ret == -EPERM ? "not the daemon's own record" : "damaged");
		ret = crypto_random_bytes(job->rekey_id, sizeof(job->rekey_id));
		if (ret < 0) {
			log_warning("tdefs: cannot make the data rekey's ID: %s (a stopped job "
				    "will start over)", strerror(-ret));
			return;
		}
	}
	job->rekey_id_set = true;
	ret = data_rekey_record_write(job->daemon, job->rekey_id, false, relative_path, rate_limit);
	if (ret < 0)
		log_warning("tdefs: cannot record the data rekey for a restart: %s (stopped or "
			    "cut short, it will start over)", strerror(-ret));
}

/*
 * The pass over interrupted files while a stopped data rekey is recorded: the files it finishes
 * were that job's, and get its mark, so that the job, when it goes on, does not rekey them
 * again. Called with job->lock held.
 */
static void data_rekey_pass_begin(struct job *job)
{
	char recorded_path[PATH_MAX];
	double recorded_rate;
	bool stopped;

	if (data_rekey_record_read(job->daemon, job->rekey_id, &stopped, recorded_path,
				   sizeof(recorded_path), &recorded_rate) == 0)
		job->rekey_id_set = true;
}

int job_start(struct tdefs_daemon *daemon, enum job_kind kind, const char *relative_path,
	      double rate_limit, bool resume_only, char *error, size_t error_len)
{
	struct job *job = &daemon->jobs[kind];
	const char *shown = relative_path[0] ? relative_path : "/";
	struct stat st;
	int fd, ret;

	/*
	 * Every job needs the master keys (to rewrap, or to seal a new DEK): none starts while
	 * the keystore is closed, and tderekey close refuses, or with --force stops, a running
	 * one (fs/keystore_close.c). The control thread does both, one request at a time.
	 */
	if (keystore_is_closed()) {
		snprintf(error, error_len,
			 "the keystore is closed: 'tderekey open' loads the master keys first");
		return -EKEYREVOKED;
	}
	/*
	 * The start is resolved as the walk will resolve it, one component at a time from the
	 * backing root, never through a symlink or "..", so that a refusal comes back now.
	 */
	ret = backing_open_beneath(daemon->backing_fd, relative_path, &fd, &st);
	if (ret == 0) {
		close(fd);
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			snprintf(error, error_len, "%s: not a regular file or directory", shown);
			return -EINVAL;
		}
	}
	if (ret < 0) {
		snprintf(error, error_len, "%s: %s", shown,
			 ret == -EINVAL ? "leaves the mount (\"..\")"
			 : ret == -ELOOP ? "a symlink on the way (jobs never follow one)"
			 : ret == -EXDEV ? "on another filesystem than the backing directory"
					 : strerror(-ret));
		return ret;
	}
	if (strlen(relative_path) >= sizeof(job->start)) {
		snprintf(error, error_len, "%s: %s", shown, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	if (kind == JOB_ENCRYPT) {
		ret = encrypt_preflight(daemon, relative_path, error, error_len);
		if (ret < 0)
			return ret;
	}
	pthread_mutex_lock(&job->lock);
	if (job->status.state == JOB_RUNNING || job->status.state == JOB_PAUSED ||
	    job->status.state == JOB_STOPPING) {
		pthread_mutex_unlock(&job->lock);
		snprintf(error, error_len, "a%s %s is already running on this mount",
			 kind == JOB_ENCRYPT ? "n" : "", job_kind_name(kind));
		return -EBUSY;
	}
	if (job->joinable) {
		pthread_join(job->thread, NULL);
		job->joinable = false;
	}
	snprintf(job->start, sizeof(job->start), "%s", relative_path);
	memset(&job->status, 0, sizeof(job->status));
	job->status.state = JOB_RUNNING;
	job->status.rate_limit = rate_limit;
	job->status.resume_only = resume_only;
	job->status.started = time(NULL);
	job->stop_on_request = false;
	/*
	 * Recorded before the thread starts, so that the end of a short job (which removes the
	 * record) always comes after it. The file writes under the job lock are these.
	 */
	if (kind == JOB_ENCRYPT &&
	    (ret = encrypt_record_job(daemon, true, relative_path, rate_limit)) < 0)
		log_warning("tdefs: cannot record the conversion for a restart: %s "
			    "(after a crash, run 'tderekey encrypt' again)", strerror(-ret));
	job->rekey_id_set = false;
	if (kind == JOB_DATA_REKEY && !resume_only)
		data_rekey_job_begin(job, relative_path, rate_limit);
	if (kind == JOB_DATA_REKEY && resume_only)
		data_rekey_pass_begin(job);
	ret = pthread_create(&job->thread, NULL, run_job, job);
	if (ret) {
		job->status.state = JOB_FAILED;
		snprintf(error, error_len, "cannot start the job thread: %s", strerror(ret));
	} else {
		job->joinable = true;
	}
	pthread_mutex_unlock(&job->lock);
	if (ret == 0)
		log_info("%s started on /%s%s", job_kind_name(kind),
			 relative_path, resume_only ? " (finishing interrupted rekeys only)" : "");
	return -ret;
}

void job_stop(struct tdefs_daemon *daemon, enum job_kind kind)
{
	struct job *job = &daemon->jobs[kind];

	bool stopping = false;

	pthread_mutex_lock(&job->lock);
	if (job->status.state == JOB_RUNNING || job->status.state == JOB_PAUSED) {
		job->status.state = JOB_STOPPING;
		stopping = true;
	}
	pthread_cond_broadcast(&job->resumed);
	pthread_mutex_unlock(&job->lock);
	if (stopping)
		log_info("%s stop requested", job_kind_name(kind));
}

void job_stop_on_request(struct tdefs_daemon *daemon, enum job_kind kind)
{
	struct job *job = &daemon->jobs[kind];

	pthread_mutex_lock(&job->lock);
	if (job->status.state == JOB_RUNNING || job->status.state == JOB_PAUSED)
		job->stop_on_request = true;
	pthread_mutex_unlock(&job->lock);
	job_stop(daemon, kind);
}

int job_pause(struct tdefs_daemon *daemon, enum job_kind kind, bool pause)
{
	struct job *job = &daemon->jobs[kind];
	int ret = 0;

	pthread_mutex_lock(&job->lock);
	if (pause && job->status.state == JOB_RUNNING)
		job->status.state = JOB_PAUSED;
	else if (!pause && job->status.state == JOB_PAUSED)
		job->status.state = JOB_RUNNING;
	else
		ret = -EINVAL;
	pthread_cond_broadcast(&job->resumed);
	pthread_mutex_unlock(&job->lock);
	return ret;
}

void job_get_status(struct tdefs_daemon *daemon, enum job_kind kind, struct job_status *status)
{
	struct job *job = &daemon->jobs[kind];

	pthread_mutex_lock(&job->lock);
	*status = job->status;
	pthread_mutex_unlock(&job->lock);
}

void jobs_join_all(struct tdefs_daemon *daemon)
{
	for (int kind = 0; kind < JOB_KIND_COUNT; kind++) {
		struct job *job = &daemon->jobs[kind];
		bool joinable;

		job_stop(daemon, (enum job_kind)kind);
		pthread_mutex_lock(&job->lock);
		joinable = job->joinable;
		job->joinable = false;
		pthread_mutex_unlock(&job->lock);
		if (joinable)
			pthread_join(job->thread, NULL);
	}
}
