/*
 * The control channel: a Unix socket file the tools reach by naming any path on the mount
 * (protocol in fs/control_protocol.h). It lives in a directory only the daemon's user can write
 * (/run/tdefs for root), so nobody else can take its name first or put a socket of theirs
 * there; the socket is 0600 and every peer is checked again with SO_PEERCRED: root or the user
 * who mounted. The socket is made before the mount goes to the background (control_open), so
 * a mount that cannot have its channel fails where its caller sees it; one thread then accepts
 * connections and answers one request each (control_start). The requests are cheap (status,
 * starting or stopping a job), so serving them one at a time keeps this simple.
 */
#include "fs/daemon.h"
#include "fs/control_protocol.h"
#include "fs/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "util/util.h"

static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t control_thread;
static bool thread_running;
/* The socket's directory and name, and the inode bind made: removed at stop only if still ours. */
static int directory_fd = -1;
static char socket_name[64];
static char directory_path[PATH_MAX];
static char socket_display[PATH_MAX + 80];
static dev_t socket_dev;
static ino_t socket_ino;
/* What every reply starts with: which mount this daemon serves. */
static char served_device[32];
static char served_mount_point[PATH_MAX];

struct reply {
	char text[CONTROL_REPLY_MAX];
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

static void add_job_status(struct tdefs_daemon *daemon, struct reply *reply, const char *prefix,
			   enum job_kind kind)
{
	struct job_status status;

