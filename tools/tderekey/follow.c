/*
 * Following a job the daemon runs (tderekey rewrap, tderekey data): poll its status until it
 * leaves running, stopping and paused, draw its progress on a terminal, and send its stop
 * request once on Ctrl-C or SIGTERM, so that an interrupted command leaves the job stopped
 * (and resumable) rather than running unseen.
 */
#include "tools/tderekey/tderekey.h"
#include "util/json_text.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signal_number)
{
	(void)signal_number;
	interrupted = 1;
}

unsigned long long reply_number(const struct control_reply *reply, const char *key)
{
	char buf[64];

	return reply_value(reply, key, buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : 0;
}

void follow_draw_bytes(const char *label, unsigned long long done, unsigned long long total,
		       const char *state, double elapsed)
{
	double speed = elapsed > 0 ? (double)done / elapsed : 0;
	double fraction = total ? (double)done / (double)total : 1.0;
	double eta = speed > 0 && total > done ? (double)(total - done) / speed : 0;

	fprintf(stderr, "\r%s: %.1f/%.1f MB (%3.0f%%), %.1f MB/s, ETA %.0fs, %s %s ", label,
		(double)done / 1e6, (double)total / 1e6, 100.0 * (fraction > 1 ? 1 : fraction),
		speed / 1e6, eta, state,
		strcmp(state, "paused") == 0 ? "(tderekey resume continues)" : "");
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/*
 * How long to wait before the next status request: a twentieth of the time the job has run so
 * far, between 5 ms and the command's own interval. A job of half a second is then seen to end
 * within 25 ms, not up to a whole interval late (which made a short rekey look up to twice as
 * slow as it ran, to a script timing the command as to the rate printed at its end), and a
 * long job is still asked only a few times a second.
 */
static useconds_t poll_interval_us(useconds_t longest, double elapsed)
{
	double interval = elapsed / 20 * 1e6;

	if (interval < 5000)
		interval = 5000;
	return interval < (double)longest ? (useconds_t)interval : longest;
}

/*
 * One line of --progress-json: the job's state and counters as JSON numbers, for a script or
 * an orchestrator to follow (the same keys as tderekey status --json, without the prefix).
 */
static void print_progress_json(const struct job_follow *follow, const struct control_reply *reply,
				const char *state, double elapsed)
{
	static const char *const counters[] = { "files", "changed", "skipped", "failed", "bytes",
						"current_done", "current_total" };
	char key[64], value[64];

	printf("{\"job\": \"%s\", \"state\": ", follow->prefix);
	json_write_string(stdout, state);
	printf(", \"elapsed_seconds\": %.1f", elapsed);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		snprintf(key, sizeof(key), "%s_%s", follow->prefix, counters[i]);
		if (reply_value(reply, key, value, sizeof(value)))
			printf(", \"%s\": %llu", counters[i], strtoull(value, NULL, 10));
	}
	printf("}\n");
	fflush(stdout);
}

int follow_job(const char *path, const struct job_follow *follow, struct control_reply *reply,
	       char *state, size_t state_size, double *seconds)
{
	char state_key[32];
	bool tty = isatty(STDERR_FILENO), stop_sent = false;
	struct timespec start;
	double now, drawn = -1;
	bool ended;
	int ret;

	snprintf(state_key, sizeof(state_key), "%s_state", follow->prefix);
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (interrupted && !stop_sent) {
			control_request(path, follow->stop_request, reply);
			stop_sent = true;
		}
		ret = control_request(path, "status", reply);
		if (ret)
			return ret;
		if (!reply_value(reply, state_key, state, state_size))
			snprintf(state, state_size, "unknown");
		now = seconds_since(&start);
		ended = strcmp(state, "running") && strcmp(state, "stopping") &&
			strcmp(state, "paused");
		/* Shown at the command's own interval and once at the end, however often asked. */
		if (ended || drawn < 0 || (now - drawn) * 1e6 >= follow->poll_us) {
			drawn = now;
			if (follow->progress_json)
				print_progress_json(follow, reply, state, now);
			else if (tty && follow->draw)
				follow->draw(reply, state, now, follow->context);
		}
		if (ended)
			break;
		usleep(poll_interval_us(follow->poll_us, now));
	}
	if (tty && !follow->progress_json)
		fputc('\n', stderr);
	*seconds = seconds_since(&start);
	return 0;
}
