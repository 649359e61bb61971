/*
 * A read-only census of a backing directory's headers: how many files reference each master
 * key ID. tderekey status shows it, and a key is only safe to delete when no header here
 * references it. Headers are checked (magic, checksum, fields) but not unsealed, so no key is
 * needed and a damaged file is counted, not fatal. The walk goes by descriptor
 * (fs/backing_walk.c): tdekey and tderekey run it as root over directories other users write.
 */
#include "fs/backing_scan.h"
#include "fs/backing_walk.h"
#include "fs/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

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

static int visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct backing_scan *scan = context;
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header header, other;
	unsigned slot;
	size_t done;
	int ret;

	(void)fd_taken;
	if (entry->kind == BACKING_WALK_ERROR) {
		scan->damaged++; /* a directory or file that cannot be read is not counted as clean */
		return 0;
	}
	if (config_reserved_name(entry->relative))
		return 0;
	scan->files++;
	/* Before the size: an empty plaintext file is plaintext, not a file without a header. */
	if (plaintext_marker_read(entry->fd, NULL) == 1) {
		scan->plaintext++;
		scan->plaintext_bytes += (uint64_t)entry->st.st_size;
		return 0;
	}
	if (entry->st.st_size == 0) {
		scan->empty++;
		return 0;
	}
	memset(image, 0, sizeof(image)); /* a short file leaves the rest zero: no valid copy there */
	ret = pread_full(entry->fd, image, sizeof(image), 0, &done);
	if (ret < 0 || header_select(image, done, &header, &slot) < 0) {
		scan->damaged++;
		return 0;
	}
	if (header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)
		scan->rekey_in_progress++;
	ret = count_key(scan, header.key_id);
	/*
	 * The other copy, if valid, is a fallback that may still be sealed under another key (a
	 * rewrap cut short between its two writes): that key is referenced too.
	 */
	if (ret == 0 && header_copy_decode(image + (1 - slot) * HEADER_COPY_SIZE, &other) == 0 &&
	    memcmp(other.key_id, header.key_id, MASTER_KEY_ID_SIZE) != 0)
		ret = count_key(scan, other.key_id);
	return ret;
}

int backing_scan(const char *backing, struct backing_scan *scan)
{
	int root_fd, ret;

	memset(scan, 0, sizeof(*scan));
	root_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;
	ret = backing_scan_fd(root_fd, scan);
	close(root_fd);
	return ret;
}

int backing_scan_fd(int root_fd, struct backing_scan *scan)
{
	int ret;

	memset(scan, 0, sizeof(*scan));
	ret = backing_walk(root_fd, "", O_RDONLY, visit, scan);
	if (ret < 0)
		backing_scan_free(scan);
	return ret < 0 ? ret : 0;
}

void backing_scan_free(struct backing_scan *scan)
{
	free(scan->keys);
	scan->keys = NULL;
	scan->key_count = 0;
}
