/*
 * Unit tests of the wallet directory: creating the three kinds (and a wallet from another's
 * keys, as a reverse migration makes one), the operations tdekey runs
 * (sessions and commits), backups before every change, historical keys, key ID prefixes, the
 * permission and host checks, strict modes, the host secret, the external store, the status
 * report, the daemon's keystore_open_for_mount() and keystore_reload(), and keyring_merge().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"
#include "tests/keystore/test_helpers.h"
#include "util/util.h"

#define PASSWORD "first password"
#define NEW_PASSWORD "second password"

struct fixture {
	char root[PATH_MAX];
	char dir[PATH_MAX];
	char password_file[PATH_MAX];
	char new_password_file[PATH_MAX];
	struct wallet_paths paths;
	struct password_source source;
};

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	scratch_dir_make(fixture->root);
	path_join(fixture->dir, fixture->root, "wallet");
	path_join(fixture->password_file, fixture->root, "password");
	path_join(fixture->new_password_file, fixture->root, "new-password");
	write_whole(fixture->password_file, (const uint8_t *)PASSWORD "\n", strlen(PASSWORD) + 1,
		    0600);
	write_whole(fixture->new_password_file, (const uint8_t *)NEW_PASSWORD "\n",
		    strlen(NEW_PASSWORD) + 1, 0600);
	assert_int_equal(wallet_paths_init(fixture->dir, &fixture->paths), 0);
	fixture->source.kind = PASSWORD_SOURCE_FILE;
	fixture->source.path = fixture->password_file;
	fixture->source.explicit = true;
	setenv("TDEFS_TEST_HOST_IDENTITY", "host-a", 1);
	host_secret_dir_use(fixture->root, -1);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	scratch_dir_remove(fixture->root);
	free(fixture);
	return 0;
}

static struct wallet_session *open_change(struct fixture *fixture,
					  const struct password_source *source)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct wallet_session *session = NULL;
	int ret = wallet_session_open(fixture->dir, WALLET_FOR_CHANGE, source, &session, error);

	if (ret != 0)
		fail_msg("wallet_session_open: %d %s", ret, error);
	return session;
}

static void commit(struct wallet_session *session, const char *backup_id)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	int ret = wallet_session_commit(session, backup_id, error);

	if (ret != 0)
		fail_msg("wallet_session_commit: %d %s", ret, error);
}

/* One rotation through the session API, as tdekey set-key does it. */
static void set_key(struct fixture *fixture, const struct password_source *source)
{
	struct wallet_session *session = open_change(fixture, source);

	assert_int_equal(
		keyring_generate(wallet_session_keyring(session), NULL, true, wallet_now(), NULL),
		0);
	commit(session, NULL);
	wallet_session_close(session);
}

/* Both wallet files open and hold the same keys. */
static void expect_same_wallets(const char *path_a, enum wallet_kind kind_a, const char *password_a,
				const char *path_b, enum wallet_kind kind_b, const char *password_b)
{
	struct keyring *a = read_keys(path_a, kind_a, password_a);
	struct keyring *b = read_keys(path_b, kind_b, password_b);

	assert_true(same_keys(a, b));
	keyring_free(a);
	keyring_free(b);
}

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_create_kinds(void **state)
{
	struct fixture *fixture = *state;
	struct wallet_create_options options = {
		.make_key = true,
		.container = "default",
		.cost = TEST_COST,
	};
	struct wallet_create_result result;
	char error[KEYSTORE_ERROR_SIZE];
	struct secret *password = secret_from(PASSWORD);
	struct keyring *ring;

	/* Auto-login without a password: one file, no password wallet. */
	options.auto_login = true;
	assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), 0);
	assert_int_equal(result.primary, WALLET_KIND_AUTOLOGIN);
	assert_true(result.made_key);
	assert_true(wallet_file_present(fixture->paths.autologin));
	assert_false(wallet_file_present(fixture->paths.password));
	assert_int_equal(file_mode(fixture->dir), 0700);
	assert_int_equal(file_mode(fixture->paths.backup_dir), 0700);
	assert_int_equal(file_mode(fixture->paths.autologin), 0600);
	ring = read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	assert_int_equal(keyring_count(ring), 1);
	assert_int_equal(keyring_active(ring, NULL, NULL), 0);
	keyring_free(ring);

	/* A second create refuses to overwrite. */
	assert_int_equal(wallet_create(fixture->dir, &options, password, &result, error), -EEXIST);
	assert_non_null(strstr(error, "already exists"));
	scratch_dir_remove(fixture->dir);

	/* Password wallet and its local auto-login copy. */
	options.local = true;
	assert_int_equal(wallet_create(fixture->dir, &options, password, &result, error), 0);
	assert_int_equal(result.primary, WALLET_KIND_PASSWORD);
	assert_true(result.made_copy);
	assert_int_equal(result.copy, WALLET_KIND_LOCAL_AUTOLOGIN);
	assert_int_equal(file_mode(fixture->paths.password), 0600);
	expect_same_wallets(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD,
			    fixture->paths.local_autologin, WALLET_KIND_LOCAL_AUTOLOGIN, NULL);
	scratch_dir_remove(fixture->dir);

	/* Without a password and without auto-login there is nothing to protect the keys. */
	options.auto_login = false;
	options.local = false;
	assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), -EINVAL);
	/* A too short password is refused. */
	secret_free(password);
	password = secret_from("short");
	assert_int_equal(wallet_create(fixture->dir, &options, password, &result, error), -EINVAL);
	/* No key: OPEN_NO_MASTER_KEY. */
	secret_free(password);
	password = secret_from(PASSWORD);
	options.make_key = false;
	assert_int_equal(wallet_create(fixture->dir, &options, password, &result, error), 0);
	ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
	assert_int_equal(keyring_count(ring), 0);
	assert_int_equal(keyring_active(ring, NULL, NULL), -ENOKEY);
	keyring_free(ring);
	secret_free(password);
}

/*
 * A reverse migration's wallet: every key of a ring (as one fetched from a key server, origin
 * KMIP and revoked or linked marks included) written with its ID, bytes, state and times, the
 * ACTIVE key still ACTIVE; keys a file cannot hold are refused and nothing is written.
 */
