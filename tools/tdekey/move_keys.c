/*
 * tdekey move-keys and tdekey isolate: take master keys out of one wallet into another, like
 * Oracle's ADMINISTER KEY MANAGEMENT MOVE KEYS and ISOLATE KEYSTORE. Both are an export, an
 * import and a guarded delete done in memory (the records go straight from one key ring into
 * the other through keyring_import(), no export file is written).
 *
 * The order is what makes a crash harmless: the source wallet is locked first and stays locked
 * to the end, the target gets the keys and commits (backup, crash-safe rewrite, copies) before
 * the source loses them in a second commit. A crash in between leaves the keys in both wallets,
 * never in neither; running the command again skips the keys the target already holds and
 * finishes the delete.
 *
 * The delete is delete-key's: every backing directory named with --backing is scanned while the
 * source is locked, and a key any header there references is refused (move-keys: in every
 * directory; isolate: in the directories of other containers, Oracle's ORA-46696). isolate
 * --copy and move-keys never delete a key a header could need without that proof.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/key_export.h"
#include "util/util.h"

/* What one run moves: the records (secure memory) and their IDs. */
struct selection {
	struct mek_record *records;
	uint8_t (*ids)[KEY_ID_SIZE];
	size_t count;
	bool had_active; /* isolate: the container's ACTIVE key is among them */
	uint8_t active_id[KEY_ID_SIZE];
};

static void selection_free(struct selection *selection)
{
	secure_free(selection->records);
	free(selection->ids);
}

static int selection_alloc(struct selection *selection, size_t count)
{
	selection->records = secure_alloc((count + 1) * sizeof(*selection->records));
	selection->ids = calloc(count + 1, KEY_ID_SIZE);
	if (!selection->records || !selection->ids)
		return report_failure(-ENOMEM, "out of memory");
	return EXIT_OK;
}

static bool wallet_present(const char *dir)
{
	struct wallet_paths paths;
	struct stat st;

	if (wallet_paths_init(dir, &paths) < 0)
		return false;
	return lstat(paths.password, &st) == 0 || lstat(paths.autologin, &st) == 0 ||
	       lstat(paths.local_autologin, &st) == 0;
}

