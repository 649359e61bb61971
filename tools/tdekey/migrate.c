/*
 * tdekey migrate: move a wallet's master keys to an HSM, as Oracle's SET KEY ... MIGRATE USING
 * does. The target is a new HSM wallet directory with the source's wallet ID and container
 * (so the source's backing directories mount with it) and a new ACTIVE key generated on the
 * token; it links the source, whose keys stay usable for the headers still wrapped under them
 * until 'tderekey rewrap' has moved every one ('tdekey keys --usage' shows it). Nothing is
 * deleted: the source is only backed up, and 'tdekey unlink' drops the link once no header
 * needs it. The source may be a software wallet or another HSM wallet (HSM to HSM); it must
 * open without a person (auto-login, or its external store), as the daemon will open it.
 *
 * The order is crash-safe: the source's backup, then the key on the token (an unused object
 * if a crash follows), then the new hsm.wallet, written whole by rename. A second run after a
 * crash finds either no target or a complete one.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keystore/kmip_wallet.h"
#include "util/util.h"

/* The source's keys, backed up, before anything is made from them. */
static int back_up_source(const struct options *options, struct keyring **ring_out,
			  char backup[PATH_MAX])
{
	static const struct password_source store = { .kind = PASSWORD_SOURCE_EXTERNAL_STORE,
						      .explicit = true };
	const struct password_source *source = NULL;
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct keyring *ring = NULL;
	struct wallet_session *session = NULL;
	struct wallet_paths paths;
	int ret;

	/* What the daemon will do with the link: open it without a person. */
	ret = keystore_open_for_mount(options->wallet, -1, &ring, error);
	if (ret < 0) {
		fprintf(stderr, "tdekey migrate: wallet %s does not open without a person, so the "
				"HSM wallet could not use its keys: %s\n",
			options->wallet, error);
		return exit_code_for(ret);
	}
	*ring_out = ring;
	/* The backup is a change of the source: its external store opens it, if it has one. */
	if (wallet_paths_init(options->wallet, &paths) == 0 &&
	    access(paths.external_store, F_OK) == 0)
		source = &store;
	ret = wallet_session_open(options->wallet, WALLET_FOR_CHANGE, source, &session, error);
	if (ret == 0)
		ret = wallet_session_backup(session, options->backup_id ? options->backup_id
									: "migrate",
					    NULL, error);
	if (ret == 0)
		snprintf(backup, PATH_MAX, "%s", wallet_session_backup_path(session));
	wallet_session_close(session);
	if (ret < 0)
		return report_failure(ret, error);
	fault_point("migrate:source-backed-up");
	return EXIT_OK;
}

static int to_hsm(const struct options *options)
{
	struct wallet_create_options create = { .make_key = true };
	char error[KEYSTORE_ERROR_SIZE] = "", backup[PATH_MAX] = "", prompt[128];
	char wallet_id[KEY_ID_TEXT_SIZE], key_id[KEY_ID_TEXT_SIZE];
	struct wallet_create_result result;
	struct keyring *source = NULL;
	struct secret *pin = NULL;
	uint8_t id[KEY_ID_SIZE];
	int ret;

	if (!options->hsm_module || !options->token_label) {
		fprintf(stderr, "tdekey migrate: --to-hsm needs --hsm-module MODULE and "
				"--token-label LABEL, the token the new key is made on\n"
				"Try 'tdekey migrate --help'.\n");
		return EXIT_USAGE;
	}
	ret = back_up_source(options, &source, backup);
	if (ret)
		return ret;
	keyring_wallet_id(source, id);
	create.wallet_id = id;
	create.container = keyring_selected_container(source);
	create.link = options->wallet;
	create.tag = options->tag;
	snprintf(prompt, sizeof(prompt), "PIN for HSM token '%.40s': ", options->token_label);
	ret = password_read(&options->password, prompt, false, &pin, error);
	if (ret == 0)
		ret = wallet_create_hsm(options->to, &create, options->hsm_module,
					options->token_label, options->token_serial, pin, &result,
					error);
	secret_free(pin);
	keyring_free(source);
	if (ret < 0)
		return report_failure(ret, error);
	key_id_format(result.wallet_id, wallet_id);
	key_id_format(result.key_id, key_id);
	if (options->json) {
		struct json json;

		json_begin(&json, stdout);
		json_string(&json, "wallet", options->to);
		json_string(&json, "type", "HSM");
		json_string(&json, "wallet_id", wallet_id);
		json_string(&json, "linked", options->wallet);
		json_string(&json, "active_key_id", key_id);
		json_string(&json, "source_backup", backup[0] ? backup : NULL);
		json_end(&json);
	} else {
		printf("created HSM wallet %s/%s, wallet ID %s\n", options->to, WALLET_HSM_FILE,
		       wallet_id);
		printf("new active master key %s on HSM token '%s'\n", key_id, options->token_label);
		printf("the keys of %s stay usable through it (linked); backup %s\n",
		       options->wallet, backup);
		printf("next: mount with --wallet %s, 'tderekey rewrap MOUNTPOINT', then 'tdekey "
		       "unlink --wallet %s --backing BACKING %s'\n",
		       options->to, options->to, options->wallet);
	}
	snprintf(committed_summary, sizeof(committed_summary), "migrated to HSM wallet %.100s, "
		 "active key %s", options->to, key_id);
	return EXIT_OK;
}

