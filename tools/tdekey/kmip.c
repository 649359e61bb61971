/*
 * tdekey on a KMIP wallet (keystore/kmip_wallet.h): the commands that create, rotate, list and
 * delete master keys, when the keys live on a key server. create takes --kmip-server and
 * --tls-wallet; set-key, keys and delete-key see kmip.wallet in the wallet directory and come
 * here instead of opening a wallet file (reverse-migrate, which copies the keys to a file
 * wallet, is in reverse_migrate.c). No password is asked: kmip.wallet holds no secret, and
 * the TLS wallet is opened by its auto-login file as the daemon opens it.
 *
 * keys lists from kmip.wallet without asking a server (and counts headers with --usage);
 * delete-key runs the same key census as for a file wallet before the wallet stops naming the
 * key and the server revokes and destroys it.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/kmip_wallet.h"

int kmip_failure(int ret, const char *error)
{
	/* The servers' failures come as keystore meanings with codes of their own (30, 31). */
	return report_failure(ret, error);
}

bool kmip_wallet_in(const char *wallet)
{
	return kmip_wallet_present(wallet);
}

int kmip_refuse_other(const struct command *command, const struct options *options)
{
	static const char *const served[] = { "set-key", "keys", "delete-key", "tls",
						     "reverse-migrate" };

	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		if (strcmp(command->name, served[i]) == 0)
			return EXIT_OK;
	if (strcmp(command->name, "create") == 0 &&
	    (options->kmip_server || options->tls_wallet || options->kmip_group))
		return EXIT_OK;
	if (!options->wallet || !kmip_wallet_present(options->wallet))
		return EXIT_OK;
	/* Not "no wallet here": a wallet file made beside kmip.wallet would split the keys. */
	fprintf(stderr,
		"tdekey %s: %s holds a KMIP wallet (%s): its keys are on the key server; set-key, "
		"keys, delete-key and reverse-migrate work on it\n",
		command->name, options->wallet, KMIP_WALLET_FILE);
	return EXIT_USAGE;
}

int kmip_create(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id[KEY_ID_TEXT_SIZE];
	uint8_t new_id[KEY_ID_SIZE];
	bool joined = false;
	int ret;

	if (!options->kmip_server || !options->tls_wallet) {
		fprintf(stderr, "tdekey create: --kmip-server and --tls-wallet go together\n"
				"Try 'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	if (options->auto_login || options->password_given || options->no_key ||
	    options->merge_from_count || options->group || options->key_file ||
	    options->key_fd >= 0) {
		fprintf(stderr, "tdekey create: a KMIP wallet takes no password, --auto-login, "
				"--no-key, --merge-from, --group or brought key: its keys are made on "
				"the server\nTry 'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	struct kmip_create_options create = {
		.servers = options->kmip_server,
		.tls_wallet = options->tls_wallet,
		.container = options->container ? options->container : WALLET_DEFAULT_CONTAINER,
		.group = options->kmip_group,
	};
	ret = kmip_keystore_create(options->wallet, &create, new_id, &joined, error);
	if (ret < 0)
		return kmip_failure(ret, error);
	key_id_format(new_id, id);
	if (options->json) {
		struct json json;
		json_begin(&json, stdout);
		json_string(&json, "wallet", options->wallet);
		json_string(&json, "type", "KMIP");
		json_string(&json, "key_id", id);
		if (options->kmip_group) {
			json_string(&json, "kmip_group", options->kmip_group);
			json_bool(&json, "joined", joined);
		}
		json_end(&json);
	} else if (joined) {
		printf("created KMIP wallet %s/%s of key group %s, joining its keys on the key "
		       "server; active key %s\n",
		       options->wallet, KMIP_WALLET_FILE, options->kmip_group, id);
	} else {
		printf("created KMIP wallet %s/%s; master key %s made and activated on the key "
		       "server\n",
		       options->wallet, KMIP_WALLET_FILE, id);
	}
	return EXIT_OK;
}

int kmip_set_key(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id[KEY_ID_TEXT_SIZE], backup[PATH_MAX];
	uint8_t new_id[KEY_ID_SIZE];
	int ret;

	if (options->key_file || options->key_fd >= 0 || options->key_id_given) {
		fprintf(stderr, "tdekey set-key: the keys of a KMIP wallet are made on the key "
				"server; a key cannot be brought\n");
		return EXIT_USAGE;
	}
	ret = kmip_keystore_rotate(options->wallet, new_id, backup, error);
	if (ret < 0)
		return kmip_failure(ret, error);
	key_id_format(new_id, id);
	if (options->json) {
		struct json json;
		json_begin(&json, stdout);
		json_string(&json, "key_id", id);
		json_string(&json, "backup", backup);
		json_end(&json);
	} else {
		printf("master key %s made and activated on the key server; backup %s\n", id,
		       backup);
	}
	return EXIT_OK;
}

int kmip_keys(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id[KEY_ID_TEXT_SIZE];
	struct kmip_wallet *w = malloc(sizeof(*w));
	struct keyring *ring = NULL;
	struct key_census census;
	struct json json;
	int ret;

	if (!w)
		return report_failure(-ENOMEM, "out of memory");
	memset(&census, 0, sizeof(census));
	ret = kmip_keystore_listing(options->wallet, w, &ring, error);
	if (ret < 0) {
		ret = kmip_failure(ret, error);
		goto out;
	}
	if (options->backing_count) {
		ret = census_take(options, ring, &census);
		if (ret)
			goto out;
	}
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "wallet_type", "KMIP");
		json_string(&json, "kmip_group", w->group[0] ? w->group : NULL);
		json_array_begin(&json, "keys");
	} else {
		printf("%-32s  %-9s  %-20s  %s%s\n", "KEY_ID", "STATE", "CREATED", "KMIP_OBJECT",
		       options->backing_count ? "  FILES" : "");
	}
	for (size_t i = 0; i < w->key_count; i++) {
		const struct kmip_wallet_key *k = &w->keys[i];
		char created[32];
		struct tm tm;
		time_t when = (time_t)k->creation_time;

		key_id_format(k->id, id);
		gmtime_r(&when, &tm);
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (options->json) {
			json_object_begin(&json, NULL);
			json_string(&json, "key_id", id);
			json_string(&json, "state", mek_state_name(k->state));
			json_time(&json, "creation_time", k->creation_time);
			json_time(&json, "activation_time", k->activation_time);
			json_string(&json, "kmip_unique_identifier", k->unique_id);
			json_string(&json, "kmip_name", k->name);
			json_string(&json, "origin", mek_origin_name(MEK_ORIGIN_KMIP));
			if (k->server_state)
				json_string(&json, "kmip_state", kmip_state_name(k->server_state));
			if (options->backing_count)
				json_uint(&json, "files", census_files_for(&census, k->id));
			json_object_end(&json);
		} else if (options->backing_count) {
			printf("%-32s  %-9s  %-20s  %s  %llu\n", id, mek_state_name(k->state),
			       created, k->unique_id,
			       (unsigned long long)census_files_for(&census, k->id));
		} else {
			printf("%-32s  %-9s  %-20s  %s\n", id, mek_state_name(k->state), created,
			       k->unique_id);
		}
	}
	/* The keys of the wallet it links (a migration's source): in the file, not on a server. */
	for (size_t i = 0; i < keyring_count(ring); i++) {
		const struct mek_record *r = keyring_record(ring, i);
		char created[32];
		struct tm tm;
		time_t when = (time_t)r->creation_time;

		if (!r->linked)
			continue;
		key_id_format(r->id, id);
		gmtime_r(&when, &tm);
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (options->json) {
			json_object_begin(&json, NULL);
			json_string(&json, "key_id", id);
			json_string(&json, "state", mek_state_name(r->state));
			json_time(&json, "creation_time", r->creation_time);
			json_string(&json, "linked_wallet", w->link);
			json_string(&json, "origin", mek_origin_name(r->origin));
			if (options->backing_count)
				json_uint(&json, "files", census_files_for(&census, r->id));
			json_object_end(&json);
		} else if (options->backing_count) {
			printf("%-32s  %-9s  %-20s  %s  %llu\n", id, mek_state_name(r->state), created,
			       "linked", (unsigned long long)census_files_for(&census, r->id));
		} else {
			printf("%-32s  %-9s  %-20s  %s\n", id, mek_state_name(r->state), created,
			       "linked");
		}
	}
	if (options->json) {
		json_array_end(&json);
		json_end(&json);
	}
	ret = EXIT_OK;
out:
	census_free(&census);
	keyring_free(ring);
	free(w);
	return ret;
}

