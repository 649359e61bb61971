/*
 * tdekey create-key: a new master key that is not yet active, like ADMINISTER KEY MANAGEMENT
 * CREATE KEY. Useful to distribute a key to every host sharing a wallet before switching to it
 * with use-key, so no host meets a header wrapped under a key it does not hold yet.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	char id[CONTAINERS_MAX][KEY_ID_TEXT_SIZE];
	const char *names[CONTAINERS_MAX];
	struct wallet_session *session;
	uint8_t *brought = NULL;
	struct keyring *ring;
	struct json json;
	size_t index, count;
	int ret;

	ret = brought_key_read(options, &brought);
	if (ret)
		return ret;
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		goto out_free;
	ring = wallet_session_keyring(session);
	ret = containers_selected(options, ring, false, names, CONTAINERS_MAX, &count);
	if (ret)
		goto out_close;
	if (count > 1 && (brought || options->key_id_given)) {
		ret = report_failure(-EINVAL, "--key-file, --key-fd and --key-id bring one key, "
					      "for one container: not with --container all");
		goto out_close;
	}
	for (size_t c = 0; c < count; c++) {
		keyring_select_container(ring, names[c]);
		ret = keyring_add_key(ring, options->key_id_given ? options->key_id : NULL, brought,
				      options->tag, false, (int64_t)time(NULL), &index);
		if (ret == -EEXIST) {
			key_id_format(options->key_id, id[c]);
			snprintf(error, sizeof(error),
				 "--key-id %s: the wallet already holds a key with that ID; nothing "
				 "changed",
				 id[c]);
			ret = report_failure(-EEXIST, error);
			goto out_close;
		}
		if (ret < 0) {
			snprintf(error, sizeof(error), "cannot add a master key: %s",
				 keystore_error_message(ret));
			ret = report_failure(ret, error);
			goto out_close;
		}
		key_id_format(keyring_record(ring, index)->id, id[c]);
	}
	ret = commit_session(options, session);
	if (ret)
		goto out_close;
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", id[0]);
		json_string(&json, "tag", options->tag);
		json_string(&json, "container", names[0]);
		json_string(&json, "state", mek_state_name(MEK_STATE_PREACTIVE));
		json_bool(&json, "brought", brought != NULL);
		if (count > 1) {
			json_array_begin(&json, "containers");
			for (size_t c = 0; c < count; c++) {
				json_object_begin(&json, NULL);
				json_string(&json, "container", names[c]);
				json_string(&json, "key_id", id[c]);
				json_object_end(&json);
			}
			json_array_end(&json);
		}
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		for (size_t c = 0; c < count; c++)
			printf("new master key %s of container %s%s%s%s (PREACTIVE); activate it "
			       "with: tdekey use-key --wallet %s --container %s %s\n",
			       id[c], names[c], options->tag ? ", tag " : "",
			       options->tag ? options->tag : "", brought ? ", key brought in" : "",
			       options->wallet, names[c], id[c]);
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
out_free:
	secure_free(brought);
	return ret;
}

const struct command command_create_key = {
	.name = "create-key",
	.summary = "create a master key for later use, without activating it",
	.synopsis = "tdekey create-key --wallet DIR [--container C|all] [--tag TAG] [--backup-id ID]\n"
		    "                         [--key-file FILE | --key-fd N [--key-id ID]]\n"
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
		"       --container C|all\n"
		"              United mode: the key is of container C (default the wallet's own),\n"
		"              or one new key for every container of the wallet with all.\n"
		"\n"
		"       --key-file FILE, --key-fd N\n"
		"              Bring your own key: the 32 raw bytes read from FILE (owned by root or\n"
		"              you, mode 0600 or stricter) or from descriptor N, held in locked\n"
		"              memory and wiped after. Not with --container all.\n"
		"\n"
		"       --key-id ID\n"
		"              With --key-file or --key-fd: the new key's ID (32 hexadecimal\n"
		"              digits); refused when the wallet already holds that ID.\n"
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
		"              Print key_id, tag, container, state, brought (with --container all\n"
		"              a containers array), wallet, type, generation, backup and\n"
		"              refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey create-key --wallet /etc/tdefs/wallet --tag 2025-q2\n"
		"       tdekey use-key --wallet /etc/tdefs/wallet 5f0c\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
