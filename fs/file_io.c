/*
 * The data path of one encrypted file (fs/file_io.h): spans of whole and partial blocks, short
 * tails, growth past the end with holes, read-modify-write of partial blocks, truncate, hole
 * punching and preallocation, SEEK_DATA/SEEK_HOLE, and which DEK a block is under while a data
 * rekey moves its watermark through the file. It works on a struct file_crypt alone (a backing
 * descriptor, keys, locks and the plaintext size), with no FUSE and no daemon state.
 *
 * Locking (see struct file_crypt and the order in fs/daemon.h): every request takes size_lock,
 * shared when it stays inside the current size and exclusive when it moves the size. Under the
 * shared lock, requests also take the block-lock stripes of the blocks they touch (readers
 * shared, writers exclusive), so I/O to different blocks of one file runs in parallel while a
 * read-modify-write of a partial block never interleaves with another request on that block.
 * Nothing else is taken under them here.
 *
 * Crash safety: a size change first rewrites the old last block at its new length, then moves
 * the backing size, so that a crash in between leaves a longer file with zero padding rather
 * than a last block whose length no longer matches its ciphertext.
 *
 * A plaintext file of an adopted directory goes through the plain_ functions instead, which
 * also keep the encrypted copy of a conversion in step with the original.
 */
#include "fs/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define BLOCK_OFFSET(block) ((uint64_t)(block) << TDEFS_BLOCK_SHIFT)
#define BACKING_OFFSET(plain) ((off_t)((plain) + TDEFS_HEADER_SIZE))

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
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


/* --- plaintext files of an adopted directory -------------------------------------------- */

/*
 * A plaintext file is read and written as it stands, at the offsets the application gives: the
 * backing file is the data, with no header. The same locks as for an encrypted file make the
 * mirror into a conversion's copy (below) see each block whole. Every plain_ function returns
 * -EAGAIN, having taken no lock, when the file stopped being plaintext before its lock was
 * held: the caller then takes the encrypted path, which the swap made current.
 */
static bool plain_lock(struct file_crypt *crypt, bool exclusive)
{
	if (exclusive)
		pthread_rwlock_wrlock(&crypt->size_lock);
	else
		pthread_rwlock_rdlock(&crypt->size_lock);
	if (crypt->plaintext)
		return true;
	pthread_rwlock_unlock(&crypt->size_lock);
	return false;
}

static bool is_plaintext(const struct file_crypt *crypt)
{
	return __atomic_load_n(&crypt->plaintext, __ATOMIC_ACQUIRE);
}

/* Blocks first..last into the copy, one at a time: zeros punched, the rest encrypted. */
static int copy_data_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last)
{
	uint8_t block_data[TDEFS_BLOCK_SIZE];
	size_t done;
	int ret = 0;

	for (uint64_t block = first; block <= last && ret == 0; block++) {
		size_t len = file_block_length(block, crypt->size);
		off_t copy_offset = BACKING_OFFSET(BLOCK_OFFSET(block));

		if (len == 0)
			break;
		ret = pread_full(crypt->data_fd, block_data, len, (off_t)BLOCK_OFFSET(block), &done);
		if (ret < 0)
			break;
		memset(block_data + done, 0, len - done);
		/* Zeros stay a hole in the copy, where an all-zero block reads as zeros. */
		if (buffer_is_zero(block_data, len)) {
			if (fallocate(crypt->copy_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      copy_offset, (off_t)len) == 0)
				continue;
			ret = pwrite_all(crypt->copy_fd, block_data, len, copy_offset);
			continue;
		}
		ret = block_encrypt(crypt->copy_key, block, block_data, block_data, len);
		if (ret == 0)
			ret = pwrite_all(crypt->copy_fd, block_data, len, copy_offset);
	}
	secure_wipe(block_data, sizeof(block_data));
	return ret;
}

