/*
 * Sealing a header's DEKs under a keyring's master key, whichever kind of key it is: MEK bytes
 * held in memory (a file wallet) give cipher suite 1 through header_seal(); a key on an HSM
 * token gives cipher suite 2, where the token itself runs AES-256-GCM over the same
 * associated data (docs/FORMAT.md, "Cipher suite 2"). Apart from header.c so that what
 * links only the header codec (the fuzzers) does not need the keystore.
 */
#include "fs/format.h"
#include "fs/header_internal.h"

#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/keystore.h"

_Static_assert(GCM_NONCE_SIZE == 12 && GCM_TAG_SIZE == 16, "the token seal's sizes");

static int token_seal(struct file_header *header, const struct keyring *ring,
		      const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
		      unsigned count)
{
	uint8_t aad[HEADER_COPY_SIZE];
	int ret;

	header->cipher_suite = CIPHER_SUITE_AES256_XTS_TOKEN_GCM;
	memcpy(header->key_id, key_id, MASTER_KEY_ID_SIZE);
	header->wrapped_length = count * DEK_SIZE;
	/* Random, as for suite 1: a few seals per file, far below GCM's limit per key. */
	ret = crypto_random_bytes(header->nonce, GCM_NONCE_SIZE);
	if (ret < 0)
		return ret;
	header_associated_data(header, aad);
	memset(header->wrapped_keys, 0, sizeof(header->wrapped_keys));
	return keyring_token_seal(ring, key_id, header->nonce, aad, sizeof(aad), deks,
				  header->wrapped_length, header->wrapped_keys, header->tag);
}

int header_seal_keyring(struct file_header *header, const struct keyring *ring,
			const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			unsigned count)
{
	const uint8_t *mek;

	if (count == 0 || count > HEADER_MAX_DEKS)
		return -EINVAL;
	if (keyring_key_on_token(ring, key_id))
		return token_seal(header, ring, key_id, deks, count);
	mek = keyring_find(ring, key_id);
	if (!mek)
		return -ENOKEY;
	return header_seal(header, mek, key_id, deks, count);
}

int header_unseal_keyring(const struct file_header *header, const struct keyring *ring,
			  uint8_t *deks)
{
	uint8_t aad[HEADER_COPY_SIZE];
	const uint8_t *mek;
	int ret;

	if (!keyring_holds(ring, header->key_id))
		return -ENOKEY;
	if (header->wrapped_length == 0 || header->wrapped_length > HEADER_WRAPPED_KEYS_SIZE)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (header->cipher_suite == CIPHER_SUITE_AES256_XTS) {
		mek = keyring_find(ring, header->key_id);
		/* A key that lives on a token never sealed a suite 1 copy. */
		return mek ? header_unseal(header, mek, deks)
			   : FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION);
	}
	if (!keyring_key_on_token(ring, header->key_id))
		return FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION);
	header_associated_data(header, aad);
	ret = keyring_token_open(ring, header->key_id, header->nonce, aad, sizeof(aad),
				 header->wrapped_keys, header->wrapped_length, header->tag, deks);
	return ret == -EBADMSG ? FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION) : ret;
}

static int seal_with_keyring(struct file_header *header, const void *ring,
			     const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			     unsigned count)
{
	return header_seal_keyring(header, ring, key_id, deks, count);
}

int header_create_keyring(struct file_header *header, const struct keyring *ring,
			  const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t dek[DEK_SIZE])
{
	return header_create_sealed(header, seal_with_keyring, ring, key_id, dek);
}

int header_build_image_keyring(struct file_header *header, const struct keyring *ring,
			       const uint8_t dek[DEK_SIZE], uint8_t image[TDEFS_HEADER_SIZE])
{
	return header_build_image_sealed(header, seal_with_keyring, ring, dek, image);
}
