/*
 * tderekey status: what the daemon serving a mount reports (backing directory, wallet, active
 * master key, the rewrap job) and a census of file headers per master key ID, read from the
 * backing directory without unsealing anything.
 */
#include "tools/tderekey/tderekey.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/backing_scan.h"
#include "keystore/keystore.h"
#include "util/json_text.h"

enum field_type { FIELD_TEXT, FIELD_NUMBER, FIELD_BOOL };

static const struct status_field {
	const char *name;
	enum field_type type;
} fields[] = {
	{ "backing", FIELD_TEXT },	      { "wallet", FIELD_TEXT },
	{ "active_key", FIELD_TEXT },	      { "keys", FIELD_NUMBER },
	{ "keystore", FIELD_TEXT },	      { "key_cache_seconds", FIELD_NUMBER },
	{ "key_cache_entries", FIELD_NUMBER },
	{ "cache", FIELD_TEXT },	      { "key_status", FIELD_TEXT },
	{ "rewrap_state", FIELD_TEXT },
	{ "rewrap_files", FIELD_NUMBER },     { "rewrap_changed", FIELD_NUMBER },
	{ "rewrap_skipped", FIELD_NUMBER },   { "rewrap_failed", FIELD_NUMBER },
	{ "rewrap_rate", FIELD_NUMBER },      { "rewrap_current", FIELD_TEXT },
	{ "rewrap_last_error", FIELD_TEXT },  { "data_state", FIELD_TEXT },
	{ "data_resume_only", FIELD_BOOL },   { "data_files", FIELD_NUMBER },
	{ "data_changed", FIELD_NUMBER },     { "data_skipped", FIELD_NUMBER },
	{ "data_failed", FIELD_NUMBER },      { "data_bytes", FIELD_NUMBER },
	{ "data_rate", FIELD_NUMBER },	      { "data_current", FIELD_TEXT },
	{ "data_current_done", FIELD_NUMBER }, { "data_current_total", FIELD_NUMBER },
	{ "data_last_error", FIELD_TEXT },
	{ "data_unfinished", FIELD_TEXT },    { "data_unfinished_stopped", FIELD_BOOL },
	{ "adopted", FIELD_BOOL },	      { "require_encrypted", FIELD_BOOL },
	{ "encrypt_state", FIELD_TEXT },      { "encrypt_files", FIELD_NUMBER },
	{ "encrypt_changed", FIELD_NUMBER },  { "encrypt_skipped", FIELD_NUMBER },
	{ "encrypt_failed", FIELD_NUMBER },   { "encrypt_bytes", FIELD_NUMBER },
	{ "encrypt_rate", FIELD_NUMBER },     { "encrypt_current", FIELD_TEXT },
	{ "encrypt_current_done", FIELD_NUMBER }, { "encrypt_current_total", FIELD_NUMBER },
	{ "encrypt_last_error", FIELD_TEXT },
};

/*
 * The file a job is on means something only while it runs: once it has ended (done, stopped,
 * failed) the daemon's last "current" file would read as work in progress.
 */
static bool field_shown(const struct control_reply *reply, const char *name)
{
	const char *job = strncmp(name, "rewrap_", 7) == 0    ? "rewrap_state"
			  : strncmp(name, "encrypt_", 8) == 0 ? "encrypt_state"
							      : "data_state";
	char state[32];

	if (!strstr(name, "_current"))
		return true;
	if (!reply_value(reply, job, state, sizeof(state)))
		return false;
	return strcmp(state, "running") == 0 || strcmp(state, "paused") == 0 ||
	       strcmp(state, "stopping") == 0;
}

/* A number as the daemon sent it, checked to be one (else it goes out as a string). */
static bool is_number(const char *value)
{
	char *end;

	if (!*value)
		return false;
	strtod(value, &end);
	return *end == '\0';
}

static void json_field(const struct status_field *field, const char *value)
{
	json_write_string(stdout, field->name);
	printf(": ");
	if (field->type == FIELD_NUMBER && is_number(value))
		fputs(value, stdout);
	else if (field->type == FIELD_BOOL && (strcmp(value, "0") == 0 || strcmp(value, "1") == 0))
		fputs(strcmp(value, "1") == 0 ? "true" : "false", stdout);
	else
		json_write_string(stdout, value);
	printf(", ");
}

static int run_status(const struct rekey_options *options)
{
	struct control_reply reply;
	char backing[4096], active[KEY_ID_TEXT_SIZE + 1] = "", value[4096];
	struct backing_scan scan;
	int root_fd, ret = control_request(options->path, "status", &reply);

	if (ret)
		return ret;
	reply_value(&reply, "active_key", active, sizeof(active));
	root_fd = open_reported_backing(&reply, backing, sizeof(backing));
	if (root_fd < 0)
		return EXIT_FAILED;
	ret = backing_scan_fd(root_fd, &scan);
	close(root_fd);
	if (ret < 0) {
		fprintf(stderr, "tderekey: cannot read backing directory %s\n", backing);
		return EXIT_FAILED;
	}
	if (options->json) {
		/* Values carry backing paths and file names: every one goes through the escaper. */
		printf("{");
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (field_shown(&reply, fields[i].name) &&
			    reply_value(&reply, fields[i].name, value, sizeof(value)))
				json_field(&fields[i], value);
		printf("\"files\": %llu, \"empty\": %llu, \"damaged\": %llu, \"files_per_key\": {",
		       (unsigned long long)scan.files, (unsigned long long)scan.empty,
		       (unsigned long long)scan.damaged);
		for (size_t i = 0; i < scan.key_count; i++) {
			char id[KEY_ID_TEXT_SIZE];
			key_id_format(scan.keys[i].key_id, id);
			printf("%s\"%s\": %llu", i ? ", " : "", id,
			       (unsigned long long)scan.keys[i].files);
		}
		printf("}, \"rekey_interrupted\": %llu, \"plaintext\": %llu, \"plaintext_bytes\": "
		       "%llu}\n", (unsigned long long)scan.rekey_in_progress,
		       (unsigned long long)scan.plaintext, (unsigned long long)scan.plaintext_bytes);
	} else {
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (field_shown(&reply, fields[i].name) &&
			    reply_value(&reply, fields[i].name, value, sizeof(value)))
				printf("%-18s %s\n", fields[i].name, value);
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
		if (reply_value(&reply, "adopted", value, sizeof(value)) && strcmp(value, "1") == 0) {
			if (scan.plaintext)
				printf("%-34s %10llu  (%llu bytes; 'tderekey encrypt' converts them)\n",
				       "(plaintext, not encrypted yet)",
				       (unsigned long long)scan.plaintext,
				       (unsigned long long)scan.plaintext_bytes);
			else
				printf("\nno plaintext file left: every file is encrypted (mount with "
				       "-o require_encrypted to refuse plaintext from now on)\n");
		}
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
		"MOUNTPOINT, whether its keystore is OPEN or CLOSED (tderekey close) and the DEKs\n"
		"its key cache holds (-o key_cache), the state of the rewrap and data rekey jobs (with the file in\n"
		"progress), how many file headers reference each master key ID (a key referenced\n"
		"by no header is no longer needed by this mount), and how many files are in the\n"
		"middle of a data rekey (running, or interrupted and waiting to be finished).\n"
		"A data rekey that has not finished is named (data_unfinished) with whether it\n"
		"was stopped: 'tderekey data' of that path goes on with it.\n"
		"In a directory made with tdefs --init --adopt: the conversion job, and how many\n"
		"plaintext files are left, or that none is.\n",
	.run = run_status,
};
