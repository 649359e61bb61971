/*
 * The shared command-line layer (cli.h): the exit-code table with its EXIT STATUS text, the
 * option parser built from a program's descriptor table, the generated options section of a
 * --help, and the terminal rule for password prompts.
 *
 * getopt_long runs with opterr off and a leading ':' so that every refusal is worded here,
 * once, the same way in all three programs.
 */
#include "tools/cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const cli_exit_meanings[CLI_EXIT_COUNT] = {
	[CLI_EXIT_OK] = "success",
	[CLI_EXIT_ERROR] = "any other failure (I/O error, out of memory, a job that failed or\n"
			   "was stopped; tdefs --check: problems were found)",
	[CLI_EXIT_USAGE] = "usage error (an unknown or misplaced option, a bad argument)",
	[CLI_EXIT_NO_WALLET] = "no wallet in the directory (NOT_AVAILABLE)",
	[CLI_EXIT_WRONG_PASSWORD] = "wrong password (on a terminal: at every prompt allowed), or\n"
				    "no password available for a password wallet",
	[CLI_EXIT_DAMAGED] = "wallet damaged; the message names the newest backup",
	[CLI_EXIT_NEWER_FORMAT] = "wallet written by a newer version of tdefs",
	[CLI_EXIT_PERMISSIONS] =
		"auto-login wallet or external store open to group or others, or a wallet\n"
		"file, the wallet directory or a directory above it owned by another user\n"
		"or writable by others (strict modes), or an HSM wallet's PKCS#11 module\n"
		"or a directory above it that another user may change; the message gives\n"
		"the chmod or chown that fixes it",
	[CLI_EXIT_OTHER_HOST] = "local auto-login wallet or store made on another host, or without\n"
				"this host's secret",
	[CLI_EXIT_NO_MASTER_KEY] = "the wallet the daemon opens has no active master key\n"
				   "(OPEN_NO_MASTER_KEY)",
	[CLI_EXIT_NO_SUCH_KEY] = "no key matches the key ID given, or a prefix matches several keys",
	[CLI_EXIT_EXISTS] = "a wallet already exists there",
	[CLI_EXIT_COPY_AHEAD] = "an auto-login wallet holds keys that password.wallet lacks",
	[CLI_EXIT_KEY_IN_USE] = "delete-key: file headers still reference the key, or it is the\n"
				"ACTIVE key",
	[CLI_EXIT_BACKING] = "a backing directory cannot be scanned, is not a tdefs backing\n"
			     "directory or was initialised for another wallet; for delete-key\n"
			     "also: some of its headers cannot be read, so nothing is proved",
	[CLI_EXIT_WRONG_SECRET] = "import: wrong transport secret for the key export file",
	[CLI_EXIT_EXPORT_DAMAGED] = "import: the key export file is truncated, altered or not one",
	[CLI_EXIT_KEY_CONFLICT] = "import, merge: a key ID to add is in the wallet with other key\n"
				  "bytes (nothing was added)",
	[CLI_EXIT_NOT_TDEFS_MOUNT] = "the path is not on a tdefs mount",
	[CLI_EXIT_DENIED] = "the daemon refused the request: only root or the mounting user may\n"
			    "use a mount's control channel",
	[CLI_EXIT_UNTRUSTED] = "the control channel failed its checks (whoever answers is not\n"
			       "this mount's daemon)",
	[CLI_EXIT_STALE] = "the mount's daemon is gone (a stale mount: fusermount3 -u it and\n"
			   "mount again)",
	[CLI_EXIT_FILES_OPEN] = "close: files on the mount are open or a job runs (the keystore\n"
				"stays open; --force closes it anyway)",
	[CLI_EXIT_KEYSTORE_CLOSED] = "the mount's keystore is closed: the request needs its master\n"
				     "keys (tderekey open loads them)",
	[CLI_EXIT_WRONG_PIN] = "HSM wallet: the token refused the PIN, or no PIN was given",
	[CLI_EXIT_HSM_MODULE] = "HSM wallet: the PKCS#11 module is missing, is not a module or\n"
				"does not initialise",
	[CLI_EXIT_TOKEN_ABSENT] = "HSM wallet: no token with the wallet's label (and serial) is\n"
				  "present",
	[CLI_EXIT_KEY_NOT_ON_TOKEN] = "HSM wallet: a master key of the wallet is not on the token",
	[CLI_EXIT_TOKEN_MECHANISM] = "HSM wallet: the token lacks AES-256 key generation or\n"
				     "AES-GCM",
	[CLI_EXIT_TOKEN_FAILED] = "HSM wallet: the token failed an operation or is unreachable",
	[CLI_EXIT_KEY_SERVER_UNREACHABLE] = "KMIP wallet: no key server could be reached (the "
					    "connection, the TLS handshake or a certificate failed)",
	[CLI_EXIT_KEY_SERVER_REFUSED] = "KMIP wallet: a key server refused the operation or did not "
					"answer in KMIP",
};

void cli_print_exit_status(FILE *out)
{
	fputs("EXIT STATUS\n", out);
	for (int code = 0; code < CLI_EXIT_COUNT; code++) {
		const char *text = cli_exit_meanings[code];

		fprintf(out, "       %-3d ", code);
		for (const char *c = text; *c; c++) {
			fputc(*c, out);
			if (*c == '\n')
				fputs("           ", out);
		}
		fputc('\n', out);
	}
	fputc('\n', out);
}

/* --- options --------------------------------------------------------------------------- */

