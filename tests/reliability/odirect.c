/*
 * tdefs-rel-odirect: writes a file through the mount the three ways a database may, so that
 * tests/reliability/test_mariadb.sh can show with fincore(1) which page caches the data passed
 * through: the mount's (FUSE) page cache and the backing file system's page cache.
 *
 *   tdefs-rel-odirect MODE FILE MIB
 *     MODE open      open(O_DIRECT): what PostgreSQL's and most engines' direct I/O does
 *     MODE fcntl     open() then fcntl(F_SETFL, O_DIRECT): what InnoDB does on Linux
 *                    (os_file_set_nocache) for innodb_flush_method=O_DIRECT
 *     MODE buffered  plain open(): the control, whose pages must show up as cached
 * It writes MIB MiB as 16 KiB pages (InnoDB's page size) from a 4096-aligned buffer with
 * pwrite, fsyncs, then reads every page back with pread through the same descriptor and checks
 * it. Exit 0 on success, 1 on a mismatch or an I/O error (with the offset).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE (16 * 1024)

static void fill(uint8_t *page, uint64_t number)
{
	uint64_t x = number * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < PAGE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(page + i, &x, 8);
	}
}

int main(int argc, char **argv)
{
	uint8_t *page, *expect;
	long mib;
	int fd, flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC;

	if (argc != 4 || (mib = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: tdefs-rel-odirect open|fcntl|buffered FILE MIB\n");
		return 2;
	}
	if (strcmp(argv[1], "open") == 0)
		flags |= O_DIRECT;
	else if (strcmp(argv[1], "fcntl") != 0 && strcmp(argv[1], "buffered") != 0) {
		fprintf(stderr, "tdefs-rel-odirect: unknown mode %s\n", argv[1]);
		return 2;
	}
	fd = open(argv[2], flags, 0644);
	if (fd < 0) {
		fprintf(stderr, "tdefs-rel-odirect: open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (strcmp(argv[1], "fcntl") == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT) < 0) {
		fprintf(stderr, "tdefs-rel-odirect: fcntl O_DIRECT: %s\n", strerror(errno));
		return 1;
	}
	if (posix_memalign((void **)&page, 4096, PAGE) != 0 || posix_memalign((void **)&expect, 4096, PAGE) != 0)
		return 1;
	uint64_t pages = (uint64_t)mib * 1024 * 1024 / PAGE;
	for (uint64_t n = 0; n < pages; n++) {
		fill(page, n);
		if (pwrite(fd, page, PAGE, (off_t)(n * PAGE)) != PAGE) {
			fprintf(stderr, "tdefs-rel-odirect: pwrite at %llu: %s\n",
				(unsigned long long)(n * PAGE), strerror(errno));
			return 1;
		}
	}
	if (fsync(fd) < 0) {
		fprintf(stderr, "tdefs-rel-odirect: fsync: %s\n", strerror(errno));
		return 1;
	}
	for (uint64_t n = 0; n < pages; n++) {
		fill(expect, n);
		if (pread(fd, page, PAGE, (off_t)(n * PAGE)) != PAGE || memcmp(page, expect, PAGE) != 0) {
			fprintf(stderr, "tdefs-rel-odirect: page %llu reads back wrong (%s)\n",
				(unsigned long long)n, strerror(errno));
			return 1;
		}
	}
	free(page);
	free(expect);
	return close(fd) == 0 ? 0 : 1;
}