static void test_create_with_keys(void **state)
{
	static const uint8_t wallet_id[KEY_ID_SIZE] = { 7, 7, 7 };
	struct fixture *fixture = *state;
	struct wallet_create_options options = {
		.auto_login = true,
		.container = "sales",
		.cost = TEST_COST,
		.wallet_id = wallet_id,
	};
	struct wallet_create_result result;
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct keyring *from, *ring;
	struct mek_record record;
	uint8_t active[KEY_ID_SIZE];

	assert_int_equal(keyring_new(wallet_id, "sales", &from), 0);
	memset(&record, 0, sizeof(record));
	for (int i = 0; i < 3; i++) {
		memset(record.id, 0x10 + i, KEY_ID_SIZE);
		memset(record.mek, 0x40 + i, MEK_SIZE);
		record.creation_time = 1000 + i;
		record.activation_time = i == 1 ? 0 : 2000 + i; /* a server that kept no time */
		record.state = i == 2 ? MEK_STATE_ACTIVE : MEK_STATE_RETIRED;
		record.origin = i == 0 ? MEK_ORIGIN_LOCAL : MEK_ORIGIN_KMIP;
		record.linked = i == 0;
		record.revoked = i == 1;
		snprintf(record.tag, sizeof(record.tag), "key %d", i);
		snprintf(record.container, sizeof(record.container), "sales");
		assert_int_equal(keyring_append(from, &record), 0);
	}
	options.keys = from;
	options.make_key = true;
	assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), -EINVAL);
	assert_false(wallet_file_present(fixture->paths.autologin));
	options.make_key = false;
	assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), 0);
	assert_false(result.made_key);
	ring = read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	assert_int_equal(keyring_count(ring), 3);
	keyring_wallet_id(ring, active);
	assert_memory_equal(active, wallet_id, KEY_ID_SIZE);
	assert_string_equal(keyring_container(ring), "sales");
	for (size_t i = 0; i < 3; i++) {
		const struct mek_record *want = keyring_record(from, i);
		const struct mek_record *got = keyring_record(ring, i);

		assert_memory_equal(got->id, want->id, KEY_ID_SIZE);
		assert_memory_equal(got->mek, want->mek, MEK_SIZE);
		assert_int_equal(got->state, want->state);
		assert_int_equal(got->creation_time, want->creation_time);
		assert_string_equal(got->tag, want->tag);
		assert_int_equal(got->origin, i == 0 ? MEK_ORIGIN_LOCAL : MEK_ORIGIN_IMPORTED);
		assert_false(got->linked);
		assert_false(got->revoked);
	}
	/* A RETIRED key must say when it was active: its creation when the source kept none. */
	assert_int_equal(keyring_record(ring, 1)->activation_time, 1001);
	assert_int_equal(keyring_active(ring, active, NULL), 0);
	assert_memory_equal(active, keyring_record(from, 2)->id, KEY_ID_SIZE);
	keyring_free(ring);
	scratch_dir_remove(fixture->dir);

	/* Two ACTIVE keys in one container, or a key on a token: refused, no wallet file. */
	memset(record.id, 0x20, KEY_ID_SIZE);
	record.state = MEK_STATE_ACTIVE;
	record.activation_time = 3000;
	assert_int_equal(keyring_append(from, &record), 0);
	assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), -EINVAL);
	assert_non_null(strstr(error, "second ACTIVE key"));
	assert_false(wallet_file_present(fixture->paths.autologin));
	keyring_free(from);
	assert_int_equal(keyring_new(wallet_id, "sales", &from), 0);
	record.on_token = true;
	assert_int_equal(keyring_append(from, &record), 0);
	options.keys = from;
	assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), -EOPNOTSUPP);
	assert_non_null(strstr(error, "HSM token"));
	assert_false(wallet_file_present(fixture->paths.autologin));
	keyring_free(from);
}

static void test_autologin_permissions_refused(void **state)
{
	static const mode_t bad_modes[] = { 0640, 0604, 0660, 0602, 0620, 0700 | 0004 };
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], expected[PATH_MAX + 64];
	struct keyring *ring = NULL;

	create_wallet(fixture->dir, PASSWORD, true, false);
	for (size_t i = 0; i < ARRAY_SIZE(bad_modes); i++) {
		assert_int_equal(chmod(fixture->paths.autologin, bad_modes[i]), 0);
		assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
				 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
		assert_null(ring);
		snprintf(expected, sizeof(expected), "fix with: chmod 600 %s",
			 fixture->paths.autologin);
		assert_non_null(strstr(error, expected));
	}
	/* The same for a local auto-login wallet and the external store. */
	assert_int_equal(chmod(fixture->paths.autologin, 0600), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	keyring_free(ring);
	{
		struct secret *password = secret_from(PASSWORD);
		char backup[PATH_MAX];
		struct secret *secrets[2];
		size_t count;

		assert_int_equal(
			wallet_add_secret(fixture->dir, password, false, NULL, backup, error), 0);
		assert_int_equal(chmod(fixture->paths.external_store, 0644), 0);
		assert_int_equal(
			wallet_external_store_read(&fixture->paths, secrets, &count, error),
			KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
		assert_non_null(strstr(error, "external password store"));
		assert_non_null(strstr(error, "chmod 600"));
		secret_free(password);
	}
}

static void test_local_autologin_other_host(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct keyring *ring = NULL;
	size_t len;
	uint8_t *bytes;

	setenv("TDEFS_TEST_HOST_IDENTITY", "machine-id=aaaa\nhostname=db1", 1);
	create_wallet(fixture->dir, PASSWORD, true, true);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	keyring_free(ring);
	ring = NULL;

	/* The same directory seen from another host. */
	setenv("TDEFS_TEST_HOST_IDENTITY", "machine-id=bbbb\nhostname=db1", 1);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_OTHER_HOST));
	assert_null(ring);
	assert_non_null(strstr(error, "was made on another host"));
	assert_non_null(strstr(error, fixture->paths.local_autologin));
	setenv("TDEFS_TEST_HOST_IDENTITY", "machine-id=aaaa\nhostname=db2", 1);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_OTHER_HOST));

	/* Damage is still damage on another host: the checksum is checked first. */
	bytes = read_whole(fixture->paths.local_autologin, &len);
	bytes[len / 2] ^= 1;
	write_whole(fixture->paths.local_autologin, bytes, len, 0600);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	bytes[len / 2] ^= 1;
	write_whole(fixture->paths.local_autologin, bytes, len, 0600);
	free(bytes);

	/* Back on the first host it opens again; a new copy made on host B opens there. */
	setenv("TDEFS_TEST_HOST_IDENTITY", "machine-id=aaaa\nhostname=db1", 1);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	keyring_free(ring);
	setenv("TDEFS_TEST_HOST_IDENTITY", "machine-id=bbbb\nhostname=db1", 1);
	{
		struct wallet_session *session = open_change(fixture, &fixture->source);

		assert_int_equal(wallet_session_create_autologin(session, true, NULL, error), 0);
		wallet_session_close(session);
	}
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	keyring_free(ring);
}

static void test_historical_keys_survive(void **state)
{
	enum {
		ROTATIONS = 40
	};
	struct fixture *fixture = *state;
	uint8_t ids[ROTATIONS + 1][KEY_ID_SIZE], meks[ROTATIONS + 1][MEK_SIZE];
	char error[KEYSTORE_ERROR_SIZE];
	struct keyring *ring;

	create_wallet(fixture->dir, PASSWORD, true, false);
	ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
	memcpy(ids[0], keyring_record(ring, 0)->id, KEY_ID_SIZE);
	memcpy(meks[0], keyring_record(ring, 0)->mek, MEK_SIZE);
	keyring_free(ring);
	for (int i = 1; i <= ROTATIONS; i++) {
		set_key(fixture, &fixture->source);
		ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
		assert_int_equal(keyring_count(ring), (size_t)i + 1);
		memcpy(ids[i], keyring_record(ring, (size_t)i)->id, KEY_ID_SIZE);
		memcpy(meks[i], keyring_record(ring, (size_t)i)->mek, MEK_SIZE);
		keyring_free(ring);
	}
	/* Every key ever made is still there, unchanged, in both wallets and for the daemon. */
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	assert_int_equal(keyring_count(ring), ROTATIONS + 1);
	for (int i = 0; i <= ROTATIONS; i++) {
		const uint8_t *mek = keyring_find(ring, ids[i]);

		assert_non_null(mek);
		assert_memory_equal(mek, meks[i], MEK_SIZE);
		assert_int_equal(keyring_record(ring, (size_t)i)->state,
				 i == ROTATIONS ? MEK_STATE_ACTIVE : MEK_STATE_RETIRED);
	}
	{
		uint8_t active[KEY_ID_SIZE];

		assert_int_equal(keyring_active(ring, active, NULL), 0);
		assert_memory_equal(active, ids[ROTATIONS], KEY_ID_SIZE);
	}
	keyring_free(ring);
	assert_int_equal(count_entries(fixture->paths.backup_dir, "password-"), ROTATIONS);
}

