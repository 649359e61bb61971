/*
 * tdefs-test-helper, the subcommands about keys: verify and dek decrypt a backing file with an
 * implementation independent of the daemon's data path (the header parsed here from
 * docs/FORMAT.md's offsets, the DEK unwrapped with OpenSSL's HKDF and AES-256-GCM called
 * directly, blocks decrypted with EVP AES-256-XTS; only the master key comes from the
 * project's keystore), so that a bug shared by writer and reader cannot pass. find-in-memory
 * looks for a key in a process's memory (a released file's key must be gone from the
 * daemon's). forge-wallet is what a local attacker builds to plant a wallet: an auto-login
 * wallet claiming a chosen wallet ID (anyone can learn it: it is in every wallet's clear
 * header, in .tdefs.conf and in tdekey status) with one ACTIVE master key of its own, in the
 * default container.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "crypto/crypto.h"
#include "helper.h"
#include "keystore/keystore.h"
#include "keystore/wallet.h"
#include "keystore/wallet_internal.h"
#include "util/util.h"

static uint8_t *read_whole(const char *path, size_t *len)
{
	uint8_t *data;

	if (read_small_file(path, (size_t)1 << 30, &data, len) < 0)
		return NULL;
	return data;
}

static int xts_unit(const uint8_t key[64], uint64_t tweak_value, const uint8_t *in, uint8_t *out,
		    int len, int encrypt)
{
	uint8_t tweak[16] = { 0 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int out_len, ok;

	for (int i = 0; i < 8; i++)
		tweak[i] = (uint8_t)(tweak_value >> (8 * i));
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, tweak, encrypt) == 1 &&
	     EVP_CipherUpdate(ctx, out, &out_len, in, len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* The newest header copy's DEK, unwrapped with OpenSSL directly (docs/FORMAT.md). */
static int unwrap_dek(const char *wallet, const uint8_t *backing, const char *backing_path,
		      uint8_t dek[64])
{
	char error[KEYSTORE_ERROR_SIZE];
	struct keyring *ring;
	const uint8_t *copy = NULL, *mek;
	uint8_t wrap_key[32], aad[HEADER_COPY_SIZE];
	size_t wrap_key_len = sizeof(wrap_key);
	uint64_t best_sequence = 0;
	int len;

	for (int i = 0; i < 2; i++) {
		const uint8_t *candidate = backing + i * HEADER_COPY_SIZE;
		/* Newest copy by sequence; the checksum is the project's XXH3, trusted here. */
		if (memcmp(candidate, "TDEFSHDR", 8) == 0 && load_le64(candidate + 16) > best_sequence) {
			best_sequence = load_le64(candidate + 16);
			copy = candidate;
		}
	}
	if (!copy)
		return helper_fail("no header copy", backing_path);
	if (keystore_open_for_mount(wallet, -1, &ring, error) < 0)
		return helper_fail(error, NULL);
	mek = keyring_find(ring, copy + 40);
	if (!mek)
		return helper_fail("the wallet lacks the header's master key", NULL);

	EVP_PKEY_CTX *kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (EVP_PKEY_derive_init(kdf) != 1 || EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set1_hkdf_key(kdf, mek, 32) != 1 ||
	    EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)"tdefs v1 dek wrap", 17) != 1 ||
	    EVP_PKEY_derive(kdf, wrap_key, &wrap_key_len) != 1)
		return helper_fail("HKDF failed", NULL);
	EVP_PKEY_CTX_free(kdf);
	keyring_free(ring);

	memcpy(aad, copy, sizeof(aad));
	memset(aad + 80, 0, 128);
	memset(aad + 208, 0, 16);
	memset(aad + 2040, 0, 8);
	EVP_CIPHER_CTX *gcm = EVP_CIPHER_CTX_new();
	if (EVP_DecryptInit_ex(gcm, EVP_aes_256_gcm(), NULL, wrap_key, copy + 64) != 1 ||
	    EVP_DecryptUpdate(gcm, NULL, &len, aad, sizeof(aad)) != 1 ||
	    EVP_DecryptUpdate(gcm, dek, &len, copy + 80, 64) != 1 ||
	    EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, 16, (void *)(copy + 208)) != 1 ||
	    EVP_DecryptFinal_ex(gcm, dek + len, &len) != 1)
		return helper_fail("the DEK does not unwrap", backing_path);
	EVP_CIPHER_CTX_free(gcm);
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	const char *wallet = argv[0], *backing_path = argv[1], *plain_path = argv[2];
	size_t backing_len, plain_len;
	uint8_t *backing = read_whole(backing_path, &backing_len);
	uint8_t *plain = read_whole(plain_path, &plain_len);
	uint8_t dek[64];

	if (!backing || !plain)
		return helper_fail("cannot read the input files", NULL);
	if (backing_len < TDEFS_HEADER_SIZE || backing_len - TDEFS_HEADER_SIZE != plain_len)
		return helper_fail("backing size is not plaintext size + 4096", backing_path);
	if (unwrap_dek(wallet, backing, backing_path, dek))
		return 1;

	for (size_t offset = 0; offset < plain_len; offset += TDEFS_BLOCK_SIZE) {
		size_t block_len = plain_len - offset < TDEFS_BLOCK_SIZE ? plain_len - offset
									 : TDEFS_BLOCK_SIZE;
		const uint8_t *cipher = backing + TDEFS_HEADER_SIZE + offset;
		uint64_t block = offset / TDEFS_BLOCK_SIZE;
		uint8_t out[TDEFS_BLOCK_SIZE];
		size_t zero = 0;

		while (zero < block_len && cipher[zero] == 0)
			zero++;
		if (zero == block_len) {
			memset(out, 0, block_len);
		} else if (block_len >= 16) {
			if (xts_unit(dek, block, cipher, out, (int)block_len, 0) < 0)
				return helper_fail("XTS failed", NULL);
		} else {
			uint8_t keystream[16] = { 0 };
			if (xts_unit(dek, block | (UINT64_C(1) << 63), keystream, keystream, 16, 1) < 0)
				return helper_fail("XTS failed", NULL);
			bool fixed = memcmp(cipher, keystream, block_len) == 0;
			for (size_t i = 0; i < block_len; i++)
				out[i] = fixed ? cipher[i] : cipher[i] ^ keystream[i];
		}
		if (memcmp(out, plain + offset, block_len) != 0) {
			char where[64];

			snprintf(where, sizeof(where), "block %llu decrypts to other bytes",
				 (unsigned long long)block);
			return helper_fail(backing_path, where);
		}
	}
	printf("verified %s: %zu bytes, %zu blocks\n", backing_path, plain_len,
	       (plain_len + TDEFS_BLOCK_SIZE - 1) / TDEFS_BLOCK_SIZE);
	free(backing);
	free(plain);
	return 0;
}

