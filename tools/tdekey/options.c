/*
 * Command-line options. Every subcommand shares one getopt_long table and names the options it
 * accepts (struct command.options), so that an option means the same thing everywhere and a
 * misplaced one is refused with a pointer to --help rather than ignored.
 *
 * No option carries a password: only a file name (--password-file) or an inherited descriptor
 * (--password-fd). Arguments are visible to every user through ps and /proc.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum long_only_option {
	LONG_PASSWORD_FILE = 256,
	LONG_PASSWORD_FD,
	LONG_PASSWORD_PROMPT,
	LONG_EXTERNAL_STORE,
	LONG_NEW_PASSWORD_FILE,
	LONG_NEW_PASSWORD_FD,
	LONG_JSON,
	LONG_TAG,
	LONG_AUTO_LOGIN,
	LONG_LOCAL,
	LONG_SCRYPT_COST,
	LONG_CONTAINER,
	LONG_NO_KEY,
	LONG_BACKUP_ID,
	LONG_TO,
	LONG_USAGE,
	LONG_BACKING,
	LONG_KEY,
	LONG_ALL,
	LONG_USED_BY,
	LONG_SECRET_FILE,
	LONG_SECRET_FD,
	LONG_SECRET_PROMPT,
	LONG_FROM,
	LONG_FROM_PASSWORD_FILE,
	LONG_FROM_PASSWORD_FD,
	LONG_KEY_FILE,
	LONG_KEY_FD,
	LONG_KEY_ID,
	/* tdekey tls */
	LONG_DN,
	LONG_DAYS,
	LONG_KEY_TYPE,
	LONG_CERT,
	LONG_TRUSTED,
	LONG_USER_CERT,
	LONG_COPY,
	LONG_TO_PASSWORD_FILE,
	LONG_TO_PASSWORD_FD,
	LONG_MERGE_FROM,
	LONG_GROUP,
};

static const struct option long_options[] = {
	{ "wallet", required_argument, NULL, 'w' },
	{ "help", no_argument, NULL, 'h' },
	{ "password-file", required_argument, NULL, LONG_PASSWORD_FILE },
	{ "password-fd", required_argument, NULL, LONG_PASSWORD_FD },
	{ "password-prompt", no_argument, NULL, LONG_PASSWORD_PROMPT },
	{ "external-store", no_argument, NULL, LONG_EXTERNAL_STORE },
	{ "new-password-file", required_argument, NULL, LONG_NEW_PASSWORD_FILE },
	{ "new-password-fd", required_argument, NULL, LONG_NEW_PASSWORD_FD },
	{ "json", no_argument, NULL, LONG_JSON },
	{ "tag", required_argument, NULL, LONG_TAG },
	{ "auto-login", no_argument, NULL, LONG_AUTO_LOGIN },
	{ "local", no_argument, NULL, LONG_LOCAL },
	{ "scrypt-cost", required_argument, NULL, LONG_SCRYPT_COST },
	{ "container", required_argument, NULL, LONG_CONTAINER },
	{ "no-key", no_argument, NULL, LONG_NO_KEY },
	{ "backup-id", required_argument, NULL, LONG_BACKUP_ID },
	{ "id", required_argument, NULL, LONG_BACKUP_ID },
	{ "to", required_argument, NULL, LONG_TO },
	{ "usage", required_argument, NULL, LONG_USAGE },
	{ "backing", required_argument, NULL, LONG_BACKING },
	{ "key", required_argument, NULL, LONG_KEY },
	{ "all", no_argument, NULL, LONG_ALL },
	{ "used-by", required_argument, NULL, LONG_USED_BY },
	{ "secret-file", required_argument, NULL, LONG_SECRET_FILE },
	{ "secret-fd", required_argument, NULL, LONG_SECRET_FD },
	{ "secret-prompt", no_argument, NULL, LONG_SECRET_PROMPT },
	{ "from", required_argument, NULL, LONG_FROM },
	{ "from-password-file", required_argument, NULL, LONG_FROM_PASSWORD_FILE },
	{ "from-password-fd", required_argument, NULL, LONG_FROM_PASSWORD_FD },
	{ "key-file", required_argument, NULL, LONG_KEY_FILE },
	{ "key-fd", required_argument, NULL, LONG_KEY_FD },
	{ "key-id", required_argument, NULL, LONG_KEY_ID },
	/* tdekey tls */
	{ "dn", required_argument, NULL, LONG_DN },
	{ "days", required_argument, NULL, LONG_DAYS },
	{ "key-type", required_argument, NULL, LONG_KEY_TYPE },
	{ "cert", required_argument, NULL, LONG_CERT },
	{ "trusted", required_argument, NULL, LONG_TRUSTED },
	{ "user-cert", no_argument, NULL, LONG_USER_CERT },
	{ "copy", no_argument, NULL, LONG_COPY },
	{ "merge-from", required_argument, NULL, LONG_MERGE_FROM },
	{ "group", required_argument, NULL, LONG_GROUP },
	{ "to-password-file", required_argument, NULL, LONG_TO_PASSWORD_FILE },
	{ "to-password-fd", required_argument, NULL, LONG_TO_PASSWORD_FD },
	{ NULL, 0, NULL, 0 },
};

