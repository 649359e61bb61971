/*
 * Whole-buffer I/O and crash-safe file replacement. Wallets and the backing directory's config
 * file are small and change rarely, so they are always rewritten whole through
 * write_file_atomic(); rename(2) is the only step that switches versions, which is what makes
 * "old or new, never neither" hold across a crash at any point.
 */
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pwrite_all(int fd, const void *buf, size_t len, off_t offset)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		offset += n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, off_t offset, size_t *done)
{
	uint8_t *p = buf;
	size_t total = 0;

	while (total < len) {
		ssize_t n = pread(fd, p + total, len - total, offset + (off_t)total);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	*done = total;
	return 0;
}

int read_small_fd(int fd, size_t max_len, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t done;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max_len)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	ret = pread_full(fd, buf, (size_t)st.st_size, 0, &done);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	*data = buf;
	*len = done;
	return 0;
}

int read_small_file(const char *path, size_t max_len, uint8_t **data, size_t *len)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ret = read_small_fd(fd, max_len, data, len);
	close(fd);
	return ret;
}

int fsync_parent_directory(const char *path)
{
	char copy[PATH_MAX];
	int fd, ret = 0;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char temp_path[PATH_MAX];
	int fd, ret;

	if (snprintf(temp_path, sizeof(temp_path), "%s.tmp-XXXXXX", path) >= (int)sizeof(temp_path))
		return -ENAMETOOLONG;
	fd = mkostemp(temp_path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	fault_point("atomic-write:created");
	ret = pwrite_all(fd, data, len, 0);
	if (ret < 0)
		goto out_unlink;
	fault_point("atomic-write:written");
	if (fsync(fd) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	fault_point("atomic-write:synced");
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		goto out_unlink;
	}
	fd = -1;
	if (rename(temp_path, path) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	fault_point("atomic-write:renamed");
	ret = fsync_parent_directory(path);
	fault_point("atomic-write:directory-synced");
	return ret;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(temp_path);
	return ret;
}

int wait_readable_or_stop(int fd, int stop_fd)
{
	struct pollfd fds[2] = { { fd, POLLIN, 0 }, { stop_fd, POLLIN, 0 } };

	if (poll(fds, 2, -1) < 0)
		return errno == EINTR ? -1 : 0;
	if (fds[1].revents)
		return 0;
	return fds[0].revents & POLLIN ? 1 : -1;
}

#ifdef TDEFS_FAULT_INJECTION
void fault_point(const char *name)
{
	static long count;
	const char *at = getenv("TDEFS_FAULT_AT");
	const char *trace = getenv("TDEFS_FAULT_TRACE");

	count++;
	if (trace)
		fprintf(stderr, "fault point %ld: %s\n", count, name);
	if (at && strtol(at, NULL, 10) == count)
		kill(getpid(), SIGKILL);
}

void fault_pause(const char *name)
{
	const char *pause = getenv("TDEFS_FAULT_PAUSE");

	if (pause && strcmp(pause, name) == 0)
		usleep(300000);
}
#endif
