/*
 * keystore_error: the keystore's own error meanings, kept apart from errno (keystore.h says how
 * the two ranges are told apart), and one short text for each. The texts describe the kind of
 * failure only; the one-line message a call fills in names the file and what to do.
 */
#include "keystore/keystore.h"

#include <string.h>

struct meaning {
	const char *name;
	const char *message;
};

static const struct meaning meanings[KEYSTORE_ERROR_COUNT] = {
	[KEYSTORE_OK] = { "KEYSTORE_OK", "success" },
	[KEYSTORE_ERR_SYSTEM] = { "KEYSTORE_ERR_SYSTEM", "system error" },
	[KEYSTORE_ERR_WRONG_PASSWORD] = { "KEYSTORE_ERR_WRONG_PASSWORD", "wrong wallet password" },
	[KEYSTORE_ERR_DAMAGED] = { "KEYSTORE_ERR_DAMAGED",
				   "wallet is damaged; restore it from a backup" },
	[KEYSTORE_ERR_NEWER_FORMAT] = { "KEYSTORE_ERR_NEWER_FORMAT",
					"wallet was written by a newer version of tdefs" },
	[KEYSTORE_ERR_UNSAFE_MODES] = { "KEYSTORE_ERR_UNSAFE_MODES",
					"wallet file or directory is open to other users" },
	[KEYSTORE_ERR_OTHER_HOST] = { "KEYSTORE_ERR_OTHER_HOST",
				      "local auto-login wallet was made on another host" },
	[KEYSTORE_ERR_NO_SUCH_KEY] = { "KEYSTORE_ERR_NO_SUCH_KEY", "no key matches the key ID" },
	[KEYSTORE_ERR_AMBIGUOUS_KEY_ID] = { "KEYSTORE_ERR_AMBIGUOUS_KEY_ID",
					    "the key ID prefix matches several keys" },
	[KEYSTORE_ERR_COPY_HAS_MORE_KEYS] = { "KEYSTORE_ERR_COPY_HAS_MORE_KEYS",
					      "an auto-login copy holds keys the password "
					      "wallet lacks" },
	[KEYSTORE_ERR_KEY_MISMATCH] = { "KEYSTORE_ERR_KEY_MISMATCH",
					"one key ID holds two different master keys" },
	[KEYSTORE_ERR_KEY_IS_ACTIVE] = { "KEYSTORE_ERR_KEY_IS_ACTIVE",
					 "the ACTIVE master key cannot be removed" },
	[KEYSTORE_ERR_WALLET_FULL] = { "KEYSTORE_ERR_WALLET_FULL",
				       "the wallet holds the most keys it can" },
	[KEYSTORE_ERR_WRONG_SECRET] = { "KEYSTORE_ERR_WRONG_SECRET",
					"wrong transport secret for the key export file" },
	[KEYSTORE_ERR_EXPORT_DAMAGED] = { "KEYSTORE_ERR_EXPORT_DAMAGED",
					  "key export file is damaged or not a key export file" },
	[KEYSTORE_ERR_KEY_CONFLICT] = { "KEYSTORE_ERR_KEY_CONFLICT",
					"a key ID to import is in the wallet with other key "
					"bytes" },
	[KEYSTORE_ERR_WRONG_PIN] = { "KEYSTORE_ERR_WRONG_PIN", "wrong PIN for the HSM token" },
	[KEYSTORE_ERR_HSM_MODULE] = { "KEYSTORE_ERR_HSM_MODULE",
				      "the PKCS#11 module is missing or does not load" },
	[KEYSTORE_ERR_TOKEN_ABSENT] = { "KEYSTORE_ERR_TOKEN_ABSENT",
					"the HSM token is not present" },
	[KEYSTORE_ERR_KEY_NOT_ON_TOKEN] = { "KEYSTORE_ERR_KEY_NOT_ON_TOKEN",
					    "the master key is not on the HSM token" },
	[KEYSTORE_ERR_TOKEN_MECHANISM] = { "KEYSTORE_ERR_TOKEN_MECHANISM",
					   "the HSM token lacks AES-256 key generation or AES-GCM" },
	[KEYSTORE_ERR_TOKEN_FAILED] = { "KEYSTORE_ERR_TOKEN_FAILED",
					"the HSM token failed the operation" },
	[KEYSTORE_ERR_KEY_SERVER_UNREACHABLE] = { "KEYSTORE_ERR_KEY_SERVER_UNREACHABLE",
						  "no key server could be reached" },
	[KEYSTORE_ERR_KEY_SERVER_REFUSED] = { "KEYSTORE_ERR_KEY_SERVER_REFUSED",
					      "the key server refused the operation" },
};
_Static_assert(KEYSTORE_ERR_KEY_SERVER_REFUSED + 1 == KEYSTORE_ERROR_COUNT,
	       "a text for every meaning");

enum keystore_error keystore_error_of(int ret)
{
	if (ret >= 0)
		return KEYSTORE_OK;
	/* Written so that INT_MIN cannot overflow: compare before negating. */
	if (ret <= -KEYSTORE_ERROR_BASE && ret > -(KEYSTORE_ERROR_BASE + KEYSTORE_ERROR_COUNT)) {
		int n = -ret - KEYSTORE_ERROR_BASE;

		if (n > KEYSTORE_ERR_SYSTEM)
			return (enum keystore_error)n;
	}
	return KEYSTORE_ERR_SYSTEM;
}

const char *keystore_error_message(int ret)
{
	enum keystore_error error = keystore_error_of(ret);

	if (error == KEYSTORE_ERR_SYSTEM)
		return ret > -KEYSTORE_ERROR_BASE ? strerror(-ret) : "unknown keystore error";
	return meanings[error].message;
}

const char *keystore_error_name(enum keystore_error error)
{
	if ((unsigned)error >= KEYSTORE_ERROR_COUNT)
		return "KEYSTORE_ERR_UNKNOWN";
	return meanings[error].name;
}
