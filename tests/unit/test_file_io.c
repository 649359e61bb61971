/*
 * Unit tests of the data path (fs/file_io.c) without FUSE: a struct file_crypt on a temporary
 * backing file (4096 bytes of header space, then data) with DEKs the test chose, driven by
 * file_io_write/read/truncate/fallocate/lseek. Every step is mirrored into a plain reference
 * buffer, and the whole file is read back and compared against it. Independently of the code
 * under test, the backing file is then decrypted block by block with OpenSSL's EVP AES-256-XTS
 * and the short-tail rule of docs/FORMAT.md, so that a bug that encrypts and decrypts wrongly
 * in the same way (a wrong tweak, a block left at its old length, the wrong key on one side of
 * a rekey watermark) still fails. The cases are the ones the mounted exerciser
 * (tests/mounted/exerciser.c) aims at: block boundaries +-1, short tails of 1..15 bytes, spans
 * across blocks, growth leaving holes, shrink then regrow, partial-block read-modify-write from
 * several threads, hole punching and zero ranges, and a data rekey's watermark mid-file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fs/file_io.h"

#define BLOCK TDEFS_BLOCK_SIZE
/* The reference buffer: every test keeps its file below this size. */
#define CAPACITY (64 * BLOCK)

struct fixture {
	char path[256];
	struct file_crypt crypt;
	uint8_t old_dek[DEK_SIZE], new_dek[DEK_SIZE];
	uint8_t *ref;       /* plaintext as it must read; zero beyond ref_size */
	uint64_t ref_size;
	uint64_t rng;
};

/* Deterministic bytes, so that a failure reproduces. */
static uint64_t next_random(struct fixture *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return f->rng;
}

static void fill_random(struct fixture *f, uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(next_random(f) >> 24) | 1; /* never an all-zero run */
}

static int setup(void **state)
{
	static const uint8_t header_space[TDEFS_HEADER_SIZE];
	struct fixture *f = calloc(1, sizeof(*f));
	const char *dir = getenv("TMPDIR");
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "%s/tdefs-file-io-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, header_space, sizeof(header_space), 0),
			 (ssize_t)sizeof(header_space));
	/* XTS refuses a key whose two halves are equal: two different patterns per DEK. */
	for (size_t i = 0; i < DEK_SIZE; i++) {
		f->old_dek[i] = (uint8_t)(i * 7 + 1);
		f->new_dek[i] = (uint8_t)(i * 13 + 5);
	}
	f->crypt.data_fd = fd;
	f->crypt.writable = true;
	assert_int_equal(xts_key_new(f->old_dek, &f->crypt.key), 0);
	file_crypt_locks_init(&f->crypt);
	f->ref = calloc(1, CAPACITY);
	assert_non_null(f->ref);
	f->rng = 0x9e3779b97f4a7c15ull;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	xts_key_free(f->crypt.key);
	xts_key_free(f->crypt.new_key);
	file_crypt_locks_destroy(&f->crypt);
	close(f->crypt.data_fd);
	unlink(f->path);
	free(f->ref);
	free(f);
	return 0;
}

/* --- the model ------------------------------------------------------------------------- */

static void do_write(struct fixture *f, const uint8_t *data, size_t len, uint64_t offset)
{
	assert_true(offset + len <= CAPACITY);
	assert_int_equal(file_io_write(&f->crypt, -1, data, len, offset), 0);
	memcpy(f->ref + offset, data, len);
	if (offset + len > f->ref_size)
		f->ref_size = offset + len;
}

static void write_random(struct fixture *f, uint64_t offset, size_t len)
{
	uint8_t *data = malloc(len ? len : 1);

	assert_non_null(data);
	fill_random(f, data, len);
	do_write(f, data, len, offset);
	free(data);
}

static void do_truncate(struct fixture *f, uint64_t size)
{
	assert_true(size <= CAPACITY);
	assert_int_equal(file_io_truncate(&f->crypt, size), 0);
	if (size < f->ref_size)
		memset(f->ref + size, 0, f->ref_size - size);
	f->ref_size = size;
}

