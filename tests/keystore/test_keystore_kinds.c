/*
 * Unit tests of the keystore kind table (keystore/kinds.c): every kind is found by its on-disk
 * code and no other, its name, file, path and backup prefix are what the public functions and
 * docs/WALLET.md say, the daemon's order among present files is auto-login, then local
 * auto-login, then password, and a file sealed by each kind opens through that kind alone.
 * These pin the seam, so that moving a kind onto the table (or adding one) cannot quietly
 * change a word, a file name or the mount order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keystore/keystore_kind.h"
#include "keystore/wallet_format.h"
#include "tests/keystore/test_helpers.h"
#include "util/util.h"

struct expected_kind {
	enum wallet_kind code;
	const char *name, *file, *backup_prefix;
	bool auto_login;
	bool sealed; /* a sealed wallet file; false: a file of its own (hsm.wallet) */
};

/* docs/WALLET.md, section 1, in the order status lists them. */
static const struct expected_kind expected[] = {
	{ WALLET_KIND_PASSWORD, "PASSWORD", "password.wallet", "password", false, true },
	{ WALLET_KIND_AUTOLOGIN, "AUTOLOGIN", "autologin.wallet", "autologin", true, true },
	{ WALLET_KIND_LOCAL_AUTOLOGIN, "LOCAL_AUTOLOGIN", "local-autologin.wallet", "local-autologin",
	  true, true },
	{ WALLET_KIND_HSM, "HSM", "hsm.wallet", "hsm", false, false },
};

/* The kinds whose files are sealed wallet files: the first three of the table. */
#define SEALED_KINDS 3

static void test_table_lookup(void **state)
{
	struct wallet_paths paths;
	char want[PATH_MAX];

	(void)state;
	assert_int_equal(keystore_kind_count(), ARRAY_SIZE(expected));
	assert_null(keystore_kind_at(keystore_kind_count()));
	assert_null(keystore_kind_of((enum wallet_kind)0));
	assert_null(keystore_kind_of((enum wallet_kind)5));
	assert_string_equal(wallet_kind_name((enum wallet_kind)5), "UNKNOWN");
	assert_int_equal(wallet_paths_init("/srv/w/", &paths), 0);
	for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
		const struct keystore_kind *kind = keystore_kind_at(i);

		assert_non_null(kind);
		assert_ptr_equal(keystore_kind_of(expected[i].code), kind);
		assert_int_equal(kind->code, expected[i].code);
		assert_string_equal(kind->name, expected[i].name);
		assert_string_equal(wallet_kind_name(kind->code), expected[i].name);
		assert_string_equal(kind->file, expected[i].file);
		assert_string_equal(wallet_kind_file(kind->code), expected[i].file);
		assert_true(kind->auto_login == expected[i].auto_login);
		/* An auto-login kind can hold an external store; the password kind cannot. */
		assert_true((kind->store_words != NULL) == expected[i].auto_login);
		snprintf(want, sizeof(want), "/srv/w/%s", expected[i].file);
		assert_string_equal(keystore_kind_path(kind, &paths), want);
		assert_string_equal(wallet_paths_of_kind(&paths, kind->code), want);
		assert_string_equal(wallet_backup_prefix(want), expected[i].backup_prefix);
		/* A kind reads and writes its file by the common codec or by its own hooks. */
		assert_true((kind->check_header != NULL) == expected[i].sealed);
		assert_true((kind->open != NULL) == expected[i].sealed);
		assert_true((kind->seal != NULL) == expected[i].sealed);
		assert_true((kind->read != NULL) == !expected[i].sealed);
		assert_true((kind->encode != NULL) == !expected[i].sealed);
		assert_true((i < SEALED_KINDS) == expected[i].sealed);
	}
	assert_string_equal(paths.external_store, "/srv/w/external-store.wallet");
	assert_string_equal(wallet_backup_prefix(paths.external_store), "external-store");
}

static void touch(const char *dir, const char *name)
{
	char path[PATH_MAX];

	path_join(path, dir, name);
	write_whole(path, (const uint8_t *)"", 0, 0600);
}

