/*
 * tderekey files MOUNTPOINT [PATH]: one row per regular file of a mount, with its plaintext
 * size, the master key ID of its newest valid header copy and the state of its data key
 * (NORMAL, REKEYING with the watermark, DAMAGED with the reason, EMPTY before its first
 * write), in the spirit of Oracle's V$ENCRYPTED_TABLESPACES. It asks the daemon for status
 * first, which the daemon answers only to root or the mount's owner (SO_PEERCRED), and lists
 * nothing to anyone it refuses; then it reads the headers straight from the backing directory
 * the daemon names, read-only and without a key (fs/format.h decodes, nothing is unsealed).
 * The tool runs as root in trees other users rename, so the backing tree is walked only by
 * descriptor (fs/backing_walk.h), from PATH's place on the mount, never through a symlink.
 */
#include "tools/tderekey/tderekey.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/backing_walk.h"
#include "fs/format.h"
#include "keystore/keystore.h"
#include "util/json_text.h"
#include "util/util.h"

struct file_row {
	const char *state; /* "NORMAL", "REKEYING", "DAMAGED", "EMPTY" or "PLAINTEXT" */
	bool have_size, have_key, rekeying;
	uint64_t size;
	char key_id[KEY_ID_TEXT_SIZE];
	uint64_t watermark_bytes;
	double percent;
	unsigned valid_copies;
	char reason[300]; /* "" for none */
};

struct files_walk {
	bool json;
	unsigned long long rows, normal, rekeying, damaged, empty, plaintext, errors;
};

/* What the header of one backing file says; nothing is unsealed. */
static void describe(const struct backing_walk_entry *entry, struct file_row *row)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header header, other;
	const char *reason;
	unsigned slot;
	size_t done;
	int ret;

	memset(row, 0, sizeof(*row));
	row->state = "DAMAGED";
	/* The marker decides, never the bytes (docs/FORMAT.md, "Adopted directories"). */
	if (plaintext_marker_read(entry->fd, NULL) == 1) {
		row->state = "PLAINTEXT";
		row->have_size = true;
		row->size = (uint64_t)entry->st.st_size;
		return;
	}
	if (entry->st.st_size == 0) {
		row->state = "EMPTY";
		row->have_size = true;
		return;
	}
	if (entry->st.st_size < (off_t)TDEFS_HEADER_SIZE) {
		snprintf(row->reason, sizeof(row->reason),
			 "shorter than its 4096-byte header (truncated, or not a tdefs file)");
		return;
	}
	row->have_size = true;
	row->size = (uint64_t)entry->st.st_size - TDEFS_HEADER_SIZE;
	memset(image, 0, sizeof(image));
	ret = pread_full(entry->fd, image, sizeof(image), 0, &done);
	if (ret < 0) {
		snprintf(row->reason, sizeof(row->reason), "cannot read the header: %s",
			 strerror(-ret));
		return;
	}
	ret = header_select(image, done, &header, &slot);
	if (ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT)) {
		snprintf(row->reason, sizeof(row->reason), "header from a newer tdefs format");
		return;
	}
	if (ret < 0) {
		struct file_header first, second;
		snprintf(row->reason, sizeof(row->reason), "%s",
			 header_copy_decode(image, &first) == 0 &&
					 header_copy_decode(image + HEADER_COPY_SIZE, &second) == 0
				 ? "header copies belong to two different files (spliced)"
				 : "no valid header copy (not a tdefs file, or both copies damaged)");
		return;
	}
	row->have_key = true;
	key_id_format(header.key_id, row->key_id);
	row->valid_copies = 1;
	if (header_copy_decode(image + (1 - slot) * HEADER_COPY_SIZE, &other) == 0) {
		row->valid_copies = 2;
		if (header_copies_check(&header, NULL, &other, NULL, &reason) < 0) {
			snprintf(row->reason, sizeof(row->reason),
				 "data rekey state cannot be decided: %s", reason);
			return;
		}
	} else {
		snprintf(row->reason, sizeof(row->reason),
			 "header copy %u is damaged, copy %u is valid (tdefs --check --repair "
			 "restores it while unmounted)", 1 - slot, slot);
	}
	if (header.flags & HEADER_FLAG_REKEY_IN_PROGRESS) {
		row->state = "REKEYING";
		row->rekeying = true;
		row->watermark_bytes = header.watermark << TDEFS_BLOCK_SHIFT;
		if (row->watermark_bytes > row->size)
			row->watermark_bytes = row->size;
		row->percent = row->size ? 100.0 * (double)row->watermark_bytes / (double)row->size
					 : 100.0;
	} else {
		row->state = "NORMAL";
	}
}

