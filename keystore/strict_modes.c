/*
 * Strict modes, as sshd's StrictModes: a wallet is only as safe as the directories above it.
 * Whoever can write the wallet directory, or any directory on the way to it, can replace a
 * wallet file with one of their own (an auto-login wallet under a master key they chose) and
 * have the daemon wrap new files under it. So before anything in a wallet directory is opened,
 * the directory, each of its ancestors up to "/" and every wallet file present must be owned by
 * root or by the user running this program, and writable by nobody else. An ancestor that
 * others may write is accepted only when it has the sticky bit and belongs to root, as /tmp:
 * there others cannot rename, remove or replace an entry they do not own.
 *
 * Symbolic links on the way to the directory are followed (each directory a link lives in is
 * checked, then the directories it leads to), but the final components, the wallet files, the
 * backup directory and the lock file, are looked at with lstat and fstat and must not be links.
 * Every refusal is one line naming the path and the chmod or chown that fixes it.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool owner_allowed(uid_t owner)
{
	return owner == 0 || owner == geteuid();
}

/* "chown root PATH", or the numeric uid of the user running a non-root program. */
static void chown_fix(char out[64])
{
	uid_t user = geteuid();

	if (user == 0)
		snprintf(out, 64, "chown root");
	else
		snprintf(out, 64, "chown %u", (unsigned)user);
}

static int refuse_owner(const char *subject, const char *path, uid_t owner,
			char error[KEYSTORE_ERROR_SIZE])
{
	char fix[64];

	chown_fix(fix);
	if (geteuid() == 0)
		wallet_message(error, "%s is owned by uid %u, not by root: %s %s", subject,
			       (unsigned)owner, fix, path);
	else
		wallet_message(error,
			       "%s is owned by uid %u, neither root nor uid %u that runs this "
			       "program: %s %s",
			       subject, (unsigned)owner, (unsigned)geteuid(), fix, path);
	return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
}

static int refuse_writable(const char *subject, const char *path, mode_t mode,
			   char error[KEYSTORE_ERROR_SIZE])
{
	bool group = mode & S_IWGRP, others = mode & S_IWOTH;

	wallet_message(error, "%s is writable by %s: chmod %s %s", subject,
		       group && others ? "group and others"
		       : group	       ? "group"
				       : "others",
		       group && others ? "go-w"
		       : group	       ? "g-w"
				       : "o-w",
		       path);
	return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
}

int strict_modes_check_stat(const struct stat *st, const char *subject, const char *path,
			    char error[KEYSTORE_ERROR_SIZE])
{
	if (!owner_allowed(st->st_uid))
		return refuse_owner(subject, path, st->st_uid, error);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return refuse_writable(subject, path, st->st_mode, error);
	return 0;
}

/*
 * One directory on the way to the wallet directory (never the wallet directory itself): owned by
 * root or the user, and writable by others only as a root-owned sticky directory.
 */
static int check_ancestor(const char *directory, const char *what, const char *target,
			  char error[KEYSTORE_ERROR_SIZE])
{
	char subject[PATH_MAX + 128];
	struct stat st;
	int ret;

	if (lstat(directory, &st) < 0) {
		ret = -errno;
		wallet_message(error, "cannot check %s, a parent of %s %s: %s", directory, what,
			       target, keystore_error_message(ret));
		return ret;
	}
	snprintf(subject, sizeof(subject), "%s, a parent of %s %s,", directory, what, target);
	if (!owner_allowed(st.st_uid))
		return refuse_owner(subject, directory, st.st_uid, error);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !((st.st_mode & S_ISVTX) && st.st_uid == 0))
		return refuse_writable(subject, directory, st.st_mode, error);
	return 0;
}

/*
 * Check a canonical absolute path (no links, no "." or "..") from "/" down: every component is
 * an ancestor, and the last one too unless it is the directory itself (last_is_target).
 */
static int check_chain(const char *resolved, bool last_is_target, const char *what,
		       const char *target, char error[KEYSTORE_ERROR_SIZE])
{
	char prefix[PATH_MAX], subject[PATH_MAX + 64];
	size_t len = strlen(resolved);
	struct stat st;
	int ret;

	if (len >= sizeof(prefix)) {
		wallet_message(error, "cannot check %s %s: its path is too long", what, target);
		return -ENAMETOOLONG;
	}
	ret = check_ancestor("/", what, target, error);
	for (size_t i = 1; ret == 0 && i <= len; i++) {
		if (i < len && resolved[i] != '/')
			continue;
		if (i == len && resolved[len - 1] == '/')
			break; /* "/" itself, checked above */
		memcpy(prefix, resolved, i);
		prefix[i] = '\0';
		if (i < len || !last_is_target) {
			ret = check_ancestor(prefix, what, target, error);
			continue;
		}
		if (lstat(prefix, &st) < 0) {
			ret = -errno;
			wallet_message(error, "cannot check %s %s: %s", what, prefix,
				       keystore_error_message(ret));
			return ret;
		}
		snprintf(subject, sizeof(subject), "%s %s", what, prefix);
		ret = strict_modes_check_stat(&st, subject, prefix, error);
	}
	return ret;
}

