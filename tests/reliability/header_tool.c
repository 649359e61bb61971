/*
 * tdefs-rel-header: edits backing-file headers the way tests/reliability/test_bad_backing.sh
 * needs, through the project's own header codec (fs/header.c) so that every copy it writes has
 * a valid XXH3 checksum: what remains to catch the edit is the AEAD seal, or nothing.
 *
 *   swap-keys A B        In both header copies of backing files A and B, exchange the sealed
 *                        key material (GCM nonce, wrapped DEKs and their length, tag), keeping
 *                        each file's own file ID, sequence and other fields; checksums are
 *                        recomputed. A splice of another file's wrapped DEK into a header: the
 *                        AEAD's associated data (the file ID above all) must reject it.
 *   copy-header SRC DST  Copy SRC's whole 4096-byte header over DST's (both copies, unchanged):
 *                        a self-consistent header of another file, which no checksum or seal
 *                        can tell from DST's own.
 *   copy-slot SRC DST N  Copy header copy N (0 or 1) of SRC over copy N of DST.
 *   describe FILE        Print each copy: valid or not, sequence, file ID, and for a copy in a
 *                        data rekey its watermark and hot-zone length.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/format.h"
#include "util/util.h"

static int load(const char *path, uint8_t image[TDEFS_HEADER_SIZE])
{
	size_t done;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "tdefs-rel-header: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ret = pread_full(fd, image, TDEFS_HEADER_SIZE, 0, &done);
	close(fd);
	if (ret < 0 || done != TDEFS_HEADER_SIZE) {
		fprintf(stderr, "tdefs-rel-header: %s: cannot read a whole header\n", path);
		return -1;
	}
	return 0;
}

static int store(const char *path, const uint8_t *data, size_t len, off_t offset)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "tdefs-rel-header: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ret = pwrite_all(fd, data, len, offset);
	if (ret == 0)
		ret = fsync(fd);
	close(fd);
	if (ret < 0)
		fprintf(stderr, "tdefs-rel-header: writing %s failed\n", path);
	return ret < 0 ? -1 : 0;
}

static int swap_keys(const char *a_path, const char *b_path)
{
	uint8_t a[TDEFS_HEADER_SIZE], b[TDEFS_HEADER_SIZE];
	int swapped = 0;

	if (load(a_path, a) < 0 || load(b_path, b) < 0)
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
		if (header_copy_encode(&ha, pa) < 0 || header_copy_encode(&hb, pb) < 0) {
			fprintf(stderr, "tdefs-rel-header: encoding copy %u failed\n", slot);
			return 1;
		}
		swapped++;
	}
	if (swapped == 0) {
		fprintf(stderr, "tdefs-rel-header: no pair of valid copies to swap\n");
		return 1;
	}
	return store(a_path, a, sizeof(a), 0) < 0 || store(b_path, b, sizeof(b), 0) < 0;
}

static int copy_range(const char *src, const char *dst, size_t offset, size_t len)
{
	uint8_t image[TDEFS_HEADER_SIZE];

	if (load(src, image) < 0)
		return 1;
	return store(dst, image + offset, len, (off_t)offset) < 0;
}

static int describe(const char *path)
{
	uint8_t image[TDEFS_HEADER_SIZE];

	if (load(path, image) < 0)
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

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "swap-keys") == 0)
		return swap_keys(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "copy-header") == 0)
		return copy_range(argv[2], argv[3], 0, TDEFS_HEADER_SIZE);
	if (argc == 5 && strcmp(argv[1], "copy-slot") == 0 && (argv[4][0] == '0' || argv[4][0] == '1'))
		return copy_range(argv[2], argv[3], (size_t)(argv[4][0] - '0') * HEADER_COPY_SIZE,
				  HEADER_COPY_SIZE);
	if (argc == 3 && strcmp(argv[1], "describe") == 0)
		return describe(argv[2]);
	fprintf(stderr, "usage: tdefs-rel-header swap-keys A B | copy-header SRC DST | "
			"copy-slot SRC DST 0|1 | describe FILE\n");
	return 2;
}
