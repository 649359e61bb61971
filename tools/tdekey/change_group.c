/*
 * tdekey change-group, and tdekey create --group: a provisioning group that may read the
 * password wallet and its backups (Oracle's keystore owned by a group of DBAs), never the
 * auto-login files, which open without a password and stay 0600.
 *
 * The wallet directory and its backup directory become group G, mode 02750: set-group-ID so
 * that every file a later change writes gets group G from the kernel, and the keystore then
 * writes the password wallet and its backups 0640 there (keystore wallet_file_mode()). Strict
 * modes still hold: nothing is ever group-writable. Each file is opened with O_NOFOLLOW and
 * changed through its descriptor, its group set before its mode, so no file is readable by any
 * group but G at any moment, and a link planted in the directory is never followed.
 */
#include "tools/tdekey/tdekey.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int group_parse(const char *name, gid_t *gid)
{
	struct group *entry = getgrnam(name);
	char *end;
	unsigned long value;

	if (entry) {
		*gid = entry->gr_gid;
		return EXIT_OK;
	}
	errno = 0;
	value = strtoul(name, &end, 10);
	if (*name && !errno && *end == '\0' && value < (unsigned long)INT_MAX && getgrgid(value)) {
		*gid = (gid_t)value;
		return EXIT_OK;
	}
	fprintf(stderr, "tdekey: --group %s: no such group\n", name);
	return EXIT_USAGE;
}

/* One file or directory: group first, then the mode. */
static int regroup(int dirfd, const char *name, const char *where, gid_t gid, bool directory,
		   mode_t mode)
{
	struct stat st;
	int fd, ret = EXIT_OK;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
	if (fd < 0 && errno == ELOOP) {
		fprintf(stderr, "tdekey: %s/%s is a symbolic link, never followed; remove it (nothing "
				"more was changed)\n",
			where, name);
		return EXIT_PERMISSIONS;
	}
	if (fd < 0) {
		fprintf(stderr, "tdekey: cannot open %s/%s: %s\n", where, name, strerror(errno));
		return EXIT_ERROR;
	}
	if (fstat(fd, &st) < 0 || !(directory ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		fprintf(stderr,
			"tdekey: %s/%s is not a %s owned by root or you and writable by no one "
			"else; nothing more was changed\n",
			where, name, directory ? "directory" : "regular file");
		ret = EXIT_PERMISSIONS;
	} else if (fchown(fd, (uid_t)-1, gid) < 0 || fchmod(fd, mode) < 0) {
		fprintf(stderr, "tdekey: cannot give %s/%s to the group: %s\n", where, name,
			strerror(errno));
		ret = EXIT_ERROR;
	}
	close(fd);
	return ret;
}

static bool is_password_backup(const char *name)
{
	size_t len = strlen(name);

	return strncmp(name, "password-", 9) == 0 && len > 16 &&
	       strcmp(name + len - 7, ".wallet") == 0;
}

int group_apply(const char *wallet, gid_t gid, size_t *files)
{
	struct wallet_paths paths;
	struct dirent *entry;
	char backup[PATH_MAX];
	int dirfd, ret;
	DIR *dir;

	*files = 0;
	if (wallet_paths_init(wallet, &paths) < 0)
		return report_failure(-ENAMETOOLONG, "wallet directory name is too long");
	dirfd = open(paths.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "tdekey: cannot open wallet directory %s: %s\n", paths.dir,
			strerror(errno));
		return EXIT_NO_WALLET;
	}
	/* The directory first: its files are still 0600 while the group gains the way in. */
	ret = regroup(dirfd, ".", paths.dir, gid, true, 02750);
	if (ret == EXIT_OK && faccessat(dirfd, WALLET_PASSWORD_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		ret = regroup(dirfd, WALLET_PASSWORD_FILE, paths.dir, gid, false, 0640);
		*files += ret == EXIT_OK;
	}
	if (ret == EXIT_OK && faccessat(dirfd, "backup", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		ret = regroup(dirfd, "backup", paths.dir, gid, true, 02750);
	close(dirfd);
	if (ret)
		return ret;
	snprintf(backup, sizeof(backup), "%s", paths.backup_dir);
	dirfd = open(backup, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return errno == ENOENT ? EXIT_OK : EXIT_ERROR;
	dir = fdopendir(dirfd);
	if (!dir) {
		close(dirfd);
		return EXIT_ERROR;
	}
	while (ret == EXIT_OK && (entry = readdir(dir))) {
		if (!is_password_backup(entry->d_name))
			continue; /* auto-login and store backups stay 0600, their group unchanged */
		ret = regroup(dirfd, entry->d_name, backup, gid, false, 0640);
		*files += ret == EXIT_OK;
	}
	closedir(dir);
	return ret;
}

static int run(const struct options *options)
{
	struct wallet_session *session;
	size_t files;
	gid_t gid;
	int ret;

	if (!options->group) {
		fprintf(stderr, "tdekey change-group: --group G is required\nTry 'tdekey "
				"change-group --help'.\n");
		return EXIT_USAGE;
	}
	ret = group_parse(options->group, &gid);
	if (ret)
		return ret;
	/* The wallet must open (strict modes, a wallet there); the lock keeps changes out. */
	ret = open_session(options, WALLET_FOR_CHANGE, &session);
	if (ret)
		return ret;
	if (wallet_session_kind(session) != WALLET_KIND_PASSWORD) {
		fprintf(stderr,
			"tdekey change-group: wallet %s has no password wallet, and auto-login "
			"files are never given to a group; add one with change-password first\n",
			options->wallet);
		wallet_session_close(session);
		return EXIT_USAGE;
	}
	ret = group_apply(options->wallet, gid, &files);
	wallet_session_close(session);
	if (ret)
		return ret;
	if (options->json) {
		struct json json;

		json_begin(&json, stdout);
		json_string(&json, "wallet_root", options->wallet);
		json_string(&json, "group", options->group);
		json_uint(&json, "gid", gid);
		json_uint(&json, "files", files);
		json_end(&json);
	} else {
		printf("wallet %s: the password wallet and %zu backup%s of it readable by group "
		       "%s (0640, directories 02750); auto-login files stay 0600\n",
		       options->wallet, files - 1, files == 2 ? "" : "s", options->group);
	}
	return EXIT_OK;
}

const struct command command_change_group = {
	.name = "change-group",
	.summary = "let a group read the password wallet and its backups",
	.synopsis = "tdekey change-group --wallet DIR --group G [--password-file FILE |\n"
		    "                           --password-fd N | --password-prompt |\n"
		    "                           --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Gives the password wallet and its backups to group G, mode 0640, so that\n"
		"       the members of a provisioning group can read what opens only with the\n"
		"       password. The wallet directory and DIR/backup become group G, mode 02750\n"
		"       (set-group-ID: files a later change writes get group G, and the password\n"
		"       wallet and its backups are written 0640 again). Auto-login wallets, their\n"
		"       backups and the external store stay 0600: they open without a password.\n"
		"       Nothing becomes group-writable (strict modes). The wallet is opened with\n"
		"       its password first, so a wallet without a password wallet is refused\n"
		"       (exit 2), as are an unknown group (exit 2) and a file that is a link, not\n"
		"       yours or root's, or writable by others (exit 7).\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --group G\n"
		"              A group name or number.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Where the wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              Print wallet_root, group, gid and files (how many were given) as\n"
		"              JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey change-group --wallet /etc/tdefs/wallet --group dba\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
