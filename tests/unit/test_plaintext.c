/*
 * Unit tests of an adopted directory's plaintext files, without FUSE: how a plaintext file is
 * told from an encrypted one (the marker of fs/format.h, never the file's bytes, and the
 * config record's adopted flag), the conversion's job record, the data path of a plaintext file (fs/file_io.c: every byte
 * where the application put it, no header), and the conversion's watermark split: with an
 * encrypted copy under construction, a change to a block below the watermark reaches the copy
 * too, encrypted, one above it does not, and a size change moves the watermark back to the
 * block whose length changed. The copy is decrypted independently with OpenSSL's EVP
 * AES-256-XTS, so that a copy kept in step wrongly in the same way it is read still fails.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fs/file_io.h"

#define BLOCK TDEFS_BLOCK_SIZE
#define CAPACITY (64 * BLOCK)

struct fixture {
	char original_path[256], copy_path[256];
	struct file_crypt crypt;
	uint8_t copy_dek[DEK_SIZE];
	uint8_t *ref;
	uint64_t ref_size;
	uint64_t rng;
};

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
		data[i] = (uint8_t)(next_random(f) >> 24) | 1;
}

static int temp_file(char *path, size_t size, const char *tag)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, size, "%s/tdefs-%s-XXXXXX", dir && *dir ? dir : "/tmp", tag);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->crypt.data_fd = temp_file(f->original_path, sizeof(f->original_path), "plain");
	f->crypt.writable = true;
	f->crypt.plaintext = true;
	f->crypt.copy_fd = -1;
	f->crypt.plain_direct_fd = -1;
	for (size_t i = 0; i < DEK_SIZE; i++)
		f->copy_dek[i] = (uint8_t)(i * 11 + 3);
	file_crypt_locks_init(&f->crypt);
	f->ref = calloc(1, CAPACITY);
	assert_non_null(f->ref);
	f->rng = 0x2545f4914f6cdd1dull;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	xts_key_free(f->crypt.key);
	xts_key_free(f->crypt.copy_key);
	file_crypt_locks_destroy(&f->crypt);
	close(f->crypt.data_fd);
	if (f->crypt.plain_direct_fd >= 0)
		close(f->crypt.plain_direct_fd);
	if (f->crypt.copy_fd >= 0)
		close(f->crypt.copy_fd);
	unlink(f->original_path);
	if (f->copy_path[0])
		unlink(f->copy_path);
	free(f->ref);
	free(f);
	return 0;
}

static void write_random(struct fixture *f, uint64_t offset, size_t len)
{
	uint8_t *data = malloc(len);

	assert_non_null(data);
	assert_true(offset + len <= CAPACITY);
	fill_random(f, data, len);
	assert_int_equal(file_io_write(&f->crypt, -1, data, len, offset), 0);
	memcpy(f->ref + offset, data, len);
	if (offset + len > f->ref_size)
		f->ref_size = offset + len;
	free(data);
}

static void do_truncate(struct fixture *f, uint64_t size)
{
	assert_int_equal(file_io_truncate(&f->crypt, size), 0);
	if (size < f->ref_size)
		memset(f->ref + size, 0, f->ref_size - size);
	f->ref_size = size;
}

/* Through the data path, in uneven pieces. */
static void check_read(struct fixture *f)
{
	uint64_t size, offset = 0;
	size_t piece = 777;

	assert_int_equal(file_io_size(&f->crypt, &size), 0);
	assert_int_equal(size, f->ref_size);
	while (offset < size) {
		uint8_t *data;
		size_t length;

		assert_int_equal(file_io_read(&f->crypt, -1, offset, piece, &data, &length), 0);
		assert_int_equal(length, size - offset < piece ? size - offset : piece);
		assert_memory_equal(data, f->ref + offset, length);
		offset += length;
		piece = piece * 5 % 15013 + 1;
	}
}

