/*
 * libFuzzer target for the parser of hsm.wallet (keystore/hsm_wallet.c): any bytes, a wallet or
 * a refusal, never a crash or a read past the input. A file that parses is written out again
 * and must parse to the same keys and the same text: what the parser accepts, the encoder can
 * say, and nothing is lost on the next change.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/hsm_wallet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hsm_wallet wallet, again;
	char why[WALLET_WHY_SIZE];
	char *text = NULL, *text_again = NULL;
	size_t len = 0, len_again = 0;
	uint8_t *copy;

	/* An exact-size heap copy, so that AddressSanitizer catches a read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (hsm_wallet_parse(copy, size, &wallet, why) == 0) {
		assert(wallet.object_count == keyring_count(wallet.ring));
		if (hsm_wallet_encode(&wallet.identity, wallet.ring, wallet.objects,
				      wallet.object_count, wallet.write_time, &text, &len) == 0) {
			assert(hsm_wallet_parse((const uint8_t *)text, len, &again, why) == 0);
			assert(keyring_count(again.ring) == keyring_count(wallet.ring));
			assert(hsm_wallet_encode(&again.identity, again.ring, again.objects,
						 again.object_count, again.write_time, &text_again,
						 &len_again) == 0);
			assert(len == len_again && memcmp(text, text_again, len) == 0);
			hsm_wallet_release(&again);
			free(text_again);
			free(text);
		}
		hsm_wallet_release(&wallet);
	}
	free(copy);
	return 0;
}