static void do_fallocate(struct fixture *f, int mode, uint64_t offset, uint64_t length)
{
	uint64_t end = offset + length;

	assert_true(end <= CAPACITY);
	assert_int_equal(file_io_fallocate(&f->crypt, mode, offset, length), 0);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		uint64_t zero_end = end < f->ref_size ? end : f->ref_size;

		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->ref_size)
			zero_end = end;
		if (offset < zero_end)
			memset(f->ref + offset, 0, zero_end - offset);
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->ref_size)
		f->ref_size = end;
}

/* The file through the code under test: size, then every byte, in uneven pieces. */
static void check_read(struct fixture *f)
{
	uint64_t size, offset = 0;
	size_t piece = 1000;

	assert_int_equal(file_io_size(&f->crypt, &size), 0);
	assert_int_equal(size, f->ref_size);
	while (offset < size) {
		uint8_t *data;
		size_t length;

		assert_int_equal(file_io_read(&f->crypt, -1, offset, piece, &data, &length), 0);
		assert_int_equal(length, size - offset < piece ? size - offset : piece);
		assert_memory_equal(data, f->ref + offset, length);
		offset += length;
		piece = piece * 3 % 20011 + 1; /* 1 byte to ~5 blocks */
	}
	/* A read at or past the end returns nothing. */
	{
		uint8_t *data;
		size_t length = 1;

		assert_int_equal(file_io_read(&f->crypt, -1, size, 100, &data, &length), 0);
		assert_int_equal(length, 0);
	}
}

/* --- an independent decryption of the backing file ------------------------------------- */

static void evp_xts(const uint8_t dek[DEK_SIZE], uint64_t unit, int encrypt, const uint8_t *in,
		    uint8_t *out, size_t len)
{
	uint8_t iv[16] = { 0 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int out_len = 0, final_len = 0;

	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(unit >> (8 * i));
	assert_non_null(ctx);
	assert_int_equal(EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, dek, iv, encrypt), 1);
	assert_int_equal(EVP_CipherUpdate(ctx, out, &out_len, in, (int)len), 1);
	assert_int_equal(EVP_CipherFinal_ex(ctx, out + out_len, &final_len), 1);
	assert_int_equal((size_t)(out_len + final_len), len);
	EVP_CIPHER_CTX_free(ctx);
}

static bool all_zero(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (data[i])
			return false;
	return true;
}

/* docs/FORMAT.md: zeros are a hole; 1..15 bytes use the bit-63 keystream; else plain XTS. */
static void reference_decrypt(const uint8_t dek[DEK_SIZE], uint64_t block, const uint8_t *in,
			      uint8_t *out, size_t len)
{
	if (all_zero(in, len)) {
		memset(out, 0, len);
	} else if (len < 16) {
		static const uint8_t zeros[16];
		uint8_t keystream[16];

		evp_xts(dek, block | (UINT64_C(1) << 63), 1, zeros, keystream, sizeof(keystream));
		for (size_t i = 0; i < len; i++)
			out[i] = memcmp(in, keystream, len) == 0 ? in[i] : in[i] ^ keystream[i];
	} else {
		evp_xts(dek, block, 0, in, out, len);
	}
}