int cmd_dek(int argc, char **argv)
{
	const char *wallet = argv[0], *backing_path = argv[1];
	size_t backing_len;
	uint8_t *backing = read_whole(backing_path, &backing_len);
	uint8_t dek[64];

	if (!backing || backing_len < TDEFS_HEADER_SIZE)
		return helper_fail("cannot read the header", backing_path);
	if (unwrap_dek(wallet, backing, backing_path, dek))
		return 1;
	for (int i = 0; i < 64; i++)
		printf("%02x", dek[i]);
	printf("\n");
	free(backing);
	return 0;
}

int cmd_find_in_memory(int argc, char **argv)
{
	const char *pid = argv[0], *hex = argv[1];
	char maps_path[64], mem_path[64], line[512];
	uint8_t needle[64];
	size_t needle_len = strlen(hex) / 2;
	bool found = false;
	FILE *maps;
	int mem;

	if (needle_len == 0 || needle_len > sizeof(needle))
		return helper_fail("bad needle", hex);
	for (size_t i = 0; i < needle_len; i++) {
		unsigned value;
		if (sscanf(hex + 2 * i, "%2x", &value) != 1)
			return helper_fail("bad needle", hex);
		needle[i] = (uint8_t)value;
	}
	snprintf(maps_path, sizeof(maps_path), "/proc/%s/maps", pid);
	snprintf(mem_path, sizeof(mem_path), "/proc/%s/mem", pid);
	maps = fopen(maps_path, "r");
	mem = open(mem_path, O_RDONLY);
	if (!maps || mem < 0)
		return helper_fail("cannot read the memory of process", pid);
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		char perms[8];

		/*
		 * Mappings over 1 GiB are reservations, not data (AddressSanitizer's shadow memory
		 * runs to terabytes); the daemon's heaps and stacks are far smaller.
		 */
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vvar]") || strstr(line, "[vsyscall]") || end - start > (1ul << 30))
			continue;
		for (unsigned long at = start; at < end && !found;) {
			static uint8_t chunk[1 << 20];
			size_t want = end - at < sizeof(chunk) ? end - at : sizeof(chunk);
			ssize_t got = pread(mem, chunk, want, (off_t)at);

			if (got <= 0)
				break;
			if (memmem(chunk, (size_t)got, needle, needle_len))
				found = true;
			/* Overlap so a needle across two chunks is not missed. */
			at += (size_t)got > needle_len ? (size_t)got - needle_len : (size_t)got;
		}
	}
	fclose(maps);
	close(mem);
	return found ? 0 : 1;
}

int cmd_forge_wallet(int argc, char **argv)
{
	char error[KEYSTORE_ERROR_SIZE] = "", key_text[KEY_ID_TEXT_SIZE];
	uint8_t wallet_id[KEY_ID_SIZE], *bytes;
	const struct mek_record *record;
	struct keyring *ring;
	size_t index, len;
	int ret;

	if (key_id_parse(argv[0], wallet_id) < 0)
		return helper_fail("bad wallet ID (32 hex digits)", argv[0]);
	ret = keyring_new(wallet_id, WALLET_DEFAULT_CONTAINER, &ring);
	if (ret == 0)
		ret = keyring_generate(ring, "forged", true, (int64_t)time(NULL), &index);
	if (ret == 0) {
		keyring_set_generation(ring, 1000);
		ret = wallet_encode_keys(WALLET_KIND_AUTOLOGIN, ring, NULL, &bytes, &len, error);
	}
	if (ret < 0)
		return helper_fail(error[0] ? error : strerror(-ret), NULL);
	ret = write_file_atomic(argv[1], bytes, len, 0600);
	secure_free(bytes);
	if (ret < 0) {
		keyring_free(ring);
		return helper_fail(argv[1], strerror(-ret));
	}
	record = keyring_record(ring, index);
	key_id_format(record->id, key_text);
	printf("%s\n", key_text);
	for (size_t i = 0; i < MEK_SIZE; i++)
		printf("%02x", record->mek[i]);
	printf("\n");
	keyring_free(ring);
	return 0;
}
