/*
 * One logging entry point. The daemon logs to syslog once it runs in the background and to
 * stderr in the foreground; tools always use stderr. Callers never pass key material or
 * passwords here: messages name files, key IDs and errno strings only.
 */
#include "util/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <syslog.h>

static bool use_syslog;
static enum log_level verbosity = LOG_LEVEL_INFO;

void log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	use_syslog = true;
}

void log_set_verbosity(enum log_level max_level)
{
	verbosity = max_level;
}

void log_message(enum log_level level, const char *format, ...)
{
	static const int syslog_priority[] = {
		[LOG_LEVEL_ERROR] = LOG_ERR,
		[LOG_LEVEL_WARNING] = LOG_WARNING,
		[LOG_LEVEL_INFO] = LOG_INFO,
		[LOG_LEVEL_DEBUG] = LOG_DEBUG,
	};
	va_list args;

	if (level > verbosity)
		return;
	va_start(args, format);
	if (use_syslog) {
		vsyslog(syslog_priority[level], format, args);
	} else {
		vfprintf(stderr, format, args);
		fputc('\n', stderr);
	}
	va_end(args);
}
