/*
 * -o key_cache=SECS (fs/key_cache.c): the unwrapped DEKs of recently closed files, kept in locked
 * memory for at most SECS after the file's last close, so that a file a database reopens while
 * its master key cannot be had (the keystore closed with tderekey close, or unreachable) still
 * opens. An entry is found by the backing file's device and inode and is used only while the
 * file's header is byte for byte the one its DEK was unwrapped from (a SHA-256 of the header
 * area): a rewrap, a data rekey or a replaced file never meets a stale DEK. Files in a data
 * rekey are not cached. Off by default (0). Nothing here knows FUSE or the daemon's state, so
 * tests/unit/test_key_cache.c drives it with a clock of its own; times are milliseconds of
 * CLOCK_MONOTONIC (key_cache_now).
 */
#ifndef TDEFS_KEY_CACHE_H
#define TDEFS_KEY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/format.h"

/* The longest SECS accepted, and the most files cached at once (the oldest goes first). */
#define KEY_CACHE_MAX_SECONDS 86400u
#define KEY_CACHE_MAX_ENTRIES 1024u

/* "SECS", 0 to KEY_CACHE_MAX_SECONDS; -EINVAL with a one-line error naming the option. */
int key_cache_option(const char *value, unsigned *seconds, char *error, size_t error_size);

/* Before any other call: how long entries live after the last close (0: the cache is off). */
void key_cache_configure(unsigned seconds);
unsigned key_cache_seconds(void);

int64_t key_cache_now(void);

/*
 * A file's DEK, just unwrapped with its master key from header image (len bytes): kept, pinned
 * (it does not expire) until key_cache_unpin at the file's last close starts its SECS.
 * Replaces an older entry of the same file. 0, or -ENOMEM (the file works, uncached).
 */
int key_cache_put(dev_t dev, ino_t ino, const uint8_t *image, size_t len,
		  const uint8_t dek[DEK_SIZE]);
void key_cache_unpin(dev_t dev, ino_t ino, int64_t now);
/*
 * The DEK of the file if its entry is there, unexpired at now and of the same header image:
 * copied into dek (locked memory of the caller). 0 or -ENOKEY. It does not renew the entry.
 */
int key_cache_get(dev_t dev, ino_t ino, const uint8_t *image, size_t len, int64_t now,
		  uint8_t dek[DEK_SIZE]);
/* Wipe every entry (tderekey close --force, unmount). */
void key_cache_wipe_all(void);
size_t key_cache_count(void);

/* A thread that wipes entries when they expire (after daemonising); stop wipes them all. */
int key_cache_start(void);
void key_cache_stop(void);

#endif