/* The backing file: header space, then exactly ref_size bytes that decrypt to the reference. */
static void check_backing(struct fixture *f)
{
	uint8_t cipher[BLOCK], plain[BLOCK];
	bool rekey = f->crypt.new_key != NULL;
	struct stat st;

	assert_int_equal(fstat(f->crypt.data_fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, TDEFS_HEADER_SIZE + f->ref_size);
	for (uint64_t block = 0; block * BLOCK < f->ref_size; block++) {
		size_t len = file_block_length(block, f->ref_size);
		const uint8_t *dek = rekey && block < f->crypt.watermark ? f->new_dek : f->old_dek;

		assert_int_equal(pread(f->crypt.data_fd, cipher, len, file_block_backing_offset(block)),
				 (ssize_t)len);
		reference_decrypt(dek, block, cipher, plain, len);
		if (memcmp(plain, f->ref + block * BLOCK, len) != 0)
			fail_msg("block %llu (%zu bytes, %s key) does not decrypt to the reference",
				 (unsigned long long)block, len, dek == f->new_dek ? "new" : "old");
	}
}

static void check(struct fixture *f)
{
	check_read(f);
	check_backing(f);
}

/* --- the cases ------------------------------------------------------------------------- */

static void test_unaligned_writes(void **state)
{
	struct fixture *f = *state;

	write_random(f, 0, 3 * BLOCK);
	check(f);
	/* Across one boundary by one byte each side, and the last 16 bytes of a block. */
	write_random(f, BLOCK - 1, 2);
	write_random(f, 2 * BLOCK - 16, 16);
	check(f);
	/* A span from inside block 0 to inside block 3, which also grows the file. */
	write_random(f, 100, 3 * BLOCK + 200);
	check(f);
	/* A write inside one block, touching neither edge. */
	write_random(f, BLOCK + 1000, 7);
	check(f);
	/* Many whole blocks in one call, unaligned start. */
	write_random(f, 5 * BLOCK + 1, 9 * BLOCK);
	check(f);
}

static void test_short_tails(void **state)
{
	struct fixture *f = *state;

	for (size_t n = 1; n <= 17; n++) {
		do_truncate(f, 0);
		check(f);
		/* A first block of n bytes, then a second block of n bytes. */
		write_random(f, 0, n);
		check(f);
		write_random(f, n, BLOCK - n);
		write_random(f, BLOCK, n);
		check(f);
		/* The tail grows byte by byte past 16 (XTS's minimum), then to a whole block. */
		for (size_t len = n; len < 20; len++)
			write_random(f, BLOCK + len, 1);
		check(f);
		write_random(f, 2 * BLOCK - 1, 1);
		check(f);
		/* Back into a short tail by truncation, and an all-zero tail of n bytes. */
		do_truncate(f, BLOCK + n);
		check(f);
		uint8_t zeros[17] = { 0 };
		do_write(f, zeros, n, BLOCK);
		check(f);
	}
}

static void test_growth_leaves_holes(void **state)
{
	struct fixture *f = *state;
	uint8_t cipher[BLOCK];
	uint64_t found;

	/* The first write lands in block 5: blocks 0..4 are a hole that reads as zeros. */
	write_random(f, 5 * BLOCK + 100, 300);
	check(f);
	for (uint64_t block = 0; block < 5; block++) {
		assert_int_equal(pread(f->crypt.data_fd, cipher, BLOCK, file_block_backing_offset(block)),
				 BLOCK);
		assert_true(all_zero(cipher, BLOCK));
	}
	/* SEEK_DATA finds nothing before the data; SEEK_HOLE finds no hole inside it. */
	assert_int_equal(file_io_lseek(&f->crypt, 0, SEEK_DATA, &found), 0);
	assert_true(found <= 5 * BLOCK);
	assert_true(all_zero(f->ref, (size_t)found));
	assert_int_equal(file_io_lseek(&f->crypt, 5 * BLOCK + 200, SEEK_HOLE, &found), 0);
	assert_int_equal(found, f->ref_size);
	assert_int_equal(file_io_lseek(&f->crypt, f->ref_size, SEEK_DATA, &found), -ENXIO);
	/* Growth from a short tail by truncate, by a write far past the end, by fallocate. */
	do_truncate(f, 12 * BLOCK + 5);
	check(f);
	write_random(f, 20 * BLOCK + 3, 10);
	check(f);
	do_fallocate(f, 0, 24 * BLOCK + 7, 2 * BLOCK);
	check(f);
	/* Preallocation past the end with KEEP_SIZE does not move the size. */
	do_fallocate(f, FALLOC_FL_KEEP_SIZE, f->ref_size, 4 * BLOCK);
	check(f);
}

static void test_shrink_then_regrow(void **state)
{
	struct fixture *f = *state;

	write_random(f, 0, 10 * BLOCK + 123);
	check(f);
	/* Into a block, then back out: the bytes that were cut must read as zeros. */
	do_truncate(f, 3 * BLOCK + 77);
	check(f);
	do_truncate(f, 9 * BLOCK + 5);
	check(f);
	/* To a short tail and regrow by a write beyond it. */
	do_truncate(f, 2 * BLOCK + 3);
	check(f);
	write_random(f, 4 * BLOCK, 50);
	check(f);
	/* To a block multiple, and to nothing. */
	do_truncate(f, 2 * BLOCK);
	check(f);
	do_truncate(f, 0);
	check(f);
	do_truncate(f, BLOCK + 1);
	check(f);
}

static void test_read_modify_write(void **state)
{
	struct fixture *f = *state;

	write_random(f, 0, 4 * BLOCK);
	/* Partial writes at each edge and the middle of a block keep the rest of it. */
	write_random(f, BLOCK + 50, 100);
	write_random(f, 2 * BLOCK, 1);
	write_random(f, 3 * BLOCK - 1, 1);
	write_random(f, 3 * BLOCK + 4000, 96);
	check(f);
	/* A partial write into the short last block, and one that extends it. */
	do_truncate(f, 4 * BLOCK + 30);
	write_random(f, 4 * BLOCK + 10, 5);
	check(f);
	write_random(f, 4 * BLOCK + 25, 1000);
	check(f);
}

static void test_punch_and_zero(void **state)
{
	struct fixture *f = *state;
	uint8_t cipher[BLOCK];

	write_random(f, 0, 12 * BLOCK + 500);
	/* Partial edges and whole blocks between: the whole ones become backing holes. */
	do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BLOCK + 100, 3 * BLOCK);
	check(f);
	assert_int_equal(pread(f->crypt.data_fd, cipher, BLOCK, file_block_backing_offset(2)), BLOCK);
	assert_true(all_zero(cipher, BLOCK));
	/* Inside one block, across one boundary, to the end of the file (the short tail). */
	do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 6 * BLOCK + 10, 20);
	do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 7 * BLOCK - 8, 16);
	do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 12 * BLOCK + 100, 4 * BLOCK);
	check(f);
	/* ZERO_RANGE inside the file, and past its end without KEEP_SIZE (the file grows). */
	do_fallocate(f, FALLOC_FL_ZERO_RANGE, 8 * BLOCK + 1, 2 * BLOCK);
	check(f);
	do_fallocate(f, FALLOC_FL_ZERO_RANGE, f->ref_size - 3, 3 * BLOCK + 9);
	check(f);
	/* Punched from inside the file to its end: the short tail becomes a backing hole too. */
	do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 11 * BLOCK + 9,
		     f->ref_size - (11 * BLOCK + 9));
	check(f);
	assert_true(f->ref_size % BLOCK >= 16);
	assert_int_equal(pread(f->crypt.data_fd, cipher, f->ref_size % BLOCK,
			       file_block_backing_offset(f->ref_size / BLOCK)),
			 (ssize_t)(f->ref_size % BLOCK));
	assert_true(all_zero(cipher, f->ref_size % BLOCK));
	/* The holes can be written again. */
	write_random(f, 2 * BLOCK + 5, 10);
	check(f);
}

