/*
 * Crash test: kill tdekey at every fault point of a change and prove that the wallet directory
 * is always usable afterwards. For each scenario the tool is run again and again on a fresh copy
 * of the same wallet, with TDEFS_FAULT_AT=1, 2, 3, ... (each run is SIGKILLed at that point),
 * until a run completes. After every kill:
 *   - password.wallet opens, holding either the old key set or the new one (nothing in
 *     between: no key lost, at most the one new key, correctly activated; for delete-key,
 *     exactly the one key deleted; for import and merge, exactly the other wallet's keys
 *     added, none of them active);
 *   - the auto-login copy opens, with the old or the new key set, never a key the password
 *     wallet lacks (which is why delete-key writes the copy before the primary);
 *   - when the wallet holds the new set, DIR/backup holds a backup with exactly the old one;
 *   - the external store (change-password) still holds a password that opens the wallet;
 *   - a following tdekey run without faults succeeds and brings the copy level.
 * move-keys and isolate are run the same way on two wallets (run_move_scenario()): a moved key
 * is in the source or the target after every kill, never in neither, and the same command run
 * again finishes the move.
 *
 * Usage: crash_test TDEKEY. Needs a build with -Dfault_injection=true; in other builds it
 * reports itself skipped (exit 77), as meson expects.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "fs/format.h"
#include "keystore/wallet.h"
#include "keystore/wallet_internal.h"
#include "util/util.h"

#ifdef TDEFS_FAULT_INJECTION

#define MAX_FAULT_POINTS 200
#define OLD_PASSWORD "crash test password one"
#define NEW_PASSWORD "crash test password two"

static const char *tdekey;
static char root[PATH_MAX];
static int failures;

static void fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, format, arguments);
	fputc('\n', stderr);
	va_end(arguments);
	failures++;
}

static void join(char out[PATH_MAX], const char *dir, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
		fprintf(stderr, "path too long\n");
		exit(1);
	}
}

/* Run tdekey with argv; fault_at 0 means no fault. Returns the wait status. */
static int run_tdekey(const char *const argv[], int fault_at, const char *log_path)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		char fault[32];
		int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (log_fd >= 0) {
			dup2(log_fd, STDOUT_FILENO);
			dup2(log_fd, STDERR_FILENO);
		}
		if (fault_at > 0) {
			snprintf(fault, sizeof(fault), "%d", fault_at);
			setenv("TDEFS_FAULT_AT", fault, 1);
		} else {
			unsetenv("TDEFS_FAULT_AT");
		}
		execv(tdekey, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("waitpid");
			exit(1);
		}
	return status;
}

static void must_run(const char *const argv[], const char *log_path)
{
	int status = run_tdekey(argv, 0, log_path);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "setup command %s failed (status %d), see %s\n", argv[1], status,
			log_path);
		exit(1);
	}
}

