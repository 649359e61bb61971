/*
 * The TLS wallet (tls_wallet.h): which of its two PKCS#12 files is read, under which password,
 * how a change is written (lock, backups, primary, auto-login copy), and the rules of its
 * content (one client identity whose certificate must be its key's; trusted certificates by
 * fingerprint). PKCS#12 and X.509 themselves are crypto/tls.h's.
 *
 * The directory machinery is the key wallets': wallet_paths_init() names the lock and backup/,
 * wallet_directory_check() applies strict modes to the directory and its ancestors,
 * wallet_lock() serialises writers and wallet_backup_write() keeps the copies. Each TLS file is
 * opened with O_NOFOLLOW and its fstat checked (owner, not writable by others; the auto-login
 * file also not readable by them) before a byte of it is read.
 */
#include "keystore/tls_wallet.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/wallet_internal.h"
#include "util/util.h"

#define TLS_FILE_MAX (1024 * 1024)
#define BACKUP_PREFIX "tls"
#define BACKUP_PREFIX_AUTOLOGIN "tls-autologin"

struct tls_wallet {
	struct wallet_paths paths; /* dir, lock, backup_dir */
	char password_file[PATH_MAX];
	char autologin_file[PATH_MAX];
	const char *read_path;
	bool has_password_file, has_autologin_file;
	char *password; /* secure memory, NUL-terminated; NULL when tls.p12 is absent */
	int lock_fd;
	struct tls_bundle bundle;
};

static int init_paths(struct tls_wallet *wallet, const char *dir, char error[KEYSTORE_ERROR_SIZE])
{
	int ret = wallet_paths_init(dir, &wallet->paths);

	if (ret == 0 && (snprintf(wallet->password_file, PATH_MAX, "%s/%s", wallet->paths.dir,
				  TLS_WALLET_FILE) >= PATH_MAX ||
			 snprintf(wallet->autologin_file, PATH_MAX, "%s/%s", wallet->paths.dir,
				  TLS_WALLET_AUTOLOGIN_FILE) >= PATH_MAX))
		ret = -ENAMETOOLONG;
	if (ret < 0)
		wallet_message(error, "bad TLS wallet directory '%.200s': %s", dir,
			       keystore_error_message(ret));
	return ret;
}

/* The password as PKCS#12 wants it: a C string, in locked memory. */
static int password_string(const struct secret *password, char **out,
			   char error[KEYSTORE_ERROR_SIZE])
{
	if (memchr(password->bytes, '\0', password->len)) {
		wallet_message(error, "a TLS wallet password cannot contain a NUL byte");
		return -EINVAL;
	}
	*out = secure_alloc(password->len + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, password->bytes, password->len);
	return 0;
}

static struct tls_wallet *wallet_new(void)
{
	struct tls_wallet *wallet = calloc(1, sizeof(*wallet));

	if (wallet)
		wallet->lock_fd = -1;
	return wallet;
}

void tls_wallet_close(struct tls_wallet *wallet)
{
	if (!wallet)
		return;
	tls_bundle_release(&wallet->bundle);
	secure_free(wallet->password);
	wallet_unlock(wallet->lock_fd);
	free(wallet);
}

/* Read one TLS file into secure memory, after its owner and mode pass. */
static int read_tls_file(const char *path, bool auto_login, uint8_t **data, size_t *len,
			 char error[KEYSTORE_ERROR_SIZE])
{
	char subject[PATH_MAX + 32];
	struct stat st;
	size_t done = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP) {
			wallet_message(error, "%s is a symbolic link; keep the file itself in the "
					      "TLS wallet directory", path);
			return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
		}
		wallet_message(error, "cannot open TLS wallet %s: %s", path,
			       keystore_error_message(ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		wallet_message(error, "%s is not a regular file", path);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
		goto out_quiet;
	}
	snprintf(subject, sizeof(subject), "TLS wallet file %s", path);
	ret = strict_modes_check_stat(&st, subject, path, error);
	if (ret < 0)
		goto out_quiet;
	if (auto_login && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		wallet_message(error,
			       "auto-login TLS wallet %s is open to group or others (mode %04o), so "
			       "anyone who can read it has the client key; fix with: chmod 600 %s",
			       path, (unsigned)(st.st_mode & 07777), path);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
		goto out_quiet;
	}
	if (st.st_size > TLS_FILE_MAX || st.st_size == 0) {
		wallet_message_damaged(error, path, st.st_size ? "larger than 1 MiB" : "empty");
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
		goto out_quiet;
	}
	*data = secure_alloc((size_t)st.st_size);
	if (!*data) {
		ret = -ENOMEM;
		goto out;
	}
	ret = pread_full(fd, *data, (size_t)st.st_size, 0, &done);
	*len = done;
	if (ret == 0 && done == (size_t)st.st_size)
		goto out_quiet;
	if (ret == 0)
		ret = -EIO;
	secure_free(*data);
	*data = NULL;
out:
	wallet_message(error, "cannot read TLS wallet %s: %s", path, keystore_error_message(ret));
out_quiet:
	close(fd);
	return ret;
}

