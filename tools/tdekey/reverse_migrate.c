/*
 * tdekey reverse-migrate: move an HSM wallet's keys back to software, as Oracle's SET KEY ...
 * REVERSE MIGRATE does. A new software wallet (auto-login; add a password with
 * change-password) is made with the HSM wallet's ID and container and a new ACTIVE key; the
 * HSM wallet links it as active, so that a mount on the HSM wallet wraps new files under the
 * software key at once while the HSM keys keep opening the headers still under them. Once
 * 'tderekey rewrap' has moved every header, the backing directory mounts with the software
 * wallet alone. Nothing is deleted; the HSM wallet is backed up before it changes.
 *
 * Order: the new software wallet (complete, by rename), then the HSM wallet's backup, then
 * its new hsm.wallet. A crash between leaves an unused software wallet beside an unchanged
 * HSM wallet; a second run refuses the existing directory (remove it, or link it by hand).
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>

#include "util/util.h"

static int run(const struct options *options)
{
	struct wallet_create_options create = {
		.auto_login = true,
		.make_key = true,
		.cost = SCRYPT_DEFAULT_COST,
	};
	char error[KEYSTORE_ERROR_SIZE] = "", key_id[KEY_ID_TEXT_SIZE];
	struct wallet_create_result result;
	struct wallet_session *session;
	struct keyring *ring;
	uint8_t id[KEY_ID_SIZE];
	int ret;

	if (!options->to) {
		fprintf(stderr, "tdekey reverse-migrate: say where the keys go: --to DIR (a new "
				"software wallet)\nTry 'tdekey reverse-migrate --help'.\n");
		return EXIT_USAGE;
	}
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	if (wallet_session_kind(session) != WALLET_KIND_HSM) {
		wallet_session_close(session);
		fprintf(stderr, "tdekey reverse-migrate: %s is not an HSM wallet\n", options->wallet);
		return EXIT_USAGE;
	}
	keyring_wallet_id(ring, id);
	create.wallet_id = id;
	create.container = keyring_selected_container(ring);
	create.tag = options->tag;
	ret = wallet_create(options->to, &create, NULL, &result, error);
	if (ret == 0) {
		fault_point("reverse-migrate:software-wallet-made");
		ret = wallet_hsm_link(ring, options->to, true, error);
	}
	if (ret < 0) {
		wallet_session_close(session);
		return report_failure(ret, error);
	}
	ret = commit_session(options, session);
	wallet_session_close(session);
	if (ret)
		return ret;
	key_id_format(result.key_id, key_id);
	if (options->json) {
		struct json json;

		json_begin(&json, stdout);
		json_string(&json, "wallet", options->to);
		json_string(&json, "type", wallet_kind_name(result.primary));
		json_string(&json, "linked_from", options->wallet);
		json_string(&json, "active_key_id", key_id);
		json_end(&json);
	} else {
		printf("created %s wallet %s with the wallet ID of %s\n",
		       wallet_kind_name(result.primary), options->to, options->wallet);
		printf("new active master key %s (software); %s links it as active\n", key_id,
		       options->wallet);
		printf("next: 'tderekey rewrap MOUNTPOINT' on the mount of %s, then mount with "
		       "--wallet %s\n",
		       options->wallet, options->to);
	}
	return EXIT_OK;
}

const struct command command_reverse_migrate = {
	.name = "reverse-migrate",
	.summary = "move an HSM wallet's master keys back to a software wallet",
	.synopsis = "tdekey reverse-migrate --wallet HSMDIR --to DIR [--tag TAG]\n"
		    "                              [--pin-file FILE | --pin-fd N]\n"
		    "                              [--backup-id ID] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Makes DIR a new software wallet (auto-login; tdekey change-password adds\n"
		"       a password) with the wallet ID and container of the HSM wallet HSMDIR and\n"
		"       a new ACTIVE master key, and links it from HSMDIR as active: a mount on\n"
		"       HSMDIR wraps new files under the software key at once (it re-reads its\n"
		"       wallet) and keeps opening the headers under the HSM keys. After 'tderekey\n"
		"       rewrap' ('tdekey keys --usage' shows no header under an HSM key), the\n"
		"       backing directory mounts with --wallet DIR alone. Nothing is deleted;\n"
		"       HSMDIR/hsm.wallet is backed up before it changes.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet HSMDIR\n"
		"              The HSM wallet.\n"
		"\n"
		"       --to DIR\n"
		"              The new software wallet directory (made; it must hold no wallet).\n"
		"\n"
		"       --pin-file FILE, --pin-fd N\n"
		"              The token's PIN; by default it is asked on the terminal.\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
