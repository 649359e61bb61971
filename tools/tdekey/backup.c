/*
 * tdekey backup: an explicit backup of the wallet, like ADMINISTER KEY MANAGEMENT BACKUP
 * KEYSTORE. Afterwards every key counts as backed up (BACKED_UP YES, FULLY_BACKED_UP YES).
 */
#include "tools/tdekey/tdekey.h"

#include <string.h>

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session;
	struct json json;
	int ret;

	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ret = wallet_session_backup(session, options->backup_id, options->to, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out_close;
	}
	if (options->json) {
		json_begin(&json, stdout);
		print_commit_json(&json, session);
		json_uint(&json, "keys", keyring_count(wallet_session_keyring(session)));
		json_end(&json);
	} else {
		printf("backed up %zu keys to %s\n", keyring_count(wallet_session_keyring(session)),
		       wallet_session_backup_path(session));
		if (wallet_session_kind(session) != WALLET_KIND_PASSWORD)
			printf("note: this wallet has no password, so the backup opens without one "
			       "(%s); store it as carefully as the keys themselves\n",
			       wallet_session_kind(session) == WALLET_KIND_LOCAL_AUTOLOGIN
				       ? "on this host only"
				       : "anywhere");
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_backup = {
	.name = "backup",
	.summary = "back up the wallet and mark every key backed up",
	.synopsis = "tdekey backup --wallet DIR [--id ID] [--to BACKUP_DIR]\n"
		    "                     [--password-file FILE | --password-fd N |\n"
		    "                      --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Writes a copy of the primary wallet (password.wallet, or the auto-login\n"
		"       wallet of a wallet without a password) into DIR/backup, or into BACKUP_DIR,\n"
		"       named <file>-<UTC time>-g<generation>[-<ID>].wallet, like Oracle's BACKUP\n"
		"       KEYSTORE [USING 'ID'] [TO 'dir']. Every key in it is marked BACKED_UP, and\n"
		"       the wallet records that too, so status shows FULLY_BACKED_UP YES.\n"
		"\n"
		"       A backup of a password wallet needs the password to open (and so does\n"
		"       making it: the backed-up marks are sealed inside). A backup of a wallet\n"
		"       without a password opens without one; keep it as safe as the keys.\n"
		"\n"
		"       Every other change takes a backup of its own before it writes, so restoring\n"
		"       is always possible: copy the backup over DIR/password.wallet (or the\n"
		"       auto-login wallet) and run 'tdekey create-autologin' to remake the copy.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --id ID, --backup-id ID\n"
		"              Put ID (letters, digits, '.', '_', '-') in the backup's name.\n"
		"\n"
		"       --to BACKUP_DIR\n"
		"              Write the backup there instead of DIR/backup (created, mode 0700, if\n"
		"              missing; its parent must exist).\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print wallet, type, generation, backup, refreshed_copies and keys as\n"
		"              JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey backup --wallet /etc/tdefs/wallet --id before-upgrade\n"
		"       tdekey backup --wallet /etc/tdefs/wallet --to /mnt/offsite/tdefs --external-store\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