static void copy_file(const char *from, const char *to)
{
	uint8_t buffer[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (in < 0 || out < 0) {
		perror("copy");
		exit(1);
	}
	while ((n = read(in, buffer, sizeof(buffer))) > 0)
		if (write(out, buffer, (size_t)n) != n) {
			perror("copy");
			exit(1);
		}
	close(in);
	close(out);
}

/* Copy a wallet directory (files and one level of subdirectories), modes kept at 0600/0700. */
static void copy_tree(const char *from, const char *to)
{
	struct dirent *entry;
	DIR *dir = opendir(from);

	if (!dir || mkdir(to, 0700) < 0) {
		perror("copy_tree");
		exit(1);
	}
	while ((entry = readdir(dir)) != NULL) {
		char source[PATH_MAX], target[PATH_MAX];
		struct stat st;

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		join(source, from, entry->d_name);
		join(target, to, entry->d_name);
		if (lstat(source, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			copy_tree(source, target);
		else if (S_ISREG(st.st_mode))
			copy_file(source, target);
	}
	closedir(dir);
}

static void remove_tree(const char *path)
{
	struct dirent *entry;
	DIR *dir = opendir(path);

	if (!dir)
		return;
	while ((entry = readdir(dir)) != NULL) {
		char child[PATH_MAX];
		struct stat st;

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		join(child, path, entry->d_name);
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(child);
		else
			unlink(child);
	}
	closedir(dir);
	rmdir(path);
}

static struct secret *secret_of(const char *text)
{
	struct secret *secret = secret_new();

	if (!secret)
		exit(1);
	secret->len = strlen(text);
	memcpy(secret->bytes, text, secret->len);
	return secret;
}

/* Open one key wallet file; NULL (with the reason printed) when it does not open. */
static struct keyring *open_wallet(const char *path, enum wallet_kind kind, const char *password,
				   bool quiet)
{
	struct secret *secret = password ? secret_of(password) : NULL;
	struct wallet_read read = {
		.path = path,
		.expected_kind = kind,
		.expected_content = WALLET_CONTENT_KEYS,
		.password = secret,
	};
	char error[KEYSTORE_ERROR_SIZE];
	struct keyring *ring = NULL;

	if (wallet_read(&read, error) == 0) {
		ring = read.ring;
		read.ring = NULL;
		wallet_read_release(&read);
	} else if (!quiet) {
		fail("%s does not open: %s", path, error);
	}
	secret_free(secret);
	return ring;
}

static bool holds(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE])
{
	return keyring_find(ring, id) != NULL;
}

static bool same_set(const struct keyring *a, const struct keyring *b)
{
	if (keyring_count(a) != keyring_count(b))
		return false;
	for (size_t i = 0; i < keyring_count(a); i++) {
		const struct mek_record *record = keyring_record(a, i);
		const uint8_t *other = keyring_find(b, record->id);

		if (!other || !secure_equal(other, record->mek, MEK_SIZE))
			return false;
	}
	return true;
}

/*
 * The set-key outcome: the old keys, all still there with the same MEKs, plus exactly one new
 * key that is active, the previously active key now retired.
 */
static bool is_rotation_of(const struct keyring *old, const struct keyring *candidate)
{
	uint8_t old_active[KEY_ID_SIZE], new_active[KEY_ID_SIZE];

	if (keyring_count(candidate) != keyring_count(old) + 1)
		return false;
	for (size_t i = 0; i < keyring_count(old); i++) {
		const struct mek_record *record = keyring_record(old, i);
		const uint8_t *mek = keyring_find(candidate, record->id);

		if (!mek || !secure_equal(mek, record->mek, MEK_SIZE))
			return false;
	}
	if (keyring_active(old, old_active, NULL) < 0 ||
	    keyring_active(candidate, new_active, NULL) < 0)
		return false;
	return !holds(old, new_active);
}

/* The delete-key outcome: the old keys less the one deleted, MEKs unchanged. */
static bool is_deletion_of(const struct keyring *old, const struct keyring *candidate,
			   const uint8_t deleted[KEY_ID_SIZE])
{
	if (keyring_count(candidate) + 1 != keyring_count(old) || holds(candidate, deleted))
		return false;
	for (size_t i = 0; i < keyring_count(candidate); i++) {
		const struct mek_record *record = keyring_record(candidate, i);
		const uint8_t *mek = keyring_find(old, record->id);

		if (!mek || !secure_equal(mek, record->mek, MEK_SIZE))
			return false;
	}
	return true;
}

/*
 * The import and merge outcome: the old keys unchanged, the old active key still active, plus
 * every key of added with its MEK, none of them active.
 */
static bool is_addition_of(const struct keyring *old, const struct keyring *candidate,
			   const struct keyring *added)
{
	uint8_t old_active[KEY_ID_SIZE], new_active[KEY_ID_SIZE];

	if (keyring_count(candidate) != keyring_count(old) + keyring_count(added))
		return false;
	for (size_t i = 0; i < keyring_count(old); i++) {
		const struct mek_record *record = keyring_record(old, i);
		const uint8_t *mek = keyring_find(candidate, record->id);

		if (!mek || !secure_equal(mek, record->mek, MEK_SIZE))
			return false;
	}
	for (size_t i = 0; i < keyring_count(added); i++) {
		const struct mek_record *record = keyring_record(added, i);
		const uint8_t *mek = keyring_find(candidate, record->id);

		if (!mek || !secure_equal(mek, record->mek, MEK_SIZE))
			return false;
	}
	if (keyring_active(old, old_active, NULL) < 0 ||
	    keyring_active(candidate, new_active, NULL) < 0)
		return false;
	return memcmp(old_active, new_active, KEY_ID_SIZE) == 0;
}

/* A backup in DIR/backup that opens with password and holds exactly the old key set. */
static bool backup_holds(const char *wallet_dir, const char *prefix, enum wallet_kind kind,
			 const char *password, const struct keyring *old)
{
	char backup_dir[PATH_MAX];
	struct dirent *entry;
	bool found = false;
	DIR *dir;

	join(backup_dir, wallet_dir, WALLET_BACKUP_DIRECTORY);
	dir = opendir(backup_dir);
	if (!dir)
		return false;
	while (!found && (entry = readdir(dir)) != NULL) {
		char path[PATH_MAX];
		struct keyring *ring;

		if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0 ||
		    strstr(entry->d_name, ".tmp-"))
			continue;
		join(path, backup_dir, entry->d_name);
		ring = open_wallet(path, kind, password, true);
		if (ring && same_set(ring, old) &&
		    keyring_generation(ring) == keyring_generation(old))
			found = true;
		keyring_free(ring);
	}
	closedir(dir);
	return found;
}

struct scenario {
	const char *name;
	const char *const *argv; /* tdekey arguments; "@" is replaced by the wallet directory */
	bool changes_password;
	const uint8_t *deleted_key; /* delete-key: the key it removes */
	const struct keyring *added; /* import, merge: the keys it adds */
};

static void fill_argv(const struct scenario *scenario, const char *wallet, const char *argv[16])
{
	size_t i = 0;

	argv[i++] = tdekey;
	for (const char *const *arg = scenario->argv; *arg && i < 15; arg++)
		argv[i++] = strcmp(*arg, "@") == 0 ? wallet : *arg;
	argv[i] = NULL;
}

/* Check one killed run; returns whether the wallet holds the new state. */
static bool check_after_kill(const struct scenario *scenario, const char *wallet,
			     const struct keyring *old, int point)
{
	char password_path[PATH_MAX], autologin_path[PATH_MAX], store_path[PATH_MAX];
	const char *password = OLD_PASSWORD;
	struct keyring *primary, *copy;
	bool is_new = false;

	join(password_path, wallet, WALLET_PASSWORD_FILE);
	join(autologin_path, wallet, WALLET_AUTOLOGIN_FILE);
	join(store_path, wallet, WALLET_EXTERNAL_STORE_FILE);

	primary = open_wallet(password_path, WALLET_KIND_PASSWORD, OLD_PASSWORD, true);
	if (!primary && scenario->changes_password) {
		primary = open_wallet(password_path, WALLET_KIND_PASSWORD, NEW_PASSWORD, false);
		password = NEW_PASSWORD;
		is_new = primary != NULL;
	} else if (!primary) {
		open_wallet(password_path, WALLET_KIND_PASSWORD, OLD_PASSWORD, false);
	}
	if (!primary) {
		fail("%s, fault point %d: password.wallet does not open", scenario->name, point);
		return false;
	}
	if (scenario->changes_password) {
		if (!same_set(primary, old))
			fail("%s, fault point %d: the key set changed", scenario->name, point);
		if (is_new &&
		    !backup_holds(wallet, "password-", WALLET_KIND_PASSWORD, OLD_PASSWORD, old))
			fail("%s, fault point %d: no backup opens with the old password",
			     scenario->name, point);
	} else if (same_set(primary, old)) {
		is_new = false;
	} else if (scenario->deleted_key ? is_deletion_of(old, primary, scenario->deleted_key)
		   : scenario->added	     ? is_addition_of(old, primary, scenario->added)
					     : is_rotation_of(old, primary)) {
		is_new = true;
		if (!backup_holds(wallet, "password-", WALLET_KIND_PASSWORD, OLD_PASSWORD, old))
			fail("%s, fault point %d: new key set but no backup holds the old one",
			     scenario->name, point);
	} else {
		fail("%s, fault point %d: password.wallet holds neither the old nor the new key set",
		     scenario->name, point);
	}

	copy = open_wallet(autologin_path, WALLET_KIND_AUTOLOGIN, NULL, false);
	if (copy) {
		if (!same_set(copy, old) && !same_set(copy, primary) &&
		    !(scenario->deleted_key && is_deletion_of(old, copy, scenario->deleted_key)))
			fail("%s, fault point %d: autologin.wallet holds neither key set",
			     scenario->name, point);
		for (size_t i = 0; i < keyring_count(copy); i++)
			if (!holds(primary, keyring_record(copy, i)->id))
				fail("%s, fault point %d: the copy holds a key password.wallet lacks",
				     scenario->name, point);
	}

	if (scenario->changes_password) {
		struct wallet_paths paths;
		struct secret *secrets[2] = { NULL, NULL };
		char error[KEYSTORE_ERROR_SIZE];
		size_t count = 0;
		bool opens = false;

		wallet_paths_init(wallet, &paths);
		if (wallet_external_store_read(&paths, secrets, &count, error) < 0)
			fail("%s, fault point %d: external store: %s", scenario->name, point,
			     error);
		for (size_t i = 0; i < count; i++) {
			opens |= secrets[i]->len == strlen(password) &&
				 memcmp(secrets[i]->bytes, password, secrets[i]->len) == 0;
			secret_free(secrets[i]);
		}
		if (count && !opens)
			fail("%s, fault point %d: the external store lost the working password",
			     scenario->name, point);
	}
	keyring_free(copy);
	keyring_free(primary);
	return is_new;
}

/* After a kill, the next plain run must work and leave password wallet and copy level. */
static void check_recovery(const struct scenario *scenario, const char *wallet, int point,
			   const char *log_path)
{
	const char *argv[] = { tdekey, "set-key", "--wallet", wallet, "--external-store", NULL };
	char password_path[PATH_MAX], autologin_path[PATH_MAX];
	struct keyring *primary, *copy;
	int status = run_tdekey(argv, 0, log_path);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fail("%s, fault point %d: the next set-key failed (see %s)", scenario->name, point,
		     log_path);
		return;
	}
	join(password_path, wallet, WALLET_PASSWORD_FILE);
	join(autologin_path, wallet, WALLET_AUTOLOGIN_FILE);
	primary = open_wallet(password_path, WALLET_KIND_PASSWORD, OLD_PASSWORD, true);
	if (!primary)
		primary = open_wallet(password_path, WALLET_KIND_PASSWORD, NEW_PASSWORD, false);
	copy = open_wallet(autologin_path, WALLET_KIND_AUTOLOGIN, NULL, false);
	if (primary && copy &&
	    (!same_set(primary, copy) || keyring_generation(primary) != keyring_generation(copy)))
		fail("%s, fault point %d: after recovery the copy is not level", scenario->name,
		     point);
	keyring_free(primary);
	keyring_free(copy);
}