static void test_key_id_prefixes(void **state)
{
	static const uint8_t wallet_id[KEY_ID_SIZE];
	static const char *const ids[] = { "ab120000000000000000000000000000",
					   "ab340000000000000000000000000000",
					   "cd000000000000000000000000000001" };
	char error[KEYSTORE_ERROR_SIZE];
	struct keyring *ring;
	size_t index = 99;

	(void)state;
	assert_int_equal(keyring_new(wallet_id, "default", &ring), 0);
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		struct mek_record record;

		memset(&record, 0, sizeof(record));
		assert_int_equal(key_id_parse(ids[i], record.id), 0);
		record.state = MEK_STATE_PREACTIVE;
		record.origin = MEK_ORIGIN_LOCAL;
		strcpy(record.container, "default");
		assert_int_equal(keyring_append(ring, &record), 0);
		assert_int_equal(keyring_append(ring, &record), -EEXIST);
	}
	assert_int_equal(keyring_find_prefix(ring, "ab1", &index, error), 0);
	assert_int_equal(index, 0);
	assert_int_equal(keyring_find_prefix(ring, "AB34", &index, error), 0);
	assert_int_equal(index, 1);
	assert_int_equal(keyring_find_prefix(ring, "c", &index, error), 0);
	assert_int_equal(index, 2);
	assert_int_equal(keyring_find_prefix(ring, ids[2], &index, error), 0);
	assert_int_equal(keyring_find_prefix(ring, "ab", &index, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_AMBIGUOUS_KEY_ID));
	assert_non_null(strstr(error, "ambiguous"));
	assert_non_null(strstr(error, ids[0]));
	assert_non_null(strstr(error, ids[1]));
	assert_int_equal(keyring_find_prefix(ring, "a", &index, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_AMBIGUOUS_KEY_ID));
	assert_int_equal(keyring_find_prefix(ring, "ef", &index, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY));
	assert_non_null(strstr(error, "no key"));
	assert_int_equal(keyring_find_prefix(ring, "zz", &index, error), -EINVAL);
	assert_int_equal(keyring_find_prefix(ring, "", &index, error), -EINVAL);
	assert_int_equal(
		keyring_find_prefix(ring, "ab120000000000000000000000000000f", &index, error),
		-EINVAL);
	keyring_free(ring);
}

static void test_keyring_remove(void **state)
{
	static const uint8_t wallet_id[KEY_ID_SIZE];
	static const uint8_t states[] = { MEK_STATE_RETIRED, MEK_STATE_ACTIVE, MEK_STATE_RETIRED,
					  MEK_STATE_PREACTIVE };
	uint8_t ids[ARRAY_SIZE(states)][KEY_ID_SIZE];
	struct keyring *ring;

	(void)state;
	assert_int_equal(keyring_new(wallet_id, "default", &ring), 0);
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		struct mek_record record;

		memset(&record, 0, sizeof(record));
		memset(record.id, 0x10 + (int)i, KEY_ID_SIZE);
		memset(record.mek, 0xa0 + (int)i, MEK_SIZE);
		memcpy(ids[i], record.id, KEY_ID_SIZE);
		record.state = states[i];
		record.origin = MEK_ORIGIN_LOCAL;
		snprintf(record.tag, sizeof(record.tag), "key %zu", i);
		strcpy(record.container, "default");
		assert_int_equal(keyring_append(ring, &record), 0);
	}
	/* The ACTIVE key wraps new files: never removed. Out of range: refused. */
	assert_int_equal(keyring_remove(ring, 1), KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE));
	assert_int_equal(keyring_remove(ring, 4), -EINVAL);
	assert_int_equal(keyring_count(ring), 4);

	/* The first: the others move up in order, their MEKs and metadata intact. */
	assert_int_equal(keyring_remove(ring, 0), 0);
	assert_int_equal(keyring_count(ring), 3);
	assert_null(keyring_find(ring, ids[0]));
	for (size_t i = 1; i < 4; i++) {
		const struct mek_record *record = keyring_record(ring, i - 1);
		char tag[16];

		snprintf(tag, sizeof(tag), "key %zu", i);
		assert_memory_equal(record->id, ids[i], KEY_ID_SIZE);
		assert_int_equal(record->mek[0], 0xa0 + (int)i);
		assert_int_equal(record->mek[MEK_SIZE - 1], 0xa0 + (int)i);
		assert_int_equal(record->state, states[i]);
		assert_string_equal(record->tag, tag);
	}
	{
		uint8_t active[KEY_ID_SIZE];

		assert_int_equal(keyring_active(ring, active, NULL), 0);
		assert_memory_equal(active, ids[1], KEY_ID_SIZE);
	}
	/* The last, then the middle one. */
	assert_int_equal(keyring_remove(ring, 2), 0);
	assert_null(keyring_find(ring, ids[3]));
	assert_null(keyring_record(ring, 2));
	assert_int_equal(keyring_remove(ring, 1), 0);
	assert_int_equal(keyring_count(ring), 1);
	assert_non_null(keyring_find(ring, ids[1]));
	assert_int_equal(keyring_remove(ring, 0), KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE));
	/* A removed key can be appended again (the ring holds no stale copy of it). */
	{
		struct mek_record record;

		memset(&record, 0, sizeof(record));
		memcpy(record.id, ids[0], KEY_ID_SIZE);
		record.state = MEK_STATE_RETIRED;
		strcpy(record.container, "default");
		assert_int_equal(keyring_append(ring, &record), 0);
		assert_int_equal(keyring_count(ring), 2);
	}
	keyring_free(ring);
}

/* The newest backup is byte for byte the wallet as it was before the change. */
static void expect_backup_of(const struct fixture *fixture, const uint8_t *before,
			     size_t before_len, size_t expected_count)
{
	char newest[PATH_MAX];
	size_t len;
	uint8_t *backup;

	assert_int_equal(count_entries(fixture->paths.backup_dir, "password-"), expected_count);
	assert_int_equal(wallet_newest_backup(fixture->paths.backup_dir, "password", newest), 0);
	backup = read_whole(newest, &len);
	assert_int_equal(len, before_len);
	assert_memory_equal(backup, before, len);
	assert_int_equal(file_mode(newest), 0600);
	free(backup);
}

static void test_backup_before_each_change(void **state)
{
	struct fixture *fixture = *state;
	struct password_source new_source = fixture->source;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_session *session;
	struct secret *new_password = secret_from(NEW_PASSWORD);
	size_t len, count = 0, index;
	uint8_t *before;

	new_source.path = fixture->new_password_file;
	create_wallet(fixture->dir, PASSWORD, true, false);
	assert_int_equal(count_entries(fixture->paths.backup_dir, ""), 0);

	/* set-key */
	before = read_whole(fixture->paths.password, &len);
	set_key(fixture, &fixture->source);
	expect_backup_of(fixture, before, len, ++count);
	free(before);

	/* create-key, with a backup ID in the name */
	before = read_whole(fixture->paths.password, &len);
	session = open_change(fixture, &fixture->source);
	assert_int_equal(keyring_generate(wallet_session_keyring(session), "later", false,
					  wallet_now(), &index),
			 0);
	commit(session, "before-create-key");
	assert_non_null(strstr(wallet_session_backup_path(session), "-before-create-key.wallet"));
	wallet_session_close(session);
	expect_backup_of(fixture, before, len, ++count);
	free(before);

	/* use-key and set-tag */
	before = read_whole(fixture->paths.password, &len);
	session = open_change(fixture, &fixture->source);
	assert_int_equal(keyring_activate(wallet_session_keyring(session), index, wallet_now()), 0);
	commit(session, NULL);
	wallet_session_close(session);
	expect_backup_of(fixture, before, len, ++count);
	free(before);
	before = read_whole(fixture->paths.password, &len);
	session = open_change(fixture, &fixture->source);
	assert_int_equal(keyring_set_tag(wallet_session_keyring(session), 0, "renamed"), 0);
	commit(session, NULL);
	wallet_session_close(session);
	expect_backup_of(fixture, before, len, ++count);
	free(before);

	/* change-password: the backup opens with the old password, the wallet with the new. */
	before = read_whole(fixture->paths.password, &len);
	session = open_change(fixture, &fixture->source);
	assert_int_equal(wallet_session_change_password(session, new_password, NULL, NULL, error),
			 0);
	wallet_session_close(session);
	expect_backup_of(fixture, before, len, ++count);
	free(before);
	keyring_free(read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, NEW_PASSWORD));

	/* backup: the new backup is the new wallet, with every key marked backed up. */
	session = open_change(fixture, &new_source);
	assert_int_equal(wallet_session_backup(session, "weekly", NULL, error), 0);
	wallet_session_close(session);
	before = read_whole(fixture->paths.password, &len);
	expect_backup_of(fixture, before, len, ++count);
	free(before);
	{
		struct keyring *ring =
			read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, NEW_PASSWORD);

		assert_true(keyring_fully_backed_up(ring));
		keyring_free(ring);
	}
	/* The auto-login copy followed every change. */
	expect_same_wallets(fixture->paths.password, WALLET_KIND_PASSWORD, NEW_PASSWORD,
			    fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	secret_free(new_password);
}