static int decode_file(struct tls_wallet *wallet, const char *path, const char *password,
		       bool auto_login, char error[KEYSTORE_ERROR_SIZE])
{
	char why[TLS_WHY_SIZE];
	uint8_t *der = NULL;
	size_t len = 0;
	int ret = read_tls_file(path, auto_login, &der, &len, error);

	if (ret < 0)
		return ret;
	ret = tls_pkcs12_decode(der, len, password, &wallet->bundle, why);
	secure_free(der);
	if (ret == -EACCES && !auto_login) {
		wallet_message(error, "wrong password for TLS wallet %s (or the file was altered)",
			       path);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);
	}
	if (ret == -EACCES || ret == -EBADMSG) {
		wallet_message_damaged(error, path, why);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	if (ret < 0)
		wallet_message(error, "cannot read TLS wallet %s: %s", path,
			       keystore_error_message(ret));
	wallet->read_path = path;
	return ret;
}

static int read_password(const struct password_source *source, const char *path,
			 struct tls_wallet *wallet, char error[KEYSTORE_ERROR_SIZE])
{
	struct secret *secret = NULL;
	char prompt[PATH_MAX + 32];
	int ret;

	if (source->kind == PASSWORD_SOURCE_EXTERNAL_STORE) {
		wallet_message(error, "a TLS wallet has no external password store");
		return -EINVAL;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", path);
	ret = password_read(source, prompt, false, &secret, error);
	if (ret == 0)
		ret = password_string(secret, &wallet->password, error);
	secret_free(secret);
	return ret;
}

int tls_wallet_open(const char *dir, bool for_change, const struct password_source *source,
		    struct tls_wallet **out, char error[KEYSTORE_ERROR_SIZE])
{
	struct tls_wallet *wallet = wallet_new();
	int ret;

	if (!wallet)
		return -ENOMEM;
	ret = init_paths(wallet, dir, error);
	if (ret == 0)
		ret = wallet_directory_check(&wallet->paths, error);
	if (ret == 0 && for_change) {
		ret = wallet_lock(&wallet->paths, &wallet->lock_fd, error);
		if (ret == 0)
			wallet_remove_stale_temporaries(&wallet->paths);
	}
	if (ret < 0)
		goto fail;
	wallet->has_password_file = wallet_file_present(wallet->password_file);
	wallet->has_autologin_file = wallet_file_present(wallet->autologin_file);
	if (!wallet->has_password_file && !wallet->has_autologin_file) {
		wallet_message(error, "no TLS wallet in %s (neither %s nor %s); make one with "
				      "tdekey tls create", wallet->paths.dir, TLS_WALLET_FILE,
			       TLS_WALLET_AUTOLOGIN_FILE);
		ret = -ENOENT;
		goto fail;
	}
	/* Reading prefers the auto-login copy, unless a password source was named. */
	if (wallet->has_autologin_file &&
	    (!wallet->has_password_file || (!for_change && !source->explicit))) {
		ret = decode_file(wallet, wallet->autologin_file, "", true, error);
	} else {
		ret = read_password(source, wallet->password_file, wallet, error);
		if (ret == 0)
			ret = decode_file(wallet, wallet->password_file, wallet->password, false,
					  error);
	}
	if (ret < 0)
		goto fail;
	*out = wallet;
	return 0;
fail:
	tls_wallet_close(wallet);
	return ret;
}

const struct tls_bundle *tls_wallet_content(const struct tls_wallet *wallet)
{
	return &wallet->bundle;
}

const char *tls_wallet_path(const struct tls_wallet *wallet)
{
	return wallet->read_path;
}

bool tls_wallet_has_autologin(const struct tls_wallet *wallet)
{
	return wallet->has_autologin_file;
}

int tls_wallet_set_key(struct tls_wallet *wallet, struct tls_key *key, struct tls_cert *cert,
		       char error[KEYSTORE_ERROR_SIZE])
{
	if (wallet->bundle.cert) {
		wallet_message(error,
			       "TLS wallet %s already holds a client certificate; remove it first "
			       "(tdekey tls remove --user-cert)", wallet->paths.dir);
		return -EEXIST;
	}
	tls_key_free(wallet->bundle.key);
	wallet->bundle.key = key;
	wallet->bundle.cert = cert;
	return 0;
}

int tls_wallet_set_cert(struct tls_wallet *wallet, const struct tls_cert *cert, const char *source,
			char error[KEYSTORE_ERROR_SIZE])
{
	struct tls_cert *copy;

	if (!wallet->bundle.key) {
		wallet_message(error, "TLS wallet %s holds no client key; make one with tdekey tls "
				      "request first", wallet->paths.dir);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
	}
	if (!tls_cert_matches_key(cert, wallet->bundle.key)) {
		wallet_message(error, "the certificate in %s is not for the client key of TLS "
				      "wallet %s; refusing it", source, wallet->paths.dir);
		return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_MISMATCH);
	}
	copy = tls_cert_dup(cert);
	if (!copy)
		return -ENOMEM;
	tls_cert_free(wallet->bundle.cert);
	wallet->bundle.cert = copy;
	return 0;
}

