/*
 * tderekey: online rekeying of a mounted tdefs filesystem. One file per subcommand, each
 * exporting a struct rekey_command; tderekey.c holds the dispatch table. Everything goes through
 * the daemon's control channel (fs/control_protocol.h), which the daemon serialises per file.
 */
#ifndef TDEFS_TDEREKEY_H
#define TDEFS_TDEREKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "fs/control_protocol.h"
#include "tools/cli/cli.h"

struct rekey_options {
	const char *path; /* any path on the mount */
	const char *subpath; /* a second path, for commands with max_paths 2 (files); or NULL */
	char **subpaths;     /* MAX_PATHS_ANY: every path after the first, subpath_count of them */
	int subpath_count;
	double rate;      /* --rate: headers (rewrap) or bytes (data) per second, 0 = no limit */
	bool json;
	bool no_wait;
	bool progress_json; /* rewrap, data: one JSON object per progress step on stdout */
	bool force;         /* close: even with files open */
	const char *password_file; /* open: --password-file */
	int password_fd;           /* open: --password-fd, or -1 */
};

struct rekey_command {
	const char *name;
	const char *summary;
	const char *help; /* the whole --help text */
	int max_paths;    /* 0 or 1: MOUNTPOINT only; 2: MOUNTPOINT [PATH]; MAX_PATHS_ANY */
	int (*run)(const struct rekey_options *options);
};

extern const struct rekey_command command_rewrap;
extern const struct rekey_command command_status;
extern const struct rekey_command command_stop;
extern const struct rekey_command command_reload;
extern const struct rekey_command command_data;
extern const struct rekey_command command_pause;
extern const struct rekey_command command_resume;
extern const struct rekey_command command_files;
extern const struct rekey_command command_metrics;
extern const struct rekey_command command_encrypt;
extern const struct rekey_command command_close;
extern const struct rekey_command command_open;

/* max_paths of a command that takes MOUNTPOINT [PATH...] (encrypt). */
#define MAX_PATHS_ANY 3

/* PATH on its mount, as a path relative to the mount point ("" for the mount point: data.c). */
int relative_to_mount(const char *path, char *relative, size_t len);

/*
 * Exit codes, from the table shared by the three tools (tools/cli/cli.h) and printed by every
 * --help. EXIT_UNTRUSTED: the control channel failed its
 * checks (control_client.c): whoever answers is not the daemon of this mount. EXIT_STALE: the
 * mount is still in the table but its daemon is gone ("Transport endpoint is not connected").
 */
enum {
	EXIT_OK = CLI_EXIT_OK,
	EXIT_FAILED = CLI_EXIT_ERROR,
	EXIT_USAGE = CLI_EXIT_USAGE,
	EXIT_NOT_TDEFS = CLI_EXIT_NOT_TDEFS_MOUNT,
	EXIT_DENIED = CLI_EXIT_DENIED,
	EXIT_UNTRUSTED = CLI_EXIT_UNTRUSTED,
	EXIT_STALE = CLI_EXIT_STALE, /* the daemon died: ENOTCONN on the mount */
};

/* A reply from the daemon: "key value" lines, then "ok" or "error MESSAGE". */
struct control_reply {
	char text[CONTROL_REPLY_MAX];
	bool ok;
	const char *error; /* points into text when !ok */
};

/*
 * Send one request to the daemon serving path, after checking that it is that daemon. Prints a
 * one-line error naming the path and returns an exit code when the path is not on a tdefs
 * mount, the daemon refuses, or whoever answers fails the checks (EXIT_UNTRUSTED).
 */
int control_request(const char *path, const char *request, struct control_reply *reply);
/*
 * The same, with a secret (a password, in locked memory) sent on its own line after the
 * request once the daemon has proved to be this mount's; it is never put in a buffer of ours.
 */
struct secret;
int control_request_secret(const char *path, const char *request, const struct secret *secret,
			   struct control_reply *reply);
/* As control_request, without printing the daemon's error (the caller decides). */
int control_request_quiet(const char *path, const char *request, struct control_reply *reply);
/*
 * Open the backing directory a status reply names, checked to be the one the daemon holds
 * (its device and inode): a descriptor, or a negative errno after a one-line message.
 */
int open_reported_backing(const struct control_reply *reply, char *backing, size_t backing_size);
/* The value of key in a reply, or NULL. */
const char *reply_value(const struct control_reply *reply, const char *key, char *buf, size_t len);
/* The value of key as a number, 0 when absent (follow.c). */
unsigned long long reply_number(const struct control_reply *reply, const char *key);

/* How to follow one kind of job (follow.c). */
struct job_follow {
	const char *prefix;       /* its keys in a status reply: "rewrap" or "data" */
	const char *stop_request; /* sent once on Ctrl-C or SIGTERM */
	unsigned poll_us;
	/* Draws one progress line on stderr (a terminal); may be NULL. */
	void (*draw)(const struct control_reply *status, const char *state, double elapsed,
		     void *context);
	void *context;
	bool progress_json; /* one JSON line per poll on stdout instead of the bar */
};
/*
 * Poll the job until it ends; the last status is left in reply, its state in state, the time
 * taken in *seconds. 0, or an exit code from control_request.
 */
int follow_job(const char *path, const struct job_follow *follow, struct control_reply *reply,
	       char *state, size_t state_size, double *seconds);
/*
 * The progress line of a job that moves bytes (data rekey, encrypt), for a draw function:
 * "LABEL: done/total MB (percent), MB/s, ETA, state" on stderr, rewritten in place.
 */
void follow_draw_bytes(const char *label, unsigned long long done, unsigned long long total,
		       const char *state, double elapsed);

#endif
