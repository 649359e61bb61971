/*
 * What tdekey prints: aligned tables for people, JSON for scripts (every string escaped by
 * util/json_text.c: tags and backing paths are chosen by users), one-line errors on stderr
 * with an exit code per kind of failure, so that a script can tell a wrong password (retry) from
 * a damaged wallet (restore) without parsing messages.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_text.h"

/*
 * The keystore's own meanings first (keystore.h: a range apart from errno), then the few system
 * errors that mean something to a script. A real ESTALE or EXDEV from the file system the wallet
 * lives on is a system error like any other: EXIT_ERROR, with strerror's words.
 */
int exit_code_for(int error)
{
	switch (keystore_error_of(error)) {
	case KEYSTORE_OK:
		return EXIT_OK;
	case KEYSTORE_ERR_WRONG_PASSWORD:
		return EXIT_WRONG_PASSWORD;
	case KEYSTORE_ERR_DAMAGED:
		return EXIT_DAMAGED;
	case KEYSTORE_ERR_NEWER_FORMAT:
		return EXIT_NEWER_FORMAT;
	case KEYSTORE_ERR_UNSAFE_MODES:
		return EXIT_PERMISSIONS;
	case KEYSTORE_ERR_OTHER_HOST:
		return EXIT_OTHER_HOST;
	case KEYSTORE_ERR_NO_SUCH_KEY:
	case KEYSTORE_ERR_AMBIGUOUS_KEY_ID:
		return EXIT_NO_SUCH_KEY;
	case KEYSTORE_ERR_COPY_HAS_MORE_KEYS:
		return EXIT_COPY_AHEAD;
	case KEYSTORE_ERR_KEY_IS_ACTIVE:
		return EXIT_KEY_IN_USE;
	case KEYSTORE_ERR_WRONG_SECRET:
		return EXIT_WRONG_SECRET;
	case KEYSTORE_ERR_EXPORT_DAMAGED:
		return EXIT_EXPORT_DAMAGED;
	case KEYSTORE_ERR_KEY_CONFLICT:
		return EXIT_KEY_CONFLICT;
	case KEYSTORE_ERR_WRONG_PIN:
		return EXIT_WRONG_PIN;
	case KEYSTORE_ERR_HSM_MODULE:
		return EXIT_HSM_MODULE;
	case KEYSTORE_ERR_TOKEN_ABSENT:
		return EXIT_TOKEN_ABSENT;
	case KEYSTORE_ERR_KEY_NOT_ON_TOKEN:
		return EXIT_KEY_NOT_ON_TOKEN;
	case KEYSTORE_ERR_TOKEN_MECHANISM:
		return EXIT_TOKEN_MECHANISM;
	case KEYSTORE_ERR_TOKEN_FAILED:
		return EXIT_TOKEN_FAILED;
	case KEYSTORE_ERR_KEY_SERVER_UNREACHABLE:
		return EXIT_KEY_SERVER_UNREACHABLE;
	case KEYSTORE_ERR_KEY_SERVER_REFUSED:
		return EXIT_KEY_SERVER_REFUSED;
	case KEYSTORE_ERR_KEY_MISMATCH:
	case KEYSTORE_ERR_WALLET_FULL:
	case KEYSTORE_ERROR_COUNT:
		return EXIT_ERROR;
	case KEYSTORE_ERR_SYSTEM:
		break;
	}
	switch (error) {
	case -ENOENT:
		return EXIT_NO_WALLET;
	case -ENXIO: /* a password is needed and there is no terminal to ask on */
		return EXIT_WRONG_PASSWORD;
	case -EPERM: /* the system refused (an immutable file, a root-squashed mount) */
		return EXIT_PERMISSIONS;
	case -ENOKEY: /* keyring_active(): the wallet holds no master key */
		return EXIT_NO_MASTER_KEY;
	case -EEXIST:
		return EXIT_EXISTS;
	default:
		return EXIT_ERROR;
	}
}