/* A name for a terminal: control bytes and '\' escaped, so no name can move the cursor. */
static void print_text_name(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", stdout);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static void print_row(const struct files_walk *walk, const char *path, const struct file_row *row)
{
	if (walk->json) {
		printf("%s\n  {\"path\": ", walk->rows ? "," : "");
		json_write_string(stdout, path);
		printf(", \"size\": ");
		if (row->have_size)
			printf("%llu", (unsigned long long)row->size);
		else
			printf("null");
		printf(", \"key_id\": ");
		if (row->have_key)
			printf("\"%s\"", row->key_id);
		else
			printf("null");
		printf(", \"state\": \"%s\", \"valid_copies\": %u, ", row->state, row->valid_copies);
		if (row->rekeying)
			printf("\"watermark_bytes\": %llu, \"rekey_percent\": %.1f, ",
			       (unsigned long long)row->watermark_bytes, row->percent);
		else
			printf("\"watermark_bytes\": null, \"rekey_percent\": null, ");
		printf("\"reason\": ");
		if (row->reason[0])
			json_write_string(stdout, row->reason);
		else
			printf("null");
		printf("}");
		return;
	}
	char size[32], state[32];

	if (row->have_size)
		snprintf(size, sizeof(size), "%llu", (unsigned long long)row->size);
	else
		snprintf(size, sizeof(size), "-");
	if (row->rekeying)
		snprintf(state, sizeof(state), "%s %.1f%%", row->state, row->percent);
	else
		snprintf(state, sizeof(state), "%s", row->state);
	printf("%-15s %-32s %14s ", state, row->have_key ? row->key_id : "-", size);
	print_text_name(path);
	if (row->rekeying)
		printf("  (watermark at byte %llu)", (unsigned long long)row->watermark_bytes);
	if (row->reason[0])
		printf("  (%s)", row->reason);
	putchar('\n');
}

static int visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct files_walk *walk = context;
	char path[PATH_MAX + 2];
	struct file_row row;

	(void)fd_taken;
	snprintf(path, sizeof(path), "/%s", entry->relative);
	if (entry->kind == BACKING_WALK_ERROR) {
		/* Not a file row: the directory or file could not be read at all. */
		walk->errors++;
		fprintf(stderr, "tderekey files: cannot read %s in the backing directory: %s\n",
			path, entry->error == ELOOP ? "nested deeper than tdefs walks"
						    : strerror(entry->error));
		return 0;
	}
	if (config_reserved_name(entry->relative))
		return 0;
	describe(entry, &row);
	print_row(walk, path, &row);
	walk->rows++;
	if (strcmp(row.state, "NORMAL") == 0)
		walk->normal++;
	else if (strcmp(row.state, "REKEYING") == 0)
		walk->rekeying++;
	else if (strcmp(row.state, "EMPTY") == 0)
		walk->empty++;
	else if (strcmp(row.state, "PLAINTEXT") == 0)
		walk->plaintext++;
	else
		walk->damaged++;
	return 0;
}

