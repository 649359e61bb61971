/*
 * tderekey: online rekeying of a mounted tdefs filesystem. One file per subcommand, each
 * exporting a struct rekey_command; tderekey.c holds the dispatch table. Everything goes through
 * the daemon's control channel (fs/control_protocol.h), which the daemon serialises per file.
 */
#ifndef TDEFS_TDEREKEY_H
#define TDEFS_TDEREKEY_H

#include <stdbool.h>
#include <stddef.h>

struct rekey_options {
	const char *path; /* any path on the mount */
	double rate;      /* --rate: headers (rewrap) or bytes (data) per second, 0 = no limit */
	bool json;
	bool no_wait;
};

struct rekey_command {
	const char *name;
	const char *summary;
	const char *help; /* the whole --help text */
	int (*run)(const struct rekey_options *options);
};

extern const struct rekey_command command_rewrap;
extern const struct rekey_command command_status;
extern const struct rekey_command command_stop;
extern const struct rekey_command command_reload;
extern const struct rekey_command command_data;
extern const struct rekey_command command_pause;
extern const struct rekey_command command_resume;

/*
 * Exit codes, also listed in every --help. EXIT_UNTRUSTED: the control channel failed its
 * checks (control_client.c): whoever answers is not the daemon of this mount.
 */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NOT_TDEFS = 3, EXIT_DENIED = 4,
       EXIT_UNTRUSTED = 5 };

/* A reply from the daemon: "key value" lines, then "ok" or "error MESSAGE". */
struct control_reply {
	char text[8192];
	bool ok;
	const char *error; /* points into text when !ok */
};

/*
 * Send one request to the daemon serving path, after checking that it is that daemon. Prints a
 * one-line error naming the path and returns an exit code when the path is not on a tdefs
 * mount, the daemon refuses, or whoever answers fails the checks (EXIT_UNTRUSTED).
 */
int control_request(const char *path, const char *request, struct control_reply *reply);
/* The value of key in a reply, or NULL. */
const char *reply_value(const struct control_reply *reply, const char *key, char *buf, size_t len);

#endif
