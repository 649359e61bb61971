/*
 * The client side of the control channel: find the tdefs mount that holds a path, find its
 * daemon's socket, make sure it is that daemon, send one request line, read the reply.
 *
 * Who answers is checked three ways before a request is sent or a reply believed, so that a
 * local user cannot stand in for the daemon (and answer "done" while nothing happened):
 *   1. the socket's directory and file: the place fs/control_protocol.h names for the mount's owner
 *      (FUSE's user_id= in the mount table), a real directory owned by root or that owner and
 *      writable by nobody else, holding a socket owned by one of them, not writable by others;
 *   2. the server's SO_PEERCRED uid: root or the mount's owner;
 *   3. the daemon's greeting names the device number of the mount it serves: it must be the
 *      one of the path asked about (a daemon of another mount, a stale name, is refused)
 *      before the request is sent.
 * A failed check is EXIT_UNTRUSTED with a message that says which one and what to fix.
 */
#include "tools/tderekey/tderekey.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "fs/control_protocol.h"
#include "keystore/wallet.h"
#include "util/util.h"

/* Where the daemon of a mount put its socket: its directory and name, and who may own them. */
struct channel {
	uid_t owner; /* the mount's owner */
	char directory[PATH_MAX];
	char name[64];
	char path[PATH_MAX + 80]; /* for messages */
	int directory_fd;
};

static bool trusted_owner(uid_t uid, uid_t owner)
{
	return uid == 0 || uid == owner;
}

/*
 * Opens the socket directory DIRECTORY (without following a symlink) and checks it and the
 * socket in it. Returns 0, -ENOENT when there is no such socket there (the caller may look
 * elsewhere), or an exit code after a message.
 */
static int open_channel(struct channel *channel, const char *directory, const char *mount_point)
{
	struct stat st;
	int fd;

	snprintf(channel->directory, sizeof(channel->directory), "%s", directory);
	snprintf(channel->path, sizeof(channel->path), "%s/%s", directory, channel->name);
	fd = open(directory, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "tderekey: %s: control channel directory %s: %s\n", mount_point,
			directory, errno == ELOOP || errno == ENOTDIR ? "not a directory (a symlink?)"
								   : strerror(errno));
		if (fd >= 0)
			close(fd);
		return errno == EACCES ? EXIT_DENIED : EXIT_UNTRUSTED;
	}
	if (!trusted_owner(st.st_uid, channel->owner) || (st.st_mode & 022)) {
		fprintf(stderr,
			"tderekey: %s: refusing the control channel: its directory %s (owner uid %u, "
			"mode %04o) could hold anyone's socket; it must be owned by root or uid %u and "
			"writable by nobody else: chown %u %s; chmod go-w %s\n",
			mount_point, directory, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			(unsigned)channel->owner, (unsigned)channel->owner, directory, directory);
		close(fd);
		return EXIT_UNTRUSTED;
	}
	if (fstatat(fd, channel->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int error = errno;

		close(fd);
		if (error == ENOENT)
			return -ENOENT;
		fprintf(stderr, "tderekey: %s: control socket %s: %s\n", mount_point, channel->path,
			strerror(error));
		return error == EACCES ? EXIT_DENIED : EXIT_FAILED;
	}
	if (!S_ISSOCK(st.st_mode) || !trusted_owner(st.st_uid, channel->owner) ||
	    (st.st_mode & 022)) {
		fprintf(stderr,
			"tderekey: %s: refusing the control socket %s (%s, owner uid %u, mode %04o): "
			"the daemon's socket is owned by root or the mount's owner (uid %u) and "
			"writable by nobody else\n",
			mount_point, channel->path, S_ISSOCK(st.st_mode) ? "a socket" : "not a socket",
			(unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)channel->owner);
		close(fd);
		return EXIT_UNTRUSTED;
	}
	channel->directory_fd = fd;
	return 0;
}

/*
 * The places fs/control.c may have put the socket: /run/tdefs for a mount by root; for another
 * user's mount their /run/user/UID/tdefs, or (when that user runs us) $XDG_RUNTIME_DIR/tdefs.
 */
static int find_channel(struct channel *channel, const struct mount_entry *entry)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	char directory[PATH_MAX];
	int ret;

	if (entry->user_id < 0) {
		fprintf(stderr, "tderekey: %s: the mount table does not say who mounted it (no "
				"user_id=): refusing to guess whose daemon may answer\n",
			entry->mount_point);
		return EXIT_UNTRUSTED;
	}
	channel->owner = (uid_t)entry->user_id;
	channel->directory_fd = -1;
	snprintf(channel->name, sizeof(channel->name), CONTROL_SOCKET_FORMAT, entry->major,
		 entry->minor);
	if (channel->owner == 0) {
		ret = open_channel(channel, CONTROL_DIRECTORY_ROOT, entry->mount_point);
	} else {
		snprintf(directory, sizeof(directory), CONTROL_DIRECTORY_USER,
			 (unsigned)channel->owner);
		ret = open_channel(channel, directory, entry->mount_point);
		if (ret == -ENOENT && runtime && runtime[0] == '/' && geteuid() == channel->owner) {
			snprintf(directory, sizeof(directory), "%s/tdefs", runtime);
			ret = open_channel(channel, directory, entry->mount_point);
		}
	}
	if (ret == -ENOENT) {
		fprintf(stderr, "tderekey: the tdefs daemon of %s does not answer on its control "
				"channel: no socket %s\n",
			entry->mount_point, channel->path);
		return EXIT_FAILED;
	}
	return ret;
}

