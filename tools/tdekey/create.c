/*
 * tdekey create: a new wallet directory with its first master key, like ADMINISTER KEY
 * MANAGEMENT CREATE KEYSTORE followed by SET KEY, in one step so a new wallet is usable at once.
 *
 * With --auto-login and no password source the wallet is auto-login only: no prompt, no
 * password, one command. That is what test rigs and unattended hosts need; a password wallet can
 * be added to it later with change-password.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>

#include "keystore/key_export.h"
#include "util/util.h"

/* The keys of every --merge-from wallet, each ID once, gathered before anything is created. */
struct merged_keys {
	struct mek_record *records; /* secure memory */
	size_t count;
	struct key_import_summary summary;
};

static int gather(const struct options *options, struct merged_keys *merged)
{
	char a[KEY_ID_TEXT_SIZE];

	merged->records = secure_alloc((WALLET_MAX_KEYS + 1) * sizeof(*merged->records));
	if (!merged->records)
		return report_failure(-ENOMEM, "out of memory");
	for (size_t w = 0; w < options->merge_from_count; w++) {
		struct wallet_session *from = NULL;
		const struct keyring *ring;
		int ret = open_other_wallet(options, options->merge_from[w], &from);

		if (ret)
			return ret;
		ring = wallet_session_keyring(from);
		for (size_t i = 0; i < keyring_count(ring); i++) {
			const struct mek_record *record = keyring_record(ring, i);
			size_t k;

			for (k = 0; k < merged->count; k++)
				if (memcmp(merged->records[k].id, record->id, KEY_ID_SIZE) == 0)
					break;
			if (k < merged->count &&
			    memcmp(merged->records[k].mek, record->mek, MEK_SIZE) != 0) {
				key_id_format(record->id, a);
				fprintf(stderr,
					"tdekey create: key %s is in %s with other key bytes than in an "
					"earlier --merge-from wallet; nothing was created\n",
					a, options->merge_from[w]);
				wallet_session_close(from);
				return EXIT_KEY_CONFLICT;
			}
			if (k < merged->count)
				continue;
			if (merged->count + (options->no_key ? 0 : 1) >= WALLET_MAX_KEYS) {
				wallet_session_close(from);
				return report_failure(KEYSTORE_ERROR(KEYSTORE_ERR_WALLET_FULL),
						      "the --merge-from wallets hold more keys than "
						      "one wallet can; nothing was created");
			}
			merged->records[merged->count++] = *record;
		}
		wallet_session_close(from);
	}
	return EXIT_OK;
}

/* The new wallet, opened again, gets the gathered keys in one commit. */
static int merge_into(const struct options *options, const struct secret *password,
		      struct merged_keys *merged)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session = NULL;
	int ret = open_created_wallet(options->wallet, password, &session, error);

	if (ret == 0)
		ret = keyring_import(wallet_session_keyring(session), merged->records,
				     merged->count, &merged->summary, error);
	if (ret < 0) {
		wallet_session_close(session);
		return report_failure(ret, error);
	}
	ret = merged->summary.added ? commit_session(options, session) : EXIT_OK;
	wallet_session_close(session);
	return ret;
}

