/*
 * tdekey keys: the key listing, with the columns of Oracle's V$ENCRYPTION_KEYS. It opens the
 * auto-login wallet when there is one, so listing needs no password; naming a password source
 * reads password.wallet instead.
 *
 * With --usage BACKING (any number of times) it also counts the file headers under those
 * backing directories that reference each key (FILES), names key IDs the headers reference
 * but the wallet lacks (those files cannot be opened) and counts damaged headers: what a DBA
 * looks at after 'tderekey rewrap' and before 'tdekey delete-key'.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>

static void print_usage_json(struct json *json, const struct keyring *ring,
			     const struct key_census *census)
{
	char id[KEY_ID_TEXT_SIZE];

	json_array_begin(json, "backing");
	for (size_t d = 0; d < census->directories; d++) {
		const struct backing_scan *scan = &census->dirs[d].scan;

		json_object_begin(json, NULL);
		json_string(json, "path", census->dirs[d].path);
		json_uint(json, "files", scan->files);
		json_uint(json, "empty", scan->empty);
		json_uint(json, "damaged", scan->damaged);
		json_uint(json, "rekey_in_progress", scan->rekey_in_progress);
		json_object_end(json);
	}
	json_array_end(json);
	json_array_begin(json, "unknown_keys");
	for (size_t k = 0; k < census->key_count; k++) {
		if (keyring_holds(ring, census->keys[k].key_id))
			continue;
		key_id_format(census->keys[k].key_id, id);
		json_object_begin(json, NULL);
		json_string(json, "key_id", id);
		json_uint(json, "files", census->keys[k].files);
		json_object_end(json);
	}
	json_array_end(json);
	json_uint(json, "damaged", census->damaged);
}

static void print_usage_text(const struct options *options, const struct keyring *ring,
			     const struct key_census *census)
{
	char id[KEY_ID_TEXT_SIZE];

	for (size_t d = 0; d < census->directories; d++) {
		const struct backing_scan *scan = &census->dirs[d].scan;

		printf("backing %s: %llu files, %llu without a header yet, %llu damaged, %llu in a "
		       "data rekey\n",
		       census->dirs[d].path, (unsigned long long)scan->files,
		       (unsigned long long)scan->empty, (unsigned long long)scan->damaged,
		       (unsigned long long)scan->rekey_in_progress);
	}
	for (size_t k = 0; k < census->key_count; k++) {
		if (keyring_holds(ring, census->keys[k].key_id))
			continue;
		key_id_format(census->keys[k].key_id, id);
		printf("warning: key %s is not in this wallet, yet %llu file header%s it: "
		       "those files cannot be opened (restore the key from a wallet backup)\n",
		       id, (unsigned long long)census->keys[k].files,
		       census->keys[k].files == 1 ? " references" : "s reference");
	}
	if (census->damaged)
		printf("warning: %llu file header%s damaged and count%s under no key; 'tdefs "
		       "--check --wallet %s BACKING' names %s\n",
		       (unsigned long long)census->damaged, census->damaged == 1 ? " is" : "s are",
		       census->damaged == 1 ? "s" : "", options->wallet,
		       census->damaged == 1 ? "it" : "them");
}

static int run(const struct options *options)
{
	struct wallet_session *session;
	char wallet_id_text[KEY_ID_TEXT_SIZE];
	uint8_t wallet_id[KEY_ID_SIZE];
	struct key_census census;
	const struct key_census *usage = NULL;
	struct keyring *ring;
	const char *only = NULL;
	struct json json;
	size_t count;
	int ret;

	/* The keys on a key server (kmip.c). */
	if (kmip_wallet_in(options->wallet))
		return kmip_keys(options);
	ret = open_session(options, WALLET_FOR_READING, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	ret = containers_selected(options, ring, true, &only, 1, &count);
	if (ret)
		goto out_close;
	if (!options->container_given || container_is_all(options))
		only = NULL; /* every key, as before containers */
	if (options->backing_count) {
		ret = census_take(options, ring, &census);
		if (ret)
			goto out_free;
		usage = &census;
	}
	keyring_wallet_id(ring, wallet_id);
	key_id_format(wallet_id, wallet_id_text);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "wallet", wallet_session_path(session));
		json_string(&json, "type", wallet_kind_name(wallet_session_kind(session)));
		json_string(&json, "wallet_id", wallet_id_text);
		json_string(&json, "container", keyring_container(ring));
		json_string(&json, "keystore_mode", keystore_mode_name(ring));
		json_uint(&json, "generation", keyring_generation(ring));
		print_keys_json(&json, ring, usage, only);
		if (usage)
			print_usage_json(&json, ring, usage);
		json_end(&json);
	} else {
		printf("wallet %s (%s), wallet ID %s, container %s, keystore mode %s\n",
		       wallet_session_path(session), wallet_kind_name(wallet_session_kind(session)),
		       wallet_id_text, keyring_container(ring), keystore_mode_name(ring));
		if (keyring_count(ring) == 0)
			printf("no master keys; make one with: tdekey set-key --wallet %s\n",
			       options->wallet);
		else if (print_keys_table(ring, usage, only, stdout) < 0)
			ret = report_failure(-ENOMEM, "out of memory");
		if (usage && ret == 0)
			print_usage_text(options, ring, usage);
	}
