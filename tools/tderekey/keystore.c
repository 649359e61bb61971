/*
 * tderekey close and tderekey open: the keystore of a running mount closed (its master keys
 * wiped from the daemon's memory) and opened again (read from the mount's wallet). The
 * password of a password wallet comes from --password-file, --password-fd or a prompt on the
 * terminal (keystore/password.c, the one reader), never from argv, and goes to the daemon over
 * the control channel from locked memory (control_request_secret). An auto-login wallet, or a
 * password wallet with an external password store, opens without one.
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>
#include <string.h>

#include "keystore/keystore.h"
#include "keystore/wallet.h"

static int run_close(const struct rekey_options *options)
{
	struct control_reply reply;
	char already[8] = "0";
	int ret = control_request(options->path,
				  options->force ? "keystore-close force" : "keystore-close", &reply);

	if (ret)
		return ret;
	reply_value(&reply, "already", already, sizeof(already));
	printf("%s: keystore %sCLOSED%s\n", options->path,
	       strcmp(already, "1") == 0 ? "was already " : "",
	       options->force ? " (--force: the DEKs of open files were wiped too)" : "");
	return EXIT_OK;
}

/* The password asked for, read from its source into locked memory; an exit code on failure. */
static int read_password(const struct rekey_options *options, bool prompt, struct secret **out)
{
	struct password_source source = { .kind = PASSWORD_SOURCE_PROMPT };
	char error[KEYSTORE_ERROR_SIZE] = "";
	char text[4096 + 32];

	if (options->password_file) {
		source.kind = PASSWORD_SOURCE_FILE;
		source.path = options->password_file;
	} else if (options->password_fd >= 0) {
		source.kind = PASSWORD_SOURCE_FD;
		source.fd = options->password_fd;
	} else if (!prompt) {
		return -1;
	}
	snprintf(text, sizeof(text), "Password for the wallet of %s: ", options->path);
	if (password_read(&source, text, false, out, error) < 0) {
		fprintf(stderr, "tderekey: %s\n", error);
		return CLI_EXIT_WRONG_PASSWORD;
	}
	return EXIT_OK;
}

static int run_open(const struct rekey_options *options)
{
	struct control_reply reply;
	struct secret *password = NULL;
	char already[8] = "0";
	int ret;

	ret = read_password(options, false, &password);
	if (ret > 0)
		return ret;
	if (password) {
		ret = control_request_secret(options->path, "keystore-open password", password,
					     &reply);
	} else if (cli_may_prompt()) {
		/*
		 * On a terminal: a wallet that opens by itself (auto-login, an external store) is
		 * tried first, quietly, and only a password wallet asks for its password.
		 */
		ret = control_request_quiet(options->path, "keystore-open", &reply);
		if (ret == CLI_EXIT_WRONG_PASSWORD) {
			ret = read_password(options, true, &password);
			if (ret == EXIT_OK)
				ret = control_request_secret(options->path, "keystore-open password",
							     password, &reply);
		} else if (ret != EXIT_OK && reply.error) {
			fprintf(stderr, "tderekey: %s: %s\n", options->path, reply.error);
		}
	} else {
		ret = control_request(options->path, "keystore-open", &reply);
	}
	secret_free(password);
	if (ret)
		return ret;
	reply_value(&reply, "already", already, sizeof(already));
	printf("%s: keystore %sOPEN\n", options->path,
	       strcmp(already, "1") == 0 ? "was already " : "");
	return EXIT_OK;
}

const struct rekey_command command_close = {
	.name = "close",
	.summary = "wipe the mount's master keys from the daemon's memory",
	.help = "Usage: tderekey close MOUNTPOINT [--force]\n"
		"\n"
		"Close the keystore of the mount: the daemon wipes its master keys. Files whose DEK\n"
		"is not loaded then fail to open with ENOKEY (\"Required key not available\"), new\n"
		"files cannot be made, and the jobs (rewrap, data, encrypt) are refused until\n"
		"'tderekey open'. Refused while files are open or a job runs (exit status 22),\n"
		"unless --force: the jobs are stopped (each resumes later where it was), the cached\n"
		"pages are written back, and the DEKs of the open files and of the key cache\n"
		"(-o key_cache) are wiped too, so that their reads and writes fail with EIO until\n"
		"they are closed. Nothing is written to disk without its key. Without --force the\n"
		"key cache keeps the DEKs of recently closed files until they expire.\n",
	.run = run_close,
};

const struct rekey_command command_open = {
	.name = "open",
	.summary = "load the mount's master keys again after tderekey close",
	.help = "Usage: tderekey open MOUNTPOINT [--password-file FILE | --password-fd N]\n"
		"\n"
		"Open the keystore of the mount again: the daemon reads the mount's wallet as at\n"
		"mount. An auto-login wallet (or a password wallet with an external password\n"
		"store) opens without a password; for a password wallet give --password-file or\n"
		"--password-fd, or run it on a terminal to be asked. The password goes to the\n"
		"daemon over its control channel, never on a command line. A wrong password exits\n"
		"with status 4 and the keystore stays closed.\n",
	.run = run_open,
};
