/*
 * The keystore closed and opened again on a running mount (tderekey close, tderekey open;
 * docs/ARCHITECTURE.md, "Keystore close and open"). Closing swaps the keyring for one with the
 * same identity and no keys (keyring_new_closed), so every place that asks the ring for a master
 * key gets none: new files and opens of files whose DEK is not loaded fail with ENOKEY, the jobs
 * are refused (fs/jobs.c), a wallet change is not taken up (keys_reload). The keys themselves
 * leave memory with the old ring (keyring_free: locked memory, wiped).
 *
 * A plain close is refused while a file is open or a job runs. --force stops the jobs, makes
 * the kernel write back and drop the pages of every loaded file while its DEK is still there,
 * then wipes those DEKs (file_crypt_wipe_keys: the file's requests fail with EIO from then on,
 * so nothing is ever read or written under a missing key) and the key cache, and drops the
 * pages again, so that no cached plaintext outlives its key.
 *
 * The epoch closes the race with an open in flight: a file whose header was unsealed before a
 * close, with keys that the close could not see yet, is discarded at the end of its load
 * (file_crypt_acquire compares, under keyring_lock, the epoch it read when unsealing with the
 * current one before it publishes the state). The close counts the users and moves the epoch
 * under the same lock held exclusively, so every load is either seen or discarded.
 * Opening reads the wallet of the mount again exactly as at mount (keystore_open_for_mount) and
 * takes the keys only if the wallet is the one the mount has (its wallet ID).
 */
#include "fs/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static bool closed;          /* atomic; changed under keyring_lock (exclusive) */
static uint64_t close_epoch; /* changed under keyring_lock (exclusive), read under it */

bool keystore_is_closed(void)
{
	return __atomic_load_n(&closed, __ATOMIC_ACQUIRE);
}

uint64_t keystore_epoch(void)
{
	return __atomic_load_n(&close_epoch, __ATOMIC_ACQUIRE);
}

static const char *const job_words[JOB_KIND_COUNT] = {
	[JOB_REWRAP] = "a rewrap", [JOB_DATA_REKEY] = "a data rekey", [JOB_ENCRYPT] = "a conversion",
};

/* The first job that runs, is paused or stopping; NULL when none does. */
static const char *active_job(struct tdefs_daemon *daemon)
{
	for (int kind = 0; kind < JOB_KIND_COUNT; kind++) {
		struct job_status status;

		job_get_status(daemon, (enum job_kind)kind, &status);
		if (status.state == JOB_RUNNING || status.state == JOB_PAUSED ||
		    status.state == JOB_STOPPING)
			return job_words[kind];
	}
	return NULL;
}

/*
 * Write back the inode's dirty pages (while its DEK can still encrypt them) and drop them.
 * context: the daemon, whose session the kernel is told through.
 */
static void drop_pages(struct tdefs_inode *inode, void *context)
{
	const struct tdefs_daemon *daemon = context;
	int ret;

	if (!daemon->session)
		return;
	ret = fuse_lowlevel_notify_inval_inode(daemon->session,
					       (fuse_ino_t)(uintptr_t)inode, 0, 0);
	if (ret < 0 && ret != -ENOENT)
		log_debug("tdefs: cannot drop the cached pages of a file: %s", strerror(-ret));
}

static void wipe_keys(struct tdefs_inode *inode, void *context)
{
	file_crypt_wipe_keys(inode);
	++*(size_t *)context;
}

