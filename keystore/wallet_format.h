/*
 * wallet_format: the byte layout of a wallet file and the pure functions that build and parse
 * it. Nothing here touches the file system, so the fuzzers and the unit tests drive exactly the
 * code that reads wallets from disk. docs/WALLET.md is the specification; this header,
 * wallet_file.c, wallet_crypto.c and wallet_payload.c are its only implementation.
 *
 * A wallet file is a 176-byte clear header, the AES-256-GCM sealed payload (the header is its
 * associated data), the 16-byte GCM tag, and a SHA-256 over every byte before it. The checksum
 * is checked before anything else, so a damaged file is reported as damaged and never as a
 * wrong password; only a file whose checksum holds can fail authentication, and for a password
 * wallet a separate password check value tells a wrong password from a forged payload.
 */
#ifndef TDEFS_WALLET_FORMAT_H
#define TDEFS_WALLET_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "keystore/wallet.h"

#define WALLET_MAGIC "TDEFSWLT"
#define WALLET_MAGIC_SIZE 8
#define WALLET_SALT_SIZE 32
#define WALLET_STORED_KEY_SIZE 32
#define WALLET_CHECK_SIZE 32
#define HOST_SECRET_SIZE 32

/*
 * Header flags. HOST_SECRET marks a local auto-login wallet (or store) whose keys also depend on
 * this host's secret (host_secret.c); local auto-login files written before host secrets existed
 * have no flag and still open, with a warning. Any other bit means a newer writer.
 */
#define WALLET_FLAG_HOST_SECRET 0x00000001u
#define WALLET_KNOWN_FLAGS WALLET_FLAG_HOST_SECRET

/* Byte offsets inside the clear header (docs/WALLET.md, "Header"). */
enum wallet_header_offset {
	WALLET_OFFSET_MAGIC = 0,
	WALLET_OFFSET_VERSION = 8,
	WALLET_OFFSET_KIND = 10,
	WALLET_OFFSET_CONTENT = 11,
	WALLET_OFFSET_FLAGS = 12,
	WALLET_OFFSET_WALLET_ID = 16,
	WALLET_OFFSET_GENERATION = 32,
	WALLET_OFFSET_WRITE_TIME = 40,
	WALLET_OFFSET_SCRYPT_LOG2_N = 48,
	WALLET_OFFSET_RESERVED_1 = 49,
	WALLET_OFFSET_SCRYPT_R = 52,
	WALLET_OFFSET_SCRYPT_P = 56,
	WALLET_OFFSET_SEALED_LENGTH = 60,
	WALLET_OFFSET_SALT = 64,
	WALLET_OFFSET_STORED_KEY = 96,
	WALLET_OFFSET_CHECK = 128,
	WALLET_OFFSET_NONCE = 160,
	WALLET_OFFSET_RESERVED_2 = 172,
	WALLET_HEADER_SIZE = 176,
};
#define WALLET_RESERVED_1_SIZE (WALLET_OFFSET_SCRYPT_R - WALLET_OFFSET_RESERVED_1)
#define WALLET_RESERVED_2_SIZE (WALLET_HEADER_SIZE - WALLET_OFFSET_RESERVED_2)
#define WALLET_TRAILER_SIZE (GCM_TAG_SIZE + SHA256_SIZE)
#define WALLET_MIN_FILE_SIZE (WALLET_HEADER_SIZE + WALLET_TRAILER_SIZE)

_Static_assert(WALLET_OFFSET_VERSION == WALLET_MAGIC_SIZE, "version follows the magic");
_Static_assert(WALLET_OFFSET_GENERATION == WALLET_OFFSET_WALLET_ID + KEY_ID_SIZE, "wallet ID");
_Static_assert(WALLET_OFFSET_STORED_KEY == WALLET_OFFSET_SALT + WALLET_SALT_SIZE, "salt size");
_Static_assert(WALLET_OFFSET_CHECK == WALLET_OFFSET_STORED_KEY + WALLET_STORED_KEY_SIZE,
	       "stored key size");
_Static_assert(WALLET_OFFSET_NONCE == WALLET_OFFSET_CHECK + WALLET_CHECK_SIZE, "check size");
_Static_assert(WALLET_OFFSET_RESERVED_2 == WALLET_OFFSET_NONCE + GCM_NONCE_SIZE, "nonce size");
_Static_assert(WALLET_HEADER_SIZE % 16 == 0, "header keeps the payload 16-byte aligned");

/* Sealed payload of a key wallet (content KEYS): a small header, then fixed-size records. */
enum keys_payload_offset {
	KEYS_OFFSET_COUNT = 0,
	KEYS_OFFSET_CONTAINER_LENGTH = 4,
	KEYS_OFFSET_RESERVED = 5,
	KEYS_OFFSET_CONTAINER = 8,
	KEYS_PAYLOAD_HEADER_SIZE = 72,
};
_Static_assert(KEYS_OFFSET_CONTAINER + WALLET_CONTAINER_MAX == KEYS_PAYLOAD_HEADER_SIZE,
	       "container field closes the payload header");

