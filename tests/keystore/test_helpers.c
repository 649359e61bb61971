/*
 * Helpers for the keystore tests (see test_helpers.h). Failures inside a helper fail the
 * calling test through cmocka's assertions, so tests read as the steps they check.
 */
#include "tests/keystore/test_helpers.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/wallet_format.h"

void scratch_dir_make(char path[PATH_MAX])
{
	const char *base = getenv("TMPDIR");

	/* Memory-backed when there is one: the damage tests write thousands of small files. */
	if (!base || !*base)
		base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(path, PATH_MAX, "%s/tdefs-keystore-test-XXXXXX", base);
	assert_non_null(mkdtemp(path));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *walk)
{
	(void)st;
	(void)type;
	(void)walk;
	return remove(path) < 0 ? -1 : 0;
}

void scratch_dir_remove(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void host_secret_dir_use(const char *root, int fill_byte)
{
	char dir[PATH_MAX], file[PATH_MAX];
	uint8_t secret[HOST_SECRET_SIZE];

	path_join(dir, root, "host-secret");
	assert_int_equal(setenv("TDEFS_TEST_HOST_SECRET_DIR", dir, 1), 0);
	if (fill_byte < 0)
		return;
	assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
	path_join(file, dir, "host-secret");
	memset(secret, fill_byte, sizeof(secret));
	write_whole(file, secret, sizeof(secret), 0600);
}

void path_join(char out[PATH_MAX], const char *dir, const char *name)
{
	assert_true(snprintf(out, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

uint8_t *read_whole(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *data;
	FILE *file = fopen(path, "rb");

	assert_non_null(file);
	assert_int_equal(fstat(fileno(file), &st), 0);
	data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	*len = fread(data, 1, (size_t)st.st_size, file);
	assert_int_equal(*len, (size_t)st.st_size);
	fclose(file);
	return data;
}

void write_whole(const char *path, const uint8_t *data, size_t len, unsigned mode)
{
	int fd;

	/*
	 * A new file rather than a truncated one: ext4 flushes a file truncated and rewritten at
	 * close, which would make the byte-flip tests wait on the disk thousands of times.
	 */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

struct secret *secret_from(const char *text)
{
	struct secret *secret = secret_new();

	assert_non_null(secret);
	assert_true(strlen(text) <= SECRET_MAX_SIZE);
	secret->len = strlen(text);
	memcpy(secret->bytes, text, secret->len);
	return secret;
}

size_t count_entries(const char *dir_path, const char *prefix)
{
	struct dirent *entry;
	size_t count = 0;
	DIR *dir = opendir(dir_path);

	if (!dir)
		return 0;
	while ((entry = readdir(dir)) != NULL)
		if (entry->d_name[0] != '.' && strncmp(entry->d_name, prefix, strlen(prefix)) == 0)
			count++;
	closedir(dir);
	return count;
}

void create_wallet(const char *dir, const char *password, bool auto_login, bool local)
{
	struct wallet_create_options options = {
		.auto_login = auto_login,
		.local = local,
		.make_key = true,
		.tag = "first",
		.container = WALLET_DEFAULT_CONTAINER,
		.cost = TEST_COST,
	};
	struct wallet_create_result result;
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct secret *secret = password ? secret_from(password) : NULL;
	int ret;

	ret = wallet_create(dir, &options, secret, &result, error);
	if (ret != 0)
		fail_msg("wallet_create: %s", error);
	secret_free(secret);
}

struct keyring *read_keys(const char *path, enum wallet_kind kind, const char *password)
{
	struct wallet_read read = {
		.path = path,
		.expected_kind = kind,
		.expected_content = WALLET_CONTENT_KEYS,
	};
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct secret *secret = password ? secret_from(password) : NULL;
	struct keyring *ring;
	int ret;

	read.password = secret;
	ret = wallet_read(&read, error);
	secret_free(secret);
	if (ret != 0)
		fail_msg("wallet_read %s: %s", path, error);
	ring = read.ring;
	read.ring = NULL;
	wallet_read_release(&read);
	return ring;
}

bool same_keys(const struct keyring *a, const struct keyring *b)
{
	if (keyring_count(a) != keyring_count(b))
		return false;
	for (size_t i = 0; i < keyring_count(a); i++) {
		const struct mek_record *x = keyring_record(a, i), *y = keyring_record(b, i);

		if (memcmp(x->id, y->id, KEY_ID_SIZE) != 0 ||
		    !secure_equal(x->mek, y->mek, MEK_SIZE))
			return false;
	}
	return true;
}