int keystore_close(struct tdefs_daemon *daemon, bool force, char *error, size_t error_len)
{
	struct keyring *empty, *loaded;
	const char *job;
	size_t wiped = 0;
	int64_t users;
	int ret;

	pthread_mutex_lock(&keyring_replace_lock);
	if (keystore_is_closed()) {
		pthread_mutex_unlock(&keyring_replace_lock);
		return 1;
	}
	job = active_job(daemon);
	users = __atomic_load_n(&metrics.file_users, __ATOMIC_RELAXED);
	if (!force && job) {
		snprintf(error, error_len,
			 "%s is running on this mount: stop it first (tderekey stop), or close with "
			 "--force, which stops it",
			 job);
		ret = -EBUSY;
		goto out_unlock;
	}
	if (!force && users > 0) {
		snprintf(error, error_len,
			 "%lld open files (or file operations) hold their keys: close them first, "
			 "or close with --force, which makes their I/O fail with EIO",
			 (long long)users);
		ret = -EBUSY;
		goto out_unlock;
	}
	if (force) {
		/* Stopped between two files or chunks, as at unmount; each resumes where it was. */
		jobs_join_all(daemon);
		inode_table_visit_loaded(daemon, drop_pages, daemon);
	}
	/* Only the holders of keyring_replace_lock replace the ring: read without the rwlock. */
	loaded = daemon->keyring;
	ret = keyring_new_closed(loaded, &empty);
	if (ret < 0) {
		snprintf(error, error_len, "cannot close the keystore: %s", strerror(-ret));
		goto out_unlock;
	}
	pthread_rwlock_wrlock(&daemon->keyring_lock);
	/* Again under the lock a load publishes its state under (fs/file_keys.c): airtight. */
	users = __atomic_load_n(&metrics.file_users, __ATOMIC_RELAXED);
	if (!force && users > 0) {
		pthread_rwlock_unlock(&daemon->keyring_lock);
		keyring_free(empty);
		snprintf(error, error_len,
			 "%lld open files (or file operations) hold their keys: close them first, "
			 "or close with --force, which makes their I/O fail with EIO",
			 (long long)users);
		ret = -EBUSY;
		goto out_unlock;
	}
	daemon->keyring = empty;
	__atomic_store_n(&closed, true, __ATOMIC_RELEASE);
	__atomic_add_fetch(&close_epoch, 1, __ATOMIC_RELEASE);
	/* Under the lock loads read the cache under: no DEK leaves it from here on. */
	if (force)
		key_cache_wipe_all();
	pthread_rwlock_unlock(&daemon->keyring_lock);
	keyring_free(loaded);
	if (force) {
		inode_table_visit_loaded(daemon, wipe_keys, &wiped);
		inode_table_visit_loaded(daemon, drop_pages, daemon);
	}
	if (force)
		log_warning("tdefs: keystore closed (--force): master keys, the key cache and the "
			    "DEKs of %zu open files wiped; their I/O fails with EIO until they are "
			    "closed",
			    wiped);
	else
		log_info("tdefs: keystore closed: master keys wiped%s", key_cache_count()
			 ? "; DEKs in the key cache stay until they expire" : "");
	ret = 0;
out_unlock:
	pthread_mutex_unlock(&keyring_replace_lock);
	return ret;
}

int keystore_open(struct tdefs_daemon *daemon, int password_fd, char *error, size_t error_len)
{
	char keystore_error[KEYSTORE_ERROR_SIZE] = "";
	uint8_t expected[KEY_ID_SIZE], actual[KEY_ID_SIZE];
	char expected_text[KEY_ID_TEXT_SIZE], actual_text[KEY_ID_TEXT_SIZE];
	struct keyring *ring, *empty;
	const char *container;
	int ret;

	pthread_mutex_lock(&keyring_replace_lock);
	if (!keystore_is_closed()) {
		pthread_mutex_unlock(&keyring_replace_lock);
		return 1;
	}
	empty = daemon->keyring;
	ret = keystore_open_for_mount(daemon->wallet_path, password_fd, &ring, keystore_error);
	if (ret < 0) {
		snprintf(error, error_len, "%s; the keystore stays closed",
			 keystore_error[0] ? keystore_error : keystore_error_message(ret));
		goto out_unlock;
	}
	keyring_wallet_id(empty, expected);
	keyring_wallet_id(ring, actual);
	container = keyring_selected_container(empty);
	if (memcmp(expected, actual, sizeof(expected)) != 0) {
		key_id_format(expected, expected_text);
		key_id_format(actual, actual_text);
		snprintf(error, error_len,
			 "wallet %s now has ID %s, not %s as when mounted: not taken; the keystore "
			 "stays closed",
			 daemon->wallet_path, actual_text, expected_text);
		ret = -EINVAL;
		goto out_free;
	}
	if (!keyring_has_container(ring, container) ||
	    keyring_select_container(ring, container) < 0) {
		snprintf(error, error_len,
			 "wallet %s holds no key of container %s any more; the keystore stays closed",
			 daemon->wallet_path, container);
		ret = -ENOKEY;
		goto out_free;
	}
	pthread_rwlock_wrlock(&daemon->keyring_lock);
	daemon->keyring = ring;
	__atomic_store_n(&closed, false, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&daemon->keyring_lock);
	keyring_free(empty);
	log_info("tdefs: keystore opened: %zu master keys loaded from %s (%s)",
		 keyring_count(ring), daemon->wallet_path, keyring_source_kind_name(ring));
	ret = 0;
	goto out_unlock;
out_free:
	keyring_free(ring);
out_unlock:
	pthread_mutex_unlock(&keyring_replace_lock);
	return ret;
}
