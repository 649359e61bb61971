/*
 * tdekey set-key: rotate the master key, like ADMINISTER KEY MANAGEMENT SET KEY WITH BACKUP. A
 * new MEK becomes active; the previous one is retired but kept forever, because file headers
 * wrapped under it must keep opening until tderekey has rewrapped them (and after, for backups).
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"

/*
 * One container's rotation: a new key (generated, or brought by the user) made ACTIVE there,
 * the previous active key of that container RETIRED. Other containers are not touched.
 */
static int rotate(const struct options *options, struct keyring *ring, const char *container,
		  const uint8_t *brought, size_t *index, bool *had_active,
		  char previous_id[KEY_ID_TEXT_SIZE])
{
	char error[KEYSTORE_ERROR_SIZE], id[KEY_ID_TEXT_SIZE];
	uint8_t previous[KEY_ID_SIZE];
	int ret;

	keyring_select_container(ring, container);
	*had_active = keyring_active(ring, previous, NULL) == 0;
	if (*had_active)
		key_id_format(previous, previous_id);
	ret = keyring_add_key(ring, options->key_id_given ? options->key_id : NULL, brought,
			      options->tag, true, (int64_t)time(NULL), index);
	if (ret == -EEXIST) {
		key_id_format(options->key_id, id);
		snprintf(error, sizeof(error),
			 "--key-id %s: the wallet already holds a key with that ID; nothing changed",
			 id);
		return report_failure(-EEXIST, error);
	}
	if (ret < 0) {
		snprintf(error, sizeof(error), "cannot add a master key: %s",
			 keystore_error_message(ret));
		return report_failure(ret, error);
	}
	return 0;
}

static int run(const struct options *options)
{
	char new_id[CONTAINERS_MAX][KEY_ID_TEXT_SIZE];
	char previous_id[CONTAINERS_MAX][KEY_ID_TEXT_SIZE];
	const char *names[CONTAINERS_MAX];
	bool had_active[CONTAINERS_MAX];
	struct wallet_session *session;
	uint8_t *brought = NULL;
	struct keyring *ring;
	struct json json;
	size_t index, count;
	int ret;

	/* The keys on a key server (kmip.c). */
	if (kmip_wallet_in(options->wallet))
		return kmip_set_key(options);
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
		ret = rotate(options, ring, names[c], brought, &index, &had_active[c],
			     previous_id[c]);
		if (ret)
			goto out_close;
		key_id_format(keyring_record(ring, index)->id, new_id[c]);
	}
	ret = commit_session(options, session);
	if (ret)
		goto out_close;
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "key_id", new_id[0]);
		json_string(&json, "tag", options->tag);
		json_string(&json, "container", names[0]);
		json_string(&json, "previous_key_id", had_active[0] ? previous_id[0] : NULL);
		json_bool(&json, "brought", brought != NULL);
		if (count > 1) {
			json_array_begin(&json, "containers");
			for (size_t c = 0; c < count; c++) {
				json_object_begin(&json, NULL);
				json_string(&json, "container", names[c]);
				json_string(&json, "key_id", new_id[c]);
				json_string(&json, "previous_key_id",
					    had_active[c] ? previous_id[c] : NULL);
				json_object_end(&json);
			}
			json_array_end(&json);
		}
		print_commit_json(&json, session);
		json_end(&json);
	} else {
		for (size_t c = 0; c < count; c++) {
			printf("new active master key %s of container %s%s%s%s\n", new_id[c],
			       names[c], options->tag ? ", tag " : "",
			       options->tag ? options->tag : "", brought ? " (key brought in)" : "");
			if (had_active[c])
				printf("previous key %s is now RETIRED (kept for existing files)\n",
				       previous_id[c]);
		}
		print_commit_text(session);
	}
out_close:
	wallet_session_close(session);
out_free:
	secure_free(brought);
	return ret;
}

const struct command command_set_key = {
	.name = "set-key",
	.summary = "create a new master key and make it the active one (rotation)",
	.synopsis = "tdekey set-key --wallet DIR [--container C|all] [--tag TAG] [--backup-id ID]\n"
		    "                      [--key-file FILE | --key-fd N [--key-id ID]]\n"
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
		"       --container C|all\n"
		"              United mode: rotate container C only (its first key makes the\n"
		"              container), or every container of the wallet with all. Default: the\n"
		"              wallet's own container. Each container has its own active key.\n"
		"\n"
		"       --key-file FILE, --key-fd N\n"
		"              Bring your own key: the new key is the 32 raw bytes read from FILE\n"
		"              (owned by root or you, mode 0600 or stricter) or from descriptor N,\n"
		"              held in locked memory and wiped after. Not with --container all.\n"
		"\n"
		"       --key-id ID\n"
		"              With --key-file or --key-fd: the new key's ID (32 hexadecimal\n"
		"              digits); refused when the wallet already holds that ID.\n"
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
		"              Print key_id, tag, container, previous_key_id, brought (and with\n"
		"              --container all a containers array), wallet, type, generation,\n"
		"              backup and refreshed_copies as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey set-key --wallet /etc/tdefs/wallet --tag 2025-q1 --backup-id pre-q1\n"
		"       tdekey set-key --wallet /etc/tdefs/wallet --external-store --json\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