static void test_backed_up_marks(void **state)
{
	struct fixture *fixture = *state;
	struct keyring *ring;

	create_wallet(fixture->dir, PASSWORD, false, false);
	set_key(fixture, &fixture->source);
	ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
	/* The first key is in the backup set-key took; the new one is in none yet. */
	assert_true(keyring_record(ring, 0)->backed_up);
	assert_false(keyring_record(ring, 1)->backed_up);
	assert_false(keyring_fully_backed_up(ring));
	keyring_free(ring);
}

/*
 * tdekey delete-key's commit: refused for the ACTIVE key with nothing written; otherwise a
 * backup (still holding the key) first, then a primary and a copy that both lack it.
 */
static void test_delete_key(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE] = "", newest[PATH_MAX];
	uint8_t ids[3][KEY_ID_SIZE], meks[3][MEK_SIZE];
	struct wallet_session *session;
	struct keyring *ring;
	size_t len;
	uint8_t *before;

	create_wallet(fixture->dir, PASSWORD, true, false);
	set_key(fixture, &fixture->source);
	set_key(fixture, &fixture->source);
	ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
	assert_int_equal(keyring_count(ring), 3);
	for (size_t i = 0; i < 3; i++) {
		memcpy(ids[i], keyring_record(ring, i)->id, KEY_ID_SIZE);
		memcpy(meks[i], keyring_record(ring, i)->mek, MEK_SIZE);
	}
	keyring_free(ring);

	/* A reading session cannot change anything. */
	assert_int_equal(wallet_session_open(fixture->dir, WALLET_FOR_READING, NULL, &session,
					     error),
			 0);
	assert_int_equal(wallet_session_delete_key(session, 0, NULL, error), -EINVAL);
	wallet_session_close(session);

	/* The active key: refused, nothing written. */
	before = read_whole(fixture->paths.password, &len);
	session = open_change(fixture, &fixture->source);
	assert_int_equal(wallet_session_delete_key(session, 2, NULL, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE));
	assert_non_null(strstr(error, "ACTIVE"));
	assert_int_equal(wallet_session_delete_key(session, 3, NULL, error), -EINVAL);
	wallet_session_close(session);
	assert_int_equal(count_entries(fixture->paths.backup_dir, "password-"), 2);

	/* The oldest retired key. */
	session = open_change(fixture, &fixture->source);
	assert_int_equal(wallet_session_delete_key(session, 0, "before-delete", error), 0);
	assert_non_null(strstr(wallet_session_backup_path(session), "-before-delete.wallet"));
	wallet_session_close(session);
	expect_backup_of(fixture, before, len, 3);
	free(before);

	ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
	assert_int_equal(keyring_count(ring), 2);
	assert_null(keyring_find(ring, ids[0]));
	for (size_t i = 1; i < 3; i++)
		assert_memory_equal(keyring_find(ring, ids[i]), meks[i], MEK_SIZE);
	assert_true(keyring_fully_backed_up(ring));
	{
		struct keyring *copy =
			read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);

		assert_true(same_keys(ring, copy));
		assert_int_equal(keyring_generation(copy), keyring_generation(ring));
		keyring_free(copy);
	}
	keyring_free(ring);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	assert_int_equal(keyring_count(ring), 2);
	assert_null(keyring_find(ring, ids[0]));
	keyring_free(ring);

	/* The backup still holds it, with its MEK, under the same password. */
	assert_int_equal(wallet_newest_backup(fixture->paths.backup_dir, "password", newest), 0);
	ring = read_keys(newest, WALLET_KIND_PASSWORD, PASSWORD);
	assert_int_equal(keyring_count(ring), 3);
	assert_memory_equal(keyring_find(ring, ids[0]), meks[0], MEK_SIZE);
	keyring_free(ring);

	/* The next change finds the copy level (no COPY_HAS_MORE_KEYS) and keeps the deletion. */
	set_key(fixture, &fixture->source);
	ring = read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	assert_int_equal(keyring_count(ring), 3);
	assert_null(keyring_find(ring, ids[0]));
	keyring_free(ring);
}

/* A wallet without a password wallet: its auto-login primary changes without a password. */
static void test_delete_key_autologin_only(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE] = "", newest[PATH_MAX];
	uint8_t first[KEY_ID_SIZE];
	struct wallet_session *session;
	struct keyring *ring;

	create_wallet(fixture->dir, NULL, true, false);
	set_key(fixture, NULL);
	ring = read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	memcpy(first, keyring_record(ring, 0)->id, KEY_ID_SIZE);
	keyring_free(ring);

	session = open_change(fixture, NULL);
	assert_int_equal(wallet_session_delete_key(session, 0, NULL, error), 0);
	wallet_session_close(session);
	assert_false(wallet_file_present(fixture->paths.password));
	ring = read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	assert_int_equal(keyring_count(ring), 1);
	assert_null(keyring_find(ring, first));
	keyring_free(ring);
	assert_int_equal(count_entries(fixture->paths.backup_dir, "autologin-"), 2);
	assert_int_equal(wallet_newest_backup(fixture->paths.backup_dir, "autologin", newest), 0);
	ring = read_keys(newest, WALLET_KIND_AUTOLOGIN, NULL);
	assert_non_null(keyring_find(ring, first));
	keyring_free(ring);
}

static void test_open_for_mount(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	uint8_t id_a[KEY_ID_SIZE], id_b[KEY_ID_SIZE];
	struct keyring *ring = NULL, *copy = NULL;
	int fds[2];

	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), -ENOENT);
	assert_int_equal(mkdir(fixture->dir, 0700), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), -ENOENT);
	assert_non_null(strstr(error, "no wallet in"));
	assert_int_equal(rmdir(fixture->dir), 0);

	/* Password wallet only: needs the descriptor (or the external store). */
	create_wallet(fixture->dir, PASSWORD, false, false);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	assert_non_null(strstr(error, "needs a password"));
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "nope nope\n", 10), 10);
	close(fds[1]);
	assert_int_equal(keystore_open_for_mount(fixture->dir, fds[0], &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	assert_non_null(strstr(error, "wrong password for wallet "));
	close(fds[0]);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], PASSWORD "\n", strlen(PASSWORD) + 1),
			 (ssize_t)strlen(PASSWORD) + 1);
	close(fds[1]);
	assert_int_equal(keystore_open_for_mount(fixture->dir, fds[0], &ring, error), 0);
	close(fds[0]);
	assert_string_equal(keyring_container(ring), "default");
	keyring_wallet_id(ring, id_a);

	/* With the external store, no descriptor is needed. */
	{
		struct secret *password = secret_from(PASSWORD);
		char backup[PATH_MAX];

		assert_int_equal(
			wallet_add_secret(fixture->dir, password, true, NULL, backup, error), 0);
		secret_free(password);
	}
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &copy, error), 0);
	assert_true(same_keys(ring, copy));
	keyring_free(copy);

	/* The auto-login copy is preferred and shares the wallet ID. */
	{
		struct wallet_session *session = open_change(fixture, &fixture->source);

		assert_int_equal(wallet_session_create_autologin(session, false, NULL, error), 0);
		wallet_session_close(session);
	}
	/* Proof that the password wallet is not read: it is garbage now, and the mount works. */
	write_whole(fixture->paths.password, (const uint8_t *)"garbage", 7, 0600);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &copy, error), 0);
	keyring_wallet_id(copy, id_b);
	assert_memory_equal(id_a, id_b, KEY_ID_SIZE);
	assert_true(same_keys(ring, copy));
	keyring_free(copy);
	keyring_free(ring);
}

