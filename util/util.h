/*
 * util: the small pieces every tdefs module shares and that have nothing to do with crypto:
 * explicit little-endian encoding for on-disk structures, crash-safe replacement of a metadata
 * file (temp file, fsync, rename, directory fsync), crash points for the tests that prove it,
 * and one logging entry point so that the daemon can send its lines to syslog or stderr.
 *
 * All functions return 0 or a negative errno.
 */
#ifndef TDEFS_UTIL_H
#define TDEFS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void store_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void store_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t load_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t load_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Write all of buf at offset, retrying short writes and EINTR. */
int pwrite_all(int fd, const void *buf, size_t len, off_t offset);
/* Read up to len bytes at offset; *done gets how many were read before end of file. */
int pread_full(int fd, void *buf, size_t len, off_t offset, size_t *done);

/* Read a whole (small) file into a malloc'd buffer; refuses files larger than max_len. */
int read_small_file(const char *path, size_t max_len, uint8_t **data, size_t *len);
/* The same for an open descriptor (checked by the caller first); it stays open. */
int read_small_fd(int fd, size_t max_len, uint8_t **data, size_t *len);

/*
 * Replace path with data so that a crash at any instant leaves either the old or the new
 * content: write path.tmp-XXXX, fsync it, rename over path, fsync the directory.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

int fsync_parent_directory(const char *path);

/*
 * The wait of a service thread (the control socket, the wallet watch): 1 when fd is readable,
 * 0 when stop_fd is (the thread is told to end) or poll fails, -1 to wait again (EINTR, an
 * event that is not input).
 */
int wait_readable_or_stop(int fd, int stop_fd);

/*
 * Crash points. In a build with -Dfault_injection=true, fault_point("name") counts calls and
 * kills the process with SIGKILL when the count reaches $TDEFS_FAULT_AT, so a test can stop a
 * writer between any two of its durable steps. In other builds it compiles to nothing.
 */
#ifdef TDEFS_FAULT_INJECTION
void fault_point(const char *name);
#else
static inline void fault_point(const char *name)
{
	(void)name;
}
#endif

/*
 * Pause points, for races: in a fault-injection build, fault_pause("name") sleeps 300 ms when
 * $TDEFS_FAULT_PAUSE is that name, so a test can hold one thread at the instant another must
 * not break it (a freed ring read after its lock went). In other builds it compiles to nothing.
 */
#ifdef TDEFS_FAULT_INJECTION
void fault_pause(const char *name);
#else
static inline void fault_pause(const char *name)
{
	(void)name;
}
#endif

/*
 * One line of /proc/self/mountinfo. Tools find the tdefs mount that holds a path by the path's
 * st_dev; the daemon finds its own mount by mount point, without touching its own filesystem;
 * a second daemon names the mount that holds a backing directory by its source.
 */
struct mount_entry {
	unsigned major, minor;
	char mount_point[4096];
	char fs_type[64];
	char source[4096];
	long long user_id; /* FUSE's user_id= super option: who mounted; -1 if absent */
};
int mount_find_by_device(unsigned major, unsigned minor, struct mount_entry *entry);
int mount_find_by_point(const char *mount_point, struct mount_entry *entry);
/* The last mount of type fs_type whose source is source (both as the mount table shows them). */
int mount_find_by_source(const char *fs_type, const char *source, struct mount_entry *entry);
/* visit() each mount of type fs_type in table order; stops at (and returns) a non-zero answer. */
int mount_for_each(const char *fs_type, int (*visit)(const struct mount_entry *entry, void *context),
		   void *context);

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Send log lines to syslog (daemon in the background) instead of stderr. */
void log_use_syslog(const char *ident);
/*
 * For a daemon about to go to the background: syslog when it can be reached; else one line on
 * stderr saying so, and fallback_file (-o log=FILE, may be NULL) from then on. 0 when the lines
 * have somewhere to go, -errno otherwise (logging then stays on stderr).
 */
int log_open_background(const char *ident, const char *fallback_file);
/* One line to syslog (LOG_AUTHPRIV) for a change an auditor must see; stderr says if it could not. */
int log_audit(const char *ident, const char *format, ...) __attribute__((format(printf, 2, 3)));
void log_set_verbosity(enum log_level max_level);
void log_message(enum log_level level, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_message(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_message(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_message(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_message(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
