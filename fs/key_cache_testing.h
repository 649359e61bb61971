/*
 * key_cache_testing: what only the tests call in the DEK cache (fs/key_cache.c), kept out of
 * fs/key_cache.h so that the daemon cannot reach it. In the daemon, expiry belongs to the
 * cache's own thread (key_cache_start), which reads CLOCK_MONOTONIC; tests/unit/test_key_cache.c
 * and its fuzzer run no thread and pass a clock of their own, so they need to trigger an expiry
 * at a time they choose. Nothing outside tests/ includes this header.
 */
#ifndef TDEFS_KEY_CACHE_TESTING_H
#define TDEFS_KEY_CACHE_TESTING_H

#include <stdint.h>

#include "fs/key_cache.h"

/* Wipe the entries expired at now; returns the next expiry (INT64_MAX: none due). */
int64_t key_cache_expire(int64_t now);

#endif
