/*
 * libFuzzer target for the two parsers of the backing format: header_select() over an arbitrary
 * header region and config_decode() over an arbitrary config file. Neither may crash, read out
 * of bounds or accept a copy that does not re-encode to the same bytes.
 */
#include <stdint.h>
#include <string.h>

#include "fs/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct file_header header;
	struct backing_config config;
	uint8_t reencoded[HEADER_COPY_SIZE];
	unsigned slot;

	if (header_select(data, size, &header, &slot) == 0) {
		/* What the parser accepts must be exactly what the encoder writes. */
		if (header_copy_encode(&header, reencoded) != 0 ||
		    memcmp(reencoded, data + slot * HEADER_COPY_SIZE, HEADER_COPY_SIZE) != 0)
			__builtin_trap();
	}
	(void)config_decode(data, size, &config);
	return 0;
}