static void print_result(const struct options *options, const struct wallet_paths *paths,
			 const struct wallet_create_result *result, const struct merged_keys *merged)
{
	char wallet_id[KEY_ID_TEXT_SIZE], key_id[KEY_ID_TEXT_SIZE];
	struct json json;

	key_id_format(result->wallet_id, wallet_id);
	key_id_format(result->key_id, key_id);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "wallet_root", paths->dir);
		json_string(&json, "wallet_id", wallet_id);
		json_string(&json, "container", options->container);
		json_array_begin(&json, "created");
		json_object_begin(&json, NULL);
		json_string(&json, "location", wallet_paths_of_kind(paths, result->primary));
		json_string(&json, "type", wallet_kind_name(result->primary));
		json_object_end(&json);
		if (result->made_copy) {
			json_object_begin(&json, NULL);
			json_string(&json, "location", wallet_paths_of_kind(paths, result->copy));
			json_string(&json, "type", wallet_kind_name(result->copy));
			json_object_end(&json);
		}
		json_array_end(&json);
		json_string(&json, "active_key_id", result->made_key ? key_id : NULL);
		if (options->merge_from_count) {
			json_array_begin(&json, "merged_from");
			for (size_t w = 0; w < options->merge_from_count; w++)
				json_string(&json, NULL, options->merge_from[w]);
			json_array_end(&json);
			json_uint(&json, "merged", merged->summary.added);
		}
		json_end(&json);
		return;
	}
	printf("created %s wallet %s\n", wallet_kind_name(result->primary),
	       wallet_paths_of_kind(paths, result->primary));
	if (result->made_copy)
		printf("created %s wallet %s\n", wallet_kind_name(result->copy),
		       wallet_paths_of_kind(paths, result->copy));
	printf("wallet ID %s, container %s\n", wallet_id, options->container);
	if (options->merge_from_count)
		printf("merged %zu master key%s from %zu wallet%s (ORIGIN IMPORTED, none active)\n",
		       merged->summary.added, merged->summary.added == 1 ? "" : "s",
		       options->merge_from_count, options->merge_from_count == 1 ? "" : "s");
	if (result->made_key)
		printf("active master key %s\n", key_id);
	else
		printf("no master key yet (OPEN_NO_MASTER_KEY); make one with: tdekey set-key "
		       "--wallet %s\n",
		       paths->dir);
	if (result->primary == WALLET_KIND_HSM)
		printf("the master keys stay on HSM token '%s'; the daemon opens the wallet with "
		       "its PIN (tdefs --pin-file, or tdekey add-secret --pin-file for unattended "
		       "mounts)\n",
		       options->token_label);
	else if (result->primary != WALLET_KIND_PASSWORD)
		printf("no password wallet: changes need no password; add one later with: tdekey "
		       "change-password --wallet %s\n",
		       paths->dir);
}

/*
 * --hsm-module: an HSM wallet, its first master key generated on the token. The PIN is asked
 * once on the terminal (the token has it already; a typo is a wrong PIN, said at once).
 */
