/*
 * The daemon's reads and writes on its /dev/fuse descriptor (fuse_session_custom_io), for one
 * protocol feature libfuse 3.14 does not know: FUSE_HANDLE_KILLPRIV_V2. A FUSE superblock has
 * no SB_NOSEC unless the filesystem takes that flag, and without SB_NOSEC the kernel asks for
 * security.capability before every buffered write: one round trip per write(2), which cost
 * the default mount 75-80 % of its random-write speed (docs/PERFORMANCE.md). With the flag,
 * the kernel marks the superblock SB_NOSEC, asks once per inode, and leaves clearing set-id
 * bits to the filesystem, telling it on each request that must clear them.
 *
 * libfuse builds the INIT reply from its own list of capabilities and drops unknown request
 * flags, so this file does the two things it cannot: it adds FUSE_HANDLE_KILLPRIV_V2 to the
 * INIT reply when the kernel offered it, and it notes, per worker thread, whether the request
 * just read carries a kill flag. libfuse's worker threads each read a request and run its
 * handler before they read the next (fuse_session_loop_mt, clone_fd off), so a thread-local
 * set by the read is the request's own when the handler asks (fuse_channel_request_kills_suidgid).
 * The bytes of every request and reply are passed on unchanged otherwise.
 *
 * What stays with the kernel: file capabilities. With SB_NOSEC the kernel still looks for
 * security.capability when an inode is first written (and again after any security.* xattr
 * change), and removes it through REMOVEXATTR before the write, as before.
 *
 * The second part is the notifications that must not come from a worker thread: after a
 * write-back write failed, the inode's cached pages and attributes are dropped by a thread of
 * its own (fuse_channel_invalidate_later), so that the page cache stops serving bytes that
 * never reached the backing file.
 */
#include "fs/fuse_channel.h"

#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/util.h"

/* INIT's unique id while its reply is due (0: none), and whether the kernel took the flag. */
static uint64_t init_unique;
static bool killpriv_v2;

static _Thread_local bool request_kills_suidgid;

static bool handles_killpriv(void)
{
	return __atomic_load_n(&killpriv_v2, __ATOMIC_ACQUIRE);
}

bool fuse_channel_request_kills_suidgid(void)
{
	return request_kills_suidgid;
}

