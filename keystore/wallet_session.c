/*
 * Sessions: open the wallet a command works on, and commit changes to it in an order that
 * survives a crash at any instant.
 *
 * A change always follows the same sequence, each step durable before the next (fault points
 * mark the boundaries for the crash test):
 *   1. under the directory lock, a backup of the primary wallet as it was read;
 *   2. when the password changes and an external store exists, the store holds both passwords;
 *   3. the new primary wallet replaces the old by rename;
 *   4. the auto-login copies are rewritten from the same key ring;
 *   5. the store keeps only the new password.
 * A crash before 3 leaves the old wallet (and a backup of it); after 3 the new one, with copies
 * that may lag one generation behind: they still hold a subset of the keys, so the daemon
 * mounts with them, and the next change (or create-autologin) brings them level.
 *
 * Deleting a key (tdekey delete-key) swaps 3 and 4: the copies first, so that at every instant
 * each copy's keys are a subset of the primary's, as check_copies() and the daemon expect.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "keystore/keystore_kind.h"
#include "keystore/wallet_format.h"
#include "util/util.h"

struct wallet_session {
	struct wallet_paths paths;
	enum wallet_access access;
	int lock_fd;
	enum wallet_kind kind; /* of the wallet opened: the primary for a change */
	char path[PATH_MAX];
	struct keyring *ring;
	uint8_t *raw; /* the file as read, for the backup before a change */
	size_t raw_len;
	uint64_t generation_at_open;
	size_t keys_at_open;
	struct password_key *password_key; /* password wallets: the scrypt output */
	struct secret *password;	   /* password wallets: the password that opened it */
	char backup_path[PATH_MAX];
};

struct commit_plan {
	enum wallet_kind new_kind;
	struct password_key *new_password_key; /* taken over by the session on success */
	const struct secret *new_password;
	bool backup_before;    /* back up the primary as read */
	const char *backup_to; /* back up the new primary into this directory instead */
	const char *backup_id;
	const char *remove_path; /* a wallet file to remove after the new primary is in place */
	bool copies_first;	 /* a key was removed: rewrite the copies before the primary */
};

static const char *kind_path(const struct wallet_session *session, enum wallet_kind kind)
{
	return wallet_paths_of_kind(&session->paths, kind);
}

struct keyring *wallet_session_keyring(struct wallet_session *session)
{
	return session->ring;
}

enum wallet_kind wallet_session_kind(const struct wallet_session *session)
{
	return session->kind;
}

const char *wallet_session_path(const struct wallet_session *session)
{
	return session->path;
}

const struct wallet_paths *wallet_session_paths(const struct wallet_session *session)
{
	return &session->paths;
}

const char *wallet_session_backup_path(const struct wallet_session *session)
{
	return session->backup_path;
}

void wallet_session_close(struct wallet_session *session)
{
	if (!session)
		return;
	keyring_free(session->ring);
	secure_free(session->raw);
	password_key_free(session->password_key);
	secret_free(session->password);
	wallet_unlock(session->lock_fd);
	free(session);
}

static int open_password_wallet(struct wallet_session *session,
				const struct password_source *source, struct wallet_read *read,
				char error[KEYSTORE_ERROR_SIZE])
{
	static const struct password_source prompt = { .kind = PASSWORD_SOURCE_PROMPT };
	char question[PATH_MAX + 64];
	int ret;

	if (!source)
		source = &prompt;
	if (source->kind == PASSWORD_SOURCE_EXTERNAL_STORE)
		return wallet_open_with_external_store(&session->paths, read, &session->password,
						       error);
	/* A kind that names what opens it (an HSM wallet: its token's PIN) is asked in its words. */
	if (keystore_kind_of(session->kind) && keystore_kind_of(session->kind)->secret_words)
		snprintf(question, sizeof(question), "%s for wallet %s: ",
			 keystore_kind_of(session->kind)->secret_words, session->path);
	else
		snprintf(question, sizeof(question), "Password for wallet %s: ",
			 session->paths.password);
	ret = password_read(source, question, false, &session->password, error);
	if (ret < 0)
		return ret;
	read->password = session->password;
	return wallet_read(read, error);
}

/*
 * Before a change rewrites the copies from the password wallet, make sure no copy holds a key
 * the password wallet lacks, as happens when password.wallet was restored from an older backup
 * while files were already wrapped under a newer key: rewriting the copy would lose that key.
 */