static void test_external_store_and_change_password(void **state)
{
	struct fixture *fixture = *state;
	struct password_source store = { .kind = PASSWORD_SOURCE_EXTERNAL_STORE, .explicit = true };
	char error[KEYSTORE_ERROR_SIZE], backup[PATH_MAX];
	struct secret *wrong = secret_from("not the password");
	struct secret *password = secret_from(PASSWORD);
	struct secret *new_password = secret_from(NEW_PASSWORD);
	struct secret *secrets[2];
	struct wallet_session *session;
	size_t count;

	create_wallet(fixture->dir, PASSWORD, false, false);
	assert_int_equal(
		wallet_session_open(fixture->dir, WALLET_FOR_CHANGE, &store, &session, error),
		KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	assert_non_null(strstr(error, "tdekey add-secret"));
	/* A wrong password is never stored. */
	assert_int_equal(wallet_add_secret(fixture->dir, wrong, false, NULL, backup, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	assert_false(wallet_file_present(fixture->paths.external_store));
	assert_int_equal(wallet_add_secret(fixture->dir, password, false, NULL, backup, error), 0);
	assert_int_equal(file_mode(fixture->paths.external_store), 0600);

	session = open_change(fixture, &store);
	assert_int_equal(wallet_session_change_password(session, new_password, NULL, NULL, error),
			 0);
	wallet_session_close(session);
	/* The store was kept working: it now holds only the new password. */
	assert_int_equal(wallet_external_store_read(&fixture->paths, secrets, &count, error), 0);
	assert_int_equal(count, 1);
	assert_int_equal(secrets[0]->len, strlen(NEW_PASSWORD));
	assert_memory_equal(secrets[0]->bytes, NEW_PASSWORD, strlen(NEW_PASSWORD));
	secret_free(secrets[0]);
	session = open_change(fixture, &store);
	wallet_session_close(session);
	assert_int_equal(count_entries(fixture->paths.backup_dir, "external-store-"), 1);

	/* Replacing and deleting the store back it up first. */
	assert_int_equal(
		wallet_add_secret(fixture->dir, new_password, true, "again", backup, error), 0);
	assert_non_null(strstr(backup, "external-store-"));
	assert_int_equal(count_entries(fixture->paths.backup_dir, "external-store-"), 2);
	assert_int_equal(wallet_delete_secret(fixture->dir, NULL, backup, error), 0);
	assert_false(wallet_file_present(fixture->paths.external_store));
	assert_int_equal(count_entries(fixture->paths.backup_dir, "external-store-"), 3);
	assert_int_equal(wallet_delete_secret(fixture->dir, NULL, backup, error), -ENOENT);
	secret_free(wrong);
	secret_free(password);
	secret_free(new_password);
}

static void test_autologin_only_wallet(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_session *session;
	struct secret *password = secret_from(PASSWORD);
	struct scrypt_cost cost = TEST_COST;
	struct keyring *ring;

	create_wallet(fixture->dir, NULL, true, false);
	/* Changes need no password at all. */
	set_key(fixture, NULL);
	set_key(fixture, NULL);
	assert_int_equal(count_entries(fixture->paths.backup_dir, "autologin-"), 2);
	ring = read_keys(fixture->paths.autologin, WALLET_KIND_AUTOLOGIN, NULL);
	assert_int_equal(keyring_count(ring), 3);
	keyring_free(ring);

	/* Switching kind makes the local auto-login wallet the only one, after a backup. */
	session = open_change(fixture, NULL);
	assert_int_equal(wallet_session_create_autologin(session, true, NULL, error), 0);
	wallet_session_close(session);
	assert_false(wallet_file_present(fixture->paths.autologin));
	assert_true(wallet_file_present(fixture->paths.local_autologin));
	assert_int_equal(count_entries(fixture->paths.backup_dir, "autologin-"), 3);

	/* change-password adds a password wallet; from then on changes need the password. */
	session = open_change(fixture, NULL);
	assert_int_equal(wallet_session_change_password(session, password, &cost, NULL, error), 0);
	wallet_session_close(session);
	ring = read_keys(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD);
	assert_int_equal(keyring_count(ring), 3);
	keyring_free(ring);
	expect_same_wallets(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD,
			    fixture->paths.local_autologin, WALLET_KIND_LOCAL_AUTOLOGIN, NULL);
	{
		struct password_source wrong_file = fixture->source;

		wrong_file.path = fixture->new_password_file;
		assert_int_equal(wallet_session_open(fixture->dir, WALLET_FOR_CHANGE, &wrong_file,
						     &session, error),
				 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	}
	secret_free(password);
}

static void test_create_autologin_replaces_other_kind(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_session *session;

	create_wallet(fixture->dir, PASSWORD, true, false);
	session = open_change(fixture, &fixture->source);
	assert_int_equal(wallet_session_create_autologin(session, true, NULL, error), 0);
	wallet_session_close(session);
	assert_false(wallet_file_present(fixture->paths.autologin));
	assert_true(wallet_file_present(fixture->paths.local_autologin));
	/* A copy of the password wallet changes no key: no backup is needed. */
	assert_int_equal(count_entries(fixture->paths.backup_dir, ""), 0);
	set_key(fixture, &fixture->source);
	expect_same_wallets(fixture->paths.password, WALLET_KIND_PASSWORD, PASSWORD,
			    fixture->paths.local_autologin, WALLET_KIND_LOCAL_AUTOLOGIN, NULL);
}

static void test_copy_holding_more_keys_is_kept(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_session *session = NULL;
	size_t len;
	uint8_t *old_password_wallet;

	create_wallet(fixture->dir, PASSWORD, true, false);
	old_password_wallet = read_whole(fixture->paths.password, &len);
	set_key(fixture, &fixture->source);
	/* Restore an older password wallet: the copy now holds a key it lacks. */
	write_whole(fixture->paths.password, old_password_wallet, len, 0600);
	assert_int_equal(wallet_session_open(fixture->dir, WALLET_FOR_CHANGE, &fixture->source,
					     &session, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_COPY_HAS_MORE_KEYS));
	assert_null(session);
	assert_non_null(strstr(error, "lacks"));
	free(old_password_wallet);
}

/*
 * Every session call that changes the wallet refuses a session opened for reading (-EINVAL, a
 * bad argument) with a message that says why, and writes nothing.
 */
static void test_change_refused_on_reading_session(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_session *session = NULL;
	struct secret *password = secret_from("another good password");
	size_t backups;
	int results[5];

	create_wallet(fixture->dir, PASSWORD, true, false);
	backups = count_entries(fixture->paths.backup_dir, "");
	assert_int_equal(wallet_session_open(fixture->dir, WALLET_FOR_READING, NULL, &session,
					     error),
			 0);
	error[0] = '\0';
	results[0] = wallet_session_commit(session, NULL, error);
	assert_non_null(strstr(error, "opened for reading"));
	error[0] = '\0';
	results[1] = wallet_session_delete_key(session, 0, NULL, error);
	assert_non_null(strstr(error, "opened for reading"));
	error[0] = '\0';
	results[2] = wallet_session_create_autologin(session, true, NULL, error);
	assert_non_null(strstr(error, "opened for reading"));
	error[0] = '\0';
	results[3] = wallet_session_change_password(session, password, NULL, NULL, error);
	assert_non_null(strstr(error, "opened for reading"));
	error[0] = '\0';
	results[4] = wallet_session_backup(session, NULL, NULL, error);
	assert_non_null(strstr(error, fixture->dir));
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(results[i], -EINVAL);
	wallet_session_close(session);
	secret_free(password);
	assert_int_equal(count_entries(fixture->paths.backup_dir, ""), backups);
	assert_false(wallet_file_present(fixture->paths.local_autologin));
}

static void test_status_report(void **state)
{
	struct fixture *fixture = *state;
	struct wallet_status_report *report = calloc(1, sizeof(*report));
	struct wallet_session *session;
	char error[KEYSTORE_ERROR_SIZE];
	size_t len;
	uint8_t *old_copy;

	assert_non_null(report);
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report), 0);
	assert_int_equal(report->status, WALLET_STATUS_NOT_AVAILABLE);
	assert_int_equal(report->row_count, 0);
	assert_string_equal(wallet_status_name(report->status), "NOT_AVAILABLE");

	create_wallet(fixture->dir, PASSWORD, false, false);
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report), 0);
	assert_int_equal(report->status, WALLET_STATUS_CLOSED);
	assert_true(report->rows[0].header_valid);
	assert_int_equal(report->first_error, 0);
	assert_int_equal(wallet_status_read(fixture->dir, &fixture->source, report), 0);
	assert_int_equal(report->status, WALLET_STATUS_OPEN);
	assert_string_equal(wallet_kind_name(report->rows[0].kind), "PASSWORD");
	assert_false(report->rows[0].fully_backed_up);

	session = open_change(fixture, &fixture->source);
	assert_int_equal(wallet_session_backup(session, NULL, NULL, error), 0);
	assert_int_equal(wallet_session_create_autologin(session, false, NULL, error), 0);
	wallet_session_close(session);
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report), 0);
	assert_int_equal(report->row_count, 2);
	assert_int_equal(report->rows[report->mount_row].kind, WALLET_KIND_AUTOLOGIN);
	assert_string_equal(wallet_kind_name(report->rows[1].kind), "AUTOLOGIN");
	assert_int_equal(report->status, WALLET_STATUS_OPEN);
	assert_true(report->rows[1].fully_backed_up);
	assert_false(report->rows[1].out_of_step);

	/* A copy a generation behind is reported out of step. */
	old_copy = read_whole(fixture->paths.autologin, &len);
	set_key(fixture, &fixture->source);
	write_whole(fixture->paths.autologin, old_copy, len, 0600);
	free(old_copy);
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report), 0);
	assert_true(report->rows[1].out_of_step);

	/* Damage in the closed password wallet shows without a password. */
	old_copy = read_whole(fixture->paths.password, &len);
	old_copy[len - 1] ^= 1;
	write_whole(fixture->paths.password, old_copy, len, 0600);
	free(old_copy);
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report), 0);
	assert_int_equal(report->rows[0].error_code, KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_int_equal(report->first_error, KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(report->rows[0].error, "newest backup: "));

	/* A wallet without an active key. */
	scratch_dir_remove(fixture->dir);
	{
		struct wallet_create_options options = { .auto_login = true,
							 .container = "default",
							 .cost = TEST_COST };
		struct wallet_create_result result;

		assert_int_equal(wallet_create(fixture->dir, &options, NULL, &result, error), 0);
	}
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report), 0);
	assert_int_equal(report->status, WALLET_STATUS_OPEN_NO_MASTER_KEY);
	free(report);
}

