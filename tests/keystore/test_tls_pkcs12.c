/*
 * test_tls_pkcs12: the TLS wallet's PKCS#12 round trip (crypto/tls.h, keystore/tls_wallet.c;
 * docs/WALLET.md "TLS wallet"). A bundle with an EC and an RSA identity and trusted
 * certificates survives encode and decode under a password and under the empty (auto-login)
 * password with every certificate's fingerprint and the key intact; a wrong password is
 * -EACCES, every truncation and a flipped byte in the MAC are refused; DNs OpenSSL does not
 * know are refused; the wallet directory keeps backups, refuses a certificate for another key,
 * a second trust of one certificate, an auto-login file open to others and a wrong password.
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
#include "crypto/tls.h"
#include "keystore/tls_wallet.h"
#include "tests/keystore/test_helpers.h"

static struct tls_cert *self_signed(struct tls_key *key, const char *dn, unsigned days)
{
	char why[TLS_WHY_SIZE] = "";
	struct tls_cert *cert = NULL;

	assert_int_equal(tls_cert_self_signed(key, dn, days, &cert, why), 0);
	assert_non_null(cert);
	return cert;
}

static void fingerprint_of(const struct tls_cert *cert, char out[TLS_FINGERPRINT_SIZE])
{
	struct tls_cert_info info;

	assert_int_equal(tls_cert_info(cert, &info), 0);
	memcpy(out, info.fingerprint, TLS_FINGERPRINT_SIZE);
}

/* A bundle: identity of key_type with subject dn, and two trusted CAs. */
static void make_bundle(enum tls_key_type key_type, struct tls_bundle *bundle)
{
	struct tls_key *ca_key;

	memset(bundle, 0, sizeof(*bundle));
	assert_int_equal(tls_key_generate(key_type, &bundle->key), 0);
	bundle->cert = self_signed(bundle->key, "CN=db17.example,O=Example\\, Inc,C=DE", 30);
	assert_int_equal(tls_key_generate(TLS_KEY_EC_P256, &ca_key), 0);
	for (int i = 0; i < 2; i++) {
		struct tls_cert *ca = self_signed(ca_key, i ? "CN=CA two" : "CN=CA one", 365);

		assert_int_equal(tls_bundle_add_trusted(bundle, ca), 0);
		tls_cert_free(ca);
	}
	tls_key_free(ca_key);
}

static void assert_same_bundle(const struct tls_bundle *a, const struct tls_bundle *b)
{
	char fa[TLS_FINGERPRINT_SIZE], fb[TLS_FINGERPRINT_SIZE];

	assert_non_null(b->key);
	assert_non_null(b->cert);
	fingerprint_of(a->cert, fa);
	fingerprint_of(b->cert, fb);
	assert_string_equal(fa, fb);
	/* The decoded key is the certificate's key: the private half came through. */
	assert_true(tls_cert_matches_key(b->cert, b->key));
	assert_true(tls_cert_matches_key(a->cert, b->key));
	assert_int_equal(a->trusted_count, b->trusted_count);
	for (size_t i = 0; i < a->trusted_count; i++) {
		fingerprint_of(a->trusted[i], fa);
		fingerprint_of(b->trusted[i], fb);
		assert_string_equal(fa, fb);
	}
}

static void round_trip(enum tls_key_type type, const char *password)
{
	struct tls_bundle bundle, decoded;
	char why[TLS_WHY_SIZE] = "";
	uint8_t *der = NULL;
	size_t len = 0;

	make_bundle(type, &bundle);
	assert_int_equal(tls_pkcs12_encode(&bundle, password, &der, &len, why), 0);
	assert_true(len > 100);
	assert_int_equal(tls_pkcs12_decode(der, len, password, &decoded, why), 0);
	assert_same_bundle(&bundle, &decoded);
	tls_bundle_release(&decoded);
	if (*password)
		assert_int_equal(tls_pkcs12_decode(der, len, "not the password", &decoded, why),
				 -EACCES);
	secure_free(der);
	tls_bundle_release(&bundle);
}

static void test_round_trip_ec_password(void **state)
{
	(void)state;
	round_trip(TLS_KEY_EC_P256, "correct horse battery");
}