static int run_files(const struct rekey_options *options)
{
	struct control_reply reply;
	struct files_walk walk = { .json = options->json };
	const char *on_mount = options->subpath ? options->subpath : options->path;
	char backing[4096], relative[PATH_MAX];
	struct stat mount_st, path_st;
	int root_fd, ret;

	/* The daemon answers only root or the mount's owner: nothing is listed to anyone else. */
	ret = control_request(options->path, "status", &reply);
	if (ret)
		return ret;
	if (!reply_value(&reply, "backing", backing, sizeof(backing))) {
		fprintf(stderr, "tderekey files: the daemon of %s names no backing directory\n",
			options->path);
		return EXIT_FAILED;
	}
	if (stat(options->path, &mount_st) < 0) {
		fprintf(stderr, "tderekey files: cannot resolve %s on its mount\n", options->path);
		return EXIT_USAGE;
	}
	if (stat(on_mount, &path_st) < 0) {
		fprintf(stderr, "tderekey files: %s: %s\n", on_mount, strerror(errno));
		return EXIT_USAGE;
	}
	if (path_st.st_dev != mount_st.st_dev ||
	    relative_to_mount(on_mount, relative, sizeof(relative)) < 0) {
		fprintf(stderr, "tderekey files: %s is not on the mount %s\n", on_mount,
			options->path);
		return EXIT_USAGE;
	}
	root_fd = open_reported_backing(&reply, backing, sizeof(backing));
	if (root_fd < 0)
		return EXIT_FAILED;
	if (options->json) {
		char *mount = realpath(options->path, NULL);
		printf("{\"mount\": ");
		json_write_string(stdout, mount ? mount : options->path);
		free(mount);
		printf(", \"backing\": ");
		json_write_string(stdout, backing);
		printf(", \"path\": ");
		json_write_string(stdout, relative[0] ? relative : "/");
		printf(", \"files\": [");
	} else {
		printf("%-15s %-32s %14s %s\n", "STATE", "MASTER KEY ID", "SIZE", "PATH");
	}
	ret = backing_walk(root_fd, relative, O_RDONLY, visit, &walk);
	close(root_fd);
	if (ret < 0) {
		if (options->json)
			printf("]}\n"); /* keep stdout a document; the error is on stderr */
		fprintf(stderr, "tderekey files: %s: %s in the backing directory\n", on_mount,
			strerror(-ret));
		return EXIT_FAILED;
	}
	if (options->json)
		printf("%s], \"totals\": {\"files\": %llu, \"normal\": %llu, \"rekeying\": %llu, "
		       "\"damaged\": %llu, \"empty\": %llu, \"plaintext\": %llu, "
		       "\"unreadable\": %llu}}\n",
		       walk.rows ? "\n" : "", walk.rows, walk.normal, walk.rekeying, walk.damaged,
		       walk.empty, walk.plaintext, walk.errors);
	else
		printf("\n%llu files: %llu normal, %llu rekeying, %llu damaged, %llu empty, "
		       "%llu plaintext%s\n",
		       walk.rows, walk.normal, walk.rekeying, walk.damaged, walk.empty, walk.plaintext,
		       walk.errors ? ", some unreadable (see above)" : "");
	return walk.errors ? EXIT_FAILED : EXIT_OK;
}

const struct rekey_command command_files = {
	.name = "files",
	.summary = "one row per file: size, master key ID, data key state",
	.max_paths = 2,
	.help = "Usage: tderekey files MOUNTPOINT [PATH] [--json]\n"
		"\n"
		"One row per regular file under PATH (default: the whole mount; a directory or a\n"
		"file on the mount), like Oracle's V$ENCRYPTED_TABLESPACES: the plaintext size,\n"
		"the master key ID of the newest valid header copy, and the state of the file's\n"
		"data key:\n"
		"  NORMAL    one data key\n"
		"  REKEYING  a data rekey is under way or was interrupted: blocks below the\n"
		"            watermark (bytes, and percent of the size) are under the new key\n"
		"  DAMAGED   no usable header (the reason says why); the daemon refuses the file\n"
		"  EMPTY     no header yet (a file never written)\n"
		"  PLAINTEXT a file of a directory made with tdefs --init --adopt, served as it\n"
		"            is until 'tderekey encrypt' converts it (size: its bytes)\n"
		"Headers are read from the backing directory without a key and without writing;\n"
		"a file being written at that moment may show a header copy as damaged.\n"
		"Only root and the user who mounted may list (the daemon checks).\n"
		"\n"
		"With --json, one JSON object instead of the table (numbers as numbers):\n"
		"    {\"mount\": str, \"backing\": str, \"path\": str,\n"
		"     \"files\": [{\"path\": str, \"size\": int|null, \"key_id\": str|null,\n"
		"                \"state\": \"NORMAL\"|\"REKEYING\"|\"DAMAGED\"|\"EMPTY\"|\"PLAINTEXT\",\n"
		"                \"valid_copies\": int (0-2), \"watermark_bytes\": int|null,\n"
		"                \"rekey_percent\": number|null, \"reason\": str|null}],\n"
		"     \"totals\": {\"files\": int, \"normal\": int, \"rekeying\": int,\n"
		"                \"damaged\": int, \"empty\": int, \"plaintext\": int,\n"
		"                \"unreadable\": int}}\n"
		"    path is from the mount point (\"/dir/file\"); reason explains DAMAGED, or warns\n"
		"    of one damaged header copy on a readable file; null otherwise.\n",
	.run = run_files,
};
