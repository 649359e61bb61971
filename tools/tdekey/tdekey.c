/*
 * tdekey: the entry point and the dispatch table. Each subcommand lives in its own file and
 * exports a struct command (name, help text, accepted options, run function); this file finds
 * it, parses its options and prints the help pages' shared sections.
 *
 * Before anything else the process is hardened (no core dumps, not traceable by other users):
 * every run may hold a password or master keys.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/util.h"

#ifndef TDEFS_VERSION
#define TDEFS_VERSION "unknown"
#endif

static const struct command *const commands[] = {
	&command_create,  &command_create_autologin, &command_status,
	&command_keys,	  &command_set_key,	     &command_create_key,
	&command_use_key, &command_set_tag,	     &command_change_password,
	&command_backup,  &command_add_secret,	     &command_delete_secret,
	&command_delete_key, &command_export,	     &command_import,
	&command_merge,	     &command_move_keys,  &command_isolate,
	&command_change_group, &command_tls,
	&command_migrate, &command_reverse_migrate, &command_unlink,
};

static const char password_sources_section[] =
	"PASSWORD SOURCES\n"
	"       Passwords are never taken from the command line or the environment, where other\n"
	"       users and shell histories would see them. A password comes from one of:\n"
	"\n"
	"       --password-file FILE\n"
	"              The first line of FILE (a trailing newline or CR LF is not part of it).\n"
	"              Keep the file mode 0600; tdekey warns when group or others may read it.\n"
	"\n"
	"       --password-fd N\n"
	"              The first line read from the inherited file descriptor N, for example\n"
	"              'tdekey keys --wallet W --password-fd 3 3<secret' or a pipe from a vault\n"
	"              client. Reading stops at the newline, so one descriptor can carry the old\n"
	"              and the new password of change-password on two lines.\n"
	"\n"
	"       --password-prompt\n"
	"              The terminal, without echo. This is the default whenever a password is\n"
	"              needed and no other source is named; a new password is asked twice.\n"
	"              Only when standard input is a terminal: never from a pipe, a script\n"
	"              or a unit. A wrong wallet password is asked again, up to --tries N\n"
	"              times (default 3).\n"
	"\n"
	"       --external-store\n"
	"              The password kept in the wallet's external password store (see\n"
	"              tdekey add-secret), for services that must run without a person.\n"
	"\n";

static const char files_section[] =
	"FILES\n"
	"       DIR/password.wallet         keys sealed under the password (scrypt, AES-256-GCM)\n"
	"       DIR/autologin.wallet        the same keys, opens without a password (mode 0600)\n"
	"       DIR/local-autologin.wallet  the same keys, opens only on the host that made it\n"
	"       DIR/external-store.wallet   the password of password.wallet, for --external-store\n"
	"       DIR/hsm.wallet              an HSM wallet: PKCS#11 module, token, key map; no keys\n"
	"       DIR/backup/                 copies taken before every change:\n"
	"                                   <file>-<UTC time>-g<generation>[-<ID>].wallet\n"
	"       DIR/wallet.lock             held while a tdekey run changes the directory\n"
	"       DIR/tls.p12                 tdekey tls: the TLS wallet (PKCS#12, password)\n"
	"       DIR/tls-autologin.p12       tdekey tls: the same, no password (mode 0600)\n"
	"       /var/lib/tdefs/host-secret  this host's secret for local auto-login wallets\n"
	"\n"
	"SEE ALSO\n"
	"       tdekey --help, docs/WALLET.md\n";

void print_command_help(const struct command *command, FILE *out)
{
	fprintf(out, "NAME\n       tdekey %s - %s\n\nSYNOPSIS\n       %s\n\n%s", command->name,
		command->summary, command->synopsis, command->description);
	if (command->description_more)
		fputs(command->description_more, out);
	if (command_takes_option(command, "password-file") ||
	    command_takes_option(command, "new-password-file"))
		fputs(password_sources_section, out);
	cli_print_exit_status(out);
	fputs(files_section, out);
}

static void print_main_help(FILE *out)
{
	fputs("Usage: tdekey COMMAND --wallet DIR [OPTIONS]\n"
	      "       tdekey help COMMAND | tdekey COMMAND --help\n"
	      "       tdekey --version\n"
	      "\n"
	      "Manage the wallets that hold the master encryption keys (MEKs) of tdefs, the way\n"
	      "Oracle's ADMINISTER KEY MANAGEMENT manages a TDE keystore. DIR is the wallet\n"
	      "directory (like Oracle's WALLET_ROOT/tde).\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-17s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "Wallet kinds: PASSWORD (password.wallet), AUTOLOGIN (autologin.wallet, opens without\n"
	      "a password) and LOCAL_AUTOLOGIN (local-autologin.wallet, opens only on its host).\n"
	      "Every change keeps a backup in DIR/backup first. Add --json for machine output.\n"
	      "\n"
	      "Quick start:\n"
	      "  # a password wallet and its auto-login copy (asks for the password twice)\n"
	      "  tdekey create --wallet /etc/tdefs/wallet --auto-login --password-prompt\n"
	      "  # or, with no password at all, an auto-login wallet only (no prompt)\n"
	      "  tdekey create --wallet /etc/tdefs/wallet --auto-login\n"
	      "  tdekey status --wallet /etc/tdefs/wallet\n"
	      "  tdekey keys --wallet /etc/tdefs/wallet\n"
	      "  tdekey set-key --wallet /etc/tdefs/wallet --tag 2025-q1\n"
	      "\n",
	      out);
	print_option_table(out);
}

/*
 * A wallet directory this user may not enter reads as "no wallet" further down (every file
 * in it looks absent): say what it is, before any command looks.
 */