static void test_round_trip_rsa_autologin(void **state)
{
	(void)state;
	round_trip(TLS_KEY_RSA_3072, "");
}

static void test_empty_and_key_only(void **state)
{
	struct tls_bundle empty = { 0 }, decoded;
	char why[TLS_WHY_SIZE] = "";
	uint8_t *der = NULL;
	size_t len = 0;

	(void)state;
	/* A new wallet holds nothing and is still a PKCS#12 file. */
	assert_int_equal(tls_pkcs12_encode(&empty, "pw-pw-pw-pw", &der, &len, why), 0);
	assert_int_equal(tls_pkcs12_decode(der, len, "pw-pw-pw-pw", &decoded, why), 0);
	assert_null(decoded.key);
	assert_null(decoded.cert);
	assert_int_equal(decoded.trusted_count, 0);
	secure_free(der);
	/* After a request: a key without a certificate. */
	assert_int_equal(tls_key_generate(TLS_KEY_EC_P256, &empty.key), 0);
	assert_int_equal(tls_pkcs12_encode(&empty, "pw-pw-pw-pw", &der, &len, why), 0);
	assert_int_equal(tls_pkcs12_decode(der, len, "pw-pw-pw-pw", &decoded, why), 0);
	assert_non_null(decoded.key);
	assert_null(decoded.cert);
	tls_bundle_release(&decoded);
	tls_bundle_release(&empty);
	secure_free(der);
}

static void test_damage_refused(void **state)
{
	struct tls_bundle bundle, decoded;
	char why[TLS_WHY_SIZE] = "";
	uint8_t *der = NULL;
	size_t len = 0;
	int ret;

	(void)state;
	make_bundle(TLS_KEY_EC_P256, &bundle);
	assert_int_equal(tls_pkcs12_encode(&bundle, "", &der, &len, why), 0);
	/* Every truncation fails to decode, none crashes. */
	for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 37)) {
		ret = tls_pkcs12_decode(der, cut, "", &decoded, why);
		assert_true(ret == -EBADMSG || ret == -EACCES);
	}
	/* A byte flipped inside the content: the MAC catches it. */
	der[len / 2] ^= 0x40;
	ret = tls_pkcs12_decode(der, len, "", &decoded, why);
	assert_true(ret == -EACCES || ret == -EBADMSG);
	der[len / 2] ^= 0x40;
	/* Bytes after the structure are not ignored. */
	{
		uint8_t *longer = malloc(len + 1);

		memcpy(longer, der, len);
		longer[len] = 0;
		assert_int_equal(tls_pkcs12_decode(longer, len + 1, "", &decoded, why), -EBADMSG);
		free(longer);
	}
	secure_free(der);
	tls_bundle_release(&bundle);
}

