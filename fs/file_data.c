/*
 * Encrypted file contents: loading a file's DEK from its header, and the read, write, truncate
 * and fallocate paths that keep the backing file in the format of docs/FORMAT.md.
 *
 * Locking (see struct file_crypt): every request takes size_lock, shared when it stays inside
 * the current size and exclusive when it moves the size. Under the shared lock, requests also
 * take the block-lock stripes of the blocks they touch (readers shared, writers exclusive), so
 * I/O to different blocks of one file runs in parallel while a read-modify-write of a partial
 * block never interleaves with another request on that block.
 *
 * Crash safety: a size change first rewrites the old last block at its new length, then moves
 * the backing size, so that a crash in between leaves a longer file with zero padding rather
 * than a last block whose length no longer matches its ciphertext.
 */
#include "fs/daemon.h"
#include "fs/backing_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "util/util.h"

#define BLOCK_OFFSET(block) ((uint64_t)(block) << TDEFS_BLOCK_SHIFT)
#define BACKING_OFFSET(plain) ((off_t)((plain) + TDEFS_HEADER_SIZE))

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* --- per-thread aligned scratch buffers -------------------------------------------------- */

struct scratch_buffer {
	uint8_t *data;
	size_t size;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *ptr)
{
	struct scratch_buffer *scratch = ptr;

	/* It held plaintext: wipe before returning it to the allocator. */
	secure_wipe(scratch->data, scratch->size);
	free(scratch->data);
	free(scratch);
}

static void scratch_key_create(void)
{
	pthread_key_create(&scratch_key, scratch_destroy);
}

/*
 * One buffer per worker thread, grown to the largest request it has served and reused for
 * every later one, so the I/O path does not allocate. 4096-aligned for O_DIRECT backing I/O.
 */
static uint8_t *scratch_get(size_t size)
{
	struct scratch_buffer *scratch;
	size_t rounded = (size + TDEFS_BLOCK_SIZE - 1) & ~(size_t)(TDEFS_BLOCK_SIZE - 1);

	pthread_once(&scratch_once, scratch_key_create);
	scratch = pthread_getspecific(scratch_key);
	if (!scratch) {
		scratch = calloc(1, sizeof(*scratch));
		if (!scratch)
			return NULL;
		pthread_setspecific(scratch_key, scratch);
	}
	if (scratch->size < rounded) {
		void *grown;

		if (posix_memalign(&grown, TDEFS_BLOCK_SIZE, rounded) != 0)
			return NULL;
		secure_wipe(scratch->data, scratch->size);
		free(scratch->data);
		scratch->data = grown;
		scratch->size = rounded;
	}
	return scratch->data;
}

/* --- loading the DEK --------------------------------------------------------------------- */

static void log_file_error_once(struct tdefs_inode *inode, const char *detail)
{
	char path[512];

	if (inode->load_error_logged)
		return;
	inode->load_error_logged = true;
	inode_describe(inode, path, sizeof(path));
	log_error("%s: %s", path, detail);
}

int file_write_new_header(int fd)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	uint8_t key_id[MASTER_KEY_ID_SIZE];
	struct file_header header;
	const uint8_t *mek;
	uint8_t *dek;
	int ret;

	dek = secure_alloc(DEK_SIZE);
	if (!dek)
		return -ENOMEM;
	ret = crypto_random_bytes(dek, DEK_SIZE);
	if (ret < 0)
		goto out_free_dek;
	pthread_rwlock_rdlock(&daemon_state.keyring_lock);
	ret = keyring_active(daemon_state.keyring, key_id, &mek);
	if (ret == 0)
		ret = header_create(&header, mek, key_id, dek);
	if (ret == 0)
		ret = header_build_image(&header, mek, dek, image);
	pthread_rwlock_unlock(&daemon_state.keyring_lock);
	if (ret < 0)
		goto out_free_dek;
	ret = pwrite_all(fd, image, sizeof(image), 0);
	/* A new file's header is durable before any data can depend on it. */
	if (ret == 0 && fdatasync(fd) < 0)
		ret = -errno;
	if (ret < 0) {
		/* Never leave a half-written header behind (ENOSPC): an empty file is valid. */
		if (ftruncate(fd, 0) < 0)
			log_warning("cannot truncate a backing file after a failed header write: %s",
				    strerror(errno));
	}
