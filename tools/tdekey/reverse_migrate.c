/*
 * tdekey reverse-migrate: move a wallet's keys back to software, as Oracle's SET KEY ...
 * REVERSE MIGRATE does.
 *
 * From an HSM wallet: a new software wallet (auto-login; add a password with
 * change-password) is made with the HSM wallet's ID and container and a new ACTIVE key; the
 * HSM wallet links it as active, so that a mount on the HSM wallet wraps new files under the
 * software key at once while the HSM keys keep opening the headers still under them. Once
 * 'tderekey rewrap' has moved every header, the backing directory mounts with the software
 * wallet alone. Nothing is deleted; the HSM wallet is backed up before it changes. Order: the
 * new software wallet (complete, by rename), then the HSM wallet's backup, then its new
 * hsm.wallet. A crash between leaves an unused software wallet beside an unchanged HSM wallet;
 * a second run refuses the existing directory (remove it, or link it by hand).
 *
 * From a KMIP wallet: the key server's keys can be read, so they are copied instead. Every
 * key the KMIP wallet's ring holds (its own, fetched from the server, and those of the wallet
 * it links) goes into a new auto-login wallet with the same key IDs and states, the wallet ID
 * and the container: the ACTIVE key stays ACTIVE, so nothing needs a rewrap and the backing
 * directories mount with the new wallet at once. The KMIP wallet and the server are not
 * touched. The wallet is built in DIR.partial and renamed to DIR, so a crash leaves no DIR or
 * a complete one; a DIR.partial left by a crash is refused until removed.
 */
#include "tools/tdekey/tdekey.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore/kmip_wallet.h"
#include "util/util.h"

#define PARTIAL_SUFFIX ".partial"

/* DIR without its trailing slashes into to, and DIR.partial into partial. */
static int target_paths(const char *dir, char to[PATH_MAX], char partial[PATH_MAX])
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 0 || (len == 1 && dir[0] == '/') || len + sizeof(PARTIAL_SUFFIX) > PATH_MAX) {
		fprintf(stderr, "tdekey reverse-migrate: --to %s: not a name for a new wallet "
				"directory\n",
			dir);
		return EXIT_USAGE;
	}
	memcpy(to, dir, len);
	to[len] = '\0';
	memcpy(partial, to, len);
	memcpy(partial + len, PARTIAL_SUFFIX, sizeof(PARTIAL_SUFFIX));
	return EXIT_OK;
}

static bool holds_wallet(const char *dir)
{
	static const char *const files[] = { WALLET_PASSWORD_FILE, WALLET_AUTOLOGIN_FILE,
					     WALLET_LOCAL_AUTOLOGIN_FILE, WALLET_HSM_FILE,
					     KMIP_WALLET_FILE };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (snprintf(path, sizeof(path), "%s/%s", dir, files[i]) < (int)sizeof(path) &&
		    access(path, F_OK) == 0)
			return true;
	return false;
}

/* DIR must not exist, or be an empty directory; a DIR.partial is a crash's leftover. */
static int check_target(const char *to, const char *partial)
{
	struct stat st;
	DIR *dir;

	if (lstat(partial, &st) == 0) {
		fprintf(stderr, "tdekey reverse-migrate: %s is left from a run that did not finish; "
				"remove it (rm -r %s) and run again\n",
			partial, partial);
		return EXIT_EXISTS;
	}
	if (lstat(to, &st) < 0) {
		if (errno == ENOENT)
			return EXIT_OK;
		fprintf(stderr, "tdekey reverse-migrate: --to %s: %s\n", to, strerror(errno));
		return errno == EACCES ? EXIT_PERMISSIONS : EXIT_ERROR;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tdekey reverse-migrate: --to %s exists and is not a directory\n",
			to);
		return EXIT_EXISTS;
	}
	dir = opendir(to);
	if (!dir) {
		fprintf(stderr, "tdekey reverse-migrate: --to %s: %s\n", to, strerror(errno));
		return errno == EACCES ? EXIT_PERMISSIONS : EXIT_ERROR;
	}
	for (struct dirent *entry; (entry = readdir(dir));) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		closedir(dir);
		fprintf(stderr, "tdekey reverse-migrate: --to %s is not empty%s; name a new or "
				"empty directory\n",
			to, holds_wallet(to) ? " (a wallet is there)" : "");
		return EXIT_EXISTS;
	}
	closedir(dir);
	return EXIT_OK;
}

