/*
 * Unit tests for the on-disk format (docs/FORMAT.md): the known-answer vectors printed in the
 * spec, an independent check of the DEK seal with OpenSSL's EVP API called directly, detection of
 * every single-bit flip and every truncation of a header copy, fallback to the other copy when
 * one is torn, the refusal of a newer format, holes, short tails, the config record, and which
 * pairs of header copies a data rekey can leave side by side (header_copies_check).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <xxhash.h>

#include "fs/format.h"
#include "fs/format_testing.h"
#include "util/util.h"

static void from_hex(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(strlen(hex), 2 * len);
	for (size_t i = 0; i < len; i++) {
		unsigned value;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &value), 1);
		out[i] = (uint8_t)value;
	}
}

/* The inputs of docs/FORMAT.md's vectors. */
struct vector_inputs {
	uint8_t mek[MASTER_KEY_SIZE], key_id[16], file_id[16], dek[DEK_SIZE], nonce[12];
};

static void vector_inputs_fill(struct vector_inputs *in)
{
	for (int i = 0; i < 32; i++)
		in->mek[i] = (uint8_t)i;
	for (int i = 0; i < 16; i++) {
		in->key_id[i] = (uint8_t)(0xa0 + i);
		in->file_id[i] = (uint8_t)(0xb0 + i);
	}
	for (int i = 0; i < 64; i++)
		in->dek[i] = (uint8_t)(0x40 + i);
	for (int i = 0; i < 12; i++)
		in->nonce[i] = (uint8_t)(0xc0 + i);
}

static void vector_header(const struct vector_inputs *in, uint8_t copy[HEADER_COPY_SIZE])
{
	struct file_header header;

	memset(&header, 0, sizeof(header));
	header.version = HEADER_FORMAT_VERSION;
	header.cipher_suite = CIPHER_SUITE_AES256_XTS;
	header.sequence = 1;
	header.unit_size = TDEFS_BLOCK_SIZE;
	memcpy(header.file_id, in->file_id, 16);
	assert_int_equal(header_seal_with_nonce(&header, in->mek, in->key_id, in->dek, 1, in->nonce),
			 0);
	assert_int_equal(header_copy_encode(&header, copy), 0);
}

static void test_header_known_answer(void **state)
{
	struct vector_inputs in;
	uint8_t copy[HEADER_COPY_SIZE], expected[64];

	(void)state;
	vector_inputs_fill(&in);
	vector_header(&in, copy);
	assert_memory_equal(copy, "TDEFSHDR\x01\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00", 20);
	assert_memory_equal(copy + HEADER_OFFSET_FILE_ID, in.file_id, 16);
	assert_memory_equal(copy + HEADER_OFFSET_KEY_ID, in.key_id, 16);
	assert_memory_equal(copy + HEADER_OFFSET_UNIT_SIZE, "\x00\x10\x00\x00\x40\x00\x00\x00", 8);
	assert_memory_equal(copy + HEADER_OFFSET_NONCE, in.nonce, 12);
	from_hex("be6fd0e277f16b2fbb76e5c2234c35b424e35d73a01bc2527be1b1f9613c6384"
		 "54850adf7eb5998efdf32acc9e82c107916118240118c1c2f9daad6d27b231c9",
		 expected, 64);
	assert_memory_equal(copy + HEADER_OFFSET_WRAPPED_KEYS, expected, 64);
	from_hex("013aeb90f48152747443b8bcfba1a137", expected, 16);
	assert_memory_equal(copy + HEADER_OFFSET_TAG, expected, 16);
	from_hex("2412b33a7ca880bf", expected, 8);
	assert_memory_equal(copy + HEADER_OFFSET_CHECKSUM, expected, 8);
}