out_free_dek:
	secure_free(dek);
	return ret;
}

static int open_backing_data(struct tdefs_inode *inode, bool *writable)
{
	int fd;

	/*
	 * backing_reopen() checks that what opens is the inode's regular file: an inode that is
	 * anything else (a device node, a FIFO) is never opened for data, let alone written.
	 */
	*writable = !daemon_state.read_only;
	fd = backing_reopen(inode->path_fd, *writable ? O_RDWR : O_RDONLY);
	if ((fd == -EACCES || fd == -EROFS) && *writable) {
		*writable = false;
		fd = backing_reopen(inode->path_fd, O_RDONLY);
	}
	return fd;
}

static size_t block_length(uint64_t block, uint64_t size);

/*
 * A data rekey was interrupted inside its hot zone. Each hot-zone block whose ciphertext still
 * has the checksum recorded before the chunk was rewritten is under the old DEK: re-encrypt it
 * under the new one. Every other block there was written under the new DEK (by the rekey, or by
 * the database after it). Then the watermark moves past the hot zone, in both header copies like
 * every rekey step. docs/REKEY.md explains why this is sound when 4096-byte block writes are not
 * torn, and why it stays sound from a lone surviving header copy (load_file_key has checked
 * that two valid copies agree). Recovery is idempotent: a block it re-encrypted no longer
 * matches its old checksum, so a crash before the header write only repeats it.
 */
static int recover_hot_zone(struct tdefs_inode *inode, struct file_crypt *crypt,
			    const struct file_header *header, uint64_t size)
{
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
		size_t len = block_length(block, size);
		off_t offset = BACKING_OFFSET(BLOCK_OFFSET(block));

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
		ret = header_update(crypt->data_fd, rekey_edit_progress, &progress,
				    HEADER_UPDATE_BOTH_COPIES);
	if (ret == 0)
		crypt->watermark = progress.watermark;
	return ret;
}

