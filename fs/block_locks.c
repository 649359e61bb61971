/*
 * The locks of one file's encryption state (struct file_crypt): size_lock, and the stripes of
 * block locks that let I/O to different blocks of one file run in parallel while a
 * read-modify-write of a partial block never interleaves with another request on that block.
 * Block b is guarded by stripe b % BLOCK_LOCK_STRIPES. A request takes the stripes of its
 * blocks in ascending stripe index (never in block order, which wraps), so two requests cannot
 * deadlock; where these sit among the other locks is the list in fs/daemon.h ("Lock order").
 */
#include "fs/file_io.h"

#include <pthread.h>

void file_crypt_locks_init(struct file_crypt *crypt)
{
	pthread_rwlock_init(&crypt->size_lock, NULL);
	for (unsigned i = 0; i < BLOCK_LOCK_STRIPES; i++)
		pthread_rwlock_init(&crypt->block_locks[i], NULL);
}

void file_crypt_locks_destroy(struct file_crypt *crypt)
{
	pthread_rwlock_destroy(&crypt->size_lock);
	for (unsigned i = 0; i < BLOCK_LOCK_STRIPES; i++)
		pthread_rwlock_destroy(&crypt->block_locks[i]);
}

/* Whether stripe guards one of the blocks first..last. */
static bool stripe_in_range(unsigned stripe, uint64_t first, uint64_t last)
{
	uint64_t count = last - first + 1;

	if (count >= BLOCK_LOCK_STRIPES)
		return true;
	return (stripe + BLOCK_LOCK_STRIPES - first % BLOCK_LOCK_STRIPES) % BLOCK_LOCK_STRIPES <
	       count;
}

void file_lock_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last, bool exclusive)
{
	for (unsigned s = 0; s < BLOCK_LOCK_STRIPES; s++) {
		if (!stripe_in_range(s, first, last))
			continue;
		if (exclusive)
			pthread_rwlock_wrlock(&crypt->block_locks[s]);
		else
			pthread_rwlock_rdlock(&crypt->block_locks[s]);
	}
}

void file_unlock_blocks(struct file_crypt *crypt, uint64_t first, uint64_t last)
{
	for (unsigned s = 0; s < BLOCK_LOCK_STRIPES; s++)
		if (stripe_in_range(s, first, last))
			pthread_rwlock_unlock(&crypt->block_locks[s]);
}
