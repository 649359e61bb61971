/*
 * Per-thread scratch buffers for the data path (fs/file_io.c): one buffer per worker thread,
 * grown to the largest request it has served and reused for every later one, so that reads and
 * writes do not allocate. The buffers hold plaintext, so they are wiped when they grow and when
 * their thread ends. 4096-aligned for O_DIRECT backing I/O.
 */
#include "fs/file_io.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/util.h"

struct scratch_buffer {
	uint8_t *data;
	size_t size;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *ptr)
{
	struct scratch_buffer *scratch = ptr;

	/* It held plaintext: wipe before returning it to the allocator. */
	secure_wipe(scratch->data, scratch->size);
	free(scratch->data);
	free(scratch);
}

static void scratch_key_create(void)
{
	pthread_key_create(&scratch_key, scratch_destroy);
}

uint8_t *scratch_get(size_t size)
{
	struct scratch_buffer *scratch;
	size_t rounded = (size + TDEFS_BLOCK_SIZE - 1) & ~(size_t)(TDEFS_BLOCK_SIZE - 1);

	pthread_once(&scratch_once, scratch_key_create);
	scratch = pthread_getspecific(scratch_key);
	if (!scratch) {
		scratch = calloc(1, sizeof(*scratch));
		if (!scratch)
			return NULL;
		pthread_setspecific(scratch_key, scratch);
	}
	if (scratch->size < rounded) {
		void *grown;

		if (posix_memalign(&grown, TDEFS_BLOCK_SIZE, rounded) != 0)
			return NULL;
		secure_wipe(scratch->data, scratch->size);
		free(scratch->data);
		scratch->data = grown;
		scratch->size = rounded;
	}
	return scratch->data;
}