	job_get_status(daemon, kind, &status);
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
	if (kind == JOB_ENCRYPT)
		reply_add(reply, "%s_bytes %llu\n", prefix, (unsigned long long)status.bytes_done);
	if (status.current[0])
		reply_add(reply, "%s_current %s\n%s_current_done %llu\n%s_current_total %llu\n",
			  prefix, status.current, prefix, (unsigned long long)status.current_done,
			  prefix, (unsigned long long)status.current_total);
	if (status.last_error[0])
		reply_add(reply, "%s_last_error %s\n", prefix, status.last_error);
}

/* A data rekey that has not finished, from its record: which path, and whether it was stopped. */
static void add_rekey_record(struct tdefs_daemon *daemon, struct reply *reply)
{
	uint8_t id[REKEY_JOB_ID_SIZE];
	char path[PATH_MAX];
	bool stopped;
	double rate;

	if (data_rekey_record_read(daemon, id, &stopped, path, sizeof(path), &rate) == 0)
		reply_add(reply, "data_unfinished /%.400s\ndata_unfinished_stopped %d\n", path,
			  stopped);
}

static void answer_status(struct tdefs_daemon *daemon, struct reply *reply)
{
	uint8_t active_id[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE] = "none";
	const uint8_t *mek;
	struct stat backing_st;
	size_t count;

	pthread_rwlock_rdlock(&daemon->keyring_lock);
	if (keyring_active(daemon->keyring, active_id, &mek) == 0)
		key_id_format(active_id, active_text);
	count = keyring_count(daemon->keyring);
	pthread_rwlock_unlock(&daemon->keyring_lock);
	reply_add(reply, "backing %s\nwallet %s\nactive_key %s\nkeys %zu\ncache %s\n",
		  daemon->backing_path, daemon->wallet_path, active_text, count,
		  cache_mode_name(daemon->cache));
	/* Which directory that is, so a tool can tell it from one put at the path since. */
	if (fstat(daemon->backing_fd, &backing_st) == 0)
		reply_add(reply, "backing_id %llu:%llu\n", (unsigned long long)backing_st.st_dev,
			  (unsigned long long)backing_st.st_ino);
	reply_add(reply, "keystore %s\nkey_cache_seconds %u\nkey_cache_entries %zu\n",
		  keystore_is_closed() ? "CLOSED" : "OPEN", key_cache_seconds(), key_cache_count());
	add_job_status(daemon, reply, "rewrap", JOB_REWRAP);
	add_job_status(daemon, reply, "data", JOB_DATA_REKEY);
	if (key_server_wallet(daemon) || hsm_heartbeat_watching())
		reply_add(reply, "key_status %s\n", key_server_status());
	add_rekey_record(daemon, reply);
	reply_add(reply, "adopted %d\nrequire_encrypted %d\n", daemon->adopted,
		  daemon->require_encrypted);
	if (daemon->adopted)
		add_job_status(daemon, reply, "encrypt", JOB_ENCRYPT);
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

/*
 * An error with the exit code the tool ends with (tools/cli/cli.h), for the failures a script
 * must tell apart: a wrong password, files open at a close, a closed keystore.
 */
static void reply_error_code(struct reply *reply, int exit_code, const char *message)
{
	reply_add(reply, "exit_code %d\nerror %s\n", exit_code, message);
}

/*
 * keystore-close [force] and keystore-open [password]. With "password" the password follows
 * the request line on the socket and is read from it by the keystore's reader, byte by byte
 * into locked memory (keystore/password.c), as a password descriptor at mount is: it never
 * passes through the request buffer, a reply or a log line.
 */
static void answer_keystore(struct tdefs_daemon *daemon, const char *request,
			    const char *argument, int fd, struct reply *reply)
{
	char error[KEYSTORE_ERROR_SIZE + 256];
	int ret;

	if (strcmp(request, "keystore-close") == 0) {
		bool force = argument && strcmp(argument, "force") == 0;

		if (argument && !force) {
			reply_add(reply, "error bad argument '%s' (force or none)\n", argument);
			return;
		}
		ret = keystore_close(daemon, force, error, sizeof(error));
		if (ret == -EBUSY)
			reply_error_code(reply, CLI_EXIT_FILES_OPEN, error);
		else if (ret < 0)
			reply_add(reply, "error %s\n", error);
		else
			reply_add(reply, "already %d\nkeystore CLOSED\nok\n", ret);
		return;
	}
	if (argument && strcmp(argument, "password") != 0) {
		reply_add(reply, "error bad argument '%s' (password or none)\n", argument);
		return;
	}
	if (argument) {
		/* A client that stops sending leaves the channel free again after 5 s. */
		struct timeval limit = { .tv_sec = 5 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
	}
	ret = keystore_open(daemon, argument ? fd : -1, error, sizeof(error));
	if (ret < 0)
		reply_error_code(reply, wallet_exit_code(ret), error);
	else
		reply_add(reply, "already %d\nkeystore OPEN\nok\n", ret);
}

/* A refusal because the keystore is closed (-EKEYREVOKED) has its own exit code. */
static void reply_job_error(struct reply *reply, int ret, const char *error)
{
	enum keystore_error meaning = keystore_error_of(ret);

	if (ret == -EKEYREVOKED)
		reply_error_code(reply, CLI_EXIT_KEYSTORE_CLOSED, error);
	else if (meaning == KEYSTORE_ERR_KEY_SERVER_UNREACHABLE ||
		 meaning == KEYSTORE_ERR_KEY_SERVER_REFUSED)
		/* A key server's failure: its own exit code, as at mount. */
		reply_error_code(reply, wallet_exit_code(ret), error);
	else
		reply_add(reply, "error %s\n", error);
}

static void answer(struct tdefs_daemon *daemon, char *request, int fd, struct reply *reply)
{
	char error[KEYSTORE_ERROR_SIZE + 128];
	char *argument = strchr(request, ' ');
	const char *path;
	double rate;
	int ret;

	if (argument)
		*argument++ = '\0';
	if (strcmp(request, "status") == 0) {
		answer_status(daemon, reply);
		return;
	}
	if (strcmp(request, "metrics") == 0) {
		/* Rendered in place: the greeting has been sent, the reply starts empty. */
		int length = metrics_render(daemon, reply->text + reply->used,
					    sizeof(reply->text) - reply->used - 64);

		if (length < 0)
			reply_add(reply, "error the metrics do not fit in a reply\n");
		else
			reply->used += (size_t)length;
		if (length >= 0)
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "keystore-close") == 0 || strcmp(request, "keystore-open") == 0) {
		answer_keystore(daemon, request, argument, fd, reply);
		return;
	}
	if (strcmp(request, "reload") == 0) {
		if ((ret = keys_reload(daemon, error, sizeof(error))) < 0)
			reply_job_error(reply, ret, error);
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
		else if ((ret = job_start(daemon, kind, path, rate, resume_only, error,
					  sizeof(error))) < 0)
			reply_job_error(reply, ret, error);
		else
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "rewrap-stop") == 0 || strcmp(request, "data-stop") == 0) {
		job_stop_on_request(daemon, request[0] == 'r' ? JOB_REWRAP : JOB_DATA_REKEY);
		reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "encrypt-start") == 0) {
		if (parse_rate_and_path(argument, &rate, &path) < 0)
			reply_add(reply, "error bad rate or path '%s'\n", argument);
		else if ((ret = job_start(daemon, JOB_ENCRYPT, path, rate, false, error,
					  sizeof(error))) < 0)
			reply_job_error(reply, ret, error);
		else
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "encrypt-stop") == 0) {
		/* Asked for: not taken up again at the next mount (a crash or an unmount is). */
		job_stop(daemon, JOB_ENCRYPT);
		if (encrypt_record_job(daemon, false, NULL, 0) < 0)
			reply_add(reply, "error cannot remove the conversion's record: %s\n",
				  strerror(errno));
		else
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "encrypt-pause") == 0 || strcmp(request, "encrypt-resume") == 0) {
		if (job_pause(daemon, JOB_ENCRYPT, strcmp(request, "encrypt-pause") == 0) < 0)
			reply_add(reply, "error no conversion is %s\n",
				  strcmp(request, "encrypt-pause") == 0 ? "running" : "paused");
		else
			reply_add(reply, "ok\n");
		return;
	}
	if (strcmp(request, "data-pause") == 0 || strcmp(request, "data-resume") == 0) {
		if (job_pause(daemon, JOB_DATA_REKEY, strcmp(request, "data-pause") == 0) < 0)
			reply_add(reply, "error no data rekey is %s\n",
				  strcmp(request, "data-pause") == 0 ? "running" : "paused");
		else
			reply_add(reply, "ok\n");
		return;
	}
	reply_add(reply, "error unknown request '%s'\n", request);
}

