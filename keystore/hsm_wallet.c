/*
 * The text of hsm.wallet, read and written (hsm_wallet.h; the lines are specified in
 * docs/WALLET.md, "HSM wallets"). Reading trusts nothing: the size is bounded before anything
 * is parsed, every line is at most HSM_WALLET_LINE_MAX bytes and must be the line expected at
 * that place, numbers are plain decimal that fit their field, hexadecimal is lowercase and of
 * the exact length, text fields are hex-encoded so no byte of them can break a line, and the
 * file must end with the "end" line, so a file cut short by anything is refused rather than
 * read as a wallet with fewer keys.
 */
#include "keystore/hsm_wallet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

/* A cursor over the file, one line at a time. */
struct line_reader {
	const char *data;
	size_t len;
	size_t offset;
	unsigned number; /* of the line last taken, from 1 */
};

static int damaged(char why[WALLET_WHY_SIZE], unsigned line, const char *reason)
{
	snprintf(why, WALLET_WHY_SIZE, "line %u: %s", line, reason);
	return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
}

/* The next line without its newline, NUL-terminated in line; false at the end or if too long. */
static int next_line(struct line_reader *reader, char line[HSM_WALLET_LINE_MAX + 1],
		     char why[WALLET_WHY_SIZE])
{
	const char *start = reader->data + reader->offset;
	size_t left = reader->len - reader->offset;
	const char *newline = memchr(start, '\n', left < HSM_WALLET_LINE_MAX + 1 ? left
									   : HSM_WALLET_LINE_MAX + 1);
	size_t n;

	reader->number++;
	if (left == 0)
		return damaged(why, reader->number, "the file ends before its end line");
	if (!newline)
		return damaged(why, reader->number,
			       left > HSM_WALLET_LINE_MAX ? "line too long" : "no newline");
	n = (size_t)(newline - start);
	for (size_t i = 0; i < n; i++)
		if (start[i] < 0x20 || start[i] > 0x7e)
			return damaged(why, reader->number, "a byte that is not printable ASCII");
	memcpy(line, start, n);
	line[n] = '\0';
	reader->offset += n + 1;
	return 0;
}

/* "name value": value points into line; the name must match and the value be non-empty. */
static int take_field(struct line_reader *reader, char line[HSM_WALLET_LINE_MAX + 1],
		      const char *name, const char **value, char why[WALLET_WHY_SIZE])
{
	size_t name_len = strlen(name);
	char reason[96];
	int ret = next_line(reader, line, why);

	if (ret < 0)
		return ret;
	if (strncmp(line, name, name_len) != 0 || line[name_len] != ' ' ||
	    line[name_len + 1] == '\0') {
		snprintf(reason, sizeof(reason), "expected '%s VALUE'", name);
		return damaged(why, reader->number, reason);
	}
	*value = line + name_len + 1;
	return 0;
}