/*
 * One key record. Version 1 files have 200-byte records whose bytes 69..71 are zero; version 2
 * (WALLET_FORMAT_VERSION) gives byte 69 to the creator's length and appends the 64-byte
 * creator field, for 264-byte records. The header's format version tells the two apart, so an
 * older tdefs refuses a version 2 file as newer instead of misreading it.
 */
enum key_record_offset {
	RECORD_OFFSET_KEY_ID = 0,
	RECORD_OFFSET_MEK = 16,
	RECORD_OFFSET_CREATION_TIME = 48,
	RECORD_OFFSET_ACTIVATION_TIME = 56,
	RECORD_OFFSET_STATE = 64,
	RECORD_OFFSET_ORIGIN = 65,
	RECORD_OFFSET_FLAGS = 66,
	RECORD_OFFSET_TAG_LENGTH = 67,
	RECORD_OFFSET_CONTAINER_LENGTH = 68,
	RECORD_OFFSET_CREATOR_LENGTH = 69, /* version 2; reserved (zero) in version 1 */
	RECORD_OFFSET_RESERVED = 70,
	RECORD_OFFSET_TAG = 72,
	RECORD_OFFSET_CONTAINER = 136,
	KEY_RECORD_V1_SIZE = 200,
	RECORD_OFFSET_CREATOR = 200, /* version 2 */
	KEY_RECORD_SIZE = 264,	     /* version 2 */
};
#define RECORD_FLAG_BACKED_UP 0x01u
#define RECORD_KNOWN_FLAGS RECORD_FLAG_BACKED_UP

_Static_assert(RECORD_OFFSET_MEK == RECORD_OFFSET_KEY_ID + KEY_ID_SIZE, "key ID size");
_Static_assert(RECORD_OFFSET_CREATION_TIME == RECORD_OFFSET_MEK + MEK_SIZE, "MEK size");
_Static_assert(RECORD_OFFSET_CONTAINER == RECORD_OFFSET_TAG + WALLET_TAG_MAX, "tag size");
_Static_assert(RECORD_OFFSET_CONTAINER + WALLET_CONTAINER_MAX == KEY_RECORD_V1_SIZE,
	       "container closes the version 1 record");
_Static_assert(RECORD_OFFSET_CREATOR + WALLET_CREATOR_MAX == KEY_RECORD_SIZE,
	       "creator closes the version 2 record");

/* The record size of a key payload in a file of that format version (0 for none). */
static inline size_t key_record_size(unsigned version)
{
	return version == 1 ? KEY_RECORD_V1_SIZE : version == 2 ? KEY_RECORD_SIZE : 0;
}

/* Sealed payload of an external password store (content SECRET). */
enum secrets_payload_offset {
	SECRETS_OFFSET_COUNT = 0,
	SECRETS_OFFSET_RESERVED = 4,
	SECRETS_PAYLOAD_HEADER_SIZE = 8,
	SECRET_ENTRY_HEADER_SIZE = 8, /* u32 length, u32 reserved, then the bytes */
};
#define WALLET_MAX_SECRETS 2 /* two only while change-password swaps them */

#define WALLET_MAX_SEALED_SIZE (KEYS_PAYLOAD_HEADER_SIZE + WALLET_MAX_KEYS * KEY_RECORD_SIZE)
#define WALLET_MAX_FILE_SIZE (WALLET_MIN_FILE_SIZE + WALLET_MAX_SEALED_SIZE)
_Static_assert(WALLET_MAX_SEALED_SIZE >=
		       SECRETS_PAYLOAD_HEADER_SIZE +
			       WALLET_MAX_SECRETS * (SECRET_ENTRY_HEADER_SIZE + SECRET_MAX_SIZE),
	       "the largest secret store fits the size limit");

#define WALLET_WHY_SIZE 160

/*
 * A parsed wallet file. Pointers point into the caller's buffer, which must outlive the view;
 * nothing secret (the stored key of an auto-login wallet) is copied out of it.
 */
struct wallet_file_view {
	/* The clear header as the status report and wallet_read() show it: one description of a
	 * wallet file's header, filled here once and copied whole, never field by field. */
	struct wallet_file_info info;
	uint32_t flags;
	const uint8_t *header; /* WALLET_HEADER_SIZE bytes: the associated data */
	const uint8_t *salt;
	const uint8_t *stored_key;
	const uint8_t *check;
	const uint8_t *nonce;
	const uint8_t *sealed;
	size_t sealed_len;
	const uint8_t *tag;
};

/*
 * Check everything that can be checked without a key: size, magic, checksum, version, and every
 * header field. KEYSTORE_ERR_DAMAGED or KEYSTORE_ERR_NEWER_FORMAT, with the reason in why.
 */