static void test_rekey_watermark(void **state)
{
	struct fixture *f = *state;
	uint8_t buffer[BLOCK];

	write_random(f, 0, 10 * BLOCK + 700);
	do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * BLOCK, BLOCK);
	check(f);
	/*
	 * What a data rekey leaves between chunks: blocks below the watermark re-encrypted under
	 * the new DEK (holes stay holes), the rest under the old one. Done here with the format
	 * functions, as fs/data_rekey.c does; check_backing() then verifies it with EVP.
	 */
	assert_int_equal(xts_key_new(f->new_dek, &f->crypt.new_key), 0);
	for (uint64_t block = 0; block < 5; block++) {
		off_t offset = file_block_backing_offset(block);

		assert_int_equal(pread(f->crypt.data_fd, buffer, BLOCK, offset), BLOCK);
		if (all_zero(buffer, BLOCK))
			continue;
		assert_int_equal(block_decrypt(f->crypt.key, block, buffer, buffer, BLOCK), 0);
		assert_int_equal(block_encrypt(f->crypt.new_key, block, buffer, buffer, BLOCK), 0);
		assert_int_equal(pwrite(f->crypt.data_fd, buffer, BLOCK, offset), BLOCK);
	}
	f->crypt.watermark = 5;
	check(f);
	/* A write across the watermark, partial writes on both sides of it, one into the hole. */
	write_random(f, 3 * BLOCK + 10, 4 * BLOCK);
	write_random(f, 4 * BLOCK + 4090, 12);
	write_random(f, 2 * BLOCK + 7, 3);
	check(f);
	/* The short tail above the watermark: rewritten at new lengths under the old key. */
	do_truncate(f, 10 * BLOCK + 5);
	check(f);
	write_random(f, 11 * BLOCK, 20);
	check(f);
	/* Shrink below the watermark: the new last block is a short tail under the new key. */
	do_truncate(f, 4 * BLOCK + 9);
	check(f);
	do_truncate(f, 6 * BLOCK + 100);
	check(f);
}

