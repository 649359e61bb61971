/*
 * Unit tests for the crypto seam: IEEE 1619 XTS-AES-256 known answers through the very entry
 * points the daemon uses, ciphertext stealing round trips, the per-key context pool under
 * threads, GCM tamper detection, HKDF (RFC 5869 case 3) and scrypt (RFC 7914) known answers,
 * and the secure allocator.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"

static void from_hex(const char *hex, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned value;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &value), 1);
		out[i] = (uint8_t)value;
	}
}

/* IEEE 1619-2007 XTS-AES-256 vector 10: data unit sequence number 0xff, 512-byte unit. */
static const char vector10_key[] =
	"2718281828459045235360287471352662497757247093699959574966967627"
	"3141592653589793238462643383279502884197169399375105820974944592";
static const char vector10_ciphertext[] =
	"1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac"
	"683f44680a86ac35adfc3345befecb4bb188fd5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d84"
	"8b21d4a741b0c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca2a3e7a7d7df7b1"
	"0355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de1834f280d766"
	"7b327f6c8cd7557e12ac3a0f93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec58"
	"3e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a84e18e8f84252070c13e9f1f289b"
	"e54fbc481457778f616015e1327a02b140f1505eb309326d68378f8374595c849d84f4c333ec4423885143cb47"
	"bd71c5edae9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29a9abc3d4d8939272"
	"84c58754cce294529f8614dcd2aba991925fedc4ae74ffac6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2"
	"910900575da401fc07059f645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed43851ad7"
	"7f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa773dad38014bd2092fa755c824bb5e"
	"54c4f36ffda9fcea70b9c6e693e148c151";

static void test_xts_ieee1619_vector10(void **state)
{
	uint8_t key[XTS_KEY_SIZE], plaintext[512], expected[512], buffer[512];
	struct xts_key *xts;

	(void)state;
	from_hex(vector10_key, key, sizeof(key));
	from_hex(vector10_ciphertext, expected, sizeof(expected));
	for (size_t i = 0; i < sizeof(plaintext); i++)
		plaintext[i] = (uint8_t)i;
	assert_int_equal(xts_key_new(key, &xts), 0);

	assert_int_equal(xts_encrypt(xts, 0xff, plaintext, buffer, sizeof(buffer)), 0);
	assert_memory_equal(buffer, expected, sizeof(expected));
	assert_int_equal(xts_decrypt(xts, 0xff, buffer, buffer, sizeof(buffer)), 0);
	assert_memory_equal(buffer, plaintext, sizeof(plaintext));

	/* The multi-unit path gives unit n the tweak first + n. */
	uint8_t two_units[1024];
	memcpy(two_units, plaintext, 512);
	memcpy(two_units + 512, plaintext, 512);
	assert_int_equal(xts_encrypt_units(xts, 0xfe, 512, two_units, two_units, 1024), 0);
	assert_memory_equal(two_units + 512, expected, 512);
	assert_memory_not_equal(two_units, expected, 512);
	xts_key_free(xts);
}

static void test_xts_ciphertext_stealing_round_trip(void **state)
{
	uint8_t key[XTS_KEY_SIZE], plaintext[100], buffer[100], other[100];
	struct xts_key *xts;

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(plaintext); i++)
		plaintext[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(xts_key_new(key, &xts), 0);
	for (size_t len = XTS_MIN_UNIT; len <= sizeof(plaintext); len++) {
		assert_int_equal(xts_encrypt(xts, 9, plaintext, buffer, len), 0);
		assert_memory_not_equal(buffer, plaintext, len);
		/* A different tweak gives a different ciphertext. */
		assert_int_equal(xts_encrypt(xts, 10, plaintext, other, len), 0);
		assert_memory_not_equal(buffer, other, len);
		assert_int_equal(xts_decrypt(xts, 9, buffer, buffer, len), 0);
		assert_memory_equal(buffer, plaintext, len);
	}
	assert_int_equal(xts_encrypt(xts, 9, plaintext, buffer, XTS_MIN_UNIT - 1), -EINVAL);
	xts_key_free(xts);
}

static void test_xts_rejects_equal_key_halves(void **state)
{
	uint8_t key[XTS_KEY_SIZE];
	struct xts_key *xts = NULL;

	(void)state;
	memset(key, 0x42, sizeof(key));
	assert_int_equal(xts_key_new(key, &xts), -EINVAL);
	assert_null(xts);
}

struct thread_job {
	struct xts_key *key;
	int failures;
};

static void *encrypt_many(void *arg)
{
	struct thread_job *job = arg;
	uint8_t plaintext[4096], buffer[4096];

	for (int round = 0; round < 500; round++) {
		for (size_t i = 0; i < sizeof(plaintext); i++)
			plaintext[i] = (uint8_t)(i + (size_t)round);
		if (xts_encrypt(job->key, (uint64_t)round, plaintext, buffer, sizeof(buffer)) ||
		    xts_decrypt(job->key, (uint64_t)round, buffer, buffer, sizeof(buffer)) ||
		    memcmp(buffer, plaintext, sizeof(buffer)) != 0)
			job->failures++;
	}
	return NULL;
}