static int run_scenario(const struct scenario *scenario, const char *base,
			const struct keyring *old)
{
	char wallet[PATH_MAX], log_path[PATH_MAX];
	const char *argv[16];
	int point, old_outcomes = 0, new_outcomes = 0;

	join(log_path, root, "tdekey.log");
	for (point = 1; point <= MAX_FAULT_POINTS; point++) {
		int status;

		join(wallet, root, "work");
		remove_tree(wallet);
		copy_tree(base, wallet);
		fill_argv(scenario, wallet, argv);
		status = run_tdekey(argv, point, log_path);
		if (WIFEXITED(status)) {
			if (WEXITSTATUS(status) != 0)
				fail("%s: the run without a kill failed (status %d)",
				     scenario->name, WEXITSTATUS(status));
			else if (!check_after_kill(scenario, wallet, old, point))
				fail("%s: the completed run did not leave the new state",
				     scenario->name);
			break;
		}
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			fail("%s, fault point %d: tdekey ended with status %d", scenario->name,
			     point, status);
			continue;
		}
		if (check_after_kill(scenario, wallet, old, point))
			new_outcomes++;
		else
			old_outcomes++;
		check_recovery(scenario, wallet, point, log_path);
	}
	printf("%s: killed at %d fault points (%d left the old wallet, %d the new one), then "
	       "completed\n",
	       scenario->name, point - 1, old_outcomes, new_outcomes);
	if (point - 1 < 5 || old_outcomes == 0 || new_outcomes == 0)
		fail("%s: too few fault points were reached to prove anything", scenario->name);
	remove_tree(wallet);
	return point - 1;
}