int strict_modes_check_directory(const char *directory, const char *what,
				 char error[KEYSTORE_ERROR_SIZE])
{
	char absolute[PATH_MAX], resolved[PATH_MAX];
	size_t len;
	int ret;

	if (directory[0] == '/') {
		if (strlen(directory) >= sizeof(absolute)) {
			wallet_message(error, "cannot check %s %s: its path is too long", what,
				       directory);
			return -ENAMETOOLONG;
		}
		strcpy(absolute, directory);
	} else {
		if (!getcwd(absolute, sizeof(absolute))) {
			ret = -errno;
			wallet_message(error, "cannot check %s %s: getcwd: %s", what, directory,
				       keystore_error_message(ret));
			return ret;
		}
		len = strlen(absolute);
		if (snprintf(absolute + len, sizeof(absolute) - len, "/%s", directory) >=
		    (int)(sizeof(absolute) - len)) {
			wallet_message(error, "cannot check %s %s: its path is too long", what,
				       directory);
			return -ENAMETOOLONG;
		}
	}
	/*
	 * Every directory a name is looked up in matters, links included: for each prefix of the
	 * path as given, the directory it resolves to and all of that one's ancestors. The last
	 * prefix is the directory itself, which must not be writable by others at all.
	 */
	len = strlen(absolute);
	for (size_t i = 1; i <= len; i++) {
		bool last = i == len;
		char saved;

		if (!last && absolute[i] != '/')
			continue;
		saved = absolute[i];
		absolute[i] = '\0';
		if (!realpath(absolute, resolved)) {
			ret = -errno;
			wallet_message(error, "cannot check %s %s: %s: %s", what, directory,
				       absolute, keystore_error_message(ret));
			absolute[i] = saved;
			return ret;
		}
		absolute[i] = saved;
		ret = check_chain(resolved, last, what, directory, error);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * One entry of the wallet directory, when present: not a link, of the right type, safe. A file
 * that opens without a password (secret_kind names it) is refused for any access by group or
 * others, with the chmod 600 that fixes reading and writing at once.
 */
static int check_entry(const char *path, bool directory, const char *secret_kind,
		       char error[KEYSTORE_ERROR_SIZE])
{
	char subject[PATH_MAX + 32];
	struct stat st;
	int ret;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		wallet_message(error, "cannot check %s: %s", path, keystore_error_message(ret));
		return ret;
	}
	if (S_ISLNK(st.st_mode)) {
		wallet_message(error,
			       "%s is a symbolic link; keep the %s itself in the wallet directory "
			       "(changes replace it by rename): replace the link with the %s",
			       path, directory ? "directory" : "file",
			       directory ? "directory" : "file");
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	}
	if (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		wallet_message(error, "%s is not a %s; move it out of the wallet directory", path,
			       directory ? "directory" : "regular file");
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	}
	snprintf(subject, sizeof(subject), "%s %s", directory ? "backup directory" : "wallet file",
		 path);
	if (secret_kind && owner_allowed(st.st_uid) && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		wallet_message(error,
			       "%s %s is open to group or others (mode %04o), so anyone who can read "
			       "it has the keys; fix with: chmod 600 %s",
			       secret_kind, path, (unsigned)(st.st_mode & 07777), path);
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	}
	return strict_modes_check_stat(&st, subject, path, error);
}

int wallet_directory_check(const struct wallet_paths *paths, char error[KEYSTORE_ERROR_SIZE])
{
	const struct {
		const char *path;
		const char *secret_kind; /* opens without a password */
	} files[] = {
		{ paths->password, NULL },
		{ paths->autologin, "auto-login wallet" },
		{ paths->local_autologin, "local auto-login wallet" },
		{ paths->hsm, NULL },
		{ paths->external_store, "external password store" },
		{ paths->lock, NULL },
	};
	int ret;

	ret = strict_modes_check_directory(paths->dir, "wallet directory", error);
	for (size_t i = 0; ret == 0 && i < sizeof(files) / sizeof(files[0]); i++)
		ret = check_entry(files[i].path, false, files[i].secret_kind, error);
	if (ret == 0)
		ret = check_entry(paths->backup_dir, true, NULL, error);
	return ret;
}

int wallet_directory_open(const char *dir, struct wallet_paths *paths,
			  char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	int ret;

	ret = wallet_paths_init(dir, paths);
	if (ret < 0) {
		wallet_message(error, "wallet directory name is too long or empty");
		return ret;
	}
	if (stat(paths->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		wallet_message(error, "no wallet in %s: no such directory", paths->dir);
		return -ENOENT;
	}
	return wallet_directory_check(paths, error);
}
