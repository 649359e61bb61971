/*
 * The keys that seal a wallet's payload, one derivation per wallet type. Every derivation ends
 * in HKDF-SHA256 with its own info string, so no key ever serves two purposes: the password
 * check of a password wallet and its sealing key come from the same scrypt output but cannot be
 * computed from each other, and an auto-login key can never open a local auto-login wallet.
 */
#include "keystore/wallet_format.h"

#include <errno.h>
#include <string.h>

#define INFO_PASSWORD_SEALING "tdefs wallet v1 password sealing key"
#define INFO_PASSWORD_CHECK "tdefs wallet v1 password check"
#define INFO_AUTOLOGIN_SEALING "tdefs wallet v1 auto-login sealing key"
#define INFO_LOCAL_SEALING "tdefs wallet v1 local auto-login sealing key"
#define INFO_LOCAL_HOST_CHECK "tdefs wallet v1 local auto-login host check"

int password_key_derive(const struct secret *password, const uint8_t salt[WALLET_SALT_SIZE],
			const struct scrypt_cost *cost, struct password_key **out)
{
	struct password_key *key;
	int ret;

	if (!scrypt_cost_valid(cost))
		return -EINVAL;
	key = secure_alloc(sizeof(*key));
	if (!key)
		return -ENOMEM;
	key->cost = *cost;
	memcpy(key->salt, salt, WALLET_SALT_SIZE);
	ret = crypto_scrypt(password->bytes, password->len, salt, WALLET_SALT_SIZE, cost->log2_n,
			    cost->r, cost->p, key->master, sizeof(key->master));
	if (ret < 0) {
		secure_free(key);
		return ret;
	}
	*out = key;
	return 0;
}

void password_key_free(struct password_key *key)
{
	secure_free(key);
}

int password_key_sealing(const struct password_key *key, uint8_t out[AES256_KEY_SIZE])
{
	return crypto_hkdf_sha256(key->master, sizeof(key->master), key->salt, WALLET_SALT_SIZE,
				  INFO_PASSWORD_SEALING, out, AES256_KEY_SIZE);
}

int password_key_check(const struct password_key *key, uint8_t out[WALLET_CHECK_SIZE])
{
	return crypto_hkdf_sha256(key->master, sizeof(key->master), key->salt, WALLET_SALT_SIZE,
				  INFO_PASSWORD_CHECK, out, WALLET_CHECK_SIZE);
}

int autologin_sealing_key(const uint8_t stored[WALLET_STORED_KEY_SIZE],
			  const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[AES256_KEY_SIZE])
{
	return crypto_hkdf_sha256(stored, WALLET_STORED_KEY_SIZE, salt, WALLET_SALT_SIZE,
				  INFO_AUTOLOGIN_SEALING, out, AES256_KEY_SIZE);
}

int local_host_check(const struct host_identity *identity, const uint8_t salt[WALLET_SALT_SIZE],
		     uint8_t out[WALLET_CHECK_SIZE])
{
	return crypto_hkdf_sha256(identity->bytes, identity->len, salt, WALLET_SALT_SIZE,
				  INFO_LOCAL_HOST_CHECK, out, WALLET_CHECK_SIZE);
}

int local_autologin_sealing_key(const uint8_t stored[WALLET_STORED_KEY_SIZE],
				const struct host_identity *identity,
				const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[AES256_KEY_SIZE])
{
	/*
	 * The stored key and the host identity together: the identity alone is public (anyone on
	 * the host reads /etc/machine-id), the stored key alone would open a copy anywhere.
	 */
	size_t len = WALLET_STORED_KEY_SIZE + identity->len;
	uint8_t *input = secure_alloc(len);
	int ret;

	if (!input)
		return -ENOMEM;
	memcpy(input, stored, WALLET_STORED_KEY_SIZE);
	memcpy(input + WALLET_STORED_KEY_SIZE, identity->bytes, identity->len);
	ret = crypto_hkdf_sha256(input, len, salt, WALLET_SALT_SIZE, INFO_LOCAL_SEALING, out,
				 AES256_KEY_SIZE);
	secure_free(input);
	return ret;
}
