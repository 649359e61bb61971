/*
 * A daemon whose wallet is a KMIP wallet (keystore/kmip_wallet.h) and its key servers: the keys
 * were fetched at mount and stay in memory, so a server outage never stops the mount; what it
 * changes is whether the daemon knows the server's current keys. keys_reload() reports each
 * reload's outcome here (key_server_note): the first failure turns the status word to
 * OPEN_UNKNOWN_MASTER_KEY_STATUS with one log line, and a thread tries the reload again with a
 * growing pause (5 s doubling to 5 minutes) until a server answers, which gives one more line
 * and the status OPEN again. Each failed attempt is counted in the reload metrics, never logged,
 * so an outage of hours is two lines in the log.
 *
 * With -o kmip_poll=SECS the daemon also reloads every SECS seconds while the servers answer,
 * so an outage (and a key the server no longer gives) is noticed without waiting for a change
 * of the wallet directory or a tderekey reload.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keystore/kmip_wallet.h"
#include "util/util.h"

#define RETRY_FIRST_SECONDS 5
#define RETRY_MAX_SECONDS 300

static atomic_bool unreachable;
/* The retry thread is detached; it says here when it has ended, which stop waits for. */
static atomic_bool retry_running;
static pthread_mutex_t retry_lock = PTHREAD_MUTEX_INITIALIZER;
static int retry_stop_pipe[2] = { -1, -1 };
unsigned key_server_poll_seconds; /* -o kmip_poll=SECS; 0: no polling */
static atomic_bool poll_running;
static atomic_bool stopping; /* set by key_server_stop: no thread is started after it */

bool key_server_wallet(const struct tdefs_daemon *daemon)
{
	return daemon->wallet_path && kmip_wallet_present(daemon->wallet_path);
}

const char *key_server_status(void)
{
	/* An HSM token out (fs/hsm_heartbeat.c) is told in the same word. */
	return atomic_load(&unreachable) || hsm_heartbeat_outage() ? "OPEN_UNKNOWN_MASTER_KEY_STATUS"
								    : "OPEN";
}

/* Sleep seconds, or less when asked to stop: false then. */
static bool pause_or_stop(unsigned seconds)
{
	struct pollfd pfd = { .fd = retry_stop_pipe[0], .events = POLLIN };
	int ret;

	do
		ret = poll(&pfd, 1, (int)seconds * 1000);
	while (ret < 0 && errno == EINTR);
	return ret == 0;
}

static void *retry_reload(void *argument)
{
	struct tdefs_daemon *daemon = argument;
	char error[KEYSTORE_ERROR_SIZE + 128];
	unsigned pause = RETRY_FIRST_SECONDS;

	while (atomic_load(&unreachable) && pause_or_stop(pause)) {
		/* keys_reload() reports the outcome back through key_server_note(). */
		(void)keys_reload(daemon, error, sizeof(error));
		pause = pause * 2 > RETRY_MAX_SECONDS ? RETRY_MAX_SECONDS : pause * 2;
	}
	atomic_store(&retry_running, false);
	return NULL;
}

static void *poll_reload(void *argument)
{
	struct tdefs_daemon *daemon = argument;
	char error[KEYSTORE_ERROR_SIZE + 128];

	while (pause_or_stop(key_server_poll_seconds))
		if (!atomic_load(&unreachable)) /* while unreachable, the retry paces the tries */
			(void)keys_reload(daemon, error, sizeof(error));
	atomic_store(&poll_running, false);
	return NULL;
}

void key_server_start(struct tdefs_daemon *daemon)
{
	pthread_attr_t attr;
	pthread_t thread;

	if (key_server_poll_seconds == 0 || !key_server_wallet(daemon))
		return;
	pthread_mutex_lock(&retry_lock);
	if (retry_stop_pipe[0] < 0 && pipe2(retry_stop_pipe, O_CLOEXEC) < 0) {
		log_warning("tdefs: cannot start polling the key servers: %s", strerror(errno));
	} else {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		atomic_store(&poll_running, true);
		if (pthread_create(&thread, &attr, poll_reload, daemon) != 0) {
			atomic_store(&poll_running, false);
			log_warning("tdefs: cannot start polling the key servers");
		}
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&retry_lock);
}

void key_server_note(struct tdefs_daemon *daemon, int ret, const char *error)
{
	if (!key_server_wallet(daemon))
		return;
	if (ret == 0) {
		if (atomic_exchange(&unreachable, false))
			log_info("tdefs: key server reachable again; master keys re-read (status "
				 "OPEN)");
		return;
	}
	if (atomic_exchange(&unreachable, true))
		return; /* already said, and already retrying */
	log_warning("tdefs: %s; status OPEN_UNKNOWN_MASTER_KEY_STATUS: serving with the keys in "
		    "memory, retrying from %d s up to every %d s",
		    error, RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS);
	pthread_mutex_lock(&retry_lock);
	if (atomic_load(&stopping)) {
		/* unmounting: no retry */
	} else if (retry_stop_pipe[0] < 0 && pipe2(retry_stop_pipe, O_CLOEXEC) < 0) {
		log_warning("tdefs: cannot start the key server retry: %s", strerror(errno));
	} else if (!atomic_exchange(&retry_running, true)) {
		pthread_attr_t attr;
		pthread_t thread;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&thread, &attr, retry_reload, daemon) != 0) {
			atomic_store(&retry_running, false);
			log_warning("tdefs: cannot start the key server retry thread");
		}
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&retry_lock);
}

void key_server_stop(void)
{
	bool woken;

	atomic_store(&stopping, true);
	pthread_mutex_lock(&retry_lock);
	woken = retry_stop_pipe[1] >= 0 && write(retry_stop_pipe[1], "x", 1) == 1;
	pthread_mutex_unlock(&retry_lock);
	/*
	 * Not under the lock: a reload under way (bounded by the servers' timeouts) may still
	 * report its failure through key_server_note, which takes it.
	 */
	while (woken && (atomic_load(&retry_running) || atomic_load(&poll_running)))
		usleep(10000);
	pthread_mutex_lock(&retry_lock);
	if (retry_stop_pipe[0] >= 0) {
		close(retry_stop_pipe[0]);
		close(retry_stop_pipe[1]);
		retry_stop_pipe[0] = retry_stop_pipe[1] = -1;
	}
	pthread_mutex_unlock(&retry_lock);
}
