/*
 * tdefs: mount a backing directory of ciphertext as a plaintext filesystem, or prepare one
 * (--init). This file is the command line: it checks everything a DBA can get wrong (a
 * directory never initialised, a wallet that is missing, closed, empty or not the one the
 * directory was made with, a read-only backing directory) before anything is mounted, with one
 * line that names the file or option, and then hands over to the FUSE session loop.
 */
#include "fs/daemon.h"
#include "fs/backing_walk.h"
#include "fs/fuse_channel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/rebind.h"
#include "keystore/key_export.h"
#include "keystore/wallet.h"
#include "tools/cli/cli.h"
#include "util/util.h"

struct command_line {
	bool init;
	bool adopt; /* --init --adopt: a directory that holds files, served as plaintext */
	bool rebind;
	bool read_write; /* -o rw given: no falling back to read-only */
	const char *container; /* --init, --rebind: the container recorded in .tdefs.conf */
	bool check;
	bool info;
	bool json;
	bool repair;
	bool foreground;
	bool debug;
	bool nonempty;	 /* -o nonempty: mount over a directory that has files */
	bool recover;	 /* -o recover: unmount a stale mount point (its daemon died) first */
	int tries;	 /* --tries: password prompts on a terminal */
	const char *log_file; /* -o log=FILE: where background lines go when syslog is gone */
	unsigned stop_timeout; /* -o stop_timeout=SECS: how long SIGTERM waits for a busy mount */
	int password_fd;
	bool pin; /* the secret was named --pin-file / --pin-fd (an HSM wallet's PIN) */
	const char *password_file;
	const char *wallet;
	const char *backing;
	const char *mountpoint;
	char *mountpoint_absolute;
	char fuse_options[4096]; /* options passed on to libfuse, comma separated */
};

static const char usage_text[] =
	"Usage: tdefs --init [--adopt] --wallet DIR [--container C] BACKING\n"
	"       tdefs --rebind --wallet DIR [--container C] BACKING\n"
	"       tdefs --wallet DIR [-f] [-o OPTIONS] BACKING MOUNTPOINT\n"
	"       tdefs --check [--wallet DIR] [--repair] [--json] BACKING\n"
	"       tdefs --info [--json] BACKING\n"
	"\n"
	"Mount BACKING, a directory of encrypted files, on MOUNTPOINT as plaintext. Each file is\n"
	"encrypted with its own data key (AES-256-XTS), wrapped by the wallet's master key.\n"
	"\n";

enum {
	OPTION_INIT = 256,
	OPTION_ADOPT,
	OPTION_REBIND,
	OPTION_CONTAINER,
	OPTION_PASSWORD_FILE,
	OPTION_PASSWORD_FD,
	OPTION_PIN_FILE,
	OPTION_PIN_FD,
	OPTION_CHECK,
	OPTION_REPAIR,
	OPTION_INFO,
	OPTION_JSON,
	OPTION_TRIES,
};

/*
 * Every option of tdefs, declared once (tools/cli/cli.h): the parser and the option lines of
 * --help come from it. Which options go together (--repair with --check, ...) is checked after
 * parsing, in parse_command_line(). Adding one: an entry here and its case there.
 */
static const struct cli_option option_table[] = {
	{ "init", 0, NULL, "prepare an empty BACKING for use with the wallet", NULL, OPTION_INIT },
	{ "adopt", 0, NULL,
	  "(--init) BACKING holds files: keep them as they are, served\n"
	  "as plaintext until 'tderekey encrypt' converts them; new\n"
	  "files are encrypted",
	  NULL, OPTION_ADOPT },
	{ "container", 0, "C", "(--init, --rebind) record container C: new files take its key",
	  NULL, OPTION_CONTAINER },
	{ "rebind", 0, NULL, "bind BACKING to wallet DIR once DIR opens every header in it", NULL,
	  OPTION_REBIND },
	{ "check", 0, NULL,
	  "check BACKING without mounting it: config, every header, files\n"
	  "per master key ID (with --wallet: every header unseals); exit 0\n"
	  "clean, 1 problems found. Writes nothing unless --repair is given",
	  NULL, OPTION_CHECK },
	{ "repair", 0, NULL,
	  "with --check: a damaged header copy is restored from the other\n"
	  "(refused while BACKING is mounted; a plain --check may run then,\n"
	  "and reports what it sees of files being written)",
	  NULL, OPTION_REPAIR },
	{ "info", 0, NULL,
	  "show BACKING's config record (format version, cipher suite,\n"
	  "block size, wallet ID, directory ID, container, creation time)\n"
	  "and files per master key ID, read-only, mounted or not",
	  NULL, OPTION_INFO },
	{ "json", 0, NULL,
	  "with --check or --info: one JSON object on stdout instead of\n"
	  "the text (schemas below and in README.md, \"Status views\")",
	  NULL, OPTION_JSON },
	{ "wallet", 'w', "DIR", "wallet directory (also -o wallet=DIR, for fstab)", NULL, 'w' },
	{ "password-file", 0, "F", "read the password wallet's password from F", NULL,
	  OPTION_PASSWORD_FILE },
	{ "password-fd", 0, "N",
	  "read the password wallet's password from descriptor N\n"
	  "(without either, a password wallet is asked for on a terminal)",
	  NULL, OPTION_PASSWORD_FD },
	{ "pin-file", 0, "F", "read an HSM wallet's token PIN from F", NULL, OPTION_PIN_FILE },
	{ "pin-fd", 0, "N",
	  "read an HSM wallet's token PIN from descriptor N (without\n"
	  "either, the wallet's external store, else a terminal prompt)",
	  NULL, OPTION_PIN_FD },
	{ "tries", 0, "N", "password prompts before giving up (default 3; terminal only)", NULL,
	  OPTION_TRIES },
	{ "foreground", 'f', NULL, "stay in the foreground and log to stderr", NULL, 'f' },
	{ "debug", 'd', NULL, "foreground, with libfuse's request trace", NULL, 'd' },
	{ NULL, 'o', "OPTIONS", "comma-separated mount options:", NULL, 'o' },
	/* single-threaded mode, accepted for mount.fuse compatibility only */
	{ NULL, 's', NULL, NULL, NULL, 's' },
	{ "help", 'h', NULL, "this text", NULL, 'h' },
	{ "version", 'V', NULL, "version", NULL, 'V' },
};

