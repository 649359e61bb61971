/*
 * tdekey import: add the master keys of a key export file to the wallet, like ADMINISTER KEY
 * MANAGEMENT IMPORT ENCRYPTION KEYS WITH SECRET. All or nothing: the whole file is read and
 * checked, and every key compared with the wallet's, before the wallet changes; then one
 * commit (backup of the wallet as it was first, then the crash-safe rewrite and the auto-login
 * copies, which a mounted daemon re-reads on its own). Imported keys have origin IMPORTED and
 * are never made active here: switching to one is a separate, deliberate use-key.
 */
#include "tools/tdekey/tdekey.h"

#include <string.h>

#include "keystore/key_export.h"

static void print_result(const struct options *options, const struct key_export *export,
			 const struct key_import_summary *summary, struct wallet_session *session)
{
	char text[KEY_ID_TEXT_SIZE];
	struct json json;

	key_id_format(export->wallet_id, text);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "file", options->from);
		json_string(&json, "source_wallet_id", text);
		json_uint(&json, "imported", summary->added);
		json_uint(&json, "skipped", summary->skipped);
		if (summary->added)
			print_commit_json(&json, session);
		json_end(&json);
		return;
	}
	printf("imported %zu master key%s from %s (source wallet ID %s); %zu already here\n",
	       summary->added, summary->added == 1 ? "" : "s", options->from, text,
	       summary->skipped);
	if (summary->added)
		print_commit_text(session);
}

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct key_import_summary summary;
	struct key_export *export = NULL;
	struct wallet_session *session = NULL;
	struct secret *secret = NULL;
	int ret;

	if (!options->from) {
		fprintf(stderr, "tdekey import: --from FILE is required\nTry 'tdekey import --help'.\n");
		return EXIT_USAGE;
	}
	ret = transport_secret_read(&options->secret, "--secret-file",
				    "Transport secret of the export file: ", false, 1, &secret, error);
	if (ret == 0)
		ret = key_export_read(options->from, secret, &export, error);
	secret_free(secret);
	if (ret < 0)
		return report_failure(ret, error);
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		goto out;
	ret = keyring_import(wallet_session_keyring(session), export->records, export->count,
			     &summary, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	if (summary.added) {
		ret = commit_session(options, session);
		if (ret)
			goto out;
	}
	print_result(options, export, &summary, session);
	ret = EXIT_OK;
out:
	wallet_session_close(session);
	key_export_free(export);
	return ret;
}

const struct command command_import = {
	.name = "import",
	.summary = "add the master keys of a key export file to the wallet",
	.synopsis = "tdekey import --wallet DIR --from FILE\n"
		    "                     [--secret-file FILE | --secret-fd N | --secret-prompt]\n"
		    "                     [--backup-id ID] [--password-file FILE | --password-fd N |\n"
		    "                      --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Reads the key export file FILE (written by 'tdekey export'), unseals it\n"
		"       with the transport secret and adds its keys to the wallet, like Oracle's\n"
		"       ADMINISTER KEY MANAGEMENT IMPORT ENCRYPTION KEYS WITH SECRET.\n"
		"\n"
		"       All or nothing: a key whose ID and bytes the wallet already holds is\n"
		"       skipped; a key ID the wallet holds with other bytes refuses the whole\n"
		"       import and names the key (exit 17). A wrong secret (exit 15) is told apart\n"
		"       from a truncated, altered or foreign file (exit 16). Imported keys have\n"
		"       ORIGIN IMPORTED and are never made active: they unwrap the files that use\n"
		"       them; 'tdekey use-key' or 'set-key' chooses what wraps new files.\n"
		"\n"
		"       The change is made like set-key's: backup of the wallet first, then the\n"
		"       crash-safe rewrite and the auto-login copies. A daemon mounted with the\n"
		"       wallet re-reads it and can use the new keys without a remount. When every\n"
		"       key is already there nothing is written.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory the keys go to.\n"
		"\n"
		"       --from FILE\n"
		"              The key export file. It must belong to root or to you, be writable\n"
		"              by no one else and readable by its owner alone, as export writes\n"
		"              it (exit 7 otherwise).\n"
		"\n"
		"       --secret-file FILE, --secret-fd N, --secret-prompt\n"
		"              Where the transport secret comes from (the first line of FILE or of\n"
		"              descriptor N, or the terminal: the default). FILE, or a regular file\n"
		"              behind N, must belong to root or to you, be writable by no one else\n"
		"              and readable by its owner alone.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print file, source_wallet_id, imported, skipped and the commit as\n"
		"              JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey import --wallet /etc/tdefs/wallet2 --from /tmp/clone.keys \\\n"
		"              --secret-file /root/transport.secret\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