/*
 * move-keys and isolate: two wallets. After every kill the source opens with the old key set or
 * the old set less the moved keys; its copy never holds a key it lacks; the target, when it
 * opens, holds nothing but moved keys; and a moved key is always in one of them (once the
 * source has lost them the target holds them all). The same command run again finishes: exit 0,
 * or 10 when the source had already lost the keys; then the target has them and the source not.
 */
struct move_scenario {
	const char *name;
	const char *const *argv; /* "@" the source, "%" the target */
	const uint8_t *moved;	 /* count * KEY_ID_SIZE */
	size_t count;
};

static bool holds_all(const struct keyring *ring, const uint8_t *ids, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (!holds(ring, ids + i * KEY_ID_SIZE))
			return false;
	return true;
}

static bool holds_none(const struct keyring *ring, const uint8_t *ids, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (holds(ring, ids + i * KEY_ID_SIZE))
			return false;
	return true;
}

/* candidate is old without the moved keys: every other key kept, none added. */
static bool is_move_of(const struct keyring *old, const struct keyring *candidate,
		       const struct move_scenario *move)
{
	if (!holds_none(candidate, move->moved, move->count) ||
	    keyring_count(candidate) + move->count != keyring_count(old))
		return false;
	for (size_t i = 0; i < keyring_count(candidate); i++)
		if (!holds(old, keyring_record(candidate, i)->id))
			return false;
	return true;
}