#define STRINGIFY(x) #x
#define EXPAND_STRINGIFY(x) STRINGIFY(x)
#define BACKING_MAX_TEXT EXPAND_STRINGIFY(BACKING_MAX)

static int usage_error(const struct command *command, const char *message, const char *detail)
{
	fprintf(stderr, "tdekey %s: %s%s%s\nTry 'tdekey %s --help'.\n", command->name, message,
		detail ? " " : "", detail ? detail : "", command->name);
	return EXIT_USAGE;
}

static unsigned option_set_of(int option)
{
	switch (option) {
	case LONG_PASSWORD_FILE:
	case LONG_PASSWORD_FD:
	case LONG_PASSWORD_PROMPT:
		return OPTION_PASSWORD;
	case LONG_EXTERNAL_STORE:
		return OPTION_EXTERNAL_STORE;
	case LONG_NEW_PASSWORD_FILE:
	case LONG_NEW_PASSWORD_FD:
		return OPTION_NEW_PASSWORD;
	case LONG_JSON:
		return OPTION_JSON;
	case LONG_TAG:
		return OPTION_TAG;
	case LONG_AUTO_LOGIN:
		return OPTION_AUTO_LOGIN;
	case LONG_LOCAL:
		return OPTION_LOCAL;
	case LONG_SCRYPT_COST:
		return OPTION_SCRYPT_COST;
	case LONG_CONTAINER:
		return OPTION_CONTAINER;
	case LONG_NO_KEY:
		return OPTION_NO_KEY;
	case LONG_BACKUP_ID:
		return OPTION_BACKUP_ID;
	case LONG_TO:
		return OPTION_TO;
	case LONG_USAGE:
		return OPTION_USAGE;
	case LONG_BACKING:
		return OPTION_BACKING;
	case LONG_KEY:
		return OPTION_KEY;
	case LONG_ALL:
		return OPTION_ALL;
	case LONG_USED_BY:
		return OPTION_USED_BY;
	case LONG_SECRET_FILE:
	case LONG_SECRET_FD:
	case LONG_SECRET_PROMPT:
		return OPTION_SECRET;
	case LONG_FROM:
		return OPTION_FROM;
	case LONG_FROM_PASSWORD_FILE:
	case LONG_FROM_PASSWORD_FD:
		return OPTION_FROM_PASSWORD;
	case LONG_KEY_FILE:
	case LONG_KEY_FD:
	case LONG_KEY_ID:
		return OPTION_KEY_SOURCE;
	case LONG_DN:
	case LONG_DAYS:
	case LONG_KEY_TYPE:
	case LONG_CERT:
	case LONG_TRUSTED:
	case LONG_USER_CERT:
		return OPTION_TLS;
	case LONG_COPY:
		return OPTION_COPY;
	case LONG_MERGE_FROM:
		return OPTION_MERGE_FROM;
	case LONG_GROUP:
		return OPTION_GROUP;
	case LONG_TO_PASSWORD_FILE:
	case LONG_TO_PASSWORD_FD:
		return OPTION_TO_PASSWORD;
	default:
		return 0;
	}
}

static int parse_fd(const char *text, int *fd)
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

/* One password source per password: two would leave it unclear which one is used. */
static int set_source(const struct command *command, struct password_source *source, bool *given,
		      enum password_source_kind kind, const char *argument)
{
	if (*given)
		return usage_error(command, "give only one password source", NULL);
	*given = true;
	source->kind = kind;
	source->explicit = true;
	if (kind == PASSWORD_SOURCE_FILE)
		source->path = argument;
	if (kind == PASSWORD_SOURCE_FD && parse_fd(argument, &source->fd) < 0)
		return usage_error(command, "not a file descriptor number:", argument);
	return 0;
}

