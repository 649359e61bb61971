/*
 * keystore_open_for_mount: what the daemon calls at mount. It never prompts: the auto-login or
 * local auto-login wallet when one is present, else the password wallet with the password from
 * the descriptor the daemon was given, else (no descriptor) the external password store.
 *
 * A copy that lags behind the password wallet (a tdekey run killed between writing the two)
 * still holds every key the running filesystem can have used, so it is used, with a warning.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

static void warn_if_behind(const struct wallet_paths *paths, const struct wallet_read *copy)
{
	struct wallet_read primary = {
		.path = paths->password,
		.expected_kind = WALLET_KIND_PASSWORD,
		.expected_content = WALLET_CONTENT_KEYS,
		.header_only = true,
	};
	char ignored[KEYSTORE_ERROR_SIZE];

	if (!wallet_file_present(paths->password) || wallet_read(&primary, ignored) < 0)
		return;
	if (primary.info.generation != copy->info.generation)
		log_warning("%s is at generation %llu but %s at %llu; tdekey create-autologin "
			    "--wallet %s brings it level",
			    copy->path, (unsigned long long)copy->info.generation, paths->password,
			    (unsigned long long)primary.info.generation, paths->dir);
	wallet_read_release(&primary);
}

int keystore_open_for_mount(const char *wallet_dir, int password_fd, struct keyring **out,
			    char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_read read = { .expected_content = WALLET_CONTENT_KEYS };
	struct wallet_paths paths;
	struct secret *password = NULL;
	struct stat st;
	int ret;

	ret = wallet_paths_init(wallet_dir, &paths);
	if (ret < 0) {
		wallet_message(error, "wallet directory name is too long or empty");
		return ret;
	}
	if (stat(paths.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		wallet_message(error, "no wallet in %s: no such directory", paths.dir);
		return -ENOENT;
	}
	if (wallet_file_present(paths.autologin) || wallet_file_present(paths.local_autologin)) {
		read.expected_kind = wallet_file_present(paths.autologin)
					     ? WALLET_KIND_AUTOLOGIN
					     : WALLET_KIND_LOCAL_AUTOLOGIN;
		read.path = wallet_paths_of_kind(&paths, read.expected_kind);
		ret = wallet_read(&read, error);
		if (ret == 0)
			warn_if_behind(&paths, &read);
	} else if (wallet_file_present(paths.password)) {
		read.path = paths.password;
		read.expected_kind = WALLET_KIND_PASSWORD;
		if (password_fd >= 0) {
			struct password_source source = {
				.kind = PASSWORD_SOURCE_FD,
				.fd = password_fd,
				.explicit = true,
			};

			ret = password_read(&source, NULL, false, &password, error);
			if (ret == 0) {
				read.password = password;
				ret = wallet_read(&read, error);
			}
		} else if (wallet_file_present(paths.external_store)) {
			ret = wallet_open_with_external_store(&paths, &read, &password, error);
		} else {
			wallet_message(
				error,
				"wallet %s needs a password and none was given (no auto-login "
				"wallet, no external password store, no password descriptor)",
				paths.password);
			ret = -EKEYREJECTED;
		}
	} else {
		wallet_message(error, "no wallet in %s (no %s, %s or %s)", paths.dir,
			       WALLET_AUTOLOGIN_FILE, WALLET_LOCAL_AUTOLOGIN_FILE,
			       WALLET_PASSWORD_FILE);
		ret = -ENOENT;
	}
	secret_free(password);
	if (ret < 0)
		return ret;
	*out = read.ring;
	read.ring = NULL;
	wallet_read_release(&read);
	return 0;
}
