/*
 * The PASSWORD kind: password.wallet, the primary, sealed under a key derived by scrypt from
 * the DBA's password. The header records the salt and the scrypt cost, and a check value that
 * tells a wrong password apart from damage before the payload is touched; it never carries a
 * stored key, never uses the host secret and never holds an external store (that would lock
 * the password inside the file it opens).
 */
#include "keystore/keystore_kind.h"

#include <errno.h>
#include <string.h>

#include "util/util.h"

static int check_header(const struct wallet_file_view *view, char why[WALLET_WHY_SIZE])
{
	if (view->flags & WALLET_FLAG_HOST_SECRET)
		return keystore_kind_damaged(why, "only a local auto-login file uses the host secret");
	if (view->info.content != WALLET_CONTENT_KEYS)
		return keystore_kind_damaged(why, "a password wallet must hold keys");
	if (!scrypt_cost_valid(&view->info.cost))
		return keystore_kind_damaged(why, "scrypt cost parameters out of range");
	if (!keystore_kind_all_zero(view->stored_key, WALLET_STORED_KEY_SIZE))
		return keystore_kind_damaged(why, "a password wallet carries a stored key");
	return 0;
}

static int open_file(const struct wallet_file_view *view, struct wallet_read *request,
		     uint8_t key[AES256_KEY_SIZE], char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t check[WALLET_CHECK_SIZE];
	int ret;

	if (!request->password) {
		wallet_message(error, "wallet %s needs a password", request->path);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
	}
	ret = password_key_derive(request->password, view->salt, &view->info.cost,
				  &request->password_key);
	if (ret < 0)
		return keystore_kind_derive_failed(request->path, ret, error);
	ret = password_key_check(request->password_key, check);
	if (ret < 0)
		return keystore_kind_derive_failed(request->path, ret, error);
	if (!secure_equal(check, view->check, WALLET_CHECK_SIZE)) {
		wallet_message(error, "wrong password for wallet %s", request->path);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
	}
	ret = password_key_sealing(request->password_key, key);
	if (ret < 0)
		return keystore_kind_derive_failed(request->path, ret, error);
	return 0;
}

static int seal(const struct password_key *password_key, struct wallet_header_fields *fields,
		struct keystore_kind_material *material, char error[KEYSTORE_ERROR_SIZE])
{
	int ret;

	if (!password_key) {
		wallet_message(error, "cannot encode a password wallet without its password key");
		return -EINVAL;
	}
	memcpy(material->salt, password_key->salt, WALLET_SALT_SIZE);
	fields->cost = password_key->cost;
	ret = password_key_check(password_key, material->check);
	if (ret == 0)
		ret = password_key_sealing(password_key, material->key);
	fields->check = material->check;
	return ret;
}

const struct keystore_kind keystore_kind_password = {
	.code = WALLET_KIND_PASSWORD,
	.name = "PASSWORD",
	.file = WALLET_PASSWORD_FILE,
	.backup_prefix = "password",
	.paths_offset = offsetof(struct wallet_paths, password),
	.wallet_words = "password wallet",
	.store_words = NULL,
	.auto_login = false,
	.mount_rank = 2,
	.check_header = check_header,
	.open = open_file,
	.seal = seal,
};