static void test_stale_temporaries_removed(void **state)
{
	struct fixture *fixture = *state;
	char leftover[PATH_MAX], unrelated[PATH_MAX];

	create_wallet(fixture->dir, PASSWORD, false, false);
	path_join(leftover, fixture->dir, "password.wallet.tmp-Ab12Cd");
	path_join(unrelated, fixture->dir, "notes.tmp-Ab12Cd");
	write_whole(leftover, (const uint8_t *)"x", 1, 0600);
	write_whole(unrelated, (const uint8_t *)"x", 1, 0600);
	set_key(fixture, &fixture->source);
	assert_false(wallet_file_present(leftover));
	assert_true(wallet_file_present(unrelated));
}

static void test_backup_names(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], first[PATH_MAX], second[PATH_MAX], newest[PATH_MAX];

	assert_int_equal(mkdir(fixture->dir, 0700), 0);
	assert_int_equal(wallet_backup_write(fixture->paths.backup_dir, "password", 7, "../x",
					     (const uint8_t *)"a", 1, first, error),
			 -EINVAL);
	assert_int_equal(wallet_backup_write(fixture->paths.backup_dir, "password", 7, "q1",
					     (const uint8_t *)"a", 1, first, error),
			 0);
	assert_non_null(strstr(first, "/backup/password-"));
	assert_non_null(strstr(first, "-g7-q1.wallet"));
	/* The same second and generation never overwrite an earlier backup. */
	assert_int_equal(wallet_backup_write(fixture->paths.backup_dir, "password", 7, "q1",
					     (const uint8_t *)"b", 1, second, error),
			 0);
	assert_string_not_equal(first, second);
	assert_int_equal(count_entries(fixture->paths.backup_dir, "password-"), 2);
	assert_int_equal(wallet_backup_write(fixture->paths.backup_dir, "password", 12, NULL,
					     (const uint8_t *)"c", 1, second, error),
			 0);
	assert_int_equal(wallet_newest_backup(fixture->paths.backup_dir, "password", newest), 0);
	assert_string_equal(newest, second);
	assert_int_equal(wallet_newest_backup(fixture->paths.backup_dir, "autologin", newest),
			 -ENOENT);
}

/* A password descriptor holding PASSWORD, as the daemon gets from --password-fd. */
static int password_pipe(void)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], PASSWORD "\n", strlen(PASSWORD) + 1),
			 (ssize_t)strlen(PASSWORD) + 1);
	close(fds[1]);
	return fds[0];
}

/*
 * Strict modes: the wallet directory, its parents and its files belong to root (the user
 * running the tests) and are writable by no one else, or nothing opens, and the message names
 * the path and the fix. A root-owned sticky parent (as /tmp) is accepted; links to the
 * directory are followed, links in it are refused.
 */
