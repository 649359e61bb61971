/*
 * tdekey use-key: make an existing key the active one, like ADMINISTER KEY MANAGEMENT USE KEY.
 * Either a PREACTIVE key made by create-key, or a RETIRED one brought back (for example after a
 * rotation that has to be undone). The key that was active is retired, never removed.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int run(const struct options *options)
{
	char id[KEY_ID_TEXT_SIZE], previous_id[KEY_ID_TEXT_SIZE] = "";
	struct wallet_session *session;
	uint8_t previous[KEY_ID_SIZE];
	bool had_active, changed;
	struct keyring *ring;
	struct json json;
	size_t index;
	int ret;

	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	ret = find_key_argument(options, ring, &index);
	if (ret)
		goto out_close;
	key_id_format(keyring_record(ring, index)->id, id);
	ret = key_container_check(options, ring, index, false);
	if (ret)
		goto out_close;
	/* The previous active key is the one of the key's own container. */
	keyring_select_container(ring, keyring_record(ring, index)->container);
	had_active = keyring_active(ring, previous, NULL) == 0;
	if (had_active)
		key_id_format(previous, previous_id);
	changed = !had_active || strcmp(previous_id, id) != 0;
	if (changed) {
		keyring_activate(ring, index, (int64_t)time(NULL));
		ret = commit_session(options, session);
		if (ret)
			goto out_close;
	}
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", id);
		json_bool(&json, "changed", changed);
		json_string(&json, "previous_key_id", had_active && changed ? previous_id : NULL);
		if (changed)
			print_commit_json(&json, session);
		json_end(&json);
	} else if (!changed) {
		printf("key %s is already the active key; nothing changed\n", id);
	} else {
		printf("master key %s is now ACTIVE\n", id);
		if (had_active)
			printf("previous key %s is now RETIRED (kept for existing files)\n",
			       previous_id);
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_use_key = {
	.name = "use-key",
	.summary = "make an existing master key the active one",
	.synopsis = "tdekey use-key --wallet DIR [--container C|all] [--backup-id ID]\n"
		    "                      [--password-file FILE | --password-fd N |\n"
		    "                       --password-prompt | --external-store] [--json] KEY_ID",
	.description =
		"DESCRIPTION\n"
		"       Activates the key KEY_ID, like Oracle's ADMINISTER KEY MANAGEMENT USE KEY:\n"
		"       new files are wrapped under it from then on. KEY_ID is the key's ID as\n"
		"       'tdekey keys' prints it, or any prefix of it that no other key shares\n"
		"       (case does not matter); an ambiguous prefix is refused with the keys it\n"
		"       matches. The key may be PREACTIVE (from create-key) or RETIRED. The\n"
		"       previously active key becomes RETIRED and stays in the wallet.\n"
		"\n"
		"       Activating the key that is already active changes nothing and writes nothing.\n"
		"       Otherwise the change is made like set-key's: backup first, then the\n"
		"       crash-safe rewrite and the auto-login copies.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --container C|all\n"
		"              United mode: KEY_ID must be a key of container C (default: of the\n"
		"              wallet's own container); with all, of any container. It becomes the\n"
		"              active key of its own container; no other container changes.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print key_id, changed, previous_key_id and, after a change, wallet,\n"
		"              type, generation, backup and refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey use-key --wallet /etc/tdefs/wallet 5f0c3a\n"
		"\n",
	.min_arguments = 1,
	.max_arguments = 1,
	.run = run,
};
