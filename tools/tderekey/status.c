/*
 * tderekey status: what the daemon serving a mount reports (backing directory, wallet, active
 * master key, the rewrap job) and a census of file headers per master key ID, read from the
 * backing directory without unsealing anything.
 */
#include "tools/tderekey/tderekey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/backing_scan.h"
#include "keystore/keystore.h"
#include "util/json_text.h"

static int run_status(const struct rekey_options *options)
{
	static const char *const fields[] = {
		"backing", "wallet", "active_key", "keys", "cache",
		"rewrap_state", "rewrap_files", "rewrap_changed", "rewrap_skipped", "rewrap_failed",
		"rewrap_rate", "rewrap_current", "rewrap_last_error",
		"data_state", "data_resume_only", "data_files", "data_changed", "data_skipped",
		"data_failed", "data_bytes", "data_rate", "data_current", "data_current_done",
		"data_current_total", "data_last_error",
	};
	struct control_reply reply;
	char backing[4096], active[KEY_ID_TEXT_SIZE + 1] = "", value[4096];
	struct backing_scan scan;
	int ret = control_request(options->path, "status", &reply);

	if (ret)
		return ret;
	reply_value(&reply, "backing", backing, sizeof(backing));
	reply_value(&reply, "active_key", active, sizeof(active));
	if (backing_scan(backing, &scan) < 0) {
		fprintf(stderr, "tderekey: cannot read backing directory %s\n", backing);
		return EXIT_FAILED;
	}
	if (options->json) {
		/* Values carry backing paths and file names: every one goes through the escaper. */
		printf("{");
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (reply_value(&reply, fields[i], value, sizeof(value))) {
				json_write_string(stdout, fields[i]);
				printf(": ");
				json_write_string(stdout, value);
				printf(", ");
			}
		printf("\"files\": %llu, \"empty\": %llu, \"damaged\": %llu, \"files_per_key\": {",
		       (unsigned long long)scan.files, (unsigned long long)scan.empty,
		       (unsigned long long)scan.damaged);
		for (size_t i = 0; i < scan.key_count; i++) {
			char id[KEY_ID_TEXT_SIZE];
			key_id_format(scan.keys[i].key_id, id);
			printf("%s\"%s\": %llu", i ? ", " : "", id,
			       (unsigned long long)scan.keys[i].files);
		}
		printf("}, \"rekey_interrupted\": %llu}\n", (unsigned long long)scan.rekey_in_progress);
	} else {
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (reply_value(&reply, fields[i], value, sizeof(value)))
				printf("%-18s %s\n", fields[i], value);
		printf("\n%-34s %10s\n", "MASTER KEY ID", "FILES");
		for (size_t i = 0; i < scan.key_count; i++) {
			char id[KEY_ID_TEXT_SIZE];
			key_id_format(scan.keys[i].key_id, id);
			printf("%-34s %10llu%s\n", id, (unsigned long long)scan.keys[i].files,
			       strcmp(id, active) == 0 ? "  (active)" : "");
		}
		printf("%-34s %10llu\n%-34s %10llu\n%-34s %10llu\n", "(no header yet)",
		       (unsigned long long)scan.empty, "(damaged)", (unsigned long long)scan.damaged,
		       "(data rekey in progress)", (unsigned long long)scan.rekey_in_progress);
	}
	backing_scan_free(&scan);
	return EXIT_OK;
}

const struct rekey_command command_status = {
	.name = "status",
	.summary = "show the active key, files per master key ID and running jobs",
	.help = "Usage: tderekey status MOUNTPOINT [--json]\n"
		"\n"
		"Show the backing directory, the wallet and active master key of the daemon serving\n"
		"MOUNTPOINT, the state of the rewrap and data rekey jobs (with the file in\n"
		"progress), how many file headers reference each master key ID (a key referenced\n"
		"by no header is no longer needed by this mount), and how many files are in the\n"
		"middle of a data rekey (running, or interrupted and waiting to be finished).\n"
		"\n"
		"  --json   one JSON object instead of the table\n"
		"\n"
		"Exit status: 0 ok; 1 failed; 2 usage; 3 not a tdefs mount; 4 permission denied;\n"
		"5 the control channel failed its checks (not this mount's daemon);\n"
		"6 the mount's daemon is gone (a stale mount: fusermount3 -u it, mount again).\n",
	.run = run_status,
};
