/*
 * The file header: two 2048-byte copies at the start of every backing file, each with a
 * sequence number and an XXH3-64 checksum, as LUKS2 keeps two header areas. The checksum only
 * tells a torn or rotted copy from a good one; authenticity comes from the AES-GCM seal over the
 * DEKs, whose associated data is every other byte of the copy, so no field (key ID, file ID,
 * sequence, rekey progress) can be changed or spliced from another header without the seal
 * failing.
 */
#include "fs/format.h"
#include "fs/format_testing.h"
#include "fs/header_internal.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "util/util.h"

/* HKDF info for the key that wraps DEKs; versioned so a later suite cannot collide with it. */
#define DEK_WRAP_INFO "tdefs v1 dek wrap"

static uint64_t copy_checksum(const uint8_t copy[HEADER_COPY_SIZE])
{
	return XXH3_64bits(copy, HEADER_OFFSET_CHECKSUM);
}

int header_copy_encode(const struct file_header *header, uint8_t out[HEADER_COPY_SIZE])
{
	if (header->wrapped_length == 0 || header->wrapped_length > HEADER_WRAPPED_KEYS_SIZE ||
	    header->wrapped_length % DEK_SIZE != 0)
		return -EINVAL;
	memset(out, 0, HEADER_COPY_SIZE);
	memcpy(out + HEADER_OFFSET_MAGIC, HEADER_MAGIC, 8);
	store_le16(out + HEADER_OFFSET_VERSION, header->version);
	store_le16(out + HEADER_OFFSET_SUITE, header->cipher_suite);
	store_le32(out + HEADER_OFFSET_FLAGS, header->flags);
	store_le64(out + HEADER_OFFSET_SEQUENCE, header->sequence);
	memcpy(out + HEADER_OFFSET_FILE_ID, header->file_id, FILE_ID_SIZE);
	memcpy(out + HEADER_OFFSET_KEY_ID, header->key_id, MASTER_KEY_ID_SIZE);
	store_le32(out + HEADER_OFFSET_UNIT_SIZE, header->unit_size);
	store_le32(out + HEADER_OFFSET_WRAPPED_LENGTH, header->wrapped_length);
	memcpy(out + HEADER_OFFSET_NONCE, header->nonce, GCM_NONCE_SIZE);
	memcpy(out + HEADER_OFFSET_WRAPPED_KEYS, header->wrapped_keys, header->wrapped_length);
	memcpy(out + HEADER_OFFSET_TAG, header->tag, GCM_TAG_SIZE);
	if (header->hot_count > REKEY_HOT_ZONE_MAX)
		return -EINVAL;
	store_le64(out + HEADER_OFFSET_WATERMARK, header->watermark);
	store_le64(out + HEADER_OFFSET_HOT_FIRST, header->hot_first);
	store_le32(out + HEADER_OFFSET_HOT_COUNT, header->hot_count);
	for (uint32_t i = 0; i < header->hot_count; i++)
		store_le64(out + HEADER_OFFSET_HOT_CHECKSUMS + 8 * i, header->hot_old_checksums[i]);
	store_le64(out + HEADER_OFFSET_CHECKSUM, copy_checksum(out));
	return 0;
}

