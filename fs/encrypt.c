/*
 * Encrypting an adopted directory in place, online (docs/REKEY.md, "Encrypting an adopted
 * directory"). One plaintext file at a time, the conversion builds an encrypted copy in the
 * backing root under a reserved name, a chunk at a time under the file's block locks, while the
 * database reads and writes the file: requests keep going to the original, which stays complete
 * and authoritative, and every change to a block the copy already holds (below its watermark)
 * is encrypted into the copy too, under the same locks (fs/file_io.c, mirror_into_copy). When
 * the watermark reaches the end, with the file's I/O and its names held still, the copy is
 * synced and renamed over the original; the inode, its opens and the lookups that follow all go
 * to the copy from then on (inode_retarget). The rename is the only step that changes what the
 * file is, so a crash at any instant leaves either the complete original, still marked
 * plaintext, or the complete synced copy; a leftover copy is removed at the next mount, and the
 * next mount starts the job again when its record (ENCRYPT_JOB_RECORD) says it was running.
 * Which files are left is what the plaintext markers say: the record holds no progress that a
 * forged or torn copy of it could make wrong.
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
#include <sys/xattr.h>
#include <unistd.h>

#include "util/util.h"

/* 1 MiB per chunk: one read, one write, and requests to it wait for that long at most. */
#define ENCRYPT_CHUNK_BLOCKS 256

static pthread_rwlock_t namespace_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

void namespace_lock_shared(void)
{
	pthread_rwlock_rdlock(&namespace_lock);
}

void namespace_unlock(void)
{
	pthread_rwlock_unlock(&namespace_lock);
}

/*
 * A walk lists a directory once, then opens each name: a plaintext file the database renames
 * after the listing (PostgreSQL recycles WAL segments by renaming them) is seen by no pass
 * under either name, and a renamed directory hides all it holds. While a conversion walks,
 * every rename that may move plaintext counts here before it happens, under the namespace
 * lock held shared; the walk reads the count with the lock held exclusively before and after
 * each pass, so a rename is either wholly before a pass (which then sees its result) or counted
 * in it (and the walk goes round again).
 */
static int renames_watched;      /* atomic: a conversion is walking */
static uint64_t plaintext_renames; /* atomic; read under namespace_lock held exclusively */

void encrypt_watch_renames(bool on)
{
	__atomic_store_n(&renames_watched, on ? 1 : 0, __ATOMIC_RELEASE);
}

uint64_t encrypt_renames_seen(void)
{
	uint64_t count;

	pthread_rwlock_wrlock(&namespace_lock);
	count = __atomic_load_n(&plaintext_renames, __ATOMIC_ACQUIRE);
	pthread_rwlock_unlock(&namespace_lock);
	return count;
}

void encrypt_note_rename(int parent_fd, const char *name)
{
	struct stat st;
	int fd, marked = 1;

	if (!__atomic_load_n(&renames_watched, __ATOMIC_ACQUIRE))
		return;
	/* Anything that cannot be told for sure counts: a spare pass costs only time. */
	fd = openat(parent_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		int data_fd = backing_reopen(fd, O_RDONLY);

		marked = data_fd < 0 ? 1 : plaintext_marker_read(data_fd, NULL) != 0;
		if (data_fd >= 0)
			close(data_fd);
	} else if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
		marked = 0; /* a symlink or a special file holds no plaintext data */
	}
	if (fd >= 0)
		close(fd);
	if (marked)
		__atomic_add_fetch(&plaintext_renames, 1, __ATOMIC_ACQ_REL);
}

static uint64_t block_count(uint64_t size)
{
	return (size + TDEFS_BLOCK_SIZE - 1) >> TDEFS_BLOCK_SHIFT;
}

/* --- the job record ------------------------------------------------------------------- */

