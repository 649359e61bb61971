/*
 * make_backing: backing directories for the tdekey tests, without mounting anything. It
 * writes what 'tdefs --init' and file creation in a mount would write, through the same
 * fs/format.h code: the config record naming a wallet, and files whose headers wrap a fresh
 * DEK under a chosen master key of a wallet (opened as the daemon opens it).
 *
 * Usage:
 *   make_backing init WALLET BACKING         write BACKING/.tdefs.conf for WALLET
 *   make_backing files WALLET KEY DIR COUNT  COUNT files in DIR (made if missing), headers
 *                                            under KEY: a key ID prefix, or "active"
 * The key's MEK comes from WALLET, which need not be the wallet BACKING was initialised for:
 * that is how a test makes headers under a key its wallet lacks. Exit 0, or 1 with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "fs/format.h"
#include "keystore/wallet.h"
#include "util/util.h"

static int fail(const char *what, int error)
{
	fprintf(stderr, "make_backing: %s: %s\n", what, strerror(error < 0 ? -error : error));
	return 1;
}

static int open_wallet(const char *wallet, struct keyring **ring)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	int ret = keystore_open_for_mount(wallet, -1, ring, error);

	if (ret < 0) {
		fprintf(stderr, "make_backing: %s\n", error);
		return 1;
	}
	return 0;
}

static int init(const char *wallet, const char *backing)
{
	struct backing_config config = { 0 };
	uint8_t encoded[CONFIG_FILE_SIZE];
	char path[PATH_MAX];
	struct keyring *ring;
	int ret;

	if (open_wallet(wallet, &ring))
		return 1;
	config.version = CONFIG_FORMAT_VERSION;
	config.cipher_suite = CIPHER_SUITE_AES256_XTS;
	config.block_size = TDEFS_BLOCK_SIZE;
	config.created_time = (uint64_t)time(NULL);
	keyring_wallet_id(ring, config.wallet_id);
	snprintf(config.container, sizeof(config.container), "%s", keyring_container(ring));
	keyring_free(ring);
	if (mkdir(backing, 0700) < 0 && errno != EEXIST)
		return fail(backing, errno);
	snprintf(path, sizeof(path), "%s/%s", backing, CONFIG_FILE_NAME);
	ret = crypto_random_bytes(config.directory_id, sizeof(config.directory_id));
	if (ret == 0)
		ret = config_encode(&config, encoded);
	if (ret == 0)
		ret = write_file_atomic(path, encoded, sizeof(encoded), 0644);
	return ret < 0 ? fail(path, ret) : 0;
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

static int files(const char *wallet, const char *key, const char *dir, const char *count_text)
{
	char error[KEYSTORE_ERROR_SIZE] = "", id_text[KEY_ID_TEXT_SIZE], path[PATH_MAX] = "";
	uint8_t key_id[KEY_ID_SIZE];
	const uint8_t *mek = NULL;
	struct keyring *ring;
	long count = strtol(count_text, NULL, 10);
	size_t index;
	int ret = 0;

	if (open_wallet(wallet, &ring))
		return 1;
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
		fprintf(stderr, "make_backing: key %s: %s\n", key, error[0] ? error : "none");
		keyring_free(ring);
		return 1;
	}
	key_id_format(key_id, id_text);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		keyring_free(ring);
		return fail(dir, errno);
	}
	for (long i = 0; i < count && ret == 0; i++) {
		snprintf(path, sizeof(path), "%s/key-%.8s-%ld", dir, id_text, i);
		ret = write_file(path, mek, key_id);
	}
	keyring_free(ring);
	return ret < 0 ? fail(path, ret) : 0;
}

int main(int argc, char *argv[])
{
	if (argc == 4 && strcmp(argv[1], "init") == 0)
		return init(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "files") == 0)
		return files(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr, "usage: make_backing init WALLET BACKING\n"
			"       make_backing files WALLET KEY DIR COUNT\n");
	return 2;
}
