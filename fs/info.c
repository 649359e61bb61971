/*
 * tdefs --info BACKING: what a backing directory is, read-only and without a key, mounted or
 * not (like cryptsetup luksDump or gocryptfs -info): the config record (format version, cipher
 * suite, block size, wallet ID, directory ID, container, creation time) and a census of its
 * file headers per master key ID (fs/backing_scan.c). The config record is opened beneath the
 * directory's descriptor without following a symlink, and the census walks that same
 * descriptor, so a directory renamed meanwhile by another user cannot swap in another tree.
 *
 * The --json document (README.md, "Status views"):
 *   {"backing": str, "mounted_on": str|null, "format_version": int,
 *    "cipher_suite": str, "cipher_suite_id": int, "block_size": int,
 *    "wallet_id": str, "directory_id": str, "container": str,
 *    "created": int (seconds since the epoch), "created_utc": str (ISO 8601),
 *    "files": int, "empty": int, "damaged": int, "rekey_in_progress": int,
 *    "files_per_key": [{"key_id": str, "files": int}]}
 */
#include "fs/daemon.h"
#include "fs/backing_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/json_text.h"
#include "util/util.h"
#include "tools/cli/cli.h"

static void hex16(const uint8_t id[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static const char *suite_name(uint16_t suite)
{
	return suite == CIPHER_SUITE_AES256_XTS ? "aes-256-xts" : "unknown";
}

/* The config record beneath root_fd: 0, -errno (-ENOENT: none), or a FORMAT_ERROR. */
static int read_config(int root_fd, struct backing_config *config)
{
	uint8_t data[CONFIG_FILE_SIZE + 1];
	struct stat st;
	size_t done;
	int fd, ret;

	fd = openat(root_fd, CONFIG_FILE_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
						      O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? FORMAT_ERROR(FORMAT_ERR_DAMAGED) : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	}
	ret = pread_full(fd, data, sizeof(data), 0, &done);
	close(fd);
	if (ret < 0)
		return ret;
	return config_decode(data, done, config);
}

static void print_text(const char *backing, const char *mounted_on,
		       const struct backing_config *config, const char *created,
		       const struct backing_scan *scan)
{
	char wallet[33], directory[33];

	hex16(config->wallet_id, wallet);
	hex16(config->directory_id, directory);
	printf("tdefs backing directory %s\n\n", backing);
	printf("%-16s %u\n", "Format version:", config->version);
	printf("%-16s %s (%u)\n", "Cipher suite:", suite_name(config->cipher_suite),
	       config->cipher_suite);
	printf("%-16s %u\n", "Block size:", config->block_size);
	printf("%-16s %s\n%-16s %s\n", "Wallet ID:", wallet, "Directory ID:", directory);
	printf("%-16s %s\n", "Container:", config->container);
	printf("%-16s %s (%llu)\n", "Created:", created, (unsigned long long)config->created_time);
	printf("%-16s %s\n", "Mounted on:", mounted_on ? mounted_on : "(not mounted)");
	printf("\n%-34s %10s\n", "MASTER KEY ID", "FILES");
	for (size_t i = 0; i < scan->key_count; i++) {
		char id[33];
		hex16(scan->keys[i].key_id, id);
		printf("%-34s %10llu\n", id, (unsigned long long)scan->keys[i].files);
	}
	printf("\n%llu files, %llu without a header yet, %llu damaged, %llu in the middle of a "
	       "data rekey\n",
	       (unsigned long long)scan->files, (unsigned long long)scan->empty,
	       (unsigned long long)scan->damaged, (unsigned long long)scan->rekey_in_progress);
}

static void print_json(const char *backing, const char *mounted_on,
		       const struct backing_config *config, const char *created,
		       const struct backing_scan *scan)
{
	char wallet[33], directory[33];

	hex16(config->wallet_id, wallet);
	hex16(config->directory_id, directory);
	printf("{\"backing\": ");
	json_write_string(stdout, backing);
	printf(", \"mounted_on\": ");
	if (mounted_on)
		json_write_string(stdout, mounted_on);
	else
		printf("null");
	printf(", \"format_version\": %u, \"cipher_suite\": \"%s\", \"cipher_suite_id\": %u, "
	       "\"block_size\": %u, \"wallet_id\": \"%s\", \"directory_id\": \"%s\", "
	       "\"container\": ",
	       config->version, suite_name(config->cipher_suite), config->cipher_suite,
	       config->block_size, wallet, directory);
	json_write_string(stdout, config->container);
	printf(", \"created\": %llu, \"created_utc\": \"%s\", \"files\": %llu, \"empty\": %llu, "
	       "\"damaged\": %llu, \"rekey_in_progress\": %llu, \"files_per_key\": [",
	       (unsigned long long)config->created_time, created, (unsigned long long)scan->files,
	       (unsigned long long)scan->empty, (unsigned long long)scan->damaged,
	       (unsigned long long)scan->rekey_in_progress);
	for (size_t i = 0; i < scan->key_count; i++) {
		char id[33];
		hex16(scan->keys[i].key_id, id);
		printf("%s{\"key_id\": \"%s\", \"files\": %llu}", i ? ", " : "", id,
		       (unsigned long long)scan->keys[i].files);
	}
	printf("]}\n");
}

int info_backing(const char *backing, bool json)
{
	struct backing_config config;
	struct backing_scan scan;
	struct mount_entry entry;
	char *resolved, self[64], created[64] = "?";
	const char *mounted_on = NULL;
	time_t when;
	struct tm tm;
	int root_fd, ret;

	root_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		fprintf(stderr, "tdefs: --info %s: %s\n", backing, strerror(errno));
		return CLI_EXIT_BACKING;
	}
	ret = read_config(root_fd, &config);
	if (ret < 0) {
		fprintf(stderr, "tdefs: --info %s: %s\n", backing,
			ret == -ENOENT	       ? "no " CONFIG_FILE_NAME
						 ": not a tdefs backing directory (tdefs --init makes one)"
			: ret == FORMAT_ERROR(FORMAT_ERR_DAMAGED) ? CONFIG_FILE_NAME " is damaged (bad magic, size or "
						 "checksum): not a tdefs backing directory"
			: ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT) ? CONFIG_FILE_NAME " is from a newer tdefs format"
						  : strerror(-ret));
		close(root_fd);
		return CLI_EXIT_BACKING;
	}
	/* The census walks the directory just opened, not the path again. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", root_fd);
	ret = backing_scan(self, &scan);
	if (ret < 0) {
		fprintf(stderr, "tdefs: --info %s: cannot read the file headers: %s\n", backing,
			strerror(-ret));
		close(root_fd);
		return CLI_EXIT_BACKING;
	}
	resolved = realpath(backing, NULL);
	if (resolved && mount_find_by_source("fuse.tdefs", resolved, &entry) == 0)
		mounted_on = entry.mount_point;
	when = (time_t)config.created_time;
	if (gmtime_r(&when, &tm))
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json)
		print_json(resolved ? resolved : backing, mounted_on, &config, created, &scan);
	else
		print_text(resolved ? resolved : backing, mounted_on, &config, created, &scan);
	backing_scan_free(&scan);
	free(resolved);
	close(root_fd);
	return 0;
}