static void test_dn_syntax(void **state)
{
	static const char *const bad[] = {
		"", "CN", "CN=", "=x", "XX=foo", "CN=a,,O=b", "CN=a\\", "CN=a,NOTATYPE=b",
	};
	static const char *const good[] = {
		"CN=db17.example", "CN=a,O=b\\, c,C=DE", " CN = spaced ,O=x", "commonName=x",
		"CN=a\\=b",
	};
	char why[TLS_WHY_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(tls_dn_check(bad[i], why), -EINVAL);
		assert_true(why[0] != '\0');
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(tls_dn_check(good[i], why), 0);
}

static void test_fingerprint_match(void **state)
{
	(void)state;
	assert_true(tls_fingerprint_matches("ab:CD:01", "AB:CD:01"));
	assert_true(tls_fingerprint_matches("abcd01", "AB:CD:01"));
	assert_false(tls_fingerprint_matches("abcd0", "AB:CD:01"));
	assert_false(tls_fingerprint_matches("abcd011", "AB:CD:01"));
	assert_false(tls_fingerprint_matches("", "AB"));
}

static void test_wallet_directory(void **state)
{
	char dir[PATH_MAX], file[PATH_MAX], backups[PATH_MAX], error[KEYSTORE_ERROR_SIZE];
	char backup[PATH_MAX], root[PATH_MAX];
	struct password_source source = { .kind = PASSWORD_SOURCE_FILE, .explicit = true };
	struct secret *password = secret_from("tls wallet password");
	struct tls_wallet *wallet = NULL;
	struct tls_key *key, *other_key;
	struct tls_cert *cert, *other;
	char pw_file[PATH_MAX];
	size_t removed = 0;

	(void)state;
	scratch_dir_make(root);
	path_join(pw_file, root, "pw");
	write_whole(pw_file, (const uint8_t *)"tls wallet password\n", 20, 0600);
	source.path = pw_file;
	path_join(dir, root, "tls");
	assert_int_equal(tls_wallet_create(dir, password, true, error), 0);
	assert_int_equal(tls_wallet_create(dir, password, true, error), -EEXIST);

	assert_int_equal(tls_wallet_open(dir, true, &source, &wallet, error), 0);
	assert_int_equal(tls_key_generate(TLS_KEY_EC_P256, &key), 0);
	cert = self_signed(key, "CN=host", 1);
	assert_int_equal(tls_wallet_set_key(wallet, key, cert, error), 0);
	/* A second identity is refused until the first is removed. */
	assert_int_equal(tls_key_generate(TLS_KEY_EC_P256, &other_key), 0);
	assert_int_equal(tls_wallet_set_key(wallet, other_key, NULL, error), -EEXIST);
	other = self_signed(other_key, "CN=other", 1);
	assert_int_equal(tls_wallet_set_cert(wallet, other, "other.pem", error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_KEY_MISMATCH));
	assert_int_equal(tls_wallet_trust(wallet, other, error), 0);
	assert_int_equal(tls_wallet_trust(wallet, other, error), -EEXIST);
	assert_int_equal(tls_wallet_commit(wallet, backup, error), 0);
	assert_true(strstr(backup, "/backup/tls-") != NULL);
	tls_wallet_close(wallet);

	/* Both files read back the same content; the auto-login one without a password. */
	source.explicit = false;
	assert_int_equal(tls_wallet_open(dir, false, &source, &wallet, error), 0);
	assert_true(strstr(tls_wallet_path(wallet), TLS_WALLET_AUTOLOGIN_FILE) != NULL);
	assert_int_equal(tls_wallet_content(wallet)->trusted_count, 1);
	assert_int_equal(tls_wallet_remove_trusted(wallet, "CN=nobody", &removed, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY));
	assert_int_equal(tls_wallet_remove_trusted(wallet, "CN=other", &removed, error), 0);
	assert_int_equal(removed, 1);
	tls_wallet_close(wallet);
	source.explicit = true;
	assert_int_equal(tls_wallet_open(dir, false, &source, &wallet, error), 0);
	assert_true(strstr(tls_wallet_path(wallet), "/" TLS_WALLET_FILE) != NULL);
	assert_true(tls_cert_matches_key(tls_wallet_content(wallet)->cert,
					 tls_wallet_content(wallet)->key));
	tls_wallet_close(wallet);

	path_join(backups, dir, "backup");
	assert_int_equal(count_entries(backups, "tls-2"), 1);
	assert_int_equal(count_entries(backups, "tls-autologin-"), 1);

	/* Wrong password; auto-login file open to others. */
	write_whole(pw_file, (const uint8_t *)"another password\n", 17, 0600);
	assert_int_equal(tls_wallet_open(dir, true, &source, &wallet, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PASSWORD));
	path_join(file, dir, TLS_WALLET_AUTOLOGIN_FILE);
	assert_int_equal(chmod(file, 0644), 0);
	source.explicit = false;
	assert_int_equal(tls_wallet_open(dir, false, &source, &wallet, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, "chmod 600"));

	tls_cert_free(other);
	tls_key_free(other_key);
	secret_free(password);
	scratch_dir_remove(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_ec_password),
		cmocka_unit_test(test_round_trip_rsa_autologin),
		cmocka_unit_test(test_empty_and_key_only),
		cmocka_unit_test(test_damage_refused),
		cmocka_unit_test(test_dn_syntax),
		cmocka_unit_test(test_fingerprint_match),
		cmocka_unit_test(test_wallet_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