int report_failure(int error, const char *message)
{
	fprintf(stderr, "tdekey: %s\n", message && *message ? message : keystore_error_message(error));
	return exit_code_for(error);
}

void format_time(int64_t seconds, char out[32])
{
	time_t value = (time_t)seconds;
	struct tm utc;

	if (seconds == 0 || !gmtime_r(&value, &utc)) {
		strcpy(out, "-");
		return;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

/* --- tables ---------------------------------------------------------------------------- */

void table_init(struct table *table, size_t columns, const char *const headers[])
{
	memset(table, 0, sizeof(*table));
	table->columns = columns < TABLE_MAX_COLUMNS ? columns : TABLE_MAX_COLUMNS;
	for (size_t i = 0; i < table->columns; i++)
		table->headers[i] = headers[i];
}

int table_add_row(struct table *table, const char *const cells[])
{
	if (table->rows == table->capacity) {
		size_t capacity = table->capacity ? table->capacity * 2 : 8;
		char **grown = realloc(table->cells, capacity * table->columns * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		table->cells = grown;
		table->capacity = capacity;
	}
	for (size_t i = 0; i < table->columns; i++) {
		char *copy = strdup(cells[i] && *cells[i] ? cells[i] : "-");

		if (!copy) {
			for (size_t j = 0; j < i; j++)
				free(table->cells[table->rows * table->columns + j]);
			return -ENOMEM;
		}
		table->cells[table->rows * table->columns + i] = copy;
	}
	table->rows++;
	return 0;
}

void table_print(const struct table *table, FILE *out)
{
	size_t width[TABLE_MAX_COLUMNS];

	for (size_t c = 0; c < table->columns; c++) {
		width[c] = strlen(table->headers[c]);
		for (size_t r = 0; r < table->rows; r++) {
			size_t len = strlen(table->cells[r * table->columns + c]);

			if (len > width[c])
				width[c] = len;
		}
	}
	for (size_t r = 0; r <= table->rows; r++) {
		for (size_t c = 0; c < table->columns; c++) {
			const char *text = r == 0 ? table->headers[c]
						  : table->cells[(r - 1) * table->columns + c];

			/* Two spaces between columns; the last column is not padded. */
			if (c + 1 < table->columns)
				fprintf(out, "%-*s  ", (int)width[c], text);
			else
				fprintf(out, "%s\n", text);
		}
	}
}

void table_free(struct table *table)
{
	for (size_t i = 0; i < table->rows * table->columns; i++)
		free(table->cells[i]);
	free(table->cells);
	memset(table, 0, sizeof(*table));
}

/* --- JSON ------------------------------------------------------------------------------ */

static void json_indent(struct json *json)
{
	fputc('\n', json->out);
	for (int i = 0; i < json->depth; i++)
		fputs("  ", json->out);
}

/* Comma, new line and the key (inside an object) before any value. */
static void json_member(struct json *json, const char *key)
{
	if (json->need_comma[json->depth])
		fputc(',', json->out);
	json->need_comma[json->depth] = true;
	json_indent(json);
	if (key) {
		json_write_string(json->out, key);
		fputs(": ", json->out);
	}
}

void json_begin(struct json *json, FILE *out)
{
	memset(json, 0, sizeof(*json));
	json->out = out;
	fputc('{', out);
	json->depth = 1;
}

void json_end(struct json *json)
{
	json->depth = 0;
	fputs("\n}\n", json->out);
}

void json_string(struct json *json, const char *key, const char *value)
{
	json_member(json, key);
	if (value)
		json_write_string(json->out, value);
	else
		fputs("null", json->out);
}

void json_bool(struct json *json, const char *key, bool value)
{
	json_member(json, key);
	fputs(value ? "true" : "false", json->out);
}

void json_uint(struct json *json, const char *key, uint64_t value)
{
	json_member(json, key);
	fprintf(json->out, "%llu", (unsigned long long)value);
}

void json_time(struct json *json, const char *key, int64_t seconds)
{
	char text[32];

	format_time(seconds, text);
	json_string(json, key, seconds ? text : NULL);
}

static void json_open(struct json *json, const char *key, char bracket)
{
	json_member(json, key);
	fputc(bracket, json->out);
	if (json->depth + 1 < (int)(sizeof(json->need_comma) / sizeof(json->need_comma[0])))
		json->depth++;
	json->need_comma[json->depth] = false;
}

static void json_close(struct json *json, char bracket)
{
	bool had_members = json->need_comma[json->depth];

	json->depth--;
	if (had_members)
		json_indent(json);
	fputc(bracket, json->out);
}

void json_object_begin(struct json *json, const char *key)
{
	json_open(json, key, '{');
}

void json_object_end(struct json *json)
{
	json_close(json, '}');
}

void json_array_begin(struct json *json, const char *key)
{
	json_open(json, key, '[');
}

void json_array_end(struct json *json)
{
	json_close(json, ']');
}

/* --- keys, as V$ENCRYPTION_KEYS shows them ---------------------------------------------- */

void print_keys_json(struct json *json, const struct keyring *ring,
		     const struct key_census *census, const char *container)
{
	json_array_begin(json, "keys");
	for (size_t i = 0; i < keyring_count(ring); i++) {
		const struct mek_record *record = keyring_record(ring, i);
		char id[KEY_ID_TEXT_SIZE];

		if (container && strcmp(record->container, container) != 0)
			continue;
		key_id_format(record->id, id);
		json_object_begin(json, NULL);
		json_string(json, "key_id", id);
		json_string(json, "tag", record->tag[0] ? record->tag : NULL);
		json_string(json, "container", record->container);
		json_time(json, "creation_time", record->creation_time);
		json_time(json, "activation_time", record->activation_time);
		json_string(json, "state", mek_state_name(record->state));
		json_string(json, "origin", mek_origin_name(record->origin));
		/* null: made before wallets recorded creators (a format version 1 file). */
		json_string(json, "creator", record->creator[0] ? record->creator : NULL);
		json_bool(json, "backed_up", record->backed_up);
		json_string(json, "keystore_type", KEYSTORE_TYPE_NAME(record));
		if (census)
			json_uint(json, "files", census_files_for(census, record->id));
		json_object_end(json);
	}
	json_array_end(json);
}

int print_keys_table(const struct keyring *ring, const struct key_census *census,
		     const char *container, FILE *out)
{
	static const char *const headers[] = { "KEY_ID",	  "TAG",
					       "CONTAINER",	  "CREATION_TIME",
					       "ACTIVATION_TIME", "STATE",
					       "ORIGIN",	  "CREATOR",
					       "BACKED_UP",	  "KEYSTORE_TYPE",
					       "FILES" };
	struct table table;
	int ret = 0;

	table_init(&table, census ? 11 : 10, headers);
	for (size_t i = 0; i < keyring_count(ring) && ret == 0; i++) {
		const struct mek_record *record = keyring_record(ring, i);
		char id[KEY_ID_TEXT_SIZE], created[32], activated[32], files[24];
		const char *cells[11];

		if (container && strcmp(record->container, container) != 0)
			continue;
		key_id_format(record->id, id);
		format_time(record->creation_time, created);
		format_time(record->activation_time, activated);
		cells[0] = id;
		cells[1] = record->tag;
		cells[2] = record->container;
		cells[3] = created;
		cells[4] = activated;
		cells[5] = mek_state_name(record->state);
		cells[6] = mek_origin_name(record->origin);
		cells[7] = record->creator[0] ? record->creator : "-";
		cells[8] = record->backed_up ? "YES" : "NO";
		cells[9] = KEYSTORE_TYPE_NAME(record);
		if (census) {
			snprintf(files, sizeof(files), "%llu",
				 (unsigned long long)census_files_for(census, record->id));
			cells[10] = files;
		}
		ret = table_add_row(&table, cells);
	}
	if (ret == 0)
		table_print(&table, out);
	table_free(&table);
	return ret;
}
