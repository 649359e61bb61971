/*
 * tderekey data: re-encrypt file contents under fresh per-file DEKs while the database runs
 * (ALTER TABLESPACE ... ENCRYPTION ONLINE REKEY, in place). The daemon does the work, one
 * crash-safe chunk at a time (docs/REKEY.md); this command starts it for a mount or a path
 * below it, shows progress with MB/s and ETA on a terminal, and prints a summary.
 * tderekey pause and resume hold and continue it.
 */
#include "tools/tderekey/tderekey.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs/backing_walk.h"
#include "util/util.h"

/* The bytes under the path at the start: the progress bar's 100%. */
static unsigned long long total_bytes;

static int add_size(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	(void)fd_taken;
	(void)context;
	if (entry->kind == BACKING_WALK_FILE)
		total_bytes += (unsigned long long)entry->st.st_size;
	return 0;
}

/*
 * The bytes the rekey will go through, for the progress bar: a walk of the mount by
 * descriptor (fs/backing_walk.h), as root in a tree other users rename.
 */
static void sum_sizes(const char *path)
{
	int fd = open(path, O_PATH | O_CLOEXEC);

	total_bytes = 0;
	if (fd < 0)
		return;
	backing_walk(fd, "", O_PATH, add_size, NULL);
	close(fd);
}

/* PATH on the mount, as a path relative to the mount point ("" for the mount point itself). */
int relative_to_mount(const char *path, char *relative, size_t len)
{
	struct mount_entry entry;
	struct stat st;
	char *resolved = realpath(path, NULL);
	size_t mount_len;

	if (!resolved || stat(resolved, &st) < 0 ||
	    mount_find_by_device(major(st.st_dev), minor(st.st_dev), &entry) < 0) {
		free(resolved);
		return -ENOENT;
	}
	mount_len = strlen(entry.mount_point);
	if (strncmp(resolved, entry.mount_point, mount_len) != 0) {
		free(resolved);
		return -EXDEV;
	}
	snprintf(relative, len, "%s", resolved + mount_len);
	free(resolved);
	return 0;
}

static void draw_data(const struct control_reply *status, const char *state, double elapsed,
		      void *context)
{
	unsigned long long done = reply_number(status, "data_bytes") +
				  reply_number(status, "data_current_done");

	(void)context;
	follow_draw_bytes("data rekey", done, total_bytes, state, elapsed);
}