/* Connects through the directory's descriptor and checks who listens: root or the owner. */
static int connect_channel(const struct channel *channel, const char *mount_point)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	struct ucred peer;
	socklen_t peer_length = sizeof(peer), length;
	int fd, n;

	n = snprintf(address.sun_path, sizeof(address.sun_path), "/proc/self/fd/%d/%s",
		     channel->directory_fd, channel->name);
	length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, length) < 0) {
		int error = errno;

		if (fd >= 0)
			close(fd);
		if (error == EACCES || error == EPERM) {
			fprintf(stderr, "tderekey: %s: permission denied: only root or the user who "
					"mounted may use the control channel\n",
				mount_point);
			return -EXIT_DENIED;
		}
		fprintf(stderr, "tderekey: the tdefs daemon of %s does not answer on its control "
				"channel %s: %s\n",
			mount_point, channel->path, strerror(error));
		return -EXIT_FAILED;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) < 0 ||
	    !trusted_owner(peer.uid, channel->owner)) {
		fprintf(stderr,
			"tderekey: %s: refusing the control socket %s: it is served by uid %d "
			"(pid %d), not by root or the mount's owner (uid %u): not this mount's "
			"daemon\n",
			mount_point, channel->path, (int)peer.uid, (int)peer.pid,
			(unsigned)channel->owner);
		close(fd);
		return -EXIT_UNTRUSTED;
	}
	return fd;
}

/*
 * A FUSE mount without allow_other (another user's) refuses even root a stat(2). Its mount
 * point is still in the mount table: realpath(3) reads links only, which the mount root
 * answers without asking its daemon. Sets st_dev; errno is left as stat set it otherwise.
 */
static bool mount_point_of_closed_mount(const char *path, struct stat *st)
{
	int saved = errno;
	char *resolved = saved == EACCES ? realpath(path, NULL) : NULL;
	struct mount_entry entry;
	bool found = resolved && mount_find_by_point(resolved, &entry) == 0;

	free(resolved);
	errno = saved;
	if (found)
		st->st_dev = makedev(entry.major, entry.minor);
	return found;
}

/*
 * A mount whose daemon died stays in the mount table and answers ENOTCONN until it is
 * unmounted; a stat may still come from the kernel's attribute cache, an open cannot.
 */