static int check_copies(const struct wallet_session *session, char error[KEYSTORE_ERROR_SIZE])
{
	char ignored[KEYSTORE_ERROR_SIZE];

	for (size_t i = 0; i < keystore_kind_count(); i++) {
		const struct keystore_kind *copy = keystore_kind_at(i);
		struct wallet_read read = {
			.path = keystore_kind_path(copy, &session->paths),
			.expected_kind = copy->code,
			.expected_content = WALLET_CONTENT_KEYS,
		};
		char id_text[KEY_ID_TEXT_SIZE];
		int ret = 0;

		/* The copies are the auto-login kinds. */
		if (!copy->auto_login || !wallet_file_present(read.path))
			continue;
		/* A copy that does not open is rewritten; nothing can be lost from it. */
		if (wallet_read(&read, ignored) < 0)
			continue;
		for (size_t k = 0; k < keyring_count(read.ring) && ret == 0; k++) {
			const struct mek_record *record = keyring_record(read.ring, k);

			if (keyring_find(session->ring, record->id))
				continue;
			key_id_format(record->id, id_text);
			wallet_message(
				error,
				"%s holds key %s that %s lacks (was %s restored from an older "
				"backup?); changing the wallet would drop it from the copy: decide "
				"which is right and move the other away first",
				read.path, id_text, session->paths.password, WALLET_PASSWORD_FILE);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_COPY_HAS_MORE_KEYS);
		}
		wallet_read_release(&read);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int wallet_session_open(const char *dir, enum wallet_access access,
			const struct password_source *source, struct wallet_session **out,
			char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_session *session;
	struct wallet_read read = { .expected_content = WALLET_CONTENT_KEYS };
	const struct keystore_kind *kind;
	struct stat st;
	int ret;

	session = calloc(1, sizeof(*session));
	if (!session) {
		wallet_message(error, "out of memory");
		return -ENOMEM;
	}
	session->lock_fd = -1;
	session->access = access;
	ret = wallet_paths_init(dir, &session->paths);
	if (ret < 0) {
		wallet_message(error, "wallet directory name is too long or empty");
		goto out_close;
	}
	if (stat(session->paths.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		ret = -ENOENT;
		wallet_message(error,
			       "no wallet in %s: no such directory; create one with: tdekey create "
			       "--wallet %s",
			       session->paths.dir, session->paths.dir);
		goto out_close;
	}
	/* Before the lock file is made or anything is read: who else could write here? */
	ret = wallet_directory_check(&session->paths, error);
	if (ret < 0)
		goto out_close;
	if (access == WALLET_FOR_CHANGE) {
		ret = wallet_lock(&session->paths, &session->lock_fd, error);
		if (ret < 0)
			goto out_close;
		wallet_remove_stale_temporaries(&session->paths);
	}
	kind = keystore_kind_for_mount(&session->paths);
	if (!kind) {
		ret = -ENOENT;
		wallet_message(error,
			       "no wallet in %s (no %s, %s or %s); create one with: tdekey create "
			       "--wallet %s",
			       session->paths.dir, WALLET_PASSWORD_FILE, WALLET_AUTOLOGIN_FILE,
			       WALLET_LOCAL_AUTOLOGIN_FILE, session->paths.dir);
		goto out_close;
	}
	/*
	 * Changes go to the primary, as Oracle requires the password keystore for them. Reading
	 * prefers the auto-login copies (no prompt) unless a password source was named.
	 */
	if ((access == WALLET_FOR_CHANGE || (source && source->explicit)) &&
	    wallet_file_present(keystore_kind_path(&keystore_kind_password, &session->paths)))
		kind = &keystore_kind_password;
	session->kind = kind->code;
	snprintf(session->path, sizeof(session->path), "%s",
		 keystore_kind_path(kind, &session->paths));
	read.path = session->path;
	read.expected_kind = session->kind;
	if (!kind->auto_login)
		ret = open_password_wallet(session, source, &read, error);
	else
		ret = wallet_read(&read, error);
	if (ret < 0)
		goto out_close;
	session->ring = read.ring;
	session->raw = read.raw;
	session->raw_len = read.raw_len;
	session->password_key = read.password_key;
	session->generation_at_open = read.info.generation;
	session->keys_at_open = keyring_count(read.ring);
	if (access == WALLET_FOR_CHANGE && !kind->auto_login) {
		ret = check_copies(session, error);
		if (ret < 0)
			goto out_close;
	}
	*out = session;
	return 0;

out_close:
	wallet_session_close(session);
	return ret;
}

/* Rewrite one auto-login copy from the session's ring (same generation as the primary). */
static int write_copy(struct wallet_session *session, enum wallet_kind kind,
		      char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t *bytes;
	size_t len;
	int ret;

	ret = wallet_encode_keys(kind, session->ring, NULL, &bytes, &len, error);
	if (ret < 0)
		return ret;
	ret = wallet_write_bytes(kind_path(session, kind), bytes, len, error);
	secure_free(bytes);
	return ret;
}

/* The external store before a change of password: its bytes (for the backup) and kind. */
struct store_update {
	struct wallet_read read;
	bool present;
};

static int store_prepare(struct wallet_session *session, struct store_update *store,
			 char error[KEYSTORE_ERROR_SIZE])
{
	memset(store, 0, sizeof(*store));
	store->read.path = session->paths.external_store;
	store->read.expected_content = WALLET_CONTENT_SECRET;
	if (!wallet_file_present(store->read.path))
		return 0;
	store->present = true;
	/*
	 * A store that cannot be read now would hold a stale password after the change; refuse
	 * before anything is written rather than leave it behind.
	 */
	return wallet_read(&store->read, error);
}

static int store_write(struct wallet_session *session, struct store_update *store,
		       struct secret *const *secrets, size_t count, char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t *bytes;
	size_t len;
	int ret;

	ret = wallet_encode_secrets(store->read.info.kind, store->read.info.wallet_id,
				    keyring_generation(session->ring), secrets, count, &bytes, &len,
				    error);
	if (ret < 0)
		return ret;
	ret = wallet_write_bytes(store->read.path, bytes, len, error);
	secure_free(bytes);
	return ret;
}

/* Rewrite every auto-login copy that exists, except the new primary and a file to remove. */
static int write_copies(struct wallet_session *session, const struct commit_plan *plan,
			char error[KEYSTORE_ERROR_SIZE])
{
	for (size_t i = 0; i < keystore_kind_count(); i++) {
		const struct keystore_kind *copy = keystore_kind_at(i);
		const char *copy_path = keystore_kind_path(copy, &session->paths);
		int ret;

		if (!copy->auto_login || copy->code == plan->new_kind ||
		    !wallet_file_present(copy_path) ||
		    (plan->remove_path && strcmp(plan->remove_path, copy_path) == 0))
			continue;
		ret = write_copy(session, copy->code, error);
		if (ret < 0)
			return ret;
		fault_point("wallet:copy-written");
	}
	return 0;
}

static int commit(struct wallet_session *session, const struct commit_plan *plan,
		  char error[KEYSTORE_ERROR_SIZE])
{
	struct password_key *password_key =
		plan->new_password_key ? plan->new_password_key : session->password_key;
	const char *new_path = kind_path(session, plan->new_kind);
	struct store_update store = { .present = false };
	char store_backup[PATH_MAX];
	uint8_t *bytes = NULL;
	size_t len;
	int ret;

	if (plan->new_password) {
		ret = store_prepare(session, &store, error);
		if (ret < 0)
			goto out_release_store;
	}
	if (plan->backup_before) {
		ret = wallet_backup_write(
			session->paths.backup_dir, wallet_backup_prefix(session->path),
			session->generation_at_open, plan->backup_id, session->raw,
			session->raw_len, session->backup_path, error);
		if (ret < 0)
			goto out_release_store;
		fault_point("wallet:backup-written");
		/* Every key that existed is in that backup now. */
		keyring_mark_backed_up(session->ring, session->keys_at_open);
	}
	keyring_set_generation(session->ring, session->generation_at_open + 1);
	ret = wallet_encode_keys(plan->new_kind, session->ring, password_key, &bytes, &len, error);
	if (ret < 0)
		goto out_release_store;
	if (plan->backup_to) {
		ret = wallet_backup_write(plan->backup_to, wallet_backup_prefix(new_path),
					  keyring_generation(session->ring), plan->backup_id, bytes,
					  len, session->backup_path, error);
		if (ret < 0)
			goto out_free_bytes;
		fault_point("wallet:backup-written");
	}
	if (store.present) {
		/* Its own backup first, then both passwords, so that it opens the wallet throughout. */
		ret = wallet_backup_write(session->paths.backup_dir, "external-store",
					  store.read.info.generation, plan->backup_id,
					  store.read.raw, store.read.raw_len, store_backup, error);
		if (ret < 0)
			goto out_free_bytes;
		fault_point("wallet:external-store-backup-written");
		if (session->password) {
			struct secret *both[2] = { session->password,
						   (struct secret *)plan->new_password };

			ret = store_write(session, &store, both, 2, error);
			if (ret < 0)
				goto out_free_bytes;
			fault_point("wallet:external-store-staged");
		}
	}

	if (plan->copies_first) {
		ret = write_copies(session, plan, error);
		if (ret < 0)
			goto out_free_bytes;
	}
	ret = wallet_write_bytes(new_path, bytes, len, error);
	if (ret < 0)
		goto out_free_bytes;
	fault_point("wallet:primary-written");
	if (!plan->copies_first) {
		ret = write_copies(session, plan, error);
		if (ret < 0)
			goto out_free_bytes;
	}
	if (plan->remove_path) {
		ret = wallet_remove_file(plan->remove_path, error);
		if (ret < 0)
			goto out_free_bytes;
		fault_point("wallet:old-file-removed");
	}
	if (store.present) {
		struct secret *only[1] = { (struct secret *)plan->new_password };

		ret = store_write(session, &store, only, 1, error);
		if (ret < 0)
			goto out_free_bytes;
		fault_point("wallet:external-store-written");
	}

	/* The session now describes the wallet on disk, so a second commit backs up this one. */
	secure_free(session->raw);
	session->raw = bytes;
	session->raw_len = len;
	bytes = NULL;
	session->kind = plan->new_kind;
	snprintf(session->path, sizeof(session->path), "%s", new_path);
	session->generation_at_open = keyring_generation(session->ring);
	session->keys_at_open = keyring_count(session->ring);
	if (plan->new_password_key && plan->new_password_key != session->password_key) {
		password_key_free(session->password_key);
		session->password_key = plan->new_password_key;
	}
	if (plan->new_password) {
		struct secret *copy = secret_new();

		if (copy) {
			*copy = *plan->new_password;
			secret_free(session->password);
			session->password = copy;
		}
	}
	ret = 0;
out_free_bytes:
	secure_free(bytes);
out_release_store:
	if (store.present)
		wallet_read_release(&store.read);
	if (ret < 0)
		/* The ring stays as changed in memory; the generation goes back to what is on disk. */
		keyring_set_generation(session->ring, session->generation_at_open);
	return ret;
}

/*
 * A change asked of a session opened WALLET_FOR_READING: it holds no lock and may hold the
 * auto-login copy rather than the primary, so nothing may be written from it.
 */
static int refuse_read_only(const struct wallet_session *session, const char *what,
			    char error[KEYSTORE_ERROR_SIZE])
{
	wallet_message(error,
		       "cannot %s wallet %s: it was opened for reading, not for a change (no "
		       "directory lock held)",
		       what, session->paths.dir);
	return -EINVAL; /* a bad argument: the caller opened the session for reading */
}

int wallet_session_commit(struct wallet_session *session, const char *backup_id,
			  char error[KEYSTORE_ERROR_SIZE])
{
	struct commit_plan plan = {
		.new_kind = session->kind,
		.backup_before = true,
		.backup_id = backup_id,
	};

	if (session->access != WALLET_FOR_CHANGE)
		return refuse_read_only(session, "commit changes to", error);
	return commit(session, &plan, error);
}

int wallet_session_delete_key(struct wallet_session *session, size_t index, const char *backup_id,
			      char error[KEYSTORE_ERROR_SIZE])
{
	struct commit_plan plan = {
		.new_kind = session->kind,
		.backup_before = true,
		.backup_id = backup_id,
		.copies_first = true,
	};
	const struct mek_record *record;
	char id[KEY_ID_TEXT_SIZE];
	int ret;

	if (session->access != WALLET_FOR_CHANGE)
		return refuse_read_only(session, "delete a key from", error);
	record = keyring_record(session->ring, index);
	if (!record) {
		wallet_message(error, "no key at index %zu", index);
		return -EINVAL;
	}
	key_id_format(record->id, id);
	ret = keyring_remove(session->ring, index);
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE))
		wallet_message(error, "key %s is the ACTIVE key of container %s and cannot be deleted",
			       id, record->container);
	if (ret < 0)
		return ret;
	return commit(session, &plan, error);
}