static void test_strict_modes(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], expected[2 * PATH_MAX + 128], link_path[PATH_MAX];
	struct wallet_status_report *report = calloc(1, sizeof(*report));
	struct wallet_session *session = NULL;
	struct keyring *ring = NULL;

	assert_non_null(report);
	create_wallet(fixture->dir, PASSWORD, true, false);
	assert_int_equal(file_mode(fixture->dir), 0700);
	assert_int_equal(file_mode(fixture->paths.backup_dir), 0700);

	assert_int_equal(chmod(fixture->dir, 0770), 0);
	snprintf(expected, sizeof(expected),
		 "wallet directory %s is writable by group: chmod g-w %s", fixture->dir,
		 fixture->dir);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_null(ring);
	assert_string_equal(error, expected);
	assert_int_equal(wallet_session_open(fixture->dir, WALLET_FOR_READING, NULL, &session,
					     error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_null(session);
	assert_int_equal(wallet_status_read(fixture->dir, NULL, report),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_string_equal(report->error, expected);
	assert_int_equal(chmod(fixture->dir, 0702), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "is writable by others: chmod o-w"));
	assert_int_equal(chmod(fixture->dir, 0700), 0);

	/* A parent writable by others: refused unless it is root's and sticky. */
	assert_int_equal(chmod(fixture->root, 0777), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	snprintf(expected, sizeof(expected), "%s, a parent of wallet directory %s,", fixture->root,
		 fixture->dir);
	assert_non_null(strstr(error, expected));
	assert_non_null(strstr(error, "chmod go-w"));
	assert_int_equal(chmod(fixture->root, 01777), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	keyring_free(ring);
	ring = NULL;
	assert_int_equal(chmod(fixture->root, 0700), 0);

	/* Files: owner, write bits, links; the lock file and backup/ too. */
	assert_int_equal(chown(fixture->paths.password, 65534, 0), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	snprintf(expected, sizeof(expected),
		 "wallet file %s is owned by uid 65534, not by root: chown root %s",
		 fixture->paths.password, fixture->paths.password);
	assert_string_equal(error, expected);
	assert_int_equal(chown(fixture->paths.password, 0, 0), 0);
	assert_int_equal(chmod(fixture->paths.password, 0620), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "chmod g-w"));
	assert_int_equal(chmod(fixture->paths.password, 0600), 0);
	write_whole(fixture->paths.lock, (const uint8_t *)"", 0, 0666);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, fixture->paths.lock));
	assert_int_equal(chmod(fixture->paths.lock, 0600), 0);
	assert_int_equal(chmod(fixture->paths.backup_dir, 0730), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "backup directory"));
	assert_int_equal(chmod(fixture->paths.backup_dir, 0700), 0);
	path_join(link_path, fixture->root, "elsewhere.wallet");
	assert_int_equal(rename(fixture->paths.autologin, link_path), 0);
	assert_int_equal(symlink(link_path, fixture->paths.autologin), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "is a symbolic link"));
	assert_int_equal(unlink(fixture->paths.autologin), 0);
	assert_int_equal(rename(link_path, fixture->paths.autologin), 0);

	/* A link to the wallet directory is followed; its target and the link's home are checked. */
	path_join(link_path, fixture->root, "link-to-wallet");
	assert_int_equal(symlink(fixture->dir, link_path), 0);
	assert_int_equal(keystore_open_for_mount(link_path, -1, &ring, error), 0);
	keyring_free(ring);
	ring = NULL;
	assert_int_equal(chmod(fixture->dir, 0750 | 0020), 0);
	assert_int_equal(keystore_open_for_mount(link_path, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_int_equal(chmod(fixture->dir, 0700), 0);

	/* create refuses an existing directory others may write, and writes nothing into it. */
	{
		struct wallet_create_options options = {
			.auto_login = true,
			.make_key = true,
			.container = WALLET_DEFAULT_CONTAINER,
			.cost = TEST_COST,
		};
		struct wallet_create_result result;
		char open_dir[PATH_MAX];

		path_join(open_dir, fixture->root, "open");
		assert_int_equal(mkdir(open_dir, 0700), 0);
		assert_int_equal(chmod(open_dir, 0775), 0);
		assert_int_equal(wallet_create(open_dir, &options, NULL, &result, error),
				 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
		assert_non_null(strstr(error, "chmod g-w"));
		assert_int_equal(count_entries(open_dir, ""), 0);
	}
	free(report);
}

/* A ring of the given keys: ids[i] filled with 0x10 + seed[i], MEK 0xa0 + seed[i]. */
static struct keyring *ring_of(const uint8_t wallet_id[KEY_ID_SIZE], const int *seeds,
			       const uint8_t *states, size_t count)
{
	struct keyring *ring;

	assert_int_equal(keyring_new(wallet_id, "default", &ring), 0);
	for (size_t i = 0; i < count; i++) {
		struct mek_record record;

		memset(&record, 0, sizeof(record));
		memset(record.id, 0x10 + seeds[i], KEY_ID_SIZE);
		memset(record.mek, 0xa0 + seeds[i], MEK_SIZE);
		record.state = states[i];
		record.origin = MEK_ORIGIN_LOCAL;
		record.creation_time = 1700000000 + seeds[i];
		record.activation_time = states[i] == MEK_STATE_PREACTIVE ? 0 : 1700000000;
		strcpy(record.container, "default");
		assert_int_equal(keyring_append(ring, &record), 0);
	}
	return ring;
}

static void expect_active(const struct keyring *ring, int seed)
{
	uint8_t id[KEY_ID_SIZE], expected[KEY_ID_SIZE];
	size_t active = 0;

	assert_int_equal(keyring_active(ring, id, NULL), 0);
	memset(expected, 0x10 + seed, KEY_ID_SIZE);
	assert_memory_equal(id, expected, KEY_ID_SIZE);
	for (size_t i = 0; i < keyring_count(ring); i++)
		active += keyring_record(ring, i)->state == MEK_STATE_ACTIVE;
	assert_int_equal(active, 1);
}

/*
 * keyring_merge: what a reload does with what it re-read. Nothing loaded is dropped; new keys
 * are added; the active key is the wallet's when it has one, else the loaded one; another
 * wallet ID, or a known key ID with another MEK, is refused.
 */
static void test_keyring_merge(void **state)
{
	static const uint8_t wallet_id[KEY_ID_SIZE] = { 9 };
	static const uint8_t other_wallet[KEY_ID_SIZE] = { 8 };
	static const int loaded_seeds[] = { 1, 2 };
	static const uint8_t loaded_states[] = { MEK_STATE_RETIRED, MEK_STATE_ACTIVE };
	static const int fresh_seeds[] = { 1, 3 };
	static const uint8_t fresh_states[] = { MEK_STATE_RETIRED, MEK_STATE_ACTIVE };
	static const uint8_t no_active[] = { MEK_STATE_RETIRED, MEK_STATE_PREACTIVE };
	struct keyring *loaded = ring_of(wallet_id, loaded_seeds, loaded_states, 2);
	struct keyring *fresh = ring_of(wallet_id, fresh_seeds, fresh_states, 2);
	struct keyring *merged = NULL, *foreign;
	struct keyring_merge_summary summary;
	char error[KEYSTORE_ERROR_SIZE];
	uint8_t id[KEY_ID_SIZE];

	(void)state;
	/* The wallet lacks key 2 (restored from an older backup) and has a new active key 3. */
	assert_int_equal(keyring_merge(loaded, fresh, &merged, &summary, error), 0);
	assert_int_equal(keyring_count(merged), 3);
	assert_int_equal(summary.added, 1);
	assert_int_equal(summary.kept, 1);
	assert_true(summary.active_moved);
	assert_true(summary.wallet_has_active);
	for (int seed = 1; seed <= 3; seed++) {
		uint8_t expected_mek[MEK_SIZE];

		memset(id, 0x10 + seed, KEY_ID_SIZE);
		memset(expected_mek, 0xa0 + seed, MEK_SIZE);
		assert_non_null(keyring_find(merged, id));
		assert_memory_equal(keyring_find(merged, id), expected_mek, MEK_SIZE);
	}
	expect_active(merged, 3);
	assert_int_equal(keyring_record(merged, 1)->state, MEK_STATE_RETIRED);
	keyring_free(merged);

	/* A wallet without an active key leaves the loaded one active. */
	keyring_free(fresh);
	fresh = ring_of(wallet_id, fresh_seeds, no_active, 2);
	assert_int_equal(keyring_merge(loaded, fresh, &merged, &summary, error), 0);
	assert_false(summary.wallet_has_active);
	assert_false(summary.active_moved);
	expect_active(merged, 2);
	keyring_free(merged);

	/* The same ring re-read changes nothing. */
	assert_int_equal(keyring_merge(loaded, loaded, &merged, &summary, error), 0);
	assert_int_equal(summary.added + summary.kept, 0);
	assert_true(same_keys(merged, loaded));
	keyring_free(merged);

	/* Another wallet ID, or key 1 with another MEK: refused, nothing made. */
	foreign = ring_of(other_wallet, fresh_seeds, fresh_states, 2);
	merged = NULL;
	assert_int_equal(keyring_merge(loaded, foreign, &merged, &summary, error), -EINVAL);
	assert_null(merged);
	assert_non_null(strstr(error, "another wallet"));
	keyring_free(foreign);
	{
		struct mek_record record = *keyring_record(fresh, 0);

		keyring_free(fresh);
		assert_int_equal(keyring_new(wallet_id, "default", &fresh), 0);
		record.mek[0] ^= 1;
		assert_int_equal(keyring_append(fresh, &record), 0);
		secure_wipe(&record, sizeof(record));
	}
	assert_int_equal(keyring_merge(loaded, fresh, &merged, &summary, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_KEY_MISMATCH));
	assert_null(merged);
	assert_non_null(strstr(error, "another key value"));
	keyring_free(fresh);
	keyring_free(loaded);
}

/*
 * The daemon's side: a password given at mount wins over an auto-login file beside the password
 * wallet, and a reload re-reads the kind it mounted with (never an auto-login file that appeared
 * later), merging, so that a wallet put back from an older backup drops no key.
 */
static void test_reload_keeps_kind_and_keys(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], old_copy[PATH_MAX];
	struct keystore_reload_result result;
	struct keyring *mounted = NULL, *reloaded = NULL, *planted = NULL;
	uint8_t active[KEY_ID_SIZE], planted_active[KEY_ID_SIZE];
	size_t index;
	int fd;

	create_wallet(fixture->dir, PASSWORD, true, false);
	fd = password_pipe();
	assert_int_equal(keystore_open_for_mount(fixture->dir, fd, &mounted, error), 0);
	close(fd);
	assert_int_equal(keyring_source_kind(mounted), WALLET_KIND_PASSWORD);

	/* An auto-login wallet with the same ID but other keys replaces autologin.wallet. */
	{
		uint8_t wallet_id[KEY_ID_SIZE];
		uint8_t *bytes;
		size_t len;

		keyring_wallet_id(mounted, wallet_id);
		assert_int_equal(keyring_new(wallet_id, "default", &planted), 0);
		assert_int_equal(keyring_generate(planted, "planted", true, 1700000000, &index), 0);
		assert_int_equal(keyring_active(planted, planted_active, NULL), 0);
		assert_int_equal(
			wallet_encode_keys(WALLET_KIND_AUTOLOGIN, planted, NULL, &bytes, &len, error),
			0);
		write_whole(fixture->paths.autologin, bytes, len, 0600);
		secure_free(bytes);
	}
	/* Without a store the password wallet cannot be re-read: the keys stay, no switch. */
	assert_int_equal(keystore_reload(fixture->dir, mounted, &reloaded, &result, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	assert_non_null(strstr(error, "an auto-login wallet is not used instead"));
	{
		struct secret *password = secret_from(PASSWORD);
		char backup[PATH_MAX];

		assert_int_equal(
			wallet_add_secret(fixture->dir, password, false, NULL, backup, error), 0);
		secret_free(password);
	}
	assert_int_equal(keystore_reload(fixture->dir, mounted, &reloaded, &result, error), 0);
	assert_int_equal(keyring_source_kind(reloaded), WALLET_KIND_PASSWORD);
	assert_null(keyring_find(reloaded, planted_active));
	assert_int_equal(keyring_active(reloaded, active, NULL), 0);
	assert_memory_not_equal(active, planted_active, KEY_ID_SIZE);
	assert_true(same_keys(reloaded, mounted));
	keyring_free(reloaded);

	/* At mount too, the password given wins over the planted file. */
	fd = password_pipe();
	assert_int_equal(keystore_open_for_mount(fixture->dir, fd, &reloaded, error), 0);
	close(fd);
	assert_null(keyring_find(reloaded, planted_active));
	keyring_free(reloaded);
	/* (Without a password the auto-login file is what a mount opens, as before.) */
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &reloaded, error), 0);
	assert_non_null(keyring_find(reloaded, planted_active));
	keyring_free(reloaded);
	keyring_free(planted);
	keyring_free(mounted);

	/* An auto-login daemon; the wallet rotates, then is put back from before the rotation. */
	assert_int_equal(unlink(fixture->paths.autologin), 0);
	{
		struct wallet_session *session = open_change(fixture, &fixture->source);

		assert_int_equal(wallet_session_create_autologin(session, false, NULL, error), 0);
		wallet_session_close(session);
	}
	path_join(old_copy, fixture->root, "autologin-before.wallet");
	{
		size_t len;
		uint8_t *bytes = read_whole(fixture->paths.autologin, &len);

		write_whole(old_copy, bytes, len, 0600);
		free(bytes);
	}
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &mounted, error), 0);
	assert_int_equal(keyring_source_kind(mounted), WALLET_KIND_AUTOLOGIN);
	set_key(fixture, &fixture->source);
	assert_int_equal(keystore_reload(fixture->dir, mounted, &reloaded, &result, error), 0);
	assert_int_equal(result.added, 1);
	assert_true(result.active_moved);
	keyring_free(mounted);
	mounted = reloaded;
	assert_int_equal(keyring_active(mounted, active, NULL), 0);
	assert_int_equal(rename(old_copy, fixture->paths.autologin), 0);
	assert_int_equal(keystore_reload(fixture->dir, mounted, &reloaded, &result, error), 0);
	assert_int_equal(result.kept, 1);
	assert_int_equal(keyring_count(reloaded), keyring_count(mounted));
	assert_non_null(keyring_find(reloaded, active));
	keyring_free(reloaded);

	/* The kind it mounted with gone: the keys stay; a local file instead is not taken up. */
	{
		struct wallet_session *session = open_change(fixture, &fixture->source);

		assert_int_equal(wallet_session_create_autologin(session, true, NULL, error), 0);
		wallet_session_close(session);
	}
	assert_int_equal(keystore_reload(fixture->dir, mounted, &reloaded, &result, error),
			 -ENOENT);
	assert_non_null(strstr(error, "is not taken up by a running daemon"));
	keyring_free(mounted);
}

