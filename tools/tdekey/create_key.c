/*
 * tdekey create-key: a new master key that is not yet active, like ADMINISTER KEY MANAGEMENT
 * CREATE KEY. Useful to distribute a key to every host sharing a wallet before switching to it
 * with use-key, so no host meets a header wrapped under a key it does not hold yet.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session;
	char id[KEY_ID_TEXT_SIZE];
	struct keyring *ring;
	struct json json;
	size_t index;
	int ret;

	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	ret = keyring_generate(ring, options->tag, false, (int64_t)time(NULL), &index);
	if (ret < 0) {
		snprintf(error, sizeof(error), "cannot add a master key: %s",
			 keystore_error_message(ret));
		ret = report_failure(ret, error);
		goto out_close;
	}
	key_id_format(keyring_record(ring, index)->id, id);
	ret = commit_session(options, session);
	if (ret)
		goto out_close;
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", id);
		json_string(&json, "tag", options->tag);
		json_string(&json, "state", mek_state_name(MEK_STATE_PREACTIVE));
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		printf("new master key %s%s%s (PREACTIVE); activate it with: tdekey use-key "
		       "--wallet %s %s\n",
		       id, options->tag ? ", tag " : "", options->tag ? options->tag : "",
		       options->wallet, id);
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_create_key = {
	.name = "create-key",
	.summary = "create a master key for later use, without activating it",
	.synopsis = "tdekey create-key --wallet DIR [--tag TAG] [--backup-id ID]\n"
		    "                         [--password-file FILE | --password-fd N |\n"
		    "                          --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Generates a new master encryption key in state PREACTIVE, like Oracle's\n"
		"       ADMINISTER KEY MANAGEMENT CREATE KEY. It wraps nothing until 'tdekey\n"
		"       use-key' activates it. Creating the key ahead lets every host that shares\n"
		"       the wallet receive it before any file is wrapped under it.\n"
		"\n"
		"       The change is made like set-key's: password wallet when there is one, backup\n"
		"       first, then the crash-safe rewrite and the auto-login copies.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --tag TAG\n"
		"              A label for the new key (up to 64 printable ASCII characters).\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print key_id, tag, state, wallet, type, generation, backup and\n"
		"              refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey create-key --wallet /etc/tdefs/wallet --tag 2025-q2\n"
		"       tdekey use-key --wallet /etc/tdefs/wallet 5f0c\n"
		"\n",
	.options = OPTION_PASSWORD | OPTION_EXTERNAL_STORE | OPTION_TAG | OPTION_BACKUP_ID |
		   OPTION_JSON,
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