/* The same directory for --wallet and --to would lock against itself and move nothing. */
static bool same_directory(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* The target: opened for a change when it holds a wallet, else created as 'tdekey create' does. */
static int open_target(const struct options *options, const char *name, const char *container,
		       struct wallet_session **session, bool *created)
{
	struct wallet_create_options create = {
		.auto_login = options->auto_login || options->local,
		.local = options->local,
		.make_key = false, /* it gets the moved keys and no other */
		.container = container,
		.cost = options->cost,
	};
	struct password_source source = options->to_password;
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_create_result result;
	struct secret *password = NULL;
	int ret = 0, fd = -1;

	*created = !wallet_present(options->to);
	if (*created) {
		if (!create.auto_login || options->to_password_given) {
			ret = transport_secret_read(&options->to_password, "--to-password-file",
						    "New wallet password for --to: ", true, 1,
						    &password, error);
			if (ret < 0)
				return report_failure(ret, error);
		}
		ret = wallet_create(options->to, &create, password, &result, error);
		fault_point("move:target-created");
		if (ret == 0)
			ret = open_created_wallet(options->to, password, session, error);
		secret_free(password);
		return ret < 0 ? report_failure(ret, error) : EXIT_OK;
	}
	/*
	 * --auto-login, --local and --scrypt-cost shape a new wallet only: ignored here, so that
	 * the same command line finishes a move a crash cut short after the target was made.
	 */
	if (options->to_password_given && source.kind == PASSWORD_SOURCE_FILE) {
		ret = transport_secret_open_file(source.path, "--to-password-file", &fd, error);
		source.kind = PASSWORD_SOURCE_FD;
		source.fd = fd;
	} else if (options->to_password_given) {
		ret = transport_secret_check_fd(source.fd, "--to-password-fd", error);
	}
	if (ret == 0)
		ret = wallet_session_open(options->to, WALLET_FOR_CHANGE,
					  options->to_password_given ? &source : NULL, session,
					  error);
	if (fd >= 0)
		close(fd);
	if (ret == -ENXIO)
		snprintf(error, KEYSTORE_ERROR_SIZE,
			 "wallet %s needs its password and there is no terminal to ask on; give "
			 "--to-password-file FILE or --to-password-fd N",
			 options->to);
	return ret < 0 ? report_failure(ret, error) : EXIT_OK;
}

/*
 * The proof before a delete: no header under the directories in scope references a key of the
 * selection, and every header there could be read. isolate leaves the directories of its own
 * container out of scope: they go with the keys (and are rebound to the new wallet).
 */
static int check_unused(const char *name, const struct key_census *census,
			const struct selection *selection, const char *container)
{
	char id[KEY_ID_TEXT_SIZE];

	for (size_t d = 0; d < census->directories; d++) {
		const struct backing_census *dir = &census->dirs[d];

		if (container && strcmp(dir->container, container) == 0)
			continue;
		for (size_t k = 0; k < selection->count; k++) {
			uint64_t files = census_files_in(census, d, selection->ids[k]);

			if (!files)
				continue;
			key_id_format(selection->ids[k], id);
			if (container)
				fprintf(stderr,
					"tdekey %s: key %s of container %s is still used by %llu "
					"file header%s under %s, a backing directory of container "
					"%s (Oracle: ORA-46696); rewrap it there ('tderekey rewrap "
					"MOUNTPOINT') or keep the keys in both wallets with --copy\n",
					name, id, container, (unsigned long long)files,
					files == 1 ? "" : "s", dir->path, dir->container);
			else
				fprintf(stderr,
					"tdekey %s: key %s is still used by %llu file header%s under "
					"%s; rewrap them under the active key with 'tderekey rewrap "
					"MOUNTPOINT', then move again\n",
					name, id, (unsigned long long)files, files == 1 ? "" : "s",
					dir->path);
			return EXIT_KEY_IN_USE;
		}
		if (dir->scan.damaged) {
			fprintf(stderr,
				"tdekey %s: cannot prove the keys unused: %llu file header%s under "
				"%s cannot be read and might reference them; 'tdefs --check' names "
				"them\n",
				name, (unsigned long long)dir->scan.damaged,
				dir->scan.damaged == 1 ? "" : "s", dir->path);
			return EXIT_BACKING;
		}
	}
	return EXIT_OK;
}

/* move-keys: the keys --key names (unique prefixes), each once, none ACTIVE. */
static int select_keys(const struct options *options, const struct keyring *ring,
		       struct selection *selection)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id[KEY_ID_TEXT_SIZE];
	int ret = selection_alloc(selection, options->key_count);

	if (ret)
		return ret;
	for (size_t k = 0; k < options->key_count; k++) {
		const struct mek_record *record;
		bool seen = false;
		size_t index;

		ret = keyring_find_prefix(ring, options->keys[k], &index, error);
		if (ret == -EINVAL) { /* not a key ID at all: a usage error, as a bad option is */
			fprintf(stderr, "tdekey move-keys: --key %s\n", error);
			return EXIT_USAGE;
		}
		if (ret < 0)
			return report_failure(ret, error);
		record = keyring_record(ring, index);
		key_id_format(record->id, id);
		if (record->state == MEK_STATE_ACTIVE) {
			fprintf(stderr,
				"tdekey move-keys: key %s is the ACTIVE key of container %s: new "
				"files are wrapped under it; make another key active (tdekey "
				"set-key --container %s) first, or move the whole container with "
				"'tdekey isolate'\n",
				id, record->container, record->container);
			return EXIT_KEY_IN_USE;
		}
		for (size_t s = 0; s < selection->count; s++)
			seen |= memcmp(selection->ids[s], record->id, KEY_ID_SIZE) == 0;
		if (seen)
			continue;
		selection->records[selection->count] = *record;
		memcpy(selection->ids[selection->count++], record->id, KEY_ID_SIZE);
	}
	return EXIT_OK;
}

/* isolate: every key of the container, remembering which one is ACTIVE. */
static int select_container(const struct options *options, const struct keyring *ring,
			    struct selection *selection)
{
	size_t count = keyring_count(ring);
	int ret = selection_alloc(selection, count);

