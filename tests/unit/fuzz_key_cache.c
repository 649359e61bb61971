/*
 * libFuzzer target for -o key_cache: the option's parser over arbitrary text (it must accept
 * exactly the decimal numbers 0 to 86400, and always leave a one-line message when it refuses),
 * then the input read as a list of cache operations (put, get, unpin, expire, wipe) on a few
 * files and a clock that only moves forward. A get must only ever return the DEK last put for
 * that file with the same header bytes, and never one past its expiry.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/key_cache.h"
#include "fs/key_cache_testing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILES 8

struct model {
	bool present, pinned;
	int64_t expiry;
	uint8_t header_seed, dek_seed;
};

static void fill(uint8_t *out, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(seed * 31 + i);
}

static void check_option(const uint8_t *data, size_t size)
{
	char text[32], error[128] = "";
	size_t len = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	unsigned seconds = 12345;
	bool accept;
	int ret;

	memcpy(text, data, len);
	text[len] = '\0';
	unsigned long long value = 0;

	/* The model: decimal digits only (leading zeros too), value at most the maximum. */
	accept = strlen(text) > 0 && strspn(text, "0123456789") == strlen(text);
	for (const char *p = text; accept && *p; p++) {
		value = value * 10 + (unsigned)(*p - '0');
		if (value > KEY_CACHE_MAX_SECONDS)
			accept = false;
	}
	ret = key_cache_option(text, &seconds, error, sizeof(error));
	if (accept != (ret == 0))
		__builtin_trap();
	if (ret == 0 && seconds != value)
		__builtin_trap();
	if (ret < 0 && (seconds != 12345 || !error[0] || strchr(error, '\n')))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t header[256];
	struct model files[FILES] = { 0 };
	uint8_t dek[DEK_SIZE], got[DEK_SIZE];
	int64_t now = 1000;

	if (size < 1)
		return 0;
	check_option(data + 1, data[0] % 24 < size - 1 ? data[0] % 24 : size - 1);
	key_cache_configure(1 + data[0] % 5);
	key_cache_wipe_all();
	for (size_t i = 1; i + 1 < size; i += 2) {
		unsigned file = data[i] % FILES, op = (data[i] >> 3) % 6;
		uint8_t seed = data[i + 1];
		struct model *m = &files[file];
		int ret;

		switch (op) {
		case 0: /* a load under the master key */
			fill(header, sizeof(header), seed);
			fill(dek, sizeof(dek), (uint8_t)(seed + 1));
			if (key_cache_put(1, file, header, sizeof(header), dek) == 0)
				*m = (struct model){ true, true, INT64_MAX, seed, (uint8_t)(seed + 1) };
			break;
		case 1: /* the last close */
			key_cache_unpin(1, file, now);
			if (m->present && m->pinned) {
				m->pinned = false;
				m->expiry = now + (int64_t)key_cache_seconds() * 1000;
			}
			break;
		case 2: /* an open without the master key */
			fill(header, sizeof(header), seed);
			ret = key_cache_get(1, file, header, sizeof(header), now, got);
			if (m->present && now >= m->expiry)
				m->present = false;
			if (ret == 0) {
				fill(dek, sizeof(dek), m->dek_seed);
				if (!m->present || m->header_seed != seed ||
				    memcmp(got, dek, sizeof(dek)) != 0)
					__builtin_trap();
			}
			break;
		case 3:
			now += seed * 10;
			break;
		case 4:
			key_cache_expire(now);
			if (m->present && now >= m->expiry)
				m->present = false;
			break;
		default:
			key_cache_wipe_all();
			memset(files, 0, sizeof(files));
			break;
		}
	}
	key_cache_wipe_all();
	return 0;
}
