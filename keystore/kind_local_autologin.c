/*
 * The LOCAL_AUTOLOGIN kind: local-autologin.wallet, an auto-login file that opens only on the
 * host that made it. Its sealing key is derived from the stored key together with the host
 * identity and this host's secret (host_secret.c), and a host check value in the header tells
 * "made on another host" apart from damage. Files written now always depend on the host secret
 * (WALLET_FLAG_HOST_SECRET); older ones, bound to the public identity alone, still open with a
 * warning that says how to remake them.
 */
#include "keystore/keystore_kind.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static int check_header(const struct wallet_file_view *view, char why[WALLET_WHY_SIZE])
{
	if (view->header[WALLET_OFFSET_SCRYPT_LOG2_N] != 0 || view->info.cost.r != 0 ||
	    view->info.cost.p != 0)
		return keystore_kind_damaged(why, "a local auto-login wallet records a scrypt cost");
	return 0;
}

static void wallet_dir_of(const char *path, char out[PATH_MAX])
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, PATH_MAX, ".");
	else if (slash == path)
		snprintf(out, PATH_MAX, "/");
	else
		snprintf(out, PATH_MAX, "%.*s", (int)(slash - path), path);
}

/* "tdekey create-autologin --local --wallet DIR", or add-secret for a store. */
static void remake_command(const struct wallet_file_view *view, const char *path,
			   char out[PATH_MAX + 64])
{
	char dir[PATH_MAX];

	wallet_dir_of(path, dir);
	snprintf(out, PATH_MAX + 64, "tdekey %s --local --wallet %s",
		 view->info.content == WALLET_CONTENT_SECRET ? "add-secret" : "create-autologin", dir);
}

static int open_file(const struct wallet_file_view *view, struct wallet_read *request,
		     uint8_t key[AES256_KEY_SIZE], char error[KEYSTORE_ERROR_SIZE])
{
	const struct keystore_kind *kind = &keystore_kind_local_autologin;
	bool with_secret = view->flags & WALLET_FLAG_HOST_SECRET;
	const char *what = view->info.content == WALLET_CONTENT_SECRET ? kind->store_words
								      : kind->wallet_words;
	char remake[PATH_MAX + 64], secret_path[PATH_MAX];
	struct host_identity identity;
	uint8_t check[WALLET_CHECK_SIZE];
	uint8_t *secret = NULL;
	int ret;

	remake_command(view, request->path, remake);
	ret = host_identity_read(&identity, error);
	if (ret < 0)
		return ret;
	if (with_secret) {
		secret = secure_alloc(HOST_SECRET_SIZE);
		if (!secret) {
			wallet_message(error, "out of memory reading %s", request->path);
			return -ENOMEM;
		}
		ret = host_secret_load(secret, false, error);
		if (ret == -ENOENT) {
			host_secret_path(secret_path);
			wallet_message(error,
				       "%s %s was made on another host: it needs the host secret %s, "
				       "which this host does not have; make one for this host with: "
				       "%s",
				       what, request->path, secret_path, remake);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_OTHER_HOST);
		}
		if (ret < 0)
			goto out_free_secret;
	} else {
		log_warning("warning: %s %s is bound only to this host's machine ID and host name, "
			    "which every local user can read, so a copy of it opens anywhere those "
			    "are known; make a new one bound to the host secret with: %s",
			    what, request->path, remake);
	}
	ret = local_host_check(&identity, secret, view->salt, check);
	if (ret < 0)
		goto out_report_failure;
	if (!secure_equal(check, view->check, WALLET_CHECK_SIZE)) {
		host_secret_path(secret_path);
		wallet_message(error,
			       "%s %s was made on another host (its machine ID, host name%s%s "
			       "differ from this one's); %s with: %s",
			       what, request->path, with_secret ? " or host secret " : "",
			       with_secret ? secret_path : "",
			       view->info.content == WALLET_CONTENT_SECRET
				       ? "store the password again here"
				       : "make one for this host",
			       remake);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_OTHER_HOST);
		goto out_free_secret;
	}
	ret = local_autologin_sealing_key(view->stored_key, &identity, secret, view->salt, key);
	if (ret == 0)
		goto out_free_secret;
out_report_failure:
	keystore_kind_derive_failed(request->path, ret, error);
out_free_secret:
	secure_free(secret);
	return ret;
}

static int seal(const struct password_key *password_key, struct wallet_header_fields *fields,
		struct keystore_kind_material *material, char error[KEYSTORE_ERROR_SIZE])
{
	struct host_identity identity;
	int ret;

	(void)password_key;
	ret = host_identity_read(&identity, error);
	if (ret < 0)
		return ret;
	/* Every local file written now is bound to the host secret, made here if need be. */
	ret = host_secret_load(material->secret, true, error);
	if (ret < 0)
		return ret;
	fields->flags |= WALLET_FLAG_HOST_SECRET;
	ret = crypto_random_bytes(material->salt, WALLET_SALT_SIZE);
	if (ret == 0)
		ret = crypto_random_bytes(material->stored, WALLET_STORED_KEY_SIZE);
	if (ret == 0)
		ret = local_host_check(&identity, material->secret, material->salt,
				       material->check);
	if (ret == 0)
		ret = local_autologin_sealing_key(material->stored, &identity, material->secret,
						  material->salt, material->key);
	fields->stored_key = material->stored;
	fields->check = material->check;
	return ret;
}

const struct keystore_kind keystore_kind_local_autologin = {
	.code = WALLET_KIND_LOCAL_AUTOLOGIN,
	.name = "LOCAL_AUTOLOGIN",
	.file = WALLET_LOCAL_AUTOLOGIN_FILE,
	.backup_prefix = "local-autologin",
	.paths_offset = offsetof(struct wallet_paths, local_autologin),
	.wallet_words = "local auto-login wallet",
	.store_words = "local external password store",
	.auto_login = true,
	.mount_rank = 1,
	.check_header = check_header,
	.open = open_file,
	.seal = seal,
};