	if (ret)
		return ret;
	for (size_t i = 0; i < count; i++) {
		const struct mek_record *record = keyring_record(ring, i);

		if (strcmp(record->container, options->container) != 0)
			continue;
		if (record->state == MEK_STATE_ACTIVE) {
			selection->had_active = true;
			memcpy(selection->active_id, record->id, KEY_ID_SIZE);
		}
		selection->records[selection->count] = *record;
		memcpy(selection->ids[selection->count++], record->id, KEY_ID_SIZE);
	}
	if (selection->count == 0) {
		fprintf(stderr, "tdekey isolate: wallet %s has no key of container %s\n",
			options->wallet, options->container);
		return EXIT_NO_SUCH_KEY;
	}
	return EXIT_OK;
}

/*
 * isolate: the container keeps its ACTIVE key in the target (an import alone never activates),
 * unless the target already has one for it. Returns whether the ring changed.
 */
static bool keep_active(struct keyring *ring, const struct selection *selection,
			const char *container)
{
	size_t count = keyring_count(ring), index = count;

	if (!selection->had_active)
		return false;
	for (size_t i = 0; i < count; i++) {
		const struct mek_record *record = keyring_record(ring, i);

		if (strcmp(record->container, container) == 0 &&
		    record->state == MEK_STATE_ACTIVE)
			return false;
		if (memcmp(record->id, selection->active_id, KEY_ID_SIZE) == 0)
			index = i;
	}
	return index < count && keyring_activate(ring, index, time(NULL)) == 0;
}

static void print_result(const struct options *options, const char *name,
			 const struct selection *selection, const struct key_import_summary *summary,
			 bool created, bool deleted, struct wallet_session *target,
			 struct wallet_session *source)
{
	char id[KEY_ID_TEXT_SIZE];
	struct json json;

	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "from", wallet_session_path(source));
		json_string(&json, "to", wallet_session_path(target));
		json_bool(&json, "created", created);
		if (strcmp(name, "isolate") == 0)
			json_string(&json, "container", options->container);
		json_array_begin(&json, "keys");
		for (size_t k = 0; k < selection->count; k++) {
			key_id_format(selection->ids[k], id);
			json_string(&json, NULL, id);
		}
		json_array_end(&json);
		json_uint(&json, "added", summary->added);
		json_uint(&json, "skipped", summary->skipped);
		json_bool(&json, "deleted_from_source", deleted);
		json_end(&json);
		return;
	}
	printf("%s %zu master key%s from %s to %s%s (%zu already there)\n",
	       deleted ? "moved" : "copied", selection->count, selection->count == 1 ? "" : "s",
	       wallet_session_path(source), wallet_session_path(target),
	       created ? ", a new wallet" : "", summary->skipped);
	for (size_t k = 0; k < selection->count; k++) {
		key_id_format(selection->ids[k], id);
		printf("  %s\n", id);
	}
	if (deleted && *wallet_session_backup_path(source))
		printf("backup of %s before the delete: %s\n", options->wallet,
		       wallet_session_backup_path(source));
	if (strcmp(name, "isolate") == 0)
		printf("bind each backing directory of container %s to the new wallet: tdefs "
		       "--rebind --wallet %s BACKING\n",
		       options->container, options->to);
}

/*
 * isolate without --backing: the backing directories of the tdefs mounts running now whose
 * .tdefs.conf names this wallet (the mount table's source is the backing path). A mounted
 * directory of another container is exactly the one a wrong isolate would break at its next
 * mount, so it is proved even when nobody named it; directories not mounted are not known.
 */
struct mounted_dirs {
	uint8_t wallet_id[KEY_ID_SIZE];
	char *paths[BACKING_MAX];
	size_t count;
};

