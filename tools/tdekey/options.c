/*
 * Command-line options: one table (option_table) of every option of every subcommand, each
 * entry naming the commands that take it, parsed by the shared layer (tools/cli/cli.h), so that
 * an option means the same thing everywhere and a misplaced one is refused with a pointer to
 * --help rather than ignored.
 *
 * No option carries a password: only a file name (--password-file) or an inherited descriptor
 * (--password-fd). Arguments are visible to every user through ps and /proc.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

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
	LONG_TRIES,
	LONG_KMIP_SERVER,
	LONG_TLS_WALLET,
	LONG_KMIP_GROUP,
	LONG_PIN_FILE,
	LONG_PIN_FD,
	LONG_HSM_MODULE,
	LONG_TOKEN_LABEL,
	LONG_TOKEN_SERIAL,
	LONG_TO_HSM,
	LONG_TO_KMIP,
};

/*
 * The commands that take each family of options. A list names commands by their name, so an
 * option (or a command) is added in this file alone.
 */
#define OPENS_WITH_PASSWORD                                                                  \
	"create create-autologin status keys set-key create-key use-key set-tag "           \
	"change-password backup add-secret delete-key export import merge move-keys isolate " \
	"change-group tls migrate reverse-migrate unlink"
#define OPENS_WITH_EXTERNAL_STORE                                                            \
	"create-autologin status keys set-key create-key use-key set-tag change-password "  \
	"backup delete-key export import merge move-keys isolate change-group"
#define TAKES_BACKUP_ID                                                                      \
	"create-autologin set-key create-key use-key set-tag change-password backup "       \
	"add-secret delete-secret delete-key import merge move-keys isolate migrate "        \
	"reverse-migrate"
#define TAKES_HSM_TOKEN "create migrate"
#define TAKES_CONTAINER "create status keys set-key create-key use-key set-tag export isolate"

/*
 * Every option of every tdekey command, declared once: the parser, the refusal of a misplaced
 * option and the option list of tdekey --help all come from this table. To add one: an entry
 * here (a LONG_ id above, its argument's name, one line of help, the commands that take it)
 * and its case in parse_options() below.
 */
