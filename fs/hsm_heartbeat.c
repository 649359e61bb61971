/*
 * -o hsm_heartbeat=SECS: the availability of an HSM-keyed mount (docs/ARCHITECTURE.md,
 * "Keystore close and open"; README, "HSM keystore"). A thread asks the token every SECS
 * whether it is there (keyring_token_check: C_GetSessionInfo, no key work). When it is not,
 * the mount goes on serving the files that are open, whose DEKs are in memory; the status word
 * the KMIP code shows (fs/key_server.c) turns to OPEN_UNKNOWN_MASTER_KEY_STATUS with one log
 * line; an open that needs the token to unwrap a DEK waits up to HSM_OUTAGE_WAIT_SECONDS
 * (kind_hsm.c waits) and then fails with EIO, unless -o key_cache still holds the file's DEK
 * (fs/file_keys.c asks the cache first while the token is out). Every beat of the outage tries
 * to connect again (new sessions, a login with the PIN the token keeps in locked memory, the
 * key objects found again); the first that succeeds gives one more line and the status OPEN.
 *
 * The beat runs under keyring_replace_lock, so the ring it asks is not replaced meanwhile; a
 * ring read again (a reload, tderekey open) shares or replaces the token, and the next beat
 * watches whatever token the ring has. A closed keystore has no token: nothing is asked.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

unsigned hsm_heartbeat_seconds; /* -o hsm_heartbeat=SECS; 0: no heartbeat */
static atomic_bool outage;
static atomic_bool watching; /* the ring has a token, so the status shows key_status */
static pthread_t heartbeat_thread;
static bool thread_started;
static int stop_pipe[2] = { -1, -1 };

int hsm_heartbeat_option(const char *value, unsigned *seconds, char *error, size_t error_size)
{
	char *end = NULL;
	unsigned long parsed;

	errno = 0;
	parsed = value[0] >= '0' && value[0] <= '9' ? strtoul(value, &end, 10) : 0;
	if (!end || *end || errno || parsed < 1 || parsed > 86400) {
		snprintf(error, error_size,
			 "-o hsm_heartbeat=%.32s: not a number of seconds (1-86400)", value);
		return -EINVAL;
	}
	*seconds = (unsigned)parsed;
	return 0;
}

bool hsm_heartbeat_outage(void)
{
	return atomic_load(&outage);
}

bool hsm_heartbeat_watching(void)
{
	return atomic_load(&watching);
}

/* One beat: ask the token, or try to connect to it again. */
static void beat(struct tdefs_daemon *daemon)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	int ret;

	pthread_mutex_lock(&keyring_replace_lock);
	if (keyring_token_watch(daemon->keyring, HSM_OUTAGE_WAIT_SECONDS * 1000) < 0) {
		pthread_mutex_unlock(&keyring_replace_lock); /* closed: no token to ask */
		return;
	}
	atomic_store(&watching, true);
	ret = keyring_token_check(daemon->keyring, error);
	if (ret == 0 && atomic_exchange(&outage, false)) {
		/* A token of a ring opened since (tderekey open after a close in the outage). */
		log_info("tdefs: HSM token reachable again (status OPEN)");
	} else if (ret != 0) {
		if (!atomic_exchange(&outage, true))
			log_warning("tdefs: %s; status OPEN_UNKNOWN_MASTER_KEY_STATUS: open files "
				    "keep working, opens that need the token fail with EIO after "
				    "%d s; reconnecting every %u s",
				    error, HSM_OUTAGE_WAIT_SECONDS, hsm_heartbeat_seconds);
		ret = keyring_token_reconnect(daemon->keyring, error);
		/* A failed try is not logged: an outage of hours is two lines. */
		if (ret == 0 && atomic_exchange(&outage, false))
			log_info("tdefs: HSM token reachable again: sessions opened and logged in "
				 "again (status OPEN)");
	}
	pthread_mutex_unlock(&keyring_replace_lock);
}

static void *heartbeat(void *argument)
{
	struct tdefs_daemon *daemon = argument;
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	int ready;

	pfd.fd = stop_pipe[0];
	for (;;) {
		ready = poll(&pfd, 1, (int)hsm_heartbeat_seconds * 1000);
		if (ready > 0)
			break;
		if (ready == 0)
			beat(daemon);
	}
	return NULL;
}

void hsm_heartbeat_start(struct tdefs_daemon *daemon)
{
	if (hsm_heartbeat_seconds == 0)
		return;
	pthread_rwlock_rdlock(&daemon->keyring_lock);
	if (keyring_token_watch(daemon->keyring, HSM_OUTAGE_WAIT_SECONDS * 1000) == 0)
		atomic_store(&watching, true);
	pthread_rwlock_unlock(&daemon->keyring_lock);
	if (!atomic_load(&watching)) {
		log_warning("tdefs: -o hsm_heartbeat: wallet %s is not an HSM wallet; no heartbeat",
			    daemon->wallet_path);
		return;
	}
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		log_warning("tdefs: cannot start the HSM heartbeat: %s", strerror(errno));
		return;
	}
	if (pthread_create(&heartbeat_thread, NULL, heartbeat, daemon) != 0) {
		log_warning("tdefs: cannot start the HSM heartbeat thread");
		return;
	}
	thread_started = true;
}

void hsm_heartbeat_stop(void)
{
	if (thread_started && write(stop_pipe[1], "x", 1) == 1)
		pthread_join(heartbeat_thread, NULL);
	thread_started = false;
	if (stop_pipe[0] >= 0) {
		close(stop_pipe[0]);
		close(stop_pipe[1]);
		stop_pipe[0] = stop_pipe[1] = -1;
	}
}
