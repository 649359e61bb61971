/*
 * tdekey: wallet administration in the manner of Oracle's ADMINISTER KEY MANAGEMENT. One file
 * per subcommand, each exporting a struct command; tdekey.c holds the dispatch table. This header
 * is what the subcommands share: parsed options, exit codes, tables and JSON for the output.
 */
#ifndef TDEFS_TDEKEY_H
#define TDEFS_TDEKEY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fs/backing_scan.h"
#include "keystore/wallet.h"

/* Options a subcommand accepts (struct command.options). --wallet and --help are always on. */
enum option_set {
	OPTION_PASSWORD = 1u << 0,	 /* --password-file, --password-fd, --password-prompt */
	OPTION_EXTERNAL_STORE = 1u << 1, /* --external-store */
	OPTION_NEW_PASSWORD = 1u << 2,	 /* --new-password-file, --new-password-fd */
	OPTION_JSON = 1u << 3,
	OPTION_TAG = 1u << 4,
	OPTION_AUTO_LOGIN = 1u << 5,
	OPTION_LOCAL = 1u << 6,
	OPTION_SCRYPT_COST = 1u << 7,
	OPTION_CONTAINER = 1u << 8,
	OPTION_NO_KEY = 1u << 9,
	OPTION_BACKUP_ID = 1u << 10, /* --backup-id, and --id for the backup command */
	OPTION_TO = 1u << 11,
	OPTION_USAGE = 1u << 12,   /* --usage BACKING, repeatable (keys) */
	OPTION_BACKING = 1u << 13, /* --backing BACKING, repeatable (delete-key) */
};

/* How many backing directories one run may name (--usage, --backing). */
#define BACKING_MAX 64

struct options {
	const char *wallet;
	struct password_source password;
	bool password_given;
	struct password_source new_password;
	bool new_password_given;
	bool json;
	bool auto_login;
	bool local;
	bool no_key;
	const char *tag;
	const char *container;
	struct scrypt_cost cost;
	bool cost_given;
	const char *backup_id;
	const char *to;
	const char *backing[BACKING_MAX]; /* --usage or --backing, in the order given */
	size_t backing_count;
	int argc; /* positional arguments after the options */
	char **argv;
};

struct command {
	const char *name;
	const char *summary; /* one line, for tdekey --help */
	const char *synopsis;
	const char *description; /* DESCRIPTION, OPTIONS and EXAMPLES sections */
	unsigned options;
	int min_arguments;
	int max_arguments;
	int (*run)(const struct options *options);
};

extern const struct command command_create;
extern const struct command command_create_autologin;
extern const struct command command_status;
extern const struct command command_keys;
extern const struct command command_set_key;
extern const struct command command_create_key;
extern const struct command command_use_key;
extern const struct command command_set_tag;
extern const struct command command_change_password;
extern const struct command command_backup;
extern const struct command command_add_secret;
extern const struct command command_delete_secret;
extern const struct command command_delete_key;

/* --- exit codes (documented in every --help and in docs/WALLET.md) ----------------------- */
enum tdekey_exit {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NO_WALLET = 3,
	EXIT_WRONG_PASSWORD = 4,
	EXIT_DAMAGED = 5,
	EXIT_NEWER_FORMAT = 6,
	EXIT_PERMISSIONS = 7,
	EXIT_OTHER_HOST = 8,
	EXIT_NO_MASTER_KEY = 9,
	EXIT_NO_SUCH_KEY = 10,
	EXIT_EXISTS = 11,
	EXIT_COPY_AHEAD = 12,
	EXIT_KEY_IN_USE = 13, /* delete-key: the ACTIVE key, or headers still reference it */
	EXIT_BACKING = 14,    /* a backing directory cannot be scanned, is not one of this wallet,
			       * or (delete-key) holds damaged headers: nothing can be proved */
};

int exit_code_for(int error);
/* Print "tdekey: <message>" to stderr and return the exit code for error. */
int report_failure(int error, const char *message);