static int collect_mounted(const struct mount_entry *entry, void *context)
{
	struct mounted_dirs *dirs = context;
	char config_path[PATH_MAX];
	struct backing_config config;
	uint8_t *data;
	size_t len;
	bool ours;

	if (dirs->count == BACKING_MAX ||
	    (size_t)snprintf(config_path, sizeof(config_path), "%s/%s", entry->source,
			     CONFIG_FILE_NAME) >= sizeof(config_path))
		return 0;
	if (read_small_file(config_path, 4096, &data, &len) < 0)
		return 0;
	ours = config_decode(data, len, &config) == 0 &&
	       memcmp(config.wallet_id, dirs->wallet_id, KEY_ID_SIZE) == 0;
	free(data);
	for (size_t i = 0; ours && i < dirs->count; i++)
		ours = strcmp(dirs->paths[i], entry->source) != 0; /* two mounts of one directory */
	if (ours) {
		dirs->paths[dirs->count] = strdup(entry->source);
		if (!dirs->paths[dirs->count])
			return -ENOMEM;
		dirs->count++;
	}
	return 0;
}

static void mounted_free(struct mounted_dirs *dirs)
{
	for (size_t i = 0; i < dirs->count; i++)
		free(dirs->paths[i]);
	dirs->count = 0;
}

/* options with --backing set to the mounted directories of the wallet of ring. */
static int find_mounted(const struct keyring *ring, struct options *options,
			struct mounted_dirs *dirs)
{
	int ret;

	keyring_wallet_id(ring, dirs->wallet_id);
	ret = mount_for_each("fuse.tdefs", collect_mounted, dirs);
	if (ret == -ENOMEM)
		return report_failure(ret, "out of memory");
	/* No mount table (no /proc): nothing is mounted that this run could see. */
	for (size_t i = 0; i < dirs->count; i++)
		options->backing[i] = dirs->paths[i];
	options->backing_count = dirs->count;
	return EXIT_OK;
}

static int move(const struct options *options, const char *name, bool isolate)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *source = NULL, *target = NULL;
	struct key_import_summary summary = { 0 };
	struct selection selection = { 0 };
	bool delete = !(isolate && options->copy), created = false, changed;
	struct mounted_dirs mounted = { .count = 0 };
	struct options discovered;
	struct key_census census;
	struct keyring *ring;
	int ret;

	memset(&census, 0, sizeof(census));
	if (!options->to || !*options->to) {
		fprintf(stderr, "tdekey %s: --to DIR is required\nTry 'tdekey %s --help'.\n", name,
			name);
		return EXIT_USAGE;
	}
	if (!isolate && options->key_count == 0) {
		fprintf(stderr, "tdekey move-keys: name the keys to move with --key ID\nTry "
				"'tdekey move-keys --help'.\n");
		return EXIT_USAGE;
	}
	if (isolate && (!options->container_given || container_is_all(options))) {
		fprintf(stderr, "tdekey isolate: --container C names the one container whose keys "
				"go to --to\nTry 'tdekey isolate --help'.\n");
		return EXIT_USAGE;
	}
	/*
	 * move-keys takes retired keys, which headers commonly still use: it needs the proof.
	 * isolate takes a container's key set, which only its own directories use unless
	 * something was rebound into another container: without --backing the mounted
	 * directories are proved (find_mounted()).
	 */
	if (!isolate && options->backing_count == 0) {
		fprintf(stderr,
			"tdekey move-keys: name every backing directory that uses the wallet with "
			"--backing BACKING: keys leave it only after proving that no file header "
			"references them\nTry 'tdekey move-keys --help'.\n");
		return EXIT_USAGE;
	}
	if (same_directory(options->wallet, options->to)) {
		fprintf(stderr, "tdekey %s: --to %s is the wallet the keys come from\n", name,
			options->to);
		return EXIT_USAGE;
	}
	/* The source stays locked to the end: nothing can start using the keys meanwhile. */
	ret = open_session(options, WALLET_FOR_CHANGE, &source);
	if (ret)
		return ret;
	ring = wallet_session_keyring(source);
	ret = isolate ? select_container(options, ring, &selection)
		      : select_keys(options, ring, &selection);
	if (ret)
		goto out;
	if (delete) {
		const struct options *scope = options;

		if (isolate && options->backing_count == 0) {
			discovered = *options;
			ret = find_mounted(ring, &discovered, &mounted);
			if (ret)
				goto out;
			scope = &discovered;
		}
		ret = census_take(scope, ring, &census);
		if (ret == 0)
			ret = check_unused(name, &census, &selection,
					   isolate ? options->container : NULL);
		if (ret)
			goto out;
	}
	ret = open_target(options, name, isolate ? options->container : selection.records[0].container,
			  &target, &created);
	if (ret)
		goto out;
	ring = wallet_session_keyring(target);
	ret = keyring_import(ring, selection.records, selection.count, &summary, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	changed = isolate && keep_active(ring, &selection, options->container);
	if (summary.added || changed) {
		ret = commit_session(options, target);
		if (ret)
			goto out;
	}
	/* The target holds every key now: from here a crash leaves them in both wallets. */
	fault_point("move:target-committed");
	if (delete) {
		ret = wallet_session_delete_keys(source, selection.ids[0], selection.count, isolate,
						 options->backup_id, error);
		if (ret < 0) {
			ret = report_failure(ret, error);
			goto out;
		}
	}
	print_result(options, name, &selection, &summary, created, delete, target, source);
	if (delete && isolate && options->backing_count == 0) {
		printf("no --backing given: proved against the %zu mounted backing director%s of "
		       "the wallet%s",
		       mounted.count, mounted.count == 1 ? "y" : "ies", mounted.count ? ":" : "");
		for (size_t d = 0; d < mounted.count; d++)
			printf(" %s", mounted.paths[d]);
		printf("; a backing directory not mounted now was not scanned (the backup "
		       "above still holds the keys; 'tdekey merge --from %s' brings them back)\n",
		       options->to);
	}
	ret = EXIT_OK;
out:
	mounted_free(&mounted);
	census_free(&census);
	selection_free(&selection);
	wallet_session_close(target);
	wallet_session_close(source);
	return ret;
}

