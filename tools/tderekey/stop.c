/*
 * tderekey stop: stop the running rewrap, data rekey and conversion to encrypted files. Every header is valid at every moment;
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
		ret = control_request(options->path, "encrypt-stop", &reply);
	if (ret == EXIT_OK)
		printf("rewrap, data rekey and encrypt stopping on %s\n", options->path);
	return ret;
}

const struct rekey_command command_stop = {
	.name = "stop",
	.summary = "stop the running rewrap, data rekey and encrypt",
	.help = "Usage: tderekey stop MOUNTPOINT\n"
		"\n"
		"Stop the rewrap and data rekey jobs of the daemon serving MOUNTPOINT after the\n"
		"header or chunk they are writing. Every file is readable at every moment.\n"
		"'tderekey rewrap' resumes a rewrap (done headers are skipped); a file whose data\n"
		"rekey was cut short keeps two keys until the next mount or 'tderekey data'.\n"
		"A conversion (tderekey encrypt) stops after its chunk; the file in progress stays\n"
		"plaintext and 'tderekey encrypt' goes on with the files left.\n"
		"To hold a data rekey and continue it later, use pause and resume instead.\n",
	.run = run_stop,
};
