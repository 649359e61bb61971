/*
 * tdefs --check BACKING: walk a backing directory without mounting it and report, with paths,
 * everything that is not as docs/FORMAT.md says: a missing or damaged config record, regular
 * files whose header is damaged, truncated, from a newer format, or (with --wallet) names a key
 * the wallet lacks or fails authentication; files in a data rekey whose two header copies
 * disagree in a way no crash leaves them (which the daemon refuses), or of which only one copy
 * is valid; and a census of files per master key ID. It writes
 * nothing unless --repair is given, and then only one thing: a header copy that fails its
 * checksum is replaced by the valid copy beside it (one pwrite and an fsync per file).
 * It walks by descriptor (fs/backing_walk.c): --repair opens files read-write as root in a
 * tree other users may be renaming under it. With --json the same findings come out as one
 * JSON document at the end (schema in check_backing's comment in fs/daemon.h and README.md,
 * "Status views"); every name goes through util/json_text.h, since file names can hold anything.
 */
#include "fs/daemon.h"
#include "fs/backing_scan.h"
#include "fs/backing_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/json_text.h"
#include "util/util.h"
#include "tools/cli/cli.h"

/* One finding, kept for --json (the text output prints it at once). */
struct check_problem {
	const char *kind; /* "DAMAGED", "REPAIRABLE" or "REPAIRED" */
	char *path;
	char *reason;
};

struct check_state {
	struct keyring *ring; /* NULL: headers are checked but not unsealed */
	bool repair;
	bool json;
	struct check_problem *found;
	size_t found_count;
	bool found_lost; /* out of memory keeping a finding: the JSON says so, the exit code too */
	uint64_t files, empty, problems, repaired, rekey_in_progress, plaintext;
	struct key_usage *keys;
	size_t key_count;
};

static struct check_state check; /* --check is single-threaded and runs once per process */

/* Report one finding of KIND: printed now as text, or kept for the JSON document. */
static void report(const char *kind, const char *path, const char *what)
{
	struct check_problem *grown;

	if (!check.json) {
		printf("%-8s %s: %s\n", kind, path, what);
		return;
	}
	grown = realloc(check.found, (check.found_count + 1) * sizeof(*grown));
	if (!grown) {
		check.found_lost = true;
		return;
	}
	check.found = grown;
	grown[check.found_count].kind = kind;
	grown[check.found_count].path = strdup(path);
	grown[check.found_count].reason = strdup(what);
	if (!grown[check.found_count].path || !grown[check.found_count].reason) {
		free(grown[check.found_count].path);
		free(grown[check.found_count].reason);
		check.found_lost = true;
		return;
	}
	check.found_count++;
}

static void problem(const char *path, const char *what)
{
	report("DAMAGED", path, what);
	check.problems++;
}

static void count_key(const uint8_t key_id[MASTER_KEY_ID_SIZE])
{
	for (size_t i = 0; i < check.key_count; i++) {
		if (memcmp(check.keys[i].key_id, key_id, MASTER_KEY_ID_SIZE) == 0) {
			check.keys[i].files++;
			return;
		}
	}
	struct key_usage *grown = realloc(check.keys, (check.key_count + 1) * sizeof(*grown));
	if (!grown)
		return;
	check.keys = grown;
	memcpy(grown[check.key_count].key_id, key_id, MASTER_KEY_ID_SIZE);
	grown[check.key_count++].files = 1;
}

static void check_sealed(const char *path, const struct file_header *header)
{
	char key_text[KEY_ID_TEXT_SIZE], message[160];
	uint8_t *deks;

	if (!check.ring)
		return;
	if (!keyring_holds(check.ring, header->key_id)) {
		key_id_format(header->key_id, key_text);
		snprintf(message, sizeof(message), "header names master key %s, which the wallet "
			 "does not hold", key_text);
		problem(path, message);
		return;
	}
	deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
	if (deks && header_unseal_keyring(header, check.ring, deks) < 0)
		problem(path, "header fails authentication (altered or spliced)");
	secure_free(deks);
}

/*
 * A file in a data rekey: the daemon refuses it when its two valid copies disagree in a way no
 * crash leaves them (header_copies_verify), so this says so too, with the same reason. With
 * --wallet the copies' DEKs are compared as well.
 */
