/*
 * forge_wallet: what a local attacker builds to plant a wallet. It writes an auto-login wallet
 * file that claims a chosen wallet ID (anyone can learn it: it is in every wallet's clear
 * header, in .tdefs.conf and in tdekey status) and holds one master key of the attacker's own,
 * ACTIVE, in the default container. The security tests run it as an unprivileged user and show
 * that the daemon never takes such a file up.
 *
 * Usage: forge_wallet WALLET_ID OUT_FILE
 * Prints the forged master key's ID and its MEK (hex), one per line, so that the test can play
 * the attacker decrypting with it. Exit 0, or 1 with a message.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "keystore/wallet.h"
#include "keystore/wallet_internal.h"
#include "util/util.h"

int main(int argc, char *argv[])
{
	char error[KEYSTORE_ERROR_SIZE] = "", key_text[KEY_ID_TEXT_SIZE];
	uint8_t wallet_id[KEY_ID_SIZE], *bytes;
	const struct mek_record *record;
	struct keyring *ring;
	size_t index, len;
	int ret;

	if (argc != 3 || key_id_parse(argv[1], wallet_id) < 0) {
		fprintf(stderr, "usage: forge_wallet WALLET_ID OUT_FILE\n");
		return 1;
	}
	ret = keyring_new(wallet_id, WALLET_DEFAULT_CONTAINER, &ring);
	if (ret == 0)
		ret = keyring_generate(ring, "forged", true, (int64_t)time(NULL), &index);
	if (ret == 0) {
		keyring_set_generation(ring, 1000);
		ret = wallet_encode_keys(WALLET_KIND_AUTOLOGIN, ring, NULL, &bytes, &len, error);
	}
	if (ret < 0) {
		fprintf(stderr, "forge_wallet: %s\n", error[0] ? error : strerror(-ret));
		return 1;
	}
	ret = write_file_atomic(argv[2], bytes, len, 0600);
	secure_free(bytes);
	if (ret < 0) {
		fprintf(stderr, "forge_wallet: %s: %s\n", argv[2], strerror(-ret));
		keyring_free(ring);
		return 1;
	}
	record = keyring_record(ring, index);
	key_id_format(record->id, key_text);
	printf("%s\n", key_text);
	for (size_t i = 0; i < MEK_SIZE; i++)
		printf("%02x", record->mek[i]);
	printf("\n");
	keyring_free(ring);
	return 0;
}
