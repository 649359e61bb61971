/*
 * tdekey status: what Oracle's V$ENCRYPTION_WALLET shows, per wallet file: location, status
 * (NOT_AVAILABLE, CLOSED, OPEN, OPEN_NO_MASTER_KEY), wallet type (PASSWORD, AUTOLOGIN,
 * LOCAL_AUTOLOGIN) and whether every key is backed up; plus which file the daemon opens at
 * mount and why a file does not open. It never prompts: the password wallet is opened only
 * when a password source is named, and shows CLOSED otherwise.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* V$ENCRYPTION_WALLET.WRL_TYPE: HSM for a hardware keystore, FILE for the wallet files. */
static const char *wrl_type(const struct wallet_status_row *row)
{
	return row->kind == WALLET_KIND_HSM ? "HSM" : "FILE";
}

static const char *backed_up_word(const struct wallet_status_row *row)
{
	if (!row->opened)
		return "UNDEFINED";
	return row->fully_backed_up ? "YES" : "NO";
}

/* The row whose containers are shown: the wallet the daemon opens, when it opened. */
static const struct wallet_status_row *opened_row(const struct wallet_status_report *report)
{
	if (report->mount_row >= 0 && report->rows[report->mount_row].opened)
		return &report->rows[report->mount_row];
	for (size_t i = 0; i < report->row_count; i++)
		if (report->rows[i].opened)
			return &report->rows[i];
	return NULL;
}

static const char *mode_name(const struct wallet_status_row *row)
{
	if (!row)
		return NULL;
	return row->container_count > 1 ? "UNITED" : "ISOLATED";
}

/* Is container entry c one --container asked for (default: the wallet's own, entry 0)? */
static bool container_shown(const struct options *options, const struct wallet_status_row *row,
			    size_t c)
{
	if (container_is_all(options))
		return true;
	if (!options->container_given)
		return c == 0;
	return strcmp(row->containers[c].name, options->container) == 0;
}

static size_t listed(const struct wallet_status_row *row)
{
	return row->container_count < WALLET_STATUS_CONTAINERS ? row->container_count
							       : WALLET_STATUS_CONTAINERS;
}

static void print_containers_json(struct json *json, const struct options *options,
				  const struct wallet_status_row *row)
{
	char id[KEY_ID_TEXT_SIZE];

	json_string(json, "keystore_mode", mode_name(row));
	if (!row) {
		json_string(json, "containers", NULL);
		return;
	}
	json_array_begin(json, "containers");
	for (size_t c = 0; c < listed(row); c++) {
		const struct wallet_status_container *entry = &row->containers[c];

		if (!container_shown(options, row, c))
			continue;
		if (entry->has_active)
			key_id_format(entry->active_id, id);
		json_object_begin(json, NULL);
		json_string(json, "container", entry->name);
		json_string(json, "keystore_mode", mode_name(row));
		json_string(json, "status", wallet_status_name(entry->has_active
									? WALLET_STATUS_OPEN
									: WALLET_STATUS_OPEN_NO_MASTER_KEY));
		json_string(json, "active_key_id", entry->has_active ? id : NULL);
		json_uint(json, "keys", entry->keys);
		json_object_end(json);
	}
	json_array_end(json);
}

static int print_containers_text(const struct options *options,
				 const struct wallet_status_row *row)
{
	/* KEYSTORE_MODE on each row too, as V$ENCRYPTION_WALLET has it per container. */
	static const char *const headers[] = { "CONTAINER", "STATUS", "KEYSTORE_MODE",
					       "ACTIVE_KEY_ID", "KEYS" };
	struct table table;
	int ret = 0;

	if (!row) {
		printf("keystore mode   UNKNOWN (no wallet file opened)\n");
		return 0;
	}
	printf("keystore mode   %s\n\n", mode_name(row));
	table_init(&table, 5, headers);
	for (size_t c = 0; c < listed(row) && ret == 0; c++) {
		const struct wallet_status_container *entry = &row->containers[c];
		char id[KEY_ID_TEXT_SIZE] = "", keys[24];
		const char *cells[5];

		if (!container_shown(options, row, c))
			continue;
		if (entry->has_active)
			key_id_format(entry->active_id, id);
		snprintf(keys, sizeof(keys), "%zu", entry->keys);
		cells[0] = entry->name;
		cells[1] = wallet_status_name(entry->has_active ? WALLET_STATUS_OPEN
								: WALLET_STATUS_OPEN_NO_MASTER_KEY);
		cells[2] = mode_name(row);
		cells[3] = id;
		cells[4] = keys;
		ret = table_add_row(&table, cells);
	}
	if (ret == 0)
		table_print(&table, stdout);
	table_free(&table);
	if (row->container_count > WALLET_STATUS_CONTAINERS)
		printf("note: %zu containers, the first %d listed; tdekey keys --container all "
		       "shows every key\n",
		       row->container_count, WALLET_STATUS_CONTAINERS);
	return ret;
}

