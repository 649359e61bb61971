/*
 * tderekey encrypt: convert the plaintext files of an adopted directory (tdefs --init --adopt)
 * to encrypted ones while the database runs (ALTER TABLESPACE ... ENCRYPTION ONLINE ENCRYPT,
 * cryptsetup reencrypt --encrypt). The daemon does the work, one file at a time, each through an
 * encrypted copy renamed over it (docs/REKEY.md, "Encrypting an adopted directory"); this
 * command says what is left and how much free space it needs, starts the job for each PATH in
 * turn, shows progress with MB/s and ETA on a terminal, and prints a summary.
 */
#include "tools/tderekey/tderekey.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/backing_walk.h"
#include "fs/format.h"

struct plaintext_survey {
	unsigned long long files, bytes, largest;
};

static int survey_visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct plaintext_survey *survey = context;

	(void)fd_taken;
	if (entry->kind != BACKING_WALK_FILE || config_reserved_name(entry->relative) ||
	    plaintext_marker_read(entry->fd, NULL) != 1)
		return 0;
	survey->files++;
	survey->bytes += (unsigned long long)entry->st.st_size;
	if ((unsigned long long)entry->st.st_size > survey->largest)
		survey->largest = (unsigned long long)entry->st.st_size;
	return 0;
}

/* The progress bar's 100%: the plaintext bytes under the path, read from the backing side. */
static unsigned long long total_bytes;

static void draw_encrypt(const struct control_reply *status, const char *state, double elapsed,
			 void *context)
{
	unsigned long long done = reply_number(status, "encrypt_bytes") +
				  reply_number(status, "encrypt_current_done");

	(void)context;
	follow_draw_bytes("encrypt", done, total_bytes, state, elapsed);
}

/* One PATH: survey, start, follow. */
static int encrypt_path(const struct rekey_options *options, const char *path)
{
	struct control_reply reply;
	struct plaintext_survey survey = { 0 };
	struct job_follow follow = { .prefix = "encrypt", .stop_request = "encrypt-stop",
				     .poll_us = 250000, .draw = draw_encrypt,
				     .progress_json = options->progress_json };
	char request[PATH_MAX + 64], relative[PATH_MAX], backing[4096], state[32] = "";
	double seconds;
	int root_fd, ret;

	if (relative_to_mount(path, relative, sizeof(relative)) < 0) {
		fprintf(stderr, "tderekey encrypt: cannot resolve %s on the mount of %s\n", path,
			options->path);
		return EXIT_USAGE;
	}
	if (strchr(relative, '\n')) {
		fprintf(stderr, "tderekey encrypt: %s: a path with a newline cannot be sent to the "
				"daemon\n", path);
		return EXIT_USAGE;
	}
	ret = control_request(options->path, "status", &reply);
	if (ret)
		return ret;
	root_fd = open_reported_backing(&reply, backing, sizeof(backing));
	if (root_fd < 0)
		return EXIT_FAILED;
	ret = backing_walk(root_fd, relative[0] == '/' ? relative + 1 : relative, O_RDONLY,
			   survey_visit, &survey);
	close(root_fd);
	if (ret < 0) {
		fprintf(stderr, "tderekey encrypt: %s: %s in the backing directory\n", path,
			strerror(-ret));
		return EXIT_FAILED;
	}
	total_bytes = survey.bytes;
	if (!options->progress_json)
		printf("encrypt %s: %llu plaintext files, %llu bytes; one encrypted copy at a time "
		       "needs up to %llu bytes free (the largest file)\n",
		       path, survey.files, survey.bytes, survey.largest + 4096);
	snprintf(request, sizeof(request), "encrypt-start %.0f %s", options->rate, relative);
	/* The daemon checks the free space again, before it changes anything. */
	ret = control_request(options->path, request, &reply);
	if (ret)
		return ret;
	if (options->no_wait) {
		printf("encrypt started on %s; follow it with 'tderekey status'\n", path);
		return EXIT_OK;
	}
	ret = follow_job(options->path, &follow, &reply, state, sizeof(state), &seconds);
	if (ret)
		return ret;
	if (!options->progress_json)
		printf("encrypt %s %s: %llu files encrypted, %llu skipped (not plaintext), %llu "
		       "failed, %.1f MB in %.1f s (%.1f MB/s)\n",
		       path, state, reply_number(&reply, "encrypt_changed"),
		       reply_number(&reply, "encrypt_skipped"), reply_number(&reply, "encrypt_failed"),
		       (double)reply_number(&reply, "encrypt_bytes") / 1e6, seconds,
		       seconds > 0 ? (double)reply_number(&reply, "encrypt_bytes") / 1e6 / seconds
				   : 0.0);
	if (strcmp(state, "done") != 0) {
		char last[600];

		if (reply_value(&reply, "encrypt_last_error", last, sizeof(last)))
			fprintf(stderr, "tderekey: last failure: %s\n", last);
		if (strcmp(state, "stopped") == 0)
			printf("stopped; the file in progress stays plaintext, and 'tderekey encrypt "
			       "%s' goes on with the files left\n", options->path);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int run_encrypt(const struct rekey_options *options)
{
	struct control_reply reply;
	char adopted[8] = "";
	int ret = control_request(options->path, "status", &reply);

	if (ret)
		return ret;
	if (!reply_value(&reply, "adopted", adopted, sizeof(adopted)) || strcmp(adopted, "1") != 0) {
		fprintf(stderr, "tderekey encrypt: %s: its backing directory was not made with "
				"tdefs --init --adopt: every file in it is encrypted already\n",
			options->path);
		return EXIT_FAILED;
	}
	if (options->subpath_count == 0)
		return encrypt_path(options, options->path);
	for (int i = 0; i < options->subpath_count; i++) {
		ret = encrypt_path(options, options->subpaths[i]);
		if (ret)
			return ret;
	}
	return EXIT_OK;
}

const struct rekey_command command_encrypt = {
	.name = "encrypt",
	.summary = "convert an adopted directory's plaintext files to encrypted, online",
	.max_paths = MAX_PATHS_ANY,
	.help = "Usage: tderekey encrypt MOUNTPOINT [PATH...] [--rate BYTES] [--no-wait]\n"
		"\n"
		"Encrypt the plaintext files of a backing directory made with tdefs --init --adopt,\n"
		"under MOUNTPOINT or each PATH on it in turn, while the database reads and writes\n"
		"them (ALTER TABLESPACE ... ENCRYPTION ONLINE ENCRYPT). One file at a time, an\n"
		"encrypted copy is built beside it in the backing directory and renamed over it\n"
		"when complete; the database's open files follow. The free space needed is the\n"
		"size of the largest file (said before starting); without it nothing is changed.\n"
		"A crash or an unmount loses only the copy being built: the next mount goes on.\n"
		"Files with several names (hard links) are not converted.\n"
		"\n"
		"Shows progress with MB/s and ETA on a terminal and prints a summary. Ctrl-C (or\n"
		"'tderekey stop') stops; 'tderekey pause' and 'tderekey resume' hold and continue;\n"
		"'tderekey status' shows the plaintext files left, or that none is.\n"
		"With --progress-json, one JSON object per poll on stdout: job, state,\n"
		"elapsed_seconds, files, changed, skipped, failed, bytes, current_done,\n"
		"current_total (numbers); the last one has the final state. Exit status 1 also\n"
		"means: stopped, not an adopted directory, or not enough free space.\n",
	.run = run_encrypt,
};