/*
 * Remove DIR.partial after a failure of this run (a crash leaves it for the next run to
 * refuse). It was made here, mode 0700, and holds only what wallet_create wrote. The removal
 * goes by descriptor from the directory this run made (the same inode, checked), never by
 * path below it, so nothing swapped in under its name is followed.
 */
static int remove_tree_at(int dir_fd, unsigned depth)
{
	DIR *dir = fdopendir(dir_fd);
	int ret = 0;

	if (!dir) {
		close(dir_fd);
		return -errno;
	}
	for (struct dirent *entry; (entry = readdir(dir));) {
		struct stat st;
		int child;

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < 4) {
			child = openat(dirfd(dir), entry->d_name,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (child < 0 || remove_tree_at(child, depth + 1) < 0 ||
			    unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR) < 0)
				ret = -EIO;
		} else if (unlinkat(dirfd(dir), entry->d_name, 0) < 0) {
			ret = -errno;
		}
	}
	closedir(dir);
	return ret;
}

static void remove_partial(const char *partial, const struct stat *made)
{
	int fd = open(partial, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), ret;
	struct stat st;

	if (fd < 0) {
		ret = -errno;
	} else if (fstat(fd, &st) < 0 || st.st_dev != made->st_dev || st.st_ino != made->st_ino) {
		close(fd);
		ret = -ESTALE; /* not the directory this run made: left alone */
	} else {
		ret = remove_tree_at(fd, 0);
		if (ret == 0 && rmdir(partial) < 0)
			ret = -errno;
	}
	if (ret < 0 && ret != -ENOENT)
		fprintf(stderr, "tdekey reverse-migrate: cannot remove %s: %s; remove it before "
				"the next run\n",
			partial, strerror(-ret));
}

/*
 * The new wallet, opened as the daemon will open it, holds every key of ring with the same
 * bytes and state, and the same ACTIVE key.
 */
static int check_copy(const char *partial, const struct keyring *ring,
		      char error[KEYSTORE_ERROR_SIZE])
{
	struct keyring *copy = NULL;
	char why[KEYSTORE_ERROR_SIZE] = "";
	int ret = keystore_open_for_mount(partial, -1, &copy, why);

	if (ret < 0) {
		snprintf(error, KEYSTORE_ERROR_SIZE, "the new wallet %.200s does not open: %.200s", partial,
			 why);
		return ret;
	}
	ret = keyring_count(copy) == keyring_count(ring) ? 0 : -EIO;
	for (size_t i = 0; ret == 0 && i < keyring_count(ring); i++) {
		const struct mek_record *want = keyring_record(ring, i);
		const uint8_t *have = keyring_find(copy, want->id);
		size_t at;

		if (!have || memcmp(have, want->mek, MEK_SIZE) != 0) {
			ret = -EIO;
			break;
		}
		for (at = 0; memcmp(keyring_record(copy, at)->id, want->id, KEY_ID_SIZE); at++)
			;
		if (keyring_record(copy, at)->state != want->state)
			ret = -EIO;
	}
	keyring_free(copy);
	if (ret < 0)
		snprintf(error, KEYSTORE_ERROR_SIZE, "the new wallet %.300s does not hold the keys as "
			 "fetched", partial);
	return ret;
}