static void fill_move_argv(const struct move_scenario *move, const char *source,
			   const char *target, const char *argv[24])
{
	size_t i = 0;

	argv[i++] = tdekey;
	for (const char *const *arg = move->argv; *arg && i < 23; arg++)
		argv[i++] = strcmp(*arg, "@") == 0 ? source : strcmp(*arg, "%") == 0 ? target : *arg;
	argv[i] = NULL;
}

/* Returns whether the source has lost the keys (the new state). */
static bool check_move(const struct move_scenario *move, const char *source, const char *target,
		       const struct keyring *old, int point)
{
	char path[PATH_MAX];
	struct keyring *primary, *copy, *moved_to;
	bool is_new = false;

	join(path, source, WALLET_PASSWORD_FILE);
	primary = open_wallet(path, WALLET_KIND_PASSWORD, OLD_PASSWORD, false);
	if (!primary) {
		fail("%s, fault point %d: the source's password.wallet does not open", move->name,
		     point);
		return false;
	}
	if (!same_set(primary, old)) {
		if (is_move_of(old, primary, move)) {
			is_new = true;
			if (!backup_holds(source, "password-", WALLET_KIND_PASSWORD, OLD_PASSWORD,
					  old))
				fail("%s, fault point %d: the source lost the keys but no backup "
				     "holds them",
				     move->name, point);
		} else {
			fail("%s, fault point %d: the source holds neither the old set nor the old "
			     "set less the moved keys",
			     move->name, point);
		}
	}
	join(path, source, WALLET_AUTOLOGIN_FILE);
	copy = open_wallet(path, WALLET_KIND_AUTOLOGIN, NULL, false);
	if (copy)
		for (size_t i = 0; i < keyring_count(copy); i++)
			if (!holds(primary, keyring_record(copy, i)->id))
				fail("%s, fault point %d: the source's copy holds a key its "
				     "password.wallet lacks",
				     move->name, point);
	join(path, target, WALLET_AUTOLOGIN_FILE);
	moved_to = open_wallet(path, WALLET_KIND_AUTOLOGIN, NULL, true); /* may not exist yet */
	if (moved_to) {
		for (size_t i = 0; i < keyring_count(moved_to); i++) {
			const uint8_t *id = keyring_record(moved_to, i)->id;
			bool chosen = false;

			for (size_t k = 0; k < move->count; k++)
				chosen |= memcmp(id, move->moved + k * KEY_ID_SIZE, KEY_ID_SIZE) == 0;
			if (!chosen)
				fail("%s, fault point %d: the target holds a key that was not moved",
				     move->name, point);
		}
	}
	for (size_t k = 0; k < move->count; k++) {
		const uint8_t *id = move->moved + k * KEY_ID_SIZE;

		if (!holds(primary, id) && !(moved_to && holds(moved_to, id)))
			fail("%s, fault point %d: a moved key is in neither wallet", move->name,
			     point);
	}
	keyring_free(moved_to);
	keyring_free(copy);
	keyring_free(primary);
	return is_new;
}

