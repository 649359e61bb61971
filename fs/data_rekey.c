/*
 * Online data rekey of one file, in place (docs/REKEY.md). The file gets a second DEK and a
 * watermark: blocks below it are under the new DEK, the rest under the old one. The worker moves
 * the watermark through the file a chunk (the hot zone) at a time while the database reads and
 * writes; only requests that touch the chunk being rewritten wait, and only for that chunk.
 *
 * One chunk, in the order that makes a crash at any instant recoverable:
 *   1. lock the chunk's blocks; read its ciphertext; note each block's XXH3-64;
 *   2. write the header: watermark = chunk start, hot zone = the chunk with those checksums;
 *      over the older copy first, synced, then over the other copy, synced;
 *   3. write the chunk re-encrypted under the new DEK, and sync it;
 *   4. move the in-memory watermark past the chunk and unlock.
 * The next chunk's header records the watermark past this chunk. After a crash, a hot-zone
 * block whose checksum still matches is under the old DEK; any other was written under the new
 * one (by step 3, or by the database after step 4). At the end the header keeps only the new
 * DEK, in both copies, and the old one leaves memory.
 *
 * Why every step (begin, each chunk, finish, and the recovery below) writes both copies,
 * as LUKS2 writes both header areas for every reencryption step: a copy can be lost at any
 * instant (a latent sector error, one flipped bit), and then the other copy alone must be
 * right. With both copies written before step 3, the copies hold step k in both, or step k in
 * one and step k - 1 in the other while step k's second write is pending, and step k's data is
 * written only once both hold step k. So a lone surviving copy is step k, which is right, or
 * step k - 1 while step k's chunk is untouched: its hot zone is the previous chunk, whose blocks
 * are all under the new DEK and fail their old checksums, and its watermark is where step k's
 * untouched chunk starts. Written to one copy only, the older copy would be one chunk behind a
 * chunk already rewritten, and recovery from it would decrypt that chunk with the old DEK.
 *
 * Across files, a job's progress is its record in the backing root (REKEY_JOB_RECORD) and a mark
 * on each file it finished (REKEY_DONE_XATTR, the job's ID), set once the file's header keeps
 * the new DEK alone: the same job, going on after a stop or a restart, skips marked files.
 */
#include "fs/daemon.h"
#include "fs/backing_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/util.h"

/*
 * 880 KiB chunks (the most the header's hot zone holds): three syncs per chunk, one per header
 * copy and one for the data.
 */
#define REKEY_CHUNK_BLOCKS 220
_Static_assert(REKEY_CHUNK_BLOCKS <= REKEY_HOT_ZONE_MAX, "a chunk fits the header's hot zone");

int rekey_edit_progress(struct file_header *header, uint8_t *deks, unsigned *dek_count,
			const uint8_t *active_key_id, void *context)
{
	const struct rekey_progress_edit *progress = context;

	(void)deks;
	(void)dek_count;
	(void)active_key_id;
	if (!(header->flags & HEADER_FLAG_REKEY_IN_PROGRESS))
		return -EINVAL;
	header->watermark = progress->watermark;
	header->hot_count = progress->hot_count;
	header->hot_first = progress->hot_count ? progress->watermark : 0;
	memset(header->hot_old_checksums, 0, sizeof(header->hot_old_checksums));
	for (uint32_t i = 0; i < progress->hot_count; i++)
		header->hot_old_checksums[i] = progress->hot_old_checksums[i];
	return 0;
}

/* Start: a fresh DEK in slot 1, watermark 0. Already started (a resume): change nothing. */
static int edit_begin(struct file_header *header, uint8_t *deks, unsigned *dek_count,
		      const uint8_t *active_key_id, void *context)
{
	uint8_t *new_dek = context;
	int ret;

	(void)active_key_id;
	if (header->flags & HEADER_FLAG_REKEY_IN_PROGRESS)
		return 1;
	ret = crypto_random_bytes(deks + DEK_SIZE, DEK_SIZE);
	if (ret < 0)
		return ret;
	memcpy(new_dek, deks + DEK_SIZE, DEK_SIZE);
	*dek_count = 2;
	header->flags |= HEADER_FLAG_REKEY_IN_PROGRESS;
	header->watermark = 0;
	header->hot_first = 0;
	header->hot_count = 0;
	return 0;
}