static const struct cli_option option_table[] = {
	{ "wallet", 'w', "DIR", "the wallet directory (required)", CLI_EVERY_COMMAND, 'w' },
	{ "help", 'h', NULL, "this command's help", CLI_EVERY_COMMAND, 'h' },
	{ "password-file", 0, "FILE", "the wallet password: first line of FILE",
	  OPENS_WITH_PASSWORD, LONG_PASSWORD_FILE },
	{ "password-fd", 0, "N", "the wallet password: first line read from descriptor N",
	  OPENS_WITH_PASSWORD, LONG_PASSWORD_FD },
	{ "pin-file", 0, "FILE", "an HSM wallet's token PIN: first line of FILE",
	  OPENS_WITH_PASSWORD, LONG_PIN_FILE },
	{ "pin-fd", 0, "N", "an HSM wallet's token PIN: first line read from descriptor N",
	  OPENS_WITH_PASSWORD, LONG_PIN_FD },
	{ "hsm-module", 0, "MODULE", "an HSM wallet: the PKCS#11 module (absolute path)",
	  TAKES_HSM_TOKEN, LONG_HSM_MODULE },
	{ "token-label", 0, "LABEL", "an HSM wallet: the label of the token", TAKES_HSM_TOKEN,
	  LONG_TOKEN_LABEL },
	{ "token-serial", 0, "SERIAL", "an HSM wallet: the token's serial, when labels repeat",
	  TAKES_HSM_TOKEN, LONG_TOKEN_SERIAL },
	{ "password-prompt", 0, NULL, "the wallet password: asked on the terminal",
	  OPENS_WITH_PASSWORD, LONG_PASSWORD_PROMPT },
	{ "tries", 0, "N", "password prompts on a terminal before giving up (default 3)",
	  OPENS_WITH_PASSWORD, LONG_TRIES },
	{ "external-store", 0, NULL, "the wallet password: from the external password store",
	  OPENS_WITH_EXTERNAL_STORE, LONG_EXTERNAL_STORE },
	{ "new-password-file", 0, "FILE", "the new password: first line of FILE",
	  "change-password", LONG_NEW_PASSWORD_FILE },
	{ "new-password-fd", 0, "N", "the new password: first line read from descriptor N",
	  "change-password", LONG_NEW_PASSWORD_FD },
	{ "json", 0, NULL, "JSON on stdout instead of text", CLI_EVERY_COMMAND, LONG_JSON },
	{ "tag", 0, "TAG", "a label for the key (up to 64 printable ASCII characters)",
	  "create set-key create-key migrate reverse-migrate", LONG_TAG },
	{ "auto-login", 0, NULL, "also (or only) the auto-login wallet",
	  "create move-keys isolate tls", LONG_AUTO_LOGIN },
	{ "local", 0, NULL, "a local auto-login wallet: opens only on this host",
	  "create create-autologin add-secret move-keys isolate", LONG_LOCAL },
	{ "scrypt-cost", 0, "LOG2N[,R[,P]]", "scrypt cost of a new password seal",
	  "create change-password export move-keys isolate", LONG_SCRYPT_COST },
	{ "container", 0, "C", "the container (united mode); all: every container",
	  TAKES_CONTAINER, LONG_CONTAINER },
	{ "no-key", 0, NULL, "create the wallet without a master key", "create", LONG_NO_KEY },
	{ "backup-id", 0, "ID", "put ID in the name of the backup taken first", TAKES_BACKUP_ID,
	  LONG_BACKUP_ID },
	{ "id", 0, "ID", "the same as --backup-id", TAKES_BACKUP_ID, LONG_BACKUP_ID },
	{ "to", 0, "PATH", "where the copy, export or moved keys go",
	  "backup export move-keys isolate reverse-migrate", LONG_TO },
	{ "to-hsm", 0, "DIR", "migrate: the new HSM wallet directory the keys move to", "migrate",
	  LONG_TO_HSM },
	{ "to-kmip", 0, "DIR", "migrate: the new KMIP wallet directory the keys move to",
	  "migrate", LONG_TO_KMIP },
	{ "usage", 0, "BACKING", "count the files per key under BACKING (repeatable)", "keys",
	  LONG_USAGE },
	{ "backing", 0, "BACKING", "a backing directory to prove against (repeatable)",
	  "delete-key move-keys isolate unlink", LONG_BACKING },
	{ "key", 0, "ID", "a key to act on (repeatable)", "export move-keys", LONG_KEY },
	{ "all", 0, NULL, "every key", "export", LONG_ALL },
	{ "used-by", 0, "BACKING", "the keys the headers under BACKING use (repeatable)",
	  "export", LONG_USED_BY },
	{ "secret-file", 0, "FILE", "the transport secret: first line of FILE", "export import",
	  LONG_SECRET_FILE },
	{ "secret-fd", 0, "N", "the transport secret: first line read from descriptor N",
	  "export import", LONG_SECRET_FD },
	{ "secret-prompt", 0, NULL, "the transport secret: asked on the terminal",
	  "export import", LONG_SECRET_PROMPT },
	{ "from", 0, "PATH", "the export file or wallet to take keys from", "import merge",
	  LONG_FROM },
	{ "from-password-file", 0, "FILE", "the other wallet's password: first line of FILE",
	  "create merge", LONG_FROM_PASSWORD_FILE },
	{ "from-password-fd", 0, "N", "the other wallet's password: from descriptor N",
	  "create merge", LONG_FROM_PASSWORD_FD },
	{ "key-file", 0, "FILE", "bring your own key: 32 raw bytes from FILE",
	  "set-key create-key", LONG_KEY_FILE },
	{ "key-fd", 0, "N", "bring your own key: 32 raw bytes from descriptor N",
	  "set-key create-key", LONG_KEY_FD },
	{ "key-id", 0, "ID", "the brought key's ID (32 hexadecimal digits)", "set-key create-key",
	  LONG_KEY_ID },
	{ "dn", 0, "DN", "the certificate's subject", "tls", LONG_DN },
	{ "days", 0, "N", "the certificate's validity, 1 to 36500 days", "tls", LONG_DAYS },
	{ "key-type", 0, "TYPE", "ec-p256 or rsa-3072", "tls", LONG_KEY_TYPE },
	{ "cert", 0, "FILE", "a certificate to add", "tls", LONG_CERT },
	{ "trusted", 0, "NAME", "a trusted certificate to act on", "tls", LONG_TRUSTED },
	{ "user-cert", 0, NULL, "the user certificate rather than a trusted one", "tls",
	  LONG_USER_CERT },
	{ "copy", 0, NULL, "copy the keys rather than move them", "isolate", LONG_COPY },
	{ "merge-from", 0, "DIR", "a wallet whose keys the new one takes (repeatable)", "create",
	  LONG_MERGE_FROM },
	{ "group", 0, "G", "the provisioning group of the wallet directory",
	  "create change-group", LONG_GROUP },
	{ "to-password-file", 0, "FILE", "the target wallet's password: first line of FILE",
	  "move-keys isolate", LONG_TO_PASSWORD_FILE },
	{ "to-password-fd", 0, "N", "the target wallet's password: from descriptor N",
	  "move-keys isolate", LONG_TO_PASSWORD_FD },
	{ "kmip-server", 0, "LIST", "KMIP key servers host:port[,host:port...], tried in order",
	  "create migrate", LONG_KMIP_SERVER },
	{ "tls-wallet", 0, "DIR", "the TLS wallet that authenticates tdefs to the key servers",
	  "create migrate", LONG_TLS_WALLET },
	{ "kmip-group", 0, "NAME", "a key group on the key server that hosts share (joined if it "
	  "exists)", "create", LONG_KMIP_GROUP },
};