/* The same command again, without a fault, must finish the move. */
static void check_move_recovery(const struct move_scenario *move, const char *source,
				const char *target, const struct keyring *old, int point,
				const char *log_path)
{
	const char *argv[24];
	char path[PATH_MAX];
	struct keyring *primary, *moved_to;
	int status;

	fill_move_argv(move, source, target, argv);
	status = run_tdekey(argv, 0, log_path);
	join(path, source, WALLET_PASSWORD_FILE);
	primary = open_wallet(path, WALLET_KIND_PASSWORD, OLD_PASSWORD, false);
	join(path, target, WALLET_AUTOLOGIN_FILE);
	moved_to = open_wallet(path, WALLET_KIND_AUTOLOGIN, NULL, false);
	if (!WIFEXITED(status) ||
	    (WEXITSTATUS(status) != 0 &&
	     !(WEXITSTATUS(status) == 10 && primary && holds_none(primary, move->moved, move->count))))
		fail("%s, fault point %d: running it again failed (status %d, see %s)", move->name,
		     point, status, log_path);
	else if (!primary || !moved_to || !is_move_of(old, primary, move) ||
		 !holds_all(moved_to, move->moved, move->count))
		fail("%s, fault point %d: running it again did not finish the move", move->name,
		     point);
	keyring_free(moved_to);
	keyring_free(primary);
}

static void run_move_scenario(const struct move_scenario *move, const char *base,
			      const struct keyring *old)
{
	char source[PATH_MAX], target[PATH_MAX], log_path[PATH_MAX];
	const char *argv[24];
	int point, old_outcomes = 0, new_outcomes = 0;

	join(log_path, root, "tdekey.log");
	join(source, root, "work");
	join(target, root, "target");
	for (point = 1; point <= MAX_FAULT_POINTS; point++) {
		int status;

		remove_tree(source);
		remove_tree(target);
		copy_tree(base, source);
		fill_move_argv(move, source, target, argv);
		status = run_tdekey(argv, point, log_path);
		if (WIFEXITED(status)) {
			if (WEXITSTATUS(status) != 0)
				fail("%s: the run without a kill failed (status %d)", move->name,
				     WEXITSTATUS(status));
			else if (!check_move(move, source, target, old, point))
				fail("%s: the completed run left the keys in the source", move->name);
			break;
		}
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			fail("%s, fault point %d: tdekey ended with status %d", move->name, point,
			     status);
			continue;
		}
		if (check_move(move, source, target, old, point))
			new_outcomes++;
		else
			old_outcomes++;
		check_move_recovery(move, source, target, old, point, log_path);
	}
	printf("%s: killed at %d fault points (%d left the keys in the source, %d had moved "
	       "them), then completed\n",
	       move->name, point - 1, old_outcomes, new_outcomes);
	if (point - 1 < 5 || old_outcomes == 0 || new_outcomes == 0)
		fail("%s: too few fault points were reached to prove anything", move->name);
	remove_tree(source);
	remove_tree(target);
}

