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
#include <sys/types.h>

#include "fs/backing_scan.h"
#include "tools/cli/cli.h"
#include "keystore/wallet.h"

/* How many backing directories one run may name (--usage, --backing). */
#define BACKING_MAX 64

struct options {
	const char *wallet;
	struct password_source password;
	bool password_given;
	bool pin_given; /* the source was named --pin-file or --pin-fd */
	const char *hsm_module;	  /* --hsm-module */
	const char *token_label;  /* --token-label */
	const char *token_serial; /* --token-serial */
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
	bool to_kmip; /* migrate: --to-kmip (else --to-hsm) */
	const char *backing[BACKING_MAX]; /* --usage or --backing, in the order given */
	size_t backing_count;
	bool used_by; /* backing[] came from --used-by */
	bool container_given;
	const char *keys[BACKING_MAX]; /* --key, in the order given */
	size_t key_count;
	bool all;
	struct password_source secret; /* --secret-* (export, import) */
	bool secret_given;
	const char *from;
	struct password_source from_password; /* --from-password-* (merge) */
	bool from_password_given;
	struct password_source to_password; /* --to-password-* (move-keys, isolate) */
	bool to_password_given;
	bool copy;
	const char *merge_from[BACKING_MAX]; /* --merge-from, in the order given */
	size_t merge_from_count;
	const char *group; /* --group */
	const char *key_file; /* --key-file: bring your own key */
	int key_fd;	      /* --key-fd, -1 when not given */
	uint8_t key_id[KEY_ID_SIZE];
	bool key_id_given;
	/* tdekey tls (tls.c checks which of these its subcommand takes) */
	const char *tls_dn;
	unsigned tls_days; /* 0: not given */
	const char *tls_key_type;
	const char *tls_cert;
	const char *tls_trusted;
	bool tls_user_cert;
	/* a KMIP wallet (kmip.c): create --kmip-server LIST --tls-wallet DIR [--kmip-group G] */
	const char *kmip_server;
	const char *tls_wallet;
	const char *kmip_group;
	int tries; /* --tries: password prompts on a terminal (default 3) */
	int argc; /* positional arguments after the options */
	char **argv;
};