/* Unwrap the vector's DEK with OpenSSL directly, following docs/FORMAT.md and nothing else. */
static void test_header_seal_matches_independent_openssl(void **state)
{
	struct vector_inputs in;
	uint8_t copy[HEADER_COPY_SIZE], aad[HEADER_COPY_SIZE], wrap_key[32], dek[64];
	EVP_PKEY_CTX *kdf;
	size_t wrap_key_len = sizeof(wrap_key);
	EVP_CIPHER_CTX *gcm;
	int len;

	(void)state;
	vector_inputs_fill(&in);
	vector_header(&in, copy);

	kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	assert_int_equal(EVP_PKEY_derive_init(kdf), 1);
	assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(kdf, in.mek, 32), 1);
	assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)"tdefs v1 dek wrap",
						     17), 1);
	assert_int_equal(EVP_PKEY_derive(kdf, wrap_key, &wrap_key_len), 1);
	EVP_PKEY_CTX_free(kdf);

	memcpy(aad, copy, sizeof(aad));
	memset(aad + HEADER_OFFSET_WRAPPED_KEYS, 0, HEADER_WRAPPED_KEYS_SIZE);
	memset(aad + HEADER_OFFSET_TAG, 0, GCM_TAG_SIZE);
	memset(aad + HEADER_OFFSET_CHECKSUM, 0, 8);

	gcm = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_DecryptInit_ex(gcm, EVP_aes_256_gcm(), NULL, wrap_key,
					    copy + HEADER_OFFSET_NONCE), 1);
	assert_int_equal(EVP_DecryptUpdate(gcm, NULL, &len, aad, sizeof(aad)), 1);
	assert_int_equal(EVP_DecryptUpdate(gcm, dek, &len, copy + HEADER_OFFSET_WRAPPED_KEYS, 64), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, 16,
					     copy + HEADER_OFFSET_TAG), 1);
	assert_int_equal(EVP_DecryptFinal_ex(gcm, dek + len, &len), 1);
	EVP_CIPHER_CTX_free(gcm);
	assert_memory_equal(dek, in.dek, 64);

	/* And the project's own unseal agrees. */
	struct file_header header;
	uint8_t unsealed[HEADER_WRAPPED_KEYS_SIZE];
	assert_int_equal(header_copy_decode(copy, &header), 0);
	assert_int_equal(header_unseal(&header, in.mek, unsealed), 0);
	assert_memory_equal(unsealed, in.dek, 64);
}

static void test_block_known_answers(void **state)
{
	struct vector_inputs in;
	struct xts_key *key;
	uint8_t block[TDEFS_BLOCK_SIZE], expected[100], digest[32];

	(void)state;
	vector_inputs_fill(&in);
	assert_int_equal(xts_key_new(in.dek, &key), 0);
	for (int i = 0; i < 4096; i++)
		block[i] = (uint8_t)i;
	assert_int_equal(block_encrypt(key, 0, block, block, 4096), 0);
	from_hex("7c8fe1aaf9988749b0d94b9ca14a6a4dd78e7cc0712d501482e27d49a696848a", expected, 32);
	assert_memory_equal(block, expected, 32);
	assert_int_equal(crypto_sha256(block, 4096, digest), 0);
	from_hex("e33c796a0c7b5abc6d3ccefc3b673a7425b8a10e84831542583c8ee781861cbb", expected, 32);
	assert_memory_equal(digest, expected, 32);

	for (int i = 0; i < 100; i++)
		block[i] = (uint8_t)i;
	assert_int_equal(block_encrypt(key, 2, block, block, 100), 0);
	from_hex("72bbe77d919dd44b29946b765ac1b5c592c685d0af9b61a355858b3d93bd0f0a2ad7bb19a002a404"
		 "114c5d66c7f84cb8988e7154853d5acbb0eae04bd1afafdffe9512e06025205400c6a39407bf2445"
		 "3dafd33719f936534129c0b2d5214d8a86492097",
		 expected, 100);
	assert_memory_equal(block, expected, 100);

	for (int i = 0; i < 5; i++)
		block[i] = (uint8_t)i;
	assert_int_equal(block_encrypt(key, 3, block, block, 5), 0);
	from_hex("66215b72f1", expected, 5);
	assert_memory_equal(block, expected, 5);
	assert_int_equal(block_decrypt(key, 3, block, block, 5), 0);
	assert_memory_equal(block, "\x00\x01\x02\x03\x04", 5);
	xts_key_free(key);
}

