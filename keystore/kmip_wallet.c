/*
 * kmip.wallet (keystore/kmip_wallet.h): a short text file an operator can read, since it holds
 * no secret, and a parser that trusts none of it. Lines are at most KMIP_WALLET_LINE_MAX bytes
 * of printable ASCII with single spaces between fields, in a fixed order, closed by the SHA-256
 * of everything before it; the file is at most KMIP_WALLET_MAX_SIZE bytes. The checksum is for
 * damage (a torn copy, an editor's stray change), not for trust: trust comes from the owner and
 * mode checks before the file is read, as for every wallet file.
 */
#include "keystore/kmip_wallet.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/wallet_internal.h"
#include "util/util.h"

#define MAGIC "tdefs-kmip-wallet"
#define MAX_FIELDS 8

static const char *state_word(uint8_t state)
{
	switch (state) {
	case MEK_STATE_ACTIVE: return "ACTIVE";
	case MEK_STATE_RETIRED: return "RETIRED";
	case MEK_STATE_PREACTIVE: return "PREACTIVE";
	default: return NULL;
	}
}

static int state_parse(const char *word, uint8_t *state)
{
	for (uint8_t s = MEK_STATE_ACTIVE; s <= MEK_STATE_PREACTIVE; s++)
		if (strcmp(word, state_word(s)) == 0) {
			*state = s;
			return 0;
		}
	return -EINVAL;
}

/* ---- parsing ---- */

struct line_cursor {
	const uint8_t *data;
	size_t len, pos;
	unsigned number;
	char text[KMIP_WALLET_LINE_MAX + 1];
	char *fields[MAX_FIELDS];
	size_t count;
};

static int damaged(char why[KMIP_WALLET_WHY_SIZE], unsigned line, const char *reason)
{
	if (line)
		snprintf(why, KMIP_WALLET_WHY_SIZE, "line %u: %s", line, reason);
	else
		snprintf(why, KMIP_WALLET_WHY_SIZE, "%s", reason);
	return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
}

/* The next line split into fields: 1 at the end, KEYSTORE_ERR_DAMAGED for a bad line. */
static int next_line(struct line_cursor *c, char why[KMIP_WALLET_WHY_SIZE])
{
	const uint8_t *start = c->data + c->pos;
	const uint8_t *newline;
	size_t len;
	char *at;

	if (c->pos == c->len)
		return 1;
	c->number++;
	newline = memchr(start, '\n', c->len - c->pos);
	if (!newline)
		return damaged(why, c->number, "no newline at the end (a truncated file?)");
	len = (size_t)(newline - start);
	if (len > KMIP_WALLET_LINE_MAX)
		return damaged(why, c->number, "longer than 512 bytes");
	if (len == 0)
		return damaged(why, c->number, "empty");
	for (size_t i = 0; i < len; i++) {
		if (start[i] < 0x20 || start[i] > 0x7e)
			return damaged(why, c->number, "a byte that is not printable ASCII");
		if (start[i] == ' ' && (i == 0 || i + 1 == len || start[i - 1] == ' '))
			return damaged(why, c->number, "fields must be separated by one space");
	}
	memcpy(c->text, start, len);
	c->text[len] = '\0';
	c->pos += len + 1;
	c->count = 0;
	at = c->text;
	for (;;) {
		char *space = strchr(at, ' ');
		if (c->count == MAX_FIELDS)
			return damaged(why, c->number, "too many fields");
		c->fields[c->count++] = at;
		if (!space)
			break;
		*space = '\0';
		at = space + 1;
	}
	return 0;
}

/* A line "keyword value..." with exactly fields fields. */
static int expect_line(struct line_cursor *c, const char *keyword, size_t fields,
		       char why[KMIP_WALLET_WHY_SIZE])
{
	char reason[96];
	int ret = next_line(c, why);

	if (ret == 1) {
		snprintf(reason, sizeof(reason), "ends before its \"%s\" line", keyword);
		return damaged(why, 0, reason);
	}
	if (ret < 0)
		return ret;
	if (strcmp(c->fields[0], keyword) != 0 || c->count != fields) {
		snprintf(reason, sizeof(reason), "expected \"%s\" with %zu value%s", keyword,
			 fields - 1, fields == 2 ? "" : "s");
		return damaged(why, c->number, reason);
	}
	return 0;
}