/*
 * The original's holes, as SEEK_DATA/SEEK_HOLE report them, are not read: the copy gets a
 * hole there too (punched, as the copy may hold older data where the watermark came back
 * down), which reads as zeros like any hole of an encrypted file. So a sparse file costs the
 * conversion its data, not its size, and its copy allocates what the original did.
 */
int file_io_copy_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last)
{
	uint64_t blocks = (crypt->size + TDEFS_BLOCK_SIZE - 1) >> TDEFS_BLOCK_SHIFT;
	uint64_t end = min_u64(last + 1, blocks), read_blocks = 0;
	int ret = 0;

	for (uint64_t block = first; block < end && ret == 0;) {
		off_t data = lseek(crypt->data_fd, (off_t)BLOCK_OFFSET(block), SEEK_DATA);
		uint64_t data_block = block, hole_block;
		off_t hole;

		if (data >= 0)
			data_block = min_u64((uint64_t)data >> TDEFS_BLOCK_SHIFT, end);
		else if (errno == ENXIO)
			data_block = end; /* nothing but hole up to the end of the file */
		if (data_block > block &&
		    fallocate(crypt->copy_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      BACKING_OFFSET(BLOCK_OFFSET(block)),
			      (off_t)BLOCK_OFFSET(data_block - block)) == 0) {
			block = data_block;
			continue;
		}
		/* Data (or a filesystem that cannot say): up to the next hole, block by block. */
		hole = data_block > block ? -1 : lseek(crypt->data_fd, (off_t)BLOCK_OFFSET(block),
							SEEK_HOLE);
		hole_block = hole < 0 ? end
				      : min_u64(((uint64_t)hole + TDEFS_BLOCK_SIZE - 1) >>
							TDEFS_BLOCK_SHIFT, end);
		if (hole_block <= block)
			hole_block = block + 1;
		ret = copy_data_blocks(crypt, block, hole_block - 1);
		read_blocks += hole_block - block;
		block = hole_block;
	}
	return ret < 0 ? ret : (int)min_u64(read_blocks, INT_MAX);
}

/*
 * After a change to blocks first..last of the original: the ones the copy already holds are
 * encrypted into it again. A failure is the conversion's, not the request's (the original,
 * which the request changed, is complete): it is noted for the conversion to start over.
 */
static void mirror_into_copy(struct file_crypt *crypt, uint64_t first, uint64_t last)
{
	uint64_t watermark = __atomic_load_n(&crypt->copy_watermark, __ATOMIC_ACQUIRE);
	int ret;

	if (!crypt->copy_key || __atomic_load_n(&crypt->copy_error, __ATOMIC_ACQUIRE) ||
	    first >= watermark)
		return;
	if (last >= watermark)
		last = watermark - 1;
	ret = file_io_copy_blocks(crypt, first, last);
	if (ret < 0)
		__atomic_store_n(&crypt->copy_error, ret, __ATOMIC_RELEASE);
}

/*
 * Under an exclusive size_lock, before a change that moves the size or spans whole ranges:
 * the copy no longer holds blocks from `block` on, whose lengths or contents change wholesale,
 * and the conversion copies them again.
 */
static void copy_watermark_lower(struct file_crypt *crypt, uint64_t block)
{
	if (crypt->copy_key && block < crypt->copy_watermark)
		__atomic_store_n(&crypt->copy_watermark, block, __ATOMIC_RELEASE);
}

/*
 * O_DIRECT for a plaintext file: whole aligned blocks go through its shared O_DIRECT
 * descriptor, from this thread's aligned scratch buffer (the request's buffer sits wherever
 * FUSE put it); the rest goes through the page cache, which the kernel keeps coherent with
 * the direct I/O of the same inode.
 */