static void print_kmip_result(const struct options *options, const char *to,
			      const struct keyring *ring)
{
	char wallet_id[KEY_ID_TEXT_SIZE], key_id[KEY_ID_TEXT_SIZE];
	uint8_t id[KEY_ID_SIZE];
	bool active = keyring_active(ring, id, NULL) == 0;
	size_t count = keyring_count(ring);

	if (active)
		key_id_format(id, key_id);
	keyring_wallet_id(ring, id);
	key_id_format(id, wallet_id);
	if (options->json) {
		struct json json;

		json_begin(&json, stdout);
		json_string(&json, "wallet", to);
		json_string(&json, "type", wallet_kind_name(WALLET_KIND_AUTOLOGIN));
		json_string(&json, "wallet_id", wallet_id);
		json_string(&json, "container", keyring_container(ring));
		json_string(&json, "from", options->wallet);
		json_uint(&json, "keys", count);
		json_string(&json, "active_key_id", active ? key_id : NULL);
		json_bool(&json, "kmip_wallet_unchanged", true);
		json_end(&json);
	} else {
		printf("created AUTOLOGIN wallet %s with the %zu master key%s of KMIP wallet %s "
		       "(wallet ID %s, container %s)\n",
		       to, count, count == 1 ? "" : "s", options->wallet, wallet_id,
		       keyring_container(ring));
		if (active)
			printf("active master key %s, as on the key server: no rewrap is needed\n",
			       key_id);
		else
			printf("no key is ACTIVE (the server has revoked it): 'tdekey set-key "
			       "--wallet %s' makes one before new files are written\n",
			       to);
		printf("the KMIP wallet %s and the key server are left as they were: no key was "
		       "revoked or destroyed\n",
		       options->wallet);
		printf("next: the backing directories of %s now mount with --wallet %s (tdekey "
		       "change-password --wallet %s adds a password)\n",
		       options->wallet, to, to);
	}
	snprintf(committed_summary, sizeof(committed_summary),
		 "copied %zu key%s of KMIP wallet to wallet %.100s", count, count == 1 ? "" : "s",
		 to);
}

/*
 * From a KMIP wallet: the keys fetched into locked memory, the wallet built whole in
 * DIR.partial and checked by opening it as the daemon will, then renamed to DIR.
 */
