/*
 * Unit tests of the DEK cache of -o key_cache (fs/key_cache.c), on a clock the test moves (the
 * functions take "now"): the option's parser and its bad inputs; an entry is pinned while its
 * file is open and expires SECS after key_cache_unpin, not before; it serves only the same
 * device, inode and header bytes; a get does not renew it; a new put replaces the old DEK;
 * key_cache_wipe_all and a cache that is off hold nothing; when it is full the oldest unpinned
 * entry goes and a pinned one never does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/key_cache.h"
#include "fs/key_cache_testing.h"

static uint8_t header[TDEFS_HEADER_SIZE];

static void fill(uint8_t *dek, uint8_t seed)
{
	for (size_t i = 0; i < DEK_SIZE; i++)
		dek[i] = (uint8_t)(seed + i * 7);
}

static int reset(void **state)
{
	(void)state;
	key_cache_wipe_all();
	key_cache_configure(10);
	memset(header, 0x5a, sizeof(header));
	return 0;
}

static void test_option(void **state)
{
	static const char *const bad[] = { "", "-1", "x", "10s", " 5", "86401", "99999999999999999999",
					   "1.5", "+3", "5\n6" };
	char error[128];
	unsigned seconds = 7;

	(void)state;
	assert_int_equal(key_cache_option("0", &seconds, error, sizeof(error)), 0);
	assert_int_equal(seconds, 0);
	assert_int_equal(key_cache_option("30", &seconds, error, sizeof(error)), 0);
	assert_int_equal(seconds, 30);
	assert_int_equal(key_cache_option("86400", &seconds, error, sizeof(error)), 0);
	assert_int_equal(seconds, KEY_CACHE_MAX_SECONDS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error[0] = '\0';
		seconds = 7;
		assert_int_equal(key_cache_option(bad[i], &seconds, error, sizeof(error)), -EINVAL);
		assert_int_equal(seconds, 7);
		/* One line naming the option. */
		assert_non_null(strstr(error, "-o key_cache="));
		assert_null(strchr(error, '\n'));
	}
}

static void test_pin_and_expiry(void **state)
{
	uint8_t dek[DEK_SIZE], got[DEK_SIZE];
	int64_t now = 1000000;

	(void)state;
	fill(dek, 1);
	assert_int_equal(key_cache_put(3, 42, header, sizeof(header), dek), 0);
	assert_int_equal(key_cache_count(), 1);
	/* Pinned: no expiry however late. */
	assert_int_equal(key_cache_expire(now + 1000000000), INT64_MAX);
	assert_int_equal(key_cache_get(3, 42, header, sizeof(header), now + 1000000000, got), 0);
	assert_memory_equal(got, dek, DEK_SIZE);
	key_cache_unpin(3, 42, now);
	assert_int_equal(key_cache_expire(now), now + 10000);
	memset(got, 0, sizeof(got));
	assert_int_equal(key_cache_get(3, 42, header, sizeof(header), now + 9999, got), 0);
	assert_memory_equal(got, dek, DEK_SIZE);
	/* The get did not renew it; a second unpin does not either. */
	key_cache_unpin(3, 42, now + 9000);
	assert_int_equal(key_cache_get(3, 42, header, sizeof(header), now + 10000, got), -ENOKEY);
	assert_int_equal(key_cache_count(), 0);
}

static void test_expire_wipes(void **state)
{
	uint8_t dek[DEK_SIZE], got[DEK_SIZE];
	int64_t now = 5000;

	(void)state;
	fill(dek, 2);
	assert_int_equal(key_cache_put(1, 1, header, sizeof(header), dek), 0);
	assert_int_equal(key_cache_put(1, 2, header, sizeof(header), dek), 0);
	key_cache_unpin(1, 1, now);
	key_cache_unpin(1, 2, now + 3000);
	assert_int_equal(key_cache_expire(now + 9999), now + 10000);
	assert_int_equal(key_cache_count(), 2);
	assert_int_equal(key_cache_expire(now + 10000), now + 13000);
	assert_int_equal(key_cache_count(), 1);
	assert_int_equal(key_cache_get(1, 1, header, sizeof(header), now, got), -ENOKEY);
	assert_int_equal(key_cache_expire(now + 13000), INT64_MAX);
	assert_int_equal(key_cache_count(), 0);
}

