/*
 * Unit tests of one wallet file: the byte format, its three protections, and the promise that
 * damage is never mistaken for a wrong password. Each test builds wallets in memory with the
 * production encoder and reads them back through wallet_read(), the path the daemon and tdekey
 * use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pwd.h>
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

#define PASSWORD "correct horse battery"

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX];
	struct keyring *ring;
	struct password_key *password_key;
};

static int setup(void **state)
{
	static const uint8_t wallet_id[KEY_ID_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct fixture *fixture = calloc(1, sizeof(*fixture));
	uint8_t salt[WALLET_SALT_SIZE] = { 7 };
	struct secret *password = secret_from(PASSWORD);
	struct scrypt_cost cost = TEST_COST;
	size_t index;

	assert_non_null(fixture);
	scratch_dir_make(fixture->dir);
	path_join(fixture->path, fixture->dir, "sample.wallet");
	host_secret_dir_use(fixture->dir, 0x33);
	assert_int_equal(keyring_new(wallet_id, "default", &fixture->ring), 0);
	keyring_set_generation(fixture->ring, 42);
	/* One key of each state, with and without tags. */
	assert_int_equal(keyring_generate(fixture->ring, "q1", true, 1700000000, &index), 0);
	assert_int_equal(keyring_generate(fixture->ring, NULL, true, 1700000100, &index), 0);
	assert_int_equal(keyring_generate(fixture->ring, "later", false, 1700000200, &index), 0);
	keyring_mark_backed_up(fixture->ring, 1);
	assert_int_equal(password_key_derive(password, salt, &cost, &fixture->password_key), 0);
	secret_free(password);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	keyring_free(fixture->ring);
	password_key_free(fixture->password_key);
	scratch_dir_remove(fixture->dir);
	free(fixture);
	return 0;
}

/* Encode the fixture's ring as a file of the given kind at fixture->path; returns the bytes. */
static uint8_t *write_sample(struct fixture *fixture, enum wallet_kind kind, size_t *len)
{
	char error[KEYSTORE_ERROR_SIZE];
	uint8_t *secure_bytes, *bytes;

	assert_int_equal(wallet_encode_keys(kind, fixture->ring, fixture->password_key,
					    &secure_bytes, len, error),
			 0);
	bytes = malloc(*len);
	assert_non_null(bytes);
	memcpy(bytes, secure_bytes, *len);
	secure_free(secure_bytes);
	write_whole(fixture->path, bytes, *len, 0600);
	return bytes;
}

static int try_read(const char *path, enum wallet_kind kind, const char *password,
		    struct wallet_read *read, char error[KEYSTORE_ERROR_SIZE])
{
	struct secret *secret = password ? secret_from(password) : NULL;
	int ret;

	memset(read, 0, sizeof(*read));
	read->path = path;
	read->expected_kind = kind;
	read->expected_content = WALLET_CONTENT_KEYS;
	read->password = secret;
	ret = wallet_read(read, error);
	secret_free(secret);
	read->password = NULL;
	return ret;
}

static void recompute_checksum(uint8_t *data, size_t len)
{
	assert_int_equal(crypto_sha256(data, len - SHA256_SIZE, data + len - SHA256_SIZE), 0);
}

static void test_key_id_text(void **state)
{
	static const uint8_t id[KEY_ID_SIZE] = { 0x00, 0x01, 0xab, 0xcd, 0xef, 0x10, 0x99, 0xff,
						 0x7f, 0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };
	char text[KEY_ID_TEXT_SIZE];
	uint8_t parsed[KEY_ID_SIZE], untouched[KEY_ID_SIZE];

	(void)state;
	key_id_format(id, text);
	assert_string_equal(text, "0001abcdef1099ff7f80112233445566");
	assert_int_equal(key_id_parse(text, parsed), 0);
	assert_memory_equal(parsed, id, KEY_ID_SIZE);
	assert_int_equal(key_id_parse("0001ABCDEF1099FF7F80112233445566", parsed), 0);
	assert_memory_equal(parsed, id, KEY_ID_SIZE);
	memset(untouched, 0x5a, sizeof(untouched));
	assert_int_equal(key_id_parse("0001abcdef1099ff7f8011223344556", untouched), -EINVAL);
	assert_int_equal(key_id_parse("0001abcdef1099ff7f801122334455667", untouched), -EINVAL);
	assert_int_equal(key_id_parse("0001abcdef1099ff7f8011223344556g", untouched), -EINVAL);
	assert_int_equal(key_id_parse(NULL, untouched), -EINVAL);
	for (size_t i = 0; i < KEY_ID_SIZE; i++)
		assert_int_equal(untouched[i], 0x5a);
}

