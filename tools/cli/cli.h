/*
 * The command-line layer shared by tdefs, tdekey and tderekey: one exit-code table, one option
 * descriptor type with a parser over getopt_long built from it, the help text generated from
 * the same table, and the rule for when a password may be asked for on a terminal.
 *
 * Each program declares its options once, as an array of struct cli_option (tools/tdekey/
 * options.c, tools/tderekey/tderekey.c, fs/main.c): the long name, the argument's name, one
 * line of help, and the commands that take it. The parser refuses an option the command does
 * not take, with a pointer to its --help, so a misplaced option is never silently ignored.
 *
 * This module knows nothing of wallets, keystores or mounts: it sits beside util/ in the
 * layering, and the programs map their own errors onto the codes below.
 */
#ifndef TDEFS_TOOLS_CLI_H
#define TDEFS_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <getopt.h>
#include <stdio.h>

/*
 * Exit codes, one meaning each in every tool (documented once, in each man page's EXIT STATUS,
 * and printed by every --help from cli_exit_meanings). 0 to 17 are tdekey's historical numbers;
 * the control-channel codes of tderekey follow them.
 */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_NO_WALLET = 3,
	CLI_EXIT_WRONG_PASSWORD = 4,
	CLI_EXIT_DAMAGED = 5,
	CLI_EXIT_NEWER_FORMAT = 6,
	CLI_EXIT_PERMISSIONS = 7,
	CLI_EXIT_OTHER_HOST = 8,
	CLI_EXIT_NO_MASTER_KEY = 9,
	CLI_EXIT_NO_SUCH_KEY = 10,
	CLI_EXIT_EXISTS = 11,
	CLI_EXIT_COPY_AHEAD = 12,
	CLI_EXIT_KEY_IN_USE = 13,
	CLI_EXIT_BACKING = 14,
	CLI_EXIT_WRONG_SECRET = 15,
	CLI_EXIT_EXPORT_DAMAGED = 16,
	CLI_EXIT_KEY_CONFLICT = 17,
	CLI_EXIT_NOT_TDEFS_MOUNT = 18, /* the path is on no tdefs mount */
	CLI_EXIT_DENIED = 19,	       /* the daemon refused: root or the mounting user only */
	CLI_EXIT_UNTRUSTED = 20,       /* the control channel failed its checks */
	CLI_EXIT_STALE = 21,	       /* the mount's daemon is gone (ENOTCONN) */
	CLI_EXIT_FILES_OPEN = 22,      /* tderekey close: files are open or a job runs */
	CLI_EXIT_KEYSTORE_CLOSED = 23, /* the mount's keystore is closed (tderekey open) */
	CLI_EXIT_WRONG_PIN = 24,       /* the HSM token refused the PIN, or none was given */
	CLI_EXIT_HSM_MODULE = 25,      /* the PKCS#11 module is missing or does not load */
	CLI_EXIT_TOKEN_ABSENT = 26,    /* no token with the wallet's label (and serial) */
	CLI_EXIT_KEY_NOT_ON_TOKEN = 27, /* a master key of the wallet is not on the token */
	CLI_EXIT_TOKEN_MECHANISM = 28, /* the token lacks AES-256 key generation or AES-GCM */
	CLI_EXIT_TOKEN_FAILED = 29,    /* the token failed an operation or is unreachable */
	CLI_EXIT_KEY_SERVER_UNREACHABLE = 30, /* no KMIP server: connection or TLS failed */
	CLI_EXIT_KEY_SERVER_REFUSED = 31,     /* a KMIP server refused or did not speak KMIP */
	CLI_EXIT_COUNT
};

/* The text of each code, lines already indented for the EXIT STATUS section. */
extern const char *const cli_exit_meanings[CLI_EXIT_COUNT];
/* "EXIT STATUS\n" and the whole table, as every --help and man page shows it. */
void cli_print_exit_status(FILE *out);

/* --- options --------------------------------------------------------------------------- */

#define CLI_OPTIONS_MAX 96

/* Every command of the program takes it (help, wallet). */
#define CLI_EVERY_COMMAND "*"

struct cli_option {
	const char *name;     /* long name without the dashes: "password-file"; NULL: short only */
	char short_name;      /* 'w' for -w, or 0 */
	const char *argument; /* the argument's name in help ("FILE"); NULL: takes none */
	const char *help;     /* one line; a '\n' continues it on the next, indented; NULL:
			       * accepted but not shown (a compatibility no-op) */
	/*
	 * The commands that take it, space-separated ("create set-key"), CLI_EVERY_COMMAND, or
	 * NULL for a program without commands (tdefs).
	 */
	const char *commands;
	int id; /* what cli_next_option returns for it: > 255, or short_name */
};

struct cli_parser {
	const char *program;		   /* "tdekey" */
	const char *command;		   /* the command being parsed, or NULL */
	const struct cli_option *options; /* the program's table */
	size_t count;
	/* built by cli_parser_start from the table */
	char short_options[2 * CLI_OPTIONS_MAX + 2];
	struct option long_options[CLI_OPTIONS_MAX + 1];
};

/*
 * Ready the parser for argv[first...]; 0, or -EINVAL when the table is larger than
 * CLI_OPTIONS_MAX (a programming error, reported on stderr).
 */
int cli_parser_start(struct cli_parser *parser, const char *program, const char *command,
		     const struct cli_option *options, size_t count, int first);
/*
 * The next option's id with its argument in *argument (NULL when it takes none); CLI_END when
 * only operands remain (from cli_operand_index on); CLI_REFUSED after one line on stderr
 * naming the option (unknown, not taken by this command, or missing its argument) and the
 * --help to read.
 */
#define CLI_END (-1)
#define CLI_REFUSED (-2)
int cli_next_option(struct cli_parser *parser, int argc, char **argv, char **argument);
int cli_operand_index(void);

/* Does the command (NULL: a program without commands) take this option? */
bool cli_command_takes(const struct cli_option *option, const char *command);
/* The table's entry for a long name, or NULL. */
const struct cli_option *cli_option_named(const struct cli_option *options, size_t count,
					  const char *name);

/*
 * Print "tdekey set-key: MESSAGE (try 'tdekey set-key --help')" on one line (without a command: the
 * program's --help) and return CLI_EXIT_USAGE.
 */
int cli_usage_error(const char *program, const char *command, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The options section of a --help: every option the command takes, in table order, as
 * "  -w, --wallet DIR    help" with the help column at indent.
 */
void cli_print_options(FILE *out, const struct cli_option *options, size_t count,
		       const char *command, int indent);

/* --- numbers and password prompts ------------------------------------------------------ */

/* A file descriptor number (0 to 2^20): 0, or -EINVAL. */
int cli_parse_fd(const char *text, int *fd);
/* --tries N: 1 to 100 prompts. */
#define CLI_TRIES_DEFAULT 3
#define CLI_TRIES_MAX 100
int cli_parse_tries(const char *text, int *tries);

/*
 * A password may be asked for only when the program runs on a terminal: its standard input
 * is one. Never from fstab, a unit, a pipe or a script, even if /dev/tty could be opened.
 */
bool cli_may_prompt(void);

#endif
