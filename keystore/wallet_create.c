/*
 * Creating a wallet directory: the directory (0700) and its backup folder, a fresh wallet ID,
 * usually the first MEK, and the primary wallet with, on request, its auto-login copy. The
 * directory and its parents must pass strict modes (strict_modes.c) before anything is written:
 * a wallet made in a directory others can write would be theirs to replace.
 *
 * Without a password, create makes an auto-login (or local auto-login) wallet and nothing else:
 * the one-command, no-prompt setup a test rig or a host without an operator needs. Such a wallet
 * is its own primary and is changed without a password; tdekey change-password adds a password
 * wallet to it later.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "keystore/hsm_wallet.h"
#include "keystore/keystore_kind.h"
#include "keystore/wallet_format.h"
#include "util/util.h"

static int check_options(const struct wallet_create_options *options, const struct secret *password,
			 char error[KEYSTORE_ERROR_SIZE])
{
	if (!password && !options->auto_login) {
		wallet_message(error, "a wallet without a password must be an auto-login wallet");
		return -EINVAL;
	}
	if (options->local && !options->auto_login) {
		wallet_message(error, "a local wallet is a kind of auto-login wallet");
		return -EINVAL;
	}
	if (!wallet_container_valid(options->container)) {
		wallet_message(
			error,
			"container name '%.80s' must be 1 to %d letters, digits, '_', '-', '.' "
			"or '$'",
			options->container, WALLET_CONTAINER_MAX);
		return -EINVAL;
	}
	if (options->tag && !wallet_tag_valid(options->tag)) {
		wallet_message(error, "tag must be at most %d printable ASCII characters",
			       WALLET_TAG_MAX);
		return -EINVAL;
	}
	if (password && !scrypt_cost_valid(&options->cost)) {
		wallet_message(error, "scrypt cost out of range");
		return -EINVAL;
	}
	if (options->keys && options->make_key) {
		wallet_message(error, "a wallet made from another's keys takes no new key");
		return -EINVAL;
	}
	return password ? password_check_new(password, error) : 0;
}

/*
 * A reverse migration's keys, as the ring from has them. What a wallet file cannot say is
 * refused or translated here, so the file written reads back: origin IMPORTED for a key the
 * file's format has no origin for, and the activation time a file requires of a key that has
 * been active when the source kept none (its creation).
 */
static int add_keys(struct keyring *ring, const struct keyring *from,
		    char error[KEYSTORE_ERROR_SIZE])
{
	char id[KEY_ID_TEXT_SIZE];
	struct mek_record *copy;
	int ret = 0;

	if (keyring_count(from) > WALLET_MAX_KEYS) {
		wallet_message(error, "the wallet would hold %zu keys, more than %d",
			       keyring_count(from), WALLET_MAX_KEYS);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WALLET_FULL);
	}
	copy = secure_alloc(sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < keyring_count(from) && ret == 0; i++) {
		*copy = *keyring_record(from, i);
		key_id_format(copy->id, id);
		if (copy->on_token) {
			wallet_message(error, "master key %s is on an HSM token and cannot be "
					      "written to a wallet file",
				       id);
			ret = -EOPNOTSUPP;
			break;
		}
		if (copy->origin != MEK_ORIGIN_LOCAL && copy->origin != MEK_ORIGIN_IMPORTED)
			copy->origin = MEK_ORIGIN_IMPORTED;
		if (copy->state != MEK_STATE_ACTIVE && copy->state != MEK_STATE_RETIRED &&
		    copy->state != MEK_STATE_PREACTIVE) {
			wallet_message(error, "master key %s has an unknown state", id);
			ret = -EINVAL;
			break;
		}
		if (copy->state == MEK_STATE_PREACTIVE)
			copy->activation_time = 0;
		else if (copy->activation_time == 0)
			copy->activation_time = copy->creation_time ? copy->creation_time : 1;
		if (!copy->container[0])
			snprintf(copy->container, sizeof(copy->container), "%s",
				 keyring_container(ring));
		if (!wallet_container_valid(copy->container) || !wallet_tag_valid(copy->tag) ||
		    (copy->creator[0] && !wallet_creator_valid(copy->creator))) {
			wallet_message(error, "master key %s has a bad container, tag or creator",
				       id);
			ret = -EINVAL;
			break;
		}
		if (copy->state == MEK_STATE_ACTIVE &&
		    keyring_holds_active(ring, copy->container)) {
			wallet_message(error, "master key %s is a second ACTIVE key of container %s",
				       id, copy->container);
			ret = -EINVAL;
			break;
		}
		copy->linked = false;
		copy->revoked = false;
		copy->token_slot = 0;
		copy->backed_up = false; /* no backup of the new wallet holds it yet */
		ret = keyring_append(ring, copy);
		if (ret == -EEXIST)
			wallet_message(error, "master key %s is there twice", id);
		else if (ret < 0)
			wallet_message(error, "cannot add master key %s: %s", id,
				       keystore_error_message(ret));
	}
	secure_free(copy);
	return ret;
}

