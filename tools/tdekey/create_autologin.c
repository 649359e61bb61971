/*
 * tdekey create-autologin: make (or remake) the auto-login copy of the password wallet, like
 * ADMINISTER KEY MANAGEMENT CREATE [LOCAL] AUTO_LOGIN KEYSTORE FROM KEYSTORE. A directory holds
 * one auto-login kind at a time; asking for the other kind replaces it.
 */
#include "tools/tdekey/tdekey.h"

#include <string.h>

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session;
	enum wallet_kind kind =
		options->local ? WALLET_KIND_LOCAL_AUTOLOGIN : WALLET_KIND_AUTOLOGIN;
	const char *path;
	bool from_password;
	struct json json;
	int ret;

	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	from_password = wallet_session_kind(session) == WALLET_KIND_PASSWORD;
	path = wallet_paths_of_kind(wallet_session_paths(session), kind);
	ret = wallet_session_create_autologin(session, options->local, options->backup_id, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out_close;
	}
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "location", path);
		json_string(&json, "type", wallet_kind_name(kind));
		json_string(&json, "from",
			    from_password ? wallet_session_paths(session)->password : NULL);
		json_string(&json, "backup",
			    *wallet_session_backup_path(session)
				    ? wallet_session_backup_path(session)
				    : NULL);
		json_end(&json);
	} else {
		printf("created %s wallet %s%s%s\n", wallet_kind_name(kind), path,
		       from_password ? " from " : "",
		       from_password ? wallet_session_paths(session)->password : "");
		if (*wallet_session_backup_path(session))
			printf("backup %s\n", wallet_session_backup_path(session));
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_create_autologin = {
	.name = "create-autologin",
	.summary = "create the auto-login (or local auto-login) wallet from the password wallet",
	.synopsis =
		"tdekey create-autologin --wallet DIR [--local] [--backup-id ID]\n"
		"                               [--password-file FILE | --password-fd N |\n"
		"                                --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Writes an auto-login wallet holding the same keys as password.wallet, like\n"
		"       Oracle's CREATE [LOCAL] AUTO_LOGIN KEYSTORE FROM KEYSTORE. The tdefs daemon\n"
		"       opens it at mount without a password. Its protection is the file mode 0600\n"
		"       (a copy with group or other access is refused with the chmod that fixes it),\n"
		"       so anyone who can read it as its owner or as root has the keys.\n"
		"\n"
		"       With --local it is local-autologin.wallet, which opens only on this host: its\n"
		"       key is bound to /etc/machine-id, the host name and this host's secret\n"
		"       /var/lib/tdefs/host-secret (32 random bytes only root can read, made on\n"
		"       first use and never replaced). A copy taken to another host is refused with\n"
		"       a message that says so, even where the machine ID and host name are known.\n"
		"       Local auto-login wallets made by older versions, without the host secret,\n"
		"       still open with a warning: run this command again to remake them.\n"
		"\n"
		"       A directory holds one auto-login kind: making one removes the other. An\n"
		"       existing copy is simply remade (use this after restoring password.wallet\n"
		"       from a backup, or when status reports a copy out of step). Every later key\n"
		"       change rewrites the copy automatically. To stop using auto-login, delete the\n"
		"       file; the password wallet is unaffected.\n"
		"\n"
		"       On a wallet created without a password the auto-login wallet is the only\n"
		"       one: this then switches it between the two kinds, after a backup.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --local\n"
		"              Make a local auto-login wallet, bound to this host and its host\n"
		"              secret.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup (taken when the wallet has no\n"
		"              password wallet and the auto-login wallet itself is replaced).\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print location, type, from and backup as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey create-autologin --wallet /etc/tdefs/wallet\n"
		"       tdekey create-autologin --wallet /etc/tdefs/wallet --local\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