/* The mount options and the notes: a string of their own (C11 strings stop at 4095 bytes). */
static const char usage_mount_text[] =
	"       cache=auto      kernel page cache, writeback cache and attribute caching (default);\n"
	"                       ENOSPC, EDQUOT and EFBIG come at fsync or close, not write\n"
	"       cache=writethrough  page cache and attribute caching for reads, every write\n"
	"                       sent at once: write() gets ENOSPC, EDQUOT and EFBIG itself\n"
	"       cache=none      no caching in the kernel: every read, write and lookup goes to\n"
	"                       the daemon (less memory, slower). One daemon serves a BACKING\n"
	"                       at a time: a second mount of it is refused\n"
	"       timeout=SECS    attribute and entry cache time with cache=auto or writethrough\n"
	"                       (default 1)\n"
	"       xattr=on        serve extended attributes, stored on the backing files, and\n"
	"                       POSIX ACLs, enforced by the kernel (default; ACLs are refused\n"
	"                       where the kernel or the backing filesystem cannot)\n"
	"       xattr=off       no extended attributes and no ACLs (EOPNOTSUPP), for a mount\n"
	"                       that must carry none (not a speed setting: suid/sgid and\n"
	"                       capabilities are cleared by the daemon either way)\n"
	"       xattr_security=NAMES  the security.* xattrs served: capability (default),\n"
	"                       a ':'-separated list (capability:selinux), all, or none;\n"
	"                       others are refused (EOPNOTSUPP; reads ENODATA)\n"
	"       ro              read-only mount (required for a read-only BACKING)\n"
	"       rw              writes or nothing: refuse, not fall back to ro, without a key\n"
	"       require_encrypted  refuse (EACCES) the plaintext files of an adopted BACKING\n"
	"                       that 'tderekey encrypt' has not converted\n"
	"       nonempty        mount over a MOUNTPOINT that holds files (refused otherwise:\n"
	"                       the mount would hide them)\n"
	"       recover         unmount MOUNTPOINT first when it is stale (its daemon died:\n"
	"                       'Transport endpoint is not connected')\n"
	"       log=FILE        in the background, log to FILE when syslog cannot be reached\n"
	"       password_file=F  the password wallet's password from file F, as\n"
	"                       --password-file (for fstab, which has no command line)\n"
	"       stop_timeout=SECS  on SIGTERM/SIGINT/SIGHUP, how long to retry a normal unmount\n"
	"                       of a busy mount (default 60); it is never detached\n"
	"       metrics=FILE    keep FILE current with the Prometheus metrics (for\n"
	"                       node_exporter's textfile collector; its directory must be\n"
	"                       writable by root or you alone)\n"
	"       metrics_interval=SECS  how often FILE is rewritten (default 15)\n"
	"       key_cache=SECS  keep the DEKs of closed files in locked memory for up to SECS\n"
	"                       (0-86400, default 0: off), so that files reopened while the\n"
	"                       keystore is closed ('tderekey close') still open\n"
	"       kmip_poll=SECS  a KMIP wallet: fetch the keys from the key servers every SECS\n"
	"                       seconds too (default 0: on a wallet change or tderekey reload)\n"
	"       hsm_heartbeat=SECS  an HSM wallet: ask the token every SECS (1-86400); while\n"
	"                       it is unreachable open files keep working, opens that need\n"
	"                       it fail with EIO after 5 s, and the daemon reconnects\n"
	"       other options go to FUSE (see fuse(8)); as root, allow_other and\n"
	"       default_permissions are always on\n"
	"\n"
	"BACKING must be owned by the mounting user with mode 0700 (--init makes it so); the\n"
	"daemon's control socket for tderekey is in /run/tdefs (another user's mount:\n"
	"/run/user/UID/tdefs).\n"
	"\n"
	"An auto-login wallet opens without a prompt. In /etc/fstab:\n"
	"  /srv/pgdata.enc /srv/pgdata fuse.tdefs wallet=/etc/tdefs/wallet,nosuid,nodev 0 0\n";

/* The table's lines up to -o, the mount options under it, then the rest of the table. */
static void print_usage(FILE *out)
{
	size_t mount_option = 0;

	while (option_table[mount_option].short_name != 'o')
		mount_option++;
	fputs(usage_text, out);
	cli_print_options(out, option_table, mount_option + 1, NULL, 23);
	fputs(usage_mount_text, out);
	cli_print_options(out, option_table + mount_option + 1,
			  ARRAY_SIZE(option_table) - mount_option - 1, NULL, 23);
	fputc('\n', out);
	cli_print_exit_status(out);
}

/* The --json schemas, after usage_text in --help (one string would pass C11's 4095 bytes). */
static const char json_schema_text[] =
	"\n--json output (numbers, booleans and null as JSON types):\n"
	"         --info:  {backing, mounted_on|null, format_version, cipher_suite,\n"
	"                   cipher_suite_id, block_size, wallet_id, directory_id, container,\n"
	"                   created (epoch s), created_utc, files, empty, damaged,\n"
	"                   rekey_in_progress, files_per_key: [{key_id, files}]}\n"
	"         --check: {backing, wallet_checked, repair, problems: [{path, kind\n"
	"                   (DAMAGED|REPAIRABLE|REPAIRED), reason}], keys: [{key_id, files,\n"
	"                   in_wallet (bool, null without --wallet)}], totals: {files, empty,\n"
	"                   rekey_in_progress, problems, repaired}, complete, clean}\n";

static int append_fuse_option(struct command_line *cmd, const char *option)
{
	size_t used = strlen(cmd->fuse_options);

	if (used + strlen(option) + 2 > sizeof(cmd->fuse_options))
		return -E2BIG;
	if (used)
		strcat(cmd->fuse_options, ",");
	strcat(cmd->fuse_options, option);
	return 0;
}

static int parse_mount_options(struct command_line *cmd, struct tdefs_daemon *daemon, char *list)
{
	char *saveptr = NULL;

	for (char *option = strtok_r(list, ",", &saveptr); option;
	     option = strtok_r(NULL, ",", &saveptr)) {
		if (strncmp(option, "wallet=", 7) == 0) {
			cmd->wallet = option + 7;
		} else if (strcmp(option, "cache=auto") == 0) {
			daemon->cache = CACHE_AUTO;
		} else if (strcmp(option, "cache=writethrough") == 0) {
			daemon->cache = CACHE_WRITETHROUGH;
		} else if (strcmp(option, "cache=none") == 0) {
			daemon->cache = CACHE_NONE;
		} else if (strncmp(option, "cache=", 6) == 0) {
			fprintf(stderr, "tdefs: -o %s: cache must be auto, writethrough or none\n",
				option);
			return -EINVAL;
		} else if (strncmp(option, "timeout=", 8) == 0) {
			char *end;
			double value = strtod(option + 8, &end);
			if (*end || value < 0 || value > 86400 * 365) {
				fprintf(stderr, "tdefs: -o %s: not a number of seconds\n", option);
				return -EINVAL;
			}
			daemon->timeout = value;
		} else if (strcmp(option, "xattr=on") == 0 || strcmp(option, "xattr=off") == 0) {
			daemon->xattr_off = strcmp(option, "xattr=off") == 0;
		} else if (strncmp(option, "xattr=", 6) == 0) {
			fprintf(stderr, "tdefs: -o %s: xattr must be on or off\n", option);
			return -EINVAL;
		} else if (strncmp(option, "xattr_security=", 15) == 0) {
			if (xattr_security_option(daemon, option + 15) < 0) {
				fprintf(stderr,
					"tdefs: -o %s: give all, none or security.* names without "
					"the prefix, separated by ':' (capability:selinux)\n",
					option);
				return -EINVAL;
			}
		} else if (strncmp(option, "password_file=", 14) == 0) {
			/* fstab has no command line: the password file comes as a mount option. */
			if (option[14] != '/') {
				fprintf(stderr, "tdefs: -o %s: give an absolute file name\n", option);
				return -EINVAL;
			}
			cmd->password_file = option + 14;
		} else if (strncmp(option, "stop_timeout=", 13) == 0) {
			char *end;
			unsigned long value = strtoul(option + 13, &end, 10);
			if (!option[13] || *end || value > 86400) {
				fprintf(stderr, "tdefs: -o %s: not a number of seconds (0-86400)\n",
					option);
				return -EINVAL;
			}
			cmd->stop_timeout = (unsigned)value;
		} else if (strncmp(option, "kmip_poll=", 10) == 0) {
			char *end;
			unsigned long value = strtoul(option + 10, &end, 10);
			if (!option[10] || *end || value > 86400) {
				fprintf(stderr, "tdefs: -o %s: not a number of seconds (0-86400)\n",
					option);
				return -EINVAL;
			}
			key_server_poll_seconds = (unsigned)value;
		} else if (strcmp(option, "require_encrypted") == 0) {
			daemon->require_encrypted = true;
		} else if (strcmp(option, "nonempty") == 0) {
			cmd->nonempty = true;
		} else if (strcmp(option, "recover") == 0) {
			cmd->recover = true;
		} else if (strncmp(option, "log=", 4) == 0) {
			if (option[4] != '/') {
				fprintf(stderr, "tdefs: -o %s: give an absolute file name\n", option);
				return -EINVAL;
			}
			cmd->log_file = option + 4;
		} else if (strncmp(option, "metrics=", 8) == 0 ||
			   strncmp(option, "metrics_interval=", 17) == 0) {
			char error[PATH_MAX + 128];

			if ((option[7] == '=' ? metrics_file_option(option + 8, error, sizeof(error))
					      : metrics_interval_option(option + 17, error,
									sizeof(error))) < 0) {
				fprintf(stderr, "tdefs: %s\n", error);
				return -EINVAL;
			}
		} else if (strncmp(option, "hsm_heartbeat=", 14) == 0) {
			char error[128];

			if (hsm_heartbeat_option(option + 14, &hsm_heartbeat_seconds, error,
						 sizeof(error)) < 0) {
				fprintf(stderr, "tdefs: %s\n", error);
				return -EINVAL;
			}
		} else if (strncmp(option, "key_cache=", 10) == 0) {
			char error[128];
			unsigned seconds;

			if (key_cache_option(option + 10, &seconds, error, sizeof(error)) < 0) {
				fprintf(stderr, "tdefs: %s\n", error);
				return -EINVAL;
			}
			key_cache_configure(seconds);
		} else if (strcmp(option, "ro") == 0) {
			daemon->read_only = true;
			append_fuse_option(cmd, option);
		} else if (strcmp(option, "rw") == 0) {
			cmd->read_write = true;
		} else if (strcmp(option, "defaults") == 0 ||
			   strcmp(option, "auto") == 0 || strcmp(option, "noauto") == 0 ||
			   strcmp(option, "_netdev") == 0 || strcmp(option, "nofail") == 0) {
			/* fstab words that mean nothing to FUSE itself */
		} else if (append_fuse_option(cmd, option) < 0) {
			fprintf(stderr, "tdefs: -o: too many options\n");
			return -E2BIG;
		}
	}
	return 0;
}

