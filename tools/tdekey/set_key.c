/*
 * tdekey set-key: rotate the master key, like ADMINISTER KEY MANAGEMENT SET KEY WITH BACKUP. A
 * new MEK becomes active; the previous one is retired but kept forever, because file headers
 * wrapped under it must keep opening until tderekey has rewrapped them (and after, for backups).
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int run(const struct options *options)
{
	char new_id[KEY_ID_TEXT_SIZE], previous_id[KEY_ID_TEXT_SIZE] = "";
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session;
	uint8_t previous[KEY_ID_SIZE];
	bool had_active;
	struct keyring *ring;
	struct json json;
	size_t index;
	int ret;

	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	had_active = keyring_active(ring, previous, NULL) == 0;
	if (had_active)
		key_id_format(previous, previous_id);
	ret = keyring_generate(ring, options->tag, true, (int64_t)time(NULL), &index);
	if (ret < 0) {
		snprintf(error, sizeof(error), "cannot add a master key: %s",
			 keystore_error_message(ret));
		ret = report_failure(ret, error);
		goto out_close;
	}
	key_id_format(keyring_record(ring, index)->id, new_id);
	ret = commit_session(options, session);
	if (ret)
		goto out_close;
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", new_id);
		json_string(&json, "tag", options->tag);
		json_string(&json, "previous_key_id", had_active ? previous_id : NULL);
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		printf("new active master key %s%s%s\n", new_id, options->tag ? ", tag " : "",
		       options->tag ? options->tag : "");
		if (had_active)
			printf("previous key %s is now RETIRED (kept for existing files)\n",
			       previous_id);
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_set_key = {
	.name = "set-key",
	.summary = "create a new master key and make it the active one (rotation)",
	.synopsis = "tdekey set-key --wallet DIR [--tag TAG] [--backup-id ID]\n"
		    "                      [--password-file FILE | --password-fd N |\n"
		    "                       --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Generates a new 256-bit master encryption key (MEK) from the system's random\n"
		"       generator and makes it the ACTIVE key of the wallet's container, like\n"
		"       Oracle's ADMINISTER KEY MANAGEMENT SET KEY ... WITH BACKUP. The key that was\n"
		"       active becomes RETIRED: it stays in the wallet for good, so every file\n"
		"       header wrapped under it still opens. A mounted tdefs re-reads the wallet\n"
		"       and wraps new files under the new key at once; 'tderekey rewrap MNT'\n"
		"       rewraps the existing headers (see docs/REKEY.md).\n"
		"\n"
		"       The change is made to the primary wallet: password.wallet when there is one\n"
		"       (the password is needed), else the auto-login wallet of a wallet created\n"
		"       without a password. First a backup of the wallet as it was is written to\n"
		"       DIR/backup; then the new wallet replaces the old one (temporary file, fsync,\n"
		"       rename, directory fsync); then the auto-login copies are rewritten. Keys in\n"
		"       the backup are marked BACKED_UP; the new key is not, until 'tdekey backup'.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --tag TAG\n"
		"              A label for the new key (up to 64 printable ASCII characters), like\n"
		"              Oracle's USING TAG.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change, like\n"
		"              Oracle's WITH BACKUP USING 'ID'.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print key_id, tag, previous_key_id, wallet, type, generation, backup\n"
		"              and refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey set-key --wallet /etc/tdefs/wallet --tag 2025-q1 --backup-id pre-q1\n"
		"       tdekey set-key --wallet /etc/tdefs/wallet --external-store --json\n"
		"\n",
	.options = OPTION_PASSWORD | OPTION_EXTERNAL_STORE | OPTION_TAG | OPTION_BACKUP_ID |
		   OPTION_JSON,
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
