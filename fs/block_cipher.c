/*
 * Data blocks. Every plaintext block i is one AES-256-XTS data unit with tweak i, so a block's
 * ciphertext depends only on (DEK, i, plaintext) and a database page write maps to an aligned
 * backing write of the same size. Two cases need care:
 *
 * Holes. A backing block of all zero bytes reads as zeros, so sparse files, fallocate and
 * punch-hole work directly on the backing file. The chance that a real ciphertext block is all
 * zeros is 2^-32768.
 *
 * Short tails. The last block of a file may be shorter than 4096 bytes, and the format derives
 * the plaintext size from the backing size, so the ciphertext must be exactly as long as the
 * plaintext. XTS with ciphertext stealing covers 16 bytes and more; a tail of 1..15 bytes is
 * XORed with a keystream K: the XTS encryption of 16 zero bytes under a tweak with bit 63 set.
 * Real blocks never use such a tweak (a block index below 2^52 covers any file size), so K is
 * never the ciphertext of a real block. Two values are fixed points so that zero ciphertext
 * keeps meaning "hole" even for a 1-byte tail (where a plain XOR would give an all-zero
 * ciphertext for 1 in 256 plaintexts): all-zero maps to all-zero and K to K; everything else
 * is XORed with K, which keeps the map a bijection. The costs, written in docs/FORMAT.md: an
 * all-zero short tail is visible as such, and rewriting a short tail in place reuses K.
 */
#include "fs/format.h"

#include <errno.h>
#include <string.h>

#define SHORT_TAIL_TWEAK_BIT (UINT64_C(1) << 63)

bool buffer_is_zero(const uint8_t *data, size_t len)
{
	size_t i = 0;

	/* Word-at-a-time: a real ciphertext block almost always differs in its first word. */
	for (; i + 8 <= len; i += 8) {
		uint64_t word;
		memcpy(&word, data + i, sizeof(word));
		if (word)
			return false;
	}
	for (; i < len; i++)
		if (data[i])
			return false;
	return true;
}

static int short_tail_apply(struct xts_key *key, uint64_t block_index, const uint8_t *in,
			    uint8_t *out, size_t len)
{
	uint8_t keystream[XTS_MIN_UNIT] = { 0 };
	int ret;

	ret = xts_encrypt(key, block_index | SHORT_TAIL_TWEAK_BIT, keystream, keystream,
			  sizeof(keystream));
	if (ret < 0)
		return ret;
	/* An involution: the same map encrypts and decrypts. */
	if (buffer_is_zero(in, len) || memcmp(in, keystream, len) == 0) {
		memmove(out, in, len);
	} else {
		for (size_t i = 0; i < len; i++)
			out[i] = in[i] ^ keystream[i];
	}
	secure_wipe(keystream, sizeof(keystream));
	return 0;
}

static int check_block(uint64_t block_index, size_t len)
{
	if (len == 0 || len > TDEFS_BLOCK_SIZE || (block_index & SHORT_TAIL_TWEAK_BIT))
		return -EINVAL;
	return 0;
}

int block_encrypt(struct xts_key *key, uint64_t block_index, const uint8_t *plaintext,
		  uint8_t *ciphertext, size_t len)
{
	int ret = check_block(block_index, len);

	if (ret < 0)
		return ret;
	if (len < XTS_MIN_UNIT)
		return short_tail_apply(key, block_index, plaintext, ciphertext, len);
	return xts_encrypt(key, block_index, plaintext, ciphertext, len);
}

int block_decrypt(struct xts_key *key, uint64_t block_index, const uint8_t *ciphertext,
		  uint8_t *plaintext, size_t len)
{
	int ret = check_block(block_index, len);

	if (ret < 0)
		return ret;
	if (buffer_is_zero(ciphertext, len)) {
		memset(plaintext, 0, len);
		return 0;
	}
	if (len < XTS_MIN_UNIT)
		return short_tail_apply(key, block_index, ciphertext, plaintext, len);
	return xts_decrypt(key, block_index, ciphertext, plaintext, len);
}

int blocks_encrypt(struct xts_key *key, uint64_t first_block, const uint8_t *plaintext,
		   uint8_t *ciphertext, size_t len)
{
	if (len % TDEFS_BLOCK_SIZE != 0)
		return -EINVAL;
	return xts_encrypt_units(key, first_block, TDEFS_BLOCK_SIZE, plaintext, ciphertext, len);
}

int blocks_decrypt(struct xts_key *key, uint64_t first_block, const uint8_t *ciphertext,
		   uint8_t *plaintext, size_t len)
{
	int ret;

	if (len % TDEFS_BLOCK_SIZE != 0)
		return -EINVAL;
	/*
	 * Runs of non-hole blocks go to the cipher in one call; hole blocks are zero-filled. The
	 * zero test stops at the first non-zero word, so on dense data it costs nearly nothing.
	 */
	for (size_t start = 0; start < len;) {
		size_t end = start;

		if (buffer_is_zero(ciphertext + start, TDEFS_BLOCK_SIZE)) {
			memset(plaintext + start, 0, TDEFS_BLOCK_SIZE);
			start += TDEFS_BLOCK_SIZE;
			continue;
		}
		do
			end += TDEFS_BLOCK_SIZE;
		while (end < len && !buffer_is_zero(ciphertext + end, TDEFS_BLOCK_SIZE));
		ret = xts_decrypt_units(key, first_block + start / TDEFS_BLOCK_SIZE,
					TDEFS_BLOCK_SIZE, ciphertext + start, plaintext + start,
					end - start);
		if (ret < 0)
			return ret;
		start = end;
	}
	return 0;
}