int wallet_session_delete_keys(struct wallet_session *session, const uint8_t *ids, size_t count,
			       bool whole_container, const char *backup_id,
			       char error[KEYSTORE_ERROR_SIZE])
{
	struct commit_plan plan = {
		.new_kind = session->kind,
		.backup_before = true,
		.backup_id = backup_id,
		.copies_first = true, /* as wallet_session_delete_key(): a copy is never ahead */
	};
	char id[KEY_ID_TEXT_SIZE];
	int ret;

	if (session->access != WALLET_FOR_CHANGE)
		return refuse_read_only(session, "delete keys from", error);
	for (size_t k = 0; k < count; k++) {
		size_t n = keyring_count(session->ring), i;

		for (i = 0; i < n; i++)
			if (memcmp(keyring_record(session->ring, i)->id, ids + k * KEY_ID_SIZE,
				   KEY_ID_SIZE) == 0)
				break;
		key_id_format(ids + k * KEY_ID_SIZE, id);
		if (i == n) {
			wallet_message(error, "key %s is not in wallet %s", id,
				       session->paths.dir);
			return KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
		}
		ret = keyring_remove_key(session->ring, i, whole_container);
		if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE))
			wallet_message(error, "key %s is an ACTIVE key and cannot be deleted", id);
		if (ret < 0)
			return ret;
	}
	return commit(session, &plan, error);
}

