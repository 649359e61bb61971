/*
 * What the daemon calls: keystore_open_for_mount at mount, keystore_reload when its wallet
 * directory changed. Neither ever prompts.
 *
 * At mount: with a password given (the descriptor from --password-fd or --password-file) the
 * password wallet, whatever else the directory holds: the operator who typed a password meant
 * that wallet, and an auto-login file beside it must not win over it. Without one, the auto-login
 * or local auto-login wallet when present, else the password wallet with the password from the
 * external password store.
 *
 * On a reload: the same kind of wallet the daemon mounted with, never another (a daemon started
 * from a password does not switch to an auto-login file that appears later), merged into the
 * keys it holds (keyring_merge): keys are added and the active key may move, but a loaded key
 * is never dropped and the wallet ID never changes.
 *
 * Both check the wallet directory's strict modes first (strict_modes.c).
 *
 * A directory with kmip.wallet is a key-server wallet: at mount and at each reload every key
 * it names is fetched from its servers (kmip_keystore.c); a running daemon keeps the keys it
 * holds when a reload cannot reach any server.
 *
 * A copy that lags behind the password wallet (a tdekey run killed between writing the two)
 * still holds every key the running filesystem can have used, so it is used, with a warning.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keystore/keystore_kind.h"
#include "keystore/kmip_wallet.h"
#include "util/util.h"

static void warn_if_behind(const struct wallet_paths *paths, const struct wallet_read *copy)
{
	struct wallet_read primary = {
		.path = paths->password,
		.expected_kind = WALLET_KIND_PASSWORD,
		.expected_content = WALLET_CONTENT_KEYS,
		.header_only = true,
	};
	char ignored[KEYSTORE_ERROR_SIZE];

	if (!wallet_file_present(paths->password) || wallet_read(&primary, ignored) < 0)
		return;
	if (primary.info.generation != copy->info.generation)
		log_warning("%s is at generation %llu but %s at %llu; tdekey create-autologin "
			    "--wallet %s brings it level",
			    copy->path, (unsigned long long)copy->info.generation, paths->password,
			    (unsigned long long)primary.info.generation, paths->dir);
	wallet_read_release(&primary);
}

static int open_with_password(const struct wallet_paths *paths, int password_fd,
			      struct wallet_read *read, char error[KEYSTORE_ERROR_SIZE])
{
	struct password_source source = {
		.kind = PASSWORD_SOURCE_FD,
		.fd = password_fd,
		.explicit = true,
	};
	const struct keystore_kind *kind = keystore_kind_for_mount(paths);
	struct secret *password = NULL;
	int ret;

	if (kind && kind->read) {
		/* An HSM wallet: what was given is the token's PIN. */
		read->path = keystore_kind_path(kind, paths);
		read->expected_kind = kind->code;
	} else {
		if (!wallet_file_present(paths->password)) {
			wallet_message(error,
				       "a password was given but there is no password wallet %s to "
				       "open with it",
				       paths->password);
			return -ENOENT;
		}
		if (wallet_file_present(paths->autologin) ||
		    wallet_file_present(paths->local_autologin))
			log_info("a password was given: opening %s, not the auto-login wallet "
				 "beside it",
				 paths->password);
		read->path = paths->password;
		read->expected_kind = WALLET_KIND_PASSWORD;
	}
	ret = password_read(&source, NULL, false, &password, error);
	if (ret == 0) {
		read->password = password;
		ret = wallet_read(read, error);
		read->password = NULL;
	}
	secret_free(password);
	return ret;
}