/* --- options (options.c) --------------------------------------------------------------- */

/* 0, or an exit code after printing the problem (EXIT_OK after --help). */
int parse_options(const struct command *command, int argc, char *argv[], struct options *options,
		  bool *help_shown);
void print_command_help(const struct command *command, FILE *out);

/* --- output (output.c) ----------------------------------------------------------------- */

/* ISO 8601 UTC, "2025-01-14T09:30:12Z"; "-" for 0. */
void format_time(int64_t seconds, char out[32]);

#define TABLE_MAX_COLUMNS 10
struct table {
	size_t columns;
	const char *headers[TABLE_MAX_COLUMNS];
	size_t rows;
	size_t capacity;
	char **cells; /* rows * columns strings */
};
void table_init(struct table *table, size_t columns, const char *const headers[]);
/* Copies the strings; NULL prints as "-". */
int table_add_row(struct table *table, const char *const cells[]);
void table_print(const struct table *table, FILE *out);
void table_free(struct table *table);

/* A small JSON writer: pretty-printed, keys in the order written. */
struct json {
	FILE *out;
	int depth;
	bool need_comma[16];
};
void json_begin(struct json *json, FILE *out);
void json_end(struct json *json);
void json_string(struct json *json, const char *key, const char *value); /* NULL: null */
void json_bool(struct json *json, const char *key, bool value);
void json_uint(struct json *json, const char *key, uint64_t value);
void json_time(struct json *json, const char *key, int64_t seconds); /* 0: null */
void json_object_begin(struct json *json, const char *key);	     /* key NULL inside an array */
void json_object_end(struct json *json);
void json_array_begin(struct json *json, const char *key);
void json_array_end(struct json *json);

/* --- sessions (session.c) ------------------------------------------------------------- */

/* Open the wallet for reading or for a change; prints the failure and returns its exit code. */
int open_session(const struct options *options, enum wallet_access access,
		 struct wallet_session **session);
/* Commit; prints the failure and returns its exit code. */
int commit_session(const struct options *options, struct wallet_session *session);
/* What the last commit_session left the wallet at, for the audit line; "" before one. */
extern char committed_summary[256];
/* The key named by the command's KEY_ID argument (a unique prefix); prints why not. */
int find_key_argument(const struct options *options, struct keyring *ring, size_t *index);
/* "wallet <path> (generation N), backup <path>" for people; the same fields in JSON. */
void print_commit_text(struct wallet_session *session);
void print_commit_json(struct json *json, struct wallet_session *session);

/* --- key usage across backing directories (key_usage.c) ------------------------------ */

/* One backing directory's scan. */
struct backing_census {
	const char *path;
	struct backing_scan scan;
};

/* What the headers under every backing directory named say, merged per master key ID. */
struct key_census {
	size_t directories;
	struct backing_census dirs[BACKING_MAX];
	struct key_usage *keys; /* every key ID some header references */
	size_t key_count;
	uint64_t files, empty, damaged, rekey_in_progress;
};

/*
 * Scan every directory of options->backing (each must be a tdefs backing directory made for
 * the wallet of ring; one given twice is scanned once). Prints the failure and returns its exit
 * code (EXIT_BACKING, or EXIT_ERROR when out of memory); free the census in every case.
 */
int census_take(const struct options *options, const struct keyring *ring,
		struct key_census *census);
/* Headers referencing key_id, in all directories or in dirs[directory]. */
uint64_t census_files_for(const struct key_census *census, const uint8_t key_id[KEY_ID_SIZE]);
uint64_t census_files_in(const struct key_census *census, size_t directory,
			 const uint8_t key_id[KEY_ID_SIZE]);
void census_free(struct key_census *census);

/* Shared output pieces. census, when not NULL, adds the FILES column (files in JSON). */
void print_keys_json(struct json *json, const struct keyring *ring,
		     const struct key_census *census);
int print_keys_table(const struct keyring *ring, const struct key_census *census, FILE *out);

#endif
