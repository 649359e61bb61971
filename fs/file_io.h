/*
 * The data path of one encrypted file, on a backing descriptor and its keys: struct file_crypt
 * and the read, write, truncate, fallocate and lseek functions that keep the backing file in the
 * format of docs/FORMAT.md. Nothing here knows about FUSE, inodes or the daemon's state, so
 * that tests/unit/test_file_io.c can drive it on a temporary file with a key it made itself.
 * Loading the keys from a header and sharing the state between opens is fs/file_keys.c's job;
 * the lock order is written in fs/daemon.h ("Lock order").
 */
#ifndef TDEFS_FILE_IO_H
#define TDEFS_FILE_IO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/format.h"

/* TDEFS_MAX_FILE_SIZE (fs/format.h) bounds every size and offset here. */

/*
 * Stripes of block locks per file: a request locks the stripes of the blocks it touches. 32
 * keeps a large request's lock count (stripes plus the size lock) under the 64 that
 * ThreadSanitizer's deadlock detector can follow.
 */
#define BLOCK_LOCK_STRIPES 32

/*
 * Encryption state of a regular file, present while at least one open (or an internal user
 * such as a truncate without an open file) holds it. Loaded from the header once per file and
 * shared by all opens and hard links, since it belongs to the backing inode.
 */
struct file_crypt {
	int data_fd;            /* backing file, O_RDWR (O_RDONLY on a read-only backing) */
	bool writable;
	struct xts_key *key;    /* the DEK, expanded; wiped by xts_key_free */
	/*
	 * During a data rekey: the new DEK, used for blocks below the watermark. Both are set
	 * under the block locks of the chunk that moves them (fs/data_rekey.c) and read with
	 * atomic loads; key becomes new_key under an exclusive size_lock when the rekey ends.
	 */
	struct xts_key *new_key;
	uint64_t watermark;
	/*
	 * tderekey close --force wiped key and new_key (set under an exclusive size_lock): every
	 * request of an encrypted file then fails with EIO without reading or writing a block.
	 */
	bool keys_wiped;
	/* The DEK is in the key cache (fs/key_cache.h) under this backing device and inode. */
	bool cache_pinned;
	uint64_t keystore_epoch; /* fs/keystore_close.c: when the DEK was unsealed */
	dev_t cache_dev;
	ino_t cache_ino;
	struct file_header header;
	/*
	 * A plaintext file of an adopted directory (docs/FORMAT.md, "Adopted directories"):
	 * data_fd holds the bytes as they are, without a header, and key is NULL. It turns false
	 * once, under an exclusive size_lock, when the conversion swaps the encrypted copy in
	 * (fs/encrypt.c); it never turns true. While the conversion builds that copy, copy_key is
	 * its DEK and copy_fd the copy, and every block below copy_watermark is kept in the copy
	 * too, encrypted, by each request that changes it, under the same locks; the original
	 * stays complete, so a crash loses only the copy. A request that cannot update the copy
	 * (ENOSPC) sets copy_error and the conversion of this file starts again later.
	 */
	bool plaintext;
	struct xts_key *copy_key; /* NULL: no conversion of this file runs */
	int copy_fd;
	uint64_t copy_watermark;
	int copy_error;
	/*
	 * A plaintext file's O_DIRECT descriptor of data_fd's object, shared by every O_DIRECT
	 * request on it (a per-open one would outlive the swap and name the old object); -1 when
	 * none. Set once while size_lock is held shared (compare-and-swap), taken away only under
	 * the exclusive size_lock by the swap, so a request that holds size_lock and finds the file
	 * plaintext uses the descriptor of the object it reads.
	 */
	int plain_direct_fd;
	/*
	 * size_lock: shared for I/O inside the current size, exclusive for anything that moves
	 * the size (extending writes, truncate, fallocate); the plaintext size lives under it.
	 */
	pthread_rwlock_t size_lock;
	uint64_t size; /* guarded by size_lock */
	/* Serialise read-modify-write of a block against other I/O on the same block. */
	pthread_rwlock_t block_locks[BLOCK_LOCK_STRIPES];
};

/* Where plaintext block `block` starts in the backing file. */
static inline off_t file_block_backing_offset(uint64_t block)
{
	return (off_t)((block << TDEFS_BLOCK_SHIFT) + TDEFS_HEADER_SIZE);
}

/* Length of block `block` in a file of the given plaintext size (0 past the end). */
static inline size_t file_block_length(uint64_t block, uint64_t size)
{
	uint64_t start = block << TDEFS_BLOCK_SHIFT;

	if (start >= size)
		return 0;
	return size - start < TDEFS_BLOCK_SIZE ? (size_t)(size - start) : TDEFS_BLOCK_SIZE;
}

/* scratch.c: this thread's 4096-aligned buffer of at least size bytes (NULL: no memory). */
uint8_t *scratch_get(size_t size);

/* block_locks.c: size_lock and the stripes, made and destroyed with the file_crypt. */
void file_crypt_locks_init(struct file_crypt *crypt);
void file_crypt_locks_destroy(struct file_crypt *crypt);
/* Block-lock stripes for blocks first..last, taken in ascending stripe order. */
void file_lock_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last, bool exclusive);
void file_unlock_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last);

/*
 * file_io.c. crypt has data_fd, writable, key (and new_key with watermark during a data rekey),
 * size and its locks set; each function takes the locks it needs. direct_fd: an O_DIRECT
 * descriptor of the same backing file for block-aligned spans, or -1; or, for an O_DIRECT
 * request on a plaintext file, FILE_IO_DIRECT_PLAINTEXT: its aligned spans go through
 * crypt->plain_direct_fd (and through data_fd once the file is encrypted).
 */
#define FILE_IO_DIRECT_PLAINTEXT (-2)
/* *data points into this thread's scratch buffer, valid until its next request. */
int file_io_read(struct file_crypt *crypt, int direct_fd, uint64_t offset, size_t size,
		 uint8_t **data, size_t *length);
int file_io_write(struct file_crypt *crypt, int direct_fd, const uint8_t *data, size_t size,
		  uint64_t offset);
int file_io_truncate(struct file_crypt *crypt, uint64_t new_size);
/* As file_io_truncate to a larger size, and nothing when the file is already that long. */
int file_io_extend(struct file_crypt *crypt, uint64_t new_size);
/* mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE (+ KEEP_SIZE), PUNCH_HOLE | KEEP_SIZE. */
int file_io_fallocate(struct file_crypt *crypt, int mode, uint64_t offset, uint64_t length);
/* SEEK_DATA / SEEK_HOLE in plaintext offsets. */
int file_io_lseek(struct file_crypt *crypt, uint64_t offset, int whence, uint64_t *result);
int file_io_fsync(struct file_crypt *crypt, bool data_only);
/*
 * The conversion of a plaintext file: encrypt blocks first..last of the original into the copy
 * (copy_fd at the encrypted layout, under copy_key, at the lengths of the current size); the
 * original's holes stay holes and are not read. The caller holds size_lock (shared or
 * exclusive) and, when shared, the blocks' locks exclusively. Returns the number of blocks it
 * read (holes excluded), or -errno.
 */
int file_io_copy_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last);
int file_io_size(struct file_crypt *crypt, uint64_t *size);

#endif