static int load_file_key(struct tdefs_inode *inode, struct file_crypt *crypt)
{
	uint8_t raw[TDEFS_HEADER_SIZE];
	char key_text[KEY_ID_TEXT_SIZE];
	const char *reason;
	const uint8_t *mek;
	bool other_valid;
	unsigned slot;
	struct stat st;
	uint8_t *deks;
	size_t done;
	int ret;

	if (fstat(crypt->data_fd, &st) < 0)
		return -errno;
	/* An empty backing file (created by hand, or a create cut short) gets a header now. */
	if (st.st_size == 0 && crypt->writable) {
		ret = file_write_new_header(crypt->data_fd);
		if (ret < 0)
			return ret;
		st.st_size = TDEFS_HEADER_SIZE;
	}
	if (st.st_size < (off_t)TDEFS_HEADER_SIZE) {
		log_file_error_once(inode, "backing file is shorter than its 4096-byte header");
		return -EIO;
	}
	ret = pread_full(crypt->data_fd, raw, sizeof(raw), 0, &done);
	if (ret < 0)
		return ret;
	ret = header_select(raw, done, &crypt->header, &slot);
	if (ret == -EPROTONOSUPPORT) {
		log_file_error_once(inode, "header written by a newer tdefs format");
		return -EIO;
	}
	if (ret < 0) {
		log_file_error_once(inode, "damaged header: no usable copy (torn or corrupted, "
					   "or the two copies come from different files)");
		return -EIO;
	}
	deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
	if (!deks)
		return -ENOMEM;
	pthread_rwlock_rdlock(&daemon_state.keyring_lock);
	mek = keyring_find(daemon_state.keyring, crypt->header.key_id);
	ret = mek ? header_unseal(&crypt->header, mek, deks) : -ENOKEY;
	if (ret == 0)
		ret = header_copies_verify(daemon_state.keyring, raw, done, slot, &crypt->header,
					   deks, &other_valid, &reason);
	pthread_rwlock_unlock(&daemon_state.keyring_lock);
	if (ret == -ENOMEM)
		goto out_free_deks;
	if (ret == -EIO) {
		char detail[320];

		snprintf(detail, sizeof(detail),
			 "data rekey state cannot be decided, file refused rather than read under "
			 "a guessed key: %s (tdefs --check lists it)", reason);
		log_file_error_once(inode, detail);
		goto out_free_deks;
	}
	if (ret == 0 && !other_valid && (crypt->header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)) {
		char path[512];

		/* Decidable: every rekey step is in both copies, so this one is at most a step behind. */
		inode_describe(inode, path, sizeof(path));
		log_warning("%s: header copy %u is damaged; the data rekey goes on from copy %u, "
			    "which is the current step or the one before it", path, 1 - slot, slot);
	}
	if (ret == -ENOKEY) {
		char detail[160];

		key_id_format(crypt->header.key_id, key_text);
		snprintf(detail, sizeof(detail),
			 "header names master key %s, which the wallet does not hold", key_text);
		log_file_error_once(inode, detail);
		goto out_free_deks;
	}
	if (ret < 0) {
		log_file_error_once(inode,
				    "header fails authentication (altered or spliced)");
		ret = -EIO;
		goto out_free_deks;
	}
	ret = xts_key_new(deks, &crypt->key);
	crypt->size = (uint64_t)st.st_size - TDEFS_HEADER_SIZE;
	if (ret == 0 && (crypt->header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)) {
		ret = xts_key_new(deks + DEK_SIZE, &crypt->new_key);
		crypt->watermark = crypt->header.watermark;
		if (ret == 0 && crypt->header.hot_count > 0) {
			if (!crypt->writable) {
				log_file_error_once(inode, "an interrupted data rekey needs recovery; "
							   "mount read-write once to finish it");
				ret = -EIO;
			} else {
				ret = recover_hot_zone(inode, crypt, &crypt->header, crypt->size);
			}
		}
		if (ret < 0) {
			xts_key_free(crypt->key);
			xts_key_free(crypt->new_key);
			crypt->key = crypt->new_key = NULL;
		}
	}
out_free_deks:
	secure_free(deks);
	return ret;
}

int file_crypt_acquire(struct tdefs_inode *inode)
{
	struct file_crypt *crypt;
	int ret = 0;

	pthread_mutex_lock(&inode->crypt_lock);
	if (inode->crypt) {
		inode->crypt_users++;
		goto out_unlock;
	}
	crypt = calloc(1, sizeof(*crypt));
	if (!crypt) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	crypt->data_fd = open_backing_data(inode, &crypt->writable);
	if (crypt->data_fd < 0) {
		ret = crypt->data_fd;
		goto out_free_crypt;
	}
	ret = load_file_key(inode, crypt);
	if (ret < 0)
		goto out_close_data;
	pthread_rwlock_init(&crypt->size_lock, NULL);
	for (unsigned i = 0; i < BLOCK_LOCK_STRIPES; i++)
		pthread_rwlock_init(&crypt->block_locks[i], NULL);
	inode->crypt = crypt;
	inode->crypt_users = 1;
	inode->load_error_logged = false;
	goto out_unlock;

out_close_data:
	close(crypt->data_fd);
out_free_crypt:
	free(crypt);
out_unlock:
	pthread_mutex_unlock(&inode->crypt_lock);
	return ret;
}

