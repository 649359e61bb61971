/*
 * A read-only census of a backing directory's headers: how many files reference each master
 * key ID. tderekey status shows it, and a key is only safe to delete when no header here
 * references it. Headers are checked (magic, checksum, fields) but not unsealed, so no key is
 * needed and a damaged file is counted, not fatal.
 */
#include "fs/format.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

/* nftw has no context argument; the walk is serialised so one static context is enough. */
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct backing_scan *current_scan;
static int scan_error;

static int count_key(struct backing_scan *scan, const uint8_t key_id[MASTER_KEY_ID_SIZE])
{
	struct key_usage *grown;

	for (size_t i = 0; i < scan->key_count; i++) {
		if (memcmp(scan->keys[i].key_id, key_id, MASTER_KEY_ID_SIZE) == 0) {
			scan->keys[i].files++;
			return 0;
		}
	}
	grown = realloc(scan->keys, (scan->key_count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	scan->keys = grown;
	memcpy(grown[scan->key_count].key_id, key_id, MASTER_KEY_ID_SIZE);
	grown[scan->key_count].files = 1;
	scan->key_count++;
	return 0;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header header;
	unsigned slot;
	size_t done;
	int fd, ret;

	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (ftw->level == 1 && strcmp(path + ftw->base, CONFIG_FILE_NAME) == 0)
		return 0;
	current_scan->files++;
	if (st->st_size == 0) {
		current_scan->empty++;
		return 0;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		current_scan->damaged++;
		return 0;
	}
	memset(image, 0, sizeof(image)); /* a short file leaves the rest zero: no valid copy there */
	ret = pread_full(fd, image, sizeof(image), 0, &done);
	close(fd);
	if (ret < 0 || header_select(image, done, &header, &slot) < 0) {
		current_scan->damaged++;
		return 0;
	}
	if (header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)
		current_scan->rekey_in_progress++;
	ret = count_key(current_scan, header.key_id);
	/*
	 * The other copy, if valid, is a fallback that may still be sealed under another key (a
	 * rewrap cut short between its two writes): that key is referenced too.
	 */
	struct file_header other;
	if (ret == 0 && header_copy_decode(image + (1 - slot) * HEADER_COPY_SIZE, &other) == 0 &&
	    memcmp(other.key_id, header.key_id, MASTER_KEY_ID_SIZE) != 0)
		ret = count_key(current_scan, other.key_id);
	if (ret < 0) {
		scan_error = ret;
		return 1;
	}
	return 0;
}

int backing_scan(const char *backing, struct backing_scan *scan)
{
	int ret;

	memset(scan, 0, sizeof(*scan));
	pthread_mutex_lock(&scan_lock);
	current_scan = scan;
	scan_error = 0;
	ret = nftw(backing, visit, 16, FTW_PHYS | FTW_MOUNT);
	if (ret < 0)
		ret = -errno;
	else if (scan_error)
		ret = scan_error;
	current_scan = NULL;
	pthread_mutex_unlock(&scan_lock);
	if (ret < 0)
		backing_scan_free(scan);
	return ret;
}

void backing_scan_free(struct backing_scan *scan)
{
	free(scan->keys);
	scan->keys = NULL;
	scan->key_count = 0;
}
