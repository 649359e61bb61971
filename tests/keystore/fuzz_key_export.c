/*
 * libFuzzer target for the key export file reader (keystore/key_export.c): the clear header and
 * its checksum, and the decoding of the sealed key records, which is everything 'tdekey import'
 * does with the file's bytes short of scrypt and GCM.
 *
 * The first input byte is a mode. Bit 0 set: the trailing SHA-256 is recomputed before parsing,
 * so that mutations get past the checksum to the header checks behind it. Bit 1 set: the bytes
 * after the header are taken as the unsealed records themselves (for the count the header
 * claims, or as many whole records as there are), so that the record decoder is fuzzed without
 * a secret (bit 2 picks version 1 records for that, else version 2); scrypt at a fuzzed cost
 * would only measure scrypt. Seeds in corpus/fuzz_key_export
 * are the known-answer files of test_key_export.c (version 1 and 2) behind mode bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/key_export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_records(const uint8_t *plaintext, size_t len, unsigned version, size_t count)
{
	char why[KEYSTORE_ERROR_SIZE];
	struct mek_record *records = NULL;

	if (key_export_decode_records(plaintext, len, version, count, &records, why) == 0)
		secure_free(records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[KEYSTORE_ERROR_SIZE];
	struct key_export_view view;
	uint8_t mode, *copy;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	/* An exact-size copy, so that AddressSanitizer catches a read one byte past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if ((mode & 1) && size >= SHA256_SIZE)
		crypto_sha256(copy, size - SHA256_SIZE, copy + size - SHA256_SIZE);
	if (key_export_parse(copy, size, &view, why) == 0 && (mode & 2)) {
		decode_records(view.sealed, view.sealed_len, view.version, view.count);
	} else if ((mode & 2) && size > KEY_EXPORT_HEADER_SIZE) {
		unsigned version = (mode & 4) ? 1 : 2;
		size_t record = version == 1 ? KEY_EXPORT_RECORD_V1_SIZE : KEY_EXPORT_RECORD_SIZE;

		decode_records(copy + KEY_EXPORT_HEADER_SIZE, size - KEY_EXPORT_HEADER_SIZE,
			       version, (size - KEY_EXPORT_HEADER_SIZE) / record);
	}
	free(copy);
	return 0;
}