/*
 * Four threads write interleaved 100-byte pieces over the same blocks, each piece once: every
 * write is a read-modify-write of a block that the other threads are patching too, so a lost
 * update (block locks not serialising them) leaves a piece of the old data or of a neighbour.
 */
#define WRITERS 4
#define PIECE 100
#define SHARED_BLOCKS 32

struct piece_writer {
	struct file_crypt *crypt;
	unsigned index;
	int result;
};

static uint8_t piece_value(uint64_t piece)
{
	return (uint8_t)(0x11 * (piece % WRITERS + 1) + piece / WRITERS);
}

static void *piece_writer_main(void *arg)
{
	struct piece_writer *w = arg;
	uint8_t data[PIECE];

	w->result = 0;
	for (uint64_t piece = w->index; piece * PIECE < SHARED_BLOCKS * BLOCK && w->result == 0;
	     piece += WRITERS) {
		uint64_t at = piece * PIECE, left = SHARED_BLOCKS * BLOCK - at;

		memset(data, piece_value(piece), sizeof(data));
		w->result = file_io_write(w->crypt, -1, data, left < PIECE ? left : PIECE, at);
	}
	return NULL;
}

static void concurrent_round(struct fixture *f)
{
	struct piece_writer writers[WRITERS];
	pthread_t threads[WRITERS];

	write_random(f, 0, SHARED_BLOCKS * BLOCK);
	for (unsigned i = 0; i < WRITERS; i++) {
		writers[i] = (struct piece_writer){ .crypt = &f->crypt, .index = i };
		assert_int_equal(pthread_create(&threads[i], NULL, piece_writer_main, &writers[i]), 0);
	}
	for (unsigned i = 0; i < WRITERS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(writers[i].result, 0);
	}
	for (uint64_t piece = 0; piece * PIECE < SHARED_BLOCKS * BLOCK; piece++) {
		uint64_t at = piece * PIECE, left = SHARED_BLOCKS * BLOCK - at;

		memset(f->ref + at, piece_value(piece), left < PIECE ? left : PIECE);
	}
	check(f);
}

static void test_concurrent_partial_blocks(void **state)
{
	struct fixture *f = *state;

	/* Rounds over fresh data: one round misses a race now and then, so a few are run. */
	for (int round = 0; round < 5; round++)
		concurrent_round(f);
}

/* The exerciser's mix in small: seeded random operations biased to block edges. */
static uint64_t biased_offset(struct fixture *f, uint64_t limit)
{
	uint64_t block = next_random(f) % (limit / BLOCK + 1);
	static const int64_t near[] = { 0, 1, -1, -16, -15, 15, 16, 17 };
	int64_t at = (int64_t)(block * BLOCK);

	if (next_random(f) % 4 == 0)
		at += (int64_t)(next_random(f) % BLOCK);
	else
		at += near[next_random(f) % (sizeof(near) / sizeof(near[0]))];
	if (at < 0)
		at = 0;
	return (uint64_t)at > limit ? limit : (uint64_t)at;
}

static void test_random_model(void **state)
{
	struct fixture *f = *state;
	uint64_t limit = 16 * BLOCK;

	for (int step = 0; step < 300; step++) {
		uint64_t offset = biased_offset(f, limit), length;

		switch (next_random(f) % 6) {
		case 0:
		case 1:
			length = 1 + next_random(f) % (next_random(f) % 2 ? 40 : 3 * BLOCK);
			if (offset >= limit)
				offset = limit - 1;
			if (offset + length > limit)
				length = limit - offset;
			write_random(f, offset, (size_t)length);
			break;
		case 2:
			do_truncate(f, offset);
			break;
		case 3:
			length = 1 + next_random(f) % (2 * BLOCK);
			do_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
			break;
		case 4:
			length = 1 + next_random(f) % (2 * BLOCK);
			do_fallocate(f, FALLOC_FL_ZERO_RANGE, offset, length);
			break;
		default:
			check_read(f);
			break;
		}
		if (step % 20 == 0)
			check(f);
	}
	check(f);
}

