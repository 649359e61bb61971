/*
 * Concurrent O_APPEND writers and the check of what they left (test_append.sh, and the append
 * figures of docs/PERFORMANCE.md): xfstests generic/069's pattern of many small appends.
 *
 *   tdefs-append-writer write FILE PROCS RECORDS SIZE [sync]
 *       PROCS processes each open FILE with O_WRONLY|O_APPEND (|O_SYNC with "sync") and write
 *       RECORDS records of SIZE bytes, one write(2) each; prints the elapsed seconds.
 *   tdefs-append-writer check FILE PROCS RECORDS SIZE
 *       FILE must hold exactly PROCS * RECORDS whole records, each one intact (no bytes of
 *       another record inside it), and every writer's records once each and in its own order.
 *
 * A record is "<writer 4 hex> <sequence 8 hex> " followed by a fill byte that depends on both,
 * up to SIZE bytes ending in '\n', so a torn, lost, repeated or interleaved record is seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_PREFIX 14 /* "wwww ssssssss " */

static void make_record(char *record, size_t size, unsigned writer, unsigned long sequence)
{
	char prefix[RECORD_PREFIX + 1];

	snprintf(prefix, sizeof(prefix), "%04x %08lx ", writer & 0xffff, sequence & 0xffffffff);
	memcpy(record, prefix, RECORD_PREFIX);
	memset(record + RECORD_PREFIX, 'a' + (int)((writer * 7 + sequence) % 26),
	       size - RECORD_PREFIX - 1);
	record[size - 1] = '\n';
}

static int write_records(const char *path, unsigned writer, unsigned long records, size_t size,
			 int extra_flags)
{
	char *record = malloc(size);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | extra_flags, 0644);

	if (!record || fd < 0) {
		fprintf(stderr, "append-writer: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (unsigned long i = 0; i < records; i++) {
		make_record(record, size, writer, i);
		ssize_t n = write(fd, record, size);
		if (n != (ssize_t)size) {
			fprintf(stderr, "append-writer: %s: writer %u record %lu: %s\n", path, writer,
				i, n < 0 ? strerror(errno) : "short write");
			return 1;
		}
	}
	if (close(fd) < 0) {
		fprintf(stderr, "append-writer: %s: close: %s\n", path, strerror(errno));
		return 1;
	}
	free(record);
	return 0;
}

static int run_writers(const char *path, unsigned procs, unsigned long records, size_t size,
		       int extra_flags)
{
	struct timespec start, end;
	int failed = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("append-writer: fork");
			return 1;
		}
		if (pid == 0)
			_exit(write_records(path, p, records, size, extra_flags));
	}
	for (unsigned p = 0; p < procs; p++) {
		int status;
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("%.3f\n", (double)(end.tv_sec - start.tv_sec) +
				 (double)(end.tv_nsec - start.tv_nsec) / 1e9);
	return failed;
}

static int check_file(const char *path, FILE *file, unsigned long *next, char *record,
		      char *expected, unsigned procs, unsigned long records, size_t size);

static int check_records(const char *path, unsigned procs, unsigned long records, size_t size)
{
	unsigned long *next = calloc(procs, sizeof(*next));
	char *record = malloc(size), *expected = malloc(size);
	FILE *file = fopen(path, "re");
	int ret = 1;

	if (!next || !record || !expected || !file)
		fprintf(stderr, "append-check: %s: %s\n", path, strerror(errno));
	else
		ret = check_file(path, file, next, record, expected, procs, records, size);
	if (file)
		fclose(file);
	free(next);
	free(record);
	free(expected);
	return ret;
}

/* The records of FILE (PATH) against what the writers wrote; next[] counts each writer's. */
static int check_file(const char *path, FILE *file, unsigned long *next, char *record,
		      char *expected, unsigned procs, unsigned long records, size_t size)
{
	unsigned long index = 0;
	struct stat st;

	if (fstat(fileno(file), &st) < 0) {
		fprintf(stderr, "append-check: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((unsigned long long)st.st_size != (unsigned long long)procs * records * size) {
		fprintf(stderr, "append-check: %s: size %lld, expected %llu\n", path,
			(long long)st.st_size, (unsigned long long)procs * records * size);
		return 1;
	}
	for (; fread(record, 1, size, file) == size; index++) {
		unsigned writer;
		unsigned long sequence;

		if (sscanf(record, "%4x %8lx ", &writer, &sequence) != 2 || writer >= procs) {
			fprintf(stderr, "append-check: record %lu at byte %lu is torn\n", index,
				index * size);
			return 1;
		}
		if (sequence != next[writer]) {
			fprintf(stderr, "append-check: record %lu: writer %u sequence %lu, expected "
				"%lu (lost or repeated)\n", index, writer, sequence, next[writer]);
			return 1;
		}
		make_record(expected, size, writer, sequence);
		if (memcmp(record, expected, size) != 0) {
			fprintf(stderr, "append-check: record %lu (writer %u, %lu) holds bytes of "
				"another record\n", index, writer, sequence);
			return 1;
		}
		next[writer]++;
	}
	for (unsigned p = 0; p < procs; p++)
		if (next[p] != records) {
			fprintf(stderr, "append-check: writer %u: %lu records, expected %lu\n", p,
				next[p], records);
			return 1;
		}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long procs, records, size;
	char *end;

	if (argc < 6 || argc > 7 || (strcmp(argv[1], "write") && strcmp(argv[1], "check")))
		goto usage;
	procs = strtoul(argv[3], &end, 10);
	if (*end || procs == 0 || procs > 0xffff)
		goto usage;
	records = strtoul(argv[4], &end, 10);
	if (*end || records == 0 || records > 0xffffffffUL)
		goto usage;
	size = strtoul(argv[5], &end, 10);
	if (*end || size <= RECORD_PREFIX + 1 || size > 1 << 20)
		goto usage;
	if (argc == 7 && strcmp(argv[6], "sync"))
		goto usage;
	if (strcmp(argv[1], "write") == 0)
		return run_writers(argv[2], (unsigned)procs, records, size,
				   argc == 7 ? O_SYNC : 0);
	return check_records(argv[2], (unsigned)procs, records, size);
usage:
	fprintf(stderr, "usage: tdefs-append-writer write|check FILE PROCS RECORDS SIZE [sync]\n"
			"       (SIZE more than %d bytes)\n", RECORD_PREFIX + 1);
	return 2;
}