static void test_round_trip_each_kind(void **state)
{
	static const enum wallet_kind kinds[] = { WALLET_KIND_PASSWORD, WALLET_KIND_AUTOLOGIN,
						  WALLET_KIND_LOCAL_AUTOLOGIN };
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	uint8_t wallet_id[KEY_ID_SIZE], active_id[KEY_ID_SIZE], read_id[KEY_ID_SIZE];

	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		struct wallet_read read;
		const uint8_t *mek;
		size_t len;
		uint8_t *bytes = write_sample(fixture, kinds[k], &len);

		assert_int_equal(try_read(fixture->path, kinds[k], PASSWORD, &read, error), 0);
		assert_true(same_keys(read.ring, fixture->ring));
		for (size_t i = 0; i < keyring_count(fixture->ring); i++) {
			const struct mek_record *a = keyring_record(fixture->ring, i);
			const struct mek_record *b = keyring_record(read.ring, i);

			assert_string_equal(a->tag, b->tag);
			assert_string_equal(a->container, b->container);
			assert_int_equal(a->creation_time, b->creation_time);
			assert_int_equal(a->activation_time, b->activation_time);
			assert_int_equal(a->state, b->state);
			assert_int_equal(a->origin, b->origin);
			assert_int_equal(a->backed_up, b->backed_up);
		}
		assert_int_equal(read.info.kind, kinds[k]);
		assert_int_equal(read.info.generation, 42);
		assert_int_equal(keyring_generation(read.ring), 42);
		keyring_wallet_id(fixture->ring, wallet_id);
		keyring_wallet_id(read.ring, read_id);
		assert_memory_equal(wallet_id, read_id, KEY_ID_SIZE);
		assert_string_equal(keyring_container(read.ring), "default");
		assert_int_equal(keyring_active(read.ring, active_id, &mek), 0);
		assert_memory_equal(active_id, keyring_record(fixture->ring, 1)->id, KEY_ID_SIZE);
		assert_ptr_equal(keyring_find(read.ring, active_id), mek);
		assert_memory_equal(mek, keyring_record(fixture->ring, 1)->mek, MEK_SIZE);
		wallet_read_release(&read);
		free(bytes);
	}
}

static void test_wrong_password(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], expected[PATH_MAX + 64];
	struct wallet_read read;
	size_t len;
	uint8_t *bytes = write_sample(fixture, WALLET_KIND_PASSWORD, &len);

	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, "correct horse batteryX",
				  &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	snprintf(expected, sizeof(expected), "wrong password for wallet %s", fixture->path);
	assert_string_equal(error, expected);
	assert_null(read.ring);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, NULL, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	free(bytes);
}

/*
 * One error vocabulary: a keystore meaning and an errno never read as each other. Every errno
 * the system has, ESTALE from a wallet on NFS among them, classifies as a system error with
 * strerror's words; every keystore meaning classifies as itself, outside the errno range, with
 * its own name and text.
 */
static void test_error_vocabulary(void **state)
{
	const char *seen_names[KEYSTORE_ERROR_COUNT] = { NULL };

	(void)state;
	assert_int_equal(keystore_error_of(0), KEYSTORE_OK);
	assert_int_equal(keystore_error_of(INT_MIN), KEYSTORE_ERR_SYSTEM);
	assert_int_equal(keystore_error_of(-KEYSTORE_ERROR_BASE), KEYSTORE_ERR_SYSTEM);
	for (int e = 1; e < KEYSTORE_ERROR_BASE; e++) {
		if (keystore_error_of(-e) != KEYSTORE_ERR_SYSTEM)
			fail_msg("errno %d read as keystore error %s", e,
				 keystore_error_name(keystore_error_of(-e)));
		char expected[128]; /* strerror's text for an unknown value lives until its next call */

		snprintf(expected, sizeof(expected), "%s", strerror(e));
		assert_string_equal(keystore_error_message(-e), expected);
	}
	/* A real ESTALE (a wallet on NFS) is not "a copy holds more keys". */
	assert_int_not_equal(keystore_error_of(-ESTALE), KEYSTORE_ERR_COPY_HAS_MORE_KEYS);
	assert_null(strstr(keystore_error_message(-ESTALE), "copy"));
	assert_string_equal(keystore_error_message(-ESTALE), strerror(ESTALE));
	for (int n = KEYSTORE_ERR_SYSTEM + 1; n < KEYSTORE_ERROR_COUNT; n++) {
		int ret = KEYSTORE_ERROR(n);
		const char *message = keystore_error_message(ret);

		assert_true(ret < -4095); /* beyond Linux's MAX_ERRNO */
		assert_int_equal(keystore_error_of(ret), n);
		assert_non_null(message);
		assert_true(strlen(message) > 0);
		assert_null(strstr(message, "Unknown error"));
		seen_names[n] = keystore_error_name((enum keystore_error)n);
		assert_non_null(strstr(seen_names[n], "KEYSTORE_ERR_"));
		for (int m = KEYSTORE_ERR_SYSTEM + 1; m < n; m++) {
			assert_string_not_equal(seen_names[m], seen_names[n]);
			assert_string_not_equal(keystore_error_message(KEYSTORE_ERROR(m)), message);
		}
	}
	assert_string_equal(keystore_error_message(KEYSTORE_ERROR(KEYSTORE_ERR_COPY_HAS_MORE_KEYS)),
			    "an auto-login copy holds keys the password wallet lacks");
	assert_string_equal(keystore_error_name(KEYSTORE_ERROR_COUNT), "KEYSTORE_ERR_UNKNOWN");
}

/*
 * A system error on the way to a wallet comes out as that errno, named in the message, never as
 * a keystore meaning: here ENOTDIR, from a wallet path under a regular file.
 */
static void test_system_error_passes_through(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], under_file[PATH_MAX];
	struct wallet_read read;
	size_t len;
	uint8_t *bytes = write_sample(fixture, WALLET_KIND_AUTOLOGIN, &len);
	int ret;

	path_join(under_file, fixture->path, "autologin.wallet");
	ret = try_read(under_file, WALLET_KIND_AUTOLOGIN, NULL, &read, error);
	assert_int_equal(ret, -ENOTDIR);
	assert_int_equal(keystore_error_of(ret), KEYSTORE_ERR_SYSTEM);
	assert_non_null(strstr(error, strerror(ENOTDIR)));
	assert_non_null(strstr(error, under_file));
	/* The same file read where it is opens: the failure above was the path's alone. */
	assert_int_equal(try_read(fixture->path, WALLET_KIND_AUTOLOGIN, NULL, &read, error), 0);
	wallet_read_release(&read);
	free(bytes);
}

