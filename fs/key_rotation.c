/*
 * Master-key rotation in a running daemon. The daemon learns of a new active master key by
 * re-reading its wallet whenever the wallet directory changes (inotify): tdekey set-key writes
 * the wallet with a rename, the watcher sees it, and files created from then on are wrapped
 * under the new key. Existing headers are rewrapped by a background job (fs/jobs.c, tderekey
 * rewrap) through header_rewrap_file(); readers and writers of a file never wait for it, since
 * data I/O does not touch the header.
 *
 * A reload re-reads the kind of wallet the daemon mounted with (keystore_reload): auto-login,
 * local auto-login, or a password wallet through its external password store. A daemon started
 * from a password typed on a descriptor and without a store keeps the keys it has and says so
 * in its log; it never switches to an auto-login file that appears beside its password wallet.
 * While the keystore is closed (tderekey close, fs/keystore_close.c) nothing is re-read: only
 * tderekey open brings keys back. The keys re-read are merged into those loaded: new keys are added and the active key follows
 * the wallet, but a loaded key is never dropped, so a wallet restored from an older backup (or
 * replaced by someone) cannot make files already written unreadable.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* --- wallet reload ----------------------------------------------------------------------- */

/*
 * The watcher and the control channel may both ask for a reload, and tderekey close and open
 * replace the ring too: one at a time.
 */
pthread_mutex_t keyring_replace_lock = PTHREAD_MUTEX_INITIALIZER;

int keys_reload(struct tdefs_daemon *daemon, char *error, size_t error_len)
{
	char keystore_error[KEYSTORE_ERROR_SIZE] = "";
	struct keystore_reload_result result;
	uint8_t active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE];
	struct keyring *merged, *loaded;
	size_t count;
	int ret;

	pthread_mutex_lock(&keyring_replace_lock);
	if (keystore_is_closed()) {
		snprintf(error, error_len, "the keystore is closed: 'tderekey open' loads the keys "
					   "again (a wallet change does not)");
		pthread_mutex_unlock(&keyring_replace_lock);
		return -EKEYREVOKED;
	}
	/* Only the holders of this lock replace the ring, so it can be read here without the rwlock. */
	loaded = daemon->keyring;
	ret = keystore_reload(daemon->wallet_path, loaded, &merged, &result, keystore_error);
	if (ret < 0) {
		snprintf(error, error_len, "%s; keeping the %zu keys already loaded",
			 keystore_error[0] ? keystore_error : keystore_error_message(ret),
			 keyring_count(loaded));
		pthread_mutex_unlock(&keyring_replace_lock);
		metrics_add(&metrics.reloads_failed, 1);
		key_server_note(daemon, ret, error);
		return ret;
	}
	pthread_rwlock_wrlock(&daemon->keyring_lock);
	daemon->keyring = merged;
	pthread_rwlock_unlock(&daemon->keyring_lock);
	keyring_free(loaded);
	/*
	 * What the log line says of the ring is read before the lock goes: the next reload (the
	 * watcher and tderekey rewrap may ask at the same instant) frees this ring.
	 */
	if (keyring_active(merged, active_id, NULL) == 0)
		key_id_format(active_id, active_text);
	else
		snprintf(active_text, sizeof(active_text), "none");
	count = keyring_count(merged);
	pthread_mutex_unlock(&keyring_replace_lock);
	fault_pause("reload:replaced"); /* tests/mounted/test_rotation.sh: another reload frees merged */
	metrics_add(&metrics.reloads_ok, 1);
	key_server_note(daemon, 0, NULL);

	if (result.kept)
		log_warning("tdefs: %s lacks %zu of the master keys loaded (restored from an older "
			    "backup, or a key deleted?); they stay loaded, since files may still "
			    "be wrapped under them",
			    result.path, result.kept);
	if (result.active_revoked)
		log_warning("tdefs: %s: the key server has revoked the active master key and "
			    "names no other; files stay readable, but no new file can be made "
			    "until a new key is activated (tdekey set-key)",
			    result.path);
	else if (!result.wallet_has_active)
		log_warning("tdefs: %s has no active master key; new files stay wrapped under the "
			    "active key already loaded",
			    result.path);
	log_info("tdefs: wallet %s re-read: %zu master keys (%zu new), active %s%s",
		 result.path, count, result.added, active_text,
		 result.active_moved ? " (changed)" : "");
	return 0;
}

static pthread_t watch_thread;
static int watch_fd = -1;
static int watch_stop_pipe[2] = { -1, -1 };

static void *watch_wallet(void *argument)
{
	struct tdefs_daemon *daemon = argument;
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char error[KEYSTORE_ERROR_SIZE + 128];

	for (;;) {
		int ready = wait_readable_or_stop(watch_fd, watch_stop_pipe[0]);

		if (ready == 0)
			break;
		if (ready < 0)
			continue;
		if (read(watch_fd, events, sizeof(events)) <= 0)
			continue;
		/* A wallet change is several events (temp file, rename, backup): let them settle. */
		usleep(200000);
		while (read(watch_fd, events, sizeof(events)) > 0) /* non-blocking: drains */
			;
		if (keys_reload(daemon, error, sizeof(error)) < 0)
			log_warning("tdefs: %s", error);
	}
	return NULL;
}

int wallet_watch_start(struct tdefs_daemon *daemon)
{
	key_server_start(daemon);
	hsm_heartbeat_start(daemon);
	watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (watch_fd < 0)
		return -errno;
	if (inotify_add_watch(watch_fd, daemon->wallet_path,
			      IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0 ||
	    pipe2(watch_stop_pipe, O_CLOEXEC) < 0) {
		int ret = -errno;
		close(watch_fd);
		watch_fd = -1;
		return ret;
	}
	return -pthread_create(&watch_thread, NULL, watch_wallet, daemon);
}

void wallet_watch_stop(void)
{
	key_server_stop();
	hsm_heartbeat_stop();
	if (watch_fd < 0)
		return;
	if (write(watch_stop_pipe[1], "x", 1) == 1)
		pthread_join(watch_thread, NULL);
	close(watch_fd);
	close(watch_stop_pipe[0]);
	close(watch_stop_pipe[1]);
	watch_fd = -1;
}