int wallet_file_parse(const uint8_t *data, size_t len, struct wallet_file_view *view,
		      char why[WALLET_WHY_SIZE]);

/* The fields of a header to write; the nonce is drawn fresh by wallet_file_build. */
struct wallet_header_fields {
	uint32_t flags; /* WALLET_FLAG_* */
	enum wallet_kind kind;
	enum wallet_content content;
	uint8_t wallet_id[KEY_ID_SIZE];
	uint64_t generation;
	int64_t write_time;
	struct scrypt_cost cost;   /* PASSWORD only; zero otherwise */
	const uint8_t *salt;	   /* WALLET_SALT_SIZE bytes */
	const uint8_t *stored_key; /* auto-login kinds; NULL writes zeros */
	const uint8_t *check;	   /* password or host check; NULL writes zeros */
};

/* Seal plaintext under key and lay out the whole file in secure memory (*out, *out_len). */
int wallet_file_build(const struct wallet_header_fields *fields, const uint8_t key[AES256_KEY_SIZE],
		      const uint8_t *plaintext, size_t len, uint8_t **out, size_t *out_len);

/* Open the sealed payload into secure memory; KEYSTORE_ERR_DAMAGED when it fails authentication. */
int wallet_file_unseal(const struct wallet_file_view *view, const uint8_t key[AES256_KEY_SIZE],
		       uint8_t **plaintext, size_t *len);

/* --- key derivation (wallet_crypto.c) -------------------------------------------------- */

/* scrypt output for a password wallet, with the salt and cost it was made with. */
struct password_key {
	struct scrypt_cost cost;
	uint8_t salt[WALLET_SALT_SIZE];
	uint8_t master[AES256_KEY_SIZE];
};

bool scrypt_cost_valid(const struct scrypt_cost *cost);

/* Run scrypt into secure memory. */
int password_key_derive(const struct secret *password, const uint8_t salt[WALLET_SALT_SIZE],
			const struct scrypt_cost *cost, struct password_key **out);
void password_key_free(struct password_key *key);
int password_key_sealing(const struct password_key *key, uint8_t out[AES256_KEY_SIZE]);
int password_key_check(const struct password_key *key, uint8_t out[WALLET_CHECK_SIZE]);

int autologin_sealing_key(const uint8_t stored[WALLET_STORED_KEY_SIZE],
			  const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[AES256_KEY_SIZE]);

/* The identity a local auto-login wallet is bound to (host_identity.c). */
struct host_identity {
	size_t len;
	uint8_t bytes[512];
};
int host_identity_read(struct host_identity *identity, char error[KEYSTORE_ERROR_SIZE]);

/* Where this host's secret is (host_secret.c). */
int host_secret_path(char out[PATH_MAX]);
/*
 * Read this host's secret into secret (secure memory of HOST_SECRET_SIZE bytes). With create,
 * make it first when there is none (never replacing one); without, -ENOENT when there is none.
 * -EPERM (message with the fix) when it or its directory is open to others.
 */
int host_secret_load(uint8_t secret[HOST_SECRET_SIZE], bool create,
		     char error[KEYSTORE_ERROR_SIZE]);

/*
 * The host check value and the sealing key of a local auto-login file. host_secret is NULL for
 * a file without WALLET_FLAG_HOST_SECRET (made before host secrets), which then depends on the
 * public host identity only.
 */
int local_host_check(const struct host_identity *identity, const uint8_t *host_secret,
		     const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[WALLET_CHECK_SIZE]);
int local_autologin_sealing_key(const uint8_t stored[WALLET_STORED_KEY_SIZE],
				const struct host_identity *identity, const uint8_t *host_secret,
				const uint8_t salt[WALLET_SALT_SIZE], uint8_t out[AES256_KEY_SIZE]);

/* --- sealed payloads (wallet_payload.c) ------------------------------------------------ */

/* Encode a key ring into secure memory, in the records of WALLET_FORMAT_VERSION. */
int wallet_payload_encode_keys(const struct keyring *ring, uint8_t **out, size_t *len);

/*
 * Decode a key payload without trusting any length or field. The format version (its record
 * layout), wallet ID and generation come from the (authenticated) header. KEYSTORE_ERR_DAMAGED
 * with the reason in why.
 */
int wallet_payload_decode_keys(const uint8_t *data, size_t len, unsigned version,
			       const uint8_t wallet_id[KEY_ID_SIZE], uint64_t generation,
			       struct keyring **out, char why[WALLET_WHY_SIZE]);

int wallet_payload_encode_secrets(struct secret *const *secrets, size_t count, uint8_t **out,
				  size_t *len);
int wallet_payload_decode_secrets(const uint8_t *data, size_t len,
				  struct secret *secrets[WALLET_MAX_SECRETS], size_t *count,
				  char why[WALLET_WHY_SIZE]);

#endif
