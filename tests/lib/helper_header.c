/*
 * tdefs-test-helper, the subcommands on backing-file headers. They go through the project's
 * own header codec (fs/header.c), so that every copy they write has a valid XXH3 checksum:
 * what remains to catch a forged header is the AEAD seal, or nothing. key-id and describe
 * read; set-key-id (a key the wallet does not hold), forge-watermark (a data rekey nobody
 * started: the seal must refuse it, cryptsetup's CVE-2021-4122), swap-keys (another file's
 * wrapped DEK spliced in: the associated data, the file ID above all, must reject it),
 * copy-header and copy-slot (self-consistent headers of another file, which no checksum or
 * seal can tell from the file's own) write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "keystore/keystore.h"
#include "util/util.h"

/* Decodes each copy of IMAGE, lets EDIT change it, encodes it back; 1 if a copy is invalid. */
static int edit_both_copies(const char *path, uint8_t image[TDEFS_HEADER_SIZE],
			    void (*edit)(struct file_header *header, const void *arg), const void *arg)
{
	for (unsigned slot = 0; slot < HEADER_COPY_COUNT; slot++) {
		uint8_t *copy = image + slot * HEADER_COPY_SIZE;
		struct file_header header;

		if (header_copy_decode(copy, &header) < 0)
			return helper_fail("header copy does not decode", path);
		edit(&header, arg);
		if (header_copy_encode(&header, copy) < 0 || header_copy_decode(copy, &header) < 0)
			return helper_fail("the forged copy does not even decode", path);
	}
	return 0;
}

int cmd_key_id(int argc, char **argv)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	char text[KEY_ID_TEXT_SIZE];
	struct file_header header;
	unsigned slot;
	size_t done;
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return helper_fail(argv[0], strerror(errno));
	/* A short file still has a copy 0 to select: no whole header needed here. */
	ret = pread_full(fd, image, sizeof(image), 0, &done);
	close(fd);
	if (ret < 0)
		return helper_fail("cannot read the header", argv[0]);
	if (header_select(image, done, &header, &slot) < 0)
		return helper_fail("no valid header", argv[0]);
	key_id_format(header.key_id, text);
	printf("%s\n", text);
	return 0;
}

static void set_key_id(struct file_header *header, const void *key_id)
{
	memcpy(header->key_id, key_id, sizeof(header->key_id));
}

int cmd_set_key_id(int argc, char **argv)
{
	uint8_t image[TDEFS_HEADER_SIZE], key_id[KEY_ID_SIZE];

	if (key_id_parse(argv[1], key_id) < 0)
		return helper_fail("bad key ID", argv[1]);
	if (helper_load_header(argv[0], image) || edit_both_copies(argv[0], image, set_key_id, key_id))
		return 1;
	return helper_store(argv[0], image, sizeof(image), 0);
}

static void set_watermark(struct file_header *header, const void *watermark)
{
	header->flags |= HEADER_FLAG_REKEY_IN_PROGRESS;
	header->wrapped_length = 2 * DEK_SIZE;
	header->watermark = *(const uint64_t *)watermark;
}

int cmd_forge_watermark(int argc, char **argv)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	char *end;
	uint64_t watermark;

	errno = 0;
	watermark = strtoull(argv[1], &end, 10);
	if (errno || end == argv[1] || *end)
		return helper_fail("bad watermark (a block number)", argv[1]);
	if (helper_load_header(argv[0], image) ||
	    edit_both_copies(argv[0], image, set_watermark, &watermark))
		return 1;
	return helper_store(argv[0], image, sizeof(image), 0);
}

int cmd_swap_keys(int argc, char **argv)
{
	uint8_t a[TDEFS_HEADER_SIZE], b[TDEFS_HEADER_SIZE];
	int swapped = 0;

	if (helper_load_header(argv[0], a) || helper_load_header(argv[1], b))
		return 1;
	for (unsigned slot = 0; slot < HEADER_COPY_COUNT; slot++) {
		struct file_header ha, hb, tmp;
		uint8_t *pa = a + slot * HEADER_COPY_SIZE, *pb = b + slot * HEADER_COPY_SIZE;

		if (header_copy_decode(pa, &ha) < 0 || header_copy_decode(pb, &hb) < 0)
			continue;
		tmp = ha;
		memcpy(ha.nonce, hb.nonce, sizeof(ha.nonce));
		memcpy(ha.wrapped_keys, hb.wrapped_keys, sizeof(ha.wrapped_keys));
		memcpy(ha.tag, hb.tag, sizeof(ha.tag));
		ha.wrapped_length = hb.wrapped_length;
		memcpy(hb.nonce, tmp.nonce, sizeof(hb.nonce));
		memcpy(hb.wrapped_keys, tmp.wrapped_keys, sizeof(hb.wrapped_keys));
		memcpy(hb.tag, tmp.tag, sizeof(hb.tag));
		hb.wrapped_length = tmp.wrapped_length;
		if (header_copy_encode(&ha, pa) < 0 || header_copy_encode(&hb, pb) < 0)
			return helper_fail("encoding a header copy failed", argv[0]);
		swapped++;
	}
	if (swapped == 0)
		return helper_fail("no pair of valid copies to swap", NULL);
	if (helper_store(argv[0], a, sizeof(a), 0) || helper_store(argv[1], b, sizeof(b), 0))
		return 1;
	return 0;
}

static int copy_range(const char *src, const char *dst, size_t offset, size_t len)
{
	uint8_t image[TDEFS_HEADER_SIZE];

	if (helper_load_header(src, image))
		return 1;
	return helper_store(dst, image + offset, len, offset);
}

int cmd_copy_header(int argc, char **argv)
{
	return copy_range(argv[0], argv[1], 0, TDEFS_HEADER_SIZE);
}

int cmd_copy_slot(int argc, char **argv)
{
	if (strcmp(argv[2], "0") != 0 && strcmp(argv[2], "1") != 0)
		return helper_fail("the header copy is 0 or 1, not", argv[2]);
	return copy_range(argv[0], argv[1], (size_t)(argv[2][0] - '0') * HEADER_COPY_SIZE,
			  HEADER_COPY_SIZE);
}

int cmd_describe(int argc, char **argv)
{
	uint8_t image[TDEFS_HEADER_SIZE];

	if (helper_load_header(argv[0], image))
		return 1;
	for (unsigned slot = 0; slot < HEADER_COPY_COUNT; slot++) {
		struct file_header h;
		int ret = header_copy_decode(image + slot * HEADER_COPY_SIZE, &h);

		printf("copy %u: ", slot);
		if (ret < 0) {
			printf("invalid (%s)\n", strerror(-ret));
			continue;
		}
		printf("valid, sequence %llu, file ID ", (unsigned long long)h.sequence);
		for (unsigned i = 0; i < FILE_ID_SIZE; i++)
			printf("%02x", h.file_id[i]);
		if (h.flags & HEADER_FLAG_REKEY_IN_PROGRESS)
			printf(", rekey watermark %llu, hot zone %u", (unsigned long long)h.watermark,
			       h.hot_count);
		printf("\n");
	}
	return 0;
}