int tls_wallet_trust(struct tls_wallet *wallet, const struct tls_cert *cert,
		     char error[KEYSTORE_ERROR_SIZE])
{
	struct tls_cert_info info, other;
	int ret = tls_cert_info(cert, &info);

	for (size_t i = 0; ret == 0 && i < wallet->bundle.trusted_count; i++) {
		ret = tls_cert_info(wallet->bundle.trusted[i], &other);
		if (ret == 0 && strcmp(info.fingerprint, other.fingerprint) == 0) {
			wallet_message(error, "%s (%s) is trusted already", info.subject,
				       info.fingerprint);
			return -EEXIST;
		}
	}
	return ret ? ret : tls_bundle_add_trusted(&wallet->bundle, cert);
}

bool tls_fingerprint_matches(const char *given, const char *fingerprint)
{
	/* Colons are optional and case does not matter; every hex digit must be there. */
	while (*given || *fingerprint) {
		if (*given == ':') {
			given++;
			continue;
		}
		if (*fingerprint == ':') {
			fingerprint++;
			continue;
		}
		if (!*given || !*fingerprint ||
		    toupper((unsigned char)*given) != toupper((unsigned char)*fingerprint))
			return false;
		given++;
		fingerprint++;
	}
	return true;
}

int tls_wallet_remove_trusted(struct tls_wallet *wallet, const char *match, size_t *removed,
			      char error[KEYSTORE_ERROR_SIZE])
{
	size_t i = 0;
	int ret;

	*removed = 0;
	while (i < wallet->bundle.trusted_count) {
		struct tls_cert_info info;

		ret = tls_cert_info(wallet->bundle.trusted[i], &info);
		if (ret < 0)
			return ret;
		if (strcmp(info.subject, match) == 0 ||
		    tls_fingerprint_matches(match, info.fingerprint)) {
			tls_bundle_remove_trusted(&wallet->bundle, i);
			(*removed)++;
			continue;
		}
		i++;
	}
	if (*removed == 0) {
		wallet_message(error, "no trusted certificate of TLS wallet %s has the subject or "
				      "fingerprint '%.200s'", wallet->paths.dir, match);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
	}
	return 0;
}

int tls_wallet_remove_identity(struct tls_wallet *wallet, char error[KEYSTORE_ERROR_SIZE])
{
	if (!wallet->bundle.cert && !wallet->bundle.key) {
		wallet_message(error, "TLS wallet %s holds no client certificate", wallet->paths.dir);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
	}
	tls_cert_free(wallet->bundle.cert);
	tls_key_free(wallet->bundle.key);
	wallet->bundle.cert = NULL;
	wallet->bundle.key = NULL;
	return 0;
}

/* One more than the generation of the newest backup with prefix: backups sort by it. */
static uint64_t next_generation(const struct tls_wallet *wallet, const char *prefix)
{
	char newest[PATH_MAX];
	const char *g;

	if (wallet_newest_backup(wallet->paths.backup_dir, prefix, newest) < 0)
		return 1;
	g = strrchr(newest, '/');
	g = g ? g : newest;
	for (const char *p = g; (p = strstr(p, "-g")) != NULL; p += 2)
		if (isdigit((unsigned char)p[2]))
			g = p + 2;
	return strtoull(g, NULL, 10) + 1;
}

