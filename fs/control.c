/*
 * The control channel: an abstract Unix socket the tools reach by naming any path on the mount
 * (protocol in fs/format.h). One thread accepts connections and answers one request each; the
 * requests are cheap (status, starting or stopping a job), so serving them one at a time keeps
 * this simple. Peers are checked with SO_PEERCRED: root or the user who mounted.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/util.h"

static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t control_thread;

struct reply {
	char text[8192];
	size_t used;
};

__attribute__((format(printf, 2, 3))) static void reply_add(struct reply *reply,
							     const char *format, ...)
{
	va_list args;
	int n;

	va_start(args, format);
	n = vsnprintf(reply->text + reply->used, sizeof(reply->text) - reply->used, format, args);
	va_end(args);
	if (n > 0)
		reply->used = reply->used + (size_t)n < sizeof(reply->text) ? reply->used + (size_t)n
									     : sizeof(reply->text) - 1;
}

static void answer_status(struct reply *reply)
{
	uint8_t active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE] = "none";
	struct job_status status;
	const uint8_t *mek;
	size_t count;

	pthread_rwlock_rdlock(&daemon_state.keyring_lock);
	if (keyring_active(daemon_state.keyring, active_id, &mek) == 0)
		key_id_format(active_id, active_text);
	count = keyring_count(daemon_state.keyring);
	pthread_rwlock_unlock(&daemon_state.keyring_lock);
	rewrap_status(&status);
	reply_add(reply, "backing %s\nwallet %s\nactive_key %s\nkeys %zu\ncache %s\n",
		  daemon_state.backing_path, daemon_state.wallet_path, active_text, count,
		  daemon_state.cache == CACHE_AUTO ? "auto" : "none");
	reply_add(reply,
		  "rewrap_state %s\nrewrap_files %llu\nrewrap_rewrapped %llu\nrewrap_skipped %llu\n"
		  "rewrap_failed %llu\nrewrap_rate %g\nrewrap_started %lld\nrewrap_finished %lld\n",
		  job_state_name(status.state), (unsigned long long)status.files_total,
		  (unsigned long long)status.files_rewrapped, (unsigned long long)status.files_skipped,
		  (unsigned long long)status.files_failed, status.rate_limit,
		  (long long)status.started, (long long)status.finished);
	if (status.last_error[0])
		reply_add(reply, "rewrap_last_error %s\n", status.last_error);
	reply_add(reply, "ok\n");
}

static void answer(char *request, struct reply *reply)
{
	char error[KEYSTORE_ERROR_SIZE + 128];
	char *argument = strchr(request, ' ');

	if (argument)
		*argument++ = '\0';
	if (strcmp(request, "status") == 0) {
		answer_status(reply);
	} else if (strcmp(request, "reload") == 0) {
		if (keys_reload(error, sizeof(error)) < 0)
			reply_add(reply, "error %s\n", error);
		else
			reply_add(reply, "ok\n");
	} else if (strcmp(request, "rewrap-start") == 0) {
		char *end = NULL;
		double rate = argument ? strtod(argument, &end) : 0;

		if ((argument && (*end || rate < 0)))
			reply_add(reply, "error bad rate '%s'\n", argument);
		else if (rewrap_start(rate, error, sizeof(error)) < 0)
			reply_add(reply, "error %s\n", error);
		else
			reply_add(reply, "ok\n");
	} else if (strcmp(request, "rewrap-stop") == 0) {
		rewrap_stop();
		reply_add(reply, "ok\n");
	} else {
		reply_add(reply, "error unknown request '%s'\n", request);
	}
}

static void serve(int fd)
{
	char request[CONTROL_LINE_MAX];
	struct reply reply = { .used = 0 };
	struct ucred peer;
	socklen_t peer_len = sizeof(peer);
	size_t used = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) < 0 ||
	    (peer.uid != 0 && peer.uid != getuid())) {
		reply_add(&reply, "error permission denied: only root or the user who mounted "
				  "may use the control channel\n");
		goto out_send;
	}
	/* Read one line; a client that sends nothing for 5 s is dropped. */
	while (used < sizeof(request) - 1) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 5000) <= 0)
			return;
		n = read(fd, request + used, sizeof(request) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		if (memchr(request, '\n', used))
			break;
	}
	request[used] = '\0';
	request[strcspn(request, "\r\n")] = '\0';
	answer(request, &reply);
out_send:
	if (write(fd, reply.text, reply.used) < 0)
		log_debug("tdefs: control reply lost: %s", strerror(errno));
}

static void *accept_loop(void *unused)
{
	(void)unused;
	for (;;) {
		struct pollfd fds[2] = { { listen_fd, POLLIN, 0 }, { stop_pipe[0], POLLIN, 0 } };
		int fd;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
	return NULL;
}

int control_start(const char *mountpoint)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	struct mount_entry entry;
	char *resolved = realpath(mountpoint, NULL);
	socklen_t length;
	int ret, n;

	if (!resolved)
		return -errno;
	/* Found through mountinfo: a stat of our own mount point would wait on this very daemon. */
	ret = mount_find_by_point(resolved, &entry);
	free(resolved);
	if (ret < 0)
		return ret;
	n = snprintf(address.sun_path + 1, sizeof(address.sun_path) - 1, CONTROL_SOCKET_FORMAT,
		     entry.major, entry.minor);
	length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		return -errno;
	if (bind(listen_fd, (struct sockaddr *)&address, length) < 0 || listen(listen_fd, 8) < 0 ||
	    pipe2(stop_pipe, O_CLOEXEC) < 0) {
		ret = -errno;
		close(listen_fd);
		listen_fd = -1;
		return ret;
	}
	return -pthread_create(&control_thread, NULL, accept_loop, NULL);
}

void control_stop(void)
{
	if (listen_fd < 0)
		return;
	if (write(stop_pipe[1], "x", 1) == 1)
		pthread_join(control_thread, NULL);
	close(listen_fd);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	listen_fd = -1;
}