static int run_move_keys(const struct options *options)
{
	return move(options, "move-keys", false);
}

static int run_isolate(const struct options *options)
{
	return move(options, "isolate", true);
}

#define TARGET_OPTIONS                                                                             \
	"       --to DIR\n"                                                                        \
	"              The wallet the keys go to. When DIR holds no wallet one is made there\n"    \
	"              as 'tdekey create --no-key' makes it (a password wallet, or with\n"        \
	"              --auto-login alone an auto-login one); else DIR's wallet gets them.\n"      \
	"\n"                                                                                       \
	"       --to-password-file FILE, --to-password-fd N\n"                                     \
	"              The password of DIR's wallet (first line): the new password when DIR\n"    \
	"              is made, the one that opens it otherwise. Without one the terminal is\n"    \
	"              asked (twice for a new wallet). FILE, or a regular file behind N, must\n"   \
	"              belong to root or to you and be writable by no one else.\n"                 \
	"\n"                                                                                       \
	"       --auto-login, --local, --scrypt-cost LOG2N[,R[,P]]\n"                              \
	"              Only for a new DIR: as for 'tdekey create' (ignored for an existing\n"   \
	"              one, so the same command finishes a move a crash cut short).\n"                              \
	"\n"                                                                                       \
	"       --backup-id ID\n"                                                                  \
	"              Put ID in the name of the backups taken before the changes.\n"              \
	"\n"                                                                                       \
	"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"      \
	"              Where the password of --wallet comes from (PASSWORD SOURCES).\n"            \
	"\n"

#define CRASH_SAFETY                                                                               \
	"       The target gets the keys and commits (a backup first, then the crash-safe\n"       \
	"       rewrite) before the wallet they come from changes, in a second commit with\n"      \
	"       its own backup. A crash leaves the keys in both wallets, never in neither;\n"      \
	"       run the command again to finish (keys the target holds are skipped).\n"            \
	"\n"