static int make_directory(const char *path, char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	int ret;

	if (mkdir(path, 0700) == 0)
		return fsync_parent_directory(path);
	ret = -errno;
	if (ret == -EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	wallet_message(error, "cannot create wallet directory %s: %s", path,
		       ret == -EEXIST ? "a file of that name exists" : keystore_error_message(ret));
	return ret == -EEXIST ? -ENOTDIR : ret;
}

static int write_wallet(enum wallet_kind kind, const char *path, const struct keyring *ring,
			const struct password_key *password_key, char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t *bytes;
	size_t len;
	int ret;

	ret = wallet_encode_keys(kind, ring, password_key, &bytes, &len, error);
	if (ret < 0)
		return ret;
	ret = wallet_write_bytes(path, bytes, len, error);
	secure_free(bytes);
	return ret;
}

/* The directory made and checked and locked, with no wallet in it yet. */
static int prepare_directory(const struct wallet_paths *paths, int *lock_fd,
			     char error[KEYSTORE_ERROR_SIZE])
{
	int ret = make_directory(paths->dir, error);

	/* A directory that was there already, or a parent, may be open to others. */
	if (ret == 0)
		ret = wallet_directory_check(paths, error);
	if (ret == 0)
		ret = wallet_lock(paths, lock_fd, error);
	if (ret < 0)
		return ret;
	wallet_remove_stale_temporaries(paths);
	if (wallet_file_present(paths->password) || wallet_file_present(paths->autologin) ||
	    wallet_file_present(paths->local_autologin) || wallet_file_present(paths->hsm)) {
		wallet_message(error,
			       "a wallet already exists in %s; tdekey status --wallet %s shows it",
			       paths->dir, paths->dir);
		return -EEXIST;
	}
	return make_directory(paths->backup_dir, error);
}

/* The new wallet's ID (the one asked for, or a random one) and an empty ring of it. */
static int new_ring(const struct wallet_create_options *options,
		    struct wallet_create_result *result, struct keyring **ring,
		    char error[KEYSTORE_ERROR_SIZE])
{
	int ret = 0;

	if (options->wallet_id)
		memcpy(result->wallet_id, options->wallet_id, KEY_ID_SIZE);
	else
		ret = crypto_random_bytes(result->wallet_id, KEY_ID_SIZE);
	if (ret == 0)
		ret = keyring_new(result->wallet_id, options->container, ring);
	if (ret < 0)
		wallet_message(error, "cannot set up the key ring: %s", keystore_error_message(ret));
	return ret;
}

int wallet_create(const char *dir, const struct wallet_create_options *options,
		  const struct secret *password, struct wallet_create_result *result,
		  char error[KEYSTORE_ERROR_SIZE])
{
	enum wallet_kind autologin_kind =
		options->local ? WALLET_KIND_LOCAL_AUTOLOGIN : WALLET_KIND_AUTOLOGIN;
	struct password_key *password_key = NULL;
	uint8_t salt[WALLET_SALT_SIZE];
	struct wallet_paths paths;
	struct keyring *ring = NULL;
	size_t key_index;
	int lock_fd = -1, ret;

	memset(result, 0, sizeof(*result));
	ret = check_options(options, password, error);
	if (ret < 0)
		return ret;
	ret = wallet_paths_init(dir, &paths);
	if (ret < 0) {
		wallet_message(error, "wallet directory name is too long or empty");
		return ret;
	}
	ret = prepare_directory(&paths, &lock_fd, error);
	if (ret < 0)
		goto out_unlock;
	ret = new_ring(options, result, &ring, error);
	if (ret < 0)
		goto out_unlock;
	keyring_set_generation(ring, 1);
	if (options->keys) {
		ret = add_keys(ring, options->keys, error);
		if (ret < 0)
			goto out_free_ring;
	}
	if (options->make_key) {
		ret = keyring_generate(ring, options->tag, true, wallet_now(), &key_index);
		if (ret < 0) {
			wallet_message(error, "cannot generate a master key: %s", keystore_error_message(ret));
			goto out_free_ring;
		}
		memcpy(result->key_id, keyring_record(ring, key_index)->id, KEY_ID_SIZE);
		result->made_key = true;
	}

	if (password) {
		ret = crypto_random_bytes(salt, sizeof(salt));
		if (ret == 0)
			ret = password_key_derive(password, salt, &options->cost, &password_key);
		if (ret < 0) {
			wallet_message(error, "cannot derive the password key: %s", keystore_error_message(ret));
			goto out_free_ring;
		}
		ret = write_wallet(WALLET_KIND_PASSWORD, paths.password, ring, password_key, error);
		if (ret < 0)
			goto out_free_password_key;
		fault_point("wallet:primary-written");
		result->primary = WALLET_KIND_PASSWORD;
		if (options->auto_login) {
			ret = write_wallet(autologin_kind,
					   wallet_paths_of_kind(&paths, autologin_kind), ring, NULL,
					   error);
			if (ret < 0)
				goto out_free_password_key;
			fault_point("wallet:copy-written");
			result->made_copy = true;
			result->copy = autologin_kind;
		}
	} else {
		ret = write_wallet(autologin_kind, wallet_paths_of_kind(&paths, autologin_kind),
				   ring, NULL, error);
		if (ret < 0)
			goto out_free_ring;
		fault_point("wallet:primary-written");
		result->primary = autologin_kind;
	}

out_free_password_key:
	password_key_free(password_key);
out_free_ring:
	keyring_free(ring);
out_unlock:
	wallet_unlock(lock_fd);
	return ret;
}

int wallet_create_hsm(const char *dir, const struct wallet_create_options *options,
		      const char *module, const char *token_label, const char *token_serial,
		      const struct secret *pin, struct wallet_create_result *result,
		      char error[KEYSTORE_ERROR_SIZE])
{
	struct hsm_wallet_identity identity;
	struct keystore_token *token = NULL;
	struct wallet_paths paths;
	struct keyring *ring = NULL;
	char why[WALLET_WHY_SIZE];
	size_t key_index;
	int lock_fd = -1, ret;

	memset(result, 0, sizeof(*result));
	memset(&identity, 0, sizeof(identity));
	if (strlen(module) > HSM_MODULE_PATH_MAX ||
	    strlen(token_label) > HSM_TOKEN_LABEL_MAX ||
	    (token_serial && strlen(token_serial) > HSM_TOKEN_SERIAL_MAX)) {
		wallet_message(error, "module path, token label or serial too long (at most %d, "
			       "%d and %d bytes)", HSM_MODULE_PATH_MAX, HSM_TOKEN_LABEL_MAX,
			       HSM_TOKEN_SERIAL_MAX);
		return -EINVAL;
	}
	strcpy(identity.module, module);
	strcpy(identity.token_label, token_label);
	strcpy(identity.token_serial, token_serial ? token_serial : "");
	if (hsm_identity_check(&identity, why) < 0) {
		wallet_message(error, "%s", why);
		return -EINVAL;
	}
	if (!wallet_container_valid(options->container) ||
	    (options->tag && !wallet_tag_valid(options->tag))) {
		wallet_message(error, "bad container name or tag");
		return -EINVAL;
	}
	ret = wallet_paths_init(dir, &paths);
	if (ret < 0) {
		wallet_message(error, "wallet directory name is too long or empty");
		return ret;
	}
	ret = prepare_directory(&paths, &lock_fd, error);
	if (ret < 0)
		goto out_unlock;
	/* The token first: a wrong PIN or a missing module leaves no file behind. */
	ret = hsm_token_open(&identity, pin, NULL, 0, &token, error);
	if (ret < 0)
		goto out_unlock;
	ret = new_ring(options, result, &ring, error);
	if (ret < 0) {
		hsm_token_ops_get()->release(token);
		goto out_unlock;
	}
	keyring_attach_token(ring, hsm_token_ops_get(), token);
	keyring_set_source_kind(ring, WALLET_KIND_HSM);
	keyring_set_generation(ring, 1);
	/* A migration: the source's keys stay usable, the new key on the token wraps new files. */
	if (options->link) {
		ret = wallet_hsm_link(ring, options->link, false, error);
		if (ret < 0)
			goto out_free_ring;
	}
	if (options->make_key) {
		ret = keyring_generate(ring, options->tag, true, wallet_now(), &key_index);
		if (ret < 0) {
			if (ret == -EOPNOTSUPP || keystore_error_of(ret) == KEYSTORE_ERR_SYSTEM)
				wallet_message(error, "cannot generate a master key on the token: %s",
					       keystore_error_message(ret));
			else
				wallet_message(error, "cannot generate a master key on HSM token "
					       "'%s': %s", token_label, keystore_error_message(ret));
			goto out_free_ring;
		}
		memcpy(result->key_id, keyring_record(ring, key_index)->id, KEY_ID_SIZE);
		result->made_key = true;
	}
	ret = write_wallet(WALLET_KIND_HSM, paths.hsm, ring, NULL, error);
	if (ret < 0)
		goto out_free_ring;
	fault_point("wallet:primary-written");
	result->primary = WALLET_KIND_HSM;

out_free_ring:
	keyring_free(ring);
out_unlock:
	wallet_unlock(lock_fd);
	return ret;
}