/*
 * To a key server: a new KMIP wallet with the source's wallet ID and container, its first key
 * made and activated on the server, linking the source (kmip.wallet's link line). The same
 * order: the source's backup, the key on the server (revoked and destroyed again when
 * kmip.wallet cannot be written), then kmip.wallet written whole by rename.
 */
static int to_kmip(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", backup[PATH_MAX] = "", source_dir[PATH_MAX];
	char wallet_id[KEY_ID_TEXT_SIZE], key_id[KEY_ID_TEXT_SIZE];
	struct keyring *source = NULL;
	uint8_t id[KEY_ID_SIZE], new_id[KEY_ID_SIZE];
	bool joined = false;
	int ret;

	if (!options->kmip_server || !options->tls_wallet) {
		fprintf(stderr, "tdekey migrate: --to-kmip needs --kmip-server LIST and "
				"--tls-wallet DIR, the servers the new key is made on\n"
				"Try 'tdekey migrate --help'.\n");
		return EXIT_USAGE;
	}
	if (options->hsm_module || options->token_label) {
		fprintf(stderr, "tdekey migrate: --to-kmip takes no --hsm-module or --token-label\n"
				"Try 'tdekey migrate --help'.\n");
		return EXIT_USAGE;
	}
	/* The link is read by the daemon from anywhere: an absolute path. */
	if (!realpath(options->wallet, source_dir)) {
		fprintf(stderr, "tdekey migrate: wallet %s: %s\n", options->wallet,
			strerror(errno));
		return EXIT_NO_WALLET;
	}
	ret = back_up_source(options, &source, backup);
	if (ret)
		return ret;
	keyring_wallet_id(source, id);
	struct kmip_create_options create = {
		.servers = options->kmip_server,
		.tls_wallet = options->tls_wallet,
		.container = keyring_selected_container(source),
		.wallet_id = id,
		.link = source_dir,
	};
	ret = kmip_keystore_create(options->to, &create, new_id, &joined, error);
	keyring_free(source);
	if (ret < 0)
		return kmip_failure(ret, error);
	key_id_format(id, wallet_id);
	key_id_format(new_id, key_id);
	if (options->json) {
		struct json json;

		json_begin(&json, stdout);
		json_string(&json, "wallet", options->to);
		json_string(&json, "type", "KMIP");
		json_string(&json, "wallet_id", wallet_id);
		json_string(&json, "linked", source_dir);
		json_string(&json, "active_key_id", key_id);
		json_string(&json, "source_backup", backup[0] ? backup : NULL);
		json_end(&json);
	} else {
		printf("created KMIP wallet %s/%s, wallet ID %s\n", options->to, KMIP_WALLET_FILE,
		       wallet_id);
		printf("new active master key %s made on the key server\n", key_id);
		printf("the keys of %s stay usable through it (linked); backup %s\n", source_dir,
		       backup);
		printf("next: mount with --wallet %s, 'tderekey rewrap MOUNTPOINT', then 'tdekey "
		       "keys --wallet %s --usage BACKING' shows the linked keys unused\n",
		       options->to, options->to);
	}
	snprintf(committed_summary, sizeof(committed_summary), "migrated to KMIP wallet %.100s, "
		 "active key %s", options->to, key_id);
	return EXIT_OK;
}