int wallet_session_create_autologin(struct wallet_session *session, bool local,
				    const char *backup_id, char error[KEYSTORE_ERROR_SIZE])
{
	enum wallet_kind target = local ? WALLET_KIND_LOCAL_AUTOLOGIN : WALLET_KIND_AUTOLOGIN;
	enum wallet_kind other = local ? WALLET_KIND_AUTOLOGIN : WALLET_KIND_LOCAL_AUTOLOGIN;
	const char *other_path = kind_path(session, other);
	struct commit_plan plan = {
		.new_kind = target,
		.backup_before = true,
		.backup_id = backup_id,
	};
	int ret;

	if (session->access != WALLET_FOR_CHANGE)
		return refuse_read_only(session, "make an auto-login copy of", error);
	if (!keystore_kind_of(session->kind)->auto_login) {
		/*
		 * A copy of the password wallet: the keys do not change, so there is nothing to
		 * back up (a copy is always made again from the password wallet).
		 */
		ret = write_copy(session, target, error);
		if (ret < 0)
			return ret;
		fault_point("wallet:copy-written");
		if (wallet_file_present(other_path)) {
			ret = wallet_remove_file(other_path, error);
			if (ret < 0)
				return ret;
			fault_point("wallet:old-file-removed");
		}
		return 0;
	}
	/* No password wallet: the auto-login wallet is the primary and may change kind. */
	if (wallet_file_present(other_path))
		plan.remove_path = other_path;
	return commit(session, &plan, error);
}