int header_copy_decode(const uint8_t in[HEADER_COPY_SIZE], struct file_header *header)
{
	struct file_header decoded;

	if (memcmp(in + HEADER_OFFSET_MAGIC, HEADER_MAGIC, 8) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (load_le64(in + HEADER_OFFSET_CHECKSUM) != copy_checksum(in))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memset(&decoded, 0, sizeof(decoded));
	decoded.version = load_le16(in + HEADER_OFFSET_VERSION);
	/* Checked after the checksum: a torn copy must not be reported as "too new". */
	if (decoded.version > HEADER_FORMAT_VERSION)
		return FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT);
	if (decoded.version != HEADER_FORMAT_VERSION)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	decoded.cipher_suite = load_le16(in + HEADER_OFFSET_SUITE);
	decoded.flags = load_le32(in + HEADER_OFFSET_FLAGS);
	decoded.sequence = load_le64(in + HEADER_OFFSET_SEQUENCE);
	decoded.unit_size = load_le32(in + HEADER_OFFSET_UNIT_SIZE);
	decoded.wrapped_length = load_le32(in + HEADER_OFFSET_WRAPPED_LENGTH);
	if (decoded.cipher_suite != CIPHER_SUITE_AES256_XTS &&
	    decoded.cipher_suite != CIPHER_SUITE_AES256_XTS_TOKEN_GCM)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (decoded.flags & ~HEADER_KNOWN_FLAGS)
		return FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT);
	if (decoded.unit_size != TDEFS_BLOCK_SIZE)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	if (!buffer_is_zero(in + HEADER_OFFSET_RESERVED, 4) ||
	    !buffer_is_zero(in + HEADER_OFFSET_HOT_RESERVED, 4) ||
	    !buffer_is_zero(in + HEADER_OFFSET_REKEY_RESERVED,
			    HEADER_OFFSET_CHECKSUM - HEADER_OFFSET_REKEY_RESERVED))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	decoded.watermark = load_le64(in + HEADER_OFFSET_WATERMARK);
	decoded.hot_first = load_le64(in + HEADER_OFFSET_HOT_FIRST);
	decoded.hot_count = load_le32(in + HEADER_OFFSET_HOT_COUNT);
	if (decoded.flags & HEADER_FLAG_REKEY_IN_PROGRESS) {
		/* Two DEKs (old, new); a hot zone, when present, starts at the watermark. */
		if (decoded.wrapped_length != 2 * DEK_SIZE || decoded.hot_count > REKEY_HOT_ZONE_MAX ||
		    /* a block index; bounded by the byte limit, as loosely as release 0.1.0 did */
		    decoded.watermark >= TDEFS_MAX_FILE_SIZE ||
		    (decoded.hot_count > 0 && decoded.hot_first != decoded.watermark) ||
		    (decoded.hot_count == 0 && decoded.hot_first != 0))
			return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	} else {
		/* One DEK, and no trace of rekey state. */
		if (decoded.wrapped_length != DEK_SIZE || decoded.watermark || decoded.hot_first ||
		    decoded.hot_count)
			return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	}
	for (uint32_t i = 0; i < decoded.hot_count; i++)
		decoded.hot_old_checksums[i] = load_le64(in + HEADER_OFFSET_HOT_CHECKSUMS + 8 * i);
	if (!buffer_is_zero(in + HEADER_OFFSET_HOT_CHECKSUMS + 8 * decoded.hot_count,
			    8 * (REKEY_HOT_ZONE_MAX - decoded.hot_count)) ||
	    !buffer_is_zero(in + HEADER_OFFSET_WRAPPED_KEYS + decoded.wrapped_length,
			    HEADER_WRAPPED_KEYS_SIZE - decoded.wrapped_length))
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	memcpy(decoded.file_id, in + HEADER_OFFSET_FILE_ID, FILE_ID_SIZE);
	memcpy(decoded.key_id, in + HEADER_OFFSET_KEY_ID, MASTER_KEY_ID_SIZE);
	memcpy(decoded.nonce, in + HEADER_OFFSET_NONCE, GCM_NONCE_SIZE);
	memcpy(decoded.wrapped_keys, in + HEADER_OFFSET_WRAPPED_KEYS, HEADER_WRAPPED_KEYS_SIZE);
	memcpy(decoded.tag, in + HEADER_OFFSET_TAG, GCM_TAG_SIZE);
	*header = decoded;
	return 0;
}

int header_select(const uint8_t *data, size_t len, struct file_header *header, unsigned *slot)
{
	struct file_header candidates[HEADER_COPY_COUNT];
	int results[HEADER_COPY_COUNT];
	int best = -1;

	for (unsigned i = 0; i < HEADER_COPY_COUNT; i++) {
		if (len < (i + 1) * HEADER_COPY_SIZE) {
			results[i] = FORMAT_ERROR(FORMAT_ERR_DAMAGED);
			continue;
		}
		results[i] = header_copy_decode(data + i * HEADER_COPY_SIZE, &candidates[i]);
		if (results[i] == 0 &&
		    (best < 0 || candidates[i].sequence > candidates[best].sequence))
			best = (int)i;
	}
	if (best < 0) {
		for (unsigned i = 0; i < HEADER_COPY_COUNT; i++)
			if (results[i] == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT))
				return FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT);
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	}
	/*
	 * Two valid copies always describe the same file. Copies that disagree on the file ID were
	 * spliced together from two files (a copy pasted over one half of a header): neither can
	 * be trusted to hold this file's key.
	 */
	if (results[0] == 0 && results[1] == 0 &&
	    memcmp(candidates[0].file_id, candidates[1].file_id, FILE_ID_SIZE) != 0)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	/*
	 * A copy from a newer format that is not torn may be the most recent write; using the
	 * older copy beside it could silently drop that change, so refuse instead.
	 */
	for (unsigned i = 0; i < HEADER_COPY_COUNT; i++)
		if (results[i] == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT))
			return FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT);
	*header = candidates[best];
	*slot = (unsigned)best;
	return 0;
}

