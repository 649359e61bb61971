/*
 * The host secret: 32 random bytes that only root on this host can read, mixed into the keys of
 * local auto-login wallets together with the machine ID and the host name. Those two are public
 * (any local user reads /etc/machine-id and the host name, and a backup of /etc carries both),
 * so without the secret a copied local auto-login wallet would open on any machine told them.
 * The secret lives outside the wallet directory, in /var/lib/tdefs/host-secret (mode 0600 in a
 * 0700 directory, owned by root and checked like a wallet directory), so a copy of the wallet
 * directory, a backup of /etc or of the wallet does not carry it.
 *
 * It is made once, by the first tdekey command that writes a local auto-login wallet or store,
 * and never replaced: a new secret would lock out every local auto-login wallet made with the
 * old one. Reading never creates it.
 *
 * Test builds (keystore compiled with TDEFS_KEYSTORE_TESTING) keep it in
 * $TDEFS_TEST_HOST_SECRET_DIR when that is set, so a test can play a second host and never
 * touches /var/lib/tdefs; production builds never read that variable.
 */
#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define HOST_SECRET_DIRECTORY "/var/lib/tdefs"
#define HOST_SECRET_FILE "host-secret"

static const char *host_secret_directory(void)
{
#ifdef TDEFS_KEYSTORE_TESTING
	const char *test_directory = getenv("TDEFS_TEST_HOST_SECRET_DIR");

	if (test_directory && *test_directory)
		return test_directory;
#endif
	return HOST_SECRET_DIRECTORY;
}

int host_secret_path(char out[PATH_MAX])
{
	if (snprintf(out, PATH_MAX, "%s/%s", host_secret_directory(), HOST_SECRET_FILE) >=
	    PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* Write a fresh secret next to path and link it into place: an existing secret always wins. */
static int create_secret(const char *directory, const char *path,
			 char error[KEYSTORE_ERROR_SIZE])
{
	char temporary[PATH_MAX];
	uint8_t *secret;
	int fd, ret;

	if (mkdir(directory, 0700) == 0) {
		ret = fsync_parent_directory(directory);
		if (ret < 0) {
			wallet_message(error, "cannot sync the parent of %s: %s", directory,
				       keystore_error_message(ret));
			return ret;
		}
	} else if (errno != EEXIST) {
		ret = -errno;
		wallet_message(error, "cannot create host secret directory %s: %s", directory,
			       keystore_error_message(ret));
		return ret;
	}
	ret = strict_modes_check_directory(directory, "host secret directory", error);
	if (ret < 0)
		return ret;
	if (snprintf(temporary, sizeof(temporary), "%s.tmp-XXXXXX", path) >= (int)sizeof(temporary)) {
		wallet_message(error, "cannot create host secret %s: its path is too long", path);
		return -ENAMETOOLONG;
	}
	secret = secure_alloc(HOST_SECRET_SIZE);
	if (!secret) {
		wallet_message(error, "out of memory creating host secret %s", path);
		return -ENOMEM;
	}
	ret = crypto_random_bytes(secret, HOST_SECRET_SIZE);
	if (ret < 0) {
		wallet_message(error, "cannot draw a host secret: %s", keystore_error_message(ret));
		goto out_free;
	}
	fd = mkostemp(temporary, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		ret = -errno;
		wallet_message(error, "cannot create %s: %s", temporary, keystore_error_message(ret));
		goto out_free;
	}
	ret = pwrite_all(fd, secret, HOST_SECRET_SIZE, 0);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	/* link() never replaces: if another tdekey made the secret meanwhile, that one stays. */
	if (ret == 0 && link(temporary, path) < 0 && errno != EEXIST)
		ret = -errno;
	unlink(temporary);
	if (ret == 0)
		ret = fsync_parent_directory(path);
	if (ret < 0)
		wallet_message(error, "cannot write host secret %s: %s", path, keystore_error_message(ret));
	else
		log_info("created host secret %s for local auto-login wallets; back it up with the "
			 "host, not with the wallets",
			 path);
out_free:
	secure_free(secret);
	return ret;
}

int host_secret_load(uint8_t secret[HOST_SECRET_SIZE], bool create,
		     char error[KEYSTORE_ERROR_SIZE])
{
	const char *directory = host_secret_directory();
	char path[PATH_MAX], subject[PATH_MAX + 16];
	struct stat st;
	size_t done;
	int fd, ret;

	ret = host_secret_path(path);
	if (ret < 0) {
		wallet_message(error, "host secret directory name %s is too long", directory);
		return ret;
	}
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		if (!create) {
			wallet_message(error, "this host has no host secret %s", path);
			return -ENOENT;
		}
		ret = create_secret(directory, path, error);
		if (ret < 0)
			return ret;
	}
	ret = strict_modes_check_directory(directory, "host secret directory", error);
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP)
			wallet_message(error,
				       "host secret %s is a symbolic link: replace it with the file",
				       path);
		else
			wallet_message(error, "cannot open host secret %s: %s", path,
				       keystore_error_message(ret));
		return ret == -ELOOP ? KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES) : ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		wallet_message(error, "cannot stat host secret %s: %s", path, keystore_error_message(ret));
		goto out_close;
	}
	snprintf(subject, sizeof(subject), "host secret %s", path);
	if (!S_ISREG(st.st_mode)) {
		wallet_message(error, "host secret %s is not a regular file", path);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
		goto out_close;
	}
	ret = strict_modes_check_stat(&st, subject, path, error);
	if (ret < 0)
		goto out_close;
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		wallet_message(error,
			       "host secret %s is open to group or others (mode %04o), so they "
			       "can open this host's local auto-login wallets: chmod 600 %s",
			       path, (unsigned)(st.st_mode & 07777), path);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
		goto out_close;
	}
	if (st.st_size != HOST_SECRET_SIZE) {
		wallet_message(error,
			       "host secret %s is damaged (%lld bytes, a host secret has %d); "
			       "restore it from a backup of this host",
			       path, (long long)st.st_size, HOST_SECRET_SIZE);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
		goto out_close;
	}
	ret = pread_full(fd, secret, HOST_SECRET_SIZE, 0, &done);
	if (ret == 0 && done != HOST_SECRET_SIZE)
		ret = -EIO;
	if (ret < 0)
		wallet_message(error, "cannot read host secret %s: %s", path, keystore_error_message(ret));
out_close:
	close(fd);
	return ret;
}