/*
 * Every refused request is logged once: who asked (uid, pid), what (printable characters only,
 * cut short: the request comes from a local user) and why.
 */
static void log_refusal(const struct ucred *peer, bool known, const char *request,
			const struct reply *reply)
{
	const char *error = reply->text;
	char shown[128];
	size_t n = 0;

	while (error && strncmp(error, "error ", 6) != 0) {
		error = strchr(error, '\n');
		if (error)
			error++;
	}
	if (!error)
		return;
	metrics_add(&metrics.control_refused, 1);
	for (const char *p = request; *p && n < sizeof(shown) - 1; p++)
		shown[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	shown[n] = '\0';
	log_warning("control request '%s' from uid %ld pid %ld refused: %.*s", shown,
		    known ? (long)peer->uid : -1L, known ? (long)peer->pid : -1L,
		    (int)strcspn(error + 6, "\n"), error + 6);
}

static void serve(struct tdefs_daemon *daemon, int fd)
{
	char request[CONTROL_LINE_MAX];
	struct reply reply = { .used = 0 };
	struct ucred peer;
	socklen_t peer_len = sizeof(peer);
	size_t used = 0;

	/*
	 * The greeting first, before the request is read: the tool checks that it reached the
	 * daemon of the mount it means before it sends anything that would start a job.
	 */
	reply_add(&reply, "device %s\nmount_point %s\n", served_device, served_mount_point);
	if (write(fd, reply.text, reply.used) < 0)
		return;
	reply.used = 0;
	bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) == 0;

	if (!known || (peer.uid != 0 && peer.uid != getuid())) {
		reply_add(&reply, "error permission denied: only root or the user who mounted "
				  "may use the control channel\n");
		log_refusal(&peer, known, "", &reply);
		goto out_send;
	}
	/*
	 * Read one line, a byte at a time: what follows it (the password of keystore-open) is
	 * not the request's, and stays on the socket for its own reader. A client that sends
	 * nothing for 5 s is dropped.
	 */
	while (used < sizeof(request) - 1) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 5000) <= 0)
			return;
		n = read(fd, request + used, 1);
		if (n <= 0)
			break;
		if (request[used] == '\n')
			break;
		used++;
	}
	request[used] = '\0';
	request[strcspn(request, "\r\n")] = '\0';
	answer(daemon, request, fd, &reply);
	log_refusal(&peer, known, request, &reply);
out_send:
	if (write(fd, reply.text, reply.used) < 0)
		log_debug("tdefs: control reply lost: %s", strerror(errno));
}

static void *accept_loop(void *argument)
{
	struct tdefs_daemon *daemon = argument;

	for (;;) {
		int ready = wait_readable_or_stop(listen_fd, stop_pipe[0]), fd;

		if (ready == 0)
			break;
		if (ready < 0)
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(daemon, fd);
		close(fd);
	}
	return NULL;
}

