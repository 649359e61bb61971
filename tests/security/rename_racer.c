/*
 * tdefs-rename-racer SECONDS DIR NAME1 NAME2 [NAME1 NAME2 ...]: the local attacker of
 * test_rename_race.sh. Run as uid 65534, it swaps each pair of names in DIR (a directory it owns,
 * on the mount or in a backing directory) with renameat2(RENAME_EXCHANGE) as fast as it can for
 * SECONDS, so that a root job walking the tree by path finds a directory or a regular file under
 * a name at one instant and a symlink (to a device or a file outside the tree) or a FIFO the
 * next. Prints the number of exchanges done; exits 1 if none succeeded (the attack did not run).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long exchanges = 0, failures = 0;
	double seconds, end;
	int dir_fd, last_error = 0;

	if (argc < 5 || (argc - 3) % 2 != 0) {
		fprintf(stderr, "usage: %s SECONDS DIR NAME1 NAME2 [NAME1 NAME2 ...]\n", argv[0]);
		return 2;
	}
	seconds = strtod(argv[1], NULL);
	dir_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		fprintf(stderr, "tdefs-rename-racer: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	end = now() + seconds;
	while (now() < end) {
		for (int i = 3; i + 1 < argc; i += 2) {
			if (renameat2(dir_fd, argv[i], dir_fd, argv[i + 1], RENAME_EXCHANGE) == 0) {
				exchanges++;
			} else {
				failures++;
				last_error = errno;
			}
		}
	}
	printf("%llu\n", exchanges);
	if (exchanges == 0) {
		fprintf(stderr, "tdefs-rename-racer: no exchange in %s succeeded (%llu failed: %s)\n",
			argv[2], failures, strerror(last_error));
		return 1;
	}
	return 0;
}