/*
 * -o recover: a mount point whose daemon died answers every access with ENOTCONN until it is
 * unmounted. fusermount3 does that for any user allowed to (root, or who mounted it); lazily,
 * since programs may still hold files open on the dead mount.
 */
static int recover_stale_mount(const char *mountpoint)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fprintf(stderr, "tdefs: -o recover: unmounted the stale mount on %s\n", mountpoint);
		return 0;
	}
	if (geteuid() == 0 && umount2(mountpoint, MNT_DETACH) == 0) {
		fprintf(stderr, "tdefs: -o recover: unmounted the stale mount on %s\n", mountpoint);
		return 0;
	}
	fprintf(stderr, "tdefs: -o recover: cannot unmount the stale mount on %s\n", mountpoint);
	return -EBUSY;
}

static int parse_command_line(int argc, char **argv, struct command_line *cmd,
			      struct tdefs_daemon *daemon)
{
	struct cli_parser parser;
	char *argument;
	int c;

	cmd->password_fd = -1;
	cmd->tries = CLI_TRIES_DEFAULT;
	if (cli_parser_start(&parser, "tdefs", NULL, option_table, ARRAY_SIZE(option_table), 1) <
	    0)
		return CLI_EXIT_ERROR;
	while ((c = cli_next_option(&parser, argc, argv, &argument)) != CLI_END) {
		switch (c) {
		case OPTION_INIT:
			cmd->init = true;
			break;
		case OPTION_ADOPT:
			cmd->adopt = true;
			break;
		case OPTION_REBIND:
			cmd->rebind = true;
			break;
		case OPTION_CONTAINER:
			/* The wallet's rule, and .tdefs.conf holds all of it (version 2): never cut. */
			if (!wallet_container_valid(argument)) {
				fprintf(stderr,
					"tdefs: --container '%.80s%s': a container name is 1 to %d "
					"letters, digits, '_', '-', '.' or '$'\n",
					argument, strlen(argument) > 80 ? "..." : "", WALLET_CONTAINER_MAX);
				return CLI_EXIT_USAGE;
			}
			cmd->container = argument;
			break;
		case OPTION_CHECK:
			cmd->check = true;
			break;
		case OPTION_REPAIR:
			cmd->repair = true;
			break;
		case OPTION_INFO:
			cmd->info = true;
			break;
		case OPTION_JSON:
			cmd->json = true;
			break;
		case 'w':
			cmd->wallet = argument;
			break;
		case OPTION_PASSWORD_FILE:
		case OPTION_PIN_FILE: /* an HSM wallet's PIN travels as its password does */
			cmd->password_file = argument;
			cmd->pin = c == OPTION_PIN_FILE;
			break;
		case OPTION_PIN_FD:
			cmd->pin = true;
			__attribute__((fallthrough));
		case OPTION_PASSWORD_FD:
			if (cli_parse_fd(argument, &cmd->password_fd) < 0)
				return cli_usage_error("tdefs", NULL, "--%s %s: not a file descriptor",
						       c == OPTION_PIN_FD ? "pin-fd"
									       : "password-fd",
						       argument);
			break;
		case OPTION_TRIES:
			if (cli_parse_tries(argument, &cmd->tries) < 0)
				return cli_usage_error("tdefs", NULL,
						       "--tries %s: give a number from 1 to %d",
						       argument, CLI_TRIES_MAX);
			break;
		case 'f':
			cmd->foreground = true;
			break;
		case 'd':
			cmd->debug = cmd->foreground = true;
			break;
		case 'o':
			if (parse_mount_options(cmd, daemon, argument) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 's':
			/* single-threaded mode is accepted for mount.fuse compatibility only */
			break;
		case 'h':
			print_usage(stdout);
			fputs(json_schema_text, stdout);
			exit(0);
		case 'V':
			printf("tdefs %s (%s, libfuse %s)\n", "0.1.0", crypto_backend_version(),
			       fuse_pkgversion());
			exit(0);
		default: /* CLI_REFUSED: the line is printed */
			return CLI_EXIT_USAGE;
		}
	}
	bool one_directory = cmd->init || cmd->check || cmd->info || cmd->rebind;

	if (cmd->rebind && (cmd->init || cmd->check || cmd->info)) {
		fprintf(stderr, "tdefs: --rebind goes alone with --wallet (not --init, --check, "
				"--info)\n");
		return CLI_EXIT_USAGE;
	}
	if (cmd->adopt && !cmd->init) {
		fprintf(stderr, "tdefs: --adopt goes with --init (it prepares a directory that holds "
				"files)\n");
		return CLI_EXIT_USAGE;
	}
	if (cmd->container && !cmd->init && !cmd->rebind) {
		fprintf(stderr, "tdefs: --container goes with --init or --rebind (a mount serves the "
				"container its .tdefs.conf names)\n");
		return CLI_EXIT_USAGE;
	}

	if (cmd->repair && !cmd->check) {
		fprintf(stderr, "tdefs: --repair goes with --check\n");
		return CLI_EXIT_USAGE;
	}
	if (cmd->json && !cmd->check && !cmd->info) {
		fprintf(stderr, "tdefs: --json goes with --check or --info\n");
		return CLI_EXIT_USAGE;
	}
	if (cmd->info && (cmd->init || cmd->check || cmd->wallet)) {
		fprintf(stderr, "tdefs: --info takes no --init, --check or --wallet: it reads only "
				"what needs no key\n");
		return CLI_EXIT_USAGE;
	}
	if (argc - cli_operand_index() != (one_directory ? 1 : 2)) {
		fprintf(stderr, "tdefs: %s\n",
			one_directory ? "--init, --rebind, --check and --info take one directory: BACKING"
				      : "expected BACKING and MOUNTPOINT");
		print_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd->backing = argv[cli_operand_index()];
	cmd->mountpoint = one_directory ? NULL : argv[cli_operand_index() + 1];
	/* Daemonising changes to "/": keep the mount point as an absolute path from here on. */
	if (cmd->mountpoint) {
		cmd->mountpoint_absolute = realpath(cmd->mountpoint, NULL);
		if (!cmd->mountpoint_absolute) {
			fprintf(stderr, "tdefs: mount point %s: %s\n", cmd->mountpoint,
				strerror(errno));
			return CLI_EXIT_USAGE;
		}
		cmd->mountpoint = cmd->mountpoint_absolute;
	}
	if (!cmd->wallet && !cmd->check && !cmd->info) {
		fprintf(stderr, "tdefs: no wallet given: use --wallet DIR (or -o wallet=DIR)\n");
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/*
 * A password wallet with no password source named: asked for on the terminal, up to --tries
 * times, but only when tdefs runs on one (never from fstab, a unit or a script) and the wallet
 * has no external password store (which is what answers then). The password goes from locked
 * memory through a pipe to the keystore's descriptor reader, never through a file or argv.
 */
static bool may_prompt(const struct command_line *cmd)
{
	struct wallet_paths paths;

	if (cmd->password_file || cmd->password_fd >= 0 || !isatty(STDIN_FILENO))
		return false;
	return wallet_paths_init(cmd->wallet, &paths) == 0 &&
	       access(paths.external_store, F_OK) < 0 && errno == ENOENT;
}

static int open_with_prompt(const struct command_line *cmd, struct keyring **ring,
			    char error[KEYSTORE_ERROR_SIZE])
{
	struct password_source source = { .kind = PASSWORD_SOURCE_PROMPT };
	char prompt[PATH_MAX + 32];
	int ret = KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD);

	snprintf(prompt, sizeof(prompt), "Password for wallet %s: ", cmd->wallet);
	for (int attempt = 1; attempt <= cmd->tries; attempt++) {
		struct secret *password = NULL;
		int pipe_fds[2];

		ret = password_read(&source, prompt, false, &password, error);
		if (ret < 0)
			return ret;
		/* A pipe holds at least 4 KiB, more than SECRET_MAX_SIZE and the newline. */
		if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
			ret = -errno;
			secret_free(password);
			snprintf(error, KEYSTORE_ERROR_SIZE, "cannot pass the password on: %s",
				 strerror(-ret));
			return ret;
		}
		if (write(pipe_fds[1], password->bytes, password->len) != (ssize_t)password->len ||
		    write(pipe_fds[1], "\n", 1) != 1)
			ret = -EIO;
		else
			ret = 0;
		close(pipe_fds[1]);
		secret_free(password);
		if (ret == 0) {
			error[0] = '\0';
			ret = keystore_open_for_mount(cmd->wallet, pipe_fds[0], ring, error);
		}
		close(pipe_fds[0]);
		if (keystore_error_of(ret) != KEYSTORE_ERR_WRONG_PASSWORD)
			return ret;
		if (attempt < cmd->tries)
			fprintf(stderr, "tdefs: wrong password for wallet %s; try again (%d of %d)\n",
				cmd->wallet, attempt + 1, cmd->tries);
	}
	snprintf(error, KEYSTORE_ERROR_SIZE, "wrong password for wallet %s (%d %s)", cmd->wallet,
		 cmd->tries, cmd->tries == 1 ? "try" : "tries");
	return ret;
}

/*
 * The exit code of a wallet that did not open, in the meanings shared with tdekey
 * (tools/cli/cli.h): a script can tell a wrong password from a missing or damaged wallet.
 */
int wallet_exit_code(int error)
{
	switch (keystore_error_of(error)) {
	case KEYSTORE_ERR_WRONG_PASSWORD:
		return CLI_EXIT_WRONG_PASSWORD;
	case KEYSTORE_ERR_DAMAGED:
		return CLI_EXIT_DAMAGED;
	case KEYSTORE_ERR_NEWER_FORMAT:
		return CLI_EXIT_NEWER_FORMAT;
	case KEYSTORE_ERR_UNSAFE_MODES:
		return CLI_EXIT_PERMISSIONS;
	case KEYSTORE_ERR_OTHER_HOST:
		return CLI_EXIT_OTHER_HOST;
	case KEYSTORE_ERR_WRONG_PIN:
		return CLI_EXIT_WRONG_PIN;
	case KEYSTORE_ERR_HSM_MODULE:
		return CLI_EXIT_HSM_MODULE;
	case KEYSTORE_ERR_TOKEN_ABSENT:
		return CLI_EXIT_TOKEN_ABSENT;
	case KEYSTORE_ERR_KEY_NOT_ON_TOKEN:
		return CLI_EXIT_KEY_NOT_ON_TOKEN;
	case KEYSTORE_ERR_TOKEN_MECHANISM:
		return CLI_EXIT_TOKEN_MECHANISM;
	case KEYSTORE_ERR_TOKEN_FAILED:
		return CLI_EXIT_TOKEN_FAILED;
	case KEYSTORE_ERR_KEY_SERVER_UNREACHABLE:
		return CLI_EXIT_KEY_SERVER_UNREACHABLE;
	case KEYSTORE_ERR_KEY_SERVER_REFUSED:
		return CLI_EXIT_KEY_SERVER_REFUSED;
	default:
		break;
	}
	switch (error) {
	case -ENOENT:
		return CLI_EXIT_NO_WALLET;
	case -ENXIO: /* a password is needed and there is no terminal to ask on */
		return CLI_EXIT_WRONG_PASSWORD;
	case -ENOKEY:
		return CLI_EXIT_NO_MASTER_KEY;
	default:
		return CLI_EXIT_ERROR;
	}
}

/* What the last open_wallet() failure exits with (CLI_EXIT_ERROR until one). */
static int wallet_failure = CLI_EXIT_ERROR;

static int open_wallet(const struct command_line *cmd, struct keyring **ring)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	int password_fd = cmd->password_fd;
	int ret;

	/*
	 * A password file (or a regular file behind --password-fd) must belong to root or to us
	 * and be writable by no one else: the daemon would otherwise take its keys from a
	 * password someone else chose.
	 */
	if (cmd->password_file) {
		ret = transport_secret_open_file(cmd->password_file,
						 cmd->pin ? "--pin-file" : "--password-file",
						 &password_fd, error);
		if (ret < 0) {
			fprintf(stderr, "tdefs: %s\n", error);
			wallet_failure = wallet_exit_code(ret);
			return ret;
		}
	} else if (password_fd >= 0 &&
		   (ret = transport_secret_check_fd(password_fd,
						    cmd->pin ? "--pin-fd" : "--password-fd",
						    error)) < 0) {
		fprintf(stderr, "tdefs: %s\n", error);
		wallet_failure = wallet_exit_code(ret);
		return ret;
	}
	ret = keystore_open_for_mount(cmd->wallet, password_fd, ring, error);
	if (cmd->password_file)
		close(password_fd);
	if (password_fd < 0 && keystore_error_of(ret) == KEYSTORE_ERR_WRONG_PASSWORD) {
		if (may_prompt(cmd)) {
			ret = open_with_prompt(cmd, ring, error);
		} else {
			/* Say how to give one (the keystore's text names no options). */
			size_t used = strlen(error);

			snprintf(error + used, KEYSTORE_ERROR_SIZE - used,
				 "; give --password-file FILE or --password-fd N, or run tdefs on "
				 "a terminal to be asked");
		}
	}
	if (ret < 0) {
		fprintf(stderr, "tdefs: %s\n",
			error[0] ? error : keystore_error_message(ret));
		wallet_failure = wallet_exit_code(ret);
	}
	return ret;
}

/*
 * The backing root as a descriptor: symlinks in the path given are resolved first (fstab may
 * name one), then the directory itself is opened without following a symlink, and everything
 * after this works on that descriptor (fstat, the lock, the daemon's root), never on the path
 * again. Returns the descriptor, or -errno after one line naming WHAT ("--init", ...).
 */
static int open_backing_root(const char *backing, const char *what, char **resolved)
{
	int fd;

	*resolved = realpath(backing, NULL);
	if (!*resolved) {
		int error = errno;

		fprintf(stderr, "tdefs: %s %s: %s\n", what, backing, strerror(error));
		return -error;
	}
	fd = open(*resolved, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int error = errno;

		fprintf(stderr, "tdefs: %s %s: %s\n", what, backing,
			error == ENOTDIR || error == ELOOP ? "not a directory" : strerror(error));
		free(*resolved);
		*resolved = NULL;
		return -error;
	}
	return fd;
}

/*
 * One daemon per backing directory: an exclusive flock on the backing root, held as long as the
 * descriptor lives. A lock belongs to the open file description, so the one taken before the
 * mount goes to the background survives fuse_daemonize's fork in the process that stays.
 * --init and --check --repair take it too. A refusal names the mount that holds it.
 */
static int lock_backing(int fd, const char *resolved, const char *what)
{
	struct mount_entry entry;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		/* Holding the lock, no replacement of the config record is in flight. */
		int removed = config_remove_leftovers(fd);

		if (removed > 0)
			log_info("%s %s: removed %d temporary file%s left by an interrupted write of "
				 "the config record or conversion to encrypted files", what, resolved,
				 removed, removed == 1 ? "" : "s");
		return 0;
	}
	if (errno != EWOULDBLOCK) {
		fprintf(stderr, "tdefs: %s %s: cannot lock it: %s\n", what, resolved, strerror(errno));
		return -errno;
	}
	if (mount_find_by_source("fuse.tdefs", resolved, &entry) == 0)
		fprintf(stderr,
			"tdefs: %s %s: refused, it is in use: mounted on %s (one daemon per backing "
			"directory; unmount it first: fusermount3 -u %s)\n",
			what, resolved, entry.mount_point, entry.mount_point);
	else
		fprintf(stderr,
			"tdefs: %s %s: refused, it is in use by another tdefs process (a mount in "
			"another mount namespace, --init or --check --repair)\n",
			what, resolved);
	return -EBUSY;
}