void file_crypt_release(struct tdefs_inode *inode)
{
	struct file_crypt *crypt;

	pthread_mutex_lock(&inode->crypt_lock);
	if (inode->crypt_users == 0 || --inode->crypt_users > 0) {
		pthread_mutex_unlock(&inode->crypt_lock);
		return;
	}
	crypt = inode->crypt;
	inode->crypt = NULL;
	pthread_mutex_unlock(&inode->crypt_lock);

	/* The last user is gone: the DEK leaves memory (xts_key_free cleanses it). */
	xts_key_free(crypt->key);
	xts_key_free(crypt->new_key);
	close(crypt->data_fd);
	pthread_rwlock_destroy(&crypt->size_lock);
	for (unsigned i = 0; i < BLOCK_LOCK_STRIPES; i++)
		pthread_rwlock_destroy(&crypt->block_locks[i]);
	secure_wipe(&crypt->header, sizeof(crypt->header));
	free(crypt);
}

/* --- block locks ---------------------------------------------------------------------- */

/* Stripes are always taken in ascending index order, so two requests cannot deadlock. */
static bool stripe_in_range(unsigned stripe, uint64_t first, uint64_t last)
{
	uint64_t count = last - first + 1;

	if (count >= BLOCK_LOCK_STRIPES)
		return true;
	return (stripe + BLOCK_LOCK_STRIPES - first % BLOCK_LOCK_STRIPES) % BLOCK_LOCK_STRIPES <
	       count;
}

void file_lock_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last, bool exclusive)
{
	for (unsigned s = 0; s < BLOCK_LOCK_STRIPES; s++) {
		if (!stripe_in_range(s, first, last))
			continue;
		if (exclusive)
			pthread_rwlock_wrlock(&crypt->block_locks[s]);
		else
			pthread_rwlock_rdlock(&crypt->block_locks[s]);
	}
}

void file_unlock_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last)
{
	for (unsigned s = 0; s < BLOCK_LOCK_STRIPES; s++)
		if (stripe_in_range(s, first, last))
			pthread_rwlock_unlock(&crypt->block_locks[s]);
}

/* --- which key a block is under ---------------------------------------------------------- */

/*
 * During a data rekey, blocks below the watermark are under the new DEK and the others under
 * the old one. The rekey worker moves the watermark only while it holds the block locks of the
 * chunk it covers, and every request holds the block locks of the blocks it touches, so the
 * answer cannot change under a request for the blocks it uses.
 */
static struct xts_key *key_for_block(const struct file_crypt *crypt, uint64_t block)
{
	struct xts_key *new_key = __atomic_load_n(&crypt->new_key, __ATOMIC_ACQUIRE);

	if (new_key && block < __atomic_load_n(&crypt->watermark, __ATOMIC_ACQUIRE))
		return new_key;
	return crypt->key;
}

/* Whole blocks, split where the key changes. */
static int crypt_blocks(const struct file_crypt *crypt, bool encrypt, uint64_t first,
			const uint8_t *in, uint8_t *out, size_t len)
{
	while (len > 0) {
		struct xts_key *key = key_for_block(crypt, first);
		uint64_t blocks = len / TDEFS_BLOCK_SIZE;
		uint64_t watermark = __atomic_load_n(&crypt->watermark, __ATOMIC_ACQUIRE);
		int ret;

		if (__atomic_load_n(&crypt->new_key, __ATOMIC_ACQUIRE) && first < watermark &&
		    first + blocks > watermark)
			blocks = watermark - first;
		size_t run = (size_t)blocks * TDEFS_BLOCK_SIZE;
		ret = encrypt ? blocks_encrypt(key, first, in, out, run)
			      : blocks_decrypt(key, first, in, out, run);
		if (ret < 0)
			return ret;
		first += blocks;
		in += run;
		out += run;
		len -= run;
	}
	return 0;
}

/* --- block helpers ---------------------------------------------------------------------- */

/* Plaintext of block b as it stands (old_len bytes), zero-padded to TDEFS_BLOCK_SIZE. */
static int read_plain_block(struct file_crypt *crypt, uint64_t block, size_t old_len,
			    uint8_t *out)
{
	size_t done = 0;
	int ret;

	memset(out, 0, TDEFS_BLOCK_SIZE);
	if (old_len == 0)
		return 0;
	ret = pread_full(crypt->data_fd, out, old_len, BACKING_OFFSET(BLOCK_OFFSET(block)), &done);
	if (ret < 0)
		return ret;
	/* Bytes missing on the backing side are a hole that ends the file early: zeros. */
	memset(out + done, 0, old_len - done);
	return block_decrypt(key_for_block(crypt, block), block, out, out, old_len);
}