/*
 * V$ENCRYPTION_WALLET's WALLET_ORDER: SINGLE for a lone wallet file, else PRIMARY for the one a
 * mount opens and SECONDARY for the copies beside it.
 */
static const char *wallet_order(const struct wallet_status_report *report, size_t index)
{
	if (report->row_count == 1)
		return "SINGLE";
	return report->mount_row >= 0 && (size_t)report->mount_row == index ? "PRIMARY"
									      : "SECONDARY";
}

static void print_json(const struct options *options, const struct wallet_status_report *report)
{
	char id[KEY_ID_TEXT_SIZE];
	struct json json;

	json_begin(&json, stdout);
	json_string(&json, "wallet_root", report->dir);
	json_string(&json, "status", wallet_status_name(report->status));
	if (report->wallet_id_known)
		key_id_format(report->wallet_id, id);
	json_string(&json, "wallet_id", report->wallet_id_known ? id : NULL);
	json_string(&json, "mount_opens",
		    report->mount_row >= 0 ? report->rows[report->mount_row].path : NULL);
	print_containers_json(&json, options, opened_row(report));
	json_array_begin(&json, "wallets");
	for (size_t i = 0; i < report->row_count; i++) {
		const struct wallet_status_row *row = &report->rows[i];

		json_object_begin(&json, NULL);
		json_string(&json, "location", row->path);
		json_string(&json, "type", wallet_kind_name(row->kind));
		/* The same, in V$ENCRYPTION_WALLET's words. */
		json_string(&json, "wrl_type", wrl_type(row));
		json_string(&json, "wrl_parameter", row->path);
		json_string(&json, "wallet_type", wallet_kind_name(row->kind));
		json_string(&json, "wallet_order", wallet_order(report, i));
		json_string(&json, "status", wallet_status_name(row->status));
		json_bool(&json, "fully_backed_up", row->fully_backed_up);
		if (row->opened) {
			json_uint(&json, "keys", row->key_count);
			json_string(&json, "container", row->container);
		}
		if (row->header_valid) {
			json_uint(&json, "generation", row->info.generation);
			json_time(&json, "written", row->info.write_time);
		}
		json_bool(&json, "out_of_step", row->out_of_step);
		json_string(&json, "error", row->error_code ? row->error : NULL);
		json_object_end(&json);
	}
	json_array_end(&json);
	if (report->external_store_present) {
		json_object_begin(&json, "external_store");
		json_string(&json, "location", report->external_store.path);
		json_string(&json, "type",
			    report->external_store.header_valid
				    ? wallet_kind_name(report->external_store.kind)
				    : NULL);
		json_string(&json, "status", wallet_status_name(report->external_store.status));
		json_string(&json, "error",
			    report->external_store.error_code ? report->external_store.error
							      : NULL);
		json_object_end(&json);
	} else {
		json_string(&json, "external_store", NULL);
	}
	json_end(&json);
}

