/*
 * What every subcommand that opens a wallet does the same way: name the password source only
 * when the user named one (so reading prefers the auto-login copy), report a failure with its
 * exit code, and describe a commit (which file, which generation, which backup).
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/*
 * A wrong password typed at the prompt is asked again, up to --tries times; one read from a
 * file or a descriptor is not (the same bytes would come again). The prompt itself happens
 * only on a terminal (keystore/password.c).
 */
int open_session(const struct options *options, enum wallet_access access,
		 struct wallet_session **session)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	const struct password_source *source = options->password_given ? &options->password : NULL;
	bool prompts = (!source || source->kind == PASSWORD_SOURCE_PROMPT) && cli_may_prompt();
	int ret;

	for (int attempt = 1;; attempt++) {
		error[0] = '\0';
		ret = wallet_session_open(options->wallet, access, source, session, error);
		if ((keystore_error_of(ret) != KEYSTORE_ERR_WRONG_PASSWORD &&
		     keystore_error_of(ret) != KEYSTORE_ERR_WRONG_PIN) ||
		    !prompts || attempt >= options->tries)
			break;
		fprintf(stderr, "tdekey: wrong %s for wallet %s; try again (%d of %d)\n",
			keystore_error_of(ret) == KEYSTORE_ERR_WRONG_PIN ? "PIN" : "password",
			options->wallet, attempt + 1, options->tries);
	}
	return ret < 0 ? report_failure(ret, error) : EXIT_OK;
}

char committed_summary[256];
/*
 * Open a wallet just made with password: the session reads its password from a descriptor, so
 * the password goes through a pipe (kernel memory, never a file or argv).
 */
int open_created_wallet(const char *dir, const struct secret *password,
			struct wallet_session **session, char error[KEYSTORE_ERROR_SIZE])
{
	struct password_source source = { .kind = PASSWORD_SOURCE_FD, .explicit = true };
	int fds[2], ret = 0;

	if (!password)
		return wallet_session_open(dir, WALLET_FOR_CHANGE, NULL, session, error);
	if (pipe(fds) < 0)
		return -errno;
	if (write(fds[1], password->bytes, password->len) != (ssize_t)password->len ||
	    write(fds[1], "\n", 1) != 1)
		ret = -EIO;
	close(fds[1]);
	source.fd = fds[0];
	if (ret == 0)
		ret = wallet_session_open(dir, WALLET_FOR_CHANGE, &source, session, error);
	close(fds[0]);
	return ret;
}

int commit_session(const struct options *options, struct wallet_session *session)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	uint8_t active[KEY_ID_SIZE];
	char active_text[KEY_ID_TEXT_SIZE] = "none";
	const uint8_t *mek;
	struct keyring *ring;
	int ret;

	ret = wallet_session_commit(session, options->backup_id, error);
	if (ret < 0)
		return report_failure(ret, error);
	/* For the audit line tdekey.c writes: what the wallet holds now (no key material). */
	ring = wallet_session_keyring(session);
	if (keyring_active(ring, active, &mek) == 0)
		key_id_format(active, active_text);
	snprintf(committed_summary, sizeof(committed_summary), "now generation %llu, active key %s",
		 (unsigned long long)keyring_generation(ring), active_text);
	return EXIT_OK;
}

int find_key_argument(const struct options *options, struct keyring *ring, size_t *index)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	int ret = keyring_find_prefix(ring, options->argv[0], index, error);

	if (ret == 0)
		return EXIT_OK;
	report_failure(ret, error);
	/* Text that cannot be a key ID is a usage error, not a missing key. */
	return ret == -EINVAL ? EXIT_USAGE : exit_code_for(ret);
}

static void copies_refreshed(struct wallet_session *session, const char *found[2])
{
	const struct wallet_paths *paths = wallet_session_paths(session);
	const char *candidates[2] = { paths->autologin, paths->local_autologin };
	size_t count = 0;

	found[0] = found[1] = NULL;
	for (size_t i = 0; i < 2; i++) {
		if (strcmp(candidates[i], wallet_session_path(session)) != 0 &&
		    access(candidates[i], F_OK) == 0)
			found[count++] = candidates[i];
	}
}

void print_commit_text(struct wallet_session *session)
{
	const char *copies[2];

	printf("wallet %s (%s, generation %llu)\n", wallet_session_path(session),
	       wallet_kind_name(wallet_session_kind(session)),
	       (unsigned long long)keyring_generation(wallet_session_keyring(session)));
	if (*wallet_session_backup_path(session))
		printf("backup %s\n", wallet_session_backup_path(session));
	copies_refreshed(session, copies);
	for (size_t i = 0; i < 2 && copies[i]; i++)
		printf("auto-login copy %s refreshed\n", copies[i]);
}

void print_commit_json(struct json *json, struct wallet_session *session)
{
	const char *copies[2];

	json_string(json, "wallet", wallet_session_path(session));
	json_string(json, "type", wallet_kind_name(wallet_session_kind(session)));
	json_uint(json, "generation", keyring_generation(wallet_session_keyring(session)));
	json_string(json, "backup",
		    *wallet_session_backup_path(session) ? wallet_session_backup_path(session)
							 : NULL);
	copies_refreshed(session, copies);
	json_array_begin(json, "refreshed_copies");
	for (size_t i = 0; i < 2 && copies[i]; i++)
		json_string(json, NULL, copies[i]);
	json_array_end(json);
}