static int backup_file(struct tls_wallet *wallet, const char *path, const char *prefix,
		       bool auto_login, char written[PATH_MAX], char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t *bytes = NULL;
	size_t len = 0;
	int ret = read_tls_file(path, auto_login, &bytes, &len, error);

	if (ret < 0)
		return ret;
	ret = wallet_backup_write(wallet->paths.backup_dir, prefix, next_generation(wallet, prefix),
				  NULL, bytes, len, written, error);
	secure_free(bytes);
	return ret;
}

static int write_file(const struct tls_bundle *bundle, const char *path, const char *password,
		      char error[KEYSTORE_ERROR_SIZE])
{
	char why[TLS_WHY_SIZE];
	uint8_t *der = NULL;
	size_t len = 0;
	int ret = tls_pkcs12_encode(bundle, password, &der, &len, why);

	if (ret < 0) {
		wallet_message(error, "cannot encode TLS wallet %s: %s", path, why);
		return ret;
	}
	fault_point("tls_wallet_write");
	ret = wallet_write_bytes(path, der, len, error);
	secure_free(der);
	return ret;
}

int tls_wallet_commit(struct tls_wallet *wallet, char backup[PATH_MAX],
		      char error[KEYSTORE_ERROR_SIZE])
{
	char other[PATH_MAX];
	int ret = 0;

	backup[0] = '\0';
	/* Backups first: a crash after them leaves the old files and their copies. */
	if (wallet->has_password_file)
		ret = backup_file(wallet, wallet->password_file, BACKUP_PREFIX, false, backup,
				  error);
	if (ret == 0 && wallet->has_autologin_file)
		ret = backup_file(wallet, wallet->autologin_file, BACKUP_PREFIX_AUTOLOGIN, true,
				  backup[0] ? other : backup, error);
	if (ret == 0 && wallet->has_password_file)
		ret = write_file(&wallet->bundle, wallet->password_file, wallet->password, error);
	if (ret == 0 && wallet->has_autologin_file)
		ret = write_file(&wallet->bundle, wallet->autologin_file, "", error);
	return ret;
}

static int make_directory(const char *dir, char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	int ret;

	if (mkdir(dir, 0700) == 0)
		return fsync_parent_directory(dir);
	ret = -errno;
	if (ret == -EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	wallet_message(error, "cannot create TLS wallet directory %s: %s", dir,
		       keystore_error_message(ret == -EEXIST ? -ENOTDIR : ret));
	return ret == -EEXIST ? -ENOTDIR : ret;
}

int tls_wallet_create(const char *dir, const struct secret *password, bool auto_login,
		      char error[KEYSTORE_ERROR_SIZE])
{
	struct tls_wallet *wallet = wallet_new();
	int ret;

	if (!wallet)
		return -ENOMEM;
	if (!password && !auto_login) {
		wallet_message(error, "a TLS wallet without a password must be an auto-login one");
		ret = -EINVAL;
		goto out;
	}
	ret = init_paths(wallet, dir, error);
	if (ret == 0)
		ret = make_directory(wallet->paths.dir, error);
	if (ret == 0)
		ret = wallet_directory_check(&wallet->paths, error);
	if (ret == 0)
		ret = wallet_lock(&wallet->paths, &wallet->lock_fd, error);
	if (ret < 0)
		goto out;
	if (wallet_file_present(wallet->password_file) ||
	    wallet_file_present(wallet->autologin_file)) {
		wallet_message(error, "a TLS wallet already exists in %s", wallet->paths.dir);
		ret = -EEXIST;
		goto out;
	}
	if (mkdir(wallet->paths.backup_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		wallet_message(error, "cannot create %s: %s", wallet->paths.backup_dir,
			       keystore_error_message(ret));
		goto out;
	}
	if (password) {
		ret = password_check_new(password, error);
		if (ret == 0)
			ret = password_string(password, &wallet->password, error);
		if (ret == 0)
			ret = write_file(&wallet->bundle, wallet->password_file, wallet->password,
					 error);
	}
	if (ret == 0 && auto_login)
		ret = write_file(&wallet->bundle, wallet->autologin_file, "", error);
out:
	tls_wallet_close(wallet);
	return ret;
}