/* One key used from many threads at once: each borrows its own context from the pool. */
static void test_xts_shared_key_across_threads(void **state)
{
	uint8_t key[XTS_KEY_SIZE];
	struct thread_job jobs[8];
	pthread_t threads[8];

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(255 - i);
	struct xts_key *xts;
	assert_int_equal(xts_key_new(key, &xts), 0);
	for (int i = 0; i < 8; i++) {
		jobs[i] = (struct thread_job){ xts, 0 };
		pthread_create(&threads[i], NULL, encrypt_many, &jobs[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(jobs[i].failures, 0);
	}
	xts_key_free(xts);
}

static void test_gcm_detects_every_bit_flip(void **state)
{
	uint8_t key[AES256_KEY_SIZE] = { 1 }, nonce[GCM_NONCE_SIZE] = { 2 };
	uint8_t aad[20] = "associated data....", plaintext[64], ciphertext[64], tag[16], out[64];

	(void)state;
	memset(plaintext, 0xab, sizeof(plaintext));
	assert_int_equal(crypto_gcm_seal(key, nonce, aad, sizeof(aad), plaintext, 64, ciphertext,
					 tag), 0);
	assert_int_equal(crypto_gcm_open(key, nonce, aad, sizeof(aad), ciphertext, 64, tag, out), 0);
	assert_memory_equal(out, plaintext, 64);
	for (size_t bit = 0; bit < 64 * 8; bit++) {
		ciphertext[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(crypto_gcm_open(key, nonce, aad, sizeof(aad), ciphertext, 64, tag, out),
				 -EBADMSG);
		ciphertext[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < sizeof(aad) * 8; bit++) {
		aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(crypto_gcm_open(key, nonce, aad, sizeof(aad), ciphertext, 64, tag, out),
				 -EBADMSG);
		aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	tag[15] ^= 1;
	assert_int_equal(crypto_gcm_open(key, nonce, aad, sizeof(aad), ciphertext, 64, tag, out),
			 -EBADMSG);
}

static void test_hkdf_rfc5869_case3(void **state)
{
	/* RFC 5869 A.3: IKM = 0x0b * 22, no salt, no info, L = 42. */
	uint8_t ikm[22], out[42], expected[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	from_hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		 "9d201395faa4b61a96c8",
		 expected, sizeof(expected));
	assert_int_equal(crypto_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, "", out, sizeof(out)), 0);
	assert_memory_equal(out, expected, sizeof(expected));
}

static void test_scrypt_rfc7914(void **state)
{
	/* RFC 7914 section 12, second vector: "password", "NaCl", N=1024, r=8, p=16, 64 bytes. */
	uint8_t out[64], expected[64];

	(void)state;
	from_hex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
		 "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
		 expected, sizeof(expected));
	assert_int_equal(crypto_scrypt("password", 8, (const uint8_t *)"NaCl", 4, 10, 8, 16, out,
				       sizeof(out)), 0);
	assert_memory_equal(out, expected, sizeof(expected));
	assert_int_equal(crypto_scrypt("password", 8, (const uint8_t *)"NaCl", 4, 0, 8, 16, out,
				       sizeof(out)), -EINVAL);
}

static void test_secure_memory(void **state)
{
	uint8_t *key = secure_alloc(64);

	(void)state;
	assert_non_null(key);
	for (size_t i = 0; i < 64; i++)
		assert_int_equal(key[i], 0);
	memset(key, 0x77, 64);
	assert_true(secure_equal(key, key, 64));
	secure_free(key);
	secure_free(NULL);
	assert_null(secure_alloc(0));
}

/* Every byte of the range, at any alignment and length, and nothing on either side of it. */
static void test_secure_wipe_clears_exactly_the_range(void **state)
{
	static uint8_t buffer[3 * 4096 + 64];

	(void)state;
	for (size_t start = 0; start < 17; start += 5) {
		for (size_t length = 0; length < 2 * 4096 + 40; length += 4093) {
			memset(buffer, 0xa5, sizeof(buffer));
			secure_wipe(buffer + 8 + start, length);
			for (size_t i = 0; i < sizeof(buffer); i++) {
				bool inside = i >= 8 + start && i < 8 + start + length;

				assert_int_equal(buffer[i], inside ? 0 : 0xa5);
			}
		}
	}
	secure_wipe(NULL, 0);
}

static void test_random_bytes_differ(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	assert_int_equal(crypto_random_bytes(a, sizeof(a)), 0);
	assert_int_equal(crypto_random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xts_ieee1619_vector10),
		cmocka_unit_test(test_xts_ciphertext_stealing_round_trip),
		cmocka_unit_test(test_xts_rejects_equal_key_halves),
		cmocka_unit_test(test_xts_shared_key_across_threads),
		cmocka_unit_test(test_gcm_detects_every_bit_flip),
		cmocka_unit_test(test_hkdf_rfc5869_case3),
		cmocka_unit_test(test_scrypt_rfc7914),
		cmocka_unit_test(test_secure_memory),
		cmocka_unit_test(test_secure_wipe_clears_exactly_the_range),
		cmocka_unit_test(test_random_bytes_differ),
	};
	return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