static int from_kmip(const struct options *options)
{
	struct wallet_create_options create = {
		.auto_login = true,
		.cost = SCRYPT_DEFAULT_COST,
	};
	char error[KEYSTORE_ERROR_SIZE] = "", to[PATH_MAX], partial[PATH_MAX];
	struct wallet_create_result result;
	struct keyring *ring = NULL;
	uint8_t id[KEY_ID_SIZE];
	struct stat st, made;
	int ret;

	if (options->tag || options->backup_id || options->pin_given || options->password_given) {
		fprintf(stderr, "tdekey reverse-migrate: %s is a KMIP wallet: its keys are copied "
				"as they are and it is not changed, so it takes no --tag, --backup-id, "
				"PIN or password\n"
				"Try 'tdekey reverse-migrate --help'.\n",
			options->wallet);
		return EXIT_USAGE;
	}
	ret = target_paths(options->to, to, partial);
	if (ret)
		return ret;
	/* The new wallet belongs to whoever runs this: only the KMIP wallet's owner, or root. */
	if (stat(options->wallet, &st) == 0 && geteuid() != 0 && st.st_uid != geteuid()) {
		fprintf(stderr, "tdekey reverse-migrate: wallet %s belongs to uid %u, not to you "
				"(uid %u); run as its owner or root\n",
			options->wallet, (unsigned)st.st_uid, (unsigned)geteuid());
		return EXIT_PERMISSIONS;
	}
	ret = check_target(to, partial);
	if (ret)
		return ret;
	ret = kmip_keystore_open_dir(options->wallet, &ring, error);
	if (ret < 0) {
		char message[KEYSTORE_ERROR_SIZE + 64];

		snprintf(message, sizeof(message), "cannot fetch the keys of KMIP wallet %s: %s",
			 options->wallet, error);
		return kmip_failure(ret, message);
	}
	fault_point("reverse-migrate:kmip-keys-fetched");
	if (keyring_count(ring) == 0) {
		keyring_free(ring);
		fprintf(stderr, "tdekey reverse-migrate: KMIP wallet %s holds no master key\n",
			options->wallet);
		return EXIT_NO_MASTER_KEY;
	}
	if (mkdir(partial, 0700) < 0 || lstat(partial, &made) < 0) {
		ret = -errno;
		keyring_free(ring);
		snprintf(error, sizeof(error), "cannot make %.300s: %s", partial, strerror(-ret));
		return report_failure(ret, error);
	}
	ret = fsync_parent_directory(partial);
	fault_point("reverse-migrate:partial-made");
	keyring_wallet_id(ring, id);
	create.wallet_id = id;
	create.container = keyring_container(ring);
	create.keys = ring;
	if (ret == 0)
		ret = wallet_create(partial, &create, NULL, &result, error);
	else
		snprintf(error, sizeof(error), "cannot make %.300s durable: %s", partial,
			 strerror(-ret));
	if (ret == 0)
		ret = check_copy(partial, ring, error);
	if (ret == 0) {
		fault_point("reverse-migrate:partial-complete");
		if (rename(partial, to) < 0) {
			ret = -errno;
			snprintf(error, sizeof(error), "cannot rename %.200s to %.200s: %s", partial, to,
				 strerror(-ret));
		}
	}
	if (ret < 0) {
		keyring_free(ring);
		remove_partial(partial, &made);
		return report_failure(ret, error);
	}
	fault_point("reverse-migrate:renamed");
	ret = fsync_parent_directory(to);
	if (ret < 0) {
		keyring_free(ring);
		snprintf(error, sizeof(error), "wallet %.200s is made but its directory may not be on "
			 "disk yet: %s", to, strerror(-ret));
		return report_failure(ret, error);
	}
	print_kmip_result(options, to, ring);
	keyring_free(ring);
	return EXIT_OK;
}

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
	if (kmip_wallet_in(options->wallet))
		return from_kmip(options);
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	ring = wallet_session_keyring(session);
	if (wallet_session_kind(session) != WALLET_KIND_HSM) {
		wallet_session_close(session);
		fprintf(stderr, "tdekey reverse-migrate: %s is not an HSM or KMIP wallet\n",
			options->wallet);
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
	.summary = "move an HSM or KMIP wallet's master keys back to a software wallet",
	.synopsis = "tdekey reverse-migrate --wallet HSMDIR --to DIR [--tag TAG]\n"
		    "                              [--pin-file FILE | --pin-fd N]\n"
		    "                              [--backup-id ID] [--json]\n"
		    "       tdekey reverse-migrate --wallet KMIPDIR --to DIR [--json]",
	.description =
		"DESCRIPTION\n"
		"       From an HSM wallet: makes DIR a new software wallet (auto-login; tdekey\n"
		"       change-password adds a password) with the wallet ID and container of the\n"
		"       HSM wallet HSMDIR and a new ACTIVE master key, and links it from HSMDIR\n"
		"       as active: a mount on HSMDIR wraps new files under the software key at\n"
		"       once (it re-reads its wallet) and keeps opening the headers under the HSM\n"
		"       keys. After 'tderekey rewrap' ('tdekey keys --usage' shows no header under\n"
		"       an HSM key), the backing directory mounts with --wallet DIR alone. Nothing\n"
		"       is deleted; HSMDIR/hsm.wallet is backed up before it changes.\n"
		"\n"
		"       From a KMIP wallet: fetches every master key KMIPDIR's key ring holds (its\n"
		"       own from the key server, and those of the wallet it links after 'tdekey\n"
		"       migrate --to-kmip') and makes DIR a new auto-login wallet holding them all\n"
		"       with the same key IDs, states, times and tags, and KMIPDIR's wallet ID and\n"
		"       container. The ACTIVE key stays ACTIVE, so no rewrap is needed: the backing\n"
		"       directories mount with --wallet DIR at once, without the server. KMIPDIR\n"
		"       and the server are left as they were (no key is revoked or destroyed).\n"
		"       DIR must not exist or be an empty directory; the wallet is built in\n"
		"       DIR.partial (mode 0700) and renamed to DIR, so a crash leaves no DIR or a\n"
		"       complete one. A DIR.partial left by a crash is refused: remove it and run\n"
		"       again. Only the KMIP wallet's owner or root may copy its keys.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet HSMDIR, --wallet KMIPDIR\n"
		"              The HSM or KMIP wallet.\n"
		"\n"
		"       --to DIR\n"
		"              The new software wallet directory (made; from an HSM wallet it must\n"
		"              hold no wallet, from a KMIP wallet it must be missing or empty).\n"
		"\n"
		"       --pin-file FILE, --pin-fd N\n"
		"              An HSM wallet: the token's PIN; by default it is asked on the\n"
		"              terminal.\n"
		"\n"
		"       --tag TAG\n"
		"              An HSM wallet: a tag for the new software key.\n"
		"\n"
		"       --backup-id ID\n"
		"              An HSM wallet: put ID in the name of the backup of hsm.wallet.\n"
		"\n"
		"       --json\n"
		"              Print the result as JSON: from an HSM wallet wallet, type,\n"
		"              linked_from and active_key_id; from a KMIP wallet wallet, type,\n"
		"              wallet_id, container, from, keys, active_key_id and\n"
		"              kmip_wallet_unchanged.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey reverse-migrate --wallet /etc/tdefs/kms --to /etc/tdefs/wallet2\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