int encrypt_record_job(struct tdefs_daemon *daemon, bool running, const char *relative_path,
		       double rate_limit)
{
	char text[ENCRYPT_RECORD_MAX];
	int length;

	if (!running) {
		if (unlinkat(daemon->backing_fd, ENCRYPT_JOB_RECORD, 0) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	length = encrypt_record_encode(rate_limit, relative_path, text, sizeof(text));
	if (length < 0)
		return length;
	return job_record_replace(daemon, ENCRYPT_JOB_RECORD, text, (size_t)length);
}

/*
 * The record is the daemon's own (owner, mode and name checked); it says only "a conversion of
 * PATH at RATE was running". Even a forged one could only start a conversion, which is safe on
 * any file: nothing in it decides which bytes a file holds.
 */
void encrypt_resume_recorded(struct tdefs_daemon *daemon)
{
	char text[ENCRYPT_RECORD_MAX + 1], path[PATH_MAX], error[PATH_MAX + 128];
	size_t done = 0;
	double rate;
	int ret;

	ret = job_record_read(daemon, ENCRYPT_JOB_RECORD, text, sizeof(text), &done);
	if (ret == -ENOENT)
		return;
	if (ret < 0) {
		log_warning("tdefs: %s is not the daemon's own record: the conversion to encrypted "
			    "files is not resumed (start it with 'tderekey encrypt')",
			    ENCRYPT_JOB_RECORD);
		return;
	}
	if (encrypt_record_decode(text, done, &rate, path, sizeof(path)) < 0) {
		log_warning("tdefs: %s is damaged: the conversion to encrypted files is not resumed "
			    "(start it again with 'tderekey encrypt')", ENCRYPT_JOB_RECORD);
		return;
	}
	if (job_start(daemon, JOB_ENCRYPT, path, rate, false, error, sizeof(error)) < 0)
		log_warning("tdefs: cannot resume the conversion to encrypted files: %s", error);
	else
		log_info("tdefs: the interrupted conversion to encrypted files of /%s goes on", path);
}

/* --- one file ------------------------------------------------------------------------- */

/* Every extended attribute of from but the plaintext marker, onto to. */
static int copy_xattrs(int from, int to)
{
	char *names = NULL, *value = NULL;
	ssize_t length = flistxattr(from, NULL, 0);
	int ret = 0;

	if (length <= 0)
		return length < 0 && errno != ENOTSUP ? -errno : 0;
	names = malloc((size_t)length);
	value = malloc(65536);
	if (!names || !value) {
		ret = -ENOMEM;
		goto out;
	}
	length = flistxattr(from, names, (size_t)length);
	if (length < 0) {
		ret = -errno;
		goto out;
	}
	for (ssize_t at = 0; at < length; at += (ssize_t)strlen(names + at) + 1) {
		const char *name = names + at;
		ssize_t n;

		if (strcmp(name, PLAINTEXT_MARKER_NAME) == 0)
			continue;
		n = fgetxattr(from, name, value, 65536);
		if (n < 0 || fsetxattr(to, name, value, (size_t)n, 0) < 0) {
			ret = -errno;
			break;
		}
	}
out:
	free(names);
	free(value);
	return ret;
}

/*
 * The copy: a fresh header (its DEK in *key) in a new file under a reserved name in the backing
 * root. *header gets the header's newest copy, as a loaded file has it.
 */
static int create_copy(struct tdefs_daemon *daemon, char *name, size_t name_size,
		       struct file_header *header, struct xts_key **key)
{
	uint8_t image[TDEFS_HEADER_SIZE], random[8], key_id[MASTER_KEY_ID_SIZE];
	uint8_t *dek;
	int fd, ret;

	ret = crypto_random_bytes(random, sizeof(random));
	if (ret < 0)
		return ret;
	snprintf(name, name_size, "%s%02x%02x%02x%02x%02x%02x%02x%02x", ENCRYPT_COPY_PREFIX,
		 random[0], random[1], random[2], random[3], random[4], random[5], random[6],
		 random[7]);
	dek = secure_alloc(DEK_SIZE);
	if (!dek)
		return -ENOMEM;
	ret = crypto_random_bytes(dek, DEK_SIZE);
	if (ret == 0) {
		pthread_rwlock_rdlock(&daemon->keyring_lock);
		ret = keyring_active(daemon->keyring, key_id, NULL);
		if (ret == 0)
			ret = header_create_keyring(header, daemon->keyring, key_id, dek);
		if (ret == 0)
			ret = header_build_image_keyring(header, daemon->keyring, dek, image);
		pthread_rwlock_unlock(&daemon->keyring_lock);
	}
	if (ret == 0)
		ret = xts_key_new(dek, key);
	secure_free(dek);
	if (ret < 0)
		return ret;
	fd = openat(daemon->backing_fd, name,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out_free_key;
	}
	ret = pwrite_all(fd, image, sizeof(image), 0);
	if (ret == 0)
		return fd;
	close(fd);
	unlinkat(daemon->backing_fd, name, 0);
out_free_key:
	xts_key_free(*key);
	*key = NULL;
	return ret;
}

/* Stop keeping the copy in step (exclusive size_lock): the original alone serves the file. */
static void drop_copy(const struct tdefs_daemon *daemon, struct file_crypt *crypt, int copy_fd,
		      const char *copy_name)
{
	struct xts_key *key;

	pthread_rwlock_wrlock(&crypt->size_lock);
	key = crypt->copy_key;
	__atomic_store_n(&crypt->copy_key, NULL, __ATOMIC_RELEASE);
	crypt->copy_fd = -1;
	crypt->copy_watermark = 0;
	pthread_rwlock_unlock(&crypt->size_lock);
	xts_key_free(key);
	close(copy_fd);
	unlinkat(daemon->backing_fd, copy_name, 0);
}

/* Copy the chunk at the watermark. *finished when the watermark has reached the end. */
static int copy_chunk(struct file_crypt *crypt, bool *finished, uint64_t *bytes)
{
	uint64_t first, count, blocks;
	int ret;

	pthread_rwlock_rdlock(&crypt->size_lock);
	blocks = block_count(crypt->size);
	first = crypt->copy_watermark;
	if (first >= blocks) {
		pthread_rwlock_unlock(&crypt->size_lock);
		*finished = true;
		return 0;
	}
	count = blocks - first < ENCRYPT_CHUNK_BLOCKS ? blocks - first : ENCRYPT_CHUNK_BLOCKS;
	file_lock_blocks(crypt, first, first + count - 1, true);
	ret = file_io_copy_blocks(crypt, first, first + count - 1);
	if (ret >= 0) {
		__atomic_store_n(&crypt->copy_watermark, first + count, __ATOMIC_RELEASE);
		/* What the rate limit counts: the data read, not the holes skipped. */
		*bytes = (uint64_t)ret << TDEFS_BLOCK_SHIFT;
		ret = 0;
	}
	file_unlock_blocks(crypt, first, first + count - 1);
	pthread_rwlock_unlock(&crypt->size_lock);
	fault_point("encrypt:chunk-copied");
	return ret;
}

static int fsync_directory(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * The swap, with the names (namespace lock) and the file's I/O (exclusive size_lock) held
 * still: 1 when the file grew meanwhile and there is more to copy, 0 once swapped.
 */
static int swap_in_copy(struct tdefs_daemon *daemon, struct tdefs_inode *inode,
			struct file_crypt *crypt, int parent_fd, const char *name,
			const struct stat *original, int copy_fd, const char *copy_name,
			const struct file_header *header)
{
	struct timespec times[2];
	struct stat now;
	int old_fd, old_direct_fd, path_fd, ret;

	pthread_rwlock_wrlock(&namespace_lock);
	pthread_rwlock_wrlock(&crypt->size_lock);
	if (crypt->copy_watermark < block_count(crypt->size)) {
		ret = 1;
		goto out_unlock;
	}
	ret = __atomic_load_n(&crypt->copy_error, __ATOMIC_ACQUIRE);
	if (ret < 0)
		goto out_unlock;
	/* The name must still be this file, its only one: else the rename would lose data. */
	if (fstatat(parent_fd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    now.st_dev != original->st_dev || now.st_ino != original->st_ino || now.st_nlink != 1) {
		ret = -ESTALE;
		goto out_unlock;
	}
	if (ftruncate(copy_fd, (off_t)(crypt->size + TDEFS_HEADER_SIZE)) < 0 ||
	    fchown(copy_fd, now.st_uid, now.st_gid) < 0 ||
	    fchmod(copy_fd, now.st_mode & 07777) < 0) {
		ret = -errno;
		goto out_unlock;
	}
	ret = copy_xattrs(crypt->data_fd, copy_fd);
	if (ret < 0)
		goto out_unlock;
	times[0] = now.st_atim;
	times[1] = now.st_mtim;
	if (futimens(copy_fd, times) < 0 || fsync(copy_fd) < 0) {
		ret = -errno;
		goto out_unlock;
	}
	fault_point("encrypt:copy-synced");
	if (renameat(daemon->backing_fd, copy_name, parent_fd, name) < 0) {
		ret = -errno;
		goto out_unlock;
	}
	fault_point("encrypt:renamed");
	/*
	 * From here the copy is the file. A failed directory sync cannot be undone: the file is
	 * served from the copy, which is complete either way, and the error is only logged.
	 */
	if (fsync_directory(parent_fd) < 0 || fsync_directory(daemon->backing_fd) < 0)
		log_warning("tdefs: cannot sync the directory of a converted file: %s",
			    strerror(errno));
	old_fd = crypt->data_fd;
	old_direct_fd = crypt->plain_direct_fd;
	__atomic_store_n(&crypt->plain_direct_fd, -1, __ATOMIC_RELEASE);
	crypt->data_fd = copy_fd;
	crypt->key = crypt->copy_key;
	crypt->header = *header;
	crypt->watermark = 0;
	__atomic_store_n(&crypt->copy_key, NULL, __ATOMIC_RELEASE);
	crypt->copy_fd = -1;
	path_fd = openat(parent_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	ret = path_fd < 0 ? -errno : inode_retarget(daemon, inode, path_fd);
	if (ret < 0) {
		char path[512];

		/* The kernel's inode keeps the old object: refuse it rather than serve stale data. */
		inode_describe(inode, path, sizeof(path));
		log_error("tdefs: %s: converted, but its inode could not follow (%s); reopen it",
			  path, strerror(-ret));
	}
	__atomic_store_n(&crypt->plaintext, false, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&crypt->size_lock);
	pthread_rwlock_unlock(&namespace_lock);
	close(old_fd);
	if (old_direct_fd >= 0)
		close(old_direct_fd);
	return 0;
out_unlock:
	pthread_rwlock_unlock(&crypt->size_lock);
	pthread_rwlock_unlock(&namespace_lock);
	return ret;
}

/* Room for the copy: its size and header, and a margin the database keeps for itself. */
static int check_space(const struct tdefs_daemon *daemon, uint64_t size)
{
	struct statvfs vfs;
	int fd = openat(daemon->backing_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = fstatvfs(fd, &vfs);
	close(fd);
	if (ret < 0)
		return -errno;
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize < size + size / 64 + 16 * TDEFS_BLOCK_SIZE)
		return -ENOSPC;
	return 0;
}

static int convert_open_file(struct tdefs_daemon *daemon, struct job *job,
			     struct tdefs_inode *inode, int parent_fd, const char *name,
			     const struct stat *original, struct file_job_result *result)
{
	struct file_crypt *crypt = inode->crypt;
	struct file_header header;
	struct xts_key *key = NULL;
	char copy_name[64];
	bool finished = false;
	int copy_fd, ret;

	if (!__atomic_load_n(&crypt->plaintext, __ATOMIC_ACQUIRE)) {
		result->skipped = true;
		return 0;
	}
	if (!crypt->writable)
		return -EROFS;
	ret = check_space(daemon, crypt->size);
	if (ret < 0)
		return ret;
	copy_fd = create_copy(daemon, copy_name, sizeof(copy_name), &header, &key);
	if (copy_fd < 0)
		return copy_fd;
	pthread_rwlock_wrlock(&crypt->size_lock);
	crypt->copy_fd = copy_fd;
	crypt->copy_watermark = 0;
	crypt->copy_error = 0;
	__atomic_store_n(&crypt->copy_key, key, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&crypt->size_lock);
	for (;;) {
		uint64_t bytes = 0;

		if (job && job_should_stop(job)) {
			ret = 0;
			break;
		}
		ret = __atomic_load_n(&crypt->copy_error, __ATOMIC_ACQUIRE);
		if (ret < 0)
			break;
		ret = copy_chunk(crypt, &finished, &bytes);
		if (ret < 0)
			break;
		result->bytes += bytes;
		if (job) {
			job_set_current(job, crypt->copy_watermark << TDEFS_BLOCK_SHIFT, crypt->size);
			job_throttle(job, bytes);
		}
		if (!finished)
			continue;
		/* The bulk of the sync outside the locks; the swap syncs what came after. */
		if (fdatasync(copy_fd) < 0) {
			ret = -errno;
			break;
		}
		ret = swap_in_copy(daemon, inode, crypt, parent_fd, name, original, copy_fd,
				   copy_name, &header);
		if (ret == 0) {
			result->changed = true;
			return 0;
		}
		if (ret < 0)
			break;
		finished = false; /* it grew: copy the rest */
	}
	drop_copy(daemon, crypt, copy_fd, copy_name);
	return ret;
}

int encrypt_file(struct tdefs_daemon *daemon, struct job *job, int parent_fd, const char *name,
		 int path_fd, struct file_job_result *result)
{
	struct tdefs_inode *inode;
	struct stat st, root;
	int fd, ret;

	memset(result, 0, sizeof(*result));
	if (fstat(path_fd, &st) < 0 || fstat(daemon->backing_fd, &root) < 0) {
		ret = -errno;
		close(path_fd);
		return ret;
	}
	fd = S_ISREG(st.st_mode) ? backing_reopen(path_fd, O_RDONLY) : -EINVAL;
	ret = fd < 0 ? fd : plaintext_marker_read(fd, NULL);
	if (fd >= 0)
		close(fd);
	if (ret <= 0) {
		close(path_fd);
		if (ret == 0 || ret == -EINVAL)
			result->skipped = true;
		return ret == -EINVAL ? 0 : ret;
	}
	if (st.st_nlink != 1 || st.st_dev != root.st_dev) {
		close(path_fd);
		return st.st_nlink != 1 ? -EMLINK : -EXDEV;
	}
	/* Through the inode table: the kernel's opens and the conversion share one state. */
	ret = inode_get_by_fd(daemon, path_fd, &inode);
	if (ret < 0)
		return ret;
	ret = file_crypt_acquire(daemon, inode);
	if (ret == 0) {
		ret = convert_open_file(daemon, job, inode, parent_fd, name, &st, result);
		file_crypt_release(inode);
	}
	inode_forget(daemon, inode, 1);
	return ret;
}