static int check_wallet_access(const char *dir)
{
	struct stat st;

	if (!dir)
		return EXIT_OK;
	if (stat(dir, &st) < 0) {
		if (errno != EACCES)
			return EXIT_OK; /* missing: each command says what it needs */
		fprintf(stderr, "tdekey: wallet directory %s: permission denied (a directory on the "
			"way is closed to uid %u)\n", dir, (unsigned)getuid());
		return EXIT_PERMISSIONS;
	}
	if (S_ISDIR(st.st_mode) && access(dir, R_OK | X_OK) < 0 && errno == EACCES) {
		fprintf(stderr,
			"tdekey: wallet directory %s: permission denied (owned by uid %u, mode "
			"%04o; run tdekey as that user or root)\n",
			dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return EXIT_PERMISSIONS;
	}
	return EXIT_OK;
}

/*
 * Every change to a wallet goes to syslog (LOG_AUTHPRIV): who (uid, user name, and the sudo
 * user behind it), which command and key argument, which wallet, and what it holds now. The
 * read-only commands are not logged; any other, new ones included, is.
 */
static void audit_change(const struct command *command, const struct options *options)
{
	static const char *const read_only[] = { "status", "keys", "backup", "key-usage" };
	const struct passwd *user = getpwuid(getuid());
	const char *sudo_user = getenv("SUDO_USER");
	char *wallet;

	for (size_t i = 0; i < ARRAY_SIZE(read_only); i++)
		if (strcmp(command->name, read_only[i]) == 0)
			return;
	wallet = options->wallet ? realpath(options->wallet, NULL) : NULL;
	log_audit("tdekey", "%s by uid %u (%s%s%s) on wallet %s%s%s%s%s", command->name,
		  (unsigned)getuid(), user ? user->pw_name : "?", sudo_user ? ", sudo from " : "",
		  sudo_user ? sudo_user : "",
		  wallet ? wallet : options->wallet ? options->wallet : "?",
		  options->argc > 0 ? ": key " : "", options->argc > 0 ? options->argv[0] : "",
		  committed_summary[0] ? "; " : "", committed_summary);
	free(wallet);
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

int main(int argc, char *argv[])
{
	const struct command *command;
	struct options options;
	bool help_shown;
	int ret;

	if (secure_process_setup(false) < 0) {
		fprintf(stderr, "tdekey: cannot disable core dumps; refusing to handle keys\n");
		return EXIT_ERROR;
	}
	if (argc < 2) {
		print_main_help(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_main_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("tdekey %s (wallet format %d, %s)\n", TDEFS_VERSION, WALLET_FORMAT_VERSION,
		       crypto_backend_version());
		return EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			print_main_help(stdout);
			return EXIT_OK;
		}
		command = find_command(argv[2]);
		if (!command) {
			fprintf(stderr, "tdekey: no command '%s'; tdekey --help lists them\n",
				argv[2]);
			return EXIT_USAGE;
		}
		print_command_help(command, stdout);
		return EXIT_OK;
	}
	command = find_command(argv[1]);
	if (!command) {
		fprintf(stderr, "tdekey: no command '%s'; tdekey --help lists them\n", argv[1]);
		return EXIT_USAGE;
	}
	ret = parse_options(command, argc - 1, argv + 1, &options, &help_shown);
	if (ret || help_shown)
		return ret;
	ret = check_wallet_access(options.wallet);
	if (ret)
		return ret;
	ret = kmip_refuse_other(command, &options);
	if (ret)
		return ret;
	ret = command->run(&options);
	if (ret == EXIT_OK)
		audit_change(command, &options);
	return ret;
}