static void test_mount_order(void **state)
{
	struct wallet_paths paths;
	char dir[PATH_MAX];

	(void)state;
	scratch_dir_make(dir);
	assert_int_equal(wallet_paths_init(dir, &paths), 0);
	assert_null(keystore_kind_for_mount(&paths));
	touch(dir, "password.wallet");
	assert_ptr_equal(keystore_kind_for_mount(&paths), &keystore_kind_password);
	touch(dir, "local-autologin.wallet");
	assert_ptr_equal(keystore_kind_for_mount(&paths), &keystore_kind_local_autologin);
	touch(dir, "autologin.wallet");
	assert_ptr_equal(keystore_kind_for_mount(&paths), &keystore_kind_autologin);
	/* An external store is no kind of key wallet. */
	assert_int_equal(unlink(paths.autologin), 0);
	assert_int_equal(unlink(paths.local_autologin), 0);
	assert_int_equal(unlink(paths.password), 0);
	touch(dir, "external-store.wallet");
	assert_null(keystore_kind_for_mount(&paths));
	/* A directory with hsm.wallet is an HSM wallet, whatever else is in it. */
	touch(dir, "autologin.wallet");
	touch(dir, "hsm.wallet");
	assert_ptr_equal(keystore_kind_for_mount(&paths), &keystore_kind_hsm);
	assert_int_equal(unlink(paths.autologin), 0);
	assert_int_equal(unlink(paths.hsm), 0);
	scratch_dir_remove(dir);
}

/* Each kind's seal and open agree, and a file of one kind is not opened as another. */
static void test_seal_then_open(void **state)
{
	uint8_t wallet_id[KEY_ID_SIZE] = { 7 };
	char root[PATH_MAX], path[PATH_MAX], error[KEYSTORE_ERROR_SIZE];
	struct secret *password = secret_from("kind table password");
	struct password_key *password_key = NULL;
	uint8_t salt[WALLET_SALT_SIZE] = { 1 };
	struct scrypt_cost cost = TEST_COST;
	struct keyring *ring = NULL;
	size_t index;

	(void)state;
	scratch_dir_make(root);
	setenv("TDEFS_TEST_HOST_IDENTITY", "host-a", 1);
	host_secret_dir_use(root, -1);
	assert_int_equal(keyring_new(wallet_id, WALLET_DEFAULT_CONTAINER, &ring), 0);
	keyring_set_generation(ring, 3);
	assert_int_equal(keyring_generate(ring, "kinds", true, 1, &index), 0);
	assert_int_equal(password_key_derive(password, salt, &cost, &password_key), 0);
	for (size_t i = 0; i < SEALED_KINDS; i++) {
		const struct keystore_kind *kind = keystore_kind_at(i);
		struct wallet_read read = {
			.path = path,
			.expected_kind = kind->code,
			.expected_content = WALLET_CONTENT_KEYS,
			.password = password,
		};
		uint8_t *bytes;
		size_t len;

		path_join(path, root, kind->file);
		assert_int_equal(wallet_encode_keys(kind->code, ring, password_key, &bytes, &len,
						    error),
				 0);
		assert_int_equal(bytes[WALLET_OFFSET_KIND], (uint8_t)kind->code);
		write_whole(path, bytes, len, 0600);
		secure_free(bytes);
		assert_int_equal(wallet_read(&read, error), 0);
		assert_int_equal(read.info.kind, kind->code);
		assert_true(same_keys(read.ring, ring));
		assert_int_equal(keyring_source_kind(read.ring), kind->code);
		wallet_read_release(&read);
		/* Expected as the next kind in the table: refused as damaged, never opened. */
		read.expected_kind = keystore_kind_at((i + 1) % SEALED_KINDS)->code;
		assert_int_equal(wallet_read(&read, error), KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
		assert_non_null(strstr(error, kind->name));
	}
	/* A ring of keys in memory is not written as an HSM wallet (it holds no token). */
	assert_int_equal(wallet_encode_keys(WALLET_KIND_HSM, ring, NULL, &(uint8_t *){ NULL },
					    &(size_t){ 0 }, error),
			 -EINVAL);
	/* The password kind cannot hold an external store (the password would seal itself). */
	assert_int_equal(wallet_encode_secrets(WALLET_KIND_PASSWORD, wallet_id, 1, NULL, 0, NULL,
					       NULL, error),
			 -EINVAL);
	password_key_free(password_key);
	keyring_free(ring);
	secret_free(password);
	scratch_dir_remove(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_lookup),
		cmocka_unit_test(test_mount_order),
		cmocka_unit_test(test_seal_then_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
