/*
 * tderekey rewrap: rewrap every file header under the wallet's active master key while the
 * database runs. The daemon does the work (one atomic, two-copy header update per file); this
 * command starts it, shows progress on a terminal, and prints a summary. Interrupted (Ctrl-C or
 * tderekey stop), it can be run again: headers already under the active key are skipped.
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/backing_scan.h"
#include "keystore/keystore.h"

/* How many headers are not yet under the active key: the progress bar's 100%. */
static long long headers_to_rewrap(const struct control_reply *status)
{
	char backing[4096], active_text[KEY_ID_TEXT_SIZE + 1];
	uint8_t active[KEY_ID_SIZE];
	struct backing_scan scan;
	long long pending;
	int root_fd, ret;

	if (!reply_value(status, "active_key", active_text, sizeof(active_text)) ||
	    key_id_parse(active_text, active) < 0)
		return -1;
	root_fd = open_reported_backing(status, backing, sizeof(backing));
	if (root_fd < 0)
		return -1;
	ret = backing_scan_fd(root_fd, &scan);
	close(root_fd);
	if (ret < 0)
		return -1;
	pending = 0;
	for (size_t i = 0; i < scan.key_count; i++)
		if (memcmp(scan.keys[i].key_id, active, KEY_ID_SIZE) != 0)
			pending += (long long)scan.keys[i].files;
	backing_scan_free(&scan);
	return pending;
}

struct rewrap_progress {
	long long pending; /* headers not under the active key at the start; -1 unknown */
};

static void draw_rewrap(const struct control_reply *status, const char *state, double elapsed,
			void *context)
{
	const struct rewrap_progress *progress = context;
	unsigned long long rewrapped = reply_number(status, "rewrap_changed");
	unsigned long long failed = reply_number(status, "rewrap_failed");

	(void)state;
	if (progress->pending > 0)
		fprintf(stderr, "\rrewrap: %llu/%lld headers (%3.0f%%), %.0f/s, %llu failed ",
			rewrapped, progress->pending,
			100.0 * (double)rewrapped / (double)progress->pending,
			elapsed > 0 ? (double)rewrapped / elapsed : 0.0, failed);
	else
		fprintf(stderr, "\rrewrap: %llu headers, %llu failed ", rewrapped, failed);
}

static int run_rewrap(const struct rekey_options *options)
{
	struct control_reply reply;
	char request[64], state[32] = "", active[KEY_ID_TEXT_SIZE + 1] = "?";
	struct rewrap_progress progress;
	struct job_follow follow = { .prefix = "rewrap", .stop_request = "rewrap-stop",
				     .poll_us = 200000, .draw = draw_rewrap, .context = &progress };
	double seconds;
	int ret;

	/* Make sure the daemon holds the wallet as it is now (a key may have just been set). */
	ret = control_request(options->path, "reload", &reply);
	if (ret == EXIT_NOT_TDEFS || ret == EXIT_DENIED || ret == EXIT_USAGE)
		return ret;
	ret = control_request(options->path, "status", &reply);
	if (ret)
		return ret;
	reply_value(&reply, "active_key", active, sizeof(active));
	progress.pending = headers_to_rewrap(&reply);
	snprintf(request, sizeof(request), "rewrap-start %g", options->rate);
	ret = control_request(options->path, request, &reply);
	if (ret)
		return ret;
	if (options->no_wait) {
		printf("rewrap started under master key %s; follow it with 'tderekey status %s'\n",
		       active, options->path);
		return EXIT_OK;
	}
	follow.progress_json = options->progress_json;
	ret = follow_job(options->path, &follow, &reply, state, sizeof(state), &seconds);
	if (ret)
		return ret;
	if (!options->progress_json)
		printf("rewrap %s: %llu headers rewrapped under master key %s, %llu already under it, "
	       "%llu failed, %llu files in all\n",
	       state, reply_number(&reply, "rewrap_changed"), active,
	       reply_number(&reply, "rewrap_skipped"), reply_number(&reply, "rewrap_failed"),
	       reply_number(&reply, "rewrap_files"));
	if (strcmp(state, "stopped") == 0) {
		printf("stopped before the end; run 'tderekey rewrap %s' again to finish\n",
		       options->path);
		return EXIT_FAILED;
	}
	if (strcmp(state, "done") != 0) {
		char last[512];
		if (reply_value(&reply, "rewrap_last_error", last, sizeof(last)))
			fprintf(stderr, "tderekey: last failure: %s\n", last);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

const struct rekey_command command_rewrap = {
	.name = "rewrap",
	.summary = "rewrap every file header under the active master key, online",
	.help = "Usage: tderekey rewrap MOUNTPOINT [--rate N] [--no-wait]\n"
		"\n"
		"Rewrap the data key of every file under the wallet's active master key while the\n"
		"database keeps running (ADMINISTER KEY MANAGEMENT SET KEY, then this). Only headers\n"
		"are rewritten, never data; each header update is atomic (two copies, each synced),\n"
		"so a crash at any point leaves every file readable under its old or new key.\n"
		"The daemon re-reads its wallet first, so run it right after 'tdekey set-key'.\n"
		"\n"
		"Shows progress on a terminal and prints a summary. Ctrl-C or 'tderekey stop'\n"
		"stops it; running it again resumes (headers already current are skipped).\n"
		"\n"
		"--rate N is at most N header updates per second (default: no limit). The objects\n"
		"of --progress-json, one a second, carry job, state, elapsed_seconds, files,\n"
		"changed, skipped and failed (numbers); the last one has the final state.\n",
	.run = run_rewrap,
};