/* End: the new DEK alone, in slot 0; no trace of the old one or of the progress. */
static int edit_finish(struct file_header *header, uint8_t *deks, unsigned *dek_count,
		       const uint8_t *active_key_id, void *context)
{
	(void)active_key_id;
	(void)context;
	if (!(header->flags & HEADER_FLAG_REKEY_IN_PROGRESS))
		return -EINVAL;
	memcpy(deks, deks + DEK_SIZE, DEK_SIZE);
	secure_wipe(deks + DEK_SIZE, DEK_SIZE);
	*dek_count = 1;
	header->flags &= ~HEADER_FLAG_REKEY_IN_PROGRESS;
	header->watermark = 0;
	header->hot_first = 0;
	header->hot_count = 0;
	memset(header->hot_old_checksums, 0, sizeof(header->hot_old_checksums));
	return 0;
}

static uint64_t block_count(uint64_t size)
{
	return (size + TDEFS_BLOCK_SIZE - 1) >> TDEFS_BLOCK_SHIFT;
}

/* Re-encrypt one chunk at the watermark. *finished when the watermark has reached the end. */
static int rekey_chunk(struct tdefs_daemon *daemon, struct file_crypt *crypt, uint8_t *buffer,
		       bool *finished, uint64_t *bytes)
{
	uint64_t checksums[REKEY_CHUNK_BLOCKS];
	uint64_t size, blocks, first, count, end;
	size_t length, done;
	off_t offset;
	int ret;

	pthread_rwlock_rdlock(&crypt->size_lock);
	size = crypt->size;
	blocks = block_count(size);
	first = crypt->watermark;
	if (first >= blocks) {
		*finished = true;
		ret = 0;
		goto out_unlock_size;
	}
	count = blocks - first < REKEY_CHUNK_BLOCKS ? blocks - first : REKEY_CHUNK_BLOCKS;
	end = first + count;
	length = (size_t)((end << TDEFS_BLOCK_SHIFT < size ? end << TDEFS_BLOCK_SHIFT : size) -
			  (first << TDEFS_BLOCK_SHIFT));
	offset = (off_t)((first << TDEFS_BLOCK_SHIFT) + TDEFS_HEADER_SIZE);
	file_lock_blocks(crypt, first, end - 1, true);

	ret = pread_full(crypt->data_fd, buffer, length, offset, &done);
	if (ret < 0)
		goto out_unlock_blocks;
	memset(buffer + done, 0, length - done);
	for (uint64_t i = 0; i < count; i++) {
		size_t at = (size_t)(i << TDEFS_BLOCK_SHIFT);
		size_t block_len = length - at < TDEFS_BLOCK_SIZE ? length - at : TDEFS_BLOCK_SIZE;

		checksums[i] = XXH3_64bits(buffer + at, block_len);
	}
	struct rekey_progress_edit progress = {
		.watermark = first,
		.hot_count = (uint32_t)count,
		.hot_old_checksums = checksums,
	};
	ret = header_update(daemon, crypt->data_fd, rekey_edit_progress, &progress,
			    HEADER_UPDATE_BOTH_COPIES);
	if (ret < 0)
		goto out_unlock_blocks;
	fault_point("rekey:hot-zone-recorded");
	/* Runs of data blocks are re-encrypted and written; holes are skipped and stay holes. */
	for (uint64_t i = 0; i < count && ret == 0;) {
		size_t at = (size_t)(i << TDEFS_BLOCK_SHIFT), run_end = at;
		uint64_t j = i;

		while (j < count) {
			size_t block_at = (size_t)(j << TDEFS_BLOCK_SHIFT);
			size_t block_len = length - block_at < TDEFS_BLOCK_SIZE ? length - block_at
									      : TDEFS_BLOCK_SIZE;

			if (buffer_is_zero(buffer + block_at, block_len))
				break;
			ret = block_decrypt(crypt->key, first + j, buffer + block_at,
					    buffer + block_at, block_len);
			if (ret == 0)
				ret = block_encrypt(crypt->new_key, first + j, buffer + block_at,
						    buffer + block_at, block_len);
			if (ret < 0)
				break;
			run_end = block_at + block_len;
			j++;
		}
		if (ret == 0 && run_end > at)
			ret = pwrite_all(crypt->data_fd, buffer + at, run_end - at, offset + (off_t)at);
		i = j > i ? j : i + 1;
	}
	if (ret == 0 && fdatasync(crypt->data_fd) < 0)
		ret = -errno;
	secure_wipe(buffer, length);
	if (ret < 0)
		goto out_unlock_blocks;
	fault_point("rekey:chunk-synced");
	__atomic_store_n(&crypt->watermark, end, __ATOMIC_RELEASE);
	*bytes = length;
out_unlock_blocks:
	file_unlock_blocks(crypt, first, end - 1);
out_unlock_size:
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

/* The last chunk is done: keep only the new DEK, on disk and in memory. */
static int rekey_finish(struct tdefs_daemon *daemon, struct file_crypt *crypt, bool *finished)
{
	struct xts_key *old_key;
	int ret;

	pthread_rwlock_wrlock(&crypt->size_lock);
	/* The file may have grown since the last chunk: then there is more to do. */
	if (crypt->watermark < block_count(crypt->size)) {
		*finished = false;
		pthread_rwlock_unlock(&crypt->size_lock);
		return 0;
	}
	ret = header_update(daemon, crypt->data_fd, edit_finish, NULL, HEADER_UPDATE_BOTH_COPIES);
	if (ret == 0) {
		old_key = crypt->key;
		crypt->key = crypt->new_key;
		__atomic_store_n(&crypt->new_key, NULL, __ATOMIC_RELEASE);
		crypt->watermark = 0;
		xts_key_free(old_key);
	}
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

static int rekey_open_file(struct tdefs_daemon *daemon, struct job *job, struct file_crypt *crypt,
			   const uint8_t *job_id, struct file_job_result *result)
{
	uint8_t *buffer = NULL, *new_dek;
	bool finished = false;
	int ret = 0;

	/* A plaintext file has no key to replace: the conversion (fs/encrypt.c) encrypts it. */
	if (__atomic_load_n(&crypt->plaintext, __ATOMIC_ACQUIRE)) {
		result->skipped = true;
		return 0;
	}
	if (!crypt->writable)
		return -EROFS;
	if (!crypt->new_key) {
		new_dek = secure_alloc(DEK_SIZE);
		if (!new_dek)
			return -ENOMEM;
		ret = header_update(daemon, crypt->data_fd, edit_begin, new_dek,
				    HEADER_UPDATE_BOTH_COPIES);
		if (ret == 0) {
			struct xts_key *key;

			ret = xts_key_new(new_dek, &key);
			if (ret == 0) {
				crypt->watermark = 0;
				__atomic_store_n(&crypt->new_key, key, __ATOMIC_RELEASE);
			}
		}
		secure_free(new_dek);
		if (ret == 1) /* another job started it meanwhile: its keys are not ours to guess */
			ret = -EBUSY;
		if (ret < 0)
			return ret;
	}
	buffer = malloc((size_t)REKEY_CHUNK_BLOCKS * TDEFS_BLOCK_SIZE);
	if (!buffer)
		return -ENOMEM;
	while (!finished) {
		uint64_t bytes = 0;

		if (job && job_should_stop(job))
			break;
		ret = rekey_chunk(daemon, crypt, buffer, &finished, &bytes);
		if (ret < 0)
			break;
		result->bytes += bytes;
		if (job) {
			job_set_current(job, crypt->watermark << TDEFS_BLOCK_SHIFT, crypt->size);
			job_throttle(job, bytes);
		}
		if (finished) {
			ret = rekey_finish(daemon, crypt, &finished);
			if (ret < 0)
				break;
		}
	}
	free(buffer);
	if (ret == 0 && finished)
		result->changed = true;
	/*
	 * The job's mark, after the header that keeps only the new DEK is synced in both copies:
	 * a crash before it only makes the job rekey this file once more when it goes on.
	 */
	if (ret == 0 && finished && job_id &&
	    fsetxattr(crypt->data_fd, REKEY_DONE_XATTR, job_id, REKEY_JOB_ID_SIZE, 0) < 0)
		log_warning("tdefs: cannot mark a rekeyed file as done (%s): a stopped rekey "
			    "would rekey it again", strerror(errno));
	return ret;
}

/*
 * A data rekey was interrupted inside its hot zone. Each hot-zone block whose ciphertext still
 * has the checksum recorded before the chunk was rewritten is under the old DEK: re-encrypt it
 * under the new one. Every other block there was written under the new DEK (by the rekey, or by
 * the database after it). Then the watermark moves past the hot zone, in both header copies like
 * every rekey step. docs/REKEY.md explains why this is sound when 4096-byte block writes are not
 * torn, and why it stays sound from a lone surviving header copy (load_file_key in
 * fs/file_keys.c has checked that two valid copies agree). Recovery is idempotent: a block it
 * re-encrypted no longer matches its old checksum, so a crash before the header write only
 * repeats it. The caller holds the inode's crypt_lock, and crypt is not yet shared.
 */
int data_rekey_recover(struct tdefs_daemon *daemon, struct tdefs_inode *inode,
		       struct file_crypt *crypt)
{
	const struct file_header *header = &crypt->header;
	uint64_t size = crypt->size;
	char path[512];
	unsigned reencrypted = 0;
	struct rekey_progress_edit progress = {
		.watermark = header->hot_first + header->hot_count,
	};
	uint8_t block_data[TDEFS_BLOCK_SIZE];
	size_t done;
	int ret = 0;

	for (uint32_t i = 0; i < header->hot_count && ret == 0; i++) {
		uint64_t block = header->hot_first + i;
		size_t len = file_block_length(block, size);
		off_t offset = file_block_backing_offset(block);

		if (len == 0)
			break;
		ret = pread_full(crypt->data_fd, block_data, len, offset, &done);
		if (ret < 0)
			break;
		memset(block_data + done, 0, len - done);
		if (XXH3_64bits(block_data, len) != header->hot_old_checksums[i] ||
		    buffer_is_zero(block_data, len))
			continue;
		ret = block_decrypt(crypt->key, block, block_data, block_data, len);
		if (ret == 0)
			ret = block_encrypt(crypt->new_key, block, block_data, block_data, len);
		if (ret == 0)
			ret = pwrite_all(crypt->data_fd, block_data, len, offset);
		reencrypted++;
	}
	secure_wipe(block_data, sizeof(block_data));
	inode_describe(inode, path, sizeof(path));
	log_info("%s: data rekey was interrupted in a chunk of %u blocks; %u were still under the "
		 "old key and are re-encrypted", path, header->hot_count, reencrypted);
	if (ret == 0 && fdatasync(crypt->data_fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = header_update(daemon, crypt->data_fd, rekey_edit_progress, &progress,
				    HEADER_UPDATE_BOTH_COPIES);
	if (ret == 0)
		crypt->watermark = progress.watermark;
	return ret;
}

static bool rekey_interrupted(int path_fd)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header header;
	unsigned slot;
	size_t done;
	bool interrupted = false;
	int fd = backing_reopen(path_fd, O_RDONLY);

	if (fd < 0)
		return false;
	if (pread_full(fd, image, sizeof(image), 0, &done) == 0 &&
	    header_select(image, done, &header, &slot) == 0)
		interrupted = header.flags & HEADER_FLAG_REKEY_IN_PROGRESS;
	close(fd);
	return interrupted;
}

bool data_rekey_done_by(int path_fd, const uint8_t *job_id)
{
	uint8_t value[REKEY_JOB_ID_SIZE + 1];
	int fd = backing_reopen(path_fd, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = fgetxattr(fd, REKEY_DONE_XATTR, value, sizeof(value));
	close(fd);
	return n == REKEY_JOB_ID_SIZE && memcmp(value, job_id, REKEY_JOB_ID_SIZE) == 0;
}

int data_rekey_file(struct tdefs_daemon *daemon, struct job *job, int path_fd, bool resume_only,
		    const uint8_t *job_id, struct file_job_result *result)
{
	struct tdefs_inode *inode;
	struct stat st;
	int ret;

	memset(result, 0, sizeof(*result));
	if (fstat(path_fd, &st) < 0) {
		ret = -errno;
		close(path_fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (resume_only && !rekey_interrupted(path_fd)) ||
	    (job_id && data_rekey_done_by(path_fd, job_id))) {
		close(path_fd);
		result->skipped = true;
		return 0;
	}
	/*
	 * Through the inode table, so that the kernel's opens of this file and the rekey share
	 * one encryption state, one watermark and one set of block locks.
	 */
	ret = inode_get_by_fd(daemon, path_fd, &inode);
	if (ret < 0)
		return ret;
	ret = file_crypt_acquire(daemon, inode);
	if (ret == 0) {
		ret = rekey_open_file(daemon, job, inode->crypt, job_id, result);
		file_crypt_release(inode);
	}
	inode_forget(daemon, inode, 1);
	return ret;
}

/* --- the job's record ------------------------------------------------------------------ */

int data_rekey_record_write(struct tdefs_daemon *daemon, const uint8_t id[REKEY_JOB_ID_SIZE],
			    bool stopped, const char *relative_path, double rate_limit)
{
	char text[ENCRYPT_RECORD_MAX];
	int length = rekey_record_encode(rate_limit, id, stopped, relative_path, text, sizeof(text));

	if (length < 0)
		return length;
	return job_record_replace(daemon, REKEY_JOB_RECORD, text, (size_t)length);
}

int data_rekey_record_remove(struct tdefs_daemon *daemon)
{
	if (unlinkat(daemon->backing_fd, REKEY_JOB_RECORD, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int data_rekey_record_read(struct tdefs_daemon *daemon, uint8_t id[REKEY_JOB_ID_SIZE],
			   bool *stopped, char *path, size_t path_size, double *rate_limit)
{
	char text[ENCRYPT_RECORD_MAX + 1];
	size_t length;
	int ret = job_record_read(daemon, REKEY_JOB_RECORD, text, sizeof(text), &length);

	if (ret < 0)
		return ret;
	return rekey_record_decode(text, length, rate_limit, id, stopped, path, path_size);
}

/*
 * The record only says "a data rekey of PATH at RATE, with this ID, was running". A forged one
 * could only start a rekey of some path below the root, or make one skip files that carry the
 * ID (trusted.* xattrs, which only root sets and the mount never serves): nothing in it decides
 * which bytes a file holds or which key decrypts them.
 */
void data_rekey_resume_recorded(struct tdefs_daemon *daemon)
{
	uint8_t id[REKEY_JOB_ID_SIZE];
	char path[PATH_MAX], error[PATH_MAX + 128];
	bool stopped = true;
	double rate = 0;
	int ret = data_rekey_record_read(daemon, id, &stopped, path, sizeof(path), &rate);

	if (ret < 0 && ret != -ENOENT)
		log_warning("tdefs: %s is %s: the data rekey it names is not taken up (run "
			    "'tderekey data' again)", REKEY_JOB_RECORD,
			    ret == -EPERM ? "not the daemon's own record" : "damaged");
	if (ret == 0 && !stopped) {
		if (job_start(daemon, JOB_DATA_REKEY, path, rate, false, error,
			      sizeof(error)) == 0) {
			log_info("tdefs: the interrupted data rekey of /%s goes on", path);
			return;
		}
		log_warning("tdefs: cannot resume the interrupted data rekey: %s", error);
	} else if (ret == 0) {
		log_info("tdefs: a data rekey of /%s was stopped before its end; 'tderekey data' of "
			 "the same path goes on with it", path);
	}
	if (job_start(daemon, JOB_DATA_REKEY, "", 0, true, error, sizeof(error)) < 0)
		log_warning("tdefs: cannot resume interrupted data rekeys: %s", error);
}