static void test_block_round_trip_every_length(void **state)
{
	struct vector_inputs in;
	struct xts_key *key;
	uint8_t plain[TDEFS_BLOCK_SIZE], buffer[TDEFS_BLOCK_SIZE];

	(void)state;
	vector_inputs_fill(&in);
	assert_int_equal(xts_key_new(in.dek, &key), 0);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 31 + 7);
	for (size_t len = 1; len <= TDEFS_BLOCK_SIZE; len += (len < 64 ? 1 : 509)) {
		assert_int_equal(block_encrypt(key, 17, plain, buffer, len), 0);
		assert_memory_not_equal(buffer, plain, len);
		assert_int_equal(block_decrypt(key, 17, buffer, buffer, len), 0);
		assert_memory_equal(buffer, plain, len);
	}
	/* An all-zero ciphertext block is a hole and reads as zeros. */
	memset(buffer, 0, sizeof(buffer));
	assert_int_equal(block_decrypt(key, 5, buffer, plain, TDEFS_BLOCK_SIZE), 0);
	assert_true(buffer_is_zero(plain, TDEFS_BLOCK_SIZE));
	/* Writing zeros through encryption does not produce a zero block. */
	assert_int_equal(block_encrypt(key, 5, buffer, buffer, TDEFS_BLOCK_SIZE), 0);
	assert_false(buffer_is_zero(buffer, TDEFS_BLOCK_SIZE));
	/* The many-block path gives the same as block by block, holes included. */
	uint8_t many[4 * TDEFS_BLOCK_SIZE], one[TDEFS_BLOCK_SIZE];
	for (size_t i = 0; i < sizeof(many); i++)
		many[i] = (uint8_t)(i >> 3);
	assert_int_equal(blocks_encrypt(key, 40, many, many, sizeof(many)), 0);
	memset(many + 2 * TDEFS_BLOCK_SIZE, 0, TDEFS_BLOCK_SIZE);
	memcpy(one, many + TDEFS_BLOCK_SIZE, TDEFS_BLOCK_SIZE);
	assert_int_equal(blocks_decrypt(key, 40, many, many, sizeof(many)), 0);
	assert_int_equal(block_decrypt(key, 41, one, one, TDEFS_BLOCK_SIZE), 0);
	assert_memory_equal(one, many + TDEFS_BLOCK_SIZE, TDEFS_BLOCK_SIZE);
	assert_true(buffer_is_zero(many + 2 * TDEFS_BLOCK_SIZE, TDEFS_BLOCK_SIZE));
	for (size_t i = 3 * TDEFS_BLOCK_SIZE; i < sizeof(many); i++)
		assert_int_equal(many[i], (uint8_t)(i >> 3));
	xts_key_free(key);
}

/*
 * Every 1-byte tail value round-trips, and only the zero byte is stored as zero: a plain XOR
 * would store zero for one value in 256, which would then read back as a hole.
 */
static void test_short_tail_zero_means_hole(void **state)
{
	struct vector_inputs in;
	struct xts_key *key;
	unsigned zero_ciphertexts = 0;

	(void)state;
	vector_inputs_fill(&in);
	assert_int_equal(xts_key_new(in.dek, &key), 0);
	for (uint64_t block = 0; block < 64; block++) {
		for (unsigned value = 0; value < 256; value++) {
			uint8_t plain = (uint8_t)value, cipher, back;
			assert_int_equal(block_encrypt(key, block, &plain, &cipher, 1), 0);
			assert_int_equal(block_decrypt(key, block, &cipher, &back, 1), 0);
			assert_int_equal(back, plain);
			if (cipher == 0) {
				zero_ciphertexts++;
				assert_int_equal(plain, 0);
			}
		}
	}
	assert_int_equal(zero_ciphertexts, 64);
	xts_key_free(key);
}

static void build_image(uint8_t image[TDEFS_HEADER_SIZE], struct file_header *header,
			struct vector_inputs *in)
{
	vector_inputs_fill(in);
	assert_int_equal(header_create(header, in->mek, in->key_id, in->dek), 0);
	assert_int_equal(header_build_image(header, in->mek, in->dek, image), 0);
}