/* The host secret: made once (0600 in a 0700 directory), never replaced, checked like wallets. */
static void test_host_secret(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], path[PATH_MAX], dir[PATH_MAX];
	uint8_t *first = secure_alloc(HOST_SECRET_SIZE), *again = secure_alloc(HOST_SECRET_SIZE);
	struct keyring *ring = NULL;

	assert_int_equal(host_secret_path(path), 0);
	path_join(dir, fixture->root, "host-secret");
	assert_false(wallet_file_present(dir));
	assert_int_equal(host_secret_load(first, false, error), -ENOENT);
	assert_false(wallet_file_present(dir));
	create_wallet(fixture->dir, NULL, true, true);
	assert_int_equal(file_mode(dir), 0700);
	assert_int_equal(file_mode(path), 0600);
	assert_int_equal(host_secret_load(first, false, error), 0);
	assert_int_equal(host_secret_load(again, true, error), 0);
	assert_memory_equal(first, again, HOST_SECRET_SIZE);
	/* A change rewrites the wallet under the same secret. */
	{
		struct wallet_session *session = open_change(fixture, NULL);

		assert_int_equal(keyring_generate(wallet_session_keyring(session), NULL, true,
						  wallet_now(), NULL),
				 0);
		commit(session, NULL);
		wallet_session_close(session);
	}
	assert_int_equal(host_secret_load(again, false, error), 0);
	assert_memory_equal(first, again, HOST_SECRET_SIZE);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error), 0);
	keyring_free(ring);
	ring = NULL;

	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "host secret directory"));
	assert_non_null(strstr(error, "chmod g-w"));
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "chown root"));
	assert_int_equal(chown(path, 0, 0), 0);
	assert_int_equal(truncate(path, 31), 0);
	assert_int_equal(keystore_open_for_mount(fixture->dir, -1, &ring, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(error, "damaged"));
	/* The damaged secret is not replaced by a write either. */
	{
		struct wallet_session *session = NULL;

		assert_int_equal(wallet_session_open(fixture->dir, WALLET_FOR_CHANGE, NULL,
						     &session, error),
				 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
		assert_null(session);
	}
	assert_int_equal(count_entries(dir, "host-secret"), 1);
	secure_free(first);
	secure_free(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_with_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_autologin_permissions_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_local_autologin_other_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_historical_keys_survive, setup, teardown),
		cmocka_unit_test(test_key_id_prefixes),
		cmocka_unit_test(test_keyring_remove),
		cmocka_unit_test_setup_teardown(test_backup_before_each_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backed_up_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_key_autologin_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_for_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external_store_and_change_password, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_autologin_only_wallet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_autologin_replaces_other_kind, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_change_refused_on_reading_session, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_copy_holding_more_keys_is_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_status_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_temporaries_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_modes, setup, teardown),
		cmocka_unit_test(test_keyring_merge),
		cmocka_unit_test_setup_teardown(test_reload_keeps_kind_and_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_secret, setup, teardown),
	};

	return cmocka_run_group_tests_name("keystore wallet directory", tests, NULL, NULL);
}