/*
 * The backing directory is the daemon's alone: nobody else may enter it, or they could copy
 * ciphertext from a backup into a backing file of their own and have the daemon decrypt it
 * for them (backing objects carry the owners and modes the mount shows). Owned by the daemon's
 * user, no access for group or others.
 */
static int check_backing_private(int fd, const char *resolved)
{
	uid_t uid = geteuid();
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int error = errno;

		fprintf(stderr, "tdefs: backing directory %s: %s\n", resolved, strerror(error));
		return -error;
	}
	if (st.st_uid != uid) {
		fprintf(stderr,
			"tdefs: backing directory %s is owned by uid %u, not by the daemon's user (uid "
			"%u): its owner could hand its files to anyone; fix: chown %u %s\n",
			resolved, (unsigned)st.st_uid, (unsigned)uid, (unsigned)uid, resolved);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		fprintf(stderr,
			"tdefs: backing directory %s has mode %04o: other users can enter it and swap "
			"ciphertext into files they own; fix: chmod 0700 %s\n",
			resolved, (unsigned)(st.st_mode & 07777), resolved);
		return -EPERM;
	}
	return 0;
}

static int read_config(const char *backing, struct backing_config *config)
{
	char path[PATH_MAX];
	uint8_t *data;
	size_t len;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", backing, CONFIG_FILE_NAME);
	ret = read_small_file(path, 4096, &data, &len);
	if (ret == -ENOENT) {
		fprintf(stderr,
			"tdefs: %s is not a tdefs backing directory (no %s): prepare it with "
			"'tdefs --init --wallet DIR %s'\n",
			backing, CONFIG_FILE_NAME, backing);
		return ret;
	}
	if (ret < 0) {
		fprintf(stderr, "tdefs: cannot read %s: %s\n", path, strerror(-ret));
		return ret;
	}
	ret = config_decode(data, len, config);
	free(data);
	if (ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT))
		fprintf(stderr, "tdefs: %s was written by a newer tdefs (format version too new)\n",
			path);
	else if (ret < 0)
		fprintf(stderr, "tdefs: %s is damaged (bad magic, size or checksum)\n", path);
	return ret;
}