static void test_same_file_and_header_only(void **state)
{
	uint8_t dek[DEK_SIZE], other[DEK_SIZE], got[DEK_SIZE];
	uint8_t changed[TDEFS_HEADER_SIZE];

	(void)state;
	fill(dek, 3);
	fill(other, 4);
	assert_int_equal(key_cache_put(7, 9, header, sizeof(header), dek), 0);
	assert_int_equal(key_cache_get(7, 10, header, sizeof(header), 0, got), -ENOKEY);
	assert_int_equal(key_cache_get(8, 9, header, sizeof(header), 0, got), -ENOKEY);
	/* One byte of the header changed (a rewrap, a rekey, another file at the inode). */
	memcpy(changed, header, sizeof(changed));
	changed[sizeof(changed) - 1] ^= 1;
	assert_int_equal(key_cache_get(7, 9, changed, sizeof(changed), 0, got), -ENOKEY);
	assert_int_equal(key_cache_get(7, 9, header, sizeof(header) - 1, 0, got), -ENOKEY);
	/* A put for the same file replaces the DEK. */
	assert_int_equal(key_cache_put(7, 9, changed, sizeof(changed), other), 0);
	assert_int_equal(key_cache_count(), 1);
	assert_int_equal(key_cache_get(7, 9, header, sizeof(header), 0, got), -ENOKEY);
	assert_int_equal(key_cache_get(7, 9, changed, sizeof(changed), 0, got), 0);
	assert_memory_equal(got, other, DEK_SIZE);
}

static void test_wipe_all_and_off(void **state)
{
	uint8_t dek[DEK_SIZE], got[DEK_SIZE];

	(void)state;
	fill(dek, 5);
	assert_int_equal(key_cache_put(1, 1, header, sizeof(header), dek), 0);
	key_cache_wipe_all();
	assert_int_equal(key_cache_count(), 0);
	assert_int_equal(key_cache_get(1, 1, header, sizeof(header), 0, got), -ENOKEY);
	/* Off: nothing is kept, nothing is served. */
	key_cache_configure(0);
	assert_int_equal(key_cache_put(1, 1, header, sizeof(header), dek), 0);
	assert_int_equal(key_cache_count(), 0);
	assert_int_equal(key_cache_get(1, 1, header, sizeof(header), 0, got), -ENOKEY);
}

static void test_full(void **state)
{
	uint8_t dek[DEK_SIZE], got[DEK_SIZE];

	(void)state;
	fill(dek, 6);
	for (unsigned i = 0; i < KEY_CACHE_MAX_ENTRIES; i++)
		assert_int_equal(key_cache_put(2, i, header, sizeof(header), dek), 0);
	/* All pinned (open files): a new one is not cached, and none is evicted. */
	assert_int_equal(key_cache_put(2, 99999, header, sizeof(header), dek), -ENOMEM);
	assert_int_equal(key_cache_count(), KEY_CACHE_MAX_ENTRIES);
	/* Inode 5 closed: it is the one that makes room. */
	key_cache_unpin(2, 5, 100);
	assert_int_equal(key_cache_put(2, 99999, header, sizeof(header), dek), 0);
	assert_int_equal(key_cache_get(2, 5, header, sizeof(header), 100, got), -ENOKEY);
	assert_int_equal(key_cache_get(2, 99999, header, sizeof(header), 100, got), 0);
	assert_int_equal(key_cache_get(2, 6, header, sizeof(header), 100, got), 0);
	key_cache_wipe_all();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_option, reset),
		cmocka_unit_test_setup(test_pin_and_expiry, reset),
		cmocka_unit_test_setup(test_expire_wipes, reset),
		cmocka_unit_test_setup(test_same_file_and_header_only, reset),
		cmocka_unit_test_setup(test_wipe_all_and_off, reset),
		cmocka_unit_test_setup(test_full, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