/* The request's own kill flag, from the argument struct that follows the header. */
static bool kills_suidgid(const struct fuse_in_header *in, const char *arg, size_t arg_len)
{
	uint32_t valid;

	switch (in->opcode) {
	case FUSE_WRITE:
		return arg_len >= sizeof(struct fuse_write_in) &&
		       (((const struct fuse_write_in *)arg)->write_flags & FUSE_WRITE_KILL_SUIDGID);
	case FUSE_SETATTR:
		if (arg_len < sizeof(struct fuse_setattr_in))
			return false;
		valid = ((const struct fuse_setattr_in *)arg)->valid;
		/*
		 * FATTR_KILL_SUIDGID comes only with a size or an owner. Every other path that
		 * must drop the bits (fallocate, say: the kernel's file_remove_privs
		 * for a caller without CAP_FSETID) arrives as a SETATTR with nothing to set, the
		 * kernel having taken the kill bits out; from root it is the removal of a file
		 * capability alone, which leaves the set-id bits to a root writer as ext4 does.
		 */
		return (valid & FATTR_KILL_SUIDGID) ||
		       ((valid & ~(uint32_t)(FATTR_FH | FATTR_LOCKOWNER)) == 0 && in->uid != 0);
	case FUSE_OPEN:
		return arg_len >= sizeof(struct fuse_open_in) &&
		       (((const struct fuse_open_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID);
	case FUSE_CREATE:
		return arg_len >= sizeof(struct fuse_create_in) &&
		       (((const struct fuse_create_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID);
	default:
		return false;
	}
}

static ssize_t channel_read(int fd, void *buf, size_t buf_len, void *userdata)
{
	const struct fuse_in_header *in = buf;
	ssize_t n = read(fd, buf, buf_len);
	const char *arg = (const char *)buf + sizeof(*in);
	size_t arg_len;

	(void)userdata;
	request_kills_suidgid = false;
	if (n < (ssize_t)sizeof(*in))
		return n;
	arg_len = (size_t)n - sizeof(*in);
	if (in->opcode == FUSE_INIT) {
		/* flags is the second field of every version of fuse_init_in. */
		if (arg_len >= offsetof(struct fuse_init_in, flags) + sizeof(uint32_t) &&
		    (((const struct fuse_init_in *)arg)->flags & FUSE_HANDLE_KILLPRIV_V2))
			__atomic_store_n(&init_unique, in->unique, __ATOMIC_RELEASE);
		else
			log_warning("tdefs: the kernel does not offer FUSE_HANDLE_KILLPRIV_V2: it asks "
				    "for security.capability before every buffered write (-o xattr=off "
				    "avoids that)");
		return n;
	}
	/*
	 * Without the flag in force the kernel clears the bits itself (with a SETATTR of the mode)
	 * and a bare SETATTR means nothing: only then are requests read for kill flags.
	 */
	request_kills_suidgid = handles_killpriv() && kills_suidgid(in, arg, arg_len);
	return n;
}

static ssize_t channel_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	uint64_t unique = __atomic_load_n(&init_unique, __ATOMIC_ACQUIRE);
	const struct fuse_out_header *out;
	struct fuse_init_out init;
	struct iovec copy[2];

	(void)userdata;
	if (unique == 0 || count != 2 || iov[0].iov_len < sizeof(*out))
		return writev(fd, iov, count);
	out = iov[0].iov_base;
	if (out->unique != unique)
		return writev(fd, iov, count);
	__atomic_store_n(&init_unique, 0, __ATOMIC_RELEASE);
	if (out->error != 0 || iov[1].iov_len < offsetof(struct fuse_init_out, flags) +
	    sizeof(uint32_t) || iov[1].iov_len > sizeof(init))
		return writev(fd, iov, count);
	/*
	 * The reply libfuse built, with the flag added; the first version (FUSE_HANDLE_KILLPRIV,
	 * the filesystem clearing set-id bits on every write, even root's) goes, so that the
	 * kernel's rules stay those of the second.
	 */
	memcpy(&init, iov[1].iov_base, iov[1].iov_len);
	init.flags = (init.flags | FUSE_HANDLE_KILLPRIV_V2) & ~(uint32_t)FUSE_HANDLE_KILLPRIV;
	copy[0] = iov[0];
	copy[1].iov_base = &init;
	copy[1].iov_len = iov[1].iov_len;
	ssize_t n = writev(fd, copy, 2);
	if (n >= 0)
		__atomic_store_n(&killpriv_v2, true, __ATOMIC_RELEASE);
	return n;
}

/* --- invalidation after a failed write-back -------------------------------------------- */

/*
 * A write-back WRITE that fails leaves the kernel with clean, up-to-date pages holding bytes
 * the backing file does not have (the kernel only records the error for the next fsync or
 * close). Dropping them takes FUSE_NOTIFY_INVAL_INODE, which first writes back the inode's
 * other dirty pages and waits for those WRITEs: from the worker serving the failed WRITE it
 * would wait on the page that worker has not yet answered for, and with every worker of the
 * loop (eight, fs/main.c) waiting so, nobody would serve the write-back it waits for. So the
 * workers only queue the inode here, and one thread sends the notifications, one at a time,
 * while the workers stay free for the write-back each of them causes.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct fuse_session *session;
	fuse_ino_t *pending;  /* guarded by lock: inodes queued, each once */
	size_t count, room;   /* guarded by lock */
	bool stopping;        /* guarded by lock: the loop has ended */
	bool started;         /* guarded by lock: thread runs */
	pthread_t thread;
} invalidation = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

static void *invalidation_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&invalidation.lock);
	for (;;) {
		while (invalidation.count == 0 && !invalidation.stopping)
			pthread_cond_wait(&invalidation.wake, &invalidation.lock);
		if (invalidation.stopping)
			break;
		fuse_ino_t ino = invalidation.pending[0];
		memmove(invalidation.pending, invalidation.pending + 1,
			--invalidation.count * sizeof(*invalidation.pending));
		pthread_mutex_unlock(&invalidation.lock);
		/* Offset 0, length 0: every page, and the attributes. */
		int ret = fuse_lowlevel_notify_inval_inode(invalidation.session, ino, 0, 0);
		/* -ENOENT: the kernel has forgotten the inode, and its pages with it. */
		if (ret < 0 && ret != -ENOENT)
			log_warning("tdefs: cannot drop the cached pages of a file whose write-back "
				    "failed: %s; they may be read until it leaves the cache",
				    strerror(-ret));
		pthread_mutex_lock(&invalidation.lock);
	}
	pthread_mutex_unlock(&invalidation.lock);
	return NULL;
}

void fuse_channel_invalidate_later(fuse_ino_t ino)
{
	pthread_mutex_lock(&invalidation.lock);
	for (size_t i = 0; i < invalidation.count; i++)
		if (invalidation.pending[i] == ino)
			goto out_unlock;
	/* Started by the first failure: threads made before the daemon forks would not follow it. */
	if (!invalidation.started && !invalidation.stopping) {
		int ret = pthread_create(&invalidation.thread, NULL, invalidation_main, NULL);

		if (ret != 0) {
			log_warning("tdefs: cannot start the thread that drops the cached pages of "
				    "files whose write-back failed: %s", strerror(ret));
			goto out_unlock;
		}
		invalidation.started = true;
	}
	if (invalidation.count == invalidation.room) {
		size_t room = invalidation.room ? 2 * invalidation.room : 16;
		fuse_ino_t *grown = realloc(invalidation.pending, room * sizeof(*grown));

		if (!grown) {
			log_warning("tdefs: out of memory: the cached pages of a file whose "
				    "write-back failed stay until it leaves the cache");
			goto out_unlock;
		}
		invalidation.pending = grown;
		invalidation.room = room;
	}
	invalidation.pending[invalidation.count++] = ino;
	pthread_cond_signal(&invalidation.wake);
out_unlock:
	pthread_mutex_unlock(&invalidation.lock);
}

void fuse_channel_detach(void)
{
	bool started;

	pthread_mutex_lock(&invalidation.lock);
	invalidation.stopping = true;
	started = invalidation.started;
	pthread_cond_signal(&invalidation.wake);
	pthread_mutex_unlock(&invalidation.lock);
	if (started)
		pthread_join(invalidation.thread, NULL);
	invalidation.started = false;
	free(invalidation.pending);
	invalidation.pending = NULL;
	invalidation.count = invalidation.room = 0;
}

int fuse_channel_attach(struct fuse_session *session)
{
	static const struct fuse_custom_io io = {
		.read = channel_read,
		.writev = channel_writev,
	};

	invalidation.session = session;
	return fuse_session_custom_io(session, &io, fuse_session_fd(session));
}