static void test_every_bit_flip_of_a_copy_is_detected(void **state)
{
	struct vector_inputs in;
	struct file_header header, decoded;
	uint8_t image[TDEFS_HEADER_SIZE];

	(void)state;
	build_image(image, &header, &in);
	for (size_t bit = 0; bit < HEADER_COPY_SIZE * 8; bit++) {
		image[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = header_copy_decode(image, &decoded);
		/* A flip is caught by the checksum, or failing that by the seal. */
		if (ret == 0) {
			uint8_t deks[HEADER_WRAPPED_KEYS_SIZE];
			assert_int_equal(header_unseal(&decoded, in.mek, deks), FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION));
		} else {
			assert_true(ret == FORMAT_ERROR(FORMAT_ERR_DAMAGED) || ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT));
		}
		image[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(header_copy_decode(image, &decoded), 0);
}

static void test_torn_copy_falls_back_to_the_other(void **state)
{
	struct vector_inputs in;
	struct file_header header, chosen;
	uint8_t image[TDEFS_HEADER_SIZE], deks[HEADER_WRAPPED_KEYS_SIZE];
	unsigned slot;

	(void)state;
	build_image(image, &header, &in);
	assert_int_equal(header_select(image, sizeof(image), &chosen, &slot), 0);
	assert_int_equal(slot, 1); /* the newer sequence */
	assert_int_equal(chosen.sequence, 2);

	/* Tear copy 1 at every byte boundary: copy 0 takes over and still unseals. */
	for (size_t cut = 0; cut < HEADER_COPY_SIZE; cut += 7) {
		uint8_t torn[TDEFS_HEADER_SIZE];
		memcpy(torn, image, sizeof(torn));
		memset(torn + HEADER_COPY_SIZE + cut, 0, HEADER_COPY_SIZE - cut);
		assert_int_equal(header_select(torn, sizeof(torn), &chosen, &slot), 0);
		assert_int_equal(slot, 0);
		assert_int_equal(header_unseal(&chosen, in.mek, deks), 0);
		assert_memory_equal(deks, in.dek, DEK_SIZE);
	}
	/* Tear copy 0 instead: copy 1 is used. */
	image[100] ^= 0x10;
	assert_int_equal(header_select(image, sizeof(image), &chosen, &slot), 0);
	assert_int_equal(slot, 1);
	/* Both damaged: refused. */
	image[HEADER_COPY_SIZE + 100] ^= 0x10;
	assert_int_equal(header_select(image, sizeof(image), &chosen, &slot), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
}

static void test_every_truncation_is_detected(void **state)
{
	struct vector_inputs in;
	struct file_header header, chosen;
	uint8_t image[TDEFS_HEADER_SIZE];
	unsigned slot;

	(void)state;
	build_image(image, &header, &in);
	for (size_t len = 0; len < TDEFS_HEADER_SIZE; len++) {
		int ret = header_select(image, len, &chosen, &slot);
		if (len < HEADER_COPY_SIZE)
			assert_int_equal(ret, FORMAT_ERROR(FORMAT_ERR_DAMAGED));
		else
			assert_true(ret == 0 && slot == 0); /* only the first copy is whole */
	}
}

static void test_newer_version_is_refused(void **state)
{
	struct vector_inputs in;
	struct file_header header, chosen;
	uint8_t image[TDEFS_HEADER_SIZE];
	unsigned slot;

	(void)state;
	build_image(image, &header, &in);
	header.version = HEADER_FORMAT_VERSION + 1;
	/* Encode without the version check: a copy as a newer writer would leave it. */
	assert_int_equal(header_copy_encode(&header, image + HEADER_COPY_SIZE), 0);
	assert_int_equal(header_select(image, sizeof(image), &chosen, &slot), FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT));
}

static void test_spliced_fields_fail_the_seal(void **state)
{
	struct vector_inputs in;
	struct file_header first, second;
	uint8_t image_a[TDEFS_HEADER_SIZE], image_b[TDEFS_HEADER_SIZE];
	uint8_t deks[HEADER_WRAPPED_KEYS_SIZE];

	(void)state;
	build_image(image_a, &first, &in);
	build_image(image_b, &second, &in);
	/* The sealed DEK of file B moved into file A's header (different file ID). */
	memcpy(first.nonce, second.nonce, GCM_NONCE_SIZE);
	memcpy(first.wrapped_keys, second.wrapped_keys, sizeof(first.wrapped_keys));
	memcpy(first.tag, second.tag, GCM_TAG_SIZE);
	assert_int_equal(header_unseal(&first, in.mek, deks), FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION));
	/* One copy of another file's header pasted over half of this one: refused as a whole. */
	struct file_header chosen;
	unsigned slot;
	memcpy(image_a + HEADER_COPY_SIZE, image_b + HEADER_COPY_SIZE, HEADER_COPY_SIZE);
	assert_int_equal(header_select(image_a, sizeof(image_a), &chosen, &slot), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	/* A forged field (here the sequence) with a recomputed checksum also fails. */
	second.sequence += 5;
	assert_int_equal(header_unseal(&second, in.mek, deks), FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION));
	/* A wrong master key fails. */
	build_image(image_a, &first, &in);
	in.mek[0] ^= 1;
	assert_int_equal(header_unseal(&first, in.mek, deks), FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION));
}