bool cli_command_takes(const struct cli_option *option, const char *command)
{
	const char *list = option->commands;
	size_t len;

	if (!list)
		return command == NULL;
	if (strcmp(list, CLI_EVERY_COMMAND) == 0)
		return true;
	if (!command)
		return false;
	len = strlen(command);
	for (const char *at = list; (at = strstr(at, command)) != NULL; at += len) {
		bool starts = at == list || at[-1] == ' ';
		bool ends = at[len] == '\0' || at[len] == ' ';

		if (starts && ends)
			return true;
	}
	return false;
}

const struct cli_option *cli_option_named(const struct cli_option *options, size_t count,
					  const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (options[i].name && strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

static void print_try_help(const char *program, const char *command)
{
	fprintf(stderr, " (try '%s%s%s --help')\n", program, command ? " " : "",
		command ? command : "");
}

int cli_usage_error(const char *program, const char *command, const char *format, ...)
{
	va_list args;

	fprintf(stderr, "%s%s%s: ", program, command ? " " : "", command ? command : "");
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	/* One line: scripts and logs keep an error to one line, the pointer to --help with it. */
	print_try_help(program, command);
	return CLI_EXIT_USAGE;
}

int cli_parser_start(struct cli_parser *parser, const char *program, const char *command,
		     const struct cli_option *options, size_t count, int first)
{
	size_t used = 0, long_count = 0;

	if (count > CLI_OPTIONS_MAX) {
		fprintf(stderr, "%s: %zu options; the parser holds %d\n", program, count,
			CLI_OPTIONS_MAX);
		return -EINVAL;
	}
	memset(parser, 0, sizeof(*parser));
	parser->program = program;
	parser->command = command;
	parser->options = options;
	parser->count = count;
	/* ':' first: a missing argument comes back as ':' rather than a message from getopt. */
	parser->short_options[used++] = ':';
	for (size_t i = 0; i < count; i++) {
		if (options[i].name)
			parser->long_options[long_count++] = (struct option){
				.name = options[i].name,
				.has_arg = options[i].argument ? required_argument : no_argument,
				.val = options[i].id,
			};
		if (options[i].short_name) {
			parser->short_options[used++] = options[i].short_name;
			if (options[i].argument)
				parser->short_options[used++] = ':';
		}
	}
	parser->long_options[long_count] = (struct option){ 0 };
	parser->short_options[used] = '\0';
	opterr = 0;
	optind = first;
	return 0;
}

static const struct cli_option *entry_for_id(const struct cli_parser *parser, int id)
{
	for (size_t i = 0; i < parser->count; i++)
		if (parser->options[i].id == id)
			return &parser->options[i];
	return NULL;
}

int cli_next_option(struct cli_parser *parser, int argc, char **argv, char **argument)
{
	const struct cli_option *entry;
	int id;

	*argument = NULL;
	id = getopt_long(argc, argv, parser->short_options, parser->long_options, NULL);
	if (id == -1)
		return CLI_END;
	if (id == ':')
		return cli_usage_error(parser->program, parser->command,
				       "option %s needs an argument", argv[optind - 1]),
		       CLI_REFUSED;
	entry = id == '?' ? NULL : entry_for_id(parser, id);
	if (!entry) {
		if (optopt && optopt != '?' && optopt < 256)
			cli_usage_error(parser->program, parser->command, "unknown option -%c",
					optopt);
		else
			cli_usage_error(parser->program, parser->command, "unknown option %s",
					argv[optind - 1]);
		return CLI_REFUSED;
	}
	if (!cli_command_takes(entry, parser->command)) {
		if (entry->name)
			cli_usage_error(parser->program, parser->command,
					"this command has no option --%s", entry->name);
		else
			cli_usage_error(parser->program, parser->command,
					"this command has no option -%c", entry->short_name);
		return CLI_REFUSED;
	}
	*argument = entry->argument ? optarg : NULL;
	return id;
}

int cli_operand_index(void)
{
	return optind;
}

void cli_print_options(FILE *out, const struct cli_option *options, size_t count,
		       const char *command, int indent)
{
	for (size_t i = 0; i < count; i++) {
		const struct cli_option *option = &options[i];
		char head[96];
		int len;

		if (!cli_command_takes(option, command) || !option->help)
			continue;
		if (!option->name)
			len = snprintf(head, sizeof(head), "  -%c%s%s", option->short_name,
				       option->argument ? " " : "",
				       option->argument ? option->argument : "");
		else if (option->short_name)
			len = snprintf(head, sizeof(head), "  -%c, --%s%s%s", option->short_name,
				       option->name, option->argument ? " " : "",
				       option->argument ? option->argument : "");
		else
			len = snprintf(head, sizeof(head), "  --%s%s%s", option->name,
				       option->argument ? " " : "",
				       option->argument ? option->argument : "");
		fputs(head, out);
		if (len + 1 >= indent)
			fprintf(out, "\n%*s", indent, "");
		else
			fprintf(out, "%*s", indent - len, "");
		for (const char *c = option->help; *c; c++) {
			fputc(*c, out);
			if (*c == '\n')
				fprintf(out, "%*s", indent, "");
		}
		fputc('\n', out);
	}
}

/* --- numbers and prompts --------------------------------------------------------------- */

int cli_parse_fd(const char *text, int *fd)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || end == text || *end != '\0' || value < 0 || value > 1 << 20)
		return -EINVAL;
	*fd = (int)value;
	return 0;
}

int cli_parse_tries(const char *text, int *tries)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || end == text || *end != '\0' || value < 1 || value > CLI_TRIES_MAX)
		return -EINVAL;
	*tries = (int)value;
	return 0;
}

bool cli_may_prompt(void)
{
	return isatty(STDIN_FILENO) == 1;
}
