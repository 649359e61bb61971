/*
 * tderekey: the command-line entry: the dispatch table of subcommands and their common options.
 */
#include "tools/tderekey/tderekey.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: tderekey COMMAND MOUNTPOINT [OPTIONS]\n\n"
		     "Online rekeying of a mounted tdefs filesystem.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out, "\n'tderekey COMMAND --help' describes one command.\n"
		     "A master-key rotation: tdekey set-key --wallet DIR --tag T;"
		     " tderekey rewrap MOUNTPOINT\n"
		     "New data keys for every file:  tderekey data MOUNTPOINT [--rate 50M]\n"
		     "Encrypt an adopted directory:  tderekey encrypt MOUNTPOINT [--rate 100M]\n");
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "progress-json", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rekey_options options = { 0 };
	const struct rekey_command *command = NULL;
	int c;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i]->name) == 0)
			command = commands[i];
	if (!command) {
		fprintf(stderr, "tderekey: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (c) {
		case 'r': {
			char *end;
			double value = strtod(optarg, &end);
			/* Byte rates for data take K, M, G (powers of 1024). */
			if (*end == 'K' || *end == 'k')
				value *= 1024, end++;
			else if (*end == 'M' || *end == 'm')
				value *= 1024 * 1024, end++;
			else if (*end == 'G' || *end == 'g')
				value *= 1024.0 * 1024 * 1024, end++;
			if (*end || value <= 0) {
				fprintf(stderr, "tderekey: --rate %s: give a positive rate (headers per "
						"second for rewrap, bytes per second with K/M/G for data)\n",
					optarg);
				return EXIT_USAGE;
			}
			options.rate = value;
			break;
		}
		case 'j':
			options.json = true;
			break;
		case 'n':
			options.no_wait = true;
			break;
		case 'p':
			options.progress_json = true;
			break;
		case 'h':
			fputs(command->help, stdout);
			return EXIT_OK;
		default:
			fputs(command->help, stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 1 ||
	    (command->max_paths != MAX_PATHS_ANY && argc - optind > (command->max_paths == 2 ? 2 : 1))) {
		fprintf(stderr, "tderekey %s: give exactly one MOUNTPOINT%s\n", command->name,
			command->max_paths == 2 ? " and at most one PATH on it" : "");
		return EXIT_USAGE;
	}
	options.path = argv[optind];
	options.subpath = argc - optind == 2 ? argv[optind + 1] : NULL;
	options.subpaths = argv + optind + 1;
	options.subpath_count = argc - optind - 1;
	return command->run(&options);
}