/*
 * The core promise: whatever happened to the bytes, the answer is "damaged" (or "newer"), never
 * a crash, never "wrong password" and never a successful open. Checked with the right and with a
 * wrong password, for every byte with its low bit, its high bit or all of it flipped, and for
 * every truncation.
 */
static void check_damage(const char *path, enum wallet_kind kind, enum wallet_content content,
			 const uint8_t *bytes, size_t len, size_t at)
{
	static const char *const passwords[] = { PASSWORD, "some other password" };
	char error[KEYSTORE_ERROR_SIZE];

	for (size_t p = 0; p < (kind == WALLET_KIND_PASSWORD ? 2u : 1u); p++) {
		struct secret *secret = secret_from(passwords[p]);
		struct wallet_read read = {
			.path = path,
			.expected_kind = kind,
			.expected_content = content,
			.password = secret,
		};
		int ret = wallet_read(&read, error);

		secret_free(secret);
		if (ret != KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED) &&
		    ret != KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT))
			fail_msg("damage at byte %zu of %zu (kind %d) read as %d: %s", at, len,
				 kind, ret, error);
		assert_true(strstr(error, ret == KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED)
						  ? "is damaged: "
						  : "newer version") != NULL);
		(void)bytes;
	}
}

static void flip_every_byte(const char *path, enum wallet_kind kind, enum wallet_content content,
			    const uint8_t *bytes, size_t len)
{
	uint8_t *copy = malloc(len);

	assert_non_null(copy);
	for (size_t at = 0; at < len; at++) {
		static const uint8_t masks[] = { 0x01, 0x80, 0xff }; /* low bit, high bit, all */

		for (size_t m = 0; m < ARRAY_SIZE(masks); m++) {
			memcpy(copy, bytes, len);
			copy[at] ^= masks[m];
			write_whole(path, copy, len, 0600);
			check_damage(path, kind, content, copy, len, at);
		}
	}
	for (size_t cut = 0; cut < len; cut++) {
		write_whole(path, bytes, cut, 0600);
		check_damage(path, kind, content, bytes, cut, cut);
	}
	free(copy);
}

static void test_flip_and_truncate_key_wallets(void **state)
{
	static const enum wallet_kind kinds[] = { WALLET_KIND_PASSWORD, WALLET_KIND_AUTOLOGIN,
						  WALLET_KIND_LOCAL_AUTOLOGIN };
	struct fixture *fixture = *state;

	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		size_t len;
		uint8_t *bytes = write_sample(fixture, kinds[k], &len);

		flip_every_byte(fixture->path, kinds[k], WALLET_CONTENT_KEYS, bytes, len);
		free(bytes);
	}
}

static void test_flip_and_truncate_external_store(void **state)
{
	struct fixture *fixture = *state;
	struct secret *secret = secret_from(PASSWORD);
	char error[KEYSTORE_ERROR_SIZE];
	uint8_t wallet_id[KEY_ID_SIZE] = { 9 }, *secure_bytes, *bytes;
	size_t len;

	assert_int_equal(wallet_encode_secrets(WALLET_KIND_AUTOLOGIN, wallet_id, 3, &secret, 1,
					       &secure_bytes, &len, error),
			 0);
	bytes = malloc(len);
	assert_non_null(bytes);
	memcpy(bytes, secure_bytes, len);
	secure_free(secure_bytes);
	flip_every_byte(fixture->path, 0, WALLET_CONTENT_SECRET, bytes, len);
	free(bytes);
	secret_free(secret);
}

static void test_zero_length_file(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_read read;

	write_whole(fixture->path, (const uint8_t *)"", 0, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, PASSWORD, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(error, "is damaged: the file is empty; newest backup: "));
}

static void test_wrong_magic(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_read read;
	size_t len;
	uint8_t *bytes = write_sample(fixture, WALLET_KIND_AUTOLOGIN, &len);

	/* Even with the checksum made to match, a wrong magic is not a wallet. */
	memcpy(bytes, "TDEFSWLX", 8);
	recompute_checksum(bytes, len);
	write_whole(fixture->path, bytes, len, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_AUTOLOGIN, NULL, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(error, "bad magic"));
	write_whole(fixture->path, (const uint8_t *)"hello, world\n", 13, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_AUTOLOGIN, NULL, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	free(bytes);
}

static void test_newer_version_and_flags(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_read read;
	size_t len;
	uint8_t *bytes = write_sample(fixture, WALLET_KIND_PASSWORD, &len);
	uint8_t *copy = malloc(len);

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	store_le16(copy + WALLET_OFFSET_VERSION, WALLET_FORMAT_VERSION + 1);
	recompute_checksum(copy, len);
	write_whole(fixture->path, copy, len, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, PASSWORD, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT));
	assert_non_null(strstr(error, "written by a newer version of tdefs"));
	{
		char expected[32];

		snprintf(expected, sizeof(expected), "format version %d", WALLET_FORMAT_VERSION + 1);
		assert_non_null(strstr(error, expected));
	}

	/* A flipped version byte without a matching checksum is damage, not a newer file. */
	memcpy(copy, bytes, len);
	store_le16(copy + WALLET_OFFSET_VERSION, WALLET_FORMAT_VERSION + 1);
	write_whole(fixture->path, copy, len, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, PASSWORD, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));

	memcpy(copy, bytes, len);
	store_le32(copy + WALLET_OFFSET_FLAGS, 0x10);
	recompute_checksum(copy, len);
	write_whole(fixture->path, copy, len, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, PASSWORD, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT));

	/* The host-secret flag is known, but only a local auto-login file may carry it. */
	memcpy(copy, bytes, len);
	store_le32(copy + WALLET_OFFSET_FLAGS, WALLET_FLAG_HOST_SECRET);
	recompute_checksum(copy, len);
	write_whole(fixture->path, copy, len, 0600);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_PASSWORD, PASSWORD, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(error, "only a local auto-login file uses the host secret"));
	free(copy);
	free(bytes);
}

