/*
 * The AUTOLOGIN kind: autologin.wallet, which opens with no password because it carries its own
 * stored key (the sealing key is derived from it and the salt). It is only as safe as its file
 * mode, which is why an auto-login file open to group or others is refused before it is read.
 * Its header records no scrypt cost and no check value, and it never uses the host secret.
 */
#include "keystore/keystore_kind.h"


#include "util/util.h"

static int check_header(const struct wallet_file_view *view, char why[WALLET_WHY_SIZE])
{
	if (view->flags & WALLET_FLAG_HOST_SECRET)
		return keystore_kind_damaged(why, "only a local auto-login file uses the host secret");
	if (view->header[WALLET_OFFSET_SCRYPT_LOG2_N] != 0 || view->info.cost.r != 0 ||
	    view->info.cost.p != 0)
		return keystore_kind_damaged(why, "an auto-login wallet records a scrypt cost");
	if (!keystore_kind_all_zero(view->check, WALLET_CHECK_SIZE))
		return keystore_kind_damaged(why, "an auto-login wallet carries a check value");
	return 0;
}

static int open_file(const struct wallet_file_view *view, struct wallet_read *request,
		     uint8_t key[AES256_KEY_SIZE], char error[KEYSTORE_ERROR_SIZE])
{
	int ret = autologin_sealing_key(view->stored_key, view->salt, key);

	if (ret < 0)
		return keystore_kind_derive_failed(request->path, ret, error);
	return 0;
}

static int seal(const struct password_key *password_key, struct wallet_header_fields *fields,
		struct keystore_kind_material *material, char error[KEYSTORE_ERROR_SIZE])
{
	int ret;

	(void)password_key;
	(void)error;
	ret = crypto_random_bytes(material->salt, WALLET_SALT_SIZE);
	if (ret == 0)
		ret = crypto_random_bytes(material->stored, WALLET_STORED_KEY_SIZE);
	if (ret == 0)
		ret = autologin_sealing_key(material->stored, material->salt, material->key);
	fields->stored_key = material->stored;
	return ret;
}

const struct keystore_kind keystore_kind_autologin = {
	.code = WALLET_KIND_AUTOLOGIN,
	.name = "AUTOLOGIN",
	.file = WALLET_AUTOLOGIN_FILE,
	.backup_prefix = "autologin",
	.paths_offset = offsetof(struct wallet_paths, autologin),
	.wallet_words = "auto-login wallet",
	.store_words = "external password store",
	.auto_login = true,
	.mount_rank = 0,
	.check_header = check_header,
	.open = open_file,
	.seal = seal,
};
