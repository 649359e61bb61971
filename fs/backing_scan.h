/*
 * backing_scan: a read-only census of a backing directory's file headers, by master key ID
 * (fs/backing_scan.c). tderekey status and rewrap use it for their counts, tdekey for
 * keys --usage and to refuse deleting a key some header still references. It reads the disk
 * format (fs/format.h) but writes nothing and unseals nothing, so it needs no key.
 */
#ifndef TDEFS_BACKING_SCAN_H
#define TDEFS_BACKING_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "fs/format.h" /* MASTER_KEY_ID_SIZE */

struct key_usage {
	uint8_t key_id[MASTER_KEY_ID_SIZE];
	uint64_t files;
};

/* What a read-only walk of a backing directory finds in its file headers. */
struct backing_scan {
	/*
	 * One entry per master key ID referenced by a valid header copy: a file whose two copies
	 * name different keys (a rewrap cut short) counts under both.
	 */
	struct key_usage *keys;
	size_t key_count;
	uint64_t files;   /* regular files, the config file excepted */
	uint64_t empty;   /* no header yet (size 0) */
	uint64_t damaged; /* no valid header copy, or a header from a newer format */
	uint64_t rekey_in_progress; /* headers that carry two DEKs (a data rekey not finished) */
	uint64_t plaintext; /* an adopted directory's files not encrypted yet (plaintext marker) */
	uint64_t plaintext_bytes;
};

/* Walk BACKING without writing anything; headers are checked but not unsealed. */
int backing_scan(const char *backing, struct backing_scan *scan);
/* The same census of the backing directory open in root_fd (kept open). */
int backing_scan_fd(int root_fd, struct backing_scan *scan);
void backing_scan_free(struct backing_scan *scan);

#endif