/*
 * The local auto-login derivations, against values computed independently (Python's hmac and
 * hashlib, RFC 5869 HKDF written out) from the inputs below. A change here would lock every
 * local auto-login wallet in the field out of its host.
 */
static void test_local_derivation_known_answers(void **state)
{
	static const char identity_text[] =
		"machine-id=0123456789abcdef0123456789abcdef\nhostname=db1";
	static const char *const expected[] = {
		/* check, with the host secret */
		"fff43e7936d32a919a7185a3b3f0a4462c8878f785cc45482e29de53ac115b60",
		/* sealing key, with the host secret */
		"0ec78361d9be8cdfb1ae530d7ba451f988c0379a6b819c7ee77ed424171d3f48",
		/* check of a file made before host secrets */
		"4fa9c0ed10e9a7894e13c71ef29cc718eecd48968078cc5c2c1892b7774a217c",
		/* sealing key of a file made before host secrets */
		"745f8f6437958d346e44738532356cfb1786002cbf6bd71dff032238a45528fa",
	};
	uint8_t secret[HOST_SECRET_SIZE], stored[WALLET_STORED_KEY_SIZE], salt[WALLET_SALT_SIZE];
	uint8_t out[4][32];
	struct host_identity identity = { .len = sizeof(identity_text) - 1 };
	char hex[65];

	(void)state;
	memcpy(identity.bytes, identity_text, identity.len);
	for (size_t i = 0; i < 32; i++) {
		secret[i] = (uint8_t)i;
		stored[i] = (uint8_t)(0x40 + i);
		salt[i] = (uint8_t)(0x80 + i);
	}
	assert_int_equal(local_host_check(&identity, secret, salt, out[0]), 0);
	assert_int_equal(local_autologin_sealing_key(stored, &identity, secret, salt, out[1]), 0);
	assert_int_equal(local_host_check(&identity, NULL, salt, out[2]), 0);
	assert_int_equal(local_autologin_sealing_key(stored, &identity, NULL, salt, out[3]), 0);
	for (size_t k = 0; k < ARRAY_SIZE(expected); k++) {
		for (size_t i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", out[k][i]);
		assert_string_equal(hex, expected[k]);
	}
	/* One bit of the secret changes both. */
	secret[31] ^= 1;
	assert_int_equal(local_host_check(&identity, secret, salt, out[2]), 0);
	assert_memory_not_equal(out[2], out[0], 32);
	assert_int_equal(local_autologin_sealing_key(stored, &identity, secret, salt, out[3]), 0);
	assert_memory_not_equal(out[3], out[1], 32);
}

/*
 * A local auto-login file is bound to the host secret: read with another secret, or with none
 * at all, it is a file from another host (KEYSTORE_ERR_OTHER_HOST), and reading never creates a
 * secret.
 */
static void test_local_file_needs_host_secret(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE], elsewhere[PATH_MAX];
	struct wallet_read read;
	size_t len;
	uint8_t *bytes = write_sample(fixture, WALLET_KIND_LOCAL_AUTOLOGIN, &len);

	assert_int_equal(load_le32(bytes + WALLET_OFFSET_FLAGS), WALLET_FLAG_HOST_SECRET);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_LOCAL_AUTOLOGIN, NULL, &read, error),
			 0);
	wallet_read_release(&read);

	path_join(elsewhere, fixture->dir, "other-host");
	assert_int_equal(mkdir(elsewhere, 0700), 0);
	host_secret_dir_use(elsewhere, -1);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_LOCAL_AUTOLOGIN, NULL, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_OTHER_HOST));
	assert_non_null(strstr(error, "which this host does not have"));
	assert_int_equal(count_entries(elsewhere, "host-secret"), 0);
	host_secret_dir_use(elsewhere, 0x44);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_LOCAL_AUTOLOGIN, NULL, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_OTHER_HOST));
	assert_non_null(strstr(error, "was made on another host"));
	assert_non_null(strstr(error, "host secret"));

	/* Back on the host that made it. */
	host_secret_dir_use(fixture->dir, 0x33);
	assert_int_equal(try_read(fixture->path, WALLET_KIND_LOCAL_AUTOLOGIN, NULL, &read, error),
			 0);
	wallet_read_release(&read);
	free(bytes);
}

/*
 * Someone changes the sealed payload and recomputes the checksum: the password check still
 * passes, so the failure is reported as damage and not as a wrong password.
 */
