/*
 * Memory for keys and passwords. Each allocation gets its own mapping so that mlock() and
 * MADV_DONTDUMP cover exactly it, and a guard-free layout keeps the code small: key objects are
 * few (one per open file, one per master key), so the page of overhead is cheap. The size is
 * kept in front of the returned pointer so secure_free() can wipe and unmap without being told.
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

struct secure_block_header {
	size_t mapping_size;
	size_t magic;
};

#define SECURE_BLOCK_MAGIC ((size_t)0x7464656673656331ULL)
/* Keep user memory 16-byte aligned after the header. */
#define SECURE_HEADER_SIZE 16
_Static_assert(sizeof(struct secure_block_header) <= SECURE_HEADER_SIZE, "header fits");

/*
 * memset, then a barrier that tells the compiler the zeroed memory may be read, so the memset
 * cannot be dropped as a dead store (the kernel's memzero_explicit). A volatile byte loop gives
 * the same guarantee at a byte per cycle: it was the largest single cost of a data rekey, which
 * wipes its 880 KiB chunk buffer after every chunk.
 */
void secure_wipe(void *ptr, size_t len)
{
	if (!len)
		return;
	memset(ptr, 0, len);
	__asm__ __volatile__("" : : "r"(ptr) : "memory");
}

bool secure_equal(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	uint8_t diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

void *secure_alloc(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t mapping_size = (size + SECURE_HEADER_SIZE + page - 1) / page * page;
	struct secure_block_header *header;
	void *mapping;

	if (size == 0 || size > SIZE_MAX - SECURE_HEADER_SIZE - page)
		return NULL;
	mapping = mmap(NULL, mapping_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (mapping == MAP_FAILED)
		return NULL;
	/*
	 * Locking can fail for an unprivileged user over RLIMIT_MEMLOCK; the key is still excluded
	 * from core dumps and wiped, and every program that holds keys for long (the daemon) runs
	 * as root where the lock succeeds. Refusing to work would push users to worse setups.
	 */
	(void)mlock(mapping, mapping_size);
	(void)madvise(mapping, mapping_size, MADV_DONTDUMP);
	header = mapping;
	header->mapping_size = mapping_size;
	header->magic = SECURE_BLOCK_MAGIC;
	return (uint8_t *)mapping + SECURE_HEADER_SIZE;
}

void secure_free(void *ptr)
{
	struct secure_block_header *header;
	size_t mapping_size;

	if (!ptr)
		return;
	header = (struct secure_block_header *)((uint8_t *)ptr - SECURE_HEADER_SIZE);
	if (header->magic != SECURE_BLOCK_MAGIC)
		__builtin_trap(); /* not ours: a double free or a stray pointer, never continue */
	mapping_size = header->mapping_size;
	secure_wipe(header, mapping_size);
	munlock(header, mapping_size);
	munmap(header, mapping_size);
}

int secure_process_setup(bool lock_all_memory)
{
	struct rlimit no_core = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &no_core) < 0)
		return -errno;
	/* Not dumpable: no core file even if the limit is raised, no ptrace by other users. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	/*
	 * The crypto library keeps expanded key schedules in its own heap memory. Locking every
	 * page as it is first touched keeps those out of swap too, without the resident cost of
	 * locking thread stacks that are never used.
	 */
	if (lock_all_memory && mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
		return -errno;
	return 0;
}
