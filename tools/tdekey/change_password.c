/*
 * tdekey change-password: reseal the wallet under a new password, like ADMINISTER KEY
 * MANAGEMENT ALTER KEYSTORE PASSWORD ... WITH BACKUP. On a wallet made without a password it
 * sets the first one, creating password.wallet from the auto-login wallet's keys.
 */
#include "tools/tdekey/tdekey.h"

#include <string.h>

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session;
	struct secret *new_password = NULL;
	enum wallet_kind before;
	struct json json;
	int ret;

	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	before = wallet_session_kind(session);
	ret = password_read(&options->new_password, "New wallet password: ", true, &new_password,
			    error);
	if (ret == 0)
		ret = wallet_session_change_password(session, new_password,
						     options->cost_given ? &options->cost : NULL,
						     options->backup_id, error);
	secret_free(new_password);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out_close;
	}
	if (options->json) {
		json_begin(&json, stdout);
		json_bool(&json, "password_wallet_created", before != WALLET_KIND_PASSWORD);
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		if (before != WALLET_KIND_PASSWORD)
			printf("password wallet created; from now on key changes need the password\n");
		else
			printf("password changed\n");
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_change_password = {
	.name = "change-password",
	.summary = "change the wallet password (or set the first one)",
	.synopsis =
		"tdekey change-password --wallet DIR [--scrypt-cost LOG2N[,R[,P]]]\n"
		"                              [--backup-id ID]\n"
		"                              [--password-file FILE | --password-fd N |\n"
		"                               --password-prompt | --external-store]\n"
		"                              [--new-password-file FILE | --new-password-fd N]\n"
		"                              [--json]",
	.description =
		"DESCRIPTION\n"
		"       Seals password.wallet under a new password, with a fresh scrypt salt, like\n"
		"       Oracle's ALTER KEYSTORE PASSWORD ... WITH BACKUP. The keys do not change and\n"
		"       the auto-login copies need no change, but are rewritten to stay level.\n"
		"\n"
		"       The current password comes from the usual password options; the new one\n"
		"       from --new-password-file or --new-password-fd, or is asked twice on the\n"
		"       terminal. It must have at least 8 characters.\n"
		"\n"
		"       When an external password store exists it is kept working throughout: it is\n"
		"       backed up, then holds both passwords while the wallet is rewritten, then only\n"
		"       the new one. A crash at any point leaves a store that opens the wallet.\n"
		"\n"
		"       On a wallet created without a password (auto-login only) no current password\n"
		"       is needed: this creates password.wallet with the same keys, and the\n"
		"       auto-login wallet stays as its copy. From then on key changes need the\n"
		"       password.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --scrypt-cost LOG2N[,R[,P]]\n"
		"              scrypt cost under the new password (see tdekey create --help). By\n"
		"              default the cost stays what it was (16,8,1 for a first password).\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the current password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --new-password-file FILE, --new-password-fd N\n"
		"              Where the new password comes from, read the same way.\n"
		"\n"
		"       --json\n"
		"              Print password_wallet_created, wallet, type, generation, backup and\n"
		"              refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey change-password --wallet /etc/tdefs/wallet\n"
		"       printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" |\n"
		"           tdekey change-password --wallet W --password-fd 0 --new-password-fd 0\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
