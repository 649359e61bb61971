/*
 * The wallet directory: where each file lives, the lock that serialises changes, the backup
 * folder and its file names, and the damage message that points at the newest backup.
 *
 * Backups are named <prefix>-<UTC time>-g<generation>[-<backup ID>].wallet, for example
 * backup/password-20250114T093012Z-g7-before_q1_rotation.wallet, so that a DBA can pick one by
 * eye and "newest" is decided by the name (time, then generation) rather than by file times,
 * which a copy between hosts does not preserve.
 */
#include "keystore/wallet_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/keystore_kind.h"
#include "util/util.h"

#define BACKUP_SUFFIX ".wallet"
#define BACKUP_TIME_SIZE 16 /* YYYYmmddTHHMMSSZ */

static int join_path(char out[PATH_MAX], const char *dir, const char *name)
{
	size_t dir_len = strlen(dir);

	/* "dir/" and "dir" name the same directory; do not print "dir//file". */
	while (dir_len > 1 && dir[dir_len - 1] == '/')
		dir_len--;
	if (snprintf(out, PATH_MAX, "%.*s/%s", (int)dir_len, dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int wallet_paths_init(const char *dir, struct wallet_paths *paths)
{
	size_t len = strlen(dir);
	int ret = 0;

	memset(paths, 0, sizeof(*paths));
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(paths->dir) - 64)
		return -ENAMETOOLONG;
	strcpy(paths->dir, dir);
	while (len > 1 && paths->dir[len - 1] == '/')
		paths->dir[--len] = '\0';
	for (size_t i = 0; i < keystore_kind_count() && ret == 0; i++) {
		const struct keystore_kind *kind = keystore_kind_at(i);

		ret = join_path((char *)paths + kind->paths_offset, dir, kind->file);
	}
	ret = ret ? ret : join_path(paths->external_store, dir, WALLET_EXTERNAL_STORE_FILE);
	ret = ret ? ret : join_path(paths->backup_dir, dir, WALLET_BACKUP_DIRECTORY);
	ret = ret ? ret : join_path(paths->lock, dir, WALLET_LOCK_FILE);
	return ret;
}

const char *wallet_paths_of_kind(const struct wallet_paths *paths, enum wallet_kind kind)
{
	const struct keystore_kind *entry = keystore_kind_of(kind);

	return entry ? keystore_kind_path(entry, paths) : paths->password;
}

int64_t wallet_now(void)
{
	return (int64_t)time(NULL);
}

bool wallet_file_present(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

const char *wallet_backup_prefix(const char *path)
{
	const char *name = base_name(path);

	for (size_t i = 0; i < keystore_kind_count(); i++)
		if (strcmp(name, keystore_kind_at(i)->file) == 0)
			return keystore_kind_at(i)->backup_prefix;
	if (strcmp(name, WALLET_EXTERNAL_STORE_FILE) == 0)
		return "external-store";
	return "";
}

/* Where backups of a file are kept: its directory's backup/, or that folder for a backup. */
static void backup_dir_for(const char *path, char out[PATH_MAX])
{
	const char *name = base_name(path);
	size_t dir_len = (size_t)(name - path);
	const char *parent_name;
	char parent[PATH_MAX];

	if (dir_len == 0) {
		snprintf(out, PATH_MAX, "%s", WALLET_BACKUP_DIRECTORY);
		return;
	}
	snprintf(parent, sizeof(parent), "%.*s", (int)(dir_len - 1), path);
	parent_name = base_name(parent);
	if (strcmp(parent_name, WALLET_BACKUP_DIRECTORY) == 0)
		snprintf(out, PATH_MAX, "%s", parent);
	else if (join_path(out, dir_len > 1 ? parent : "/", WALLET_BACKUP_DIRECTORY) < 0)
		out[0] = '\0';
}

/*
 * Split a backup name into prefix length, time stamp and generation. The time stamp is found as
 * "-YYYYmmddTHHMMSSZ-g<digits>", which no prefix contains.
 */
static bool parse_backup_name(const char *name, size_t *prefix_len,
			      char stamp[BACKUP_TIME_SIZE + 1], unsigned long long *generation)
{
	static const char pattern[] = "-DDDDDDDDTDDDDDDZ-g";
	size_t len = strlen(name), pattern_len = sizeof(pattern) - 1;

	if (len < strlen(BACKUP_SUFFIX) ||
	    strcmp(name + len - strlen(BACKUP_SUFFIX), BACKUP_SUFFIX) != 0)
		return false;
	for (size_t i = 0; i + pattern_len < len; i++) {
		size_t j;

		for (j = 0; j < pattern_len; j++) {
			char c = name[i + j];

			if (pattern[j] == 'D' ? (c < '0' || c > '9') : c != pattern[j])
				break;
		}
		if (j < pattern_len || name[i + pattern_len] < '0' || name[i + pattern_len] > '9')
			continue;
		*prefix_len = i;
		memcpy(stamp, name + i + 1, BACKUP_TIME_SIZE);
		stamp[BACKUP_TIME_SIZE] = '\0';
		*generation = strtoull(name + i + pattern_len, NULL, 10);
		return true;
	}
	return false;
}

int wallet_newest_backup(const char *backup_dir, const char *kind_prefix, char out[PATH_MAX])
{
	char best_stamp[BACKUP_TIME_SIZE + 1] = "", best_name[NAME_MAX + 1] = "";
	unsigned long long best_generation = 0;
	struct dirent *entry;
	DIR *dir;

	out[0] = '\0';
	dir = opendir(backup_dir);
	if (!dir)
		return -errno;
	while ((entry = readdir(dir)) != NULL) {
		char stamp[BACKUP_TIME_SIZE + 1];
		unsigned long long generation;
		size_t prefix_len;
		int order;

		if (!parse_backup_name(entry->d_name, &prefix_len, stamp, &generation))
			continue;
		if (*kind_prefix && (prefix_len != strlen(kind_prefix) ||
				     strncmp(entry->d_name, kind_prefix, prefix_len) != 0))
			continue;
		order = strcmp(stamp, best_stamp);
		if (order == 0)
			order = generation > best_generation   ? 1
				: generation < best_generation ? -1
							       : 0;
		if (order == 0)
			order = strcmp(entry->d_name, best_name);
		if (best_name[0] == '\0' || order > 0) {
			strcpy(best_stamp, stamp);
			best_generation = generation;
			snprintf(best_name, sizeof(best_name), "%s", entry->d_name);
		}
	}
	closedir(dir);
	if (best_name[0] == '\0')
		return -ENOENT;
	return join_path(out, backup_dir, best_name);
}

void wallet_message_damaged(char error[KEYSTORE_ERROR_SIZE], const char *path, const char *why)
{
	char backup_dir[PATH_MAX], newest[PATH_MAX];
	const char *prefix = wallet_backup_prefix(path);

	backup_dir_for(path, backup_dir);
	/* Prefer a backup of the same file; any backup beats none. */
	if (wallet_newest_backup(backup_dir, prefix, newest) == 0 ||
	    (*prefix && wallet_newest_backup(backup_dir, "", newest) == 0))
		wallet_message(error, "wallet %s is damaged: %s; newest backup: %s", path, why,
			       newest);
	else
		wallet_message(error, "wallet %s is damaged: %s; newest backup: none in %s", path,
			       why, backup_dir);
}

/*
 * A provisioning group (tdekey create --group, change-group): a directory that is set-group-ID
 * and grants its group read access holds the password wallet, and its backups, at 0640, so the
 * group can read what opens only with the password. Every other file stays 0600: auto-login
 * wallets and the store open without one. Set-group-ID makes the kernel give each new file the
 * directory's group, so the mode never reaches another group.
 */
mode_t wallet_file_mode(const char *directory, bool password_wallet)
{
	struct stat st;

	if (password_wallet && stat(directory, &st) == 0 &&
	    (st.st_mode & (S_ISGID | S_IRGRP)) == (S_ISGID | S_IRGRP))
		return 0640;
	return 0600;
}

static int ensure_directory(const char *path, char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	int ret;

	if (mkdir(path, 0700) == 0) {
		ret = fsync_parent_directory(path);
		if (ret < 0)
			goto out_report_failure;
		return 0;
	}
	ret = -errno;
	if (ret == -EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (ret == -EEXIST)
		ret = -ENOTDIR;
out_report_failure:
	wallet_message(error, "cannot create directory %s: %s", path, keystore_error_message(ret));
	return ret;
}

int wallet_backup_write(const char *backup_dir, const char *prefix, uint64_t generation,
			const char *id, const uint8_t *bytes, size_t len, char written[PATH_MAX],
			char error[KEYSTORE_ERROR_SIZE])
{
	char stamp[BACKUP_TIME_SIZE + 1], name[NAME_MAX + 1], path[PATH_MAX];
	time_t now = time(NULL);
	struct tm utc;
	int ret;

	if (id && !wallet_backup_id_valid(id)) {
		wallet_message(error,
			       "backup ID '%.80s' must be 1 to %d letters, digits, '.', '_' or '-'",
			       id, WALLET_BACKUP_ID_MAX);
		return -EINVAL;
	}
	ret = ensure_directory(backup_dir, error);
	if (ret < 0)
		return ret;
	/* A backup is restored from one day: no one else may be able to swap it meanwhile. */
	ret = strict_modes_check_directory(backup_dir, "backup directory", error);
	if (ret < 0)
		return ret;
	gmtime_r(&now, &utc);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
	/* Two changes within one second on one generation get .2, .3, ...: never overwrite. */
	for (unsigned attempt = 1; attempt < 1000; attempt++) {
		char sequence[16] = "";

		if (attempt > 1)
			snprintf(sequence, sizeof(sequence), ".%u", attempt);
		snprintf(name, sizeof(name), "%s-%s-g%llu%s%s%s%s", prefix, stamp,
			 (unsigned long long)generation, id ? "-" : "", id ? id : "", sequence,
			 BACKUP_SUFFIX);
		ret = join_path(path, backup_dir, name);
		if (ret < 0) {
			wallet_message(error, "backup path in %s is too long", backup_dir);
			return ret;
		}
		if (!wallet_file_present(path))
			break;
	}
	ret = write_file_atomic(path, bytes, len,
				wallet_file_mode(backup_dir, strcmp(prefix, "password") == 0));
	if (ret < 0) {
		wallet_message(error, "cannot write backup %s: %s", path, keystore_error_message(ret));
		return ret;
	}
	snprintf(written, PATH_MAX, "%s", path);
	return 0;
}

int wallet_lock(const struct wallet_paths *paths, int *fd, char error[KEYSTORE_ERROR_SIZE])
{
	int lock_fd, ret;

	lock_fd = open(paths->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0) {
		ret = -errno;
		wallet_message(error, "cannot open lock file %s: %s", paths->lock, keystore_error_message(ret));
		return ret;
	}
	/* Another tdekey changing this wallet: wait for it, its run takes a second at most. */
	while (flock(lock_fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		close(lock_fd);
		wallet_message(error, "cannot lock %s: %s", paths->lock, keystore_error_message(ret));
		return ret;
	}
	*fd = lock_fd;
	return 0;
}

void wallet_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

static bool is_stale_temporary(const char *name, bool in_backup_dir)
{
	static const char *const wallet_files[] = {
		WALLET_PASSWORD_FILE,
		WALLET_AUTOLOGIN_FILE,
		WALLET_LOCAL_AUTOLOGIN_FILE,
		WALLET_EXTERNAL_STORE_FILE,
	};
	const char *marker = strstr(name, ".tmp-");
	char stamp[BACKUP_TIME_SIZE + 1], target[NAME_MAX + 1];
	unsigned long long generation;
	size_t target_len, prefix_len;

	/* write_file_atomic names its temporary "<file>.tmp-XXXXXX". */
	if (!marker || strlen(marker) != strlen(".tmp-XXXXXX"))
		return false;
	target_len = (size_t)(marker - name);
	snprintf(target, sizeof(target), "%.*s", (int)target_len, name);
	if (in_backup_dir)
		return parse_backup_name(target, &prefix_len, stamp, &generation);
	for (size_t i = 0; i < ARRAY_SIZE(wallet_files); i++)
		if (strcmp(target, wallet_files[i]) == 0)
			return true;
	return false;
}

static void remove_temporaries_in(const char *dir_path, bool in_backup_dir)
{
	struct dirent *entry;
	DIR *dir = opendir(dir_path);

	if (!dir)
		return;
	while ((entry = readdir(dir)) != NULL) {
		char path[PATH_MAX];

		if (!is_stale_temporary(entry->d_name, in_backup_dir))
			continue;
		if (join_path(path, dir_path, entry->d_name) == 0 && unlink(path) == 0)
			log_debug("removed %s, left by an interrupted tdekey", path);
	}
	closedir(dir);
}

void wallet_remove_stale_temporaries(const struct wallet_paths *paths)
{
	/* Only called under the lock, so no running writer owns these files. */
	remove_temporaries_in(paths->dir, false);
	remove_temporaries_in(paths->backup_dir, true);
}

int wallet_write_bytes(const char *path, const uint8_t *bytes, size_t len,
		       char error[KEYSTORE_ERROR_SIZE])
{
	char directory[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int ret;

	if (!slash)
		strcpy(directory, ".");
	else if (slash == path)
		strcpy(directory, "/");
	else
		snprintf(directory, sizeof(directory), "%.*s", (int)(slash - path), path);
	ret = write_file_atomic(path, bytes, len,
				wallet_file_mode(directory,
						 strcmp(base_name(path), WALLET_PASSWORD_FILE) == 0));
	if (ret < 0)
		wallet_message(error, "cannot write wallet %s: %s", path, keystore_error_message(ret));
	return ret;
}

int wallet_remove_file(const char *path, char error[KEYSTORE_ERROR_SIZE])
{
	int ret;

	if (unlink(path) < 0 && errno != ENOENT) {
		ret = -errno;
		wallet_message(error, "cannot remove %s: %s", path, keystore_error_message(ret));
		return ret;
	}
	ret = fsync_parent_directory(path);
	if (ret < 0)
		wallet_message(error, "cannot sync the directory of %s: %s", path, keystore_error_message(ret));
	return ret;
}
