/*
 * The backing directory's config file (.tdefs.conf): a fixed 128-byte record naming the format
 * version, cipher suite, block size, the wallet the directory was initialised with and the
 * container (docs/FORMAT.md: version 1 for names up to 32 bytes, version 2 up to 64). It exists so that mounting a plaintext directory, or a directory made for another
 * wallet, fails with a clear message instead of serving garbage. It holds no secret.
 */
#include "fs/format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/util.h"

enum config_field_offset {
	CONFIG_OFFSET_MAGIC = 0,
	CONFIG_OFFSET_VERSION = 8,
	CONFIG_OFFSET_SUITE = 10,
	CONFIG_OFFSET_BLOCK_SIZE = 12,
	CONFIG_OFFSET_WALLET_ID = 16,
	CONFIG_OFFSET_DIRECTORY_ID = 32,
	CONFIG_OFFSET_CONTAINER = 48,
	CONFIG_V1_OFFSET_CREATED = 80,
	CONFIG_V1_OFFSET_RESERVED = 88,
	CONFIG_V3_OFFSET_FLAGS = 88,
	CONFIG_V3_OFFSET_RESERVED = 92,
	CONFIG_V2_OFFSET_CREATED = 112,
	CONFIG_OFFSET_CHECKSUM = 120,
};
_Static_assert(CONFIG_OFFSET_CONTAINER + CONFIG_V1_CONTAINER_SIZE == CONFIG_V1_OFFSET_CREATED,
	       "version 1 container field size");
_Static_assert(CONFIG_OFFSET_CONTAINER + CONFIG_CONTAINER_SIZE == CONFIG_V2_OFFSET_CREATED,
	       "version 2 container field size");
_Static_assert(CONFIG_V2_OFFSET_CREATED + 8 == CONFIG_OFFSET_CHECKSUM, "version 2 has no reserve");
_Static_assert(CONFIG_OFFSET_CHECKSUM + 8 == CONFIG_FILE_SIZE, "checksum closes the record");

int config_encode(const struct backing_config *config, uint8_t out[CONFIG_FILE_SIZE])
{
	size_t container_len = strnlen(config->container, sizeof(config->container));
	bool short_name = container_len <= CONFIG_V1_CONTAINER_SIZE;

	if (container_len == 0 || container_len > CONFIG_CONTAINER_SIZE)
		return -EINVAL;
	if ((config->flags & ~CONFIG_KNOWN_FLAGS) || (config->flags && !short_name))
		return -EINVAL;
	memset(out, 0, CONFIG_FILE_SIZE);
	memcpy(out + CONFIG_OFFSET_MAGIC, CONFIG_MAGIC, 8);
	store_le16(out + CONFIG_OFFSET_VERSION,
		   config->flags ? CONFIG_FORMAT_VERSION_FLAGS
		   : short_name ? CONFIG_FORMAT_VERSION_SHORT_NAME : CONFIG_FORMAT_VERSION);
	if (config->flags)
		store_le32(out + CONFIG_V3_OFFSET_FLAGS, config->flags);
	store_le16(out + CONFIG_OFFSET_SUITE, config->cipher_suite);
	store_le32(out + CONFIG_OFFSET_BLOCK_SIZE, config->block_size);
	memcpy(out + CONFIG_OFFSET_WALLET_ID, config->wallet_id, 16);
	memcpy(out + CONFIG_OFFSET_DIRECTORY_ID, config->directory_id, 16);
	memcpy(out + CONFIG_OFFSET_CONTAINER, config->container, container_len);
	store_le64(out + (short_name ? CONFIG_V1_OFFSET_CREATED : CONFIG_V2_OFFSET_CREATED),
		   config->created_time);
	store_le64(out + CONFIG_OFFSET_CHECKSUM, XXH3_64bits(out, CONFIG_OFFSET_CHECKSUM));
	return 0;
}

