/*
 * libFuzzer target for the sealed payload decoders: the MEK record list of a key wallet and the
 * password list of an external store. In a real file these bytes are authenticated by GCM
 * first, which a fuzzer cannot get past; this target feeds them to the decoders directly, so
 * that a bug in a length check is found here and not by a writer with a bug of its own.
 *
 * The first input byte selects the decoder (bit 0: 0 keys, 1 secrets) and the key record layout
 * (bit 1: 0 format version 1, 1 version 2 with creators); the rest is the payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t wallet_id[KEY_ID_SIZE];
	char why[WALLET_WHY_SIZE], error[KEYSTORE_ERROR_SIZE];
	uint8_t *copy;

	if (size < 1)
		return 0;
	/* An exact-size heap copy, so that AddressSanitizer catches a read past the end. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if ((data[0] & 1) == 0) {
		struct keyring *ring = NULL;

		if (wallet_payload_decode_keys(copy, size - 1, (data[0] & 2) ? 2 : 1, wallet_id, 1,
					       &ring, why) == 0) {
			/* A decoded ring must survive every operation tdekey applies to it. */
			size_t index;

			(void)keyring_active(ring, NULL, NULL);
			(void)keyring_find_prefix(ring, "a", &index, error);
			(void)keyring_fully_backed_up(ring);
			for (size_t i = 0; i < keyring_count(ring); i++)
				(void)keyring_find(ring, keyring_record(ring, i)->id);
			keyring_free(ring);
		}
	} else {
		struct secret *secrets[WALLET_MAX_SECRETS] = { NULL, NULL };
		size_t count = 0;

		if (wallet_payload_decode_secrets(copy, size - 1, secrets, &count, why) == 0)
			for (size_t i = 0; i < count; i++)
				secret_free(secrets[i]);
	}
	free(copy);
	return 0;
}
