/*
 * tdekey delete-key: remove a master key from the wallet, the one operation that ever does.
 * Rotation keeps every key because file headers wrapped under it must
 * keep opening; so a key goes only after a proof that no header needs it: every backing
 * directory named with --backing is scanned, under the wallet lock, and the key is refused
 * while any header references it, while it is the ACTIVE key, while any header cannot be read
 * (it might reference it), and when no directory is named at all. Like every change it keeps
 * a backup of the wallet first, so a key deleted by mistake can still be restored.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>

/* "under /a (3), /b (1)": the directories with headers using key_id (or damaged ones). */
static void print_directories(const struct key_census *census, const uint8_t key_id[KEY_ID_SIZE],
			      bool damaged)
{
	const char *separator = "under ";

	for (size_t d = 0; d < census->directories; d++) {
		uint64_t count = damaged ? census->dirs[d].scan.damaged
					 : census_files_in(census, d, key_id);

		if (count == 0)
			continue;
		fprintf(stderr, "%s%s (%llu)", separator, census->dirs[d].path,
			(unsigned long long)count);
		separator = ", ";
	}
}

/* The proof: no header references key_id, and every header could be read. */
static int check_unused(const struct options *options, const struct key_census *census,
			const uint8_t key_id[KEY_ID_SIZE], const char *id)
{
	uint64_t files = census_files_for(census, key_id);

	if (files) {
		fprintf(stderr, "tdekey: key %s is still used by %llu file header%s ", id,
			(unsigned long long)files, files == 1 ? "" : "s");
		print_directories(census, key_id, false);
		fputs("; rewrap them under the active key with 'tderekey rewrap MOUNTPOINT' on the "
		      "mount of each directory, then delete again\n",
		      stderr);
		return EXIT_KEY_IN_USE;
	}
	if (census->damaged) {
		fprintf(stderr,
			"tdekey: cannot prove that key %s is unused: %llu file header%s cannot be "
			"read and might reference it, ",
			id, (unsigned long long)census->damaged, census->damaged == 1 ? "" : "s");
		print_directories(census, key_id, true);
		fprintf(stderr,
			"; 'tdefs --check --wallet %s BACKING' names them: repair or remove them, "
			"then delete again\n",
			options->wallet);
		return EXIT_BACKING;
	}
	return EXIT_OK;
}

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id[KEY_ID_TEXT_SIZE];
	char tag[WALLET_TAG_MAX + 1], container[WALLET_CONTAINER_MAX + 1];
	uint8_t key_id[KEY_ID_SIZE];
	struct wallet_session *session;
	const struct mek_record *record;
	struct key_census census;
	const char *state;
	struct keyring *ring;
	struct json json;
	size_t index;
	int ret;

	if (options->backing_count == 0) {
		fprintf(stderr,
			"tdekey delete-key: name every backing directory that uses this wallet "
			"with --backing BACKING: a key is deleted only after proving that no file "
			"header under them references it, and without them nothing is proved\n"
			"Try 'tdekey delete-key --help'.\n");
		return EXIT_USAGE;
	}
	/* The keys on a key server (kmip.c). */
	if (kmip_wallet_in(options->wallet))
		return kmip_delete_key(options);
	/* The lock is held from here to the commit: no key can become active meanwhile. */
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	memset(&census, 0, sizeof(census));
	ring = wallet_session_keyring(session);
	ret = find_key_argument(options, ring, &index);
	if (ret)
		goto out_close;
	record = keyring_record(ring, index);
	key_id_format(record->id, id);
	memcpy(key_id, record->id, KEY_ID_SIZE);
	snprintf(tag, sizeof(tag), "%s", record->tag);
	snprintf(container, sizeof(container), "%s", record->container);
	state = mek_state_name(record->state);
	if (record->state == MEK_STATE_ACTIVE) {
		fprintf(stderr,
			"tdekey: key %s is the ACTIVE key of container %s: new files are wrapped "
			"under it; make another key active (tdekey set-key), rewrap with 'tderekey "
			"rewrap MOUNTPOINT', then delete it\n",
			id, container);
		ret = EXIT_KEY_IN_USE;
		goto out_close;
	}
	ret = census_take(options, ring, &census);
	if (ret)
		goto out_close;
	ret = check_unused(options, &census, key_id, id);
	if (ret)
		goto out_close;
	ret = wallet_session_delete_key(session, index, options->backup_id, error);
	if (ret < 0) {
		int code = report_failure(ret, error);

		ret = keystore_error_of(ret) == KEYSTORE_ERR_KEY_IS_ACTIVE ? EXIT_KEY_IN_USE : code;
		goto out_close;
	}
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", id);
		json_string(&json, "tag", tag[0] ? tag : NULL);
		json_string(&json, "container", container);
		json_string(&json, "state", state);
		json_array_begin(&json, "backing");
		for (size_t d = 0; d < census.directories; d++)
			json_string(&json, NULL, census.dirs[d].path);
		json_array_end(&json);
		json_uint(&json, "files_scanned", census.files);
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		printf("master key %s (%s%s%s) deleted: no file header under %zu backing "
		       "director%s references it (%llu files scanned)\n",
		       id, state, tag[0] ? ", tag " : "", tag, census.directories,
		       census.directories == 1 ? "y" : "ies", (unsigned long long)census.files);
		print_commit_text(session);
		if (*wallet_session_backup_path(session))
			printf("the backup still holds the key: delete it too if the key must be "
			       "gone for good\n");
	}
