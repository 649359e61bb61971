/*
 * tdekey delete-secret: remove the external password store, like ADMINISTER KEY MANAGEMENT
 * DELETE SECRET FOR CLIENT 'TDE_WALLET'. From then on the password wallet needs a person (or
 * another password source) again. The store is backed up first, as every change is.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", backup[PATH_MAX] = "";
	struct wallet_paths paths;
	struct json json;
	int ret;

	if (wallet_paths_init(options->wallet, &paths) < 0)
		return report_failure(-ENAMETOOLONG, "wallet directory name is too long");
	ret = wallet_delete_secret(options->wallet, options->backup_id, backup, error);
	if (ret < 0)
		return report_failure(ret, error);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "removed", paths.external_store);
		json_string(&json, "backup", backup);
		json_end(&json);
	} else {
		printf("removed %s\nbackup %s\n", paths.external_store, backup);
	}
	return EXIT_OK;
}

const struct command command_delete_secret = {
	.name = "delete-secret",
	.summary = "remove the external password store",
	.synopsis = "tdekey delete-secret --wallet DIR [--backup-id ID] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Removes DIR/external-store.wallet after backing it up to DIR/backup, like\n"
		"       Oracle's DELETE SECRET FOR CLIENT 'TDE_WALLET'. The password wallet is not\n"
		"       touched; it simply needs its password from another source afterwards. No\n"
		"       password is needed to remove the store. Note that the backup still holds the\n"
		"       password: delete it too if the password must be gone for good.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup of the store.\n"
		"\n"
		"       --json\n"
		"              Print removed and backup as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey delete-secret --wallet /etc/tdefs/wallet\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