/*
 * A header in the middle of a data rekey: both DEKs, a watermark and a hot zone. The progress
 * fields are authenticated: a forged watermark with a recomputed checksum decodes, but its seal
 * fails, so it can never make the daemon decrypt a block under the wrong key (the lesson of
 * cryptsetup's CVE-2021-4122).
 */
static void test_rekey_progress_is_authenticated(void **state)
{
	struct vector_inputs in;
	struct file_header header, decoded;
	uint8_t copy[HEADER_COPY_SIZE], deks[2 * DEK_SIZE], unsealed[HEADER_WRAPPED_KEYS_SIZE];

	(void)state;
	vector_inputs_fill(&in);
	memcpy(deks, in.dek, DEK_SIZE);
	for (int i = 0; i < DEK_SIZE; i++)
		deks[DEK_SIZE + i] = (uint8_t)(0x90 + i);
	memset(&header, 0, sizeof(header));
	header.version = HEADER_FORMAT_VERSION;
	header.cipher_suite = CIPHER_SUITE_AES256_XTS;
	header.sequence = 9;
	header.unit_size = TDEFS_BLOCK_SIZE;
	header.flags = HEADER_FLAG_REKEY_IN_PROGRESS;
	header.watermark = 1000;
	header.hot_first = 1000;
	header.hot_count = 3;
	header.hot_old_checksums[0] = 0x1111;
	header.hot_old_checksums[1] = 0x2222;
	header.hot_old_checksums[2] = 0x3333;
	assert_int_equal(header_seal(&header, in.mek, in.key_id, deks, 2), 0);
	assert_int_equal(header_copy_encode(&header, copy), 0);
	assert_int_equal(header_copy_decode(copy, &decoded), 0);
	assert_int_equal(decoded.watermark, 1000);
	assert_int_equal(decoded.hot_count, 3);
	assert_int_equal(decoded.hot_old_checksums[2], 0x3333);
	assert_int_equal(header_unseal(&decoded, in.mek, unsealed), 0);
	assert_memory_equal(unsealed, deks, sizeof(deks));

	/* Forge the watermark and fix the checksum: decodes, does not unseal. */
	decoded.watermark = 5000;
	decoded.hot_first = 5000;
	assert_int_equal(header_copy_encode(&decoded, copy), 0);
	assert_int_equal(header_copy_decode(copy, &decoded), 0);
	assert_int_equal(header_unseal(&decoded, in.mek, unsealed), FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION));
	/* Forge a hot-zone checksum: the same. */
	assert_int_equal(header_copy_decode(copy, &decoded), 0);
	decoded.watermark = 1000;
	decoded.hot_first = 1000;
	decoded.hot_old_checksums[1] ^= 1;
	assert_int_equal(header_unseal(&decoded, in.mek, unsealed), FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION));
	/* Inconsistent progress is refused before any key is tried. */
	header.hot_first = 999;
	assert_int_equal(header_copy_encode(&header, copy), 0);
	assert_int_equal(header_copy_decode(copy, &decoded), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	header.hot_first = 1000;
	header.flags = 0;
	assert_int_equal(header_copy_encode(&header, copy), 0);
	assert_int_equal(header_copy_decode(copy, &decoded), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
}

/* A header copy in the rekey state given (watermark, hot zone of count blocks at it). */
static struct file_header rekey_step(uint64_t sequence, bool rekey, uint64_t watermark,
				     uint32_t count, uint64_t salt)
{
	struct file_header header;

	memset(&header, 0, sizeof(header));
	header.version = HEADER_FORMAT_VERSION;
	header.cipher_suite = CIPHER_SUITE_AES256_XTS;
	header.unit_size = TDEFS_BLOCK_SIZE;
	header.sequence = sequence;
	header.wrapped_length = rekey ? 2 * DEK_SIZE : DEK_SIZE;
	if (rekey) {
		header.flags = HEADER_FLAG_REKEY_IN_PROGRESS;
		header.watermark = watermark;
		header.hot_first = count ? watermark : 0;
		header.hot_count = count;
		for (uint32_t i = 0; i < count; i++)
			header.hot_old_checksums[i] = (watermark + i) * 0x9e3779b97f4a7c15u ^ salt;
	}
	return header;
}

static bool copies_agree(const struct file_header *newer, const uint8_t *newer_deks,
			 const struct file_header *older, const uint8_t *older_deks)
{
	const char *reason;
	int ret = header_copies_check(newer, newer_deks, older, older_deks, &reason);

	assert_true((ret == 0) == (reason == NULL));
	assert_true(ret == 0 || ret == FORMAT_ERROR(FORMAT_ERR_COPIES_DISAGREE));
	return ret == 0;
}

/*
 * Every rekey step is written to both header copies in turn, so the copies hold one step, or two
 * consecutive steps. The whole life of a rekey of a 500-block file (begin, three chunks, a crash
 * recovery, finish) is walked: each step beside the one before it agrees, and each step beside
 * one two steps back (a pair no crash leaves) does not, nor do copies with another rekey's keys.
 */
static void test_rekey_copies_one_step_apart(void **state)
{
	uint8_t old_dek[DEK_SIZE], pair[2 * DEK_SIZE], other_pair[2 * DEK_SIZE];
	struct file_header steps[8];
	const uint8_t *keys[8];
	unsigned n = 0;

	(void)state;
	memset(old_dek, 0x11, sizeof(old_dek));
	memcpy(pair, old_dek, DEK_SIZE);
	memset(pair + DEK_SIZE, 0x22, DEK_SIZE);
	memcpy(other_pair, old_dek, DEK_SIZE);
	memset(other_pair + DEK_SIZE, 0x33, DEK_SIZE);
	steps[n] = rekey_step(2, false, 0, 0, 0), keys[n++] = old_dek;       /* before */
	steps[n] = rekey_step(4, true, 0, 0, 0), keys[n++] = pair;           /* begin */
	steps[n] = rekey_step(6, true, 0, 220, 1), keys[n++] = pair;         /* chunk 1 */
	steps[n] = rekey_step(8, true, 220, 220, 2), keys[n++] = pair;       /* chunk 2 */
	steps[n] = rekey_step(10, true, 440, 60, 3), keys[n++] = pair;       /* chunk 3 */
	steps[n] = rekey_step(12, true, 500, 0, 0), keys[n++] = pair;        /* recovery */
	steps[n] = rekey_step(14, false, 0, 0, 0), keys[n++] = pair + DEK_SIZE; /* finish */
	for (unsigned k = 0; k < n; k++) {
		struct file_header second = steps[k];

		/* Both copies of one step (the first write's copy has the lower sequence). */
		second.sequence++;
		assert_true(copies_agree(&second, keys[k], &steps[k], keys[k]));
		if (k >= 1) {
			assert_true(copies_agree(&steps[k], keys[k], &steps[k - 1], keys[k - 1]));
			/* Without the older copy's keys at hand, only the progress is compared. */
			assert_true(copies_agree(&steps[k], keys[k], &steps[k - 1], NULL));
		}
		if (k >= 2 && (steps[k].flags & HEADER_FLAG_REKEY_IN_PROGRESS) &&
		    (steps[k - 2].flags & HEADER_FLAG_REKEY_IN_PROGRESS))
			assert_false(copies_agree(&steps[k], keys[k], &steps[k - 2], keys[k - 2]));
		/* A rollback: the older copy ahead of the newer one. */
		if (k >= 2 && k + 1 < n && (steps[k].flags & HEADER_FLAG_REKEY_IN_PROGRESS))
			assert_false(copies_agree(&steps[k - 1], keys[k - 1], &steps[k], keys[k]));
	}
	/* Begin beside "before" with the progress of a later step: no crash leaves that. */
	assert_false(copies_agree(&steps[3], pair, &steps[0], old_dek));
	/* Keys of another rekey: begin, chunk and finish each refuse them. */
	assert_false(copies_agree(&steps[3], other_pair, &steps[2], pair));
	/* Without one copy's keys at hand they cannot be compared; the progress still is. */
	assert_true(copies_agree(&steps[3], NULL, &steps[2], pair));
	assert_false(copies_agree(&steps[4], NULL, &steps[2], pair));
	assert_false(copies_agree(&steps[1], other_pair + DEK_SIZE, &steps[0], old_dek));
	assert_false(copies_agree(&steps[6], other_pair + DEK_SIZE, &steps[5], pair));
	/* The finish must keep the new DEK, not the old one. */
	assert_false(copies_agree(&steps[6], old_dek, &steps[5], pair));
	/* The same chunk recorded twice with other checksums, or one sequence, two progresses. */
	struct file_header again = rekey_step(9, true, 220, 220, 99);
	assert_false(copies_agree(&again, pair, &steps[3], pair));
	again = rekey_step(8, true, 440, 60, 3);
	assert_false(copies_agree(&again, pair, &steps[3], pair));
	/* Outside a rekey the question does not arise: copies always agree here. */
	assert_true(copies_agree(&steps[0], old_dek, &steps[0], pair + DEK_SIZE));
}

static void test_config_round_trip_and_damage(void **state)
{
	struct backing_config config = { 0 }, decoded;
	uint8_t encoded[CONFIG_FILE_SIZE];

	(void)state;
	config.version = CONFIG_FORMAT_VERSION;
	config.cipher_suite = CIPHER_SUITE_AES256_XTS;
	config.block_size = TDEFS_BLOCK_SIZE;
	memset(config.wallet_id, 0x11, 16);
	memset(config.directory_id, 0x22, 16);
	strcpy(config.container, "default");
	config.created_time = 1700000000;
	assert_int_equal(config_encode(&config, encoded), 0);
	assert_int_equal(config_decode(encoded, sizeof(encoded), &decoded), 0);
	assert_memory_equal(decoded.wallet_id, config.wallet_id, 16);
	assert_string_equal(decoded.container, "default");
	for (size_t bit = 0; bit < sizeof(encoded) * 8; bit++) {
		encoded[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = config_decode(encoded, sizeof(encoded), &decoded);
		assert_true(ret == FORMAT_ERROR(FORMAT_ERR_DAMAGED) || ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT));
		encoded[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t len = 0; len < sizeof(encoded); len++)
		assert_int_equal(config_decode(encoded, len, &decoded), FORMAT_ERROR(FORMAT_ERR_DAMAGED));
}

/*
 * Container names: up to 32 bytes stay in version 1 (readable by a tdefs that knows only it),
 * 33 to 64 take version 2, whole; 65 does not fit and is refused, never cut. A version 2
 * record holding a short name is not one tdefs writes: refused as damaged.
 */
static void test_config_container_lengths(void **state)
{
	struct backing_config config = { 0 }, decoded;
	uint8_t encoded[CONFIG_FILE_SIZE];
	static const size_t lengths[] = { 1, 31, 32, 33, 40, 63, 64 };

	(void)state;
	config.cipher_suite = CIPHER_SUITE_AES256_XTS;
	config.block_size = TDEFS_BLOCK_SIZE;
	memset(config.wallet_id, 0x11, 16);
	config.created_time = 1700000123;
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		memset(config.container, 0, sizeof(config.container));
		memset(config.container, 'a' + (int)i, lengths[i]);
		assert_int_equal(config_encode(&config, encoded), 0);
		assert_int_equal(load_le16(encoded + 8), lengths[i] <= 32 ? 1 : 2);
		assert_int_equal(config_decode(encoded, sizeof(encoded), &decoded), 0);
		assert_string_equal(decoded.container, config.container);
		assert_int_equal(decoded.created_time, 1700000123);
		assert_int_equal(decoded.version, lengths[i] <= 32 ? 1 : 2);
	}
	/* A version 1 record laid out by hand (the layout of docs/FORMAT.md) still reads. */
	memset(config.container, 0, sizeof(config.container));
	strcpy(config.container, "default");
	assert_int_equal(config_encode(&config, encoded), 0);
	assert_int_equal(load_le64(encoded + 80), 1700000123);
	assert_true(buffer_is_zero(encoded + 88, 32));
	/* The same short name under version 2: refused. */
	store_le16(encoded + 8, 2);
	store_le64(encoded + 120, XXH3_64bits(encoded, 120));
	assert_int_equal(config_decode(encoded, sizeof(encoded), &decoded),
			 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	/* Version 3 (an adopted directory) without a flag is not one tdefs writes. */
	store_le16(encoded + 8, 3);
	store_le64(encoded + 120, XXH3_64bits(encoded, 120));
	assert_int_equal(config_decode(encoded, sizeof(encoded), &decoded),
			 FORMAT_ERROR(FORMAT_ERR_DAMAGED));
	/* Version 4 is newer. */
	store_le16(encoded + 8, 4);
	store_le64(encoded + 120, XXH3_64bits(encoded, 120));
	assert_int_equal(config_decode(encoded, sizeof(encoded), &decoded),
			 FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT));
	/* 65 bytes do not fit (the struct holds 64 and a NUL: give it unterminated). */
	memset(config.container, 'z', sizeof(config.container));
	assert_int_equal(config_encode(&config, encoded), -EINVAL);
}

/* The format's meanings never collide with errno: a real EBADMSG is a system error. */
static void test_error_vocabulary(void **state)
{
	(void)state;
	for (int e = 1; e <= 4095; e++) {
		assert_int_equal(format_error_of(-e), 0);
		char expected[128]; /* strerror's text for an unknown value lives until its next call */

		snprintf(expected, sizeof(expected), "%s", strerror(e));
		assert_string_equal(format_error_message(-e), expected);
	}
	assert_int_equal(format_error_of(0), 0);
	for (int n = 1; n < FORMAT_ERR_COUNT; n++) {
		assert_int_equal(format_error_of(FORMAT_ERROR(n)), n);
		assert_true(FORMAT_ERROR(n) < -8191); /* past the keystore's range as well */
		for (int m = 1; m < n; m++)
			assert_string_not_equal(format_error_message(FORMAT_ERROR(n)),
						format_error_message(FORMAT_ERROR(m)));
	}
	assert_int_equal(format_error_of(FORMAT_ERROR(FORMAT_ERR_COUNT)), 0);
}

/* The backing root's own names: the config record and its temporary files, nothing else. */
static void test_config_reserved_names(void **state)
{
	(void)state;
	assert_true(config_reserved_name(".tdefs.conf"));
	assert_true(config_reserved_name(".tdefs.conf.tmp-Ab12Cd"));
	assert_false(config_reserved_name(".tdefs.confx"));
	assert_false(config_reserved_name(".tdefs.con"));
	assert_false(config_reserved_name("dir/.tdefs.conf"));
	assert_false(config_reserved_name("tdefs.conf"));
	assert_false(config_reserved_name(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_known_answer),
		cmocka_unit_test(test_header_seal_matches_independent_openssl),
		cmocka_unit_test(test_block_known_answers),
		cmocka_unit_test(test_block_round_trip_every_length),
		cmocka_unit_test(test_short_tail_zero_means_hole),
		cmocka_unit_test(test_every_bit_flip_of_a_copy_is_detected),
		cmocka_unit_test(test_torn_copy_falls_back_to_the_other),
		cmocka_unit_test(test_every_truncation_is_detected),
		cmocka_unit_test(test_newer_version_is_refused),
		cmocka_unit_test(test_spliced_fields_fail_the_seal),
		cmocka_unit_test(test_rekey_progress_is_authenticated),
		cmocka_unit_test(test_rekey_copies_one_step_apart),
		cmocka_unit_test(test_config_round_trip_and_damage),
		cmocka_unit_test(test_config_container_lengths),
		cmocka_unit_test(test_error_vocabulary),
		cmocka_unit_test(test_config_reserved_names),
	};
	return cmocka_run_group_tests_name("format", tests, NULL, NULL);
}