void print_option_table(FILE *out)
{
	fputs("Options (tdekey COMMAND --help says which a command takes):\n", out);
	cli_print_options(out, option_table, ARRAY_SIZE(option_table), CLI_EVERY_COMMAND, 28);
}

bool command_takes_option(const struct command *command, const char *name)
{
	const struct cli_option *option =
		cli_option_named(option_table, ARRAY_SIZE(option_table), name);

	return option && cli_command_takes(option, command->name);
}

#define STRINGIFY(x) #x
#define EXPAND_STRINGIFY(x) STRINGIFY(x)
#define BACKING_MAX_TEXT EXPAND_STRINGIFY(BACKING_MAX)

static int usage_error(const struct command *command, const char *message, const char *detail)
{
	return cli_usage_error("tdekey", command->name, "%s%s%s", message, detail ? " " : "",
			       detail ? detail : "");
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
	if (kind == PASSWORD_SOURCE_FD && cli_parse_fd(argument, &source->fd) < 0)
		return usage_error(command, "not a file descriptor number:", argument);
	return 0;
}

int parse_options(const struct command *command, int argc, char *argv[], struct options *options,
		  bool *help_shown)
{
	char error[KEYSTORE_ERROR_SIZE];
	struct cli_parser parser;
	char *argument;
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
	options->tries = CLI_TRIES_DEFAULT;
	*help_shown = false;
	if (cli_parser_start(&parser, "tdekey", command->name, option_table,
			     ARRAY_SIZE(option_table), 1) < 0)
		return EXIT_ERROR;
	while ((option = cli_next_option(&parser, argc, argv, &argument)) != CLI_END) {
		switch (option) {
		case CLI_REFUSED:
			return EXIT_USAGE;
		case 'w':
			options->wallet = argument;
			break;
		case 'h':
			print_command_help(command, stdout);
			*help_shown = true;
			return EXIT_OK;
		case LONG_PASSWORD_FILE:
			ret = set_source(command, &options->password, &options->password_given,
					 PASSWORD_SOURCE_FILE, argument);
			if (ret)
				return ret;
			break;
		case LONG_PASSWORD_FD:
			ret = set_source(command, &options->password, &options->password_given,
					 PASSWORD_SOURCE_FD, argument);
			if (ret)
				return ret;
			break;
		/* An HSM wallet's PIN is what opens it: the password source, by its own name. */
		case LONG_PIN_FILE:
		case LONG_PIN_FD:
			ret = set_source(command, &options->password, &options->password_given,
					 option == LONG_PIN_FILE ? PASSWORD_SOURCE_FILE
								 : PASSWORD_SOURCE_FD,
					 argument);
			if (ret)
				return ret;
			options->pin_given = true;
			break;
		case LONG_HSM_MODULE:
			if (argument[0] != '/')
				return usage_error(command, "--hsm-module must be an absolute path:",
						   argument);
			options->hsm_module = argument;
			break;
		case LONG_TOKEN_LABEL:
			if (!*argument)
				return usage_error(command, "--token-label names nothing", NULL);
			options->token_label = argument;
			break;
		case LONG_TOKEN_SERIAL:
			if (!*argument)
				return usage_error(command, "--token-serial names nothing", NULL);
			options->token_serial = argument;
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
					 argument);
			if (ret)
				return ret;
			break;
		case LONG_NEW_PASSWORD_FD:
			ret = set_source(command, &options->new_password,
					 &options->new_password_given, PASSWORD_SOURCE_FD, argument);
			if (ret)
				return ret;
			break;
		case LONG_JSON:
			options->json = true;
			break;
		case LONG_TAG:
			if (!wallet_tag_valid(argument))
				return usage_error(
					command,
					"a tag is at most 64 printable ASCII characters:", argument);
			options->tag = argument;
			break;
		case LONG_AUTO_LOGIN:
			options->auto_login = true;
			break;
		case LONG_LOCAL:
			options->local = true;
			break;
		case LONG_SCRYPT_COST:
			if (scrypt_cost_parse(argument, &options->cost, error) < 0)
				return usage_error(command, error, NULL);
			options->cost_given = true;
			break;
		case LONG_CONTAINER:
			if (!wallet_container_valid(argument))
				return usage_error(command,
						   "a container name is 1 to 64 letters, digits, "
						   "'_', '-', '.' or '$':",
						   argument);
			options->container = argument;
			options->container_given = true;
			break;
		case LONG_NO_KEY:
			options->no_key = true;
			break;
		case LONG_BACKUP_ID:
			if (!wallet_backup_id_valid(argument))
				return usage_error(
					command,
					"a backup ID is 1 to 64 letters, digits, '.', '_' "
					"or '-' (not starting with '.'):",
					argument);
			options->backup_id = argument;
			break;
		case LONG_TO:
		case LONG_TO_HSM: /* where the keys go; the option names the kind of target */
			options->to = argument;
			break;
		case LONG_TO_KMIP:
			options->to = argument;
			options->to_kmip = true;
			break;
		case LONG_KEY:
			if (options->key_count == BACKING_MAX)
				return usage_error(command, "too many --key options; the most is",
						   BACKING_MAX_TEXT);
			options->keys[options->key_count++] = argument;
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
					 argument);
			if (ret)
				return ret;
			break;
		case LONG_FROM:
			if (!*argument)
				return usage_error(command, "--from names nothing", NULL);
			options->from = argument;
			break;
		case LONG_FROM_PASSWORD_FILE:
		case LONG_FROM_PASSWORD_FD:
			ret = set_source(command, &options->from_password,
					 &options->from_password_given,
					 option == LONG_FROM_PASSWORD_FILE ? PASSWORD_SOURCE_FILE
									   : PASSWORD_SOURCE_FD,
					 argument);
			if (ret)
				return ret;
			break;
		case LONG_TO_PASSWORD_FILE:
		case LONG_TO_PASSWORD_FD:
			ret = set_source(command, &options->to_password, &options->to_password_given,
					 option == LONG_TO_PASSWORD_FILE ? PASSWORD_SOURCE_FILE
									 : PASSWORD_SOURCE_FD,
					 argument);
			if (ret)
				return ret;
			break;
		case LONG_COPY:
			options->copy = true;
			break;
		case LONG_GROUP:
			if (!*argument)
				return usage_error(command, "--group names nothing", NULL);
			options->group = argument;
			break;
		case LONG_MERGE_FROM:
			if (!*argument)
				return usage_error(command, "--merge-from names nothing", NULL);
			if (options->merge_from_count == BACKING_MAX)
				return usage_error(command, "too many --merge-from options; the most is",
						   BACKING_MAX_TEXT);
			options->merge_from[options->merge_from_count++] = argument;
			break;
		case LONG_KEY_FILE:
		case LONG_KEY_FD:
			if (options->key_file || options->key_fd >= 0)
				return usage_error(command, "give only one of --key-file and --key-fd",
						   NULL);
			if (option == LONG_KEY_FILE) {
				if (!*argument)
					return usage_error(command, "--key-file names nothing", NULL);
				options->key_file = argument;
			} else if (cli_parse_fd(argument, &options->key_fd) < 0) {
				return usage_error(command, "--key-fd: not a file descriptor number:",
						   argument);
			}
			break;
		case LONG_KEY_ID:
			/* All 32 digits: a prefix names a key that exists, this one names a new one. */
			if (strlen(argument) != 2 * KEY_ID_SIZE ||
			    key_id_parse(argument, options->key_id) < 0)
				return usage_error(command,
						   "--key-id must be 32 hexadecimal digits:", argument);
			options->key_id_given = true;
			break;
		case LONG_USED_BY:
			options->used_by = true;
			__attribute__((fallthrough)); /* the same list as --usage, --backing */
		case LONG_USAGE:
		case LONG_BACKING:
			if (!*argument)
				return usage_error(command, "a backing directory name is empty", NULL);
			if (options->backing_count == BACKING_MAX)
				return usage_error(command, "too many backing directories; the most is",
						   BACKING_MAX_TEXT);
			options->backing[options->backing_count++] = argument;
			break;
		/* tdekey tls: the values are checked here, their use by the subcommand in tls.c. */
		case LONG_DN:
			if (!*argument)
				return usage_error(command, "--dn names no DN", NULL);
			options->tls_dn = argument;
			break;
		case LONG_DAYS: {
			char *end;
			unsigned long days;

			errno = 0;
			days = strtoul(argument, &end, 10);
			if (errno || end == argument || *end || argument[0] == '-' || days < 1 ||
			    days > 36500)
				return usage_error(command, "--days takes 1 to 36500:", argument);
			options->tls_days = (unsigned)days;
			break;
		}
		case LONG_KEY_TYPE:
			if (strcmp(argument, "ec-p256") != 0 && strcmp(argument, "rsa-3072") != 0)
				return usage_error(command, "--key-type is ec-p256 or rsa-3072, not",
						   argument);
			options->tls_key_type = argument;
			break;
		case LONG_CERT:
			if (!*argument)
				return usage_error(command, "--cert names no file", NULL);
			options->tls_cert = argument;
			break;
		case LONG_TRUSTED:
			if (!*argument)
				return usage_error(command, "--trusted names nothing", NULL);
			options->tls_trusted = argument;
			break;
		case LONG_USER_CERT:
			options->tls_user_cert = true;
			break;
		case LONG_TRIES:
			if (cli_parse_tries(argument, &options->tries) < 0)
				return usage_error(command, "--tries takes 1 to 100:", argument);
			break;
		case LONG_KMIP_SERVER:
			if (!*argument)
				return usage_error(command, "--kmip-server names nothing", NULL);
			options->kmip_server = argument;
			break;
		case LONG_TLS_WALLET:
			if (!*argument)
				return usage_error(command, "--tls-wallet names nothing", NULL);
			options->tls_wallet = argument;
			break;
		case LONG_KMIP_GROUP:
			if (!*argument)
				return usage_error(command, "--kmip-group names nothing", NULL);
			options->kmip_group = argument;
			break;
		default:
			return usage_error(command, "unhandled option", argument);
		}
	}
	if (!options->wallet)
		return usage_error(command, "--wallet DIR is required", NULL);
	if (options->key_id_given && !options->key_file && options->key_fd < 0)
		return usage_error(command, "--key-id goes with --key-file or --key-fd", NULL);
	options->argc = argc - cli_operand_index();
	options->argv = argv + cli_operand_index();
	if (options->argc < command->min_arguments || options->argc > command->max_arguments)
		return usage_error(command, "wrong number of arguments", NULL);
	return 0;
}
