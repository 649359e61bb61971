/*
 * tdekey unlink: drop a link of an HSM wallet (a migration's source) once no file header
 * needs the linked wallet's keys, with the same proof as delete-key: every header under the
 * backing directories named is read, and a header under a key only the linked wallet holds
 * refuses the unlink. The linked wallet itself is left as it is (nothing is deleted); the HSM
 * wallet is backed up before it changes.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>

/* Whether the key is held by the ring apart from the wallet being unlinked. */
static bool held_elsewhere(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE])
{
	for (size_t i = 0; i < keyring_count(ring); i++) {
		const struct mek_record *record = keyring_record(ring, i);

		if (memcmp(record->id, id, KEY_ID_SIZE) == 0)
			return !record->linked;
	}
	return false;
}

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id_text[KEY_ID_TEXT_SIZE];
	const char *path = options->argv[0];
	struct wallet_session *session;
	struct keyring *ring, *linked = NULL;
	struct key_census census;
	int ret;

	if (!options->backing_count) {
		fprintf(stderr, "tdekey unlink: name every backing directory that uses the wallet "
				"(--backing BACKING): the headers under them prove the link unused\n"
				"Try 'tdekey unlink --help'.\n");
		return EXIT_USAGE;
	}
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	/* The linked wallet's keys, from itself: which of them headers still use. */
	ret = keystore_open_for_mount(path, -1, &linked, error);
	if (ret < 0) {
		wallet_session_close(session);
		return report_failure(ret, error);
	}
	ret = census_take(options, ring, &census);
	if (ret) {
		keyring_free(linked);
		wallet_session_close(session);
		return ret;
	}
	if (census.damaged) {
		fprintf(stderr, "tdekey unlink: %llu file headers cannot be read, so which keys "
				"they need is unknown; the link stays\n",
			(unsigned long long)census.damaged);
		ret = EXIT_BACKING;
	}
	for (size_t k = 0; k < census.key_count && !ret; k++) {
		const uint8_t *key_id = census.keys[k].key_id;

		if (!keyring_holds(linked, key_id) || held_elsewhere(ring, key_id))
			continue;
		key_id_format(key_id, id_text);
		fprintf(stderr, "tdekey unlink: %llu file headers are still under key %s of %s; "
				"rewrap them ('tderekey rewrap MOUNTPOINT') first; the link stays\n",
			(unsigned long long)census.keys[k].files, id_text, path);
		ret = EXIT_KEY_IN_USE;
	}
	census_free(&census);
	keyring_free(linked);
	if (!ret) {
		ret = wallet_hsm_unlink(ring, path, error);
		ret = ret < 0 ? report_failure(ret, error) : commit_session(options, session);
	}
	wallet_session_close(session);
	if (ret)
		return ret;
	printf("unlinked %s from %s: no header under the backing directories named uses its "
	       "keys; %s itself is unchanged\n",
	       path, options->wallet, path);
	return EXIT_OK;
}

const struct command command_unlink = {
	.name = "unlink",
	.summary = "drop an HSM wallet's link to a migration's source once no header needs it",
	.synopsis = "tdekey unlink --wallet HSMDIR --backing BACKING ... LINKED\n"
		    "                     [--pin-file FILE | --pin-fd N] [--backup-id ID]",
	.description =
		"DESCRIPTION\n"
		"       Removes the link from the HSM wallet HSMDIR to the wallet directory\n"
		"       LINKED (made by 'tdekey migrate'), after reading every header under each\n"
		"       --backing BACKING: a header under a key that only LINKED holds refuses it\n"
		"       (exit 13; rewrap first), as does a header that cannot be read (exit 14).\n"
		"       LINKED itself is not changed; HSMDIR/hsm.wallet is backed up first.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet HSMDIR\n"
		"              The HSM wallet.\n"
		"\n"
		"       --backing BACKING\n"
		"              A backing directory whose headers prove the link unused\n"
		"              (repeatable; name every one that uses the wallet).\n"
		"\n"
		"       --pin-file FILE, --pin-fd N\n"
		"              The token's PIN; by default it is asked on the terminal.\n"
		"\n",
	.min_arguments = 1,
	.max_arguments = 1,
	.run = run,
};