int config_decode(const uint8_t *data, size_t len, struct backing_config *config)
{
	struct backing_config decoded;
	size_t field;

	if (len != CONFIG_FILE_SIZE || memcmp(data + CONFIG_OFFSET_MAGIC, CONFIG_MAGIC, 8) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (load_le64(data + CONFIG_OFFSET_CHECKSUM) != XXH3_64bits(data, CONFIG_OFFSET_CHECKSUM))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memset(&decoded, 0, sizeof(decoded));
	decoded.version = load_le16(data + CONFIG_OFFSET_VERSION);
	if (decoded.version > CONFIG_FORMAT_VERSION_FLAGS)
		return FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT);
	if (decoded.version == 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (decoded.version == CONFIG_FORMAT_VERSION_FLAGS) {
		decoded.flags = load_le32(data + CONFIG_V3_OFFSET_FLAGS);
		/* Written only with a flag set; an unknown one is a newer writer's. */
		if (decoded.flags & ~CONFIG_KNOWN_FLAGS)
			return FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT);
		if (decoded.flags == 0 ||
		    !buffer_is_zero(data + CONFIG_V3_OFFSET_RESERVED,
				    CONFIG_OFFSET_CHECKSUM - CONFIG_V3_OFFSET_RESERVED))
			return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	}
	field = decoded.version == CONFIG_FORMAT_VERSION ? CONFIG_CONTAINER_SIZE
							 : CONFIG_V1_CONTAINER_SIZE;
	decoded.cipher_suite = load_le16(data + CONFIG_OFFSET_SUITE);
	decoded.block_size = load_le32(data + CONFIG_OFFSET_BLOCK_SIZE);
	if (decoded.cipher_suite != CIPHER_SUITE_AES256_XTS || decoded.block_size != TDEFS_BLOCK_SIZE)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (decoded.version == CONFIG_FORMAT_VERSION_SHORT_NAME &&
	    !buffer_is_zero(data + CONFIG_V1_OFFSET_RESERVED,
			    CONFIG_OFFSET_CHECKSUM - CONFIG_V1_OFFSET_RESERVED))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memcpy(decoded.wallet_id, data + CONFIG_OFFSET_WALLET_ID, 16);
	memcpy(decoded.directory_id, data + CONFIG_OFFSET_DIRECTORY_ID, 16);
	memcpy(decoded.container, data + CONFIG_OFFSET_CONTAINER, field);
	decoded.container[field] = '\0';
	if (decoded.container[0] == '\0')
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	/* The container is NUL-padded: bytes after the first NUL must be NUL too. */
	for (size_t i = strlen(decoded.container); i < field; i++)
		if (decoded.container[i] != '\0')
			return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	/* Version 2 is written only for a name that does not fit version 1: anything else is odd. */
	if (decoded.version == CONFIG_FORMAT_VERSION &&
	    strlen(decoded.container) <= CONFIG_V1_CONTAINER_SIZE)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	decoded.created_time =
		load_le64(data + (decoded.version == CONFIG_FORMAT_VERSION ? CONFIG_V2_OFFSET_CREATED
									   : CONFIG_V1_OFFSET_CREATED));
	*config = decoded;
	return 0;
}

bool config_reserved_name(const char *name)
{
	size_t n = strlen(CONFIG_FILE_NAME);

	if (strncmp(name, ENCRYPT_COPY_PREFIX, strlen(ENCRYPT_COPY_PREFIX)) == 0 ||
	    strncmp(name, ENCRYPT_JOB_RECORD, strlen(ENCRYPT_JOB_RECORD)) == 0 ||
	    strncmp(name, REKEY_JOB_RECORD, strlen(REKEY_JOB_RECORD)) == 0)
		return true;
	return strncmp(name, CONFIG_FILE_NAME, n) == 0 &&
	       (name[n] == '\0' || strncmp(name + n, ".tmp-", 5) == 0);
}

void plaintext_marker_encode(const uint8_t directory_id[16], uint8_t out[PLAINTEXT_MARKER_SIZE])
{
	memcpy(out, PLAINTEXT_MARKER_MAGIC, 8);
	memcpy(out + 8, directory_id, 16);
}

