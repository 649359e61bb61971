/*
 * tderekey: the command-line entry: the dispatch table of subcommands and the option table they
 * share, parsed by the common layer (tools/cli/cli.h).
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static const struct rekey_command *const commands[] = {
	&command_rewrap,
	&command_status,
	&command_stop,
	&command_reload,
	&command_data,
	&command_pause,
	&command_resume,
	&command_files,
	&command_metrics,
	&command_encrypt,
	&command_close,
	&command_open,
};

enum { OPTION_RATE = 256, OPTION_JSON, OPTION_NO_WAIT, OPTION_PROGRESS_JSON, OPTION_FORCE,
       OPTION_PASSWORD_FILE, OPTION_PASSWORD_FD };

/*
 * Every option of every tderekey command, declared once (tools/cli/cli.h): the parser, the
 * refusal of an option a command does not take and each command's option list come from it.
 * Adding one is an entry here and its case in main().
 */
static const struct cli_option option_table[] = {
	{ "rate", 0, "N", "at most N header updates (rewrap) or bytes (data, encrypt;\n"
			  "K, M, G) per second", "rewrap data encrypt", OPTION_RATE },
	{ "no-wait", 0, NULL, "start the job and return; follow it with 'tderekey status'",
	  "rewrap data encrypt", OPTION_NO_WAIT },
	{ "progress-json", 0, NULL, "one JSON object per progress step on stdout instead of\n"
				    "the bar and the summary", "rewrap data encrypt",
	  OPTION_PROGRESS_JSON },
	{ "json", 0, NULL, "one JSON object instead of the table", "status files", OPTION_JSON },
	{ "force", 0, NULL, "close even with files open: their DEKs are wiped too and\n"
			    "their I/O fails with EIO; running jobs are stopped", "close",
	  OPTION_FORCE },
	{ "password-file", 0, "FILE", "the wallet password: first line of FILE", "open",
	  OPTION_PASSWORD_FILE },
	{ "password-fd", 0, "N", "the wallet password: first line read from descriptor N",
	  "open", OPTION_PASSWORD_FD },
	{ "help", 'h', NULL, "this text", CLI_EVERY_COMMAND, 'h' },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: tderekey COMMAND MOUNTPOINT [OPTIONS]\n\n"
		     "Online rekeying of a mounted tdefs filesystem.\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out, "\nOptions (each command's --help says which it takes):\n");
	cli_print_options(out, option_table, ARRAY_SIZE(option_table), CLI_EVERY_COMMAND, 20);
	fprintf(out, "\n'tderekey COMMAND --help' describes one command.\n"
		     "A master-key rotation: tdekey set-key --wallet DIR --tag T;"
		     " tderekey rewrap MOUNTPOINT\n"
		     "New data keys for every file:  tderekey data MOUNTPOINT [--rate 50M]\n"
		     "Encrypt an adopted directory:  tderekey encrypt MOUNTPOINT [--rate 100M]\n"
		     "Close the keystore, open it:   tderekey close MOUNTPOINT; tderekey open "
		     "MOUNTPOINT\n");
}

static void print_command_help(const struct rekey_command *command, FILE *out)
{
	fputs(command->help, out);
	fputs("\nOptions:\n", out);
	cli_print_options(out, option_table, ARRAY_SIZE(option_table), command->name, 20);
	fputc('\n', out);
	cli_print_exit_status(out);
}

/* Byte rates for data take K, M, G (powers of 1024); header rates are plain numbers. */
static int parse_rate(const char *text, double *rate)
{
	char *end;
	double value = strtod(text, &end);

	if (*end == 'K' || *end == 'k')
		value *= 1024, end++;
	else if (*end == 'M' || *end == 'm')
		value *= 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		value *= 1024.0 * 1024 * 1024, end++;
	if (end == text || *end || !(value > 0))
		return -1;
	*rate = value;
	return 0;
}

int main(int argc, char **argv)
{
	struct rekey_options options = { .password_fd = -1 };
	const struct rekey_command *command = NULL;
	struct cli_parser parser;
	char *argument;
	int c, first;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i]->name) == 0)
			command = commands[i];
	if (!command) {
		fprintf(stderr, "tderekey: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_parser_start(&parser, "tderekey", command->name, option_table,
			     ARRAY_SIZE(option_table), 2) < 0)
		return EXIT_FAILED;
	while ((c = cli_next_option(&parser, argc, argv, &argument)) != CLI_END) {
		switch (c) {
		case OPTION_RATE:
			if (parse_rate(argument, &options.rate) < 0)
				return cli_usage_error("tderekey", command->name,
						       "--rate %s: give a positive rate (headers per "
						       "second for rewrap, bytes per second with "
						       "K/M/G for data)",
						       argument);
			break;
		case OPTION_JSON:
			options.json = true;
			break;
		case OPTION_NO_WAIT:
			options.no_wait = true;
			break;
		case OPTION_PROGRESS_JSON:
			options.progress_json = true;
			break;
		case OPTION_FORCE:
			options.force = true;
			break;
		case OPTION_PASSWORD_FILE:
			if (options.password_fd >= 0 || !argument[0])
				return cli_usage_error("tderekey", command->name,
						       "--password-file: give one file name, and "
						       "not with --password-fd");
			options.password_file = argument;
			break;
		case OPTION_PASSWORD_FD:
			if (options.password_file || cli_parse_fd(argument, &options.password_fd) < 0)
				return cli_usage_error("tderekey", command->name,
						       "--password-fd %s: give one descriptor number, "
						       "and not with --password-file",
						       argument);
			break;
		case 'h':
			print_command_help(command, stdout);
			return EXIT_OK;
		default: /* CLI_REFUSED: the line is printed */
			return EXIT_USAGE;
		}
	}
	first = cli_operand_index();
	if (argc - first < 1 ||
	    (command->max_paths != MAX_PATHS_ANY && argc - first > (command->max_paths == 2 ? 2 : 1)))
		return cli_usage_error("tderekey", command->name, "give exactly one MOUNTPOINT%s",
				       command->max_paths == 2 ? " and at most one PATH on it" : "");
	options.path = argv[first];
	options.subpath = argc - first == 2 ? argv[first + 1] : NULL;
	options.subpaths = argv + first + 1;
	options.subpath_count = argc - first - 1;
	return command->run(&options);
}
