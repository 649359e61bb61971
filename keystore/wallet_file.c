/*
 * The outer layer of a wallet file: clear header, sealed payload, GCM tag, SHA-256 checksum.
 *
 * The parser trusts nothing. Its order of checks is what keeps damage apart from a wrong
 * password: size and magic first (is this a wallet at all), then the checksum over everything
 * (was it changed since it was written), and only then the version and the header fields. Every
 * format version keeps the magic at offset 0, the version at offset 8 and the trailing SHA-256,
 * so a newer file is recognised as newer rather than as damaged, while a flipped version byte in
 * a version 1 file fails the checksum and is reported as damage.
 */
#include "keystore/wallet_format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keystore/keystore_kind.h"
#include "util/util.h"

static int damaged(char why[WALLET_WHY_SIZE], const char *reason)
{
	snprintf(why, WALLET_WHY_SIZE, "%s", reason);
	return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
}

/* The fields a kind fixes (a stored key, a check value, a cost) are its own to check. */
static int check_kind_fields(const struct wallet_file_view *view, char why[WALLET_WHY_SIZE])
{
	const struct keystore_kind *kind = keystore_kind_of(view->info.kind);

	/* A kind with its own file format (hsm.wallet) is never in a sealed wallet file. */
	if (!kind || !kind->check_header) {
		snprintf(why, WALLET_WHY_SIZE, "unknown wallet type %u",
			 view->header[WALLET_OFFSET_KIND]);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	return kind->check_header(view, why);
}

int wallet_file_parse(const uint8_t *data, size_t len, struct wallet_file_view *view,
		      char why[WALLET_WHY_SIZE])
{
	uint8_t digest[SHA256_SIZE];
	uint32_t flags, sealed_len;
	size_t minimum_sealed;
	int ret;

	memset(view, 0, sizeof(*view));
	view->info.file_size = len;
	if (len == 0)
		return damaged(why, "the file is empty");
	if (len < WALLET_MAGIC_SIZE || memcmp(data, WALLET_MAGIC, WALLET_MAGIC_SIZE) != 0)
		return damaged(why, "bad magic, this is not a tdefs wallet file");
	if (len < WALLET_MIN_FILE_SIZE) {
		snprintf(why, WALLET_WHY_SIZE,
			 "the file is truncated (%zu bytes, a wallet has at least %d)", len,
			 WALLET_MIN_FILE_SIZE);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	if (len > WALLET_MAX_FILE_SIZE)
		return damaged(why, "the file is larger than any wallet can be");
	ret = crypto_sha256(data, len - SHA256_SIZE, digest);
	if (ret < 0)
		return ret;
	if (memcmp(digest, data + len - SHA256_SIZE, SHA256_SIZE) != 0)
		return damaged(why, "checksum mismatch");

	view->info.version = load_le16(data + WALLET_OFFSET_VERSION);
	if (view->info.version == 0)
		return damaged(why, "format version 0");
	if (view->info.version > WALLET_FORMAT_VERSION) {
		snprintf(why, WALLET_WHY_SIZE,
			 "format version %u, this build of tdefs reads up to version %d",
			 view->info.version, WALLET_FORMAT_VERSION);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT);
	}
	flags = load_le32(data + WALLET_OFFSET_FLAGS);
	if (flags & ~WALLET_KNOWN_FLAGS) {
		snprintf(why, WALLET_WHY_SIZE,
			 "unknown flags 0x%x, written by a newer version of tdefs",
			 flags & ~WALLET_KNOWN_FLAGS);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT);
	}
	view->flags = flags;

	view->header = data;
	view->info.kind = (enum wallet_kind)data[WALLET_OFFSET_KIND];
	view->info.content = (enum wallet_content)data[WALLET_OFFSET_CONTENT];
	memcpy(view->info.wallet_id, data + WALLET_OFFSET_WALLET_ID, KEY_ID_SIZE);
	view->info.generation = load_le64(data + WALLET_OFFSET_GENERATION);
	view->info.write_time = (int64_t)load_le64(data + WALLET_OFFSET_WRITE_TIME);
	view->info.cost.log2_n = data[WALLET_OFFSET_SCRYPT_LOG2_N];
	view->info.cost.r = load_le32(data + WALLET_OFFSET_SCRYPT_R);
	view->info.cost.p = load_le32(data + WALLET_OFFSET_SCRYPT_P);
	view->salt = data + WALLET_OFFSET_SALT;
	view->stored_key = data + WALLET_OFFSET_STORED_KEY;
	view->check = data + WALLET_OFFSET_CHECK;
	view->nonce = data + WALLET_OFFSET_NONCE;

	if (!keystore_kind_all_zero(data + WALLET_OFFSET_RESERVED_1, WALLET_RESERVED_1_SIZE) ||
	    !keystore_kind_all_zero(data + WALLET_OFFSET_RESERVED_2, WALLET_RESERVED_2_SIZE))
		return damaged(why, "reserved header bytes are not zero");
	if (view->info.content != WALLET_CONTENT_KEYS && view->info.content != WALLET_CONTENT_SECRET) {
		snprintf(why, WALLET_WHY_SIZE, "unknown content type %u",
			 data[WALLET_OFFSET_CONTENT]);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	ret = check_kind_fields(view, why);
	if (ret < 0)
		return ret;

	sealed_len = load_le32(data + WALLET_OFFSET_SEALED_LENGTH);
	if ((size_t)sealed_len != len - WALLET_MIN_FILE_SIZE) {
		snprintf(why, WALLET_WHY_SIZE,
			 "payload length field says %u bytes but the file holds %zu", sealed_len,
			 len - WALLET_MIN_FILE_SIZE);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	minimum_sealed = view->info.content == WALLET_CONTENT_KEYS
				 ? KEYS_PAYLOAD_HEADER_SIZE
				 : SECRETS_PAYLOAD_HEADER_SIZE + SECRET_ENTRY_HEADER_SIZE + 1;
	if (sealed_len < minimum_sealed)
		return damaged(why, "the sealed payload is shorter than its smallest form");
	view->sealed = data + WALLET_HEADER_SIZE;
	view->sealed_len = sealed_len;
	view->tag = view->sealed + sealed_len;
	return 0;
}

int wallet_file_build(const struct wallet_header_fields *fields, const uint8_t key[AES256_KEY_SIZE],
		      const uint8_t *plaintext, size_t len, uint8_t **out, size_t *out_len)
{
	size_t total = WALLET_MIN_FILE_SIZE + len;
	uint8_t *file;
	int ret;

	if (len > WALLET_MAX_SEALED_SIZE)
		return -EFBIG;
	/* Secure memory: an auto-login file carries its key in the clear. */
	file = secure_alloc(total);
	if (!file)
		return -ENOMEM;
	memcpy(file + WALLET_OFFSET_MAGIC, WALLET_MAGIC, WALLET_MAGIC_SIZE);
	store_le16(file + WALLET_OFFSET_VERSION, WALLET_FORMAT_VERSION);
	file[WALLET_OFFSET_KIND] = (uint8_t)fields->kind;
	file[WALLET_OFFSET_CONTENT] = (uint8_t)fields->content;
	store_le32(file + WALLET_OFFSET_FLAGS, fields->flags);
	memcpy(file + WALLET_OFFSET_WALLET_ID, fields->wallet_id, KEY_ID_SIZE);
	store_le64(file + WALLET_OFFSET_GENERATION, fields->generation);
	store_le64(file + WALLET_OFFSET_WRITE_TIME, (uint64_t)fields->write_time);
	file[WALLET_OFFSET_SCRYPT_LOG2_N] = (uint8_t)fields->cost.log2_n;
	store_le32(file + WALLET_OFFSET_SCRYPT_R, fields->cost.r);
	store_le32(file + WALLET_OFFSET_SCRYPT_P, fields->cost.p);
	store_le32(file + WALLET_OFFSET_SEALED_LENGTH, (uint32_t)len);
	memcpy(file + WALLET_OFFSET_SALT, fields->salt, WALLET_SALT_SIZE);
	if (fields->stored_key)
		memcpy(file + WALLET_OFFSET_STORED_KEY, fields->stored_key, WALLET_STORED_KEY_SIZE);
	if (fields->check)
		memcpy(file + WALLET_OFFSET_CHECK, fields->check, WALLET_CHECK_SIZE);
	/* A fresh random nonce per write: a key may seal many versions of one wallet. */
	ret = crypto_random_bytes(file + WALLET_OFFSET_NONCE, GCM_NONCE_SIZE);
	if (ret < 0)
		goto out_free_file;
	ret = crypto_gcm_seal(key, file + WALLET_OFFSET_NONCE, file, WALLET_HEADER_SIZE, plaintext,
			      len, file + WALLET_HEADER_SIZE, file + WALLET_HEADER_SIZE + len);
	if (ret < 0)
		goto out_free_file;
	ret = crypto_sha256(file, total - SHA256_SIZE, file + total - SHA256_SIZE);
	if (ret < 0)
		goto out_free_file;
	*out = file;
	*out_len = total;
	return 0;

out_free_file:
	secure_free(file);
	return ret;
}

int wallet_file_unseal(const struct wallet_file_view *view, const uint8_t key[AES256_KEY_SIZE],
		       uint8_t **plaintext, size_t *len)
{
	uint8_t *buffer = secure_alloc(view->sealed_len);
	int ret;

	if (!buffer)
		return -ENOMEM;
	ret = crypto_gcm_open(key, view->nonce, view->header, WALLET_HEADER_SIZE, view->sealed,
			      view->sealed_len, view->tag, buffer);
	/* The crypto layer speaks errno (-EBADMSG: fails authentication); a wallet is damaged. */
	if (ret == -EBADMSG)
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	if (ret < 0) {
		secure_free(buffer);
		return ret;
	}
	*plaintext = buffer;
	*len = view->sealed_len;
	return 0;
}
