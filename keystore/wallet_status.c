/*
 * The status report: for each wallet file present, what V$ENCRYPTION_WALLET shows (location,
 * WALLET_TYPE, STATUS, FULLY_BACKED_UP), plus what a DBA needs to act: which file the daemon
 * opens at mount, whether a copy lags behind the password wallet, and why a file does not open.
 *
 * A password wallet is opened only when a password source was named; otherwise it is CLOSED,
 * but its clear header is still read and its checksum checked, so damage shows without a
 * password.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keystore/keystore_kind.h"
#include "util/util.h"

static int open_row(const struct wallet_paths *paths, struct wallet_status_row *row,
		    const struct password_source *source, struct wallet_read *read)
{
	struct secret *password = NULL;
	char question[PATH_MAX + 64];
	int ret;

	if (keystore_kind_of(row->kind)->auto_login || !source)
		return wallet_read(read, row->error);
	if (source->kind == PASSWORD_SOURCE_EXTERNAL_STORE) {
		ret = wallet_open_with_external_store(paths, read, &password, row->error);
	} else {
		snprintf(question, sizeof(question), "Password for wallet %s: ", row->path);
		ret = password_read(source, question, false, &password, row->error);
		if (ret == 0) {
			read->password = password;
			ret = wallet_read(read, row->error);
		}
	}
	secret_free(password);
	return ret;
}

static void list_containers(const struct keyring *ring, struct wallet_status_row *row)
{
	const char *names[WALLET_STATUS_CONTAINERS];
	size_t listed;

	row->container_count = keyring_containers(ring, names, WALLET_STATUS_CONTAINERS);
	listed = row->container_count < WALLET_STATUS_CONTAINERS ? row->container_count
								 : WALLET_STATUS_CONTAINERS;
	for (size_t c = 0; c < listed; c++) {
		struct wallet_status_container *entry = &row->containers[c];

		snprintf(entry->name, sizeof(entry->name), "%s", names[c]);
		for (size_t i = 0; i < keyring_count(ring); i++) {
			const struct mek_record *record = keyring_record(ring, i);

			if (strcmp(record->container, names[c]) != 0)
				continue;
			entry->keys++;
			if (record->state == MEK_STATE_ACTIVE) {
				entry->has_active = true;
				memcpy(entry->active_id, record->id, KEY_ID_SIZE);
			}
		}
	}
}

static void read_row(const struct wallet_paths *paths, struct wallet_status_row *row,
		     const struct password_source *source)
{
	struct wallet_read read = {
		.path = row->path,
		.expected_kind = row->kind,
		.expected_content = WALLET_CONTENT_KEYS,
		/* A kind that needs a password shows its header only, unless one was named. */
		.header_only = !keystore_kind_of(row->kind)->auto_login && !source,
	};
	int ret;

	row->status = WALLET_STATUS_CLOSED;
	ret = open_row(paths, row, source, &read);
	/* The header was parsed when its version is set, even if opening failed later. */
	if (read.info.version != 0) {
		row->header_valid = true;
		row->info = read.info;
	}
	if (ret < 0) {
		row->error_code = ret;
		return;
	}
	row->error[0] = '\0';
	if (read.ring) {
		row->opened = true;
		row->key_count = keyring_count(read.ring);
		row->fully_backed_up = keyring_fully_backed_up(read.ring);
		snprintf(row->container, sizeof(row->container), "%s",
			 keyring_container(read.ring));
		row->status = keyring_active(read.ring, NULL, NULL) == 0
				      ? WALLET_STATUS_OPEN
				      : WALLET_STATUS_OPEN_NO_MASTER_KEY;
	}
	if (read.ring)
		list_containers(read.ring, row);
	wallet_read_release(&read);
}

static void read_external_store(const struct wallet_paths *paths,
				struct wallet_status_report *report)
{
	struct wallet_status_row *row = &report->external_store;
	struct wallet_read read = {
		.path = paths->external_store,
		.expected_content = WALLET_CONTENT_SECRET,
	};
	int ret;

	report->external_store_present = true;
	snprintf(row->path, sizeof(row->path), "%s", paths->external_store);
	row->present = true;
	row->status = WALLET_STATUS_CLOSED;
	ret = wallet_read(&read, row->error);
	if (read.info.version != 0) {
		row->header_valid = true;
		row->info = read.info;
		row->kind = read.info.kind;
	}
	if (ret < 0) {
		row->error_code = ret;
		return;
	}
	row->error[0] = '\0';
	row->opened = true;
	row->status = WALLET_STATUS_OPEN;
	wallet_read_release(&read);
}

int wallet_status_read(const char *dir, const struct password_source *source,
		       struct wallet_status_report *report)
{
	const struct wallet_status_row *primary = NULL;
	const struct keystore_kind *mount_kind = NULL;
	struct wallet_paths paths;
	int ret;

	memset(report, 0, sizeof(*report));
	snprintf(report->dir, sizeof(report->dir), "%s", dir);
	report->status = WALLET_STATUS_NOT_AVAILABLE;
	report->mount_row = -1;
	ret = wallet_paths_init(dir, &paths);
	if (ret < 0) {
		wallet_message(report->error, "wallet directory name is too long or empty");
		return ret;
	}
	snprintf(report->dir, sizeof(report->dir), "%s", paths.dir);
	/* A directory that does not exist is NOT_AVAILABLE; one open to others is refused. */
	if (wallet_file_present(paths.dir)) {
		ret = wallet_directory_check(&paths, report->error);
		if (ret < 0)
			return ret;
	}

	for (size_t i = 0; i < keystore_kind_count(); i++) {
		const struct keystore_kind *kind = keystore_kind_at(i);
		struct wallet_status_row *row = &report->rows[report->row_count];

		snprintf(row->path, sizeof(row->path), "%s", keystore_kind_path(kind, &paths));
		if (!wallet_file_present(row->path))
			continue;
		report->row_count++;
		row->kind = kind->code;
		row->present = true;
		read_row(&paths, row, source);
		if (row->header_valid && !report->wallet_id_known) {
			memcpy(report->wallet_id, row->info.wallet_id, KEY_ID_SIZE);
			report->wallet_id_known = true;
		}
		if (row->error_code && !report->first_error)
			report->first_error = row->error_code;
	}
	if (wallet_file_present(paths.external_store)) {
		read_external_store(&paths, report);
		if (report->external_store.error_code && !report->first_error)
			report->first_error = report->external_store.error_code;
	}

	/* The daemon opens the kind of lowest mount rank (see keystore_kind_for_mount). */
	for (size_t i = 0; i < report->row_count; i++) {
		const struct keystore_kind *kind = keystore_kind_of(report->rows[i].kind);

		if (!kind->auto_login)
			primary = &report->rows[i];
		if (!mount_kind || kind->mount_rank < mount_kind->mount_rank) {
			mount_kind = kind;
			report->mount_row = (int)i;
		}
	}
	if (report->mount_row >= 0)
		report->status = report->rows[report->mount_row].status;
	for (size_t i = 0; i < report->row_count && primary && primary->header_valid; i++) {
		struct wallet_status_row *row = &report->rows[i];

		if (row != primary && row->header_valid &&
		    row->info.generation != primary->info.generation)
			row->out_of_step = true;
	}
	return 0;
}