static int print_text(const struct options *options, const struct wallet_status_report *report)
{
	/* V$ENCRYPTION_WALLET's columns, then the wallet's own. */
	static const char *const headers[] = { "WRL_TYPE",	  "WRL_PARAMETER", "STATUS",
					       "WALLET_TYPE",	  "WALLET_ORDER",  "FULLY_BACKED_UP",
					       "KEYS",		  "GENERATION" };
	struct table table;
	char id[KEY_ID_TEXT_SIZE];
	int ret = 0;

	printf("wallet root     %s\n", report->dir);
	if (report->wallet_id_known) {
		key_id_format(report->wallet_id, id);
		printf("wallet ID       %s\n", id);
	}
	printf("mount opens     %s\n",
	       report->mount_row >= 0 ? report->rows[report->mount_row].path : "nothing");
	if (report->external_store_present)
		printf("external store  %s (%s)\n", report->external_store.path,
		       wallet_status_name(report->external_store.status));
	else
		printf("external store  none\n");
	printf("\n");

	table_init(&table, 8, headers);
	if (report->row_count == 0) {
		const char *cells[8] = { "FILE", report->dir, "NOT_AVAILABLE", "UNKNOWN",
					 "SINGLE", "UNDEFINED", NULL, NULL };

		ret = table_add_row(&table, cells);
	}
	for (size_t i = 0; i < report->row_count && ret == 0; i++) {
		const struct wallet_status_row *row = &report->rows[i];
		char keys[24] = "", generation[24] = "";
		const char *cells[8];

		if (row->opened)
			snprintf(keys, sizeof(keys), "%zu", row->key_count);
		if (row->header_valid)
			snprintf(generation, sizeof(generation), "%llu",
				 (unsigned long long)row->info.generation);
		cells[0] = wrl_type(row);
		cells[1] = row->path;
		cells[2] = wallet_status_name(row->status);
		cells[3] = wallet_kind_name(row->kind);
		cells[4] = wallet_order(report, i);
		cells[5] = backed_up_word(row);
		cells[6] = keys;
		cells[7] = generation;
		ret = table_add_row(&table, cells);
	}
	if (ret == 0)
		table_print(&table, stdout);
	table_free(&table);
	printf("\n");
	if (ret == 0)
		ret = print_containers_text(options, opened_row(report));

	for (size_t i = 0; i < report->row_count; i++) {
		const struct wallet_status_row *row = &report->rows[i];

		if (row->error_code)
			printf("problem: %s\n", row->error);
		else if (row->out_of_step)
			printf("note: %s is at another generation than %s; the next change or "
			       "'tdekey create-autologin%s --wallet %s' brings it level\n",
			       row->path, WALLET_PASSWORD_FILE,
			       row->kind == WALLET_KIND_LOCAL_AUTOLOGIN ? " --local" : "",
			       report->dir);
		else if (row->kind == WALLET_KIND_PASSWORD && !row->opened)
			printf("note: %s is CLOSED because no password source was given; "
			       "add --password-prompt to open it\n",
			       row->path);
	}
	if (report->external_store_present && report->external_store.error_code)
		printf("problem: %s\n", report->external_store.error);
	return ret;
}

static int run(const struct options *options)
{
	const struct wallet_status_row *row;
	struct wallet_status_report *report;
	char error[KEYSTORE_ERROR_SIZE];
	int ret;

	/* The report is large (paths and messages per row); keep it off the stack. */
	report = calloc(1, sizeof(*report));
	if (!report)
		return report_failure(-ENOMEM, "out of memory");
	ret = wallet_status_read(options->wallet,
				 options->password_given ? &options->password : NULL, report);
	if (ret < 0) {
		ret = report_failure(ret, report->error);
		free(report);
		return ret;
	}
	row = opened_row(report);
	if (options->container_given && !container_is_all(options) && row) {
		bool found = false;

		for (size_t c = 0; c < listed(row); c++)
			found |= strcmp(row->containers[c].name, options->container) == 0;
		if (!found) {
			snprintf(error, sizeof(error),
				 "--container %s: wallet %s has no key of that container",
				 options->container, options->wallet);
			free(report);
			return report_failure(KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY), error);
		}
	}
	if (options->json)
		print_json(options, report);
	else if (print_text(options, report) < 0)
		report->first_error = -ENOMEM;
	/* A status was shown; the exit code still tells a script that something is wrong. */
	ret = exit_code_for(report->first_error);
	if (ret == EXIT_OK && report->status == WALLET_STATUS_OPEN_NO_MASTER_KEY)
		ret = EXIT_NO_MASTER_KEY;
	if (ret == EXIT_OK && report->row_count == 0) {
		/* Shown as NOT_AVAILABLE; a script must not read that as success. */
		fprintf(stderr, "tdekey: no wallet in %s; create one with: tdekey create --wallet %s\n",
			report->dir, report->dir);
		ret = EXIT_NO_WALLET;
	}
	free(report);
	return ret;
}