int wallet_session_change_password(struct wallet_session *session,
				   const struct secret *new_password,
				   const struct scrypt_cost *cost, const char *backup_id,
				   char error[KEYSTORE_ERROR_SIZE])
{
	struct commit_plan plan = {
		.new_kind = WALLET_KIND_PASSWORD,
		.new_password = new_password,
		.backup_before = true,
		.backup_id = backup_id,
	};
	struct scrypt_cost chosen = SCRYPT_DEFAULT_COST;
	uint8_t salt[WALLET_SALT_SIZE];
	int ret;

	if (session->access != WALLET_FOR_CHANGE)
		return refuse_read_only(session, "change the password of", error);
	ret = password_check_new(new_password, error);
	if (ret < 0)
		return ret;
	if (cost)
		chosen = *cost;
	else if (session->password_key)
		chosen = session->password_key->cost; /* keep the cost the DBA chose at create */
	/* A fresh salt: the old scrypt output must not carry over to the new password. */
	ret = crypto_random_bytes(salt, sizeof(salt));
	if (ret == 0)
		ret = password_key_derive(new_password, salt, &chosen, &plan.new_password_key);
	if (ret < 0) {
		wallet_message(error, "cannot derive the new password key: %s", keystore_error_message(ret));
		return ret;
	}
	ret = commit(session, &plan, error);
	if (ret < 0)
		password_key_free(plan.new_password_key);
	return ret;
}

int wallet_session_backup(struct wallet_session *session, const char *backup_id, const char *to_dir,
			  char error[KEYSTORE_ERROR_SIZE])
{
	struct commit_plan plan = {
		.new_kind = session->kind,
		.backup_to = to_dir ? to_dir : session->paths.backup_dir,
		.backup_id = backup_id,
	};

	if (session->access != WALLET_FOR_CHANGE)
		return refuse_read_only(session, "back up", error);
	/* The backup written is the new wallet itself, so it already says every key is in it. */
	keyring_mark_backed_up(session->ring, keyring_count(session->ring));
	return commit(session, &plan, error);
}
