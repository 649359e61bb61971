/*
 * tdefs-open-many: the memory measurement of docs/PERFORMANCE.md. It creates COUNT files in a directory on
 * a mounted filesystem, writes one 8 KiB page to each and fdatasyncs it (so the daemon has
 * really opened the file, unwrapped its DEK and run its cipher contexts, not just answered a
 * lookup), keeps every file open, and then reads VmRSS and VmHWM of the daemon's process from
 * /proc. It prints one line of JSON so that bench/compare can put it in its results. The files
 * are left in place for the caller to remove after unmounting checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* VmRSS and VmHWM of pid in KiB, from /proc/PID/status; -1 when not found. */
static int read_memory(long pid, long *rss_kib, long *hwm_kib)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*rss_kib = *hwm_kib = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			*rss_kib = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			*hwm_kib = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"Usage: tdefs-open-many DIR COUNT DAEMON_PID\n"
		"Creates DIR/f0..f(COUNT-1) on the mount, writes and fdatasyncs 8 KiB in each, keeps\n"
		"them all open and prints the daemon's VmRSS/VmHWM before and after as JSON.\n");
}

int main(int argc, char **argv)
{
	static char page[8192];
	long pid, count, rss_before, hwm_before, rss_after, hwm_after;
	struct rlimit limit;
	int *fds;

	if (argc != 4) {
		usage();
		return 2;
	}
	count = strtol(argv[2], NULL, 10);
	pid = strtol(argv[3], NULL, 10);
	if (count < 1 || count > 1000000 || pid < 1) {
		usage();
		return 2;
	}
	/* 1,000 files plus stdio can exceed a default soft limit of 1024. */
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)count + 64) {
		limit.rlim_cur = (rlim_t)count + 64 <= limit.rlim_max ? (rlim_t)count + 64
								      : limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
	if (read_memory(pid, &rss_before, &hwm_before) < 0) {
		fprintf(stderr, "tdefs-open-many: no process %ld\n", pid);
		return 1;
	}
	fds = calloc((size_t)count, sizeof(*fds));
	if (!fds)
		return 1;
	memset(page, 0x5a, sizeof(page));
	for (long i = 0; i < count; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/f%ld", argv[1], i);
		fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fds[i] < 0 || pwrite(fds[i], page, sizeof(page), 0) != (ssize_t)sizeof(page) ||
		    fdatasync(fds[i]) < 0) {
			fprintf(stderr, "tdefs-open-many: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	if (read_memory(pid, &rss_after, &hwm_after) < 0) {
		fprintf(stderr, "tdefs-open-many: daemon %ld went away\n", pid);
		return 1;
	}
	printf("{\"open_files\": %ld, \"rss_before_kib\": %ld, \"rss_kib\": %ld, "
	       "\"hwm_kib\": %ld}\n",
	       count, rss_before, rss_after, hwm_after);
	for (long i = 0; i < count; i++)
		close(fds[i]);
	free(fds);
	return 0;
}