out_close:
	census_free(&census);
	wallet_session_close(session);
	return ret;
}

const struct command command_delete_key = {
	.name = "delete-key",
	.summary = "remove a master key no file header uses any more",
	.synopsis = "tdekey delete-key --wallet DIR --backing BACKING [--backing BACKING ...]\n"
		    "                         [--backup-id ID] [--password-file FILE |\n"
		    "                          --password-fd N | --password-prompt |\n"
		    "                          --external-store] [--json] KEY_ID",
	.description =
		"DESCRIPTION\n"
		"       Removes the master key KEY_ID from the wallet for good, once no file needs\n"
		"       it. Rotation (set-key, use-key) never removes a key: every header wrapped\n"
		"       under it must keep opening, including those in restored copies of a\n"
		"       backing directory. Delete a retired key only when it must really go (a\n"
		"       suspected compromise, a retention policy), after 'tderekey rewrap\n"
		"       MOUNTPOINT' has rewrapped every header under the active key.\n"
		"\n"
		"       Before anything is written, every backing directory named with --backing is\n"
		"       scanned (read-only, nothing unsealed) while the wallet is locked, and the\n"
		"       key is refused, with the wallet unchanged:\n"
		"\n"
		"       - while any file header there references it (exit 13; the message says\n"
		"         how many under which directory);\n"
		"       - when it is the ACTIVE key, which wraps every new file (exit 13);\n"
		"       - when any header there cannot be read (damaged, or from a newer tdefs):\n"
		"         it might reference the key (exit 14);\n"
		"       - when a directory is not a backing directory initialised for this wallet\n"
		"         or cannot be scanned (exit 14);\n"
		"       - when no --backing is given (exit 2): nothing would be proved.\n"
		"\n"
		"       Only the directories named are proved free of the key: name every backing\n"
		"       directory that uses the wallet. Copies of them (backups, standbys) that\n"
		"       still hold headers under the key will not open after it is gone, except\n"
		"       with the wallet backup this command writes.\n"
		"\n"
		"       KEY_ID is the key's ID as 'tdekey keys' prints it, or any prefix of it that\n"
		"       no other key shares. The change is made like set-key's: a backup of the\n"
		"       wallet as it was first (it still holds the key), then the auto-login\n"
		"       copies and then the primary wallet, each rewritten crash-safely. A mounted\n"
		"       tdefs keeps the key in memory until it is unmounted (a reload only ever adds\n"
		"       keys). The primary is password.wallet when there is one (the password is\n"
		"       needed), else the auto-login wallet, changed without a password.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --backing BACKING\n"
		"              A backing directory that uses the wallet, as given to 'tdefs --init'\n"
		"              (not the mount point). Repeat it for every such directory; it is\n"
		"              required. Subdirectories are scanned; file systems mounted below are\n"
		"              not.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print key_id, tag, container, state (before the deletion), backing,\n"
		"              files_scanned, wallet, type, generation, backup and\n"
		"              refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey keys --wallet /etc/tdefs/wallet --usage /srv/pgdata.enc\n"
		"       tdekey delete-key --wallet /etc/tdefs/wallet --backing /srv/pgdata.enc \\\n"
		"           --backup-id before-delete 5f0c3a\n"
		"\n",
	.min_arguments = 1,
	.max_arguments = 1,
	.run = run,
};