static void check_rekey_copies(const char *path, const uint8_t *image, size_t len,
			       const struct file_header *header, unsigned slot)
{
	struct file_header other;
	bool rekey = header->flags & HEADER_FLAG_REKEY_IN_PROGRESS, other_valid;
	const char *reason;
	uint8_t *deks = NULL;
	char message[400];

	if (len >= TDEFS_HEADER_SIZE &&
	    header_copy_decode(image + (1 - slot) * HEADER_COPY_SIZE, &other) == 0 &&
	    (other.flags & HEADER_FLAG_REKEY_IN_PROGRESS))
		rekey = true;
	if (!rekey)
		return;
	if (check.ring && keyring_holds(check.ring, header->key_id)) {
		deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
		if (deks && header_unseal_keyring(header, check.ring, deks) < 0) {
			secure_free(deks);
			deks = NULL; /* check_sealed() reports it */
		}
	}
	if (header_copies_verify(check.ring, image, len, slot, header, deks, &other_valid,
				 &reason) == -EIO) {
		snprintf(message, sizeof(message), "data rekey state cannot be decided: %s; the "
			 "daemon refuses the file (EIO) rather than guess which key a block is "
			 "under: restore it from a backup", reason);
		problem(path, message);
	}
	secure_free(deks);
}

static void repair_copy(const char *path, int fd, const uint8_t *image, unsigned good_slot,
			bool rekey)
{
	char message[300];

	if (!check.repair) {
		if (rekey)
			snprintf(message, sizeof(message),
				 "header copy %u is damaged, copy %u is valid and in the middle of a "
				 "data rekey (mount read-write to let the rekey finish, which rewrites "
				 "both copies, or --repair restores the copy)", 1 - good_slot, good_slot);
		else
			snprintf(message, sizeof(message), "header copy %u is damaged, copy %u is "
				 "valid (--repair restores it)", 1 - good_slot, good_slot);
		report("REPAIRABLE", path, message);
		check.problems++;
		return;
	}
	if (pwrite_all(fd, image + good_slot * HEADER_COPY_SIZE, HEADER_COPY_SIZE,
		       (off_t)(1 - good_slot) * HEADER_COPY_SIZE) < 0 || fsync(fd) < 0) {
		problem(path, "cannot write the repaired header copy");
		return;
	}
	snprintf(message, sizeof(message), "header copy %u restored from copy %u", 1 - good_slot,
		 good_slot);
	report("REPAIRED", path, message);
	check.repaired++;
}

static int visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header header, other;
	char relative[PATH_MAX + 1]; /* shown from the backing root: "/dir/file" */
	unsigned slot;
	size_t done;
	int ret;

	(void)fd_taken;
	(void)context;
	snprintf(relative, sizeof(relative), "/%s", entry->relative);
	if (entry->kind == BACKING_WALK_ERROR) {
		problem(relative, entry->error == ELOOP
				? "directories nested deeper than tdefs walks"
				: strerror(entry->error));
		return 0;
	}
	if (config_reserved_name(entry->relative))
		return 0;
	check.files++;
	/*
	 * An adopted directory's plaintext file: its bytes are data, never a header to check or
	 * repair, even when they begin like one.
	 */
	if (plaintext_marker_read(entry->fd, NULL) == 1) {
		check.plaintext++;
		return 0;
	}
	if (entry->st.st_size == 0) {
		check.empty++;
		return 0;
	}
	if (entry->st.st_size < (off_t)TDEFS_HEADER_SIZE) {
		problem(relative, "shorter than its 4096-byte header (truncated, or not a tdefs file)");
		return 0;
	}
	ret = pread_full(entry->fd, image, sizeof(image), 0, &done);
	if (ret < 0) {
		problem(relative, strerror(-ret));
		return 0;
	}
	ret = header_select(image, done, &header, &slot);
	if (ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT)) {
		problem(relative, "header from a newer tdefs format");
		return 0;
	}
	if (ret < 0) {
		struct file_header first, second;

		if (header_copy_decode(image, &first) == 0 &&
		    header_copy_decode(image + HEADER_COPY_SIZE, &second) == 0)
			problem(relative, "header copies belong to two different files (spliced)");
		else
			problem(relative,
				"no valid header copy (not a tdefs file, or both copies damaged)");
		return 0;
	}
	count_key(header.key_id);
	if (header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)
		check.rekey_in_progress++;
	check_sealed(relative, &header);
	check_rekey_copies(relative, image, done, &header, slot);
	if (header_copy_decode(image + (1 - slot) * HEADER_COPY_SIZE, &other) < 0)
		repair_copy(relative, entry->fd, image, slot,
			    header.flags & HEADER_FLAG_REKEY_IN_PROGRESS);
	return 0;
}

static void free_findings(void)
{
	for (size_t i = 0; i < check.found_count; i++) {
		free(check.found[i].path);
		free(check.found[i].reason);
	}
	free(check.found);
	check.found = NULL;
	check.found_count = 0;
}