/* Plain decimal: no sign, no leading zero (but "0"), no overflow of max. */
static bool parse_decimal(const char *text, uint64_t max, uint64_t *out)
{
	uint64_t value = 0;

	if (!*text || (text[0] == '0' && text[1]))
		return false;
	for (; *text; text++) {
		unsigned digit;

		if (*text < '0' || *text > '9')
			return false;
		digit = (unsigned)(*text - '0');
		if (value > (max - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*out = value;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lowercase hex of 1..max bytes (or exactly max when exact) into out. */
static bool parse_hex(const char *text, uint8_t *out, size_t max, bool exact, size_t *out_len)
{
	size_t len = strlen(text);

	if (len == 0 || len % 2 || len / 2 > max || (exact && len / 2 != max))
		return false;
	for (size_t i = 0; i < len / 2; i++) {
		int high = hex_value(text[2 * i]), low = hex_value(text[2 * i + 1]);

		if (high < 0 || low < 0)
			return false;
		out[i] = (uint8_t)(high << 4 | low);
	}
	if (out_len)
		*out_len = len / 2;
	return true;
}

/* A text field: "-" for empty, else hex of printable bytes, at most max of them. */
static bool parse_text(const char *text, char *out, size_t max, bool may_be_empty)
{
	size_t len;

	if (strcmp(text, "-") == 0) {
		out[0] = '\0';
		return may_be_empty;
	}
	if (!parse_hex(text, (uint8_t *)out, max, false, &len))
		return false;
	out[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (out[i] < 0x20 || out[i] > 0x7e)
			return false;
	return true;
}

static bool printable(const char *text, size_t max, bool may_be_empty)
{
	size_t len = strlen(text);

	if (len > max || (len == 0 && !may_be_empty))
		return false;
	for (size_t i = 0; i < len; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return false;
	return true;
}

int hsm_identity_check(const struct hsm_wallet_identity *identity, char why[WALLET_WHY_SIZE])
{
	if (identity->module[0] != '/' || !printable(identity->module, HSM_MODULE_PATH_MAX, false) ||
	    strchr(identity->module, ' ')) {
		snprintf(why, WALLET_WHY_SIZE,
			 "the module must be an absolute path of printable characters without "
			 "spaces, at most %d bytes",
			 HSM_MODULE_PATH_MAX);
		return -EINVAL;
	}
	if (!printable(identity->token_label, HSM_TOKEN_LABEL_MAX, false) ||
	    identity->token_label[0] == ' ' ||
	    identity->token_label[strlen(identity->token_label) - 1] == ' ') {
		snprintf(why, WALLET_WHY_SIZE,
			 "the token label must be 1 to %d printable characters, no space at "
			 "either end",
			 HSM_TOKEN_LABEL_MAX);
		return -EINVAL;
	}
	if (!printable(identity->token_serial, HSM_TOKEN_SERIAL_MAX, true) ||
	    strchr(identity->token_serial, ' ')) {
		snprintf(why, WALLET_WHY_SIZE,
			 "the token serial must be at most %d printable characters, no spaces",
			 HSM_TOKEN_SERIAL_MAX);
		return -EINVAL;
	}
	if (identity->link_count > HSM_MAX_LINKS)
		return -EINVAL;
	for (size_t i = 0; i < identity->link_count; i++)
		if (identity->links[i].path[0] != '/' ||
		    !printable(identity->links[i].path, HSM_MODULE_PATH_MAX, false) ||
		    strchr(identity->links[i].path, ' ')) {
			snprintf(why, WALLET_WHY_SIZE,
				 "a linked wallet must be an absolute path of printable characters "
				 "without spaces");
			return -EINVAL;
		}
	return 0;
}

/* Split a key line into its fields (in place); exactly count of them. */
static bool split_fields(char *line, char **fields, size_t count)
{
	size_t n = 0;
	char *p = line;

	while (n < count) {
		fields[n++] = p;
		p = strchr(p, ' ');
		if (!p)
			break;
		*p++ = '\0';
	}
	if (n != count || p)
		return false;
	for (size_t i = 0; i < count; i++)
		if (!fields[i][0])
			return false;
	return true;
}

enum key_field {
	KEY_FIELD_WORD,
	KEY_FIELD_ID,
	KEY_FIELD_STATE,
	KEY_FIELD_ORIGIN,
	KEY_FIELD_CREATED,
	KEY_FIELD_ACTIVATED,
	KEY_FIELD_BACKED_UP,
	KEY_FIELD_CKA_ID,
	KEY_FIELD_LABEL,
	KEY_FIELD_CONTAINER,
	KEY_FIELD_TAG,
	KEY_FIELD_CREATOR,
	KEY_FIELD_COUNT
};

static int parse_key(char *line, unsigned number, struct mek_record *record,
		     struct hsm_key_object *object, char why[WALLET_WHY_SIZE])
{
	char *field[KEY_FIELD_COUNT];
	uint64_t value;

	memset(record, 0, sizeof(*record));
	memset(object, 0, sizeof(*object));
	if (!split_fields(line, field, KEY_FIELD_COUNT) || strcmp(field[KEY_FIELD_WORD], "key"))
		return damaged(why, number, "a key line must have 12 fields separated by one space");
	if (!parse_hex(field[KEY_FIELD_ID], record->id, KEY_ID_SIZE, true, NULL))
		return damaged(why, number, "the key ID is not 32 lowercase hex digits");
	if (strcmp(field[KEY_FIELD_STATE], "ACTIVE") == 0)
		record->state = MEK_STATE_ACTIVE;
	else if (strcmp(field[KEY_FIELD_STATE], "RETIRED") == 0)
		record->state = MEK_STATE_RETIRED;
	else if (strcmp(field[KEY_FIELD_STATE], "PREACTIVE") == 0)
		record->state = MEK_STATE_PREACTIVE;
	else
		return damaged(why, number, "unknown key state");
	if (strcmp(field[KEY_FIELD_ORIGIN], "LOCAL") == 0)
		record->origin = MEK_ORIGIN_LOCAL;
	else
		return damaged(why, number, "unknown key origin (an HSM key is made on the token)");
	if (!parse_decimal(field[KEY_FIELD_CREATED], INT64_MAX, &value))
		return damaged(why, number, "bad creation time");
	record->creation_time = (int64_t)value;
	if (!parse_decimal(field[KEY_FIELD_ACTIVATED], INT64_MAX, &value))
		return damaged(why, number, "bad activation time");
	record->activation_time = (int64_t)value;
	if (strcmp(field[KEY_FIELD_BACKED_UP], "0") && strcmp(field[KEY_FIELD_BACKED_UP], "1"))
		return damaged(why, number, "backed-up must be 0 or 1");
	record->backed_up = field[KEY_FIELD_BACKED_UP][0] == '1';
	if (!parse_hex(field[KEY_FIELD_CKA_ID], object->cka_id, HSM_CKA_ID_MAX, false,
		       &object->cka_id_len))
		return damaged(why, number, "the CKA_ID is not 1 to 64 bytes of lowercase hex");
	if (!parse_text(field[KEY_FIELD_LABEL], object->label, HSM_CKA_LABEL_MAX, false))
		return damaged(why, number, "bad CKA_LABEL");
	if (strlen(field[KEY_FIELD_CONTAINER]) > WALLET_CONTAINER_MAX ||
	    !wallet_container_valid(field[KEY_FIELD_CONTAINER]))
		return damaged(why, number, "bad container name");
	strcpy(record->container, field[KEY_FIELD_CONTAINER]);
	if (!parse_text(field[KEY_FIELD_TAG], record->tag, WALLET_TAG_MAX, true))
		return damaged(why, number, "bad tag");
	if (!parse_text(field[KEY_FIELD_CREATOR], record->creator, WALLET_CREATOR_MAX, true))
		return damaged(why, number, "bad creator");
	memcpy(object->key_id, record->id, KEY_ID_SIZE);
	record->on_token = true;
	return 0;
}

static bool has_active_link(const struct hsm_wallet_identity *identity)
{
	for (size_t i = 0; i < identity->link_count; i++)
		if (identity->links[i].active)
			return true;
	return false;
}

void hsm_wallet_release(struct hsm_wallet *wallet)
{
	keyring_free(wallet->ring);
	free(wallet->objects);
	memset(wallet, 0, sizeof(*wallet));
}

static int parse_header(struct line_reader *reader, char *line, struct hsm_wallet *wallet,
			char container[WALLET_CONTAINER_MAX + 1], char why[WALLET_WHY_SIZE])
{
	const char *value;
	uint64_t number;
	int ret;

	if ((ret = take_field(reader, line, HSM_WALLET_MAGIC, &value, why)) < 0)
		return ret;
	if (!parse_decimal(value, UINT16_MAX, &number) || number == 0)
		return damaged(why, reader->number, "bad version");
	if (number > HSM_WALLET_VERSION) {
		snprintf(why, WALLET_WHY_SIZE, "written by a newer tdefs (version %" PRIu64 ")",
			 number);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT);
	}
	if ((ret = take_field(reader, line, "wallet-id", &value, why)) < 0)
		return ret;
	if (!parse_hex(value, wallet->wallet_id, KEY_ID_SIZE, true, NULL))
		return damaged(why, reader->number, "the wallet ID is not 32 lowercase hex digits");
	if ((ret = take_field(reader, line, "container", &value, why)) < 0)
		return ret;
	if (strlen(value) > WALLET_CONTAINER_MAX || !wallet_container_valid(value))
		return damaged(why, reader->number, "bad container name");
	strcpy(container, value);
	if ((ret = take_field(reader, line, "generation", &value, why)) < 0)
		return ret;
	if (!parse_decimal(value, UINT64_MAX, &wallet->generation))
		return damaged(why, reader->number, "bad generation");
	if ((ret = take_field(reader, line, "written", &value, why)) < 0)
		return ret;
	if (!parse_decimal(value, INT64_MAX, &number))
		return damaged(why, reader->number, "bad write time");
	wallet->write_time = (int64_t)number;
	if ((ret = take_field(reader, line, "module", &value, why)) < 0)
		return ret;
	if (strlen(value) > HSM_MODULE_PATH_MAX)
		return damaged(why, reader->number, "module path too long");
	strcpy(wallet->identity.module, value);
	if ((ret = take_field(reader, line, "token-label", &value, why)) < 0)
		return ret;
	if (!parse_text(value, wallet->identity.token_label, HSM_TOKEN_LABEL_MAX, false))
		return damaged(why, reader->number, "bad token label");
	if ((ret = take_field(reader, line, "token-serial", &value, why)) < 0)
		return ret;
	if (!parse_text(value, wallet->identity.token_serial, HSM_TOKEN_SERIAL_MAX, true))
		return damaged(why, reader->number, "bad token serial");
	{
		char reason[WALLET_WHY_SIZE];

		if (hsm_identity_check(&wallet->identity, reason) < 0)
			return damaged(why, reader->number, reason);
	}
	return 0;
}

/* "link PATH ROLE" lines, when the next line is one; *line_taken says a line was read. */
static int parse_links(struct line_reader *reader, char *line, struct hsm_wallet *wallet,
		       bool *line_taken, char why[WALLET_WHY_SIZE])
{
	struct hsm_wallet_identity *identity = &wallet->identity;
	int ret;

	for (;;) {
		char *path, *role;
		struct hsm_link *link;

		ret = next_line(reader, line, why);
		if (ret < 0)
			return ret;
		*line_taken = true;
		if (strncmp(line, "link ", 5) != 0)
			return 0;
		if (identity->link_count == HSM_MAX_LINKS)
			return damaged(why, reader->number, "more linked wallets than one may have");
		path = line + 5;
		role = strchr(path, ' ');
		if (!role)
			return damaged(why, reader->number, "a link line is 'link PATH ROLE'");
		*role++ = '\0';
		if (path[0] != '/' || strlen(path) > HSM_MODULE_PATH_MAX)
			return damaged(why, reader->number, "a linked wallet must be an absolute path");
		if (strcmp(role, "retired") && strcmp(role, "active"))
			return damaged(why, reader->number, "a link's role is retired or active");
		for (size_t i = 0; i < identity->link_count; i++) {
			if (strcmp(identity->links[i].path, path) == 0)
				return damaged(why, reader->number, "a wallet linked twice");
			if (identity->links[i].active && strcmp(role, "active") == 0)
				return damaged(why, reader->number, "a second active link");
		}
		link = &identity->links[identity->link_count++];
		strcpy(link->path, path);
		link->active = strcmp(role, "active") == 0;
	}
}

int hsm_wallet_parse(const uint8_t *data, size_t len, struct hsm_wallet *wallet,
		     char why[WALLET_WHY_SIZE])
{
	struct line_reader reader = { .data = (const char *)data, .len = len };
	char container[WALLET_CONTAINER_MAX + 1];
	char *line;
	size_t capacity = 0;
	bool taken = false;
	int ret;

	memset(wallet, 0, sizeof(*wallet));
	if (len > HSM_WALLET_MAX_SIZE) {
		snprintf(why, WALLET_WHY_SIZE, "larger than an HSM wallet can be");
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	line = malloc(HSM_WALLET_LINE_MAX + 1);
	if (!line)
		return -ENOMEM;
	ret = parse_header(&reader, line, wallet, container, why);
	if (ret == 0)
		ret = keyring_new(wallet->wallet_id, container, &wallet->ring);
	if (ret == 0)
		ret = parse_links(&reader, line, wallet, &taken, why);
	while (ret == 0) {
		struct mek_record record;

		if (!taken)
			ret = next_line(&reader, line, why);
		taken = false;
		if (ret < 0)
			break;
		if (strcmp(line, "end") == 0)
			break;
		if (wallet->object_count == WALLET_MAX_KEYS) {
			ret = damaged(why, reader.number, "more keys than a wallet can hold");
			break;
		}
		if (wallet->object_count == capacity) {
			size_t grown = capacity ? capacity * 2 : 8;
			struct hsm_key_object *objects =
				realloc(wallet->objects, grown * sizeof(*objects));

			if (!objects) {
				ret = -ENOMEM;
				break;
			}
			wallet->objects = objects;
			capacity = grown;
		}
		ret = parse_key(line, reader.number, &record,
				&wallet->objects[wallet->object_count], why);
		if (ret < 0)
			break;
		if (record.state == MEK_STATE_ACTIVE && keyring_holds_active(wallet->ring,
									     record.container)) {
			ret = damaged(why, reader.number, "a second ACTIVE key in one container");
			break;
		}
		/* An active link: the active key is the linked wallet's, none of the token's. */
		if (record.state == MEK_STATE_ACTIVE && has_active_link(&wallet->identity)) {
			ret = damaged(why, reader.number, "an ACTIVE key beside an active link");
			break;
		}
		ret = keyring_append(wallet->ring, &record);
		secure_wipe(&record, sizeof(record));
		if (ret == -EEXIST) {
			ret = damaged(why, reader.number, "a key ID listed twice");
			break;
		}
		if (ret == 0)
			wallet->object_count++;
	}
	if (ret == 0 && reader.offset != reader.len)
		ret = damaged(why, reader.number + 1, "bytes after the end line");
	free(line);
	if (ret < 0) {
		hsm_wallet_release(wallet);
		return ret;
	}
	keyring_set_generation(wallet->ring, wallet->generation);
	keyring_set_source_kind(wallet->ring, WALLET_KIND_HSM);
	return 0;
}

/* --- writing ----------------------------------------------------------------------------- */

struct text_out {
	char *data;
	size_t len;
	size_t capacity;
	bool failed;
};

static void out_printf(struct text_out *out, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct text_out *out, const char *format, ...)
{
	va_list args;
	int n;

	if (out->failed)
		return;
	if (out->capacity - out->len < HSM_WALLET_LINE_MAX + 1) {
		size_t grown = out->capacity ? out->capacity * 2 : 4096;
		char *data = realloc(out->data, grown);

		if (!data) {
			out->failed = true;
			return;
		}
		out->data = data;
		out->capacity = grown;
	}
	va_start(args, format);
	n = vsnprintf(out->data + out->len, out->capacity - out->len, format, args);
	va_end(args);
	if (n < 0 || (size_t)n >= out->capacity - out->len)
		out->failed = true;
	else
		out->len += (size_t)n;
}

static void hex_text(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

/* "-" for an empty text, else its hex. */
static const char *text_field(const char *text, char *buffer)
{
	if (!*text)
		return "-";
	hex_text((const uint8_t *)text, strlen(text), buffer);
	return buffer;
}

void hsm_key_object_for(const uint8_t key_id[KEY_ID_SIZE], struct hsm_key_object *object)
{
	char hex[KEY_ID_TEXT_SIZE];

	memset(object, 0, sizeof(*object));
	memcpy(object->key_id, key_id, KEY_ID_SIZE);
	memcpy(object->cka_id, key_id, KEY_ID_SIZE);
	object->cka_id_len = KEY_ID_SIZE;
	key_id_format(key_id, hex);
	snprintf(object->label, sizeof(object->label), "tdefs-%s", hex);
}

int hsm_wallet_encode(const struct hsm_wallet_identity *identity, const struct keyring *ring,
		      const struct hsm_key_object *objects, size_t object_count, int64_t write_time,
		      char **out, size_t *out_len)
{
	char a[2 * HSM_CKA_LABEL_MAX + 1], b[2 * WALLET_TAG_MAX + 1], c[2 * WALLET_CREATOR_MAX + 1];
	char id[KEY_ID_TEXT_SIZE], cka_id[2 * HSM_CKA_ID_MAX + 1];
	uint8_t wallet_id[KEY_ID_SIZE];
	struct text_out text = { 0 };
	char why[WALLET_WHY_SIZE];

	if (hsm_identity_check(identity, why) < 0)
		return -EINVAL;
	keyring_wallet_id(ring, wallet_id);
	key_id_format(wallet_id, id);
	out_printf(&text, "%s %d\nwallet-id %s\ncontainer %s\ngeneration %" PRIu64
			  "\nwritten %" PRId64 "\nmodule %s\n",
		   HSM_WALLET_MAGIC, HSM_WALLET_VERSION, id, keyring_container(ring),
		   keyring_generation(ring), write_time < 0 ? 0 : write_time, identity->module);
	out_printf(&text, "token-label %s\n", text_field(identity->token_label, a));
	out_printf(&text, "token-serial %s\n", text_field(identity->token_serial, a));
	for (size_t i = 0; i < identity->link_count; i++)
		out_printf(&text, "link %s %s\n", identity->links[i].path,
			   identity->links[i].active ? "active" : "retired");
	for (size_t i = 0; i < keyring_count(ring); i++) {
		const struct mek_record *record = keyring_record(ring, i);
		const struct hsm_key_object *object = NULL;

		if (record->linked)
			continue;
		if (record->state == MEK_STATE_ACTIVE && has_active_link(identity)) {
			free(text.data);
			return -EINVAL;
		}

		for (size_t k = 0; k < object_count && !object; k++)
			if (memcmp(objects[k].key_id, record->id, KEY_ID_SIZE) == 0)
				object = &objects[k];
		/* Only keys on the token belong in the file: it holds no key material. */
		if (!object || !record->on_token || record->creation_time < 0 ||
		    record->activation_time < 0 || object->cka_id_len == 0 ||
		    object->cka_id_len > HSM_CKA_ID_MAX || !object->label[0]) {
			free(text.data);
			return -EINVAL;
		}
		key_id_format(record->id, id);
		hex_text(object->cka_id, object->cka_id_len, cka_id);
		out_printf(&text, "key %s %s LOCAL %" PRId64 " %" PRId64 " %d %s %s %s %s %s\n", id,
			   mek_state_name(record->state), record->creation_time,
			   record->activation_time, record->backed_up ? 1 : 0, cka_id,
			   text_field(object->label, a), record->container,
			   text_field(record->tag, b), text_field(record->creator, c));
	}
	out_printf(&text, "end\n");
	if (!text.failed && text.len > HSM_WALLET_MAX_SIZE) {
		free(text.data);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WALLET_FULL);
	}
	if (text.failed) {
		free(text.data);
		return -ENOMEM;
	}
	*out = text.data;
	*out_len = text.len;
	return 0;
}