const struct command command_move_keys = {
	.name = "move-keys",
	.summary = "move master keys no file header uses to another wallet",
	.synopsis = "tdekey move-keys --wallet DIR --key ID [--key ID ...] --to DIR\n"
		    "                        --backing BACKING [--backing BACKING ...]\n"
		    "                        [--to-password-file FILE | --to-password-fd N]\n"
		    "                        [--auto-login] [--local] [--scrypt-cost COST]\n"
		    "                        [--backup-id ID] [--password-file FILE |\n"
		    "                         --password-fd N | --password-prompt |\n"
		    "                         --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Moves the master keys named with --key out of the wallet into the wallet\n"
		"       in --to, like Oracle's ADMINISTER KEY MANAGEMENT MOVE KEYS: an export, an\n"
		"       import (ORIGIN IMPORTED, never active there) and delete-key's guarded\n"
		"       delete, done in memory without an export file.\n"
		"\n"
		"       Refused, with both wallets unchanged: an ACTIVE key (exit 13); a key any\n"
		"       file header under a --backing directory references (exit 13); headers\n"
		"       there that cannot be read (exit 14); a --backing directory of another\n"
		"       wallet (exit 14); a key the wallet lacks (exit 10); a key ID the target\n"
		"       holds with other bytes (exit 17); no --backing (exit 2).\n"
		"\n" CRASH_SAFETY
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet the keys leave.\n"
		"\n"
		"       --key ID\n"
		"              A key to move: its ID or a unique prefix. Repeatable.\n"
		"\n"
		"       --backing BACKING\n"
		"              A backing directory that uses the wallet; repeat it for every one.\n"
		"              Required: a key leaves only after proving no header there uses it.\n"
		"\n" TARGET_OPTIONS
		"       --json\n"
		"              Print from, to, created, keys, added, skipped and\n"
		"              deleted_from_source as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey move-keys --wallet /etc/tdefs/wallet --key 5f0c3a \\\n"
		"              --backing /srv/pgdata.enc --to /etc/tdefs/archive \\\n"
		"              --to-password-file /root/archive.password\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run_move_keys,
};

const struct command command_isolate = {
	.name = "isolate",
	.summary = "move one container's keys into a wallet of its own",
	.synopsis = "tdekey isolate --wallet DIR --container C --to DIR [--copy]\n"
		    "                      [--backing BACKING ...]\n"
		    "                      [--to-password-file FILE | --to-password-fd N]\n"
		    "                      [--auto-login] [--local] [--scrypt-cost COST]\n"
		    "                      [--backup-id ID] [--password-file FILE |\n"
		    "                       --password-fd N | --password-prompt |\n"
		    "                       --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Moves every master key of container C, its ACTIVE key included, into the\n"
		"       wallet in --to, like Oracle's ADMINISTER KEY MANAGEMENT ISOLATE KEYSTORE:\n"
		"       C leaves the united wallet for a keystore of its own. A new --to wallet\n"
		"       has C as its container; C's ACTIVE key stays active there unless the\n"
		"       target already has an active key for C. The keys have ORIGIN IMPORTED.\n"
		"       Bind C's backing directories to the new wallet afterwards with 'tdefs\n"
		"       --rebind --wallet DIR BACKING'.\n"
		"\n"
		"       Without --copy the keys leave the wallet, and that is refused (exit 13,\n"
		"       Oracle's ORA-46696) while a file header under a --backing directory of\n"
		"       another container references one of them; unreadable headers there\n"
		"       refuse it too (exit 14). Without --backing the backing directories of\n"
		"       the tdefs mounts running on the wallet are the ones proved (the output\n"
		"       names them); a directory not mounted is then not scanned, so name every\n"
		"       one with --backing. A wallet without a key of C: exit 10. A key ID the\n"
		"       target holds with other bytes: exit 17.\n"
		"\n" CRASH_SAFETY
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The united wallet.\n"
		"\n"
		"       --container C\n"
		"              The container whose keys move (not 'all').\n"
		"\n"
		"       --copy\n"
		"              Copy the keys: they stay in both wallets, nothing is deleted and no\n"
		"              --backing is needed.\n"
		"\n"
		"       --backing BACKING\n"
		"              A backing directory that uses the wallet; repeat it for every one.\n"
		"              Those of container C may be given and are not held against it.\n"
		"              Without it, the mounted backing directories of the wallet.\n"
		"\n" TARGET_OPTIONS
		"       --json\n"
		"              Print from, to, created, container, keys, added, skipped and\n"
		"              deleted_from_source as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey isolate --wallet /etc/tdefs/wallet --container sales \\\n"
		"              --to /etc/tdefs/sales --backing /srv/hr.enc\n"
		"       tdekey isolate --wallet /etc/tdefs/wallet --container sales \\\n"
		"              --to /etc/tdefs/sales\n"
		"       tdefs --rebind --wallet /etc/tdefs/sales /srv/sales.enc\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run_isolate,
};
