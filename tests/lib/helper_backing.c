/*
 * tdefs-test-helper, the subcommands that make backing directories without mounting anything.
 * init runs the real `tdefs --init` (no second implementation of the config record to drift
 * from the daemon's); files writes what file creation in a mount would write, a header
 * wrapping a fresh DEK, through the same fs/format.h code, under a chosen master key of a
 * wallet opened as the daemon opens it. That wallet need not be the one the backing directory
 * was initialised for: that is how a test makes headers under a key its wallet lacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "fs/format_testing.h"
#include "helper.h"
#include "keystore/wallet.h"
#include "util/util.h"

int cmd_init(int argc, char **argv)
{
	const char *tdefs = getenv("TDEFS_BIN");

	if (!tdefs || !tdefs[0])
		tdefs = TDEFS_PROGRAM;
	/* tdefs --init prepares an existing, empty directory; the tests name fresh ones. */
	if (mkdir(argv[1], 0700) < 0 && errno != EEXIST)
		return helper_fail(argv[1], strerror(errno));
	fflush(NULL);
	execl(tdefs, tdefs, "--init", "--wallet", argv[0], argv[1], (char *)NULL);
	return helper_fail(tdefs, strerror(errno));
}

static int write_file(const char *path, const uint8_t *mek, const uint8_t *key_id)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header header;
	uint8_t *dek = secure_alloc(DEK_SIZE);
	int fd, ret;

	if (!dek)
		return -ENOMEM;
	ret = crypto_random_bytes(dek, DEK_SIZE);
	if (ret == 0)
		ret = header_create(&header, mek, key_id, dek);
	if (ret == 0)
		ret = header_build_image(&header, mek, dek, image);
	secure_free(dek);
	if (ret < 0)
		return ret;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = pwrite_all(fd, image, sizeof(image), 0);
	close(fd);
	return ret;
}

int cmd_files(int argc, char **argv)
{
	const char *wallet = argv[0], *key = argv[1], *dir = argv[2];
	char error[KEYSTORE_ERROR_SIZE] = "", id_text[KEY_ID_TEXT_SIZE], path[PATH_MAX] = "";
	uint8_t key_id[KEY_ID_SIZE];
	const uint8_t *mek = NULL;
	struct keyring *ring;
	char *end;
	long count;
	size_t index;
	int ret;

	errno = 0;
	count = strtol(argv[3], &end, 10);
	if (errno || end == argv[3] || *end || count < 0)
		return helper_fail("bad file count", argv[3]);
	if (keystore_open_for_mount(wallet, -1, &ring, error) < 0)
		return helper_fail(error, NULL);
	if (strcmp(key, "active") == 0) {
		ret = keyring_active(ring, key_id, &mek);
	} else {
		ret = keyring_find_prefix(ring, key, &index, error);
		if (ret == 0) {
			memcpy(key_id, keyring_record(ring, index)->id, KEY_ID_SIZE);
			mek = keyring_find(ring, key_id);
		}
	}
	if (ret < 0) {
		keyring_free(ring);
		return helper_fail(key, error[0] ? error : "no such key");
	}
	key_id_format(key_id, id_text);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		keyring_free(ring);
		return helper_fail(dir, strerror(errno));
	}
	for (long i = 0; i < count && ret == 0; i++) {
		snprintf(path, sizeof(path), "%s/key-%.8s-%ld", dir, id_text, i);
		ret = write_file(path, mek, key_id);
	}
	keyring_free(ring);
	return ret < 0 ? helper_fail(path, strerror(-ret)) : 0;
}