int kmip_delete_key(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id[KEY_ID_TEXT_SIZE], backup[PATH_MAX];
	struct kmip_wallet *w = malloc(sizeof(*w));
	struct keyring *ring = NULL;
	struct key_census census;
	uint8_t key_id[KEY_ID_SIZE];
	size_t index;
	uint64_t files;
	int ret;

	if (!w)
		return report_failure(-ENOMEM, "out of memory");
	memset(&census, 0, sizeof(census));
	ret = kmip_keystore_listing(options->wallet, w, &ring, error);
	if (ret < 0) {
		ret = kmip_failure(ret, error);
		goto out;
	}
	ret = find_key_argument(options, ring, &index);
	if (ret)
		goto out;
	memcpy(key_id, keyring_record(ring, index)->id, KEY_ID_SIZE);
	key_id_format(key_id, id);
	if (keyring_record(ring, index)->state == MEK_STATE_ACTIVE) {
		fprintf(stderr, "tdekey: key %s is the ACTIVE key: rotate with tdekey set-key, "
				"rewrap with 'tderekey rewrap MOUNTPOINT', then delete it\n", id);
		ret = EXIT_KEY_IN_USE;
		goto out;
	}
	/* The census before anything changes on the server: the key goes only when unused. */
	ret = census_take(options, ring, &census);
	if (ret)
		goto out;
	files = census_files_for(&census, key_id);
	if (files) {
		fprintf(stderr, "tdekey: key %s is still used by %llu file header%s; rewrap them "
				"with 'tderekey rewrap MOUNTPOINT', then delete again\n",
			id, (unsigned long long)files, files == 1 ? "" : "s");
		ret = EXIT_KEY_IN_USE;
		goto out;
	}
	if (census.damaged) {
		fprintf(stderr, "tdekey: cannot prove that key %s is unused: %llu file header%s "
				"cannot be read and might reference it\n",
			id, (unsigned long long)census.damaged, census.damaged == 1 ? "" : "s");
		ret = EXIT_BACKING;
		goto out;
	}
	ret = kmip_keystore_delete(options->wallet, key_id, backup, error);
	if (ret < 0) {
		ret = kmip_failure(ret, error);
		goto out;
	}
	printf("master key %s deleted: no file header under %zu backing director%s references "
	       "it; revoked and destroyed on the key server; backup %s\n",
	       id, census.directories, census.directories == 1 ? "y" : "ies", backup);
	ret = EXIT_OK;
out:
	census_free(&census);
	keyring_free(ring);
	free(w);
	return ret;
}