static int plain_direct_fd(const struct file_crypt *crypt, int direct_fd, uint64_t offset,
			   size_t size)
{
	if (direct_fd != FILE_IO_DIRECT_PLAINTEXT || offset % TDEFS_BLOCK_SIZE != 0 ||
	    size % TDEFS_BLOCK_SIZE != 0)
		return -1;
	return __atomic_load_n(&crypt->plain_direct_fd, __ATOMIC_ACQUIRE);
}

static int plain_pwrite(struct file_crypt *crypt, int direct_fd, const uint8_t *data,
			size_t size, uint64_t offset)
{
	int fd = plain_direct_fd(crypt, direct_fd, offset, size);
	uint8_t *aligned;

	if (fd < 0)
		return pwrite_all(crypt->data_fd, data, size, (off_t)offset);
	aligned = scratch_get(size);
	if (!aligned)
		return -ENOMEM;
	memcpy(aligned, data, size);
	return pwrite_all(fd, aligned, size, (off_t)offset);
}

static int plain_write(struct file_crypt *crypt, int direct_fd, const uint8_t *data,
		       size_t size, uint64_t offset)
{
	uint64_t end = offset + size, first = offset >> TDEFS_BLOCK_SHIFT;
	uint64_t last = (end - 1) >> TDEFS_BLOCK_SHIFT, old_size;
	bool exclusive = false;
	int ret;

	if (!plain_lock(crypt, false))
		return -EAGAIN;
	if (end > crypt->size) {
		pthread_rwlock_unlock(&crypt->size_lock);
		if (!plain_lock(crypt, true))
			return -EAGAIN;
		exclusive = true;
	}
	old_size = crypt->size;
	if (exclusive && end > old_size)
		copy_watermark_lower(crypt, old_size >> TDEFS_BLOCK_SHIFT);
	if (!exclusive)
		file_lock_blocks(crypt, first, last, true);
	ret = plain_pwrite(crypt, direct_fd, data, size, offset);
	if (ret < 0 && exclusive && end > old_size && ftruncate(crypt->data_fd, (off_t)old_size) < 0)
		log_error("cannot restore the size of a plaintext file after a failed write: %s",
			  strerror(errno));
	if (ret == 0 && end > crypt->size)
		crypt->size = end;
	if (ret == 0)
		mirror_into_copy(crypt, first, last);
	if (!exclusive)
		file_unlock_blocks(crypt, first, last);
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

static int plain_read(struct file_crypt *crypt, int direct_fd, uint64_t offset, size_t size,
		      uint8_t **data, size_t *length)
{
	uint64_t end, first, last, span_start;
	size_t span_length, done;
	uint8_t *buffer;
	int fd, ret = 0;

	if (!plain_lock(crypt, false))
		return -EAGAIN;
	end = min_u64(offset + size, crypt->size);
	*length = 0;
	if (offset >= end || size == 0)
		goto out_unlock_size;
	/* The same whole-block span as an encrypted read: one read per request, page aligned. */
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
	fd = plain_direct_fd(crypt, direct_fd, span_start, span_length);
	ret = pread_full(fd >= 0 ? fd : crypt->data_fd, buffer, span_length, (off_t)span_start,
			 &done);
	if (ret == 0) {
		memset(buffer + done, 0, span_length - done);
		*data = buffer + (offset - span_start);
		*length = (size_t)(end - offset);
	}
	file_unlock_blocks(crypt, first, last);
out_unlock_size:
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

static int plain_truncate(struct file_crypt *crypt, uint64_t new_size)
{
	int ret = 0;

	if (!plain_lock(crypt, true))
		return -EAGAIN;
	copy_watermark_lower(crypt, min_u64(new_size, crypt->size) >> TDEFS_BLOCK_SHIFT);
	if (ftruncate(crypt->data_fd, (off_t)new_size) < 0)
		ret = -errno;
	else
		crypt->size = new_size;
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

static int plain_fallocate(struct file_crypt *crypt, int mode, uint64_t offset, uint64_t length)
{
	struct stat st;
	int ret = 0;

	if (!plain_lock(crypt, true))
		return -EAGAIN;
	copy_watermark_lower(crypt, min_u64(offset, crypt->size) >> TDEFS_BLOCK_SHIFT);
	if (fallocate(crypt->data_fd, mode, (off_t)offset, (off_t)length) < 0)
		ret = -errno;
	else if (fstat(crypt->data_fd, &st) < 0)
		ret = -errno;
	else
		crypt->size = (uint64_t)st.st_size;
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

static int plain_lseek(struct file_crypt *crypt, uint64_t offset, int whence, uint64_t *result)
{
	off_t found;
	int ret = 0;

	if (!plain_lock(crypt, false))
		return -EAGAIN;
	if (offset >= crypt->size) {
		ret = -ENXIO;
	} else {
		found = lseek(crypt->data_fd, (off_t)offset, whence);
		if (found < 0)
			ret = -errno;
		else
			*result = min_u64((uint64_t)found, crypt->size);
	}
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
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
		ret = rewrite_block_length(crypt, tail, file_block_length(tail, old_size),
					   file_block_length(tail, new_size));
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
		ret = rewrite_block_length(crypt, tail, file_block_length(tail, attempted_size),
					   file_block_length(tail, old_size));
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
		size_t new_len = file_block_length(block, new_size);
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

		ret = read_plain_block(crypt, block, file_block_length(block, old_size), plain);
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

int file_io_write(struct file_crypt *crypt, int direct_fd, const uint8_t *data, size_t size,
		  uint64_t offset)
{
	uint64_t end = offset + size, old_size;
	bool exclusive = false;
	int ret;

	if (size == 0)
		return 0;
	if (end < offset || end > TDEFS_MAX_FILE_SIZE)
		return -EFBIG;
	if (!crypt->writable)
		return -EROFS;
	if (is_plaintext(crypt)) {
		ret = plain_write(crypt, direct_fd, data, size, offset);
		if (ret != -EAGAIN)
			return ret;
	}
	pthread_rwlock_rdlock(&crypt->size_lock);
	if (end > crypt->size) {
		pthread_rwlock_unlock(&crypt->size_lock);
		pthread_rwlock_wrlock(&crypt->size_lock);
		exclusive = true;
	}
	if (crypt->keys_wiped) {
		pthread_rwlock_unlock(&crypt->size_lock);
		return -EIO;
	}
	old_size = crypt->size;
	if (exclusive && end > old_size) {
		/*
		 * A short old last block inside the span is read at its old length and written at
		 * its new one by write_span's own read-modify-write: rewriting it first as well
		 * would cost an append a second read, decryption and write of the same block.
		 * Either way the block and the size reach the backing file with no fsync between
		 * them, so the crash ordering is the same. A last block before the span (a hole
		 * between) is rewritten by grow_locked() first, and the span is then written as
		 * into a file that already has the size end.
		 */
		bool tail_in_span = old_size % TDEFS_BLOCK_SIZE == 0 ||
				    (old_size >> TDEFS_BLOCK_SHIFT) >= (offset >> TDEFS_BLOCK_SHIFT);

		ret = tail_in_span ? 0 : grow_locked(crypt, old_size, end, false);
		if (ret == 0)
			ret = write_span(crypt, direct_fd, data, size, offset,
					 tail_in_span ? old_size : end, end);
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

int file_io_read(struct file_crypt *crypt, int direct_fd, uint64_t offset, size_t size,
		 uint8_t **data, size_t *length)
{
	uint64_t end, first, last, span_start;
	size_t span_length, full_length, done;
	uint8_t *buffer;
	int fd, ret;

	if (is_plaintext(crypt)) {
		ret = plain_read(crypt, direct_fd, offset, size, data, length);
		if (ret != -EAGAIN)
			return ret;
	}
	pthread_rwlock_rdlock(&crypt->size_lock);
	if (crypt->keys_wiped) {
		ret = -EIO;
		goto out_unlock_size;
	}
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
		ret = rewrite_block_length(crypt, tail, file_block_length(tail, old_size),
					   file_block_length(tail, new_size));
		if (ret < 0)
			return ret;
	}
	if (ftruncate(crypt->data_fd, BACKING_OFFSET(new_size)) < 0)
		return -errno;
	return 0;
}

int file_io_truncate(struct file_crypt *crypt, uint64_t new_size)
{
	int ret = 0;

	if (new_size > TDEFS_MAX_FILE_SIZE)
		return -EFBIG;
	if (!crypt->writable)
		return -EROFS;
	if (is_plaintext(crypt)) {
		ret = plain_truncate(crypt, new_size);
		if (ret != -EAGAIN)
			return ret;
		ret = 0;
	}
	pthread_rwlock_wrlock(&crypt->size_lock);
	if (crypt->keys_wiped)
		ret = -EIO;
	else if (new_size > crypt->size)
		ret = grow_locked(crypt, crypt->size, new_size, true);
	else if (new_size < crypt->size)
		ret = shrink_locked(crypt, crypt->size, new_size);
	if (ret == 0)
		crypt->size = new_size;
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}

int file_io_extend(struct file_crypt *crypt, uint64_t new_size)
{
	int ret = 0;

	if (new_size > TDEFS_MAX_FILE_SIZE)
		return -EFBIG;
	if (!crypt->writable)
		return -EROFS;
	pthread_rwlock_wrlock(&crypt->size_lock);
	if (crypt->keys_wiped) {
		ret = -EIO;
	} else if (new_size > crypt->size) {
		ret = grow_locked(crypt, crypt->size, new_size, true);
		if (ret == 0)
			crypt->size = new_size;
		else
			undo_grow(crypt, crypt->size, new_size);
	}
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

int file_io_fallocate(struct file_crypt *crypt, int mode, uint64_t offset, uint64_t length)
{
	uint64_t end = offset + length, size;
	bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
	int ret = 0;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep_size || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (length == 0 || end < offset || end > TDEFS_MAX_FILE_SIZE)
		return -EINVAL;
	if (!crypt->writable)
		return -EROFS;
	if (is_plaintext(crypt)) {
		ret = plain_fallocate(crypt, mode, offset, length);
		if (ret != -EAGAIN)
			return ret;
		ret = 0;
	}
	pthread_rwlock_wrlock(&crypt->size_lock);
	if (crypt->keys_wiped) {
		ret = -EIO;
		goto out_unlock;
	}
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

int file_io_lseek(struct file_crypt *crypt, uint64_t offset, int whence, uint64_t *result)
{
	off_t found;
	int ret = 0;

	if (is_plaintext(crypt)) {
		ret = plain_lseek(crypt, offset, whence, result);
		if (ret != -EAGAIN)
			return ret;
		ret = 0;
	}
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

int file_io_fsync(struct file_crypt *crypt, bool data_only)
{
	int fd, ret = 0;

	/*
	 * A duplicate taken under the size lock: the conversion of a plaintext file replaces
	 * data_fd under it (the swap syncs the copy first), and a sync must never reach a
	 * descriptor number that was closed and reused meanwhile.
	 */
	pthread_rwlock_rdlock(&crypt->size_lock);
	fd = fcntl(crypt->data_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		if ((data_only ? fdatasync(crypt->data_fd) : fsync(crypt->data_fd)) < 0)
			ret = -errno;
		pthread_rwlock_unlock(&crypt->size_lock);
		return ret;
	}
	pthread_rwlock_unlock(&crypt->size_lock);
	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int file_io_size(struct file_crypt *crypt, uint64_t *size)
{
	pthread_rwlock_rdlock(&crypt->size_lock);
	*size = crypt->size;
	pthread_rwlock_unlock(&crypt->size_lock);
	return 0;
}
