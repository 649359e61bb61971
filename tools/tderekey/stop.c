/*
 * tderekey stop: stop the running rewrap and data rekey. Every header is valid at every moment;
 * 'tderekey rewrap' resumes a rewrap (done headers are skipped); a file whose data rekey was cut
 * short is finished at the next mount or 'tderekey resume'.
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>

static int run_stop(const struct rekey_options *options)
{
	struct control_reply reply;
	int ret = control_request(options->path, "rewrap-stop", &reply);

	if (ret == EXIT_OK)
		ret = control_request(options->path, "data-stop", &reply);
	if (ret == EXIT_OK)
		printf("rewrap and data rekey stopping on %s\n", options->path);
	return ret;
}

const struct rekey_command command_stop = {
	.name = "stop",
	.summary = "stop the running rewrap and data rekey",
	.help = "Usage: tderekey stop MOUNTPOINT\n"
		"\n"
		"Stop the rewrap and data rekey jobs of the daemon serving MOUNTPOINT after the\n"
		"header or chunk they are writing. Every file is readable at every moment.\n"
		"'tderekey rewrap' resumes a rewrap (done headers are skipped); a file whose data\n"
		"rekey was cut short keeps two keys until the next mount or 'tderekey data'.\n"
		"To hold a data rekey and continue it later, use pause and resume instead.\n",
	.run = run_stop,
};
