/*
 * What set-key, create-key, use-key, set-tag, keys and status share in united mode (one wallet,
 * a key set per container, each with its own active key and rotation): which containers a
 * --container option means; and bring your own key: the 32 raw bytes of --key-file or --key-fd,
 * taken only from a file no other user can write (the strict-modes rule, as for transport
 * secrets) and held in locked memory that is wiped when freed.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/key_export.h"

bool container_is_all(const struct options *options)
{
	return options->container_given && strcmp(options->container, "all") == 0;
}

int containers_selected(const struct options *options, const struct keyring *ring, bool existing,
			const char **names, size_t max, size_t *count)
{
	char error[KEYSTORE_ERROR_SIZE];

	if (container_is_all(options)) {
		*count = keyring_containers(ring, names, max);
		if (*count > max)
			*count = max;
		return 0;
	}
	names[0] = options->container_given ? options->container : keyring_container(ring);
	*count = 1;
	if (existing && !keyring_has_container(ring, names[0])) {
		snprintf(error, sizeof(error),
			 "--container %s: wallet %s has no key of that container (make its first "
			 "with: tdekey set-key --wallet %s --container %s)",
			 names[0], options->wallet, options->wallet, names[0]);
		return report_failure(KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY), error);
	}
	return 0;
}

int brought_key_read(const struct options *options, uint8_t **key)
{
	char error[KEYSTORE_ERROR_SIZE] = "", what[64];
	const char *name = options->key_file;
	uint8_t *buffer;
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, ret;

	*key = NULL;
	if (!options->key_file && options->key_fd < 0)
		return 0;
	if (options->key_file) {
		ret = transport_secret_open_file(options->key_file, "--key-file", &fd, error);
	} else {
		fd = options->key_fd;
		snprintf(what, sizeof(what), "--key-fd %d", fd);
		name = what;
		ret = transport_secret_check_fd(fd, "--key-fd", error);
	}
	/* A missing key file is not a missing wallet (exit 3): say it as a plain error. */
	if (ret < 0)
		return report_failure(ret == KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES) ? ret : -EINVAL,
				      error);
	/* The raw key itself: nobody but its owner may read it either. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		snprintf(error, sizeof(error),
			 "%s has mode %04o: a key file must be readable by its owner only; fix: "
			 "chmod 600 %s",
			 name, (unsigned)(st.st_mode & 07777), name);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
		goto out_close;
	}
	/* One byte of room past the key, to tell a long file from an exact one. */
	buffer = secure_alloc(MEK_SIZE + 1);
	error[0] = '\0';
	if (!buffer) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (len < MEK_SIZE + 1) {
		n = read(fd, buffer + len, MEK_SIZE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(error, sizeof(error), "cannot read %s: %s", name, strerror(errno));
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len != MEK_SIZE) {
		snprintf(error, sizeof(error),
			 "%s holds %s%zu bytes; a master key is exactly %d raw bytes (not hex, no "
			 "newline)",
			 name, len > MEK_SIZE ? "more than " : "", len > MEK_SIZE ? (size_t)MEK_SIZE : len,
			 MEK_SIZE);
		ret = -EINVAL;
		goto out_free;
	}
	*key = buffer;
	ret = 0;
	goto out_close;
out_free:
	secure_free(buffer);
out_close:
	if (options->key_file)
		close(fd);
	if (ret < 0)
		return report_failure(ret, error[0] ? error : "out of locked memory");
	return 0;
}

int key_container_check(const struct options *options, const struct keyring *ring, size_t index,
			bool any_by_default)
{
	const struct mek_record *record = keyring_record(ring, index);
	char error[KEYSTORE_ERROR_SIZE], id[KEY_ID_TEXT_SIZE];
	const char *wanted;

	if (container_is_all(options) || (!options->container_given && any_by_default))
		return 0;
	wanted = options->container_given ? options->container : keyring_container(ring);
	if (strcmp(record->container, wanted) == 0)
		return 0;
	key_id_format(record->id, id);
	snprintf(error, sizeof(error),
		 "key %s belongs to container %s, not %s (name it with --container %s)", id,
		 record->container, wanted, record->container);
	return report_failure(-EINVAL, error);
}

const char *keystore_mode_name(const struct keyring *ring)
{
	const char *names[2];

	return keyring_containers(ring, names, 2) > 1 ? "UNITED" : "ISOLATED";
}