int parse_options(const struct command *command, int argc, char *argv[], struct options *options,
		  bool *help_shown)
{
	char error[KEYSTORE_ERROR_SIZE];
	int option, ret;

	memset(options, 0, sizeof(*options));
	options->password.kind = PASSWORD_SOURCE_PROMPT;
	options->new_password.kind = PASSWORD_SOURCE_PROMPT;
	options->secret.kind = PASSWORD_SOURCE_PROMPT;
	options->from_password.kind = PASSWORD_SOURCE_PROMPT;
	options->to_password.kind = PASSWORD_SOURCE_PROMPT;
	options->container = WALLET_DEFAULT_CONTAINER;
	options->cost = SCRYPT_DEFAULT_COST;
	options->key_fd = -1;
	*help_shown = false;
	opterr = 0;
	optind = 1;
	while ((option = getopt_long(argc, argv, ":w:h", long_options, NULL)) != -1) {
		unsigned set = option_set_of(option);

		if (set && !(command->options & set))
			return usage_error(command, "this command has no option", argv[optind - 1]);
		switch (option) {
		case 'w':
			options->wallet = optarg;
			break;
		case 'h':
			print_command_help(command, stdout);
			*help_shown = true;
			return EXIT_OK;
		case LONG_PASSWORD_FILE:
			ret = set_source(command, &options->password, &options->password_given,
					 PASSWORD_SOURCE_FILE, optarg);
			if (ret)
				return ret;
			break;
		case LONG_PASSWORD_FD:
			ret = set_source(command, &options->password, &options->password_given,
					 PASSWORD_SOURCE_FD, optarg);
			if (ret)
				return ret;
			break;
		case LONG_PASSWORD_PROMPT:
			ret = set_source(command, &options->password, &options->password_given,
					 PASSWORD_SOURCE_PROMPT, NULL);
			if (ret)
				return ret;
			break;
		case LONG_EXTERNAL_STORE:
			ret = set_source(command, &options->password, &options->password_given,
					 PASSWORD_SOURCE_EXTERNAL_STORE, NULL);
			if (ret)
				return ret;
			break;
		case LONG_NEW_PASSWORD_FILE:
			ret = set_source(command, &options->new_password,
					 &options->new_password_given, PASSWORD_SOURCE_FILE,
					 optarg);
			if (ret)
				return ret;
			break;
		case LONG_NEW_PASSWORD_FD:
			ret = set_source(command, &options->new_password,
					 &options->new_password_given, PASSWORD_SOURCE_FD, optarg);
			if (ret)
				return ret;
			break;
		case LONG_JSON:
			options->json = true;
			break;
		case LONG_TAG:
			if (!wallet_tag_valid(optarg))
				return usage_error(
					command,
					"a tag is at most 64 printable ASCII characters:", optarg);
			options->tag = optarg;
			break;
		case LONG_AUTO_LOGIN:
			options->auto_login = true;
			break;
		case LONG_LOCAL:
			options->local = true;
			break;
		case LONG_SCRYPT_COST:
			if (scrypt_cost_parse(optarg, &options->cost, error) < 0)
				return usage_error(command, error, NULL);
			options->cost_given = true;
			break;
		case LONG_CONTAINER:
			if (!wallet_container_valid(optarg))
				return usage_error(command,
						   "a container name is 1 to 64 letters, digits, "
						   "'_', '-', '.' or '$':",
						   optarg);
			options->container = optarg;
			options->container_given = true;
			break;
		case LONG_NO_KEY:
			options->no_key = true;
			break;
		case LONG_BACKUP_ID:
			if (!wallet_backup_id_valid(optarg))
				return usage_error(
					command,
					"a backup ID is 1 to 64 letters, digits, '.', '_' "
					"or '-' (not starting with '.'):",
					optarg);
			options->backup_id = optarg;
			break;
		case LONG_TO:
			options->to = optarg;
			break;
		case LONG_KEY:
			if (options->key_count == BACKING_MAX)
				return usage_error(command, "too many --key options; the most is",
						   BACKING_MAX_TEXT);
			options->keys[options->key_count++] = optarg;
			break;
		case LONG_ALL:
			options->all = true;
			break;
		case LONG_SECRET_FILE:
		case LONG_SECRET_FD:
		case LONG_SECRET_PROMPT:
			ret = set_source(command, &options->secret, &options->secret_given,
					 option == LONG_SECRET_FILE ? PASSWORD_SOURCE_FILE
					 : option == LONG_SECRET_FD ? PASSWORD_SOURCE_FD
								    : PASSWORD_SOURCE_PROMPT,
					 optarg);
			if (ret)
				return ret;
			break;
		case LONG_FROM:
			if (!*optarg)
				return usage_error(command, "--from names nothing", NULL);
			options->from = optarg;
			break;
		case LONG_FROM_PASSWORD_FILE:
		case LONG_FROM_PASSWORD_FD:
			ret = set_source(command, &options->from_password,
					 &options->from_password_given,
					 option == LONG_FROM_PASSWORD_FILE ? PASSWORD_SOURCE_FILE
									   : PASSWORD_SOURCE_FD,
					 optarg);
			if (ret)
				return ret;
			break;
		case LONG_TO_PASSWORD_FILE:
		case LONG_TO_PASSWORD_FD:
			ret = set_source(command, &options->to_password, &options->to_password_given,
					 option == LONG_TO_PASSWORD_FILE ? PASSWORD_SOURCE_FILE
									 : PASSWORD_SOURCE_FD,
					 optarg);
			if (ret)
				return ret;
			break;
		case LONG_COPY:
			options->copy = true;
			break;
		case LONG_GROUP:
			if (!*optarg)
				return usage_error(command, "--group names nothing", NULL);
			options->group = optarg;
			break;
		case LONG_MERGE_FROM:
			if (!*optarg)
				return usage_error(command, "--merge-from names nothing", NULL);
			if (options->merge_from_count == BACKING_MAX)
				return usage_error(command, "too many --merge-from options; the most is",
						   BACKING_MAX_TEXT);
			options->merge_from[options->merge_from_count++] = optarg;
			break;
		case LONG_KEY_FILE:
		case LONG_KEY_FD:
			if (options->key_file || options->key_fd >= 0)
				return usage_error(command, "give only one of --key-file and --key-fd",
						   NULL);
			if (option == LONG_KEY_FILE) {
				if (!*optarg)
					return usage_error(command, "--key-file names nothing", NULL);
				options->key_file = optarg;
			} else if (parse_fd(optarg, &options->key_fd) < 0) {
				return usage_error(command, "--key-fd: not a file descriptor number:",
						   optarg);
			}
			break;
		case LONG_KEY_ID:
			/* All 32 digits: a prefix names a key that exists, this one names a new one. */
			if (strlen(optarg) != 2 * KEY_ID_SIZE ||
			    key_id_parse(optarg, options->key_id) < 0)
				return usage_error(command,
						   "--key-id must be 32 hexadecimal digits:", optarg);
			options->key_id_given = true;
			break;
		case LONG_USED_BY:
			options->used_by = true;
			__attribute__((fallthrough)); /* the same list as --usage, --backing */
		case LONG_USAGE:
		case LONG_BACKING:
			if (!*optarg)
				return usage_error(command, "a backing directory name is empty", NULL);
			if (options->backing_count == BACKING_MAX)
				return usage_error(command, "too many backing directories; the most is",
						   BACKING_MAX_TEXT);
			options->backing[options->backing_count++] = optarg;
			break;
		/* tdekey tls: the values are checked here, their use by the subcommand in tls.c. */
		case LONG_DN:
			if (!*optarg)
				return usage_error(command, "--dn names no DN", NULL);
			options->tls_dn = optarg;
			break;
		case LONG_DAYS: {
			char *end;
			unsigned long days;

			errno = 0;
			days = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || days < 1 ||
			    days > 36500)
				return usage_error(command, "--days takes 1 to 36500:", optarg);
			options->tls_days = (unsigned)days;
			break;
		}
		case LONG_KEY_TYPE:
			if (strcmp(optarg, "ec-p256") != 0 && strcmp(optarg, "rsa-3072") != 0)
				return usage_error(command, "--key-type is ec-p256 or rsa-3072, not",
						   optarg);
			options->tls_key_type = optarg;
			break;
		case LONG_CERT:
			if (!*optarg)
				return usage_error(command, "--cert names no file", NULL);
			options->tls_cert = optarg;
			break;
		case LONG_TRUSTED:
			if (!*optarg)
				return usage_error(command, "--trusted names nothing", NULL);
			options->tls_trusted = optarg;
			break;
		case LONG_USER_CERT:
			options->tls_user_cert = true;
			break;
		case ':':
			return usage_error(command, "option needs an argument:", argv[optind - 1]);
		default:
			return usage_error(command, "unknown option", argv[optind - 1]);
		}
	}
	if (!options->wallet)
		return usage_error(command, "--wallet DIR is required", NULL);
	if (options->key_id_given && !options->key_file && options->key_fd < 0)
		return usage_error(command, "--key-id goes with --key-file or --key-fd", NULL);
	options->argc = argc - optind;
	options->argv = argv + optind;
	if (options->argc < command->min_arguments || options->argc > command->max_arguments)
		return usage_error(command, "wrong number of arguments", NULL);
	return 0;
}
