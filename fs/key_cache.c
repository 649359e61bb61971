/*
 * The DEK cache of -o key_cache=SECS (interface and rules in fs/key_cache.h). A small array
 * under one mutex: it is touched at a file's first open and last close, never per request.
 * Each DEK sits in its own locked allocation (crypto's secure_alloc) and is wiped by
 * secure_free when its entry goes: on expiry (the thread below wakes at the next expiry), when
 * it is replaced or evicted, and all of them at tderekey close --force and at unmount.
 */
#include "fs/key_cache.h"
#include "fs/key_cache_testing.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"

struct cache_entry {
	dev_t dev;
	ino_t ino;
	uint8_t header_digest[SHA256_SIZE];
	uint8_t *dek;   /* DEK_SIZE bytes of locked memory; NULL: the slot is free */
	int64_t expiry; /* INT64_MAX while pinned (the file is open) */
	int64_t stored; /* for eviction: the oldest goes first */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cache_changed = PTHREAD_COND_INITIALIZER;
static struct cache_entry entries[KEY_CACHE_MAX_ENTRIES]; /* guarded by cache_lock */
static unsigned lifetime_seconds;
static pthread_t expiry_thread;
static bool thread_running, stopping; /* stopping: guarded by cache_lock */

int key_cache_option(const char *value, unsigned *seconds, char *error, size_t error_size)
{
	unsigned long parsed = 0;
	char *end = NULL;
	char shown[32];
	size_t n = 0;

	if (value[0] >= '0' && value[0] <= '9') {
		errno = 0;
		parsed = strtoul(value, &end, 10);
		if (errno == 0 && *end == '\0' && parsed <= KEY_CACHE_MAX_SECONDS) {
			*seconds = (unsigned)parsed;
			return 0;
		}
	}
	/* One line whatever was given: only printable characters of it are echoed. */
	for (const char *p = value; *p && n < sizeof(shown) - 4; p++)
		shown[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	if (value[n] && n == sizeof(shown) - 4)
		shown[n++] = '.', shown[n++] = '.', shown[n++] = '.';
	shown[n] = '\0';
	snprintf(error, error_size, "-o key_cache=%s: not a number of seconds (0-%u)", shown,
		 KEY_CACHE_MAX_SECONDS);
	return -EINVAL;
}

void key_cache_configure(unsigned seconds)
{
	lifetime_seconds = seconds;
}

unsigned key_cache_seconds(void)
{
	return lifetime_seconds;
}

int64_t key_cache_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void entry_wipe(struct cache_entry *entry)
{
	secure_free(entry->dek);
	memset(entry, 0, sizeof(*entry));
}

static struct cache_entry *find_locked(dev_t dev, ino_t ino)
{
	for (unsigned i = 0; i < KEY_CACHE_MAX_ENTRIES; i++)
		if (entries[i].dek && entries[i].dev == dev && entries[i].ino == ino)
			return &entries[i];
	return NULL;
}

/* A free slot, or the one of the oldest unpinned entry wiped; NULL when all are pinned. */
static struct cache_entry *slot_locked(void)
{
	struct cache_entry *oldest = NULL;

	for (unsigned i = 0; i < KEY_CACHE_MAX_ENTRIES; i++) {
		if (!entries[i].dek)
			return &entries[i];
		if (entries[i].expiry != INT64_MAX &&
		    (!oldest || entries[i].stored < oldest->stored))
			oldest = &entries[i];
	}
	if (oldest)
		entry_wipe(oldest);
	return oldest;
}

int key_cache_put(dev_t dev, ino_t ino, const uint8_t *image, size_t len,
		  const uint8_t dek[DEK_SIZE])
{
	struct cache_entry *entry;
	uint8_t digest[SHA256_SIZE];
	uint8_t *copy;
	int ret;

	if (lifetime_seconds == 0)
		return 0;
	ret = crypto_sha256(image, len, digest);
	if (ret < 0)
		return ret;
	copy = secure_alloc(DEK_SIZE);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, dek, DEK_SIZE);
	pthread_mutex_lock(&cache_lock);
	entry = find_locked(dev, ino);
	if (entry)
		entry_wipe(entry);
	else
		entry = slot_locked();
	if (!entry) {
		pthread_mutex_unlock(&cache_lock);
		secure_free(copy);
		return -ENOMEM;
	}
	entry->dev = dev;
	entry->ino = ino;
	memcpy(entry->header_digest, digest, sizeof(digest));
	entry->dek = copy;
	entry->expiry = INT64_MAX;
	entry->stored = key_cache_now();
	pthread_mutex_unlock(&cache_lock);
	return 0;
}

void key_cache_unpin(dev_t dev, ino_t ino, int64_t now)
{
	struct cache_entry *entry;

	pthread_mutex_lock(&cache_lock);
	entry = find_locked(dev, ino);
	if (entry && entry->expiry == INT64_MAX) {
		entry->expiry = now + (int64_t)lifetime_seconds * 1000;
		pthread_cond_signal(&cache_changed);
	}
	pthread_mutex_unlock(&cache_lock);
}

int key_cache_get(dev_t dev, ino_t ino, const uint8_t *image, size_t len, int64_t now,
		  uint8_t dek[DEK_SIZE])
{
	struct cache_entry *entry;
	uint8_t digest[SHA256_SIZE];
	int ret = -ENOKEY;

	if (lifetime_seconds == 0 || crypto_sha256(image, len, digest) < 0)
		return -ENOKEY;
	pthread_mutex_lock(&cache_lock);
	entry = find_locked(dev, ino);
	if (entry && now >= entry->expiry)
		entry_wipe(entry);
	else if (entry && secure_equal(entry->header_digest, digest, sizeof(digest))) {
		memcpy(dek, entry->dek, DEK_SIZE);
		ret = 0;
	}
	pthread_mutex_unlock(&cache_lock);
	return ret;
}

static int64_t expire_locked(int64_t now)
{
	int64_t next = INT64_MAX;

	for (unsigned i = 0; i < KEY_CACHE_MAX_ENTRIES; i++) {
		if (!entries[i].dek)
			continue;
		if (now >= entries[i].expiry)
			entry_wipe(&entries[i]);
		else if (entries[i].expiry < next)
			next = entries[i].expiry;
	}
	return next;
}

int64_t key_cache_expire(int64_t now)
{
	int64_t next;

	pthread_mutex_lock(&cache_lock);
	next = expire_locked(now);
	pthread_mutex_unlock(&cache_lock);
	return next;
}

void key_cache_wipe_all(void)
{
	pthread_mutex_lock(&cache_lock);
	for (unsigned i = 0; i < KEY_CACHE_MAX_ENTRIES; i++)
		if (entries[i].dek)
			entry_wipe(&entries[i]);
	pthread_mutex_unlock(&cache_lock);
}

size_t key_cache_count(void)
{
	size_t count = 0;

	pthread_mutex_lock(&cache_lock);
	for (unsigned i = 0; i < KEY_CACHE_MAX_ENTRIES; i++)
		count += entries[i].dek != NULL;
	pthread_mutex_unlock(&cache_lock);
	return count;
}

/* Sleeps until the next expiry (or a change), wipes what is due, and again. */
static void *expiry_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&cache_lock);
	while (!stopping) {
		int64_t next = expire_locked(key_cache_now());
		struct timespec until;

		if (next == INT64_MAX) {
			pthread_cond_wait(&cache_changed, &cache_lock);
			continue;
		}
		until.tv_sec = (time_t)(next / 1000);
		until.tv_nsec = (long)(next % 1000) * 1000000;
		pthread_cond_timedwait(&cache_changed, &cache_lock, &until);
	}
	pthread_mutex_unlock(&cache_lock);
	return NULL;
}

int key_cache_start(void)
{
	pthread_condattr_t attributes;
	int ret;

	if (lifetime_seconds == 0)
		return 0;
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&cache_changed, &attributes);
	pthread_condattr_destroy(&attributes);
	ret = -pthread_create(&expiry_thread, NULL, expiry_main, NULL);
	thread_running = ret == 0;
	return ret;
}

void key_cache_stop(void)
{
	if (thread_running) {
		pthread_mutex_lock(&cache_lock);
		stopping = true;
		pthread_cond_signal(&cache_changed);
		pthread_mutex_unlock(&cache_lock);
		pthread_join(expiry_thread, NULL);
		thread_running = false;
	}
	key_cache_wipe_all();
}
