/*
 * The keys that seal a wallet's payload, one derivation per wallet type. Every derivation ends
 * in HKDF-SHA256 with its own info string, so no key ever serves two purposes: the password
 * check of a password wallet and its sealing key come from the same scrypt output but cannot be
 * computed from each other, and an auto-login key can never open a local auto-login wallet.
 * Local auto-login files made with a host secret use info strings of their own, so no key of
 * such a file equals one of an older file made from the same stored key and host identity.
 */
#include "keystore/wallet_format.h"

#include <errno.h>
#include <string.h>

#define INFO_PASSWORD_SEALING "tdefs wallet v1 password sealing key"
#define INFO_PASSWORD_CHECK "tdefs wallet v1 password check"
#define INFO_AUTOLOGIN_SEALING "tdefs wallet v1 auto-login sealing key"
#define INFO_LOCAL_SEALING "tdefs wallet v1 local auto-login sealing key"
#define INFO_LOCAL_HOST_CHECK "tdefs wallet v1 local auto-login host check"
/* Local auto-login files with WALLET_FLAG_HOST_SECRET: the host secret is part of the input. */
#define INFO_LOCAL_SECRET_SEALING "tdefs wallet v1 local auto-login sealing key with host secret"
#define INFO_LOCAL_SECRET_CHECK "tdefs wallet v1 local auto-login host and secret check"

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

/*
 * Input key material for a local auto-login derivation: the parts in a fixed order, each of a
 * fixed size but the identity, which comes last, so that no two inputs run together.
 */
static int local_input(const uint8_t *stored, const uint8_t *host_secret,
		       const struct host_identity *identity, uint8_t **out, size_t *out_len)
{
	size_t len = (stored ? WALLET_STORED_KEY_SIZE : 0) + (host_secret ? HOST_SECRET_SIZE : 0) +
		     identity->len;
	uint8_t *input = secure_alloc(len ? len : 1);
	size_t at = 0;

	if (!input)
		return -ENOMEM;
	if (stored) {
		memcpy(input, stored, WALLET_STORED_KEY_SIZE);
		at += WALLET_STORED_KEY_SIZE;
	}
	if (host_secret) {
		memcpy(input + at, host_secret, HOST_SECRET_SIZE);
		at += HOST_SECRET_SIZE;
	}
	memcpy(input + at, identity->bytes, identity->len);
	*out = input;
	*out_len = len;
	return 0;
}

int local_host_check(const struct host_identity *identity, const uint8_t *host_secret,
		     const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[WALLET_CHECK_SIZE])
{
	uint8_t *input;
	size_t len;
	int ret;

	/* The check binds the secret too: a copy opened with the identity alone fails it (exit 8). */
	ret = local_input(NULL, host_secret, identity, &input, &len);
	if (ret < 0)
		return ret;
	ret = crypto_hkdf_sha256(input, len, salt, WALLET_SALT_SIZE,
				 host_secret ? INFO_LOCAL_SECRET_CHECK : INFO_LOCAL_HOST_CHECK, out,
				 WALLET_CHECK_SIZE);
	secure_free(input);
	return ret;
}

int local_autologin_sealing_key(const uint8_t stored[WALLET_STORED_KEY_SIZE],
				const struct host_identity *identity, const uint8_t *host_secret,
				const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[AES256_KEY_SIZE])
{
	uint8_t *input;
	size_t len;
	int ret;

	/*
	 * The stored key, the host secret and the host identity together: the identity alone is
	 * public (anyone on the host reads /etc/machine-id), the stored key travels with every
	 * copy of the file, and only the secret stays behind on the host, readable by root alone.
	 */
	ret = local_input(stored, host_secret, identity, &input, &len);
	if (ret < 0)
		return ret;
	ret = crypto_hkdf_sha256(input, len, salt, WALLET_SALT_SIZE,
				 host_secret ? INFO_LOCAL_SECRET_SEALING : INFO_LOCAL_SEALING, out,
				 AES256_KEY_SIZE);
	secure_free(input);
	return ret;
}