/* The original on disk is exactly the reference: no header, no transformation. */
static void check_original_raw(struct fixture *f)
{
	uint8_t *disk = malloc(CAPACITY);
	struct stat st;

	assert_non_null(disk);
	assert_int_equal(fstat(f->crypt.data_fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, f->ref_size);
	assert_int_equal(pread(f->crypt.data_fd, disk, f->ref_size, 0), (ssize_t)f->ref_size);
	assert_memory_equal(disk, f->ref, f->ref_size);
	free(disk);
}

static void evp_xts_decrypt(const uint8_t dek[DEK_SIZE], uint64_t unit, const uint8_t *in,
			    uint8_t *out)
{
	uint8_t iv[16] = { 0 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int out_len = 0, final_len = 0;

	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(unit >> (8 * i));
	assert_non_null(ctx);
	assert_int_equal(EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, dek, iv, 0), 1);
	assert_int_equal(EVP_CipherUpdate(ctx, out, &out_len, in, (int)BLOCK), 1);
	assert_int_equal(EVP_CipherFinal_ex(ctx, out + out_len, &final_len), 1);
	EVP_CIPHER_CTX_free(ctx);
}

/* Whole block `block` of the copy, decrypted with EVP: whether it equals the reference. */
static bool copy_block_matches(struct fixture *f, uint64_t block)
{
	uint8_t cipher[BLOCK] = { 0 }, plain[BLOCK];
	ssize_t n = pread(f->crypt.copy_fd, cipher, BLOCK, (off_t)(TDEFS_HEADER_SIZE + block * BLOCK));

	assert_true(n >= 0); /* short: the copy does not reach that far (zeros) */
	evp_xts_decrypt(f->copy_dek, block, cipher, plain);
	return memcmp(plain, f->ref + block * BLOCK, BLOCK) == 0;
}

static void start_copy(struct fixture *f)
{
	static const uint8_t header_space[TDEFS_HEADER_SIZE];

	f->crypt.copy_fd = temp_file(f->copy_path, sizeof(f->copy_path), "copy");
	assert_int_equal(pwrite(f->crypt.copy_fd, header_space, sizeof(header_space), 0),
			 (ssize_t)sizeof(header_space));
	assert_int_equal(xts_key_new(f->copy_dek, &f->crypt.copy_key), 0);
	f->crypt.copy_watermark = 0;
}

/* What the conversion does for one chunk (fs/encrypt.c, copy_chunk), single-threaded here. */
static void copy_up_to(struct fixture *f, uint64_t end_block)
{
	uint64_t first = f->crypt.copy_watermark;

	if (end_block > first)
		assert_true(file_io_copy_blocks(&f->crypt, first, end_block - 1) >= 0);
	f->crypt.copy_watermark = end_block;
}

/* --- the marker and the config record ---------------------------------------------------- */

static void test_marker(void **state)
{
	struct fixture *f = *state;
	uint8_t id[16], read_id[16], value[PLAINTEXT_MARKER_SIZE];
	int fd = f->crypt.data_fd;

	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0xa0 + i);
	/* No marker: encrypted, whatever the file holds (here: header magic). */
	assert_int_equal(pwrite(fd, HEADER_MAGIC, 8, 0), 8);
	assert_int_equal(plaintext_marker_read(fd, read_id), 0);
	plaintext_marker_encode(id, value);
	if (fsetxattr(fd, PLAINTEXT_MARKER_NAME, value, sizeof(value), 0) < 0) {
		/* trusted.* needs root and a filesystem that keeps it */
		print_message("no trusted xattrs here (%s): marker cases skipped\n", strerror(errno));
		skip();
	}
	assert_int_equal(plaintext_marker_read(fd, read_id), 1);
	assert_memory_equal(read_id, id, 16);
	/* A value of that name that is not a marker: damaged, never "plaintext". */
	value[0] ^= 1;
	assert_int_equal(fsetxattr(fd, PLAINTEXT_MARKER_NAME, value, sizeof(value), 0), 0);
	assert_int_equal(plaintext_marker_read(fd, read_id), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	value[0] ^= 1;
	assert_int_equal(fsetxattr(fd, PLAINTEXT_MARKER_NAME, value, sizeof(value) - 1, 0), 0);
	assert_int_equal(plaintext_marker_read(fd, read_id), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	{
		uint8_t longer[PLAINTEXT_MARKER_SIZE + 8] = { 0 };

		memcpy(longer, value, sizeof(value));
		assert_int_equal(fsetxattr(fd, PLAINTEXT_MARKER_NAME, longer, sizeof(longer), 0), 0);
		assert_int_equal(plaintext_marker_read(fd, read_id),
				 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	}
	assert_int_equal(fremovexattr(fd, PLAINTEXT_MARKER_NAME), 0);
	assert_int_equal(plaintext_marker_read(fd, NULL), 0);
}

static void test_config_adopted(void **state)
{
	struct backing_config config = { 0 }, decoded;
	uint8_t out[CONFIG_FILE_SIZE];

	(void)state;
	config.cipher_suite = CIPHER_SUITE_AES256_XTS;
	config.block_size = TDEFS_BLOCK_SIZE;
	snprintf(config.container, sizeof(config.container), "default");
	config.created_time = 1700000000;
	config.flags = CONFIG_FLAG_ADOPTED;
	assert_int_equal(config_encode(&config, out), 0);
	assert_int_equal(out[8], CONFIG_FORMAT_VERSION_FLAGS);
	assert_int_equal(config_decode(out, sizeof(out), &decoded), 0);
	assert_int_equal(decoded.flags, CONFIG_FLAG_ADOPTED);
	assert_int_equal(decoded.created_time, config.created_time);
	assert_string_equal(decoded.container, "default");
	/* Without the flag, the record stays version 1 and reads back without it. */
	config.flags = 0;
	assert_int_equal(config_encode(&config, out), 0);
	assert_int_equal(out[8], CONFIG_FORMAT_VERSION_SHORT_NAME);
	assert_int_equal(config_decode(out, sizeof(out), &decoded), 0);
	assert_int_equal(decoded.flags, 0);
	/* Unknown flags are refused on write; a long name does not fit with flags. */
	config.flags = 0x80;
	assert_int_equal(config_encode(&config, out), -EINVAL);
	config.flags = CONFIG_FLAG_ADOPTED;
	memset(config.container, 'n', 40);
	config.container[40] = '\0';
	assert_int_equal(config_encode(&config, out), -EINVAL);
}

/* The job record: what encode writes decodes back; anything else is damaged. */
static void test_job_record(void **state)
{
	char text[ENCRYPT_RECORD_MAX], path[256];
	double rate;
	int length;

	(void)state;
	length = encrypt_record_encode(104857600, "base/16384", text, sizeof(text));
	assert_true(length > 0);
	assert_int_equal(encrypt_record_decode(text, (size_t)length, &rate, path, sizeof(path)), 0);
	assert_true(rate == 104857600);
	assert_string_equal(path, "base/16384");
	length = encrypt_record_encode(0, "", text, sizeof(text));
	assert_int_equal(encrypt_record_decode(text, (size_t)length, &rate, path, sizeof(path)), 0);
	assert_string_equal(path, "");
	assert_int_equal(encrypt_record_encode(0, "a\nb", text, sizeof(text)), -EINVAL);
	static const char *const damaged[] = {
		"tdefs-encrypt-job 1\nrate 0\npath x", /* torn: no final newline */
		"tdefs-encrypt-job 1\nrate 0\n",
		"tdefs-encrypt-job 2\nrate 0\npath x\n",
		"tdefs-encrypt-job 1\nrate -1\npath x\n",
		"tdefs-encrypt-job 1\nrate 1e3\npath x\n", /* not how it is written */
		"tdefs-encrypt-job 1\nrate 0\npath x\nextra\n",
		"",
	};
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++)
		assert_int_equal(encrypt_record_decode(damaged[i], strlen(damaged[i]), &rate, path,
						       sizeof(path)),
				 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	/* A path longer than the caller's room is damaged, not cut. */
	length = encrypt_record_encode(0, "a/very/long/path/indeed", text, sizeof(text));
	assert_int_equal(encrypt_record_decode(text, (size_t)length, &rate, path, 8),
			 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
}

/* The data rekey's record: the same rules, with the job's ID and whether it was stopped. */
static void test_rekey_job_record(void **state)
{
	char text[ENCRYPT_RECORD_MAX], path[256];
	uint8_t id[REKEY_JOB_ID_SIZE], decoded[REKEY_JOB_ID_SIZE];
	bool stopped;
	double rate;
	int length;

	(void)state;
	for (unsigned i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(0xf0 + i);
	length = rekey_record_encode(52428800, id, true, "base/16384", text, sizeof(text));
	assert_true(length > 0);
	assert_string_equal(text, "tdefs-rekey-job 1\nid f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\n"
				  "stopped 1\nrate 52428800\npath base/16384\n");
	assert_int_equal(rekey_record_decode(text, (size_t)length, &rate, decoded, &stopped, path,
					     sizeof(path)), 0);
	assert_true(rate == 52428800 && stopped);
	assert_memory_equal(decoded, id, sizeof(id));
	assert_string_equal(path, "base/16384");
	length = rekey_record_encode(0, id, false, "", text, sizeof(text));
	assert_int_equal(rekey_record_decode(text, (size_t)length, &rate, decoded, &stopped, path,
					     sizeof(path)), 0);
	assert_false(stopped);
	assert_string_equal(path, "");
	assert_int_equal(rekey_record_encode(0, id, false, "a\nb", text, sizeof(text)), -EINVAL);
	static const char *const damaged[] = {
		"tdefs-rekey-job 1\nid f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\nstopped 0\nrate 0\npath x",
		"tdefs-rekey-job 1\nid F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF\nstopped 0\nrate 0\npath x\n",
		"tdefs-rekey-job 1\nid f0f1f2f3f4f5f6f7f8f9fafbfcfdfe\nstopped 0\nrate 0\npath x\n",
		"tdefs-rekey-job 1\nid f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\nstopped 2\nrate 0\npath x\n",
		"tdefs-rekey-job 1\nid f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\nstopped 0\nrate 1e3\npath x\n",
		"tdefs-rekey-job 1\nid f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\nrate 0\npath x\n",
		"tdefs-encrypt-job 1\nrate 0\npath x\n",
		"tdefs-rekey-job 1\nid ",
		"",
	};
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++)
		assert_int_equal(rekey_record_decode(damaged[i], strlen(damaged[i]), &rate, decoded,
						     &stopped, path, sizeof(path)),
				 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	length = rekey_record_encode(0, id, false, "a/very/long/path/indeed", text, sizeof(text));
	assert_int_equal(rekey_record_decode(text, (size_t)length, &rate, decoded, &stopped, path, 8),
			 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
}

/* --- the plaintext data path -------------------------------------------------------------- */

static void test_plaintext_passthrough(void **state)
{
	struct fixture *f = *state;
	uint64_t found;

	write_random(f, 0, 3 * BLOCK + 100);
	write_random(f, 5 * BLOCK - 3, 7); /* growth leaves a hole */
	check_read(f);
	check_original_raw(f);
	write_random(f, BLOCK - 1, 2); /* across a block boundary */
	do_truncate(f, 2 * BLOCK + 5);
	check_read(f);
	check_original_raw(f);
	do_truncate(f, 9 * BLOCK + 1);
	assert_int_equal(file_io_fallocate(&f->crypt, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   BLOCK, BLOCK),
			 0);
	memset(f->ref + BLOCK, 0, BLOCK);
	check_read(f);
	check_original_raw(f);
	/* SEEK_DATA in the backing file's own offsets: no header to skip. */
	assert_int_equal(file_io_lseek(&f->crypt, 0, SEEK_DATA, &found), 0);
	assert_int_equal(found, 0);
	assert_int_equal(file_io_lseek(&f->crypt, 100 * BLOCK, SEEK_DATA, &found), -ENXIO);
}

/* --- the watermark split ---------------------------------------------------------------- */

static void test_watermark_split(void **state)
{
	struct fixture *f = *state;
	struct file_crypt converted;
	uint8_t *data;
	size_t length;

	write_random(f, 0, 20 * BLOCK + 100);
	start_copy(f);
	copy_up_to(f, 10);
	for (uint64_t b = 0; b < 10; b++)
		assert_true(copy_block_matches(f, b));

	/* Below the watermark: original and copy. Above: the original only. */
	write_random(f, 3 * BLOCK + 10, 50);
	write_random(f, 15 * BLOCK, BLOCK);
	assert_true(copy_block_matches(f, 3));
	assert_false(copy_block_matches(f, 15));
	/* Straddling it: the part below reaches the copy, the part above does not. */
	write_random(f, 9 * BLOCK + 4000, 200);
	assert_true(copy_block_matches(f, 9));
	assert_false(copy_block_matches(f, 10));
	check_read(f);
	check_original_raw(f);
	assert_int_equal(f->crypt.copy_watermark, 10);

	/* A size change moves the watermark back to the block whose length changed. */
	do_truncate(f, 6 * BLOCK + 10);
	assert_int_equal(f->crypt.copy_watermark, 6);
	copy_up_to(f, 7);
	write_random(f, 12 * BLOCK, 33); /* growth: the old short last block (6) changes length */
	assert_int_equal(f->crypt.copy_watermark, 6);
	assert_int_equal(file_io_fallocate(&f->crypt, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   2 * BLOCK, BLOCK),
			 0);
	memset(f->ref + 2 * BLOCK, 0, BLOCK);
	assert_int_equal(f->crypt.copy_watermark, 2);

	/* The rest, as the conversion finishes it; then the copy alone holds the file. */
	copy_up_to(f, (f->ref_size + BLOCK - 1) / BLOCK);
	assert_int_equal(ftruncate(f->crypt.copy_fd, (off_t)(TDEFS_HEADER_SIZE + f->ref_size)), 0);
	for (uint64_t b = 0; b < f->ref_size / BLOCK; b++) {
		uint8_t cipher[BLOCK];

		/* Zeros (the punched block, the holes of the growth) stay holes in the copy. */
		if (buffer_is_zero(f->ref + b * BLOCK, BLOCK)) {
			assert_int_equal(pread(f->crypt.copy_fd, cipher, BLOCK,
					       (off_t)(TDEFS_HEADER_SIZE + b * BLOCK)),
					 (ssize_t)BLOCK);
			assert_true(buffer_is_zero(cipher, BLOCK));
		} else {
			assert_true(copy_block_matches(f, b));
		}
	}
	memset(&converted, 0, sizeof(converted));
	converted.data_fd = f->crypt.copy_fd;
	converted.key = f->crypt.copy_key;
	converted.size = f->ref_size;
	file_crypt_locks_init(&converted);
	assert_int_equal(file_io_read(&converted, -1, 0, f->ref_size, &data, &length), 0);
	assert_int_equal(length, f->ref_size);
	assert_memory_equal(data, f->ref, f->ref_size);
	file_crypt_locks_destroy(&converted);
}

/*
 * O_DIRECT requests on a plaintext file (FILE_IO_DIRECT_PLAINTEXT): aligned spans through the
 * shared O_DIRECT descriptor, the others buffered, the same bytes either way, and a write below
 * a conversion's watermark still reaches the copy. Skipped where the temporary directory's
 * filesystem has no O_DIRECT (tmpfs).
 */
static void test_direct_io(void **state)
{
	struct fixture *f = *state;
	uint8_t *data, *page;
	size_t length;

	f->crypt.plain_direct_fd = open(f->original_path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (f->crypt.plain_direct_fd < 0 && errno == EINVAL)
		skip();
	assert_true(f->crypt.plain_direct_fd >= 0);
	page = malloc(4 * BLOCK + 1); /* the request's buffer, deliberately not aligned */
	assert_non_null(page);
	fill_random(f, page + 1, 4 * BLOCK);
	assert_int_equal(file_io_write(&f->crypt, FILE_IO_DIRECT_PLAINTEXT, page + 1, 4 * BLOCK,
				       8 * BLOCK), 0);
	memcpy(f->ref + 8 * BLOCK, page + 1, 4 * BLOCK);
	f->ref_size = 12 * BLOCK;
	fill_random(f, page, 300);
	assert_int_equal(file_io_write(&f->crypt, FILE_IO_DIRECT_PLAINTEXT, page, 300, BLOCK + 7), 0);
	memcpy(f->ref + BLOCK + 7, page, 300);
	start_copy(f);
	copy_up_to(f, 12);
	fill_random(f, page, 2 * BLOCK);
	assert_int_equal(file_io_write(&f->crypt, FILE_IO_DIRECT_PLAINTEXT, page, 2 * BLOCK,
				       2 * BLOCK), 0);
	memcpy(f->ref + 2 * BLOCK, page, 2 * BLOCK);
	assert_true(copy_block_matches(f, 2) && copy_block_matches(f, 3));
	assert_int_equal(file_io_read(&f->crypt, FILE_IO_DIRECT_PLAINTEXT, 8 * BLOCK, 4 * BLOCK,
				      &data, &length), 0);
	assert_int_equal(length, 4 * BLOCK);
	assert_memory_equal(data, f->ref + 8 * BLOCK, length);
	assert_int_equal(file_io_read(&f->crypt, FILE_IO_DIRECT_PLAINTEXT, BLOCK + 5, 333, &data,
				      &length), 0);
	assert_memory_equal(data, f->ref + BLOCK + 5, 333);
	check_read(f);
	check_original_raw(f);
	free(page);
}

/* Holes of the original are not read: the count covers its data, and they stay holes. */
static void test_copy_skips_holes(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	int copied;

	write_random(f, 0, BLOCK);
	write_random(f, 40 * BLOCK, 2 * BLOCK + 9);
	start_copy(f);
	copied = file_io_copy_blocks(&f->crypt, 0, 42);
	assert_true(copied >= 0);
	/* A filesystem without SEEK_DATA reads it all; one with it reads the data only. */
	assert_true(copied == 4 || copied == 43);
	f->crypt.copy_watermark = 43;
	assert_true(copy_block_matches(f, 0) && copy_block_matches(f, 40) &&
		    copy_block_matches(f, 41));
	assert_int_equal(fstat(f->crypt.copy_fd, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= TDEFS_HEADER_SIZE + 4 * BLOCK + 8 * BLOCK);
	check_read(f);
}

/* A copy that cannot be kept in step fails the conversion, never the request. */
static void test_copy_error(void **state)
{
	struct fixture *f = *state;

	write_random(f, 0, 4 * BLOCK);
	start_copy(f);
	copy_up_to(f, 4);
	close(f->crypt.copy_fd);
	f->crypt.copy_fd = open("/dev/null", O_RDONLY); /* every write to the copy fails */
	assert_true(f->crypt.copy_fd >= 0);
	write_random(f, BLOCK, 10);
	assert_int_not_equal(f->crypt.copy_error, 0);
	check_read(f);
	check_original_raw(f);
}

/* Once the swap has cleared the flag, requests take the encrypted path. */
static void test_after_swap(void **state)
{
	struct fixture *f = *state;
	static const uint8_t header_space[TDEFS_HEADER_SIZE];
	uint8_t *data;
	size_t length;

	write_random(f, 0, 2 * BLOCK + 9);
	start_copy(f);
	copy_up_to(f, 3);
	assert_int_equal(ftruncate(f->crypt.copy_fd, (off_t)(TDEFS_HEADER_SIZE + f->ref_size)), 0);
	close(f->crypt.data_fd);
	f->crypt.data_fd = f->crypt.copy_fd;
	f->crypt.copy_fd = -1;
	f->crypt.key = f->crypt.copy_key;
	f->crypt.copy_key = NULL;
	f->crypt.plaintext = false;
	write_random(f, BLOCK + 1, 100);
	check_read(f);
	/* The backing file now has its header space first: the data moved by 4096 bytes. */
	assert_int_equal(pread(f->crypt.data_fd, f->ref + CAPACITY - TDEFS_HEADER_SIZE,
			       TDEFS_HEADER_SIZE, 0),
			 (ssize_t)TDEFS_HEADER_SIZE);
	assert_memory_equal(f->ref + CAPACITY - TDEFS_HEADER_SIZE, header_space,
			    TDEFS_HEADER_SIZE);
	assert_int_equal(file_io_read(&f->crypt, -1, 0, 10, &data, &length), 0);
	assert_memory_equal(data, f->ref, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_marker, setup, teardown),
		cmocka_unit_test(test_config_adopted),
		cmocka_unit_test(test_job_record),
		cmocka_unit_test(test_rekey_job_record),
		cmocka_unit_test_setup_teardown(test_plaintext_passthrough, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watermark_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_skips_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_after_swap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