static bool same_progress(const struct file_header *a, const struct file_header *b)
{
	return a->watermark == b->watermark && a->hot_first == b->hot_first &&
	       a->hot_count == b->hot_count &&
	       memcmp(a->hot_old_checksums, b->hot_old_checksums,
		      sizeof(a->hot_old_checksums[0]) * a->hot_count) == 0;
}

/*
 * The steps of a data rekey, each written to both copies before the next begins: begin (new DEK,
 * watermark 0, no hot zone); per chunk, a hot zone at the watermark, whose end is the next
 * step's watermark; after recovery, the watermark past the hot zone and no hot zone; finish (the
 * new DEK alone). A rewrap of a header in a rekey keeps its progress. So the older copy holds
 * the newer copy's state or the one just before it; anything else is damage or a splice.
 */
int header_copies_check(const struct file_header *newer, const uint8_t *newer_deks,
			const struct file_header *older, const uint8_t *older_deks,
			const char **reason)
{
	bool newer_rekey = newer->flags & HEADER_FLAG_REKEY_IN_PROGRESS;
	bool older_rekey = older->flags & HEADER_FLAG_REKEY_IN_PROGRESS;
	bool keys = newer_deks && older_deks;

	*reason = NULL;
	if (!newer_rekey && !older_rekey)
		return 0;
	if (newer_rekey && !older_rekey) {
		if (newer->watermark != 0 || newer->hot_count != 0)
			*reason = "one header copy is part-way through a data rekey, the other is from "
				  "before that rekey began";
		else if (keys && memcmp(newer_deks, older_deks, DEK_SIZE) != 0)
			*reason = "the header copy that begins the data rekey does not keep the file's "
				  "old key";
	} else if (!newer_rekey && older_rekey) {
		if (keys && memcmp(newer_deks, older_deks + DEK_SIZE, DEK_SIZE) != 0)
			*reason = "the header copy that ends the data rekey does not keep the rekey's "
				  "new key";
	} else if (keys && memcmp(newer_deks, older_deks, 2 * DEK_SIZE) != 0) {
		*reason = "the two header copies carry the keys of two different data rekeys";
	} else if (same_progress(newer, older)) {
		/* The same step in both copies: its second write, a rewrap, or a --repair copy. */
	} else if (newer->sequence == older->sequence) {
		*reason = "the two header copies have one sequence number but different data rekey "
			  "progress";
	} else if (!(older->hot_count == 0 && newer->hot_count > 0 &&
		     newer->watermark == older->watermark) &&
		   !(older->hot_count > 0 &&
		     newer->watermark == older->watermark + older->hot_count)) {
		*reason = "the two header copies' data rekey progress is not one step apart";
	}
	return *reason ? FORMAT_ERROR(FORMAT_ERR_COPIES_DISAGREE) : 0;
}

/* Associated data: the whole encoded copy with the sealed fields and the checksum zeroed. */
void header_associated_data(const struct file_header *header, uint8_t aad[HEADER_COPY_SIZE])
{
	struct file_header unsealed = *header;

	memset(unsealed.wrapped_keys, 0, sizeof(unsealed.wrapped_keys));
	memset(unsealed.tag, 0, sizeof(unsealed.tag));
	if (unsealed.wrapped_length == 0)
		unsealed.wrapped_length = DEK_SIZE;
	header_copy_encode(&unsealed, aad);
	memset(aad + HEADER_OFFSET_CHECKSUM, 0, 8);
}

static int derive_wrap_key(const uint8_t mek[MASTER_KEY_SIZE], uint8_t **wrap_key)
{
	uint8_t *key = secure_alloc(AES256_KEY_SIZE);
	int ret;

	if (!key)
		return -ENOMEM;
	ret = crypto_hkdf_sha256(mek, MASTER_KEY_SIZE, NULL, 0, DEK_WRAP_INFO, key,
				 AES256_KEY_SIZE);
	if (ret < 0) {
		secure_free(key);
		return ret;
	}
	*wrap_key = key;
	return 0;
}