int plaintext_marker_decode(const uint8_t *value, size_t len, uint8_t directory_id[16])
{
	if (len != PLAINTEXT_MARKER_SIZE || memcmp(value, PLAINTEXT_MARKER_MAGIC, 8) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (directory_id)
		memcpy(directory_id, value + 8, 16);
	return 0;
}

int plaintext_marker_read(int fd, uint8_t directory_id[16])
{
	uint8_t value[PLAINTEXT_MARKER_SIZE + 1];
	ssize_t n = fgetxattr(fd, PLAINTEXT_MARKER_NAME, value, sizeof(value));
	int ret;

	if (n < 0)
		return errno == ENODATA ? 0 : errno == ERANGE ? FORMAT_ERROR(FORMAT_ERR_DAMAGED)
								: -errno;
	ret = plaintext_marker_decode(value, (size_t)n, directory_id);
	return ret < 0 ? ret : 1;
}

#define RECORD_MAGIC "tdefs-encrypt-job 1\n"

int encrypt_record_encode(double rate, const char *path, char *out, size_t out_size)
{
	int length;

	if (strchr(path, '\n') || rate < 0 || rate > 1e18)
		return -EINVAL;
	length = snprintf(out, out_size, RECORD_MAGIC "rate %.0f\npath %s\n", rate, path);
	if (length < 0 || (size_t)length >= out_size)
		return -ENAMETOOLONG;
	return length;
}

int encrypt_record_decode(const char *text, size_t len, double *rate, char *path,
			  size_t path_size)
{
	char copy[ENCRYPT_RECORD_MAX + 1], *end, *name, reencoded[ENCRYPT_RECORD_MAX + 1];
	size_t magic = strlen(RECORD_MAGIC);
	int length;

	if (len > ENCRYPT_RECORD_MAX || memchr(text, '\0', len))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (strncmp(copy, RECORD_MAGIC, magic) != 0 || strncmp(copy + magic, "rate ", 5) != 0 ||
	    copy[magic + 5] < '0' || copy[magic + 5] > '9')
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	*rate = strtod(copy + magic + 5, &end);
	if (strncmp(end, "\npath ", 6) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	name = end + 6;
	end = strchr(name, '\n');
	if (!end || end[1] != '\0' || (size_t)(end - name) >= path_size)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	*end = '\0';
	/* One encoding per record: what does not re-encode to the same text is not ours. */
	length = encrypt_record_encode(*rate, name, reencoded, sizeof(reencoded));
	if (length < 0 || (size_t)length != len || memcmp(reencoded, text, len) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memcpy(path, name, (size_t)(end - name) + 1);
	return 0;
}

#define REKEY_RECORD_MAGIC "tdefs-rekey-job 1\n"

int rekey_record_encode(double rate, const uint8_t id[REKEY_JOB_ID_SIZE], bool stopped,
			const char *path, char *out, size_t out_size)
{
	char hex[2 * REKEY_JOB_ID_SIZE + 1];
	int length;

	if (strchr(path, '\n') || rate < 0 || rate > 1e18)
		return -EINVAL;
	for (unsigned i = 0; i < REKEY_JOB_ID_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	length = snprintf(out, out_size, REKEY_RECORD_MAGIC "id %s\nstopped %d\nrate %.0f\npath %s\n",
			  hex, stopped ? 1 : 0, rate, path);
	if (length < 0 || (size_t)length >= out_size)
		return -ENAMETOOLONG;
	return length;
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int rekey_record_decode(const char *text, size_t len, double *rate,
			uint8_t id[REKEY_JOB_ID_SIZE], bool *stopped, char *path, size_t path_size)
{
	char copy[ENCRYPT_RECORD_MAX + 1], reencoded[ENCRYPT_RECORD_MAX + 1], *at, *end, *name;
	size_t magic = strlen(REKEY_RECORD_MAGIC);
	uint8_t decoded_id[REKEY_JOB_ID_SIZE];
	int length;

	if (len > ENCRYPT_RECORD_MAX || memchr(text, '\0', len))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (strncmp(copy, REKEY_RECORD_MAGIC "id ", magic + 3) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	at = copy + magic + 3;
	for (unsigned i = 0; i < REKEY_JOB_ID_SIZE; i++) {
		int high = hex_digit(at[2 * i]), low = high < 0 ? -1 : hex_digit(at[2 * i + 1]);

		if (low < 0)
			return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
		decoded_id[i] = (uint8_t)(high << 4 | low);
	}
	at += 2 * REKEY_JOB_ID_SIZE;
	if (strncmp(at, "\nstopped ", 9) != 0 || (at[9] != '0' && at[9] != '1') ||
	    strncmp(at + 10, "\nrate ", 6) != 0 || at[16] < '0' || at[16] > '9')
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	*stopped = at[9] == '1';
	*rate = strtod(at + 16, &end);
	if (strncmp(end, "\npath ", 6) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	name = end + 6;
	end = strchr(name, '\n');
	if (!end || end[1] != '\0' || (size_t)(end - name) >= path_size)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	*end = '\0';
	/* One encoding per record: what does not re-encode to the same text is not ours. */
	length = rekey_record_encode(*rate, decoded_id, *stopped, name, reencoded, sizeof(reencoded));
	if (length < 0 || (size_t)length != len || memcmp(reencoded, text, len) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memcpy(path, name, (size_t)(end - name) + 1);
	memcpy(id, decoded_id, sizeof(decoded_id));
	return 0;
}

int config_remove_leftovers(int root_fd)
{
	struct dirent *entry;
	int fd, removed = 0, ret = 0;
	DIR *dir;

	fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((entry = readdir(dir))) {
		struct stat st;

		/* The config record and the jobs' records stay; copies and temps go. */
		if (!config_reserved_name(entry->d_name) ||
		    strcmp(entry->d_name, CONFIG_FILE_NAME) == 0 ||
		    strcmp(entry->d_name, ENCRYPT_JOB_RECORD) == 0 ||
		    strcmp(entry->d_name, REKEY_JOB_RECORD) == 0)
			continue;
		/* Only the regular files such a write makes; anything else is not ours to remove. */
		if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dirfd(dir), entry->d_name, 0) < 0) {
			ret = -errno;
			break;
		}
		removed++;
	}
	closedir(dir);
	return ret < 0 ? ret : removed;
}
