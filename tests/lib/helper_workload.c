/*
 * tdefs-test-helper, the durable-record workload of the crash tests (test_rotation.sh,
 * test_rewrap_crash.sh, test_rekey_crash.sh). writer writes numbered 1000-byte records
 * round-robin into DIR/w0..w(FILES-1) at unaligned offsets until killed, fdatasyncs each, then
 * appends the record number to LOG (on a plain file system) and fsyncs that: LOG lists exactly
 * the records that were durable when the daemon was killed. check reads every listed record
 * back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "util/util.h"

#define RECORD_SIZE 1000

static void fill_record(uint8_t *record, unsigned long number)
{
	for (size_t i = 0; i < RECORD_SIZE; i++)
		record[i] = (uint8_t)((number * 2654435761u + i * 40503u) >> 7);
	memcpy(record, &number, sizeof(number));
}

/* Record n goes into file n % files at offset (n / files) * RECORD_SIZE + 7. */
static off_t record_offset(unsigned long number, unsigned long files)
{
	return (off_t)((number / files) * RECORD_SIZE + 7);
}

static int open_files(const char *dir, unsigned long files, int *fds, int flags)
{
	char path[4096];

	for (unsigned long i = 0; i < files; i++) {
		snprintf(path, sizeof(path), "%s/w%lu", dir, i);
		fds[i] = open(path, flags, 0644);
		if (fds[i] < 0)
			return helper_fail("cannot open", path);
	}
	return 0;
}

int cmd_writer(int argc, char **argv)
{
	const char *dir = argv[0], *log_path = argv[2];
	unsigned long files = strtoul(argv[1], NULL, 10);
	uint8_t record[RECORD_SIZE];
	int *fds = calloc(files, sizeof(int));
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (files == 0)
		return helper_fail("FILES must be a number from 1", argv[1]);
	if (!fds || log_fd < 0 || open_files(dir, files, fds, O_RDWR | O_CREAT))
		return helper_fail("cannot start the writer", dir);
	for (unsigned long number = 0;; number++) {
		char line[32];
		int fd = fds[number % files];

		fill_record(record, number);
		if (pwrite_all(fd, record, sizeof(record), record_offset(number, files)) < 0 ||
		    fdatasync(fd) < 0)
			return helper_fail("write failed", strerror(errno));
		int n = snprintf(line, sizeof(line), "%lu\n", number);
		if (write(log_fd, line, (size_t)n) != n || fsync(log_fd) < 0)
			return helper_fail("cannot log", log_path);
	}
}

int cmd_check(int argc, char **argv)
{
	const char *dir = argv[0], *log_path = argv[2];
	unsigned long files = strtoul(argv[1], NULL, 10);
	uint8_t expected[RECORD_SIZE], actual[RECORD_SIZE];
	int *fds = calloc(files, sizeof(int));
	FILE *log = fopen(log_path, "r");
	unsigned long number, checked = 0;
	size_t done;

	if (files == 0)
		return helper_fail("FILES must be a number from 1", argv[1]);
	if (!fds || !log || open_files(dir, files, fds, O_RDONLY))
		return helper_fail("cannot start the check", dir);
	while (fscanf(log, "%lu", &number) == 1) {
		fill_record(expected, number);
		if (pread_full(fds[number % files], actual, sizeof(actual),
			       record_offset(number, files), &done) < 0 ||
		    done != sizeof(actual) || memcmp(actual, expected, sizeof(actual)) != 0) {
			char what[96];

			snprintf(what, sizeof(what), "record %lu (file w%lu) was fsync'ed but does not "
				 "read back", number, number % files);
			return helper_fail(what, NULL);
		}
		checked++;
	}
	printf("%lu durable records verified\n", checked);
	for (unsigned long i = 0; i < files; i++)
		close(fds[i]);
	free(fds);
	fclose(log);
	return 0;
}