static bool directory_is_empty(int directory)
{
	int fd = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *entry;
	bool empty = true;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while ((entry = readdir(dir))) {
		if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..") &&
		    strcmp(entry->d_name, "lost+found")) {
			empty = false;
			break;
		}
	}
	closedir(dir);
	return empty;
}

struct adopt_walk {
	const char *backing;
	uint8_t marker[PLAINTEXT_MARKER_SIZE];
	uint64_t files;
	int error;
};

static int mark_one(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct adopt_walk *walk = context;

	(void)fd_taken;
	if (entry->kind == BACKING_WALK_ERROR) {
		fprintf(stderr, "tdefs: --init --adopt %s: %s: %s (nothing adopted)\n", walk->backing,
			entry->relative[0] ? entry->relative : ".", strerror(entry->error));
		return -entry->error;
	}
	if (config_reserved_name(entry->relative)) {
		fprintf(stderr, "tdefs: --init --adopt %s: %s is a name tdefs keeps for itself; "
				"rename it first (nothing adopted)\n", walk->backing, entry->relative);
		return -EEXIST;
	}
	/* Only the marker is added: the file's bytes, size and times stay as they are. */
	if (fsetxattr(entry->fd, PLAINTEXT_MARKER_NAME, walk->marker, sizeof(walk->marker), 0) < 0 ||
	    fsync(entry->fd) < 0) {
		int error = errno;

		fprintf(stderr, "tdefs: --init --adopt %s: cannot mark %s as plaintext: %s%s\n",
			walk->backing, entry->relative, strerror(error),
			error == ENOTSUP || error == EOPNOTSUPP
				? " (the backing filesystem must keep trusted.* extended attributes)"
				: "");
		return -error;
	}
	walk->files++;
	return 0;
}

/* --init --adopt: the plaintext marker on every regular file in BACKING (by descriptor). */
static int mark_plaintext_files(int root_fd, const char *backing, const uint8_t directory_id[16])
{
	struct adopt_walk walk = { .backing = backing };
	int ret;

	plaintext_marker_encode(directory_id, walk.marker);
	ret = backing_walk(root_fd, "", O_RDONLY, mark_one, &walk);
	if (ret < 0)
		return ret;
	printf("tdefs: %s: %llu existing files kept as plaintext\n", backing,
	       (unsigned long long)walk.files);
	return 0;
}