static bool mount_is_stale(const char *mount_point)
{
	int fd = open(mount_point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == ENOTCONN;
}

static int report_stale(const char *mount_point)
{
	fprintf(stderr,
		"tderekey: %s: the tdefs daemon of this mount is gone (Transport endpoint is not "
		"connected); recover: fusermount3 -u %s, then mount it again\n",
		mount_point, mount_point);
	return EXIT_STALE;
}

static int request_internal(const char *path, const char *request, const struct secret *secret,
			    bool quiet, struct control_reply *reply);

int control_request(const char *path, const char *request, struct control_reply *reply)
{
	return request_internal(path, request, NULL, false, reply);
}

int control_request_secret(const char *path, const char *request, const struct secret *secret,
			   struct control_reply *reply)
{
	return request_internal(path, request, secret, false, reply);
}

int control_request_quiet(const char *path, const char *request, struct control_reply *reply)
{
	return request_internal(path, request, NULL, true, reply);
}

static int request_internal(const char *path, const char *request, const struct secret *secret,
			    bool quiet, struct control_reply *reply)
{
	struct channel channel;
	struct mount_entry entry;
	char expected[32], device[64] = "(none)", served[PATH_MAX];
	unsigned long long code;
	struct stat st;
	size_t used = 0;
	int fd, ret;

	memset(reply, 0, sizeof(*reply));
	if (stat(path, &st) < 0) {
		int error = errno;

		if (error == ENOTCONN) {
			struct mount_entry stale;
			char *resolved = realpath(path, NULL);
			bool known = resolved && mount_find_by_point(resolved, &stale) == 0;

			free(resolved);
			return report_stale(known ? stale.mount_point : path);
		}
		if (!mount_point_of_closed_mount(path, &st)) {
			fprintf(stderr, "tderekey: %s: %s\n", path, strerror(error));
			return EXIT_USAGE;
		}
	}
	if (mount_find_by_device(major(st.st_dev), minor(st.st_dev), &entry) < 0 ||
	    strcmp(entry.fs_type, "fuse.tdefs") != 0) {
		fprintf(stderr, "tderekey: %s is not on a tdefs mount\n", path);
		return EXIT_NOT_TDEFS;
	}
	if (mount_is_stale(entry.mount_point))
		return report_stale(entry.mount_point);
	ret = find_channel(&channel, &entry);
	if (ret)
		return ret;
	fd = connect_channel(&channel, entry.mount_point);
	close(channel.directory_fd);
	if (fd < 0)
		return -fd;
	/* The greeting: two lines, naming the mount this daemon serves. */
	while (used < sizeof(reply->text) - 1) {
		char *newline = memchr(reply->text, '\n', used);
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t got;

		if (newline && memchr(newline + 1, '\n', used - (size_t)(newline + 1 - reply->text)))
			break;
		if (poll(&pfd, 1, 5000) <= 0)
			break;
		got = read(fd, reply->text + used, sizeof(reply->text) - 1 - used);
		if (got <= 0)
			break;
		used += (size_t)got;
	}
	reply->text[used] = '\0';
	snprintf(expected, sizeof(expected), "%u:%u", major(st.st_dev), minor(st.st_dev));
	if (!reply_value(reply, "device", device, sizeof(device)) || strcmp(device, expected) != 0) {
		if (!reply_value(reply, "mount_point", served, sizeof(served)))
			snprintf(served, sizeof(served), "?");
		fprintf(stderr,
			"tderekey: %s: refusing %s: it comes from the daemon of device %s (%s), not "
			"of this mount (device %s)\n",
			entry.mount_point, channel.path, device, served, expected);
		close(fd);
		memset(reply, 0, sizeof(*reply));
		return EXIT_UNTRUSTED;
	}
	/*
	 * The daemon may answer and close before reading a request it refuses (another user):
	 * a failed send is not the end, the refusal is still there to read.
	 */
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		shutdown(fd, SHUT_WR);
	/* Only after the greeting proved the daemon: straight from locked memory to the socket. */
	else if (secret && (send(fd, secret->bytes, secret->len, MSG_NOSIGNAL) < 0 ||
			    send(fd, "\n", 1, MSG_NOSIGNAL) < 0))
		shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t got = read(fd, reply->text + used, sizeof(reply->text) - 1 - used);
		if (got <= 0)
			break;
		used += (size_t)got;
	}
	close(fd);
	reply->text[used] = '\0';
	/* The last line says how it went. */
	char *last = reply->text + used;
	while (last > reply->text && last[-1] == '\n')
		*--last = '\0';
	while (last > reply->text && last[-1] != '\n')
		last--;
	if (strcmp(last, "ok") == 0) {
		reply->ok = true;
		return EXIT_OK;
	}
	reply->error = strncmp(last, "error ", 6) == 0 ? last + 6 : "no reply from the daemon";
	if (!quiet)
		fprintf(stderr, "tderekey: %s: %s\n", entry.mount_point, reply->error);
	/* A failure a script must tell apart comes with its exit code (fs/control_protocol.h). */
	code = reply_number(reply, "exit_code");
	if (code > 0 && code < CLI_EXIT_COUNT)
		return (int)code;
	return strstr(reply->error, "permission denied") ? EXIT_DENIED : EXIT_FAILED;
}

const char *reply_value(const struct control_reply *reply, const char *key, char *buf, size_t len)
{
	size_t key_len = strlen(key);

	for (const char *line = reply->text; *line;) {
		const char *end = strchr(line, '\n');
		size_t line_len = end ? (size_t)(end - line) : strlen(line);

		if (line_len > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == ' ') {
			size_t value_len = line_len - key_len - 1;
			if (value_len >= len)
				value_len = len - 1;
			memcpy(buf, line + key_len + 1, value_len);
			buf[value_len] = '\0';
			return buf;
		}
		if (!end)
			break;
		line = end + 1;
	}
	return NULL;
}

int open_reported_backing(const struct control_reply *reply, char *backing, size_t backing_size)
{
	char id[64];
	unsigned long long dev, ino;
	struct stat st;
	int fd;

	if (!reply_value(reply, "backing", backing, backing_size) ||
	    !reply_value(reply, "backing_id", id, sizeof(id)) ||
	    sscanf(id, "%llu:%llu", &dev, &ino) != 2) {
		fprintf(stderr, "tderekey: the daemon did not name its backing directory\n");
		return -EPROTO;
	}
	fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int ret = -errno;

		fprintf(stderr, "tderekey: cannot open backing directory %s: %s\n", backing,
			strerror(-ret));
		return ret;
	}
	/*
	 * The path is only where the daemon found its directory at mount: whoever can write a
	 * directory above it may since have put another tree there. Read nothing but the daemon's.
	 */
	if (fstat(fd, &st) < 0 || (unsigned long long)st.st_dev != dev ||
	    (unsigned long long)st.st_ino != ino) {
		fprintf(stderr, "tderekey: %s is no longer the daemon's backing directory (it was "
				"moved or replaced since the mount); not reading it\n", backing);
		close(fd);
		return -ESTALE;
	}
	return fd;
}