/*
 * Re-encrypt block b, whose ciphertext is old_len bytes long, at new_len bytes: the unit
 * length is part of XTS with ciphertext stealing, so a block must be rewritten whenever it
 * stops or starts being the file's short last block. A hole stays a hole.
 */
static int rewrite_block_length(struct file_crypt *crypt, uint64_t block, size_t old_len,
				size_t new_len)
{
	uint8_t plain[TDEFS_BLOCK_SIZE];
	size_t done;
	int ret;

	if (old_len == 0 || old_len == new_len)
		return 0;
	ret = pread_full(crypt->data_fd, plain, old_len, BACKING_OFFSET(BLOCK_OFFSET(block)), &done);
	if (ret < 0)
		return ret;
	if (done < old_len || buffer_is_zero(plain, old_len))
		return 0;
	ret = block_decrypt(key_for_block(crypt, block), block, plain, plain, old_len);
	if (ret == 0) {
		if (new_len > old_len)
			memset(plain + old_len, 0, new_len - old_len);
		ret = block_encrypt(key_for_block(crypt, block), block, plain, plain, new_len);
	}
	if (ret == 0)
		ret = pwrite_all(crypt->data_fd, plain, new_len, BACKING_OFFSET(BLOCK_OFFSET(block)));
	secure_wipe(plain, sizeof(plain));
	return ret;
}

/* Length of block b in a file of the given plaintext size (0 past the end). */
static size_t block_length(uint64_t block, uint64_t size)
{
	uint64_t start = BLOCK_OFFSET(block);

	return start >= size ? 0 : (size_t)min_u64(TDEFS_BLOCK_SIZE, size - start);
}

/*
 * Grow the file from old_size to new_size (the caller holds size_lock exclusively): the old
 * short last block is rewritten at its new length first, then the backing size moves.
 */
static int grow_locked(struct file_crypt *crypt, uint64_t old_size, uint64_t new_size,
		       bool set_backing_size)
{
	uint64_t tail = old_size >> TDEFS_BLOCK_SHIFT;
	int ret;

	if (old_size % TDEFS_BLOCK_SIZE != 0) {
		ret = rewrite_block_length(crypt, tail, block_length(tail, old_size),
					   block_length(tail, new_size));
		if (ret < 0)
			return ret;
	}
	if (set_backing_size && ftruncate(crypt->data_fd, BACKING_OFFSET(new_size)) < 0)
		return -errno;
	return 0;
}

/*
 * Put the size back after a growth that failed part-way (ENOSPC, EIO): the old last block, if
 * it was rewritten longer, goes back to its old length, then the backing size is restored.
 */
static void undo_grow(struct file_crypt *crypt, uint64_t old_size, uint64_t attempted_size)
{
	uint64_t tail = old_size >> TDEFS_BLOCK_SHIFT;
	int ret = 0;

	if (old_size % TDEFS_BLOCK_SIZE)
		ret = rewrite_block_length(crypt, tail, block_length(tail, attempted_size),
					   block_length(tail, old_size));
	if (ret == 0 && ftruncate(crypt->data_fd, BACKING_OFFSET(old_size)) < 0)
		ret = -errno;
	if (ret < 0)
		log_error("cannot restore the size of a backing file after a failed write: %s",
			  strerror(-ret));
}

/*
 * Write [offset, offset + size) into a file whose size goes from old_size to new_size. The
 * caller holds the locks. Whole blocks are encrypted straight from the request buffer into the
 * scratch buffer; the partial first and last blocks are read, decrypted, patched and
 * re-encrypted there; then one pwrite covers the whole span.
 */