static void test_limits_and_errors(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 1;
	uint64_t found;

	assert_int_equal(file_io_write(&f->crypt, -1, &byte, 1, TDEFS_MAX_FILE_SIZE), -EFBIG);
	assert_int_equal(file_io_write(&f->crypt, -1, &byte, 2, UINT64_MAX), -EFBIG);
	assert_int_equal(file_io_truncate(&f->crypt, TDEFS_MAX_FILE_SIZE + 1), -EFBIG);
	assert_int_equal(file_io_fallocate(&f->crypt, 0, TDEFS_MAX_FILE_SIZE, 1), -EINVAL);
	assert_int_equal(file_io_fallocate(&f->crypt, 0, 0, 0), -EINVAL);
	assert_int_equal(file_io_fallocate(&f->crypt, FALLOC_FL_PUNCH_HOLE, 0, 1), -EOPNOTSUPP);
	assert_int_equal(file_io_fallocate(&f->crypt, FALLOC_FL_COLLAPSE_RANGE, 0, BLOCK),
			 -EOPNOTSUPP);
	assert_int_equal(file_io_lseek(&f->crypt, 0, SEEK_DATA, &found), -ENXIO);
	/* An empty write changes nothing. */
	assert_int_equal(file_io_write(&f->crypt, -1, &byte, 0, 5), 0);
	check(f);
	write_random(f, 0, 10);
	f->crypt.writable = false;
	assert_int_equal(file_io_write(&f->crypt, -1, &byte, 1, 0), -EROFS);
	assert_int_equal(file_io_truncate(&f->crypt, 0), -EROFS);
	assert_int_equal(file_io_fallocate(&f->crypt, 0, 0, 1), -EROFS);
	f->crypt.writable = true;
	check(f);
}

/*
 * After tderekey close --force wiped the DEKs (fs/file_keys.c, file_crypt_wipe_keys): every
 * request of the data path fails with EIO and the backing file is not touched, byte for byte.
 */
static void test_wiped_keys(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 'x', *data, *before, *after;
	struct stat st;
	size_t length;
	int fd;

	write_random(f, 0, 3 * BLOCK + 100);
	check(f);
	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	before = malloc((size_t)st.st_size);
	after = malloc((size_t)st.st_size);
	assert_non_null(before);
	assert_non_null(after);
	assert_int_equal(pread(fd, before, (size_t)st.st_size, 0), st.st_size);
	xts_key_free(f->crypt.key);
	f->crypt.key = NULL;
	f->crypt.keys_wiped = true;
	assert_int_equal(file_io_read(&f->crypt, -1, 0, 100, &data, &length), -EIO);
	assert_int_equal(file_io_write(&f->crypt, -1, &byte, 1, 10), -EIO);
	assert_int_equal(file_io_write(&f->crypt, -1, &byte, 1, 10 * BLOCK), -EIO);
	assert_int_equal(file_io_truncate(&f->crypt, 5), -EIO);
	assert_int_equal(file_io_truncate(&f->crypt, 20 * BLOCK), -EIO);
	assert_int_equal(file_io_extend(&f->crypt, 20 * BLOCK), -EIO);
	assert_int_equal(file_io_fallocate(&f->crypt, 0, 0, 8 * BLOCK), -EIO);
	assert_int_equal(file_io_fallocate(&f->crypt, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					   BLOCK),
			 -EIO);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pread(fd, after, (size_t)st.st_size, 0), st.st_size);
	assert_memory_equal(before, after, (size_t)st.st_size);
	close(fd);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unaligned_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_tails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_growth_leaves_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shrink_then_regrow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_modify_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_punch_and_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_watermark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_partial_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wiped_keys, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
