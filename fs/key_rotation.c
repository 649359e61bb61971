/*
 * Master-key rotation in a running daemon. The daemon learns of a new active master key by
 * re-reading its wallet whenever the wallet directory changes (inotify): tdekey set-key writes
 * the wallet with a rename, the watcher sees it, and files created from then on are wrapped
 * under the new key. Existing headers are rewrapped by a background job (fs/jobs.c, tderekey
 * rewrap) through header_rewrap_file(); readers and writers of a file never wait for it, since
 * data I/O does not touch the header.
 *
 * Re-reading works for every wallet the daemon can open unattended (auto-login, local
 * auto-login, or a password wallet with an external password store). A daemon started from a
 * password typed on a descriptor keeps the keys it has and says so in its log.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* --- wallet reload ----------------------------------------------------------------------- */

int keys_reload(char *error, size_t error_len)
{
	char keystore_error[KEYSTORE_ERROR_SIZE] = "";
	uint8_t old_id[16], new_id[16], active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE];
	struct keyring *fresh, *stale;
	const uint8_t *mek;
	int ret;

	ret = keystore_open_for_mount(daemon_state.wallet_path, -1, &fresh, keystore_error);
	if (ret < 0) {
		snprintf(error, error_len, "%s; keeping the %zu keys already loaded", keystore_error,
			 keyring_count(daemon_state.keyring));
		return ret;
	}
	keyring_wallet_id(fresh, new_id);
	keyring_wallet_id(daemon_state.keyring, old_id);
	if (memcmp(old_id, new_id, sizeof(old_id)) != 0) {
		keyring_free(fresh);
		snprintf(error, error_len,
			 "wallet %s now holds another wallet (different wallet ID); keeping the keys "
			 "already loaded", daemon_state.wallet_path);
		return -EINVAL;
	}
	if (keyring_active(fresh, active_id, &mek) < 0) {
		keyring_free(fresh);
		snprintf(error, error_len, "wallet %s has no active master key; keeping the keys "
			 "already loaded", daemon_state.wallet_path);
		return -ENOKEY;
	}
	pthread_rwlock_wrlock(&daemon_state.keyring_lock);
	stale = daemon_state.keyring;
	daemon_state.keyring = fresh;
	pthread_rwlock_unlock(&daemon_state.keyring_lock);
	keyring_free(stale);
	key_id_format(active_id, active_text);
	log_info("tdefs: wallet %s re-read: %zu master keys, active %s", daemon_state.wallet_path,
		 keyring_count(fresh), active_text);
	return 0;
}

static pthread_t watch_thread;
static int watch_fd = -1;
static int watch_stop_pipe[2] = { -1, -1 };

static void *watch_wallet(void *unused)
{
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char error[KEYSTORE_ERROR_SIZE + 128];

	(void)unused;
	for (;;) {
		struct pollfd fds[2] = { { watch_fd, POLLIN, 0 }, { watch_stop_pipe[0], POLLIN, 0 } };

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		if (read(watch_fd, events, sizeof(events)) <= 0)
			continue;
		/* A wallet change is several events (temp file, rename, backup): let them settle. */
		usleep(200000);
		while (poll(fds, 1, 0) > 0 && read(watch_fd, events, sizeof(events)) > 0)
			;
		if (keys_reload(error, sizeof(error)) < 0)
			log_warning("tdefs: %s", error);
	}
	return NULL;
}

int wallet_watch_start(void)
{
	watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (watch_fd < 0)
		return -errno;
	if (inotify_add_watch(watch_fd, daemon_state.wallet_path,
			      IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0 ||
	    pipe2(watch_stop_pipe, O_CLOEXEC) < 0) {
		int ret = -errno;
		close(watch_fd);
		watch_fd = -1;
		return ret;
	}
	return -pthread_create(&watch_thread, NULL, watch_wallet, NULL);
}

void wallet_watch_stop(void)
{
	if (watch_fd < 0)
		return;
	if (write(watch_stop_pipe[1], "x", 1) == 1)
		pthread_join(watch_thread, NULL);
	close(watch_fd);
	close(watch_stop_pipe[0]);
	close(watch_stop_pipe[1]);
	watch_fd = -1;
}