static int write_span(struct file_crypt *crypt, int direct_fd, const uint8_t *data, size_t size,
		      uint64_t offset, uint64_t old_size, uint64_t new_size)
{
	uint64_t end = offset + size;
	uint64_t first = offset >> TDEFS_BLOCK_SHIFT, last = (end - 1) >> TDEFS_BLOCK_SHIFT;
	uint64_t span_start = BLOCK_OFFSET(first);
	size_t span_length = (size_t)(min_u64(BLOCK_OFFSET(last + 1), new_size) - span_start);
	uint8_t *buffer = scratch_get(span_length);
	int fd, ret = 0;

	if (!buffer)
		return -ENOMEM;
	for (uint64_t block = first; block <= last && ret == 0;) {
		uint64_t block_start = BLOCK_OFFSET(block);
		size_t new_len = block_length(block, new_size);
		uint8_t *out = buffer + (block_start - span_start);

		if (offset <= block_start && end >= block_start + new_len) {
			/* Whole blocks: one cipher call for the run of them. */
			uint64_t run_end = block;
			while (run_end + 1 <= last && BLOCK_OFFSET(run_end + 2) <= end &&
			       BLOCK_OFFSET(run_end + 2) <= new_size)
				run_end++;
			if (new_len == TDEFS_BLOCK_SIZE) {
				size_t run_length = (size_t)BLOCK_OFFSET(run_end - block + 1);
				ret = crypt_blocks(crypt, true, block, data + (block_start - offset),
						   out, run_length);
				block = run_end + 1;
			} else {
				ret = block_encrypt(key_for_block(crypt, block), block,
						    data + (block_start - offset), out, new_len);
				block++;
			}
			continue;
		}
		/* Partial block: read-modify-write in the scratch buffer. */
		uint64_t copy_start = offset > block_start ? offset : block_start;
		uint64_t copy_end = min_u64(end, block_start + new_len);
		uint8_t plain[TDEFS_BLOCK_SIZE];

		ret = read_plain_block(crypt, block, block_length(block, old_size), plain);
		if (ret == 0) {
			memcpy(plain + (copy_start - block_start), data + (copy_start - offset),
			       (size_t)(copy_end - copy_start));
			ret = block_encrypt(key_for_block(crypt, block), block, plain, out, new_len);
		}
		secure_wipe(plain, sizeof(plain));
		block++;
	}
	if (ret < 0)
		return ret;
	fd = (direct_fd >= 0 && span_length % TDEFS_BLOCK_SIZE == 0) ? direct_fd : crypt->data_fd;
	return pwrite_all(fd, buffer, span_length, BACKING_OFFSET(span_start));
}