static void print_text(const struct keyring *ring)
{
	printf("\n%-34s %10s\n", "MASTER KEY ID", "FILES");
	for (size_t i = 0; i < check.key_count; i++) {
		char id[KEY_ID_TEXT_SIZE];
		key_id_format(check.keys[i].key_id, id);
		printf("%-34s %10llu%s\n", id, (unsigned long long)check.keys[i].files,
		       ring && !keyring_holds(ring, check.keys[i].key_id) ? "  (not in the wallet)" : "");
	}
	printf("\n%llu files, %llu without a header yet, %llu plaintext (adopted, not encrypted "
	       "yet), %llu in the middle of a data rekey, %llu problems, %llu repaired\n",
	       (unsigned long long)check.files, (unsigned long long)check.empty,
	       (unsigned long long)check.plaintext,
	       (unsigned long long)check.rekey_in_progress, (unsigned long long)check.problems,
	       (unsigned long long)check.repaired);
}

/* The --json document; its schema is documented with check_backing() in fs/daemon.h. */
static void print_json(const char *backing, const struct keyring *ring)
{
	printf("{\"backing\": ");
	json_write_string(stdout, backing);
	printf(", \"wallet_checked\": %s, \"repair\": %s, \"problems\": [",
	       ring ? "true" : "false", check.repair ? "true" : "false");
	for (size_t i = 0; i < check.found_count; i++) {
		printf("%s{\"path\": ", i ? ", " : "");
		json_write_string(stdout, check.found[i].path);
		printf(", \"kind\": \"%s\", \"reason\": ", check.found[i].kind);
		json_write_string(stdout, check.found[i].reason);
		printf("}");
	}
	printf("], \"keys\": [");
	for (size_t i = 0; i < check.key_count; i++) {
		char id[KEY_ID_TEXT_SIZE];
		key_id_format(check.keys[i].key_id, id);
		printf("%s{\"key_id\": \"%s\", \"files\": %llu, \"in_wallet\": %s}", i ? ", " : "",
		       id, (unsigned long long)check.keys[i].files,
		       !ring ? "null" : keyring_holds(ring, check.keys[i].key_id) ? "true" : "false");
	}
	printf("], \"totals\": {\"files\": %llu, \"empty\": %llu, \"plaintext\": %llu, "
	       "\"rekey_in_progress\": %llu, "
	       "\"problems\": %llu, \"repaired\": %llu}, \"complete\": %s, \"clean\": %s}\n",
	       (unsigned long long)check.files, (unsigned long long)check.empty,
	       (unsigned long long)check.plaintext,
	       (unsigned long long)check.rekey_in_progress, (unsigned long long)check.problems,
	       (unsigned long long)check.repaired, check.found_lost ? "false" : "true",
	       check.problems || check.found_lost ? "false" : "true");
}

int check_backing(const char *backing, struct keyring *ring, bool repair, bool json)
{
	struct backing_config config;
	char path[4096];
	uint8_t *data;
	size_t len;
	int root_fd, ret;

	memset(&check, 0, sizeof(check));
	check.ring = ring;
	check.repair = repair;
	check.json = json;
	snprintf(path, sizeof(path), "%s/%s", backing, CONFIG_FILE_NAME);
	ret = read_small_file(path, 4096, &data, &len);
	if (ret < 0) {
		problem(CONFIG_FILE_NAME, ret == -ENOENT ? "missing: not a tdefs backing directory"
							 : strerror(-ret));
	} else {
		ret = config_decode(data, len, &config);
		free(data);
		if (ret < 0)
			problem(CONFIG_FILE_NAME, "damaged config record");
		else if (ring) {
			uint8_t wallet_id[16];
			keyring_wallet_id(ring, wallet_id);
			if (memcmp(wallet_id, config.wallet_id, 16) != 0)
				problem(CONFIG_FILE_NAME, "initialised for another wallet");
		}
	}
	root_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = root_fd < 0 ? -errno
			  : backing_walk(root_fd, "", check.repair ? O_RDWR : O_RDONLY, visit, NULL);
	if (root_fd >= 0)
		close(root_fd);
	if (ret < 0) {
		fprintf(stderr, "tdefs: --check %s: %s\n", backing, strerror(-ret));
		free_findings();
		free(check.keys);
		return CLI_EXIT_BACKING;
	}
	if (check.json)
		print_json(backing, ring);
	else
		print_text(ring);
	free_findings();
	free(check.keys);
	return check.problems || check.found_lost ? 1 : 0;
}