static void test_forged_payload_is_damage(void **state)
{
	static const enum wallet_kind kinds[] = { WALLET_KIND_PASSWORD, WALLET_KIND_AUTOLOGIN,
						  WALLET_KIND_LOCAL_AUTOLOGIN };
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];

	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		struct wallet_read read;
		size_t len;
		uint8_t *bytes = write_sample(fixture, kinds[k], &len);

		bytes[WALLET_HEADER_SIZE + 5] ^= 0x20;
		recompute_checksum(bytes, len);
		write_whole(fixture->path, bytes, len, 0600);
		assert_int_equal(try_read(fixture->path, kinds[k], PASSWORD, &read, error),
				 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
		assert_non_null(strstr(error, "fail authentication"));
		free(bytes);
	}
}

static void test_kind_must_match_name(void **state)
{
	struct fixture *fixture = *state;
	char error[KEYSTORE_ERROR_SIZE];
	struct wallet_read read;
	size_t len;
	uint8_t *bytes = write_sample(fixture, WALLET_KIND_PASSWORD, &len);

	assert_int_equal(try_read(fixture->path, WALLET_KIND_AUTOLOGIN, NULL, &read, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(error, "not what its name says"));
	free(bytes);
}

/* Encode a payload for the decoder tests: two valid records, then the caller breaks one. */
static uint8_t *sample_payload(struct fixture *fixture, size_t *len)
{
	uint8_t *secure_payload, *payload;

	assert_int_equal(wallet_payload_encode_keys(fixture->ring, &secure_payload, len), 0);
	payload = malloc(*len);
	assert_non_null(payload);
	memcpy(payload, secure_payload, *len);
	secure_free(secure_payload);
	return payload;
}

static void expect_payload_rejected(const uint8_t *payload, size_t len, const char *reason)
{
	static const uint8_t wallet_id[KEY_ID_SIZE];
	char why[WALLET_WHY_SIZE] = "";
	struct keyring *ring = NULL;

	assert_int_equal(wallet_payload_decode_keys(payload, len, WALLET_FORMAT_VERSION, wallet_id, 1,
						    &ring, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_null(ring);
	if (!strstr(why, reason))
		fail_msg("expected '%s' in '%s'", reason, why);
}

static void test_payload_decoder_rejects(void **state)
{
	struct fixture *fixture = *state;
	uint8_t *record1;
	size_t len;
	uint8_t *payload = sample_payload(fixture, &len);
	/* Of known size, so that the compiler sees every edit below stays inside it. */
	static uint8_t copy[WALLET_MAX_SEALED_SIZE];

	assert_true(len >= KEYS_PAYLOAD_HEADER_SIZE + 2 * KEY_RECORD_SIZE && len <= sizeof(copy));
	record1 = copy + KEYS_PAYLOAD_HEADER_SIZE;
#define RESET() memcpy(copy, payload, len)
	RESET();
	store_le32(copy + KEYS_OFFSET_COUNT, WALLET_MAX_KEYS + 1);
	expect_payload_rejected(copy, len, "exceeds the limit");
	RESET();
	store_le32(copy + KEYS_OFFSET_COUNT, 4);
	expect_payload_rejected(copy, len, "does not hold 4 records");
	RESET();
	expect_payload_rejected(copy, len - 1, "does not hold");
	expect_payload_rejected(copy, 10, "shorter than its header");
	RESET();
	copy[KEYS_OFFSET_CONTAINER_LENGTH] = 65;
	expect_payload_rejected(copy, len, "bad container name");
	RESET();
	record1[RECORD_OFFSET_STATE] = 9;
	expect_payload_rejected(copy, len, "key record 1: unknown state");
	RESET();
	record1[RECORD_OFFSET_ORIGIN] = 0;
	expect_payload_rejected(copy, len, "unknown origin");
	RESET();
	record1[RECORD_OFFSET_FLAGS] = 0x80;
	expect_payload_rejected(copy, len, "unknown flags");
	RESET();
	record1[RECORD_OFFSET_RESERVED] = 1;
	expect_payload_rejected(copy, len, "reserved");
	RESET();
	record1[RECORD_OFFSET_TAG_LENGTH] = 65;
	expect_payload_rejected(copy, len, "bad tag");
	RESET();
	record1[RECORD_OFFSET_TAG + 10] = 'x'; /* after the 2-byte tag "q1": padding not zero */
	expect_payload_rejected(copy, len, "bad tag");
	RESET();
	record1[RECORD_OFFSET_TAG] = '\n';
	expect_payload_rejected(copy, len, "bad tag");
	RESET();
	record1[RECORD_OFFSET_CONTAINER_LENGTH] = 0;
	expect_payload_rejected(copy, len, "bad container name");
	RESET();
	store_le64(record1 + RECORD_OFFSET_ACTIVATION_TIME, 0);
	expect_payload_rejected(copy, len, "activation time");
	RESET();
	/* Record 2 with record 1's ID. */
	memcpy(record1 + KEY_RECORD_SIZE + RECORD_OFFSET_KEY_ID, record1 + RECORD_OFFSET_KEY_ID,
	       KEY_ID_SIZE);
	expect_payload_rejected(copy, len, "duplicate key ID");
	RESET();
	/* Record 1 (retired) made active too: two active keys in one container. */
	record1[RECORD_OFFSET_STATE] = MEK_STATE_ACTIVE;
	expect_payload_rejected(copy, len, "second active key");
	RESET();
	record1[RECORD_OFFSET_CREATOR_LENGTH] = WALLET_CREATOR_MAX + 1;
	expect_payload_rejected(copy, len, "key record 1: bad creator");
	RESET();
	record1[RECORD_OFFSET_CREATOR] = '\n';
	expect_payload_rejected(copy, len, "bad creator");
	RESET();
	record1[RECORD_OFFSET_CREATOR + WALLET_CREATOR_MAX - 1] = 'x'; /* padding not zero */
	expect_payload_rejected(copy, len, "bad creator");
	RESET();
	record1[RECORD_OFFSET_CREATOR_LENGTH] = 0; /* unknown, but the bytes are still there */
	expect_payload_rejected(copy, len, "bad creator");
	RESET();
	record1[RECORD_OFFSET_CREATOR + 1] = '\0'; /* an embedded NUL */
	expect_payload_rejected(copy, len, "bad creator");
#undef RESET
	free(payload);
}

/*
 * A key made here records the real user and the host, from sources other than the code under
 * test; a version 1 payload (200-byte records) reads with creators unknown, refuses a non-zero
 * byte 69, and is written back as version 2 with the creators still unknown.
 */
static void test_creator_and_version_1_records(void **state)
{
	struct fixture *fixture = *state;
	static const uint8_t wallet_id[KEY_ID_SIZE];
	char expected[WALLET_CREATOR_MAX + 1 + 300], host[256] = "", why[WALLET_WHY_SIZE] = "";
	struct passwd *entry = getpwuid(getuid());
	struct keyring *ring = NULL, *again = NULL;
	size_t len, count, v1_len;
	uint8_t *payload = sample_payload(fixture, &len), *v1, *encoded;

	assert_non_null(entry);
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	snprintf(expected, sizeof(expected), "%s@%s", entry->pw_name, host);
	expected[WALLET_CREATOR_MAX] = '\0';
	for (size_t i = 0; i < keyring_count(fixture->ring); i++)
		assert_string_equal(keyring_record(fixture->ring, i)->creator, expected);

	count = keyring_count(fixture->ring);
	v1_len = KEYS_PAYLOAD_HEADER_SIZE + count * KEY_RECORD_V1_SIZE;
	v1 = calloc(1, v1_len);
	assert_non_null(v1);
	memcpy(v1, payload, KEYS_PAYLOAD_HEADER_SIZE);
	for (size_t i = 0; i < count; i++) {
		uint8_t *record = v1 + KEYS_PAYLOAD_HEADER_SIZE + i * KEY_RECORD_V1_SIZE;

		memcpy(record, payload + KEYS_PAYLOAD_HEADER_SIZE + i * KEY_RECORD_SIZE,
		       KEY_RECORD_V1_SIZE);
		record[RECORD_OFFSET_CREATOR_LENGTH] = 0;
	}
	/* A version 2 reader of version 1 bytes, and the other way round, see a size mismatch. */
	assert_int_equal(wallet_payload_decode_keys(v1, v1_len, 2, wallet_id, 1, &ring, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_int_equal(wallet_payload_decode_keys(payload, len, 1, wallet_id, 1, &ring, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_int_equal(wallet_payload_decode_keys(payload, len, 3, wallet_id, 1, &ring, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_int_equal(wallet_payload_decode_keys(v1, v1_len, 1, wallet_id, 1, &ring, why), 0);
	assert_int_equal(keyring_count(ring), count);
	for (size_t i = 0; i < count; i++) {
		assert_string_equal(keyring_record(ring, i)->creator, "");
		assert_string_equal(keyring_record(ring, i)->tag,
				    keyring_record(fixture->ring, i)->tag);
	}
	/* Written again: version 2 records, creator length 0 and a zero field. */
	assert_int_equal(wallet_payload_encode_keys(ring, &encoded, &len), 0);
	assert_int_equal(len, KEYS_PAYLOAD_HEADER_SIZE + count * KEY_RECORD_SIZE);
	assert_int_equal(wallet_payload_decode_keys(encoded, len, 2, wallet_id, 1, &again, why), 0);
	for (size_t i = 0; i < count; i++)
		assert_string_equal(keyring_record(again, i)->creator, "");
	secure_free(encoded);
	keyring_free(again);
	keyring_free(ring);
	ring = NULL;

	v1[KEYS_PAYLOAD_HEADER_SIZE + RECORD_OFFSET_CREATOR_LENGTH] = 5;
	assert_int_equal(wallet_payload_decode_keys(v1, v1_len, 1, wallet_id, 1, &ring, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(why, "key record 1: reserved bytes are not zero"));
	free(v1);
	free(payload);
}

static void test_secret_payload(void **state)
{
	struct secret *secrets[2] = { secret_from("first password"), secret_from("second") };
	struct secret *decoded[WALLET_MAX_SECRETS] = { NULL, NULL };
	char why[WALLET_WHY_SIZE];
	uint8_t *payload;
	size_t len, count = 0;

	(void)state;
	assert_int_equal(wallet_payload_encode_secrets(secrets, 2, &payload, &len), 0);
	assert_int_equal(wallet_payload_decode_secrets(payload, len, decoded, &count, why), 0);
	assert_int_equal(count, 2);
	assert_int_equal(decoded[1]->len, 6);
	assert_memory_equal(decoded[0]->bytes, "first password", 14);
	secret_free(decoded[0]);
	secret_free(decoded[1]);
	for (size_t cut = 0; cut < len; cut++) {
		decoded[0] = decoded[1] = NULL;
		assert_int_equal(wallet_payload_decode_secrets(payload, cut, decoded, &count, why),
				 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
		assert_null(decoded[0]);
	}
	store_le32(payload + SECRETS_OFFSET_COUNT, 3);
	assert_int_equal(wallet_payload_decode_secrets(payload, len, decoded, &count, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	secure_free(payload);
	assert_int_equal(wallet_payload_encode_secrets(secrets, 0, &payload, &len), -EINVAL);
	secret_free(secrets[0]);
	secret_free(secrets[1]);
}

static void test_scrypt_cost_parse(void **state)
{
	char error[KEYSTORE_ERROR_SIZE];
	struct scrypt_cost cost;

	(void)state;
	assert_int_equal(scrypt_cost_parse("16", &cost, error), 0);
	assert_int_equal(cost.log2_n, 16);
	assert_int_equal(cost.r, 8);
	assert_int_equal(cost.p, 1);
	assert_int_equal(scrypt_cost_parse("12,4,2", &cost, error), 0);
	assert_int_equal(cost.r, 4);
	assert_int_equal(cost.p, 2);
	assert_int_equal(scrypt_cost_parse("9", &cost, error), -EINVAL);
	assert_int_equal(scrypt_cost_parse("23", &cost, error), -EINVAL);
	assert_int_equal(scrypt_cost_parse("22,8,1", &cost, error), -EINVAL); /* 4 GiB */
	assert_int_equal(scrypt_cost_parse("16,x", &cost, error), -EINVAL);
	assert_int_equal(scrypt_cost_parse("", &cost, error), -EINVAL);
	assert_int_equal(scrypt_cost_parse("16,8,1,1", &cost, error), -EINVAL);
	assert_true(SCRYPT_DEFAULT_COST.log2_n >= 16 && SCRYPT_DEFAULT_COST.r >= 8);
}

static void test_password_sources(void **state)
{
	struct fixture *fixture = *state;
	struct password_source source = { .kind = PASSWORD_SOURCE_FILE, .path = fixture->path };
	char error[KEYSTORE_ERROR_SIZE];
	struct secret *secret;
	uint8_t long_line[SECRET_MAX_SIZE + 2];
	int pipe_fds[2];

	write_whole(fixture->path, (const uint8_t *)"pass word\r\nsecond line\n", 23, 0600);
	assert_int_equal(password_read(&source, NULL, false, &secret, error), 0);
	assert_int_equal(secret->len, 9);
	assert_memory_equal(secret->bytes, "pass word", 9);
	secret_free(secret);

	/* A descriptor is read up to the newline only: two passwords, one per line. */
	assert_int_equal(pipe(pipe_fds), 0);
	assert_int_equal(write(pipe_fds[1], "old one\nnew one", 15), 15);
	close(pipe_fds[1]);
	source.kind = PASSWORD_SOURCE_FD;
	source.fd = pipe_fds[0];
	assert_int_equal(password_read(&source, NULL, false, &secret, error), 0);
	assert_memory_equal(secret->bytes, "old one", secret->len);
	secret_free(secret);
	assert_int_equal(password_read(&source, NULL, false, &secret, error), 0);
	assert_memory_equal(secret->bytes, "new one", secret->len);
	secret_free(secret);
	assert_int_equal(password_read(&source, NULL, false, &secret, error), -EINVAL);
	assert_non_null(strstr(error, "empty"));
	close(pipe_fds[0]);

	memset(long_line, 'a', sizeof(long_line));
	long_line[sizeof(long_line) - 1] = '\n';
	write_whole(fixture->path, long_line, sizeof(long_line), 0600);
	source.kind = PASSWORD_SOURCE_FILE;
	assert_int_equal(password_read(&source, NULL, false, &secret, error), -EINVAL);
	assert_non_null(strstr(error, "longer than"));

	source.path = "/nonexistent/password";
	assert_int_equal(password_read(&source, NULL, false, &secret, error), -ENOENT);

	secret = secret_from("short");
	assert_int_equal(password_check_new(secret, error), -EINVAL);
	secret_free(secret);
}

/*
 * Wallets written when the format was defined (the fuzzers' seeds, behind their mode byte) must
 * open forever: a change to the layout or to a key derivation that breaks them breaks every
 * wallet in the field.
 */
static void expect_known_wallet(const char *name, enum wallet_kind kind,
				enum wallet_content content, const char *password, size_t keys)
{
	const char *corpus = getenv("KEYSTORE_CORPUS");
	char seed[PATH_MAX], wallet[PATH_MAX], dir[PATH_MAX], error[KEYSTORE_ERROR_SIZE];
	struct secret *secret = password ? secret_from(password) : NULL;
	struct wallet_read read = {
		.path = wallet,
		.expected_kind = kind,
		.expected_content = content,
		.password = secret,
	};
	uint8_t *bytes;
	size_t len;

	if (!corpus)
		skip();
	snprintf(seed, sizeof(seed), "%s/fuzz_wallet_file/%s", corpus, name);
	bytes = read_whole(seed, &len);
	scratch_dir_make(dir);
	path_join(wallet, dir, "known.wallet");
	write_whole(wallet, bytes + 1, len - 1, 0600);
	if (wallet_read(&read, error) != 0)
		fail_msg("%s: %s", name, error);
	if (content == WALLET_CONTENT_KEYS) {
		assert_int_equal(keyring_count(read.ring), keys);
		assert_string_equal(keyring_container(read.ring), "default");
	} else {
		assert_int_equal(read.secret_count, 1);
		assert_memory_equal(read.secrets[0]->bytes, password, strlen(password));
	}
	/* Every file of format version 1 records no creator. */
	if (content == WALLET_CONTENT_KEYS && read.info.version == 1)
		for (size_t i = 0; i < keys; i++)
			assert_string_equal(keyring_record(read.ring, i)->creator, "");
	wallet_read_release(&read);
	secret_free(secret);
	scratch_dir_remove(dir);
	free(bytes);
}

/*
 * A wallet of format version 2, made by tests/keystore/wallet_vectors.py from the
 * specification: every field of both records, the creator known for one and not the other.
 */
static void test_known_wallet_version_2(void **state)
{
	const char *corpus = getenv("KEYSTORE_CORPUS");
	char seed[PATH_MAX], wallet[PATH_MAX], dir[PATH_MAX], error[KEYSTORE_ERROR_SIZE];
	struct wallet_read read = {
		.path = wallet,
		.expected_kind = WALLET_KIND_AUTOLOGIN,
		.expected_content = WALLET_CONTENT_KEYS,
	};
	const struct mek_record *first, *second;
	uint8_t *bytes, expected[MEK_SIZE];
	size_t len;

	(void)state;
	if (!corpus)
		skip();
	snprintf(seed, sizeof(seed), "%s/fuzz_wallet_file/autologin-v2-creators", corpus);
	bytes = read_whole(seed, &len);
	scratch_dir_make(dir);
	path_join(wallet, dir, "autologin.wallet");
	write_whole(wallet, bytes + 1, len - 1, 0600);
	if (wallet_read(&read, error) != 0)
		fail_msg("autologin-v2-creators: %s", error);
	assert_int_equal(read.info.version, 2);
	assert_int_equal(read.info.generation, 7);
	assert_int_equal(keyring_count(read.ring), 2);
	assert_string_equal(keyring_container(read.ring), "default");
	first = keyring_record(read.ring, 0);
	second = keyring_record(read.ring, 1);
	for (int i = 0; i < MEK_SIZE; i++)
		expected[i] = (uint8_t)(0x80 + i);
	assert_memory_equal(first->mek, expected, MEK_SIZE);
	assert_int_equal(first->id[0], 0x11);
	assert_int_equal(first->creation_time, 1767225600);
	assert_int_equal(first->state, MEK_STATE_ACTIVE);
	assert_int_equal(first->origin, MEK_ORIGIN_LOCAL);
	assert_true(first->backed_up);
	assert_string_equal(first->tag, "v2-active");
	assert_string_equal(first->container, "default");
	assert_string_equal(first->creator, "alice@db1.example.com");
	assert_int_equal(second->id[0], 0x22);
	assert_int_equal(second->state, MEK_STATE_RETIRED);
	assert_int_equal(second->origin, MEK_ORIGIN_IMPORTED);
	assert_false(second->backed_up);
	assert_string_equal(second->tag, "");
	assert_string_equal(second->container, "sales");
	assert_string_equal(second->creator, "");
	wallet_read_release(&read);
	scratch_dir_remove(dir);
	free(bytes);
}

static void test_known_wallets_open(void **state)
{
	(void)state;
	setenv("TDEFS_TEST_HOST_IDENTITY", "machine-id=fuzz hostname=fuzz", 1);
	expect_known_wallet("autologin-two-keys", WALLET_KIND_AUTOLOGIN, WALLET_CONTENT_KEYS, NULL,
			    2);
	/* Made before host secrets: it still opens (with a warning), bound to the identity only. */
	expect_known_wallet("local-autologin-one-key", WALLET_KIND_LOCAL_AUTOLOGIN,
			    WALLET_CONTENT_KEYS, NULL, 1);
	{
		char root[PATH_MAX];

		scratch_dir_make(root);
		host_secret_dir_use(root, 0x5a); /* FUZZ_HOST_SECRET_BYTE */
		expect_known_wallet("local-autologin-host-secret", WALLET_KIND_LOCAL_AUTOLOGIN,
				    WALLET_CONTENT_KEYS, NULL, 1);
		scratch_dir_remove(root);
	}
	expect_known_wallet("password-no-keys", WALLET_KIND_PASSWORD, WALLET_CONTENT_KEYS,
			    "fuzz password", 0);
	expect_known_wallet("external-store", 0, WALLET_CONTENT_SECRET, "fuzz password", 0);
	setenv("TDEFS_TEST_HOST_IDENTITY", "unit-test-host", 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_id_text),
		cmocka_unit_test(test_error_vocabulary),
		cmocka_unit_test_setup_teardown(test_system_error_passes_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_each_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_and_truncate_key_wallets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flip_and_truncate_external_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zero_length_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_version_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_payload_is_damage, setup, teardown),
		cmocka_unit_test(test_local_derivation_known_answers),
		cmocka_unit_test_setup_teardown(test_local_file_needs_host_secret, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kind_must_match_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payload_decoder_rejects, setup, teardown),
		cmocka_unit_test(test_secret_payload),
		cmocka_unit_test(test_scrypt_cost_parse),
		cmocka_unit_test_setup_teardown(test_password_sources, setup, teardown),
		cmocka_unit_test(test_known_wallets_open),
		cmocka_unit_test(test_known_wallet_version_2),
		cmocka_unit_test_setup_teardown(test_creator_and_version_1_records, setup,
						teardown),
	};

	/* The local auto-login tests here run as one fixed host. */
	setenv("TDEFS_TEST_HOST_IDENTITY", "unit-test-host", 1);
	return cmocka_run_group_tests_name("keystore wallet format", tests, NULL, NULL);
}