/* A decimal number of at most 19 digits, no sign, no leading zero (but "0"). */
static int parse_u64(const char *text, uint64_t max, uint64_t *value)
{
	uint64_t v = 0;
	size_t len = strlen(text);

	if (len == 0 || len > 19 || (len > 1 && text[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*value = v;
	return 0;
}

static bool token_valid(const char *text)
{
	size_t len = strlen(text);
	return len > 0 && len < KMIP_ID_SIZE;
}

static int parse_key(struct line_cursor *c, struct kmip_wallet_key *key, char why[KMIP_WALLET_WHY_SIZE])
{
	uint64_t created, activated;

	if (c->count != 7)
		return damaged(why, c->number, "a key line has 6 values");
	if (key_id_parse(c->fields[1], key->id) < 0 || strlen(c->fields[1]) != KEY_ID_TEXT_SIZE - 1)
		return damaged(why, c->number, "not a key ID of 32 hex digits");
	if (state_parse(c->fields[2], &key->state) < 0)
		return damaged(why, c->number, "a key state is ACTIVE, RETIRED or PREACTIVE");
	if (parse_u64(c->fields[3], INT64_MAX, &created) < 0 ||
	    parse_u64(c->fields[4], INT64_MAX, &activated) < 0)
		return damaged(why, c->number, "a time is a number of seconds");
	if ((key->state == MEK_STATE_PREACTIVE) != (activated == 0))
		return damaged(why, c->number, "a key was activated exactly when it is not PREACTIVE");
	if (!token_valid(c->fields[5]) || !token_valid(c->fields[6]))
		return damaged(why, c->number, "a KMIP identifier or name is 1 to 127 characters");
	key->creation_time = (int64_t)created;
	key->activation_time = (int64_t)activated;
	strcpy(key->unique_id, c->fields[5]);
	strcpy(key->name, c->fields[6]);
	return 0;
}

static int check_sum(const uint8_t *data, size_t len, size_t *body, char why[KMIP_WALLET_WHY_SIZE])
{
	static const char prefix[] = "sha256 ";
	const size_t line = sizeof(prefix) - 1 + 2 * SHA256_SIZE + 1;
	uint8_t digest[SHA256_SIZE];
	char hex[2 * SHA256_SIZE + 1];

	if (len < line || data[len - 1] != '\n' || memcmp(data + len - line, prefix,
							   sizeof(prefix) - 1) != 0 ||
	    (len > line && data[len - line - 1] != '\n'))
		return damaged(why, 0, "no closing sha256 line (a truncated file?)");
	*body = len - line;
	if (crypto_sha256(data, *body, digest) < 0)
		return -EIO;
	for (size_t i = 0; i < SHA256_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (memcmp(hex, data + len - line + sizeof(prefix) - 1, 2 * SHA256_SIZE) != 0)
		return damaged(why, 0, "its sha256 line does not match its content (altered or damaged)");
	return 0;
}

int kmip_wallet_parse(const uint8_t *data, size_t len, struct kmip_wallet *w,
		      char why[KMIP_WALLET_WHY_SIZE])
{
	struct line_cursor c = { .data = data };
	uint64_t value;
	size_t body, active = 0;
	char servers_why[KMIP_WHY_SIZE];
	int ret;

	memset(w, 0, sizeof(*w));
	if (len > KMIP_WALLET_MAX_SIZE)
		return damaged(why, 0, "larger than 64 KiB");
	/* The version first: a newer file is named as such, whatever else it holds. */
	c.len = len;
	ret = expect_line(&c, MAGIC, 2, why);
	if (ret < 0)
		return ret == KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED) && c.number <= 1
			       ? damaged(why, 0, "not a KMIP wallet (no tdefs-kmip-wallet line)")
			       : ret;
	if (parse_u64(c.fields[1], UINT32_MAX, &value) < 0 || value == 0)
		return damaged(why, 1, "not a version number");
	if (value > KMIP_WALLET_VERSION) {
		snprintf(why, KMIP_WALLET_WHY_SIZE, "version %llu is newer than this tdefs reads (%d)",
			 (unsigned long long)value, KMIP_WALLET_VERSION);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT);
	}
	ret = check_sum(data, len, &body, why);
	if (ret < 0)
		return ret;
	c.len = body;

	ret = expect_line(&c, "wallet-id", 2, why);
	if (ret < 0)
		return ret;
	if (strlen(c.fields[1]) != KEY_ID_TEXT_SIZE - 1 || key_id_parse(c.fields[1], w->wallet_id) < 0)
		return damaged(why, c.number, "not a wallet ID of 32 hex digits");
	ret = expect_line(&c, "generation", 2, why);
	if (ret < 0)
		return ret;
	if (parse_u64(c.fields[1], UINT64_MAX, &w->generation) < 0)
		return damaged(why, c.number, "not a generation number");
	ret = expect_line(&c, "container", 2, why);
	if (ret < 0)
		return ret;
	if (!wallet_container_valid(c.fields[1]))
		return damaged(why, c.number, "not a container name");
	strcpy(w->container, c.fields[1]);
	ret = expect_line(&c, "tls-wallet", 2, why);
	if (ret < 0)
		return ret;
	if (c.fields[1][0] != '/' || strlen(c.fields[1]) >= sizeof(w->tls_wallet))
		return damaged(why, c.number, "the TLS wallet is an absolute path");
	strcpy(w->tls_wallet, c.fields[1]);
	ret = expect_line(&c, "timeout-ms", 2, why);
	if (ret < 0)
		return ret;
	if (parse_u64(c.fields[1], KMIP_WALLET_MAX_TIMEOUT_MS, &value) < 0 || value == 0)
		return damaged(why, c.number, "a timeout is 1 to 600000 milliseconds");
	w->timeout_ms = (int)value;

	while ((ret = next_line(&c, why)) == 0) {
		if (strcmp(c.fields[0], "server") == 0) {
			if (w->key_count > 0 || w->group[0])
				return damaged(why, c.number, "servers come before the keys");
			if (c.count != 2 || w->server_count == KMIP_MAX_SERVERS)
				return damaged(why, c.number, "one host:port per server line, at most 8");
			size_t one = 0;
			ret = kmip_servers_parse(c.fields[1], &w->servers[w->server_count], &one,
						 servers_why);
			if (ret < 0 || one != 1)
				return damaged(why, c.number, "not host:port");
			w->server_count++;
		} else if (strcmp(c.fields[0], "group") == 0) {
			if (w->server_count == 0 || w->group[0] || w->key_count > 0)
				return damaged(why, c.number, "one group line, after the servers");
			if (c.count != 2 || !kmip_group_valid(c.fields[1]))
				return damaged(why, c.number,
					       "a group is 1 to 64 letters, digits, '.', '_', '-'");
			strcpy(w->group, c.fields[1]);
		} else if (strcmp(c.fields[0], "link") == 0) {
			if (w->server_count == 0 || w->link[0] || w->key_count > 0)
				return damaged(why, c.number, "one link line, after the servers");
			if (c.count != 2 || c.fields[1][0] != '/' ||
			    strlen(c.fields[1]) >= sizeof(w->link))
				return damaged(why, c.number, "a link is an absolute path");
			strcpy(w->link, c.fields[1]);
		} else if (strcmp(c.fields[0], "key") == 0) {
			struct kmip_wallet_key *key;
			if (w->server_count == 0)
				return damaged(why, c.number, "a key before any server line");
			if (w->group[0])
				return damaged(why, c.number,
					       "a group's keys are listed by the server, not here");
			if (w->key_count == KMIP_WALLET_MAX_KEYS)
				return damaged(why, c.number, "more than 256 keys");
			key = &w->keys[w->key_count];
			ret = parse_key(&c, key, why);
			if (ret < 0)
				return ret;
			for (size_t i = 0; i < w->key_count; i++)
				if (memcmp(w->keys[i].id, key->id, KEY_ID_SIZE) == 0)
					return damaged(why, c.number, "a key ID listed twice");
			if (key->state == MEK_STATE_ACTIVE && ++active > 1)
				return damaged(why, c.number, "a second ACTIVE key");
			w->key_count++;
		} else {
			return damaged(why, c.number, "not a server, group, link or key line");
		}
	}
	if (ret < 0)
		return ret;
	if (w->server_count == 0)
		return damaged(why, 0, "no server line");
	return 0;
}

bool kmip_group_valid(const char *group)
{
	size_t len = strlen(group);

	if (len == 0 || len >= KMIP_GROUP_SIZE)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = group[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* ---- encoding ---- */

int kmip_wallet_encode(const struct kmip_wallet *w, char **out, size_t *len)
{
	char *text = NULL, id[KEY_ID_TEXT_SIZE], server[KMIP_HOST_SIZE + KMIP_PORT_SIZE + 4];
	size_t size = 0;
	uint8_t digest[SHA256_SIZE];
	FILE *f = open_memstream(&text, &size);
	int ret = 0;

	if (!f)
		return -ENOMEM;
	key_id_format(w->wallet_id, id);
	fprintf(f, "%s %d\nwallet-id %s\ngeneration %llu\ncontainer %s\ntls-wallet %s\n"
		   "timeout-ms %d\n",
		MAGIC, KMIP_WALLET_VERSION, id, (unsigned long long)w->generation, w->container,
		w->tls_wallet, w->timeout_ms);
	for (size_t i = 0; i < w->server_count && ret == 0; i++) {
		ret = kmip_servers_format(&w->servers[i], 1, server, sizeof(server));
		fprintf(f, "server %s\n", server);
	}
	if (w->group[0])
		fprintf(f, "group %s\n", w->group);
	if (w->link[0])
		fprintf(f, "link %s\n", w->link);
	for (size_t i = 0; i < w->key_count; i++) {
		const struct kmip_wallet_key *k = &w->keys[i];
		key_id_format(k->id, id);
		fprintf(f, "key %s %s %lld %lld %s %s\n", id, state_word(k->state),
			(long long)k->creation_time, (long long)k->activation_time, k->unique_id,
			k->name);
	}
	if (fclose(f) != 0 || ret < 0) {
		free(text);
		return ret < 0 ? ret : -ENOMEM;
	}
	if (crypto_sha256(text, size, digest) < 0) {
		free(text);
		return -EIO;
	}
	/* The closing line: "sha256 " and 64 hex digits. */
	char *grown = realloc(text, size + 7 + 2 * SHA256_SIZE + 2);
	if (!grown) {
		free(text);
		return -ENOMEM;
	}
	text = grown;
	memcpy(text + size, "sha256 ", 7);
	for (size_t i = 0; i < SHA256_SIZE; i++)
		snprintf(text + size + 7 + 2 * i, 3, "%02x", digest[i]);
	size += 7 + 2 * SHA256_SIZE;
	text[size++] = '\n';
	text[size] = '\0';
	*out = text;
	*len = size;
	return 0;
}

/* ---- the file ---- */

int kmip_wallet_path(const char *dir, char path[PATH_MAX])
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (snprintf(path, PATH_MAX, "%.*s/%s", (int)len, dir, KMIP_WALLET_FILE) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

bool kmip_wallet_present(const char *dir)
{
	char path[PATH_MAX];

	return kmip_wallet_path(dir, path) == 0 && wallet_file_present(path);
}

/* The bytes of path, opened without following a link, checked by strict modes first. */
static int read_checked(const char *path, uint8_t **data, size_t *len,
			char error[KEYSTORE_ERROR_SIZE])
{
	char subject[PATH_MAX + 32];
	struct stat st;
	uint8_t *buf;
	size_t done;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		wallet_message(error, "cannot open KMIP wallet %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		wallet_message(error, "KMIP wallet %s is not a regular file", path);
		close(fd);
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	}
	snprintf(subject, sizeof(subject), "KMIP wallet %s", path);
	ret = strict_modes_check_stat(&st, subject, path, error);
	if (ret < 0) {
		close(fd);
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	}
	if (st.st_size > KMIP_WALLET_MAX_SIZE) {
		wallet_message_damaged(error, path, "larger than 64 KiB");
		close(fd);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	ret = pread_full(fd, buf, (size_t)st.st_size + 1, 0, &done);
	close(fd);
	if (ret < 0 || done > (size_t)st.st_size) {
		free(buf);
		wallet_message(error, "cannot read KMIP wallet %s: %s", path,
			       ret < 0 ? strerror(-ret) : "it grew while being read");
		return ret < 0 ? ret : -EIO;
	}
	*data = buf;
	*len = done;
	return 0;
}

int kmip_wallet_read(const char *dir, struct kmip_wallet *wallet, char error[KEYSTORE_ERROR_SIZE])
{
	char path[PATH_MAX], why[KMIP_WALLET_WHY_SIZE];
	uint8_t *data = NULL;
	size_t len = 0;
	int ret;

	ret = kmip_wallet_path(dir, path);
	if (ret < 0) {
		wallet_message(error, "wallet directory %s: path too long", dir);
		return ret;
	}
	ret = strict_modes_check_directory(dir, "wallet directory", error);
	if (ret < 0)
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	ret = read_checked(path, &data, &len, error);
	if (ret < 0)
		return ret;
	ret = kmip_wallet_parse(data, len, wallet, why);
	free(data);
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED)) {
		wallet_message_damaged(error, path, why);
		return ret;
	}
	if (ret < 0) {
		wallet_message(error, "KMIP wallet %s: %s", path, why);
		return ret;
	}
	/* The TLS wallet holds the client's private key: the same trust as the wallet itself. */
	ret = strict_modes_check_directory(wallet->tls_wallet, "TLS wallet directory", error);
	if (ret < 0)
		return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	return 0;
}

int kmip_wallet_write(const char *dir, struct kmip_wallet *wallet, bool create,
		      char backup[PATH_MAX], char error[KEYSTORE_ERROR_SIZE])
{
	struct wallet_paths paths;
	char path[PATH_MAX];
	char *text = NULL;
	uint8_t *old = NULL;
	size_t len, old_len = 0;
	int lock_fd = -1, ret;

	backup[0] = '\0';
	ret = wallet_paths_init(dir, &paths);
	if (ret == 0)
		ret = kmip_wallet_path(dir, path);
	if (ret < 0) {
		wallet_message(error, "wallet directory %s: path too long", dir);
		return ret;
	}
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		wallet_message(error, "cannot create wallet directory %s: %s", dir, strerror(-ret));
		return ret;
	}
	ret = wallet_directory_check(&paths, error);
	if (ret < 0)
		return ret;
	ret = wallet_lock(&paths, &lock_fd, error);
	if (ret < 0)
		return ret;
	if (create) {
		/* One kind of wallet per directory: none of the file kinds may be there either. */
		const char *present[] = { path, paths.password, paths.autologin,
					  paths.local_autologin };
		for (size_t i = 0; i < ARRAY_SIZE(present); i++)
			if (wallet_file_present(present[i])) {
				wallet_message(error, "wallet %s already exists", present[i]);
				ret = -EEXIST;
				goto out;
			}
	} else {
		ret = read_checked(path, &old, &old_len, error);
		if (ret < 0)
			goto out;
		/* Backups first: the file as it was, before anything replaces it. */
		ret = wallet_backup_write(paths.backup_dir, KMIP_WALLET_BACKUP_PREFIX,
					  wallet->generation, NULL, old, old_len, backup, error);
		if (ret < 0)
			goto out;
		wallet->generation++;
	}
	ret = kmip_wallet_encode(wallet, &text, &len);
	if (ret < 0) {
		wallet_message(error, "cannot encode KMIP wallet %s: %s", path, strerror(-ret));
		goto out;
	}
	fault_point("kmip_wallet_write");
	ret = wallet_write_bytes(path, (const uint8_t *)text, len, error);
out:
	free(text);
	free(old);
	wallet_unlock(lock_fd);
	return ret;
}