int header_seal_with_nonce(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
			   const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			   unsigned count, const uint8_t nonce[GCM_NONCE_SIZE])
{
	uint8_t aad[HEADER_COPY_SIZE];
	uint8_t *wrap_key;
	int ret;

	if (count == 0 || count > HEADER_MAX_DEKS)
		return -EINVAL;
	/* A seal under MEK bytes is suite 1's, whatever the copy was sealed with before. */
	header->cipher_suite = CIPHER_SUITE_AES256_XTS;
	memcpy(header->key_id, key_id, MASTER_KEY_ID_SIZE);
	header->wrapped_length = count * DEK_SIZE;
	memcpy(header->nonce, nonce, GCM_NONCE_SIZE);
	ret = derive_wrap_key(mek, &wrap_key);
	if (ret < 0)
		return ret;
	header_associated_data(header, aad);
	memset(header->wrapped_keys, 0, sizeof(header->wrapped_keys));
	ret = crypto_gcm_seal(wrap_key, header->nonce, aad, sizeof(aad), deks,
			      header->wrapped_length, header->wrapped_keys, header->tag);
	secure_free(wrap_key);
	return ret;
}

int header_seal(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks, unsigned count)
{
	uint8_t nonce[GCM_NONCE_SIZE];
	int ret;

	/*
	 * A random 96-bit nonce per seal: headers are sealed a few times per file over its life,
	 * far below the 2^32 seals per key that random GCM nonces allow.
	 */
	ret = crypto_random_bytes(nonce, sizeof(nonce));
	if (ret < 0)
		return ret;
	return header_seal_with_nonce(header, mek, key_id, deks, count, nonce);
}

int header_unseal(const struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		  uint8_t *deks)
{
	uint8_t aad[HEADER_COPY_SIZE];
	uint8_t *wrap_key;
	int ret;

	if (header->wrapped_length == 0 || header->wrapped_length > HEADER_WRAPPED_KEYS_SIZE)
		return FORMAT_ERROR(FORMAT_ERR_DAMAGED);
	/* A suite 2 seal was made by a token; no MEK bytes open it. */
	if (header->cipher_suite != CIPHER_SUITE_AES256_XTS)
		return FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION);
	ret = derive_wrap_key(mek, &wrap_key);
	if (ret < 0)
		return ret;
	header_associated_data(header, aad);
	ret = crypto_gcm_open(wrap_key, header->nonce, aad, sizeof(aad), header->wrapped_keys,
			      header->wrapped_length, header->tag, deks);
	secure_free(wrap_key);
	return ret == -EBADMSG ? FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION) : ret; /* the GCM tag */
}

int header_create_sealed(struct file_header *header, header_seal_fn *seal, const void *key,
			 const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t dek[DEK_SIZE])
{
	int ret;

	memset(header, 0, sizeof(*header));
	header->version = HEADER_FORMAT_VERSION;
	header->cipher_suite = CIPHER_SUITE_AES256_XTS;
	header->sequence = 1;
	header->unit_size = TDEFS_BLOCK_SIZE;
	ret = crypto_random_bytes(header->file_id, FILE_ID_SIZE);
	if (ret < 0)
		return ret;
	return seal(header, key, key_id, dek, 1);
}

int header_build_image_sealed(struct file_header *header, header_seal_fn *seal, const void *key,
			      const uint8_t dek[DEK_SIZE], uint8_t image[TDEFS_HEADER_SIZE])
{
	struct file_header copy = *header;
	int ret;

	for (unsigned i = 0; i < HEADER_COPY_COUNT; i++) {
		copy.sequence = header->sequence + i;
		ret = seal(&copy, key, header->key_id, dek, 1);
		if (ret < 0)
			return ret;
		ret = header_copy_encode(&copy, image + i * HEADER_COPY_SIZE);
		if (ret < 0)
			return ret;
	}
	*header = copy;
	return 0;
}

static int seal_with_mek(struct file_header *header, const void *mek,
			 const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			 unsigned count)
{
	return header_seal(header, mek, key_id, deks, count);
}

int header_create(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		  const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t dek[DEK_SIZE])
{
	return header_create_sealed(header, seal_with_mek, mek, key_id, dek);
}

int header_build_image(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		       const uint8_t dek[DEK_SIZE], uint8_t image[TDEFS_HEADER_SIZE])
{
	return header_build_image_sealed(header, seal_with_mek, mek, dek, image);
}
