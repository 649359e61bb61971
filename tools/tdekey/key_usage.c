/*
 * Which master keys the file headers under a set of backing directories reference: the FILES
 * column of 'tdekey keys --usage' and the proof 'tdekey delete-key' needs before it removes a
 * key. The walk is fs/backing_scan.c (read-only; headers checked, never unsealed). This file
 * adds what makes the answer trustworthy: each directory must be a tdefs backing directory
 * initialised for this very wallet (its .tdefs.conf says so), because a mistyped path, an empty
 * directory or the mount point itself (where the headers are invisible) would otherwise prove
 * that no file uses a key; and a directory named twice is counted once.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/format.h"
#include "util/util.h"

/* The directory exists and its config record names the wallet of ring; st gets its stat. */
static int check_directory(const char *path, const struct keyring *ring, struct stat *st,
			   char container[WALLET_CONTAINER_MAX + 1])
{
	char config_path[PATH_MAX], ours[KEY_ID_TEXT_SIZE], theirs[KEY_ID_TEXT_SIZE];
	uint8_t wallet_id[KEY_ID_SIZE];
	struct backing_config config;
	uint8_t *data;
	size_t len;
	int ret;

	if (stat(path, st) < 0) {
		fprintf(stderr, "tdekey: cannot scan backing directory %s: %s\n", path,
			strerror(errno));
		return EXIT_BACKING;
	}
	if (!S_ISDIR(st->st_mode)) {
		fprintf(stderr, "tdekey: cannot scan backing directory %s: not a directory\n",
			path);
		return EXIT_BACKING;
	}
	if ((size_t)snprintf(config_path, sizeof(config_path), "%s/%s", path, CONFIG_FILE_NAME) >=
	    sizeof(config_path)) {
		fprintf(stderr, "tdekey: backing directory name %s is too long\n", path);
		return EXIT_BACKING;
	}
	ret = read_small_file(config_path, 4096, &data, &len);
	if (ret == -ENOENT) {
		fprintf(stderr,
			"tdekey: %s is not a tdefs backing directory (no %s): name the directory "
			"tdefs serves the files from (tdefs --wallet DIR BACKING MOUNTPOINT), not "
			"the mount point\n",
			path, CONFIG_FILE_NAME);
		return EXIT_BACKING;
	}
	if (ret < 0) {
		fprintf(stderr, "tdekey: cannot read %s: %s\n", config_path, strerror(-ret));
		return EXIT_BACKING;
	}
	ret = config_decode(data, len, &config);
	free(data);
	if (ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT)) {
		fprintf(stderr, "tdekey: %s was written by a newer version of tdefs\n",
			config_path);
		return EXIT_BACKING;
	}
	if (ret < 0) {
		fprintf(stderr, "tdekey: %s is damaged (bad magic, size or checksum)\n",
			config_path);
		return EXIT_BACKING;
	}
	keyring_wallet_id(ring, wallet_id);
	if (memcmp(wallet_id, config.wallet_id, KEY_ID_SIZE) != 0) {
		key_id_format(wallet_id, ours);
		key_id_format(config.wallet_id, theirs);
		fprintf(stderr,
			"tdekey: backing directory %s belongs to another wallet (wallet ID %s, this "
			"wallet is %s)\n",
			path, theirs, ours);
		return EXIT_BACKING;
	}
	snprintf(container, WALLET_CONTAINER_MAX + 1, "%s", config.container);
	return EXIT_OK;
}

static int merge(struct key_census *census, const struct backing_scan *scan)
{
	for (size_t i = 0; i < scan->key_count; i++) {
		const struct key_usage *usage = &scan->keys[i];
		struct key_usage *grown;
		size_t k;

		for (k = 0; k < census->key_count; k++)
			if (memcmp(census->keys[k].key_id, usage->key_id, KEY_ID_SIZE) == 0)
				break;
		if (k < census->key_count) {
			census->keys[k].files += usage->files;
			continue;
		}
		grown = realloc(census->keys, (census->key_count + 1) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		census->keys = grown;
		census->keys[census->key_count++] = *usage;
	}
	census->files += scan->files;
	census->empty += scan->empty;
	census->damaged += scan->damaged;
	census->rekey_in_progress += scan->rekey_in_progress;
	return 0;
}

int census_take(const struct options *options, const struct keyring *ring,
		struct key_census *census)
{
	dev_t devices[BACKING_MAX];
	ino_t inodes[BACKING_MAX];
	int ret;

	memset(census, 0, sizeof(*census));
	for (size_t i = 0; i < options->backing_count; i++) {
		const char *path = options->backing[i];
		struct backing_census *dir;
		struct stat st;
		bool seen = false;

		char container[WALLET_CONTAINER_MAX + 1];

		ret = check_directory(path, ring, &st, container);
		if (ret)
			return ret;
		for (size_t d = 0; d < census->directories; d++)
			seen |= devices[d] == st.st_dev && inodes[d] == st.st_ino;
		if (seen)
			continue;
		dir = &census->dirs[census->directories];
		ret = backing_scan(path, &dir->scan);
		if (ret < 0) {
			fprintf(stderr, "tdekey: cannot scan backing directory %s: %s\n", path,
				strerror(-ret));
			return ret == -ENOMEM ? EXIT_ERROR : EXIT_BACKING;
		}
		dir->path = path;
		memcpy(dir->container, container, sizeof(dir->container));
		devices[census->directories] = st.st_dev;
		inodes[census->directories] = st.st_ino;
		census->directories++;
		if (merge(census, &dir->scan) < 0)
			return report_failure(-ENOMEM, "out of memory");
	}
	return EXIT_OK;
}

uint64_t census_files_for(const struct key_census *census, const uint8_t key_id[KEY_ID_SIZE])
{
	for (size_t k = 0; k < census->key_count; k++)
		if (memcmp(census->keys[k].key_id, key_id, KEY_ID_SIZE) == 0)
			return census->keys[k].files;
	return 0;
}

uint64_t census_files_in(const struct key_census *census, size_t directory,
			 const uint8_t key_id[KEY_ID_SIZE])
{
	const struct backing_scan *scan = &census->dirs[directory].scan;

	for (size_t k = 0; k < scan->key_count; k++)
		if (memcmp(scan->keys[k].key_id, key_id, KEY_ID_SIZE) == 0)
			return scan->keys[k].files;
	return 0;
}

void census_free(struct key_census *census)
{
	for (size_t d = 0; d < census->directories; d++)
		backing_scan_free(&census->dirs[d].scan);
	free(census->keys);
	memset(census, 0, sizeof(*census));
}
