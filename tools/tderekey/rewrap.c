/*
 * tderekey rewrap: rewrap every file header under the wallet's active master key while the
 * database runs. The daemon does the work (one atomic, two-copy header update per file); this
 * command starts it, shows progress on a terminal, and prints a summary. Interrupted (Ctrl-C or
 * tderekey stop), it can be run again: headers already under the active key are skipped.
 */
#include "tools/tderekey/tderekey.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/backing_scan.h"
#include "keystore/keystore.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signal_number)
{
	(void)signal_number;
	interrupted = 1;
}

static unsigned long long value_number(const struct control_reply *reply, const char *key)
{
	char buf[64];

	return reply_value(reply, key, buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : 0;
}

/* How many headers are not yet under the active key: the progress bar's 100%. */
static long long headers_to_rewrap(const struct control_reply *status)
{
	char backing[4096], active_text[KEY_ID_TEXT_SIZE + 1];
	uint8_t active[KEY_ID_SIZE];
	struct backing_scan scan;
	long long pending;

	if (!reply_value(status, "backing", backing, sizeof(backing)) ||
	    !reply_value(status, "active_key", active_text, sizeof(active_text)) ||
	    key_id_parse(active_text, active) < 0 || backing_scan(backing, &scan) < 0)
		return -1;
	pending = 0;
	for (size_t i = 0; i < scan.key_count; i++)
		if (memcmp(scan.keys[i].key_id, active, KEY_ID_SIZE) != 0)
			pending += (long long)scan.keys[i].files;
	backing_scan_free(&scan);
	return pending;
}

static int run_rewrap(const struct rekey_options *options)
{
	struct control_reply reply;
	char request[64], state[32] = "", active[KEY_ID_TEXT_SIZE + 1] = "?";
	bool tty = isatty(STDERR_FILENO);
	struct timespec start, now;
	long long pending;
	int ret;

	/* Make sure the daemon holds the wallet as it is now (a key may have just been set). */
	ret = control_request(options->path, "reload", &reply);
	if (ret == EXIT_NOT_TDEFS || ret == EXIT_DENIED || ret == EXIT_USAGE)
		return ret;
	ret = control_request(options->path, "status", &reply);
	if (ret)
		return ret;
	reply_value(&reply, "active_key", active, sizeof(active));
	pending = headers_to_rewrap(&reply);
	snprintf(request, sizeof(request), "rewrap-start %g", options->rate);
	ret = control_request(options->path, request, &reply);
	if (ret)
		return ret;
	if (options->no_wait) {
		printf("rewrap started under master key %s; follow it with 'tderekey status %s'\n",
		       active, options->path);
		return EXIT_OK;
	}
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (bool stop_sent = false;;) {
		if (interrupted && !stop_sent) {
			control_request(options->path, "rewrap-stop", &reply);
			stop_sent = true;
		}
		ret = control_request(options->path, "status", &reply);
		if (ret)
			return ret;
		reply_value(&reply, "rewrap_state", state, sizeof(state));
		unsigned long long rewrapped = value_number(&reply, "rewrap_changed");
		unsigned long long failed = value_number(&reply, "rewrap_failed");
		clock_gettime(CLOCK_MONOTONIC, &now);
		double elapsed = (double)(now.tv_sec - start.tv_sec) +
				 (double)(now.tv_nsec - start.tv_nsec) / 1e9;
		if (tty) {
			if (pending > 0)
				fprintf(stderr, "\rrewrap: %llu/%lld headers (%3.0f%%), %.0f/s, %llu failed ",
					rewrapped, pending, 100.0 * (double)rewrapped / (double)pending,
					elapsed > 0 ? (double)rewrapped / elapsed : 0.0, failed);
			else
				fprintf(stderr, "\rrewrap: %llu headers, %llu failed ", rewrapped, failed);
		}
		if (strcmp(state, "running") && strcmp(state, "stopping"))
			break;
		usleep(200000);
	}
	if (tty)
		fputc('\n', stderr);
	printf("rewrap %s: %llu headers rewrapped under master key %s, %llu already under it, "
	       "%llu failed, %llu files in all\n",
	       state, value_number(&reply, "rewrap_changed"), active,
	       value_number(&reply, "rewrap_skipped"), value_number(&reply, "rewrap_failed"),
	       value_number(&reply, "rewrap_files"));
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
		"  --rate N     at most N header updates per second (default: no limit)\n"
		"  --no-wait    start the job and return; follow it with 'tderekey status'\n"
		"\n"
		"Exit status: 0 every header is under the active key; 1 failed or stopped;\n"
		"2 usage; 3 not a tdefs mount; 4 permission denied (root or the mounting user only);\n"
		"5 the control channel failed its checks (not this mount's daemon).\n",
	.run = run_rewrap,
};
