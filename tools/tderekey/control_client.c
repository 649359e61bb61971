/*
 * The client side of the control channel: find the tdefs mount that holds a path (its st_dev
 * names the daemon's abstract socket), send one request line, read the reply.
 */
#include "tools/tderekey/tderekey.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "fs/format.h"
#include "util/util.h"

int control_request(const char *path, const char *request, struct control_reply *reply)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	struct mount_entry entry;
	struct stat st;
	size_t used = 0;
	socklen_t length;
	int fd, n;

	memset(reply, 0, sizeof(*reply));
	if (stat(path, &st) < 0) {
		fprintf(stderr, "tderekey: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	if (mount_find_by_device(major(st.st_dev), minor(st.st_dev), &entry) < 0 ||
	    strcmp(entry.fs_type, "fuse.tdefs") != 0) {
		fprintf(stderr, "tderekey: %s is not on a tdefs mount\n", path);
		return EXIT_NOT_TDEFS;
	}
	n = snprintf(address.sun_path + 1, sizeof(address.sun_path) - 1, CONTROL_SOCKET_FORMAT,
		     major(st.st_dev), minor(st.st_dev));
	length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, length) < 0) {
		fprintf(stderr, "tderekey: the tdefs daemon of %s does not answer on its control "
				"channel: %s\n", entry.mount_point, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAILED;
	}
	/*
	 * The daemon may answer and close before reading a request it refuses (another user):
	 * a failed send is not the end, the refusal is still there to read.
	 */
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
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
	fprintf(stderr, "tderekey: %s: %s\n", entry.mount_point, reply->error);
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
