/*
 * libFuzzer target for the parsers of the backing format: header_select() over an arbitrary
 * header region, config_decode() over an arbitrary config file, and an adopted directory's
 * plaintext marker and conversion job record. None may crash, read out of bounds or accept
 * input that does not re-encode to the same bytes.
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
	if (config_decode(data, size, &config) == 0) {
		uint8_t config_out[CONFIG_FILE_SIZE];

		if (config_encode(&config, config_out) != 0 ||
		    (config.flags && memcmp(config_out, data, CONFIG_FILE_SIZE) != 0))
			__builtin_trap();
	}
	{
		uint8_t directory_id[16], marker[PLAINTEXT_MARKER_SIZE];

		if (plaintext_marker_decode(data, size, directory_id) == 0) {
			plaintext_marker_encode(directory_id, marker);
			if (memcmp(marker, data, sizeof(marker)) != 0)
				__builtin_trap();
		}
	}
	{
		char path[4096], text[ENCRYPT_RECORD_MAX];
		double rate;
		int length;

		if (encrypt_record_decode((const char *)data, size, &rate, path, sizeof(path)) == 0) {
			length = encrypt_record_encode(rate, path, text, sizeof(text));
			if (length < 0 || (size_t)length != size || memcmp(text, data, size) != 0)
				__builtin_trap();
		}
	}
	{
		char path[4096], text[ENCRYPT_RECORD_MAX];
		uint8_t id[REKEY_JOB_ID_SIZE];
		bool stopped;
		double rate;
		int length;

		if (rekey_record_decode((const char *)data, size, &rate, id, &stopped, path,
					sizeof(path)) == 0) {
			length = rekey_record_encode(rate, id, stopped, path, text, sizeof(text));
			if (length < 0 || (size_t)length != size || memcmp(text, data, size) != 0)
				__builtin_trap();
		}
	}
	return 0;
}