static int run_data(const struct rekey_options *options)
{
	struct control_reply reply;
	char request[PATH_MAX + 64], relative[PATH_MAX], state[32] = "";
	struct job_follow follow = { .prefix = "data", .stop_request = "data-stop",
				     .poll_us = 250000, .draw = draw_data };
	double seconds;
	int ret;

	/* Checks that the path is on a tdefs mount and that we may talk to its daemon. */
	ret = control_request(options->path, "status", &reply);
	if (ret)
		return ret;
	if (relative_to_mount(options->path, relative, sizeof(relative)) < 0) {
		fprintf(stderr, "tderekey: cannot resolve %s on its mount\n", options->path);
		return EXIT_USAGE;
	}
	if (strchr(relative, '\n')) {
		fprintf(stderr, "tderekey: %s: a path with a newline cannot be sent to the daemon\n",
			options->path);
		return EXIT_USAGE;
	}
	sum_sizes(options->path);
	snprintf(request, sizeof(request), "data-start %.0f %s", options->rate, relative);
	ret = control_request(options->path, request, &reply);
	if (ret)
		return ret;
	if (options->no_wait) {
		printf("data rekey started on %s; follow it with 'tderekey status'\n", options->path);
		return EXIT_OK;
	}
	follow.progress_json = options->progress_json;
	ret = follow_job(options->path, &follow, &reply, state, sizeof(state), &seconds);
	if (ret)
		return ret;
	if (!options->progress_json)
		printf("data rekey %s: %llu files re-encrypted under new keys, %llu skipped, %llu failed, "
	       "%.1f MB in %.1f s (%.1f MB/s)\n",
	       state, reply_number(&reply, "data_changed"), reply_number(&reply, "data_skipped"),
	       reply_number(&reply, "data_failed"), (double)reply_number(&reply, "data_bytes") / 1e6,
	       seconds,
	       seconds > 0 ? (double)reply_number(&reply, "data_bytes") / 1e6 / seconds : 0.0);
	if (strcmp(state, "done") != 0) {
		char last[600];
		if (reply_value(&reply, "data_last_error", last, sizeof(last)))
			fprintf(stderr, "tderekey: last failure: %s\n", last);
		if (strcmp(state, "stopped") == 0)
			printf("stopped; the file in progress is finished at the next mount, and "
			       "'tderekey data %s' re-encrypts the rest\n", options->path);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

const struct rekey_command command_data = {
	.name = "data",
	.summary = "re-encrypt file contents under fresh per-file keys, online",
	.help = "Usage: tderekey data PATH [--rate BYTES] [--no-wait]\n"
		"\n"
		"Give every file under PATH (the mount point, a directory or a file on the mount)\n"
		"a new random data key and re-encrypt its contents in place while the database\n"
		"reads and writes it (ALTER TABLESPACE ... ENCRYPTION ONLINE REKEY, without\n"
		"copying the datafiles). Each file is rewritten in 880 KiB chunks; only writes to\n"
		"the chunk being rewritten wait, for that chunk only. A crash at any point is\n"
		"recovered when the file is next opened, and the interrupted file is finished at\n"
		"the next mount. When a file is done its old key is gone from disk and memory.\n"
		"\n"
		"Shows progress with MB/s and ETA on a terminal and prints a summary.\n"
		"Ctrl-C stops; 'tderekey pause' and 'tderekey resume' hold and continue.\n"
		"\n"
		"--rate BYTES is at most BYTES per second (suffixes K, M, G, powers of 1024:\n"
		"--rate 50M). The objects of --progress-json, one per poll, carry job, state,\n"
		"elapsed_seconds, files, changed, skipped, failed, bytes, current_done and\n"
		"current_total (numbers); the last one has the final state.\n",
	.run = run_data,
};

/* The data rekey, or else a conversion to encrypted files when that is what runs. */
static int run_pause_or_resume(const struct rekey_options *options, const char *request,
			       const char *done)
{
	struct control_reply reply;
	char state[32] = "", wanted[32];
	const char *job = "data rekey";
	int ret = control_request(options->path, "status", &reply);

	snprintf(wanted, sizeof(wanted), "%s", strcmp(done, "paused") == 0 ? "running" : "paused");
	if (ret == EXIT_OK && (!reply_value(&reply, "data_state", state, sizeof(state)) ||
			       strcmp(state, wanted) != 0) &&
	    reply_value(&reply, "encrypt_state", state, sizeof(state)) &&
	    strcmp(state, wanted) == 0) {
		job = "encrypt";
		request = strcmp(done, "paused") == 0 ? "encrypt-pause" : "encrypt-resume";
	}
	if (ret == EXIT_OK)
		ret = control_request(options->path, request, &reply);
	if (ret == EXIT_OK)
		printf("%s %s on %s\n", job, done, options->path);
	return ret;
}

static int run_pause(const struct rekey_options *options)
{
	return run_pause_or_resume(options, "data-pause", "paused");
}

static int run_resume(const struct rekey_options *options)
{
	return run_pause_or_resume(options, "data-resume", "resumed");
}

const struct rekey_command command_pause = {
	.name = "pause",
	.summary = "hold a running data rekey (or encrypt) after its current chunk",
	.help = "Usage: tderekey pause MOUNTPOINT\n"
		"\n"
		"Hold the data rekey of the daemon serving MOUNTPOINT after the chunk it is\n"
		"writing; the file in progress keeps both keys and reads and writes normally.\n"
		"'tderekey resume' continues where it stopped. With no data rekey running, a\n"
		"running conversion (tderekey encrypt) is held instead.\n",
	.run = run_pause,
};

const struct rekey_command command_resume = {
	.name = "resume",
	.summary = "continue a paused data rekey (or encrypt)",
	.help = "Usage: tderekey resume MOUNTPOINT\n"
		"\n"
		"Continue the paused data rekey of the daemon serving MOUNTPOINT (or, with none\n"
		"paused, its paused conversion to encrypted files).\n",
	.run = run_resume,
};