static int run(const struct options *options)
{
	if (!options->to) {
		fprintf(stderr, "tdekey migrate: say where the keys go: --to-hsm DIR or --to-kmip "
				"DIR\nTry 'tdekey migrate --help'.\n");
		return EXIT_USAGE;
	}
	if (options->to_kmip)
		return to_kmip(options);
	if (options->kmip_server || options->tls_wallet) {
		fprintf(stderr, "tdekey migrate: --kmip-server and --tls-wallet go with --to-kmip\n"
				"Try 'tdekey migrate --help'.\n");
		return EXIT_USAGE;
	}
	return to_hsm(options);
}

const struct command command_migrate = {
	.name = "migrate",
	.summary = "move the master keys to an HSM or a key server (a new wallet linking this one)",
	.synopsis = "tdekey migrate --wallet DIR --to-hsm HSMDIR --hsm-module MODULE\n"
		    "                      --token-label LABEL [--token-serial SERIAL]\n"
		    "                      [--pin-file FILE | --pin-fd N] [--tag TAG]\n"
		    "                      [--backup-id ID] [--json]\n"
		    "       tdekey migrate --wallet DIR --to-kmip KMIPDIR --kmip-server LIST\n"
		    "                      --tls-wallet TLS_DIR [--backup-id ID] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Makes HSMDIR a new HSM wallet with the wallet ID and container of DIR and\n"
		"       a new ACTIVE master key generated on the token (AES-256, sensitive, not\n"
		"       extractable). HSMDIR/hsm.wallet links DIR: DIR's keys stay usable for\n"
		"       every header still wrapped under them, so DIR's backing directories mount\n"
		"       with --wallet HSMDIR at once. 'tderekey rewrap' then moves the headers to\n"
		"       the HSM key ('tdekey keys --usage' counts them), and 'tdekey unlink' drops\n"
		"       the link once no header uses DIR's keys.\n"
		"\n"
		"       Nothing is deleted: DIR is backed up first (its backup directory) and is\n"
		"       otherwise left as it is. DIR may be a software wallet or another HSM wallet\n"
		"       (HSM to HSM); it must open without a person (an auto-login wallet, or its\n"
		"       external store: tdekey add-secret), as the daemon will open it.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet whose keys move.\n"
		"\n"
		"       --to-hsm HSMDIR\n"
		"              The new HSM wallet directory (made; it must hold no wallet).\n"
		"\n"
		"       --hsm-module MODULE, --token-label LABEL, --token-serial SERIAL\n"
		"              The PKCS#11 module and the token, as for 'tdekey create'.\n"
		"\n"
		"       --pin-file FILE, --pin-fd N\n"
		"              The token's PIN; by default it is asked on the terminal.\n"
		"\n"
		"       --tag TAG\n"
		"              A tag for the new key.\n"
		"\n"
		"       --to-kmip KMIPDIR, --kmip-server LIST, --tls-wallet TLS_DIR\n"
		"              To a key server instead: KMIPDIR becomes a KMIP wallet (as 'tdekey\n"
		"              create --kmip-server') with DIR's wallet ID, its new ACTIVE key made\n"
		"              on the server, and kmip.wallet's link line naming DIR.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey migrate --wallet /etc/tdefs/wallet --to-hsm /etc/tdefs/hsm \\\n"
		"           --hsm-module /usr/lib/softhsm/libsofthsm2.so --token-label tde \\\n"
		"           --pin-file /etc/tdefs/pin\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