out_free:
	if (options->backing_count)
		census_free(&census);
out_close:
	wallet_session_close(session);
	return ret;
}

const struct command command_keys = {
	.name = "keys",
	.summary = "list the master keys (V$ENCRYPTION_KEYS)",
	.synopsis = "tdekey keys --wallet DIR [--container C|all] [--usage BACKING ...]\n"
		    "                   [--password-file FILE | --password-fd N |\n"
		    "                    --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Lists every master key in the wallet, historical ones included, in the\n"
		"       order they were created, with the columns of Oracle's V$ENCRYPTION_KEYS:\n"
		"\n"
		"       KEY_ID           32 hexadecimal digits; commands accept any unique prefix\n"
		"       TAG              the label given with --tag or set-tag ('-' for none)\n"
		"       CONTAINER        the key set the key belongs to\n"
		"       CREATION_TIME    when the key was generated (UTC)\n"
		"       ACTIVATION_TIME  when it last became the active key ('-' for never)\n"
		"       STATE            ACTIVE (wraps new files), RETIRED (was active, still\n"
		"                        unwraps files made under it) or PREACTIVE (made by\n"
		"                        create-key, not yet used)\n"
		"       ORIGIN           LOCAL (made in this wallet: generated, or brought with\n"
		"                        --key-file) or IMPORTED (tdekey import or merge)\n"
		"       CREATOR          user@host of the tdekey run that made the key (the real\n"
		"                        user, not SUDO_USER); an imported or merged key keeps\n"
		"                        its source's. '-' for a key made before wallets\n"
		"                        recorded it (format version 1)\n"
		"       BACKED_UP        YES when a backup taken after its creation holds it\n"
		"       KEYSTORE_TYPE    SOFTWARE: the key is held in a wallet file; HSM: on a token\n"
		"\n"
		"       The auto-login wallet is read when there is one, so no password is asked;\n"
		"       with a password source the password wallet is read instead.\n"
		"\n"
		"       With --usage the table gains a column:\n"
		"\n"
		"       FILES            how many file headers under the backing directories\n"
		"                        named reference the key (0: no file there needs it)\n"
		"\n"
		"       and is followed by one line per backing directory (files, files without a\n"
		"       header yet, damaged headers, files in the middle of a data rekey), a\n"
		"       warning for every key ID that headers reference but the wallet lacks (those\n"
		"       files cannot be opened: restore the key from a wallet backup), and a\n"
		"       warning when headers are damaged. The directories are read, never written,\n"
		"       and no header is unsealed; they may be mounted meanwhile. This is how to\n"
		"       see that 'tderekey rewrap' has left a retired key unused before\n"
		"       'tdekey delete-key'.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --container C|all\n"
		"              United mode: only the keys of container C (refused when the wallet\n"
		"              has none); all, or no --container, lists every container's keys.\n"
		"\n"
		"       --usage BACKING\n"
		"              Count the file headers under BACKING, a backing directory as given\n"
		"              to 'tdefs --init' (not the mount point), per master key. Give it\n"
		"              once per backing directory that uses the wallet; each must have\n"
		"              been initialised for this wallet (exit 14 otherwise). Subdirectories\n"
		"              are included; other file systems mounted below are not.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Read password.wallet with the password from there (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print wallet, type, wallet_id, container, keystore_mode, generation\n"
		"              and keys (each with key_id, tag, container, creation_time,\n"
		"              activation_time, state, origin, creator, backed_up; times in ISO\n"
		"              8601 UTC, null when unset; creator null when unknown) as JSON.\n"
		"              With --usage each key also has files, and the object gains backing\n"
		"              (path, files, empty, damaged, rekey_in_progress per directory),\n"
		"              unknown_keys (key_id and files of each key ID headers reference but\n"
		"              the wallet lacks) and damaged (the total).\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey keys --wallet /etc/tdefs/wallet\n"
		"       tdekey keys --wallet /etc/tdefs/wallet --json | jq -r '.keys[].key_id'\n"
		"       tdekey keys --wallet /etc/tdefs/wallet --usage /srv/pgdata.enc\n"
		"       tdekey keys --wallet /etc/tdefs/wallet --usage /srv/pgdata.enc --json |\n"
		"           jq -r '.keys[] | select(.files == 0 and .state == \"RETIRED\") | .key_id'\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