int file_write(struct tdefs_inode *inode, int direct_fd, const uint8_t *data, size_t size,
	       uint64_t offset)
{
	struct file_crypt *crypt = inode->crypt;
	uint64_t end = offset + size, old_size;
	bool exclusive = false;
	int ret;

	if (size == 0)
		return 0;
	if (end < offset || end > (UINT64_C(1) << 52))
		return -EFBIG;
	if (!crypt->writable)
		return -EROFS;
	pthread_rwlock_rdlock(&crypt->size_lock);
	if (end > crypt->size) {
		pthread_rwlock_unlock(&crypt->size_lock);
		pthread_rwlock_wrlock(&crypt->size_lock);
		exclusive = true;
	}
	old_size = crypt->size;
	if (exclusive && end > old_size) {
		/*
		 * After grow_locked() the old last block is encrypted at its length in a file of
		 * size end, so the span is written as into a file that already has that size.
		 */
		ret = grow_locked(crypt, old_size, end, false);
		if (ret == 0)
			ret = write_span(crypt, direct_fd, data, size, offset, end, end);
		if (ret == 0)
			crypt->size = end;
		else
			undo_grow(crypt, old_size, end);
	} else {
		uint64_t first = offset >> TDEFS_BLOCK_SHIFT, last = (end - 1) >> TDEFS_BLOCK_SHIFT;

		if (!exclusive)
			file_lock_blocks(crypt, first, last, true);
		ret = write_span(crypt, direct_fd, data, size, offset, old_size, old_size);
		if (!exclusive)
			file_unlock_blocks(crypt, first, last);
	}
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

int file_read(struct tdefs_inode *inode, int direct_fd, uint64_t offset, size_t size,
	      uint8_t **data, size_t *length)
{
	struct file_crypt *crypt = inode->crypt;
	uint64_t end, first, last, span_start;
	size_t span_length, full_length, done;
	uint8_t *buffer;
	int fd, ret;

	pthread_rwlock_rdlock(&crypt->size_lock);
	end = min_u64(offset + size, crypt->size);
	if (offset >= end || size == 0) {
		*length = 0;
		ret = 0;
		goto out_unlock_size;
	}
	first = offset >> TDEFS_BLOCK_SHIFT;
	last = (end - 1) >> TDEFS_BLOCK_SHIFT;
	span_start = BLOCK_OFFSET(first);
	span_length = (size_t)(min_u64(BLOCK_OFFSET(last + 1), crypt->size) - span_start);
	buffer = scratch_get(span_length);
	if (!buffer) {
		ret = -ENOMEM;
		goto out_unlock_size;
	}
	file_lock_blocks(crypt, first, last, false);
	fd = (direct_fd >= 0 && span_length % TDEFS_BLOCK_SIZE == 0) ? direct_fd : crypt->data_fd;
	ret = pread_full(fd, buffer, span_length, BACKING_OFFSET(span_start), &done);
	if (ret < 0)
		goto out_unlock_blocks;
	memset(buffer + done, 0, span_length - done);
	full_length = span_length & ~(size_t)(TDEFS_BLOCK_SIZE - 1);
	if (full_length)
		ret = crypt_blocks(crypt, false, first, buffer, buffer, full_length);
	if (ret == 0 && span_length > full_length)
		ret = block_decrypt(key_for_block(crypt, last), last, buffer + full_length,
				    buffer + full_length,
				    span_length - full_length);
	if (ret == 0) {
		*data = buffer + (offset - span_start);
		*length = (size_t)(end - offset);
	}
out_unlock_blocks:
	file_unlock_blocks(crypt, first, last);
out_unlock_size:
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

static int shrink_locked(struct file_crypt *crypt, uint64_t old_size, uint64_t new_size)
{
	uint64_t tail = new_size >> TDEFS_BLOCK_SHIFT;
	int ret;

	/*
	 * The new last block gets shorter. Databases truncate to page multiples, where this does
	 * not arise; for other sizes docs/FORMAT.md notes that a crash before the next fsync may
	 * leave this one block unreadable, as a torn write would.
	 */
	if (new_size % TDEFS_BLOCK_SIZE != 0) {
		ret = rewrite_block_length(crypt, tail, block_length(tail, old_size),
					   block_length(tail, new_size));
		if (ret < 0)
			return ret;
	}
	if (ftruncate(crypt->data_fd, BACKING_OFFSET(new_size)) < 0)
		return -errno;
	return 0;
}

int file_truncate(struct tdefs_inode *inode, uint64_t new_size)
{
	struct file_crypt *crypt = inode->crypt;
	int ret = 0;

	if (new_size > (UINT64_C(1) << 52))
		return -EFBIG;
	if (!crypt->writable)
		return -EROFS;
	pthread_rwlock_wrlock(&crypt->size_lock);
	if (new_size > crypt->size)
		ret = grow_locked(crypt, crypt->size, new_size, true);
	else if (new_size < crypt->size)
		ret = shrink_locked(crypt, crypt->size, new_size);
	if (ret == 0)
		crypt->size = new_size;
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

/*
 * Make [offset, end) read as zeros inside a file of the given size: partial blocks at the
 * edges are rewritten with encrypted zeros, whole blocks are punched (or zeroed) on the backing
 * file, where an all-zero block is a hole by definition.
 */
static int zero_range_locked(struct file_crypt *crypt, uint64_t offset, uint64_t end,
			     uint64_t size, bool keep_allocated)
{
	/* Two blocks: a range with no whole block inside spans at most two partial ones. */
	static const uint8_t zeros[2 * TDEFS_BLOCK_SIZE];
	uint64_t whole_start, whole_end;
	int ret;

	end = min_u64(end, size);
	if (offset >= end)
		return 0;
	whole_start = (offset + TDEFS_BLOCK_SIZE - 1) & ~(uint64_t)(TDEFS_BLOCK_SIZE - 1);
	/* The last block counts as whole when the range reaches the end of the file. */
	whole_end = end == size ? end : end & ~(uint64_t)(TDEFS_BLOCK_SIZE - 1);
	if (whole_start >= whole_end)
		return write_span(crypt, -1, zeros, (size_t)(end - offset), offset, size, size);
	if (offset < whole_start) {
		ret = write_span(crypt, -1, zeros, (size_t)(whole_start - offset), offset, size, size);
		if (ret < 0)
			return ret;
	}
	if (whole_end < end) {
		ret = write_span(crypt, -1, zeros, (size_t)(end - whole_end), whole_end, size, size);
		if (ret < 0)
			return ret;
	}
	if (keep_allocated &&
	    fallocate(crypt->data_fd, FALLOC_FL_ZERO_RANGE, BACKING_OFFSET(whole_start),
		      (off_t)(whole_end - whole_start)) == 0)
		return 0;
	if (fallocate(crypt->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      BACKING_OFFSET(whole_start), (off_t)(whole_end - whole_start)) < 0)
		return -errno;
	return 0;
}

int file_fallocate(struct tdefs_inode *inode, int mode, uint64_t offset, uint64_t length)
{
	struct file_crypt *crypt = inode->crypt;
	uint64_t end = offset + length, size;
	bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
	int ret = 0;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep_size || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (length == 0 || end < offset || end > (UINT64_C(1) << 52))
		return -EINVAL;
	if (!crypt->writable)
		return -EROFS;
	pthread_rwlock_wrlock(&crypt->size_lock);
	size = crypt->size;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		if (!keep_size && end > size) {
			ret = grow_locked(crypt, size, end, true);
			if (ret < 0) {
				undo_grow(crypt, size, end);
				goto out_unlock;
			}
			crypt->size = end;
		}
		ret = zero_range_locked(crypt, offset, end, crypt->size,
					(mode & FALLOC_FL_ZERO_RANGE) != 0);
		goto out_unlock;
	}
	/* Preallocation: backing blocks are allocated, and unwritten extents read as holes. */
	if (!keep_size && end > size) {
		ret = grow_locked(crypt, size, end, false);
		if (ret < 0)
			goto out_unlock;
	}
	if (fallocate(crypt->data_fd, keep_size ? FALLOC_FL_KEEP_SIZE : 0, BACKING_OFFSET(offset),
		      (off_t)length) < 0) {
		ret = -errno;
		if (!keep_size && end > size)
			undo_grow(crypt, size, end);
		goto out_unlock;
	}
	if (!keep_size && end > size)
		crypt->size = end;
out_unlock:
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

int file_lseek(struct tdefs_inode *inode, uint64_t offset, int whence, uint64_t *result)
{
	struct file_crypt *crypt = inode->crypt;
	off_t found;
	int ret = 0;

	pthread_rwlock_rdlock(&crypt->size_lock);
	if (offset >= crypt->size) {
		ret = -ENXIO;
		goto out_unlock;
	}
	found = lseek(crypt->data_fd, BACKING_OFFSET(offset), whence);
	if (found < 0) {
		ret = -errno;
		goto out_unlock;
	}
	*result = min_u64((uint64_t)found - TDEFS_HEADER_SIZE, crypt->size);
out_unlock:
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

int file_fsync(struct tdefs_inode *inode, bool data_only)
{
	int fd = inode->crypt->data_fd;

	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	return 0;
}

int file_size(struct tdefs_inode *inode, uint64_t *size)
{
	pthread_rwlock_rdlock(&inode->crypt->size_lock);
	*size = inode->crypt->size;
	pthread_rwlock_unlock(&inode->crypt->size_lock);
	return 0;
}
