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

static void add_job_status(struct reply *reply, const char *prefix, enum job_kind kind)
{
	struct job_status status;

	job_get_status(kind, &status);
	reply_add(reply,
		  "%s_state %s\n%s_files %llu\n%s_changed %llu\n%s_skipped %llu\n%s_failed %llu\n"
		  "%s_rate %g\n%s_started %lld\n%s_finished %lld\n",
		  prefix, job_state_name(status.state), prefix,
		  (unsigned long long)status.files_total, prefix,
		  (unsigned long long)status.files_changed, prefix,
		  (unsigned long long)status.files_skipped, prefix,
		  (unsigned long long)status.files_failed, prefix, status.rate_limit, prefix,
		  (long long)status.started, prefix, (long long)status.finished);
	if (kind == JOB_DATA_REKEY)
		reply_add(reply, "%s_bytes %llu\n%s_resume_only %d\n", prefix,
			  (unsigned long long)status.bytes_done, prefix, status.resume_only);
	if (status.current[0])
		reply_add(reply, "%s_current %s\n%s_current_done %llu\n%s_current_total %llu\n",
			  prefix, status.current, prefix, (unsigned long long)status.current_done,
			  prefix, (unsigned long long)status.current_total);
	if (status.last_error[0])
		reply_add(reply, "%s_last_error %s\n", prefix, status.last_error);
}

static void answer_status(struct reply *reply)
{
	uint8_t active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE] = "none";
	const uint8_t *mek;
	size_t count;

	pthread_rwlock_rdlock(&daemon_state.keyring_lock);
	if (keyring_active(daemon_state.keyring, active_id, &mek) == 0)
		key_id_format(active_id, active_text);
	count = keyring_count(daemon_state.keyring);
	pthread_rwlock_unlock(&daemon_state.keyring_lock);
	reply_add(reply, "backing %s\nwallet %s\nactive_key %s\nkeys %zu\ncache %s\n",
		  daemon_state.backing_path, daemon_state.wallet_path, active_text, count,
		  daemon_state.cache == CACHE_AUTO ? "auto" : "none");
	add_job_status(reply, "rewrap", JOB_REWRAP);
	add_job_status(reply, "data", JOB_DATA_REKEY);
	reply_add(reply, "ok\n");
}

/* "RATE [PATH]": a rate (0 = unlimited) and an optional path below the backing directory. */
static int parse_rate_and_path(char *argument, double *rate, const char **path)
{
	char *end = NULL;

	*rate = 0;
	*path = "";
	if (!argument)
		return 0;
	*rate = strtod(argument, &end);
	if (end == argument || *rate < 0 || (*end && *end != ' '))
		return -EINVAL;
	if (*end == ' ')
		*path = end + 1;
	return 0;
}

static void answer(char *request, struct reply *reply)
{
	char error[KEYSTORE_ERROR_SIZE + 128];
	char *argument = strchr(request, ' ');
	const char *path;
	double rate;

	if (argument)
		*argument++ = '\0';
	if (strcmp(request, "status") == 0) {
		answer_status(reply);
		return;
	}
	if (strcmp(request, "reload") == 0) {
		if (keys_reload(error, sizeof(error)) < 0)
			reply_add(reply, "error %s\n", error);
		else
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "rewrap-start") == 0 || strcmp(request, "data-start") == 0 ||
	    strcmp(request, "data-resume-interrupted") == 0) {
		enum job_kind kind = request[0] == 'r' ? JOB_REWRAP : JOB_DATA_REKEY;
		bool resume_only = strcmp(request, "data-resume-interrupted") == 0;

		if (parse_rate_and_path(argument, &rate, &path) < 0)
			reply_add(reply, "error bad rate or path '%s'\n", argument);
		else if (job_start(kind, path, rate, resume_only, error, sizeof(error)) < 0)
			reply_add(reply, "error %s\n", error);
		else
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "rewrap-stop") == 0 || strcmp(request, "data-stop") == 0) {
		job_stop(request[0] == 'r' ? JOB_REWRAP : JOB_DATA_REKEY);
		reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "data-pause") == 0 || strcmp(request, "data-resume") == 0) {
		if (job_pause(JOB_DATA_REKEY, strcmp(request, "data-pause") == 0) < 0)
			reply_add(reply, "error no data rekey is %s\n",
				  strcmp(request, "data-pause") == 0 ? "running" : "paused");
		else
			reply_add(reply, "ok\n");
		return;
	}
	reply_add(reply, "error unknown request '%s'\n", request);
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