const struct command command_status = {
	.name = "status",
	.summary = "show the wallet status (V$ENCRYPTION_WALLET)",
	.synopsis = "tdekey status --wallet DIR [--container C|all]\n"
		    "                     [--password-file FILE | --password-fd N |\n"
		    "                     --password-prompt | --external-store] [--json]",
	.description =
		"DESCRIPTION\n"
		"       Shows, for each wallet file in DIR, what Oracle's V$ENCRYPTION_WALLET shows:\n"
		"\n"
		"       WRL_TYPE         FILE (a wallet of files), HSM (keys on a PKCS#11 token)\n"
		"       WRL_PARAMETER    the file\n"
		"       STATUS           NOT_AVAILABLE  no wallet in DIR\n"
		"                        CLOSED         the wallet did not open: a password wallet\n"
		"                                       without a password source, or a problem\n"
		"                                       that is printed below the table\n"
		"                        OPEN           open, with an active master key\n"
		"                        OPEN_NO_MASTER_KEY  open, but no key is active\n"
		"       WALLET_TYPE      PASSWORD, AUTOLOGIN or LOCAL_AUTOLOGIN (UNKNOWN when there\n"
		"                        is no wallet)\n"
		"       WALLET_ORDER     SINGLE for a lone file, else PRIMARY for the one a mount\n"
		"                        opens and SECONDARY for the others\n"
		"       FULLY_BACKED_UP  YES when every key is in a backup, NO when not, UNDEFINED\n"
		"                        when the wallet is not open\n"
		"       KEYS             number of master keys\n"
		"       GENERATION       change counter; auto-login copies match the password wallet\n"
		"\n"
		"       Below the table: KEYSTORE_MODE, UNITED when the wallet holds the key sets\n"
		"       of several containers (one per backing directory that names it at\n"
		"       'tdefs --init --container'), ISOLATED when it holds one; then, per\n"
		"       container, CONTAINER, STATUS (OPEN, or OPEN_NO_MASTER_KEY when no key of\n"
		"       that container is active), KEYSTORE_MODE again, ACTIVE_KEY_ID and KEYS.\n"
		"\n"
		"       Above the table: the wallet root, the wallet ID, which file the tdefs daemon\n"
		"       opens at mount (an auto-login wallet when there is one) and the external\n"
		"       password store. Below it, one line per problem. status never prompts: the\n"
		"       password wallet is opened only when a password source is named, but its\n"
		"       checksum is checked in any case, so damage shows without a password.\n"
		"\n"
		"       The exit status is that of the first problem found; else 9 when the wallet\n"
		"       the daemon would open is OPEN_NO_MASTER_KEY; else 3 when there is no wallet\n"
		"       (NOT_AVAILABLE); else 0 (CLOSED for want of a password included).\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The wallet directory.\n"
		"\n"
		"       --container C|all\n"
		"              Show container C (refused when the wallet has no key of it), or\n"
		"              every container with all. Default: the wallet's own container.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt, --external-store\n"
		"              Open password.wallet too, with the password from there.\n"
		"\n"
		"       --json\n"
		"              Print wallet_root, status (of the wallet the daemon opens), wallet_id,\n"
		"              mount_opens, keystore_mode, containers (container, status,\n"
		"              active_key_id, keys), wallets (location, type, wrl_type, wrl_parameter,\n"
		"              wallet_type, wallet_order, status, fully_backed_up (boolean), keys,\n"
		"              container, generation, written, out_of_step, error) and\n"
		"              external_store as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey status --wallet /etc/tdefs/wallet\n"
		"       tdekey status --wallet /etc/tdefs/wallet --password-prompt --json\n"
		"\n",
	.min_arguments = 0,
	.max_arguments = 0,
	.run = run,
};