int keystore_open_for_mount(const char *wallet_dir, int password_fd, struct keyring **out,
			    char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_read read = { .expected_content = WALLET_CONTENT_KEYS };
	const struct keystore_kind *kind;
	struct wallet_paths paths;
	struct secret *password = NULL;
	int ret;

	ret = wallet_directory_open(wallet_dir, &paths, error);
	if (ret < 0)
		return ret;
	/* A key-server wallet (kmip_wallet.h): its keys come from the servers it names. */
	if (kmip_wallet_present(paths.dir))
		return kmip_keystore_open_dir(paths.dir, out, error);
	/* Without a password descriptor the present kind of lowest mount rank is opened. */
	kind = password_fd >= 0 ? NULL : keystore_kind_for_mount(&paths);
	if (password_fd >= 0) {
		ret = open_with_password(&paths, password_fd, &read, error);
	} else if (kind && kind->auto_login) {
		read.expected_kind = kind->code;
		read.path = keystore_kind_path(kind, &paths);
		ret = wallet_read(&read, error);
		if (ret == 0)
			warn_if_behind(&paths, &read);
	} else if (kind) {
		read.path = keystore_kind_path(kind, &paths);
		read.expected_kind = kind->code;
		if (wallet_file_present(paths.external_store)) {
			ret = wallet_open_with_external_store(&paths, &read, &password, error);
		} else {
			if (kind->read) {
				wallet_message(error,
					       "HSM wallet %s needs the token's PIN and none was given "
					       "(no external password store, no PIN descriptor)",
					       read.path);
				ret = KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PIN);
			} else {
				wallet_message(error,
					       "wallet %s needs a password and none was given (no "
					       "auto-login wallet, no external password store, no "
					       "password descriptor)",
					       paths.password);
				ret = KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
			}
		}
	} else {
		wallet_message(error, "no wallet in %s (no %s, %s or %s)", paths.dir,
			       WALLET_AUTOLOGIN_FILE, WALLET_LOCAL_AUTOLOGIN_FILE,
			       WALLET_PASSWORD_FILE);
		ret = -ENOENT;
	}
	secret_free(password);
	if (ret < 0)
		return ret;
	*out = read.ring;
	read.ring = NULL;
	wallet_read_release(&read);
	return 0;
}

/* Re-read the wallet file of the kind the daemon mounted with. */
static int reread_same_kind(const struct wallet_paths *paths, const struct keyring *loaded,
			    struct keyring **out, char error[KEYSTORE_ERROR_SIZE])
{
	enum wallet_kind kind = keyring_source_kind(loaded);
	struct wallet_read read = {
		.expected_kind = kind,
		.expected_content = WALLET_CONTENT_KEYS,
	};
	const struct keystore_kind *entry = keystore_kind_of(kind);
	struct secret *password = NULL;
	int ret;

	if (!entry) {
		wallet_message(error, "the keys loaded were not read from a wallet file");
		return -EINVAL;
	}
	read.path = keystore_kind_path(entry, paths);
	if (!wallet_file_present(read.path)) {
		wallet_message(error,
			       "the daemon mounted with %s, which is gone; a wallet of another kind "
			       "is not taken up by a running daemon (remount to use it)",
			       read.path);
		return -ENOENT;
	}
	if (entry->read) {
		/* The token the daemon has open answers for the keys: no PIN again. */
		read.token_from = loaded;
		ret = wallet_read(&read, error);
	} else if (!entry->auto_login) {
		if (!wallet_file_present(paths->external_store)) {
			wallet_message(error,
				       "%s was opened with the password given at mount, and there is "
				       "no external password store to open it again with (an "
				       "auto-login wallet is not used instead); remount with the "
				       "password to use new keys",
				       read.path);
			return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
		}
		ret = wallet_open_with_external_store(paths, &read, &password, error);
		secret_free(password);
	} else {
		ret = wallet_read(&read, error);
	}
	if (ret < 0)
		return ret;
	*out = read.ring;
	read.ring = NULL;
	wallet_read_release(&read);
	return 0;
}

int keystore_reload(const char *wallet_dir, const struct keyring *loaded, struct keyring **out,
		    struct keystore_reload_result *result, char error[KEYSTORE_ERROR_SIZE])
{
	struct keyring_merge_summary summary;
	struct wallet_paths paths;
	struct keyring *fresh;
	char why[KEYSTORE_ERROR_SIZE], kmip_path[PATH_MAX];
	const char *source;
	bool kmip;
	int ret;

	memset(result, 0, sizeof(*result));
	ret = wallet_directory_open(wallet_dir, &paths, error);
	if (ret < 0)
		return ret;
	/* Keys fetched from key servers (no wallet file kind) are fetched again. */
	kmip = keyring_source_kind(loaded) == 0 && kmip_wallet_present(paths.dir);
	if (kmip && kmip_wallet_path(paths.dir, kmip_path) == 0)
		ret = kmip_keystore_open_dir(paths.dir, &fresh, error);
	else
		ret = reread_same_kind(&paths, loaded, &fresh, error);
	if (ret < 0)
		return ret;
	source = kmip ? kmip_path : wallet_paths_of_kind(&paths, keyring_source_kind(loaded));
	ret = keyring_merge(loaded, fresh, out, &summary, why);
	if (ret < 0) {
		wallet_message(error, "%s: %s", source, why);
		keyring_free(fresh);
		return ret;
	}
	keyring_free(fresh);
	result->added = summary.added;
	result->kept = summary.kept;
	result->active_moved = summary.active_moved;
	result->wallet_has_active = summary.wallet_has_active;
	result->active_revoked = summary.active_revoked;
	snprintf(result->path, sizeof(result->path), "%s", source);
	return 0;
}