/* The address of NAME in the directory open as DIRECTORY: by descriptor, never by path again. */
static socklen_t socket_address(int directory, const char *name, struct sockaddr_un *address)
{
	int n;

	memset(address, 0, sizeof(*address));
	address->sun_family = AF_UNIX;
	n = snprintf(address->sun_path, sizeof(address->sun_path), "/proc/self/fd/%d/%s", directory,
		     name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

/*
 * BASE/NAME as a directory that only our user can write: made with MODE if missing; if it is
 * there, it must be a real directory (not a symlink) owned by us, with no write bits for group
 * or others (and, for a user's own directory, no access for them at all). BASE itself must not
 * be writable by others, who could otherwise rename our directory away and put theirs there.
 */
static int open_private_directory(const char *base, const char *name, mode_t mode,
				  char *error, size_t error_size)
{
	uid_t uid = geteuid();
	mode_t forbidden = uid == 0 ? 022 : 077;
	char path[PATH_MAX];
	bool created;
	struct stat st;
	int base_fd, fd, ret;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (base_fd < 0 || fstat(base_fd, &st) < 0) {
		ret = -errno;
		snprintf(error, error_size, "%s: %s", base, strerror(errno));
		goto out;
	}
	if ((st.st_uid != 0 && st.st_uid != uid) || (st.st_mode & 022)) {
		snprintf(error, error_size,
			 "%s (owner uid %u, mode %04o) can be changed by others, who could replace "
			 "%s; fix: chown %u %s; chmod go-w %s",
			 base, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), path,
			 (unsigned)uid, base, base);
		ret = -EPERM;
		goto out;
	}
	created = mkdirat(base_fd, name, mode) == 0;
	if (!created && errno != EEXIST) {
		ret = -errno;
		snprintf(error, error_size, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (fstatat(base_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
			snprintf(error, error_size,
				 "%s is %s, not a directory that only %s can write; fix: rm %s "
				 "(tdefs then creates it)",
				 path, S_ISLNK(st.st_mode) ? "a symlink" : "not a directory",
				 uid == 0 ? "root" : "the mounting user", path);
		else
			snprintf(error, error_size, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (created && fchmod(fd, mode) < 0) {
		ret = -errno;
		snprintf(error, error_size, "chmod %04o %s: %s", (unsigned)mode, path, strerror(errno));
		close(fd);
		goto out;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != uid || (st.st_mode & forbidden)) {
		snprintf(error, error_size,
			 "%s (owner uid %u, mode %04o) must be owned by uid %u and %s; fix: chown %u "
			 "%s; chmod %04o %s",
			 path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)uid,
			 uid == 0 ? "not writable by group or others" : "closed to group and others",
			 (unsigned)uid, path, (unsigned)mode, path);
		close(fd);
		ret = -EPERM;
		goto out;
	}
	snprintf(directory_path, sizeof(directory_path), "%s", path);
	ret = fd;
out:
	if (base_fd >= 0)
		close(base_fd);
	return ret;
}

/*
 * Root's sockets go to /run/tdefs. Another user's go to their runtime directory, where the tools
 * look too: /run/user/UID (made by the login manager) or else $XDG_RUNTIME_DIR.
 */
static int open_socket_directory(char *error, size_t error_size)
{
	uid_t uid = geteuid();
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	char base[64];
	struct stat st;

	if (uid == 0)
		return open_private_directory("/run", "tdefs", 0755, error, error_size);
	snprintf(base, sizeof(base), "/run/user/%u", (unsigned)uid);
	if (lstat(base, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid)
		return open_private_directory(base, "tdefs", 0700, error, error_size);
	if (runtime && runtime[0] == '/')
		return open_private_directory(runtime, "tdefs", 0700, error, error_size);
	snprintf(error, error_size,
		 "no runtime directory for the control channel: %s is missing and XDG_RUNTIME_DIR "
		 "is not set (log in through the login manager, or set XDG_RUNTIME_DIR to a "
		 "directory of yours with mode 0700)",
		 base);
	return -ENOENT;
}

/*
 * A socket left by a daemon that died is removed; anything else under our name (another file
 * type, or a socket someone still listens on) is not ours to remove.
 */
static int remove_stale_socket(char *error, size_t error_size)
{
	struct sockaddr_un address;
	socklen_t length;
	struct stat st;
	int probe, connected = -1, connect_errno = 0;

	if (fstatat(directory_fd, socket_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(error, error_size, "%s exists and is not a socket; fix: rm %s",
			 socket_display, socket_display);
		return -EEXIST;
	}
	/*
	 * A daemon whose mount has just gone (an unmount, then a mount at once: the kernel hands
	 * the device number out again) still listens for the few milliseconds it takes to exit:
	 * give it three seconds before calling the name taken.
	 */
	for (int attempt = 0; attempt < 60; attempt++) {
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		length = socket_address(directory_fd, socket_name, &address);
		connected = connect(probe, (struct sockaddr *)&address, length);
		connect_errno = errno;
		close(probe);
		if (connected < 0)
			break;
		usleep(50000);
	}
	if (connected == 0) {
		snprintf(error, error_size,
			 "%s is in use by another running process (a daemon whose mount is gone?); "
			 "stop it, or remove the socket: rm %s",
			 socket_display, socket_display);
		return -EADDRINUSE;
	}
	if (connect_errno != ECONNREFUSED) {
		snprintf(error, error_size, "%s: %s", socket_display, strerror(connect_errno));
		return -connect_errno;
	}
	if (unlinkat(directory_fd, socket_name, 0) < 0)
		return -errno;
	log_info("tdefs: removed the stale control socket %s", socket_display);
	return 0;
}

static void close_all(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	if (directory_fd >= 0)
		close(directory_fd);
	for (int i = 0; i < 2; i++)
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
	listen_fd = directory_fd = stop_pipe[0] = stop_pipe[1] = -1;
}

int control_open(const char *mountpoint, char *error, size_t error_size)
{
	struct sockaddr_un address;
	struct mount_entry entry;
	char *resolved = realpath(mountpoint, NULL);
	socklen_t length;
	struct stat st;
	mode_t old_umask;
	int ret;

	error[0] = '\0';
	if (!resolved) {
		snprintf(error, error_size, "%s: %s", mountpoint, strerror(errno));
		return -errno;
	}
	/* Found through mountinfo: a stat of our own mount point would wait on this very daemon. */
	ret = mount_find_by_point(resolved, &entry);
	snprintf(served_mount_point, sizeof(served_mount_point), "%s", resolved);
	free(resolved);
	if (ret < 0) {
		snprintf(error, error_size, "%s is not in the mount table: %s", mountpoint,
			 strerror(-ret));
		return ret;
	}
	snprintf(served_device, sizeof(served_device), "%u:%u", entry.major, entry.minor);
	snprintf(socket_name, sizeof(socket_name), CONTROL_SOCKET_FORMAT, entry.major, entry.minor);
	directory_fd = open_socket_directory(error, error_size);
	if (directory_fd < 0)
		return directory_fd;
	snprintf(socket_display, sizeof(socket_display), "%s/%s", directory_path, socket_name);
	ret = remove_stale_socket(error, error_size);
	if (ret < 0)
		goto fail;
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || pipe2(stop_pipe, O_CLOEXEC) < 0) {
		ret = -errno;
		goto fail;
	}
	/* Born 0600: there is no moment at which others may connect (not that they would pass). */
	length = socket_address(directory_fd, socket_name, &address);
	old_umask = umask(0177);
	ret = bind(listen_fd, (struct sockaddr *)&address, length);
	umask(old_umask);
	if (ret < 0) {
		ret = -errno;
		goto fail;
	}
	if (fstatat(directory_fd, socket_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || listen(listen_fd, 8) < 0) {
		ret = -errno;
		unlinkat(directory_fd, socket_name, 0);
		goto fail;
	}
	socket_dev = st.st_dev;
	socket_ino = st.st_ino;
	return 0;
fail:
	if (!error[0])
		snprintf(error, error_size, "%s: %s", socket_display, strerror(-ret));
	close_all();
	return ret;
}

int control_start(struct tdefs_daemon *daemon)
{
	int ret = -pthread_create(&control_thread, NULL, accept_loop, daemon);

	thread_running = ret == 0;
	return ret;
}

void control_stop(void)
{
	struct stat st;

	if (listen_fd < 0)
		return;
	if (thread_running && write(stop_pipe[1], "x", 1) == 1)
		pthread_join(control_thread, NULL);
	thread_running = false;
	/* Our name only if it is still our socket (a daemon of a later mount may have reused it). */
	if (fstatat(directory_fd, socket_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == socket_dev && st.st_ino == socket_ino)
		unlinkat(directory_fd, socket_name, 0);
	close_all();
}
