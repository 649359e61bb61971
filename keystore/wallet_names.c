/*
 * The words a DBA sees (WALLET_TYPE, STATUS, key states, as Oracle's V$ views spell them), the
 * rules for the few strings people choose (tags, container names, backup IDs), the scrypt cost
 * option, the creator text a new key records, and the locked buffer passwords are kept in.
 *
 * Tags and names are restricted to printable ASCII so that a table or a JSON document can show
 * them without surprises and a file name made from a backup ID is always safe.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/keystore_kind.h"
#include "keystore/wallet_format.h"

const char *wallet_kind_name(enum wallet_kind kind)
{
	const struct keystore_kind *entry = keystore_kind_of(kind);

	return entry ? entry->name : "UNKNOWN";
}

const char *wallet_kind_file(enum wallet_kind kind)
{
	const struct keystore_kind *entry = keystore_kind_of(kind);

	return entry ? entry->file : "?";
}

const char *wallet_status_name(enum wallet_status status)
{
	switch (status) {
	case WALLET_STATUS_NOT_AVAILABLE:
		return "NOT_AVAILABLE";
	case WALLET_STATUS_CLOSED:
		return "CLOSED";
	case WALLET_STATUS_OPEN:
		return "OPEN";
	case WALLET_STATUS_OPEN_NO_MASTER_KEY:
		return "OPEN_NO_MASTER_KEY";
	}
	return "UNKNOWN";
}

const char *mek_state_name(uint8_t state)
{
	switch (state) {
	case MEK_STATE_ACTIVE:
		return "ACTIVE";
	case MEK_STATE_RETIRED:
		return "RETIRED";
	case MEK_STATE_PREACTIVE:
		return "PREACTIVE";
	}
	return "UNKNOWN";
}

const char *mek_origin_name(uint8_t origin)
{
	switch (origin) {
	case MEK_ORIGIN_LOCAL:
		return "LOCAL";
	case MEK_ORIGIN_IMPORTED:
		return "IMPORTED";
	case MEK_ORIGIN_KMIP:
		return "KMIP";
	}
	return "UNKNOWN";
}

bool wallet_tag_valid(const char *tag)
{
	size_t len = strlen(tag);

	if (len > WALLET_TAG_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (tag[i] < 0x20 || tag[i] > 0x7e)
			return false;
	return true;
}

bool wallet_creator_valid(const char *creator)
{
	size_t len = strlen(creator);

	return len >= 1 && len <= WALLET_CREATOR_MAX && wallet_tag_valid(creator);
}

/* Append src to out (of WALLET_CREATOR_MAX + 1), each byte outside space..tilde as '?'. */
static void creator_append(char *out, const char *src)
{
	size_t len = strlen(out);

	for (; *src && len < WALLET_CREATOR_MAX; src++)
		out[len++] = (*src >= 0x20 && *src <= 0x7e) ? *src : '?';
	out[len] = '\0';
}

void wallet_creator_self(char out[WALLET_CREATOR_MAX + 1])
{
	char buffer[4096], host[256] = "";
	struct passwd entry, *found = NULL;
	char uid[24];

	/*
	 * The real uid, not SUDO_USER: the environment is the caller's to set, and a creator is
	 * worth recording only when nothing the user chooses can forge it.
	 */
	out[0] = '\0';
	if (getpwuid_r(getuid(), &entry, buffer, sizeof(buffer), &found) == 0 && found &&
	    found->pw_name[0]) {
		creator_append(out, found->pw_name);
	} else {
		snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
		creator_append(out, uid);
	}
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	creator_append(out, "@");
	creator_append(out, host);
}

static bool name_character(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

bool wallet_container_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > WALLET_CONTAINER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_character(name[i]) && name[i] != '$')
			return false;
	return true;
}

bool wallet_backup_id_valid(const char *id)
{
	size_t len = strlen(id);

	/* It becomes part of a file name: no '/', no leading '.'. */
	if (len == 0 || len > WALLET_BACKUP_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_character(id[i]))
			return false;
	return true;
}

bool scrypt_cost_valid(const struct scrypt_cost *cost)
{
	uint64_t n, memory;

	if (cost->log2_n < SCRYPT_MIN_LOG2_N || cost->log2_n > SCRYPT_MAX_LOG2_N)
		return false;
	if (cost->r < 1 || cost->r > 64 || cost->p < 1 || cost->p > 64)
		return false;
	/* OpenSSL refuses scrypt above about 1 GiB: 128 * r * (N + p + 2) bytes. */
	n = UINT64_C(1) << cost->log2_n;
	memory = UINT64_C(128) * cost->r * (n + cost->p + 2);
	return memory <= (UINT64_C(1) << 30);
}

static int parse_unsigned(const char **cursor, unsigned long max, unsigned long *value)
{
	char *end;

	if (**cursor < '0' || **cursor > '9')
		return -EINVAL;
	errno = 0;
	*value = strtoul(*cursor, &end, 10);
	if (errno || *value > max)
		return -EINVAL;
	*cursor = end;
	return 0;
}

int scrypt_cost_parse(const char *text, struct scrypt_cost *cost, char error[KEYSTORE_ERROR_SIZE])
{
	struct scrypt_cost parsed = SCRYPT_DEFAULT_COST;
	const char *cursor = text;
	unsigned long value;

	if (parse_unsigned(&cursor, 64, &value) < 0)
		goto out_bad_syntax;
	parsed.log2_n = (unsigned)value;
	if (*cursor == ',') {
		cursor++;
		if (parse_unsigned(&cursor, 1024, &value) < 0)
			goto out_bad_syntax;
		parsed.r = (uint32_t)value;
		if (*cursor == ',') {
			cursor++;
			if (parse_unsigned(&cursor, 1024, &value) < 0)
				goto out_bad_syntax;
			parsed.p = (uint32_t)value;
		}
	}
	if (*cursor != '\0')
		goto out_bad_syntax;
	if (!scrypt_cost_valid(&parsed)) {
		wallet_message(error,
			       "scrypt cost %.40s is out of range: LOG2N %d..%d, R 1..64, P 1..64, "
			       "and at most 1 GiB of memory (128 * R * 2^LOG2N bytes)",
			       text, SCRYPT_MIN_LOG2_N, SCRYPT_MAX_LOG2_N);
		return -EINVAL;
	}
	*cost = parsed;
	return 0;

out_bad_syntax:
	wallet_message(error, "scrypt cost '%.40s' is not LOG2N[,R[,P]] (for example 16,8,1)",
		       text);
	return -EINVAL;
}

struct secret *secret_new(void)
{
	return secure_alloc(sizeof(struct secret));
}

void secret_free(struct secret *secret)
{
	secure_free(secret);
}

void wallet_message(char error[KEYSTORE_ERROR_SIZE], const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(error, KEYSTORE_ERROR_SIZE, format, arguments);
	va_end(arguments);
}
