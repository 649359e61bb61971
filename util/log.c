/*
 * One logging entry point. The daemon logs to stderr in the foreground and to syslog once it
 * runs in the background; tools always use stderr. When syslog cannot be reached (a container
 * or rescue system without /dev/log) the daemon says so once on stderr, before it leaves the
 * terminal, and writes to the file of -o log=FILE instead when one was given, so no line is
 * lost without a word. tdekey also records each key change in syslog (log_audit).
 *
 * Every line carries the program's name exactly once: callers may or may not start their
 * message with "tdefs: " (older ones do), the prefix is removed here and added back where the
 * destination has none of its own (stderr, the log file; syslog's ident is the prefix there).
 * Callers never pass key material or passwords here: messages name files, key IDs and errno
 * strings only.
 */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SYSLOG_SOCKET "/dev/log"

static bool use_syslog;
static int log_file_fd = -1;
static const char *log_ident;
static enum log_level verbosity = LOG_LEVEL_INFO;

static const char *ident(void)
{
	return log_ident ? log_ident : program_invocation_short_name;
}

/* 0 when a syslog daemon listens on SYSLOG_SOCKET (datagram or stream, as glibc tries). */
static int syslog_reachable(void)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	int error = ENOENT;

	snprintf(address.sun_path, sizeof(address.sun_path), "%s", SYSLOG_SOCKET);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0) {
			close(fd);
			return 0;
		}
		error = errno;
		close(fd);
		if (error != EPROTOTYPE)
			break;
	}
	return -error;
}

void log_use_syslog(const char *name)
{
	log_ident = name;
	openlog(name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	use_syslog = true;
}

int log_open_background(const char *name, const char *fallback_file)
{
	int ret;

	log_ident = name;
	ret = syslog_reachable();
	if (ret == 0) {
		log_use_syslog(name);
		return 0;
	}
	if (!fallback_file) {
		fprintf(stderr,
			"%s: syslog cannot be reached (%s: %s): messages from the background are "
			"lost; give -o log=FILE or run with -f\n",
			name, SYSLOG_SOCKET, strerror(-ret));
		return ret;
	}
	log_file_fd = open(fallback_file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
						  O_NOCTTY, 0600);
	if (log_file_fd < 0) {
		int error = errno;

		fprintf(stderr,
			"%s: syslog cannot be reached (%s: %s), and -o log=%s cannot be opened: %s\n",
			name, SYSLOG_SOCKET, strerror(-ret), fallback_file, strerror(error));
		return -error;
	}
	fprintf(stderr, "%s: syslog cannot be reached (%s: %s): logging to %s\n", name,
		SYSLOG_SOCKET, strerror(-ret), fallback_file);
	return 0;
}

void log_set_verbosity(enum log_level max_level)
{
	verbosity = max_level;
}

/* The message without a leading "NAME: ": the destination adds the name once. */
static const char *without_prefix(const char *text)
{
	size_t n = strlen(ident());

	if (strncmp(text, ident(), n) == 0 && text[n] == ':' && text[n + 1] == ' ')
		return text + n + 2;
	return text;
}

static void write_file_line(int fd, const char *text)
{
	char stamp[32], line[2300];
	struct tm utc;
	time_t now = time(NULL);
	int n;

	gmtime_r(&now, &utc);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
	n = snprintf(line, sizeof(line), "%s %s[%d]: %s\n", stamp, ident(), (int)getpid(), text);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1, line[n - 1] = '\n';
	/* One write(2) per line with O_APPEND: lines from threads never interleave. */
	if (write(fd, line, (size_t)n) < 0)
		return;
}

void log_message(enum log_level level, const char *format, ...)
{
	static const int syslog_priority[] = {
		[LOG_LEVEL_ERROR] = LOG_ERR,
		[LOG_LEVEL_WARNING] = LOG_WARNING,
		[LOG_LEVEL_INFO] = LOG_INFO,
		[LOG_LEVEL_DEBUG] = LOG_DEBUG,
	};
	char text[2048];
	const char *body;
	va_list args;

	if (level > verbosity)
		return;
	va_start(args, format);
	vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	body = without_prefix(text);
	if (use_syslog)
		syslog(syslog_priority[level], "%s", body);
	else if (log_file_fd >= 0)
		write_file_line(log_file_fd, body);
	else
		fprintf(stderr, "%s: %s\n", ident(), body);
}

int log_audit(const char *name, const char *format, ...)
{
	char text[2048];
	va_list args;
	int ret;

	va_start(args, format);
	vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	ret = syslog_reachable();
	if (ret < 0) {
		fprintf(stderr, "%s: syslog cannot be reached (%s: %s): this change is not logged\n",
			name, SYSLOG_SOCKET, strerror(-ret));
		return ret;
	}
	openlog(name, LOG_PID, LOG_AUTHPRIV);
	syslog(LOG_NOTICE, "%s", text);
	closelog();
	return 0;
}
