/*
 * tdekey merge: add every master key of another wallet directory to this one, like ADMINISTER
 * KEY MANAGEMENT MERGE KEYSTORE ... INTO EXISTING KEYSTORE. The other wallet is only read (its
 * auto-login copy when it has one and no password source is named); this wallet changes in one
 * commit, backup first. Idempotent and never destructive: a key already here with the same
 * bytes is skipped, a key ID here with other bytes refuses the whole merge, and no key of this
 * wallet changes state. The keys added have origin IMPORTED and none becomes active, so a
 * mounted daemon goes on wrapping new files under the key it used before; it re-reads the
 * wallet and can unwrap with the merged keys without a remount.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "keystore/key_export.h"

int open_other_wallet(const struct options *options, const char *dir,
		      struct wallet_session **session)
{
	struct password_source source = options->from_password;
	char error[KEYSTORE_ERROR_SIZE] = "";
	int fd = -1, ret = 0;

	if (options->from_password_given && source.kind == PASSWORD_SOURCE_FILE) {
		/* Opened once and checked (strict modes), then read through that descriptor. */
		ret = transport_secret_open_file(source.path, "--from-password-file", &fd, error);
		source.kind = PASSWORD_SOURCE_FD;
		source.fd = fd;
	} else if (options->from_password_given) {
		ret = transport_secret_check_fd(source.fd, "--from-password-fd", error);
	}
	if (ret == 0)
		ret = wallet_session_open(dir, WALLET_FOR_READING,
					  options->from_password_given ? &source : NULL, session,
					  error);
	if (fd >= 0)
		close(fd);
	if (ret == -ENXIO) /* the session's words name this wallet's options, not --from's */
		snprintf(error, sizeof(error),
			 "wallet %s needs its password and there is no terminal to ask on; give "
			 "--from-password-file FILE or --from-password-fd N",
			 dir);
	return ret < 0 ? report_failure(ret, error) : EXIT_OK;
}

static int run(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", text[KEY_ID_TEXT_SIZE];
	struct wallet_session *from = NULL, *session = NULL;
	struct key_import_summary summary;
	const struct keyring *other;
	struct mek_record *records;
	uint8_t other_id[KEY_ID_SIZE];
	struct json json;
	size_t count;
	int ret;

	if (!options->from) {
		fprintf(stderr, "tdekey merge: --from DIR is required\nTry 'tdekey merge --help'.\n");
		return EXIT_USAGE;
	}
	ret = open_other_wallet(options, options->from, &from);
	if (ret)
		return ret;
	other = wallet_session_keyring(from);
	count = keyring_count(other);
	keyring_wallet_id(other, other_id);
	records = secure_alloc((count + 1) * sizeof(*records));
	if (!records) {
		ret = report_failure(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		records[i] = *keyring_record(other, i);
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		goto out;
	ret = keyring_import(wallet_session_keyring(session), records, count, &summary, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	if (summary.added) {
		ret = commit_session(options, session);
		if (ret)
			goto out;
	}
	key_id_format(other_id, text);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "from", wallet_session_path(from));
		json_string(&json, "source_wallet_id", text);
		json_uint(&json, "merged", summary.added);
		json_uint(&json, "skipped", summary.skipped);
		if (summary.added)
			print_commit_json(&json, session);
		json_end(&json);
	} else {
		printf("merged %zu master key%s from %s (wallet ID %s); %zu already here\n",
		       summary.added, summary.added == 1 ? "" : "s", wallet_session_path(from), text,
		       summary.skipped);
		if (summary.added)
			print_commit_text(session);
	}
	ret = EXIT_OK;
out:
	secure_free(records);
	wallet_session_close(session);
	wallet_session_close(from);
	return ret;
}

const struct command command_merge = {
	.name = "merge",
	.summary = "add every master key of another wallet directory to this one",
	.synopsis = "tdekey merge --wallet DIR --from OTHER_DIR\n"
		    "                    [--from-password-file FILE | --from-password-fd N]\n"
		    "                    [--backup-id ID] [--password-file FILE | --password-fd N |\n"
		    "                     --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Reads the wallet in OTHER_DIR and adds each of its master keys that this\n"
		"       wallet lacks, like Oracle's ADMINISTER KEY MANAGEMENT MERGE KEYSTORE INTO\n"
		"       EXISTING KEYSTORE. OTHER_DIR is only read and must pass the same strict\n"
		"       modes as any wallet directory. Running it twice changes nothing the second\n"
		"       time. Nothing already in this wallet is overwritten: a key ID here with\n"
		"       other bytes refuses the whole merge (exit 17). Merged keys have ORIGIN\n"
		"       IMPORTED and none becomes active. Works online: a daemon mounted with\n"
		"       this wallet re-reads it.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory the keys go to.\n"
		"\n"
		"       --from OTHER_DIR\n"
		"              The wallet directory the keys come from.\n"
		"\n"
		"       --from-password-file FILE, --from-password-fd N\n"
		"              The password of OTHER_DIR's password wallet (first line). Without\n"
		"              one its auto-login wallet is read, or the terminal asked. FILE, or a\n"
		"              regular file behind N, must belong to root or to you and be\n"
		"              writable by no one else.\n"
		"\n"
		"       --backup-id ID\n"
		"              Put ID in the name of the backup taken before the change.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where this wallet's password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print from, source_wallet_id, merged, skipped and the commit as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey merge --wallet /etc/tdefs/wallet --from /old/wallet \\\n"
		"              --from-password-file /root/old.password\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
