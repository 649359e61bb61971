/*
 * tdekey export: write chosen master keys to a key export file sealed under a transport secret,
 * like ADMINISTER KEY MANAGEMENT EXPORT ENCRYPTION KEYS WITH SECRET. The selection is by key ID,
 * by container, every key, or (--used-by) exactly the key IDs that the file headers under some
 * backing directories reference: the keys a copy of those files needs on another wallet, taken
 * from the same census as 'keys --usage' (both header copies of every file).
 *
 * The file format is keystore/key_export.h; this file only chooses the keys and reports.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/key_export.h"

struct selection {
	struct mek_record *records; /* secure memory */
	size_t count;
};

static int add_index(const struct keyring *ring, size_t index, struct selection *selection)
{
	const struct mek_record *record = keyring_record(ring, index);

	for (size_t i = 0; i < selection->count; i++)
		if (memcmp(selection->records[i].id, record->id, KEY_ID_SIZE) == 0)
			return 0; /* named twice */
	selection->records[selection->count++] = *record;
	return 0;
}

static int select_by_key(const struct options *options, const struct keyring *ring,
			 struct selection *selection)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	size_t index;
	int ret;

	for (size_t i = 0; i < options->key_count; i++) {
		ret = keyring_find_prefix(ring, options->keys[i], &index, error);
		if (ret < 0) {
			fprintf(stderr, "tdekey: --key %s: %s\n", options->keys[i], error);
			return ret == -EINVAL ? EXIT_USAGE : exit_code_for(ret);
		}
		add_index(ring, index, selection);
	}
	return EXIT_OK;
}

static int select_by_usage(const struct options *options, const struct keyring *ring,
			   struct selection *selection)
{
	char id[KEY_ID_TEXT_SIZE];
	struct key_census census;
	int ret;

	ret = census_take(options, ring, &census);
	if (ret)
		goto out;
	if (census.damaged) {
		fprintf(stderr,
			"tdekey: %llu file headers under the --used-by directories cannot be read, "
			"so the keys they need are unknown; nothing was exported\n",
			(unsigned long long)census.damaged);
		ret = EXIT_BACKING;
		goto out;
	}
	for (size_t k = 0; k < census.key_count; k++) {
		const uint8_t *key_id = census.keys[k].key_id;

		if (!keyring_find(ring, key_id)) {
			key_id_format(key_id, id);
			fprintf(stderr,
				"tdekey: %llu file headers reference key %s, which the wallet %s "
				"lacks; nothing was exported\n",
				(unsigned long long)census.keys[k].files, id, options->wallet);
			ret = EXIT_NO_SUCH_KEY;
			goto out;
		}
		for (size_t i = 0; i < keyring_count(ring); i++)
			if (memcmp(keyring_record(ring, i)->id, key_id, KEY_ID_SIZE) == 0)
				add_index(ring, i, selection);
	}
	if (selection->count == 0) {
		fprintf(stderr, "tdekey: no file header under the --used-by directories references "
				"a key; nothing to export\n");
		ret = EXIT_NO_SUCH_KEY;
	}
out:
	census_free(&census);
	return ret;
}

static int select_keys(const struct options *options, const struct keyring *ring,
		       struct selection *selection)
{
	if (options->key_count)
		return select_by_key(options, ring, selection);
	if (options->used_by)
		return select_by_usage(options, ring, selection);
	for (size_t i = 0; i < keyring_count(ring); i++) {
		const struct mek_record *record = keyring_record(ring, i);

		if (options->all || strcmp(record->container, options->container) == 0)
			add_index(ring, i, selection);
	}
	if (selection->count == 0) {
		fprintf(stderr, "tdekey: wallet %s has no keys%s%s; nothing to export\n",
			options->wallet, options->all ? "" : " in container ",
			options->all ? "" : options->container);
		return EXIT_NO_SUCH_KEY;
	}
	return EXIT_OK;
}

