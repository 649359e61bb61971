/* tderekey stop: stop a running rewrap; 'tderekey rewrap' resumes where it stopped. */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>

static int run_stop(const struct rekey_options *options)
{
	struct control_reply reply;
	int ret = control_request(options->path, "rewrap-stop", &reply);

	if (ret == EXIT_OK)
		printf("rewrap stopping on %s\n", options->path);
	return ret;
}

const struct rekey_command command_stop = {
	.name = "stop",
	.summary = "stop a running rewrap (rewrap again resumes it)",
	.help = "Usage: tderekey stop MOUNTPOINT\n"
		"\n"
		"Stop the rewrap job of the daemon serving MOUNTPOINT after the header it is\n"
		"writing. Every header is valid at every moment; 'tderekey rewrap' resumes.\n"
		"\n"
		"Exit status: 0 ok; 1 failed; 2 usage; 3 not a tdefs mount; 4 permission denied.\n",
	.run = run_stop,
};
