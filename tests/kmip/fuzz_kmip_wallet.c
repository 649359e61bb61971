/*
 * libFuzzer target for the kmip.wallet parser (keystore/kmip_wallet.c). Most mutations would
 * stop at the closing sha256 line, so each input is parsed twice: as it is, and with a correct
 * sha256 line appended, so that every line rule behind the checksum is reached too. A parsed
 * wallet is encoded again and must parse to the same servers and keys.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/kmip_wallet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kmip_wallet first, second;

static void parse_and_compare(const uint8_t *data, size_t size)
{
	char why[KMIP_WALLET_WHY_SIZE];
	char *text;
	size_t len;

	if (kmip_wallet_parse(data, size, &first, why) != 0)
		return;
	if (kmip_wallet_encode(&first, &text, &len) != 0)
		abort();
	if (kmip_wallet_parse((const uint8_t *)text, len, &second, why) != 0 ||
	    first.key_count != second.key_count || first.server_count != second.server_count ||
	    memcmp(first.keys, second.keys, first.key_count * sizeof(first.keys[0])) != 0)
		abort(); /* what was read must encode to what reads the same */
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t digest[SHA256_SIZE];
	uint8_t *sealed;

	if (size > KMIP_WALLET_MAX_SIZE)
		return 0;
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	parse_and_compare(copy, size);
	free(copy);

	sealed = malloc(size + 7 + 2 * SHA256_SIZE + 1);
	if (!sealed || crypto_sha256(data, size, digest) != 0) {
		free(sealed);
		return 0;
	}
	memcpy(sealed, data, size);
	memcpy(sealed + size, "sha256 ", 7);
	for (size_t i = 0; i < SHA256_SIZE; i++) {
		static const char hex[] = "0123456789abcdef";
		sealed[size + 7 + 2 * i] = (uint8_t)hex[digest[i] >> 4];
		sealed[size + 8 + 2 * i] = (uint8_t)hex[digest[i] & 15];
	}
	sealed[size + 7 + 2 * SHA256_SIZE] = '\n';
	parse_and_compare(sealed, size + 8 + 2 * SHA256_SIZE);
	free(sealed);
	return 0;
}