static void print_result(const struct options *options, const struct keyring *ring,
			 const struct selection *selection)
{
	uint8_t wallet_id[KEY_ID_SIZE];
	char text[KEY_ID_TEXT_SIZE];
	struct json json;

	keyring_wallet_id(ring, wallet_id);
	key_id_format(wallet_id, text);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "file", options->to);
		json_string(&json, "wallet_id", text);
		json_array_begin(&json, "keys");
		for (size_t i = 0; i < selection->count; i++) {
			key_id_format(selection->records[i].id, text);
			json_string(&json, NULL, text);
		}
		json_array_end(&json);
		json_end(&json);
		return;
	}
	printf("exported %zu master key%s of wallet %s (wallet ID %s) to %s\n", selection->count,
	       selection->count == 1 ? "" : "s", options->wallet, text, options->to);
	for (size_t i = 0; i < selection->count; i++) {
		key_id_format(selection->records[i].id, text);
		printf("key %s\n", text);
	}
}

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct selection selection = { 0 };
	struct wallet_session *session;
	struct secret *secret = NULL;
	uint8_t wallet_id[KEY_ID_SIZE];
	struct keyring *ring;
	int selectors, ret;

	selectors = (options->key_count > 0) + options->container_given + options->all +
		    options->used_by;
	if (selectors != 1) {
		fprintf(stderr, "tdekey export: choose the keys with one of --key ID..., --container "
				"C, --all or --used-by BACKING...\nTry 'tdekey export --help'.\n");
		return EXIT_USAGE;
	}
	if (!options->to) {
		fprintf(stderr, "tdekey export: --to FILE is required\nTry 'tdekey export --help'.\n");
		return EXIT_USAGE;
	}
	ret = open_session(options, WALLET_FOR_READING, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	selection.records = secure_alloc((keyring_count(ring) + 1) * sizeof(*selection.records));
	if (!selection.records) {
		ret = report_failure(-ENOMEM, "out of memory");
		goto out;
	}
	ret = select_keys(options, ring, &selection);
	if (ret)
		goto out;
	ret = transport_secret_read(&options->secret, "--secret-file",
				    "Transport secret for the export: ", true,
				    KEY_EXPORT_MIN_SECRET, &secret, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	keyring_wallet_id(ring, wallet_id);
	ret = key_export_write(options->to, wallet_id, selection.records, selection.count, secret,
			       &options->cost, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	print_result(options, ring, &selection);
	ret = EXIT_OK;
out:
	secret_free(secret);
	secure_free(selection.records);
	wallet_session_close(session);
	return ret;
}

const struct command command_export = {
	.name = "export",
	.summary = "write master keys to a key export file sealed under a transport secret",
	.synopsis = "tdekey export --wallet DIR --to FILE\n"
		    "                     (--key ID... | --container C | --all | --used-by BACKING...)\n"
		    "                     [--secret-file FILE | --secret-fd N | --secret-prompt]\n"
		    "                     [--scrypt-cost LOG2N[,R[,P]]] [--password-file FILE |\n"
		    "                      --password-fd N | --password-prompt | --external-store]\n"
		    "                     [--json]",
	.description =
		"DESCRIPTION\n"
		"       Writes the chosen master keys, with their metadata (state, times, tag,\n"
		"       container) and a key check value each, to FILE, sealed with AES-256-GCM\n"
		"       under scrypt of a transport secret, like Oracle's ADMINISTER KEY MANAGEMENT\n"
		"       EXPORT ENCRYPTION KEYS WITH SECRET. The file names the source wallet's ID.\n"
		"       It is not a wallet: nothing mounts it; 'tdekey import' reads it. FILE must\n"
		"       not exist; it is written crash-safe with mode 0600. The wallet itself is\n"
		"       not changed.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory the keys come from.\n"
		"\n"
		"       --to FILE\n"
		"              The key export file to write.\n"
		"\n"
		"       --key ID (repeatable)\n"
		"              The key with this ID (any unique prefix).\n"
		"\n"
		"       --container C\n"
		"              Every key of container C.\n"
		"\n"
		"       --all\n"
		"              Every key of the wallet.\n"
		"\n"
		"       --used-by BACKING (repeatable)\n"
		"              Exactly the keys the file headers under the backing directory\n"
		"              BACKING reference (both header copies of every file), as 'tdekey keys\n"
		"              --usage' counts them. Refused when a header cannot be read or names a\n"
		"              key the wallet lacks.\n"
		"\n"
		"       --secret-file FILE, --secret-fd N, --secret-prompt\n"
		"              Where the transport secret (at least 8 characters) comes from: the\n"
		"              first line of FILE or of descriptor N, or the terminal (asked twice;\n"
		"              the default). FILE, or a regular file behind N, must belong to root\n"
		"              or to you, be writable by no one else and readable by its owner\n"
		"              alone.\n"
		"\n"
		"       --scrypt-cost LOG2N[,R[,P]]\n"
		"              scrypt cost of the transport key (default 16,8,1).\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES); without one\n"
		"              the auto-login wallet is read when there is one.\n"
		"\n"
		"       --json\n"
		"              Print file, wallet_id and keys as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey export --wallet /etc/tdefs/wallet --used-by /srv/clone.enc \\\n"
		"              --to /tmp/clone.keys --secret-file /root/transport.secret\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
