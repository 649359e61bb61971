/*
 * tderekey metrics: the daemon's counters (bytes through the mount, errors, open files, loaded
 * data keys, the jobs' progress, the keystore) in the Prometheus text format, as the daemon
 * renders them (fs/metrics.c). The same text is what -o metrics=FILE keeps current.
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>
#include <string.h>

static int run_metrics(const struct rekey_options *options)
{
	struct control_reply reply;
	const char *start, *end;
	int ret = control_request(options->path, "metrics", &reply);

	if (ret)
		return ret;
	/* After the two greeting lines (device, mount_point); before the final "ok". */
	start = reply.text;
	for (int line = 0; line < 2 && start; line++) {
		start = strchr(start, '\n');
		if (start)
			start++;
	}
	end = reply.text + strlen(reply.text);
	if (!start || end - start < 2 || strcmp(end - 2, "ok") != 0) {
		fprintf(stderr, "tderekey: %s: malformed metrics reply from the daemon\n",
			options->path);
		return EXIT_FAILED;
	}
	end -= 2;
	fwrite(start, 1, (size_t)(end - start), stdout);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
}

const struct rekey_command command_metrics = {
	.name = "metrics",
	.summary = "print the daemon's metrics in the Prometheus text format",
	.help = "Usage: tderekey metrics MOUNTPOINT\n"
		"\n"
		"Print the counters of the daemon serving MOUNTPOINT in the Prometheus text\n"
		"format: plaintext bytes read and written, data-path and file key errors, open\n"
		"files, data keys in memory, the rewrap and data rekey jobs' progress, the\n"
		"keystore (keys loaded, active key, wallet re-reads) and refused control requests.\n"
		"For node_exporter's textfile collector, mount with the option metrics=FILE.\n",
	.run = run_metrics,
};