static int initialise_backing(const struct command_line *cmd)
{
	struct backing_config config = { 0 };
	uint8_t encoded[CONFIG_FILE_SIZE];
	char path[PATH_MAX];
	char *resolved;
	struct keyring *ring;
	struct stat st;
	bool created = false, new_container = false;
	int fd, ret = 1;

	/* A missing directory is made (its parent must exist), private from the start. */
	if (lstat(cmd->backing, &st) < 0 && errno == ENOENT) {
		if (mkdir(cmd->backing, 0700) < 0) {
			fprintf(stderr, "tdefs: --init %s: cannot create it: %s\n", cmd->backing,
				strerror(errno));
			return 1;
		}
		created = true;
	}
	fd = open_backing_root(cmd->backing, "--init", &resolved);
	if (fd < 0)
		return 1;
	if (lock_backing(fd, resolved, "--init") < 0)
		goto out;
	/* Only "no such file" means there is no config yet: any other failure is said as it is. */
	if (fstatat(fd, CONFIG_FILE_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		fprintf(stderr, "tdefs: --init %s: already a tdefs backing directory\n",
			cmd->backing);
		goto out;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "tdefs: --init %s: cannot check for %s/%s: %s\n", cmd->backing,
			resolved, CONFIG_FILE_NAME, strerror(errno));
		goto out;
	}
	if (!cmd->adopt && !directory_is_empty(fd)) {
		fprintf(stderr,
			"tdefs: --init %s: directory is not empty; existing files would not be "
			"encrypted (copy them in through the mount instead, or keep them as they are "
			"with --init --adopt and convert them online with 'tderekey encrypt')\n",
			cmd->backing);
		goto out;
	}
	if (open_wallet(cmd, &ring) < 0) {
		ret = wallet_failure;
		goto out;
	}
	config.version = CONFIG_FORMAT_VERSION;
	config.cipher_suite = CIPHER_SUITE_AES256_XTS;
	config.block_size = TDEFS_BLOCK_SIZE;
	config.created_time = (uint64_t)time(NULL);
	keyring_wallet_id(ring, config.wallet_id);
	_Static_assert(sizeof(config.container) == WALLET_CONTAINER_MAX + 1,
		       ".tdefs.conf holds every container name a wallet accepts");
	snprintf(config.container, sizeof(config.container), "%s",
		 cmd->container ? cmd->container : keyring_container(ring));
	/*
	 * A container the wallet has no key of yet is recorded all the same (a new container's
	 * directory is made first, its first key next, as 'tdefs --rebind --container' allows);
	 * the mount refuses it until then, and the note below says what to run.
	 */
	new_container = !keyring_has_container(ring, config.container);
	keyring_free(ring);
	/* The daemon's alone from the start: owned by who mounts it (us), closed to others. */
	if (fstat(fd, &st) < 0 || (st.st_uid != geteuid() && fchown(fd, geteuid(), getegid()) < 0)) {
		fprintf(stderr, "tdefs: --init %s: cannot make it owned by uid %u: %s\n",
			cmd->backing, (unsigned)geteuid(), strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0700) < 0) {
		fprintf(stderr, "tdefs: --init %s: chmod 0700: %s\n", cmd->backing, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", resolved, CONFIG_FILE_NAME);
	ret = crypto_random_bytes(config.directory_id, sizeof(config.directory_id));
	if (ret == 0 && cmd->adopt) {
		config.flags = CONFIG_FLAG_ADOPTED;
		if (strlen(config.container) > CONFIG_V1_CONTAINER_SIZE) {
			fprintf(stderr, "tdefs: --init --adopt %s: container name %s is longer than the "
					"%d bytes an adopted directory's config record holds\n",
				cmd->backing, config.container, CONFIG_V1_CONTAINER_SIZE);
			ret = 1;
			goto out;
		}
		/* Every file marked first, the config record last: a crash leaves no backing. */
		if (mark_plaintext_files(fd, cmd->backing, config.directory_id) < 0) {
			ret = 1;
			goto out;
		}
	}
	if (ret == 0)
		ret = config_encode(&config, encoded);
	if (ret == 0)
		ret = write_file_atomic(path, encoded, sizeof(encoded), 0600);
	if (ret < 0) {
		fprintf(stderr, "tdefs: --init: cannot write %s: %s\n", path, strerror(-ret));
		ret = 1;
		goto out;
	}
	if (new_container)
		printf("tdefs: %s is ready (container %s); wallet %s holds no key of container %s "
		       "yet: make its first with 'tdekey set-key --wallet %s --container %s', then "
		       "mount it with 'tdefs --wallet %s %s MOUNTPOINT'\n",
		       cmd->backing, config.container, cmd->wallet, config.container, cmd->wallet,
		       config.container, cmd->wallet, cmd->backing);
	else
		printf("tdefs: %s is ready (container %s); mount it with 'tdefs --wallet %s %s "
		       "MOUNTPOINT'\n",
		       cmd->backing, config.container, cmd->wallet, cmd->backing);
	ret = 0;
out:
	close(fd);
	/* A failed --init leaves no directory it made itself. */
	if (ret != 0 && created && resolved)
		rmdir(resolved);
	free(resolved);
	return ret;
}

/*
 * The backing root, open (O_RDONLY: flock needs more than O_PATH) and locked for as long as the
 * daemon runs; never closed before exit.
 */
static int backing_lock_fd = -1;

/* Everything that can be wrong before mounting, each with its own message. */
static int prepare_mount(struct command_line *cmd, struct tdefs_daemon *daemon)
{
	struct backing_config config;
	uint8_t wallet_id[16], active_id[KEY_ID_SIZE];
	char expected[KEY_ID_TEXT_SIZE], actual[KEY_ID_TEXT_SIZE];
	const uint8_t *mek;
	struct statvfs vfs;
	struct stat st;
	int fd;

	fd = open_backing_root(cmd->backing, "backing directory", &daemon->backing_path);
	if (fd < 0)
		return fd;
	backing_lock_fd = fd;
	/* st is read below (the root's device and inode) only when fstat succeeded. */
	if (fstat(fd, &st) < 0) {
		int error = errno;

		fprintf(stderr, "tdefs: backing directory %s: cannot stat it: %s\n", cmd->backing,
			strerror(error));
		return -error;
	}
	if (lock_backing(fd, daemon->backing_path, "backing directory") < 0)
		return -EBUSY;
	if (read_config(cmd->backing, &config) < 0)
		return -EINVAL;
	daemon->adopted = (config.flags & CONFIG_FLAG_ADOPTED) != 0;
	memcpy(daemon->directory_id, config.directory_id, sizeof(daemon->directory_id));
	if (check_backing_private(fd, daemon->backing_path) < 0)
		return -EPERM;
	if (open_wallet(cmd, &daemon->keyring) < 0)
		return -EINVAL;
	/* A heartbeat asked for on a wallet with no token would watch nothing: refused. */
	if (hsm_heartbeat_seconds > 0 &&
	    keyring_token_watch(daemon->keyring, HSM_OUTAGE_WAIT_SECONDS * 1000) < 0) {
		fprintf(stderr, "tdefs: -o hsm_heartbeat=%u: wallet %s is not an HSM wallet\n",
			hsm_heartbeat_seconds, cmd->wallet);
		wallet_failure = CLI_EXIT_USAGE;
		return -EINVAL;
	}
	keyring_wallet_id(daemon->keyring, wallet_id);
	if (memcmp(wallet_id, config.wallet_id, sizeof(wallet_id)) != 0) {
		key_id_format(config.wallet_id, expected);
		key_id_format(wallet_id, actual);
		fprintf(stderr,
			"tdefs: %s was initialised for wallet ID %s, but wallet %s has ID %s\n",
			cmd->backing, expected, cmd->wallet, actual);
		return -EINVAL;
	}
	/* United mode: this directory's container is the one whose active key wraps new files. */
	if (!keyring_has_container(daemon->keyring, config.container) ||
	    keyring_select_container(daemon->keyring, config.container) < 0) {
		fprintf(stderr,
			"tdefs: %s belongs to container %s, but wallet %s holds no key of that "
			"container (import its keys, or rebind: tdefs --rebind --container C)\n",
			cmd->backing, config.container, cmd->wallet);
		return -ENOKEY;
	}
	/*
	 * No active key for the container (a restore: the headers are under retired or imported
	 * keys): every file still opens, but no new file could be wrapped. Read-only then, unless
	 * -o rw asked for writes, which is refused with what to do; so is a container without a
	 * single key (nothing there could be read either).
	 */
	if (keyring_active(daemon->keyring, active_id, &mek) < 0) {
		bool own = strcmp(config.container, keyring_container(daemon->keyring)) == 0;
		size_t keys = 0;

		for (size_t i = 0; i < keyring_count(daemon->keyring); i++)
			keys += strcmp(keyring_record(daemon->keyring, i)->container,
				       config.container) == 0;
		if (cmd->read_write || keys == 0) {
			fprintf(stderr,
				"tdefs: wallet %s holds no active master key for container %s "
				"(OPEN_NO_MASTER_KEY): new files could not be wrapped; make one with "
				"'tdekey set-key --wallet %s%s%s', or mount without -o rw to read it "
				"read-only\n",
				cmd->wallet, config.container, cmd->wallet, own ? "" : " --container ",
				own ? "" : config.container);
			return -ENOKEY;
		}
		if (!daemon->read_only) {
			fprintf(stderr,
				"tdefs: note: wallet %s holds no active master key for container %s: "
				"mounting read-only; for writes run 'tdekey set-key --wallet %s%s%s' "
				"and mount again\n",
				cmd->wallet, config.container, cmd->wallet, own ? "" : " --container ",
				own ? "" : config.container);
			daemon->read_only = true;
			append_fuse_option(cmd, "ro");
		}
	}
	if (!daemon->read_only &&
	    ((fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) ||
	     faccessat(fd, ".", W_OK, 0) < 0)) {
		fprintf(stderr,
			"tdefs: backing directory %s is read-only: mount with -o ro to use it "
			"read-only\n",
			cmd->backing);
		return -EROFS;
	}
	daemon->wallet_path = realpath(cmd->wallet, NULL);
	daemon->backing_fd = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	daemon->root.path_fd = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (daemon->backing_fd < 0 || daemon->root.path_fd < 0) {
		fprintf(stderr, "tdefs: backing directory %s: %s\n", cmd->backing, strerror(errno));
		return -errno;
	}
	daemon->root.backing_dev = st.st_dev;
	daemon->root.backing_ino = st.st_ino;
	daemon->root.file_type = S_IFDIR;
	daemon->root.lookup_count = 1;
	daemon->root.retired_fd = -1;
	pthread_mutex_init(&daemon->root.crypt_lock, NULL);
	if (daemon->cache == CACHE_NONE)
		daemon->timeout = 0;
	return 0;
}

/*
 * A mount over a directory that holds files hides them (gocryptfs refuses too): refused unless
 * -o nonempty. Read through its own descriptor, before anything else is set up.
 */
static int check_mount_point(const struct command_line *cmd)
{
	int fd;

	/*
	 * A mount whose daemon died answers ENOTCONN until it is unmounted (a stat may still be
	 * answered from the kernel's attribute cache: the open is what tells).
	 */
	fd = open(cmd->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOTCONN) {
		if (!cmd->recover || recover_stale_mount(cmd->mountpoint) < 0) {
			fprintf(stderr,
				"tdefs: mount point %s is stale: the daemon of the mount there is "
				"gone (Transport endpoint is not connected); recover: fusermount3 -u "
				"%s, then mount again (or mount with -o recover)\n",
				cmd->mountpoint, cmd->mountpoint);
			return -ENOTCONN;
		}
		fd = open(cmd->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0) {
		fprintf(stderr, "tdefs: mount point %s: %s\n", cmd->mountpoint, strerror(errno));
		return -errno;
	}
	if (!cmd->nonempty && !directory_is_empty(fd)) {
		close(fd);
		fprintf(stderr,
			"tdefs: mount point %s is not empty: the mount would hide its files; "
			"empty it, or mount with -o nonempty\n",
			cmd->mountpoint);
		return -ENOTEMPTY;
	}
	close(fd);
	return 0;
}

/* The backing path goes into the mount table as the source; commas would split options. */
static void add_fsname(struct command_line *cmd, const struct tdefs_daemon *daemon)
{
	char option[PATH_MAX + 16];
	size_t n = (size_t)snprintf(option, sizeof(option), "fsname=");

	for (const char *p = daemon->backing_path; *p && n + 2 < sizeof(option); p++) {
		if (*p == ',' || *p == '\\')
			option[n++] = '\\';
		option[n++] = *p;
	}
	option[n] = '\0';
	append_fuse_option(cmd, option);
}

static int run_mount(struct command_line *cmd, struct tdefs_daemon *daemon)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop_config;
	struct fuse_session *session;
	char control_error[PATH_MAX + 512];
	int ret = 1;

	if (secure_process_setup(geteuid() == 0) < 0)
		fprintf(stderr, "tdefs: warning: cannot lock memory; keys may reach swap\n");
	/* Creations take the caller's umask (fs/operations.c); the daemon's own is 0. */
	umask(0);
	if (check_mount_point(cmd) < 0)
		goto out_free_keyring;
	if (prepare_mount(cmd, daemon) < 0) {
		ret = wallet_failure; /* CLI_EXIT_ERROR unless the wallet was what failed */
		goto out_free_keyring;
	}
	/* Opened before it is covered: the mount root shows its owner and mode (daemon.h). */
	daemon->mount_point_fd = open(cmd->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (daemon->mount_point_fd < 0) {
		fprintf(stderr, "tdefs: mount point %s: %s\n", cmd->mountpoint, strerror(errno));
		goto out_free_keyring;
	}

	add_fsname(cmd, daemon);
	append_fuse_option(cmd, "subtype=tdefs");
	if (geteuid() == 0)
		append_fuse_option(cmd, "allow_other,default_permissions");
	else
		append_fuse_option(cmd, "default_permissions");
	fuse_opt_add_arg(&args, "tdefs");
	if (cmd->debug)
		fuse_opt_add_arg(&args, "-d");
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, cmd->fuse_options);

	/* Before mounting, so that a refused metrics file fails the mount where it is seen. */
	if (metrics_file_open(control_error, sizeof(control_error)) < 0) {
		fprintf(stderr, "tdefs: %s\n", control_error);
		goto out_free_args;
	}
	session = fuse_session_new(&args, &tdefs_operations, sizeof(tdefs_operations), daemon);
	if (!session)
		goto out_free_args;
	daemon->session = session;
	if (fuse_set_signal_handlers(session) != 0)
		goto out_destroy_session;
	if (fuse_session_mount(session, cmd->mountpoint) != 0)
		goto out_remove_handlers;
	/* The daemon's own reads and writes on /dev/fuse: kill-priv by the kernel's second protocol. */
	if ((ret = fuse_channel_attach(session)) < 0) {
		fprintf(stderr, "tdefs: cannot take over the FUSE channel of %s: %s\n",
			cmd->mountpoint, strerror(-ret));
		ret = 1;
		goto out_unmount;
	}
	ret = 1;
	/*
	 * The control socket is named after the mount's device number, so it is made once mounted,
	 * but before daemonising: the parent exits 0 as soon as the child is set up, so a failure
	 * after that could not reach whoever ran the mount. No mount goes on without its channel:
	 * anyone could otherwise speak for it.
	 */
	if (control_open(cmd->mountpoint, control_error, sizeof(control_error)) < 0) {
		log_error("tdefs: cannot create the control channel of %s: %s; not mounting "
			  "without it", cmd->mountpoint, control_error);
		goto out_unmount;
	}
	/* Before daemonising: a syslog that cannot be reached is said on the terminal. */
	if (!cmd->foreground)
		log_open_background("tdefs", cmd->log_file);
	if (fuse_daemonize(cmd->foreground) != 0)
		goto out_control_stop;
	/* After the fork: the line carries the pid of the daemon that stays. */
	log_info("mounted %s on %s with wallet %s", daemon->backing_path,
		 cmd->mountpoint, daemon->wallet_path);
	/* Page locks are not inherited across the fork of daemonising: take them again. */
	if (!cmd->foreground && geteuid() == 0 && secure_process_setup(true) < 0)
		log_warning("tdefs: cannot lock memory; keys may reach swap");
	/* A PKCS#11 module's sessions stay with the parent: an HSM wallet connects again. */
	if (!cmd->foreground) {
		char token_error[KEYSTORE_ERROR_SIZE] = "";

		if (keyring_after_fork(daemon->keyring, token_error) < 0) {
			log_error("tdefs: %s; unmounting", token_error);
			ret = 1;
			goto out_control_stop;
		}
	}

	/* Before any other thread starts, so that every one inherits the blocked signals. */
	if ((ret = stop_handler_start(cmd->mountpoint, cmd->stop_timeout)) < 0) {
		log_error("cannot start the stop handler of %s: %s; unmounting", cmd->mountpoint,
			  strerror(-ret));
		ret = 1;
		goto out_control_stop;
	}
	/*
	 * After daemonising (the threads must live in the process that stays): the control
	 * channel's thread, and the wallet watcher, which is not needed to serve files (a failure
	 * is logged and the mount goes on).
	 */
	if ((ret = control_start(daemon)) < 0) {
		log_error("tdefs: cannot serve the control channel of %s: %s; unmounting",
			  cmd->mountpoint, strerror(-ret));
		ret = 1;
		goto out_control_stop;
	}
	if (metrics_file_start(daemon) < 0)
		log_warning("tdefs: cannot start the metrics file writer; 'tderekey metrics' "
			    "still answers");
	if (key_cache_start() < 0) {
		key_cache_configure(0);
		log_warning("tdefs: cannot start the key cache's expiry thread; -o key_cache is "
			    "off");
	}
	if (wallet_watch_start(daemon) < 0)
		log_warning("tdefs: cannot watch wallet %s for changes; run 'tderekey reload' after "
			    "a key change", daemon->wallet_path);
	/*
	 * Files whose data rekey was interrupted (a crash, an unmount) are recovered when opened;
	 * a background pass also finishes them, so no file keeps two DEKs for long: the recorded
	 * data rekey going on, or a pass over the interrupted files alone.
	 */
	if (!daemon->read_only) {
		data_rekey_resume_recorded(daemon);
		if (daemon->adopted)
			encrypt_resume_recorded(daemon);
	}
	ret = 1;

	/*
	 * Buffers of up to 1 MiB (libfuse's receive buffers, scratch buffers, the data rekey's
	 * 880 KiB chunks) each get their own mapping, returned to the kernel when freed. With
	 * glibc's sliding threshold they land in the threads' malloc arenas after the first free
	 * and stay resident for good once their thread ends, since locked pages (mlockall above)
	 * are never trimmed: with worker threads that came and went, 67 against 20 MiB of RSS
	 * after a mixed load (docs/PERFORMANCE.md). Rekey job threads still come and go.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	loop_config = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(loop_config, 0);
	/*
	 * Eight worker threads, started on demand and never ended (idle = max). Each keeps a
	 * receive buffer and a scratch buffer of up to 1 MiB, so the count bounds memory (under
	 * 64 MiB with 1,000 open files). Fewer idle than max made libfuse end and start threads
	 * all the time under bursty writeback (450 clone3/s under random writes), each paying
	 * for fresh stacks and buffers: 25 % more daemon CPU on 1 MiB writes. Eight cover two
	 * cores plus requests blocked in fsync (docs/PERFORMANCE.md).
	 */
	fuse_loop_cfg_set_idle_threads(loop_config, 8);
	fuse_loop_cfg_set_max_threads(loop_config, 8);
	ret = fuse_session_loop_mt(session, loop_config) == 0 ? 0 : 1;
	fuse_loop_cfg_destroy(loop_config);
	fuse_channel_detach();
	stop_handler_end();
	control_stop();
	jobs_join_all(daemon);
	wallet_watch_stop();
	metrics_file_stop();
out_control_stop:
	control_stop(); /* nothing left to do when the loop ended: it stopped above */
out_unmount:
	fuse_session_unmount(session);
	log_info("unmounted %s from %s", daemon->backing_path, cmd->mountpoint);
out_remove_handlers:
	fuse_remove_signal_handlers(session);
out_destroy_session:
	fuse_session_destroy(session);
out_free_args:
	fuse_opt_free_args(&args);
	inode_table_clear(daemon);
	/* After the inodes: their last releases no longer add to the cache. */
	key_cache_stop();
out_free_keyring:
	keyring_free(daemon->keyring);
	free(daemon->backing_path);
	free(daemon->wallet_path);
	return ret;
}

/*
 * tdefs --rebind: held to what --init and a mount are (the backing lock, strict modes); the
 * proof and the rewrite of .tdefs.conf are fs/rebind.c's.
 */
static int run_rebind(const struct command_line *cmd)
{
	struct keyring *ring = NULL;
	char *resolved;
	int fd, ret = 1;

	fd = open_backing_root(cmd->backing, "--rebind", &resolved);
	if (fd < 0)
		return 1;
	if (lock_backing(fd, resolved, "--rebind") < 0 || check_backing_private(fd, resolved) < 0)
		goto out;
	if (open_wallet(cmd, &ring) < 0) {
		ret = wallet_failure;
		goto out;
	}
	ret = rebind_backing(fd, cmd->backing, resolved, ring, cmd->wallet, cmd->container);
	keyring_free(ring);
out:
	close(fd);
	free(resolved);
	return ret;
}

/*
 * tdefs --check. With --repair it writes, so it is held to what a mount is: the backing
 * directory's lock (refused while mounted) and its strict modes. A plain --check only reads and
 * may run next to the daemon; it says so, as a file being written may be caught half-way.
 */
static int run_check(const struct command_line *cmd)
{
	struct keyring *ring = NULL;
	struct mount_entry entry;
	char *resolved;
	int fd, ret = CLI_EXIT_BACKING;

	fd = open_backing_root(cmd->backing, "--check", &resolved);
	if (fd < 0)
		return CLI_EXIT_BACKING;
	if (cmd->repair) {
		if (lock_backing(fd, resolved, "--check --repair") < 0 ||
		    check_backing_private(fd, resolved) < 0)
			goto out;
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		bool mounted = mount_find_by_source("fuse.tdefs", resolved, &entry) == 0;

		fprintf(stderr,
			"tdefs: --check %s: note: in use%s%s; checking it read-only next to the "
			"daemon: a file written meanwhile may show as a problem, check again or "
			"unmount before acting on one\n",
			cmd->backing, mounted ? ", mounted on " : " by another tdefs process",
			mounted ? entry.mount_point : "");
	} else {
		/* Not held: a plain check must not keep a mount from starting. */
		flock(fd, LOCK_UN);
	}
	if (cmd->wallet && open_wallet(cmd, &ring) < 0) {
		ret = wallet_failure;
		goto out;
	}
	ret = check_backing(cmd->backing, ring, cmd->repair, cmd->json);
	keyring_free(ring);
out:
	close(fd);
	free(resolved);
	return ret;
}

/*
 * The soft RLIMIT_NOFILE (often 1024) up to the hard one: a process may do that itself, and the
 * daemon's descriptors grow with the files its users hold open (fs/inode_table.c bounds the rest).
 */
static void raise_descriptor_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
			log_warning("tdefs: cannot raise the open-file limit to %llu: %s",
				    (unsigned long long)limit.rlim_max, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	struct command_line cmd = { .stop_timeout = 60 };
	/*
	 * The mount's state (fs/daemon.h): owned here, for the process's life, and handed to
	 * libfuse as the session's userdata and to every thread that needs it; no global.
	 */
	struct tdefs_daemon daemon = {
		.backing_fd = -1,
		.mount_point_fd = -1,
		.keyring_lock = PTHREAD_RWLOCK_INITIALIZER,
		.timeout = 1.0,
	};
	int ret = parse_command_line(argc, argv, &cmd, &daemon);

	if (ret)
		return ret;
	raise_descriptor_limit();
	if (cmd.init) {
		secure_process_setup(false);
		return initialise_backing(&cmd);
	}
	if (cmd.rebind) {
		secure_process_setup(false);
		return run_rebind(&cmd);
	}
	if (cmd.check) {
		secure_process_setup(false);
		return run_check(&cmd);
	}
	if (cmd.info) {
		secure_process_setup(false);
		return info_backing(cmd.backing, cmd.json);
	}
	inode_table_init(&daemon); /* emptied and ended by run_mount's inode_table_clear */
	if (jobs_init(&daemon) < 0) {
		fprintf(stderr, "tdefs: %s\n", strerror(ENOMEM));
		return CLI_EXIT_ERROR;
	}
	ret = run_mount(&cmd, &daemon);
	/* On every path out of run_mount no thread is left that reads a job slot. */
	jobs_end(&daemon);
	free(cmd.mountpoint_absolute);
	return ret;
}
