/*
 * tderekey reload: make the daemon re-read its wallet now. It also does so by itself when the
 * wallet directory changes; this is for when that watch is unavailable.
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>

#include "keystore/keystore.h"

static int run_reload(const struct rekey_options *options)
{
	struct control_reply reply;
	char active[KEY_ID_TEXT_SIZE + 1] = "?", keys[32] = "?";
	int ret = control_request(options->path, "reload", &reply);

	if (ret)
		return ret;
	ret = control_request(options->path, "status", &reply);
	if (ret)
		return ret;
	reply_value(&reply, "active_key", active, sizeof(active));
	reply_value(&reply, "keys", keys, sizeof(keys));
	printf("wallet re-read: %s master keys, active %s\n", keys, active);
	return EXIT_OK;
}

const struct rekey_command command_reload = {
	.name = "reload",
	.summary = "make the daemon re-read its wallet now",
	.help = "Usage: tderekey reload MOUNTPOINT\n"
		"\n"
		"Make the daemon serving MOUNTPOINT re-read its wallet (it also does so by itself\n"
		"whenever the wallet directory changes). New files are then wrapped under the\n"
		"wallet's active master key. A daemon started with a password typed on a\n"
		"descriptor cannot re-read a password wallet; it keeps its keys and says why.\n",
	.run = run_reload,
};