int main(int argc, char *argv[])
{
	static const char *const set_key_argv[] = {
		"set-key",	 "--wallet", "@",	"--password-file",
		"PASSWORD_FILE", "--tag",    "rotated", NULL
	};
	static const char *const change_password_argv[] = {
		"change-password",     "--wallet",	    "@", "--external-store",
		"--new-password-file", "NEW_PASSWORD_FILE", NULL
	};
	char base[PATH_MAX], password_file[PATH_MAX], new_password_file[PATH_MAX];
	char password_path[PATH_MAX], log_path[PATH_MAX], backing[PATH_MAX];
	char deleted_text[KEY_ID_TEXT_SIZE];
	char other[PATH_MAX], other_path[PATH_MAX], export_path[PATH_MAX];
	const char *set_key_args[8], *change_password_args[7], *delete_key_args[9];
	const char *import_args[10], *merge_args[8];
	struct keyring *old, *added;
	const char *tmp = getenv("TMPDIR");

	if (argc != 2) {
		fprintf(stderr, "usage: %s TDEKEY\n", argv[0]);
		return 2;
	}
	tdekey = argv[1];
	/* The crash points count from the start of each tdekey run, not from ours. */
	unsetenv("TDEFS_FAULT_AT");
	unsetenv("TDEFS_FAULT_TRACE");
	snprintf(root, sizeof(root), "%s/tdefs-crash-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	join(base, root, "base");
	join(password_file, root, "password");
	join(new_password_file, root, "new-password");
	join(log_path, root, "setup.log");
	{
		int fd = open(password_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || write(fd, OLD_PASSWORD "\n", strlen(OLD_PASSWORD) + 1) < 0)
			return 1;
		close(fd);
		fd = open(new_password_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, NEW_PASSWORD "\n", strlen(NEW_PASSWORD) + 1) < 0)
			return 1;
		close(fd);
	}

	/* A wallet with a history: password wallet, auto-login copy, external store, 2 keys. */
	{
		const char *create[] = { tdekey,	"create",	 "--wallet",
					 base,		"--auto-login",	 "--password-file",
					 password_file, "--scrypt-cost", "10,1,1",
					 "--tag",	"first",	 NULL };
		const char *rotate[] = { tdekey, "set-key",	    "--wallet",
					 base,	 "--password-file", password_file,
					 NULL };
		const char *store[] = { tdekey, "add-secret",	   "--wallet",
					base,	"--password-file", password_file,
					NULL };

		must_run(create, log_path);
		must_run(rotate, log_path);
		must_run(store, log_path);
	}
	join(password_path, base, WALLET_PASSWORD_FILE);
	old = open_wallet(password_path, WALLET_KIND_PASSWORD, OLD_PASSWORD, false);
	if (!old)
		return 1;

	for (size_t i = 0; i < 7; i++) {
		set_key_args[i] = strcmp(set_key_argv[i], "PASSWORD_FILE") == 0 ? password_file
										: set_key_argv[i];
	}
	set_key_args[7] = NULL;
	for (size_t i = 0; i < 6; i++) {
		change_password_args[i] = strcmp(change_password_argv[i], "NEW_PASSWORD_FILE") == 0
						  ? new_password_file
						  : change_password_argv[i];
	}
	change_password_args[6] = NULL;
	/*
	 * delete-key of the first (retired) key, proved unused by a backing directory that holds
	 * no file: only its config record, naming this wallet.
	 */
	join(backing, root, "backing");
	{
		struct backing_config config = {
			.version = CONFIG_FORMAT_VERSION,
			.cipher_suite = CIPHER_SUITE_AES256_XTS,
			.block_size = TDEFS_BLOCK_SIZE,
		};
		uint8_t encoded[CONFIG_FILE_SIZE];
		char config_path[PATH_MAX];

		keyring_wallet_id(old, config.wallet_id);
		snprintf(config.container, sizeof(config.container), "%s", keyring_container(old));
		join(config_path, backing, CONFIG_FILE_NAME);
		if (mkdir(backing, 0700) < 0 || config_encode(&config, encoded) < 0 ||
		    write_file_atomic(config_path, encoded, sizeof(encoded), 0644) < 0) {
			perror("backing directory");
			return 1;
		}
	}
	key_id_format(keyring_record(old, 0)->id, deleted_text);
	{
		const char *args[] = { "delete-key", "--wallet",  "@",	   "--password-file",
				       password_file, "--backing", backing, deleted_text,
				       NULL };

		memcpy(delete_key_args, args, sizeof(args));
	}
	/* import and merge: the two keys of another wallet, as an export file and as a wallet. */
	join(other, root, "other");
	join(export_path, root, "other.keys");
	{
		const char *create[] = { tdekey, "create", "--wallet", other, "--auto-login",
					 "--scrypt-cost", "10,1,1", NULL };
		const char *rotate[] = { tdekey, "set-key", "--wallet", other, NULL };
		const char *export[] = { tdekey,	  "export",	     "--wallet", other,
					 "--all",	  "--to",	     export_path,
					 "--secret-file", new_password_file, "--scrypt-cost",
					 "10,1,1",	  NULL };
		const char *import[] = { "import",	    "--wallet", "@",	     "--password-file",
					 password_file,	    "--from",	export_path, "--secret-file",
					 new_password_file, NULL };
		const char *merge[] = { "merge", "--wallet",	"@", "--password-file", password_file,
					"--from", other, NULL };

		must_run(create, log_path);
		must_run(rotate, log_path);
		must_run(export, log_path);
		memcpy(import_args, import, sizeof(import));
		memcpy(merge_args, merge, sizeof(merge));
	}
	join(other_path, other, WALLET_AUTOLOGIN_FILE);
	added = open_wallet(other_path, WALLET_KIND_AUTOLOGIN, NULL, false);
	if (!added)
		return 1;
	{
		const struct scenario scenarios[] = {
			{ .name = "import", .argv = import_args, .added = added },
			{ .name = "merge", .argv = merge_args, .added = added },
			{ .name = "set-key", .argv = set_key_args },
			{ .name = "change-password",
			  .argv = change_password_args,
			  .changes_password = true },
			{ .name = "delete-key",
			  .argv = delete_key_args,
			  .deleted_key = keyring_record(old, 0)->id },
		};

		for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++)
			run_scenario(&scenarios[i], base, old);
	}
	/*
	 * move-keys of the first (retired) key and isolate of the whole container (its ACTIVE key
	 * too), each to a new auto-login wallet, proved unused by the empty backing directory.
	 */
	{
		const char *move_keys[] = { "move-keys",	   "--wallet",	     "@",
					    "--password-file", password_file,	     "--key",
					    deleted_text,	   "--to",	     "%",
					    "--auto-login",	   "--scrypt-cost", "10,1,1",
					    "--backing",	   backing,	     NULL };
		const char *isolate[] = { "isolate",	     "--wallet",      "@",
					  "--password-file", password_file,   "--container",
					  keyring_container(old), "--to",     "%",
					  "--auto-login",    "--scrypt-cost", "10,1,1",
					  "--backing",	     backing,	      NULL };
		uint8_t all_ids[16 * KEY_ID_SIZE];
		size_t all = keyring_count(old) < 16 ? keyring_count(old) : 16;

		for (size_t i = 0; i < all; i++)
			memcpy(all_ids + i * KEY_ID_SIZE, keyring_record(old, i)->id, KEY_ID_SIZE);
		const struct move_scenario moves[] = {
			{ .name = "move-keys",
			  .argv = move_keys,
			  .moved = keyring_record(old, 0)->id,
			  .count = 1 },
			{ .name = "isolate", .argv = isolate, .moved = all_ids, .count = all },
		};

		for (size_t i = 0; i < ARRAY_SIZE(moves); i++)
			run_move_scenario(&moves[i], base, old);
	}
	keyring_free(added);
	keyring_free(old);
	if (failures) {
		fprintf(stderr, "%d failures; wallets and logs kept in %s\n", failures, root);
		return 1;
	}
	remove_tree(root);
	printf("PASS\n");
	return 0;
}

#else /* no fault injection in this build */

int main(void)
{
	printf("SKIP: this build has no fault injection; configure with -Dfault_injection=true\n");
	return 77;
}

#endif
