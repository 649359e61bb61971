/*
 * tdekey add-secret: keep the password wallet's password in the external password store, like
 * ADMINISTER KEY MANAGEMENT ADD SECRET ... FOR CLIENT 'TDE_WALLET' TO AUTO_LOGIN KEYSTORE. A
 * service then opens the password wallet with --external-store and no person at a prompt.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", backup[PATH_MAX] = "";
	struct wallet_paths paths;
	struct secret *password;
	struct json json;
	int ret;

	if (wallet_paths_init(options->wallet, &paths) < 0)
		return report_failure(-ENAMETOOLONG, "wallet directory name is too long");
	ret = password_read(&options->password, "Password of the wallet to store: ", false,
			    &password, error);
	if (ret < 0)
		return report_failure(ret, error);
	ret = wallet_add_secret(options->wallet, password, options->local, options->backup_id,
				backup, error);
	secret_free(password);
	if (ret < 0)
		return report_failure(ret, error);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "location", paths.external_store);
		json_string(&json, "type",
			    wallet_kind_name(options->local ? WALLET_KIND_LOCAL_AUTOLOGIN
							    : WALLET_KIND_AUTOLOGIN));
		json_string(&json, "backup", *backup ? backup : NULL);
		json_end(&json);
	} else {
		printf("stored the password of %s in %s%s\n", paths.password, paths.external_store,
		       options->local ? " (opens on this host only)" : "");
		if (*backup)
			printf("backup %s\n", backup);
	}
	return EXIT_OK;
}

const struct command command_add_secret = {
	.name = "add-secret",
	.summary = "store the wallet password in the external password store",
	.synopsis = "tdekey add-secret --wallet DIR [--local] [--backup-id ID]\n"
		    "                         [--password-file FILE | --password-fd N |\n"
		    "                          --password-prompt] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Stores the password of DIR/password.wallet in the external password store\n"
		"       DIR/external-store.wallet, like Oracle's ADD SECRET ... FOR CLIENT\n"
		"       'TDE_WALLET' to the external store. Afterwards --external-store opens the\n"
		"       password wallet for any command without a prompt, and the tdefs daemon uses\n"
		"       the store at mount when the directory has no auto-login wallet.\n"
		"\n"
		"       The password is checked against password.wallet first; a wrong one is\n"
		"       refused and nothing is written. An existing store is backed up and replaced.\n"
		"       The store is protected like an auto-login wallet: mode 0600, and with\n"
		"       --local bound to this host. change-password keeps it up to date.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --local\n"
		"              Bind the store to this host (machine ID, host name and the host\n"
		"              secret /var/lib/tdefs/host-secret, made when missing).\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup of the store being replaced.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt\n"
		"              Where the password to store comes from (PASSWORD SOURCES); by\n"
		"              default it is asked on the terminal.\n"
		"\n"
		"       --json\n"
		"              Print location, type and backup as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey add-secret --wallet /etc/tdefs/wallet --local\n"
		"       tdekey set-key --wallet /etc/tdefs/wallet --external-store\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
