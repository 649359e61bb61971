/*
 * tdekey set-tag: change the tag of a key, like ADMINISTER KEY MANAGEMENT SET TAG. Tags are
 * labels for people (a quarter, a ticket); nothing in tdefs depends on them, so any key, active
 * or historical, can be relabelled.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>

static int run(const struct options *options)
{
	const char *tag = options->argv[1];
	char id[KEY_ID_TEXT_SIZE], old_tag[WALLET_TAG_MAX + 1];
	struct wallet_session *session;
	struct keyring *ring;
	struct json json;
	size_t index;
	int ret;

	if (!wallet_tag_valid(tag)) {
		fprintf(stderr, "tdekey set-tag: a tag is at most %d printable ASCII characters\n",
			WALLET_TAG_MAX);
		return EXIT_USAGE;
	}
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	ret = find_key_argument(options, ring, &index);
	if (ret)
		goto out_close;
	ret = key_container_check(options, ring, index, true);
	if (ret)
		goto out_close;
	key_id_format(keyring_record(ring, index)->id, id);
	snprintf(old_tag, sizeof(old_tag), "%s", keyring_record(ring, index)->tag);
	keyring_set_tag(ring, index, tag);
	ret = commit_session(options, session);
	if (ret)
		goto out_close;
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", id);
		json_string(&json, "tag", *tag ? tag : NULL);
		json_string(&json, "previous_tag", *old_tag ? old_tag : NULL);
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		if (*tag)
			printf("key %s is now tagged '%s'\n", id, tag);
		else
			printf("key %s has no tag now\n", id);
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_set_tag = {
	.name = "set-tag",
	.summary = "change the tag of a master key",
	.synopsis =
		"tdekey set-tag --wallet DIR [--container C|all] [--backup-id ID]\n"
		"                      [--password-file FILE | --password-fd N |\n"
		"                       --password-prompt | --external-store] [--json] KEY_ID TAG",
	.description =
		"DESCRIPTION\n"
		"       Sets the tag of key KEY_ID to TAG, like Oracle's ADMINISTER KEY MANAGEMENT\n"
		"       SET TAG. KEY_ID is a full key ID or any unique prefix of one. TAG is up to 64\n"
		"       printable ASCII characters; an empty TAG ('') removes the tag. Any key may\n"
		"       be retagged, whatever its state. The change is made like set-key's: backup\n"
		"       first, then the crash-safe rewrite and the auto-login copies.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --container C|all\n"
		"              United mode: refuse unless KEY_ID is a key of container C (all, or\n"
		"              no --container: a key of any container).\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print key_id, tag, previous_tag, wallet, type, generation, backup and\n"
		"              refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey set-tag --wallet /etc/tdefs/wallet 5f0c 'rotated after incident 4711'\n"
		"       tdekey set-tag --wallet /etc/tdefs/wallet 5f0c ''\n"
		"\n",
	.min_arguments = 2,
	.max_arguments = 2,
	.run = run,
};