struct command {
	const char *name;
	const char *summary; /* one line, for tdekey --help */
	const char *synopsis;
	const char *description; /* DESCRIPTION, OPTIONS and EXAMPLES sections */
	/* Its continuation, or NULL: C11 promises string literals of 4,095 bytes only. */
	const char *description_more;
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
extern const struct command command_export;
extern const struct command command_import;
extern const struct command command_merge;
extern const struct command command_tls;
extern const struct command command_move_keys;
extern const struct command command_isolate;
extern const struct command command_change_group;
extern const struct command command_migrate;
extern const struct command command_reverse_migrate;
extern const struct command command_unlink;

/* --- exit codes: the shared table (tools/cli/cli.h), by tdekey's names ------------------ */
enum tdekey_exit {
	EXIT_OK = CLI_EXIT_OK,
	EXIT_ERROR = CLI_EXIT_ERROR,
	EXIT_USAGE = CLI_EXIT_USAGE,
	EXIT_NO_WALLET = CLI_EXIT_NO_WALLET,
	EXIT_WRONG_PASSWORD = CLI_EXIT_WRONG_PASSWORD,
	EXIT_DAMAGED = CLI_EXIT_DAMAGED,
	EXIT_NEWER_FORMAT = CLI_EXIT_NEWER_FORMAT,
	EXIT_PERMISSIONS = CLI_EXIT_PERMISSIONS,
	EXIT_OTHER_HOST = CLI_EXIT_OTHER_HOST,
	EXIT_NO_MASTER_KEY = CLI_EXIT_NO_MASTER_KEY,
	EXIT_NO_SUCH_KEY = CLI_EXIT_NO_SUCH_KEY,
	EXIT_EXISTS = CLI_EXIT_EXISTS,
	EXIT_COPY_AHEAD = CLI_EXIT_COPY_AHEAD,
	EXIT_KEY_IN_USE = CLI_EXIT_KEY_IN_USE, /* delete-key: the ACTIVE key, or headers use it */
	EXIT_BACKING = CLI_EXIT_BACKING, /* a backing directory cannot be scanned, is not one of
					  * this wallet, or (delete-key) holds damaged headers */
	EXIT_WRONG_SECRET = CLI_EXIT_WRONG_SECRET,     /* import: wrong transport secret */
	EXIT_EXPORT_DAMAGED = CLI_EXIT_EXPORT_DAMAGED, /* import: export file not one */
	EXIT_KEY_CONFLICT = CLI_EXIT_KEY_CONFLICT,     /* import, merge: same ID, other bytes */
	EXIT_WRONG_PIN = CLI_EXIT_WRONG_PIN,
	EXIT_HSM_MODULE = CLI_EXIT_HSM_MODULE,
	EXIT_TOKEN_ABSENT = CLI_EXIT_TOKEN_ABSENT,
	EXIT_KEY_NOT_ON_TOKEN = CLI_EXIT_KEY_NOT_ON_TOKEN,
	EXIT_TOKEN_MECHANISM = CLI_EXIT_TOKEN_MECHANISM,
	EXIT_TOKEN_FAILED = CLI_EXIT_TOKEN_FAILED,
	EXIT_KEY_SERVER_UNREACHABLE = CLI_EXIT_KEY_SERVER_UNREACHABLE,
	EXIT_KEY_SERVER_REFUSED = CLI_EXIT_KEY_SERVER_REFUSED,
};

int exit_code_for(int error);
/* Print "tdekey: <message>" to stderr and return the exit code for error. */
int report_failure(int error, const char *message);

/* --- options (options.c) --------------------------------------------------------------- */

/* 0, or an exit code after printing the problem (EXIT_OK after --help). */
int parse_options(const struct command *command, int argc, char *argv[], struct options *options,
		  bool *help_shown);
void print_command_help(const struct command *command, FILE *out);
/* The option table, for tdekey --help. */
void print_option_table(FILE *out);
/* Does command take the option with this long name (options.c's table)? */
bool command_takes_option(const struct command *command, const char *name);

/* --- containers and brought keys (containers.c) ------------------------------------------ */

/* --container all: every container of the wallet. */
bool container_is_all(const struct options *options);
/*
 * The containers a command acts on: without --container the wallet's own, with --container
 * all every one the wallet has, else the one named. existing: refuse (after one line, returning
 * an exit code) a container the wallet has no key of. Up to max names; *count how many.
 */
int containers_selected(const struct options *options, const struct keyring *ring, bool existing,
			const char **names, size_t max, size_t *count);
/*
 * Bring your own key: the 32 raw bytes of --key-file or --key-fd into *key (secure memory,
 * secure_free() it), the file held to the strict-modes rule. *key is NULL (and 0 returned) when
 * neither option was given; an exit code after one line otherwise.
 */
int brought_key_read(const struct options *options, uint8_t **key);
/*
 * The key at index must be of the container --container names (any with all; without the
 * option the wallet's own, or any when any_by_default): 0, or an exit code after one line.
 */
int key_container_check(const struct options *options, const struct keyring *ring, size_t index,
			bool any_by_default);
#define CONTAINERS_MAX 256

/* --- a provisioning group (change_group.c) ------------------------------------------------ */

/* A group name or number: 0, or EXIT_USAGE after one line. */
int group_parse(const char *name, gid_t *gid);
/*
 * The wallet directory and backup/ to group gid, 02750; password.wallet and its backups to
 * 0640 (group set first). *files: how many wallet files were given. 0 or an exit code.
 */
int group_apply(const char *wallet, gid_t gid, size_t *files);

/* --- output (output.c) ----------------------------------------------------------------- */

/* ISO 8601 UTC, "2025-01-14T09:30:12Z"; "-" for 0. */
void format_time(int64_t seconds, char out[32]);

#define TABLE_MAX_COLUMNS 11
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
/*
 * Open a wallet just created with password (NULL: an auto-login-only one) for a change. The
 * password goes to the session through a pipe (kernel memory, never a file or argv).
 * -errno or a keystore error with error filled.
 */
int open_created_wallet(const char *dir, const struct secret *password,
			struct wallet_session **session, char error[KEYSTORE_ERROR_SIZE]);
/*
 * Open another wallet for reading (merge --from, create --merge-from): its auto-login wallet,
 * or its password wallet with --from-password-file or --from-password-fd, after the strict-
 * modes check of that file. Prints the failure and returns its exit code.
 */
int open_other_wallet(const struct options *options, const char *dir,
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
	char container[WALLET_CONTAINER_MAX + 1]; /* as its .tdefs.conf records it */
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

/*
 * V$ENCRYPTION_KEYS.KEYSTORE_TYPE: HSM for a key on an HSM token (an HSM wallet), SOFTWARE for
 * one held in a wallet file.
 */
#define KEYSTORE_TYPE_NAME(record) ((record)->on_token ? "HSM" : "SOFTWARE")

/* Shared output pieces. census, when not NULL, adds the FILES column (files in JSON). */
/* container: only that container's keys; NULL for every key. */
void print_keys_json(struct json *json, const struct keyring *ring,
		     const struct key_census *census, const char *container);
int print_keys_table(const struct keyring *ring, const struct key_census *census,
		     const char *container, FILE *out);
/* UNITED when the wallet holds key sets of several containers, ISOLATED for one. */
const char *keystore_mode_name(const struct keyring *ring);

/* A KMIP wallet (kmip.c): the commands when the keys live on a key server. */
/* EXIT_USAGE, with its line, for a command that does not work on a KMIP wallet given one. */
int kmip_refuse_other(const struct command *command, const struct options *options);
/* A KMIP keystore failure's one line and exit code (the server's errors: general error). */
int kmip_failure(int ret, const char *error);
int kmip_create(const struct options *options);
int kmip_set_key(const struct options *options);
int kmip_keys(const struct options *options);
int kmip_delete_key(const struct options *options);
bool kmip_wallet_in(const char *wallet);

#endif
