/*
 * The external password store: an auto-login (or local auto-login) protected file holding the
 * password of password.wallet, so that a service can open the password wallet without a prompt,
 * as Oracle's EXTERNAL STORE does. It is a secret store, not a key wallet: it never holds MEKs,
 * and losing it only means typing the password again.
 *
 * While change-password runs the store briefly holds two passwords (old and new); opening tries
 * each, so a crash at any point leaves a store that still opens the wallet.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/wallet_format.h"
#include "util/util.h"

int wallet_external_store_read(const struct wallet_paths *paths, struct secret *secrets[2],
			       size_t *count, char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_read read = {
		.path = paths->external_store,
		.expected_content = WALLET_CONTENT_SECRET,
	};
	int ret;

	if (!wallet_file_present(paths->external_store)) {
		wallet_message(
			error,
			"no external password store %s; store the password with: tdekey add-secret "
			"--wallet %s",
			paths->external_store, paths->dir);
		return -ENOENT;
	}
	ret = wallet_read(&read, error);
	if (ret < 0)
		return ret;
	/* Hand the secrets over; the rest of the read is released. */
	for (size_t i = 0; i < 2; i++) {
		secrets[i] = read.secrets[i];
		read.secrets[i] = NULL;
	}
	*count = read.secret_count;
	read.secret_count = 0;
	wallet_read_release(&read);
	return 0;
}

int wallet_open_with_external_store(const struct wallet_paths *paths, struct wallet_read *read,
				    struct secret **password, char error[KEYSTORE_ERROR_SIZE])
{
	struct secret *secrets[2] = { NULL, NULL };
	size_t count = 0;
	int ret;

	ret = wallet_external_store_read(paths, secrets, &count, error);
	/* No store means no password for the wallet, which is what the caller has to hear. */
	if (ret == -ENOENT)
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
	if (ret < 0)
		return ret;
	ret = KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
	for (size_t i = 0; i < count && (ret == KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD) ||
					 ret == KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PIN));
	     i++) {
		read->password = secrets[i];
		ret = wallet_read(read, error);
		read->password = NULL;
		if (ret == 0) {
			*password = secrets[i];
			secrets[i] = NULL;
		}
	}
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD))
		wallet_message(
			error,
			"wrong password for wallet %s: the external password store %s holds a "
			"password that does not open it; store the right one with: tdekey "
			"add-secret --wallet %s",
			paths->password, paths->external_store, paths->dir);
	for (size_t i = 0; i < 2; i++)
		secret_free(secrets[i]);
	return ret;
}

/* The store's bytes as they are, damaged or not, for the backup before it is replaced. */
static int backup_store(const struct wallet_paths *paths, const char *backup_id,
			char written[PATH_MAX], char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_read header = {
		.path = paths->external_store,
		.expected_content = WALLET_CONTENT_SECRET,
		.header_only = true,
	};
	char ignored[KEYSTORE_ERROR_SIZE];
	uint64_t generation = 0;
	uint8_t *data;
	size_t len;
	int ret;

	if (wallet_read(&header, ignored) == 0)
		generation = header.info.generation;
	wallet_read_release(&header);
	ret = read_small_file(paths->external_store, WALLET_MAX_FILE_SIZE, &data, &len);
	if (ret < 0) {
		wallet_message(error, "cannot read %s for its backup: %s", paths->external_store,
			       keystore_error_message(ret));
		return ret;
	}
	ret = wallet_backup_write(paths->backup_dir, "external-store", generation, backup_id, data,
				  len, written, error);
	secure_wipe(data, len);
	free(data);
	return ret;
}

static int lock_directory(const char *dir, struct wallet_paths *paths, int *lock_fd,
			  char error[KEYSTORE_ERROR_SIZE])
{
	int ret;

	ret = wallet_directory_open(dir, paths, error);
	if (ret < 0)
		return ret;
	ret = wallet_lock(paths, lock_fd, error);
	if (ret == 0)
		wallet_remove_stale_temporaries(paths);
	return ret;
}

int wallet_add_secret(const char *dir, const struct secret *password, bool local,
		      const char *backup_id, char written_backup[PATH_MAX],
		      char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_paths paths;
	struct wallet_read wallet = {
		.expected_kind = WALLET_KIND_PASSWORD,
		.expected_content = WALLET_CONTENT_KEYS,
		.password = password,
	};
	struct secret *stored[1] = { (struct secret *)password };
	uint8_t *bytes;
	size_t len;
	int lock_fd = -1, ret;

	written_backup[0] = '\0';
	ret = lock_directory(dir, &paths, &lock_fd, error);
	if (ret < 0)
		return ret;
	/* An HSM wallet's store holds the token's PIN. */
	if (wallet_file_present(paths.hsm)) {
		wallet.path = paths.hsm;
		wallet.expected_kind = WALLET_KIND_HSM;
	} else if (!wallet_file_present(paths.password)) {
		wallet_message(error,
			       "no password wallet %s: an external store holds the password of the "
			       "password wallet",
			       paths.password);
		ret = -ENOENT;
		goto out_unlock;
	} else {
		wallet.path = paths.password;
	}
	/* Never store a password (or PIN) that does not open the wallet. */
	ret = wallet_read(&wallet, error);
	if (ret < 0)
		goto out_unlock;
	if (wallet_file_present(paths.external_store)) {
		ret = backup_store(&paths, backup_id, written_backup, error);
		if (ret < 0)
			goto out_release_wallet;
		fault_point("wallet:external-store-backup-written");
	}
	ret = wallet_encode_secrets(local ? WALLET_KIND_LOCAL_AUTOLOGIN : WALLET_KIND_AUTOLOGIN,
				    wallet.info.wallet_id, wallet.info.generation, stored, 1,
				    &bytes, &len, error);
	if (ret < 0)
		goto out_release_wallet;
	ret = wallet_write_bytes(paths.external_store, bytes, len, error);
	secure_free(bytes);
	if (ret == 0)
		fault_point("wallet:external-store-written");
out_release_wallet:
	wallet_read_release(&wallet);
out_unlock:
	wallet_unlock(lock_fd);
	return ret;
}

int wallet_delete_secret(const char *dir, const char *backup_id, char written_backup[PATH_MAX],
			 char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_paths paths;
	int lock_fd = -1, ret;

	written_backup[0] = '\0';
	ret = lock_directory(dir, &paths, &lock_fd, error);
	if (ret < 0)
		return ret;
	if (!wallet_file_present(paths.external_store)) {
		wallet_message(error, "no external password store %s", paths.external_store);
		ret = -ENOENT;
		goto out_unlock;
	}
	ret = backup_store(&paths, backup_id, written_backup, error);
	if (ret < 0)
		goto out_unlock;
	fault_point("wallet:external-store-backup-written");
	ret = wallet_remove_file(paths.external_store, error);
	if (ret == 0)
		fault_point("wallet:old-file-removed");
out_unlock:
	wallet_unlock(lock_fd);
	return ret;
}
