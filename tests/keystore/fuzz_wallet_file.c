/*
 * libFuzzer target for the wallet file parser: the clear header, the checksum and, for the
 * auto-login kinds whose key is in the file, unsealing and decoding the payload, which is
 * everything keystore_open_for_mount() does with bytes from disk short of running scrypt.
 *
 * The first input byte is a mode: with bit 0 set the trailing SHA-256 is recomputed before
 * parsing, so that mutations get past the checksum to the header checks behind it; the rest is
 * the file. Seeds in corpus/fuzz_wallet_file are real wallets (made with the test host identity
 * set below and, for local-autologin-host-secret, the host secret FUZZ_HOST_SECRET_BYTE
 * repeated) behind a mode byte. The secret is given here rather than read from a file, so that
 * no input makes the fuzzer touch the disk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/wallet_format.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_HOST_IDENTITY "machine-id=fuzz hostname=fuzz"
#define FUZZ_HOST_SECRET_BYTE 0x5a

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TDEFS_TEST_HOST_IDENTITY", FUZZ_HOST_IDENTITY, 1);
	return 0;
}

static void open_payload(const struct wallet_file_view *view)
{
	char error[KEYSTORE_ERROR_SIZE], why[WALLET_WHY_SIZE];
	struct host_identity identity;
	uint8_t key[AES256_KEY_SIZE], check[WALLET_CHECK_SIZE], secret[HOST_SECRET_SIZE];
	const uint8_t *host_secret;
	uint8_t *plaintext;
	size_t len;

	if (view->info.kind == WALLET_KIND_AUTOLOGIN) {
		if (autologin_sealing_key(view->stored_key, view->salt, key) < 0)
			return;
	} else if (view->info.kind == WALLET_KIND_LOCAL_AUTOLOGIN) {
		memset(secret, FUZZ_HOST_SECRET_BYTE, sizeof(secret));
		host_secret = (view->flags & WALLET_FLAG_HOST_SECRET) ? secret : NULL;
		if (host_identity_read(&identity, error) < 0 ||
		    local_host_check(&identity, host_secret, view->salt, check) < 0 ||
		    memcmp(check, view->check, sizeof(check)) != 0 ||
		    local_autologin_sealing_key(view->stored_key, &identity, host_secret,
						view->salt, key) < 0)
			return;
	} else {
		return; /* password wallets: scrypt at a fuzzed cost would only measure scrypt */
	}
	if (wallet_file_unseal(view, key, &plaintext, &len) < 0)
		return;
	if (view->info.content == WALLET_CONTENT_KEYS) {
		struct keyring *ring = NULL;

		if (wallet_payload_decode_keys(plaintext, len, view->info.version,
					       view->info.wallet_id, view->info.generation, &ring,
					       why) == 0) {
			(void)keyring_active(ring, NULL, NULL);
			keyring_free(ring);
		}
	} else {
		struct secret *secrets[WALLET_MAX_SECRETS] = { NULL, NULL };
		size_t count = 0;

		if (wallet_payload_decode_secrets(plaintext, len, secrets, &count, why) == 0)
			for (size_t i = 0; i < count; i++)
				secret_free(secrets[i]);
	}
	secure_free(plaintext);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wallet_file_view view;
	char why[WALLET_WHY_SIZE];
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
	if (wallet_file_parse(copy, size, &view, why) == 0)
		open_payload(&view);
	free(copy);
	return 0;
}