static int run_hsm(const struct options *options)
{
	struct wallet_create_options create = {
		.make_key = !options->no_key,
		.tag = options->tag,
		.container = options->container,
	};
	char error[KEYSTORE_ERROR_SIZE] = "", prompt[128];
	struct wallet_create_result result;
	struct wallet_paths paths;
	struct merged_keys none = { 0 };
	struct secret *pin = NULL;
	int ret;

	if (!options->token_label) {
		fprintf(stderr, "tdekey create: --hsm-module needs --token-label LABEL, the token "
				"the keys are made on\nTry 'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	if (options->auto_login || options->local || options->merge_from_count || options->group ||
	    options->cost_given || (options->password_given && !options->pin_given &&
				    options->password.kind != PASSWORD_SOURCE_PROMPT)) {
		fprintf(stderr, "tdekey create: an HSM wallet (--hsm-module) takes a PIN (--pin-file "
				"or --pin-fd), not --password-*, --auto-login, --local, --group, "
				"--scrypt-cost or --merge-from\nTry 'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	if (wallet_paths_init(options->wallet, &paths) < 0)
		return report_failure(-ENAMETOOLONG, "wallet directory name is too long");
	snprintf(prompt, sizeof(prompt), "PIN for HSM token '%.40s': ", options->token_label);
	ret = password_read(&options->password, prompt, false, &pin, error);
	if (ret < 0)
		return report_failure(ret, error);
	ret = wallet_create_hsm(options->wallet, &create, options->hsm_module,
				options->token_label, options->token_serial, pin, &result, error);
	secret_free(pin);
	if (ret < 0)
		return report_failure(ret, error);
	print_result(options, &paths, &result, &none);
	return EXIT_OK;
}

static int run(const struct options *options)
{
	struct wallet_create_options create = {
		.auto_login = options->auto_login || options->local,
		.local = options->local,
		.make_key = !options->no_key,
		.tag = options->tag,
		.container = options->container,
		.cost = options->cost,
	};
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_create_result result;

	/* The keys on a key server (kmip.c). */
	if (options->kmip_server || options->tls_wallet || options->kmip_group)
		return kmip_create(options);
	struct wallet_paths paths;
	struct merged_keys merged = { 0 };
	struct secret *password = NULL;
	size_t group_files;
	gid_t gid = 0;
	int ret;

	/* "all" is what --container all means to every other command: never a container's name. */
	if (container_is_all(options)) {
		fprintf(stderr, "tdekey create: --container all: 'all' names every container and "
				"cannot be one; choose another name\n");
		return EXIT_USAGE;
	}
	if (options->hsm_module)
		return run_hsm(options);
	if (options->token_label || options->token_serial || options->pin_given) {
		fprintf(stderr, "tdekey create: --token-label, --token-serial and --pin-* go with "
				"--hsm-module\nTry 'tdekey create --help'.\n");
		return EXIT_USAGE;
	}

	if (options->from_password_given && !options->merge_from_count) {
		fprintf(stderr, "tdekey create: --from-password-file and --from-password-fd go "
				"with --merge-from\nTry 'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	if (options->from_password_given && options->from_password.kind == PASSWORD_SOURCE_FD &&
	    options->merge_from_count > 1) {
		fprintf(stderr, "tdekey create: --from-password-fd is read once and so opens one "
				"--merge-from wallet; give --from-password-file FILE instead\nTry "
				"'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	if (options->group && create.auto_login && !options->password_given) {
		fprintf(stderr, "tdekey create: --group gives the password wallet to a group, and "
				"--auto-login alone makes none (auto-login files stay 0600)\nTry "
				"'tdekey create --help'.\n");
		return EXIT_USAGE;
	}
	if (options->group) {
		ret = group_parse(options->group, &gid);
		if (ret)
			return ret;
	}
	if (wallet_paths_init(options->wallet, &paths) < 0)
		return report_failure(-ENAMETOOLONG, "wallet directory name is too long");
	/* Every source is read and checked first: a bad one leaves nothing created. */
	if (options->merge_from_count) {
		ret = gather(options, &merged);
		if (ret) {
			secure_free(merged.records);
			return ret;
		}
	}
	/* Auto-login without a named source: no password wallet, and so no prompt. */
	if (!create.auto_login || options->password_given) {
		ret = password_read(&options->password, "New wallet password: ", true, &password,
				    error);
		if (ret < 0)
			return report_failure(ret, error);
	}
	ret = wallet_create(options->wallet, &create, password, &result, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	if (options->group) {
		ret = group_apply(options->wallet, gid, &group_files);
		if (ret)
			goto out;
	}
	if (options->merge_from_count) {
		fault_point("create:created-before-merge");
		ret = merge_into(options, password, &merged);
		if (ret)
			goto out;
	}
	print_result(options, &paths, &result, &merged);
	ret = EXIT_OK;
out:
	secret_free(password);
	secure_free(merged.records);
	return ret;
}

const struct command command_create = {
	.name = "create",
	.summary = "create a wallet with its first master key",
	.synopsis =
		"tdekey create --wallet DIR [--auto-login] [--local] [--tag TAG]\n"
		"                     [--container NAME] [--scrypt-cost LOG2N[,R[,P]]] [--no-key]\n"
		"                     [--group G] [--merge-from DIR ...] [--from-password-file FILE |\n"
		"                      --from-password-fd N]\n"
		"                     [--password-file FILE | --password-fd N | --password-prompt]\n"
		"                     [--json]\n"
		"       tdekey create --wallet DIR --kmip-server HOST:PORT[,HOST:PORT...]\n"
		"                     --tls-wallet TLS_DIR [--kmip-group NAME] [--container NAME]\n"
		"                     [--json]\n"
		"       tdekey create --wallet DIR --hsm-module MODULE --token-label LABEL\n"
		"                     [--token-serial SERIAL] [--pin-file FILE | --pin-fd N]\n"
		"                     [--tag TAG] [--container NAME] [--no-key] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Creates the wallet directory DIR (mode 0700, with DIR/backup) and a new\n"
		"       wallet in it with a fresh wallet ID and one active master key (MEK), like\n"
		"       Oracle's CREATE KEYSTORE followed by SET KEY. DIR must not hold a wallet\n"
		"       already. An existing DIR and every directory above it must belong to root\n"
		"       (or to the user running tdekey) and be writable by no one else, except\n"
		"       root's sticky directories such as /tmp; otherwise create refuses with the\n"
		"       chmod or chown that fixes it, as every tdekey command and the daemon do.\n"
		"\n"
		"       Which files are made depends on --auto-login and on whether a password\n"
		"       source is named:\n"
		"\n"
		"       (no --auto-login)\n"
		"              password.wallet. The password is asked twice on the terminal unless\n"
		"              --password-file or --password-fd gives it.\n"
		"\n"
		"       --auto-login with --password-file, --password-fd or --password-prompt\n"
		"              password.wallet and its auto-login copy autologin.wallet (or\n"
		"              local-autologin.wallet with --local). The daemon mounts with the copy,\n"
		"              key changes need the password, as in Oracle.\n"
		"\n"
		"       --auto-login alone\n"
		"              autologin.wallet only (local-autologin.wallet with --local), without\n"
		"              any prompt. There is no password: every later change works without\n"
		"              one, and the file's mode 0600 is its only protection. Use this for test\n"
		"              systems and hosts with no operator; 'tdekey change-password' adds a\n"
		"              password wallet later.\n"
		"\n"
		"       New passwords must have at least 8 characters.\n"
		"\n"
		"       --hsm-module: an HSM wallet; its keys never leave the token.\n"
		"\n"
		"       --group G gives the password wallet and its backups to group G, mode\n"
		"       0640, as 'tdekey change-group' does; auto-login files stay 0600.\n"
		"\n"
		"       --merge-from: the new wallet also gets every key of each wallet named,\n"
		"       ORIGIN IMPORTED, none active. All are read first; a key ID two hold with\n"
		"       other bytes refuses it all (exit 17).\n"
		"\n",
	.description_more =
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory (created if missing; its parent must exist).\n"
		"\n"
		"       --auto-login\n"
		"              Also make an auto-login wallet (see above).\n"
		"\n"
		"       --local\n"
		"              Make the auto-login wallet a local auto-login wallet, bound to this\n"
		"              host's /etc/machine-id, host name and host secret\n"
		"              /var/lib/tdefs/host-secret (made when missing, never replaced).\n"
		"              Implies --auto-login.\n"
		"\n"
		"       --tag TAG\n"
		"              Tag of the first master key (up to 64 printable ASCII characters).\n"
		"\n"
		"       --container NAME\n"
		"              Container name of the key set (default \"default\"). The backing\n"
		"              directory records it at tdefs --init.\n"
		"\n"
		"       --scrypt-cost LOG2N[,R[,P]]\n"
		"              scrypt cost of the password wallet: N = 2^LOG2N (10..22), R and P\n"
		"              (1..64), at most 1 GiB of memory. Default 16,8,1 (64 MiB, about a\n"
		"              tenth of a second). Low values are for tests only.\n"
		"\n"
		"       --no-key\n"
		"              Create no master key; the wallet is OPEN_NO_MASTER_KEY until set-key.\n"
		"\n"
		"       --group G\n"
		"              The provisioning group (name or number); see change-group.\n"
		"\n"
		"       --merge-from DIR\n"
		"              A wallet to take keys from, only read (as merge --from). Repeatable.\n"
		"\n"
		"       --from-password-file FILE, --from-password-fd N\n"
		"              Password of the --merge-from wallets without an auto-login one (a\n"
		"              descriptor opens only one). As for 'tdekey merge'.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt\n"
		"              Where the new wallet's password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --hsm-module MODULE, --token-label LABEL, --token-serial SERIAL\n"
		"              An HSM wallet: hsm.wallet names the PKCS#11 module (an absolute\n"
		"              path that only root, or the user running, can change) and the token;\n"
		"              the first master key is generated on the token. The PIN comes from\n"
		"              --pin-file, --pin-fd or the terminal.\n"
		"\n"
		"       --kmip-server HOST:PORT[,HOST:PORT...]\n"
		"              A key-server wallet: the master keys are made and kept on these KMIP\n"
		"              servers (port 5696 when left out), tried in order; DIR gets\n"
		"              kmip.wallet, which never holds key material. Goes with --tls-wallet.\n"
		"\n"
		"       --tls-wallet TLS_DIR\n"
		"              With --kmip-server: the TLS wallet (tdekey tls, with an auto-login\n"
		"              file) whose certificate authenticates tdefs to the servers and whose\n"
		"              trusted certificates alone verify them.\n"
		"\n"
		"       --kmip-group NAME\n"
		"              With --kmip-server: a key group the hosts of a fleet share; joined\n"
		"              (no key made) when the server holds its keys already.\n"
		"\n"
		"       --json\n"
		"              Print the result as JSON: wallet_root, wallet_id, container, created\n"
		"              (location and type of each file), active_key_id, and with\n"
		"              --merge-from merged_from and merged.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey create --wallet /etc/tdefs/wallet\n"
		"       tdekey create --wallet /etc/tdefs/wallet --auto-login --password-prompt\n"
		"       tdekey create --wallet /srv/test/wallet --auto-login --tag test\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
