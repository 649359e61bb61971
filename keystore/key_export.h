/*
 * key_export: the key export file that carries master keys from one wallet to another, like the
 * file of Oracle's ADMINISTER KEY MANAGEMENT EXPORT ENCRYPTION KEYS WITH SECRET, and the import
 * of such keys (or of another wallet's keys: tdekey merge) into a key ring. docs/WALLET.md
 * ("Key export files") is the specification; this header and key_export.c its only
 * implementation.
 *
 * An export file is a 144-byte clear header, the selected key records sealed with AES-256-GCM
 * (the header is the associated data) under a key derived by scrypt from a transport secret,
 * the GCM tag and a SHA-256 over everything before it. It is not a wallet (its magic differs,
 * so no wallet reader and no mount accepts it). The checksum is checked first, so a damaged
 * file is told apart from a wrong secret; the header's check value, derived from the same
 * scrypt output as the sealing key, tells a wrong secret from a forged payload.
 *
 * Return values as keystore.h: KEYSTORE_ERR_EXPORT_DAMAGED (truncated, bit-flipped, not an
 * export file), KEYSTORE_ERR_NEWER_FORMAT, KEYSTORE_ERR_WRONG_SECRET, KEYSTORE_ERR_KEY_CONFLICT
 * (an imported key ID the ring holds with other bytes), each with a message naming the file or
 * the key and never a secret or key byte.
 */
#ifndef TDEFS_KEY_EXPORT_H
#define TDEFS_KEY_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "keystore/wallet.h"

#define KEY_EXPORT_MAGIC "TDEFSKEX"
#define KEY_EXPORT_MAGIC_SIZE 8
/* Version 2 adds each key's creator; version 1 files are still read (creator unknown). */
#define KEY_EXPORT_VERSION 2
#define KEY_EXPORT_SALT_SIZE 32
#define KEY_EXPORT_CHECK_SIZE 32
#define KEY_EXPORT_KCV_SIZE 16
#define KEY_EXPORT_MIN_SECRET 8

/* Byte offsets in the clear header (docs/WALLET.md, "Key export files"). */
enum key_export_header_offset {
	KEY_EXPORT_OFFSET_MAGIC = 0,
	KEY_EXPORT_OFFSET_VERSION = 8,	      /* u16 */
	KEY_EXPORT_OFFSET_RESERVED_1 = 10,    /* u16, zero */
	KEY_EXPORT_OFFSET_COUNT = 12,	      /* u32: number of key records */
	KEY_EXPORT_OFFSET_WALLET_ID = 16,     /* the source wallet's ID */
	KEY_EXPORT_OFFSET_EXPORT_TIME = 32,   /* i64 Unix seconds */
	KEY_EXPORT_OFFSET_SCRYPT_LOG2_N = 40, /* u8 */
	KEY_EXPORT_OFFSET_RESERVED_2 = 41,    /* 3 bytes, zero */
	KEY_EXPORT_OFFSET_SCRYPT_R = 44,      /* u32 */
	KEY_EXPORT_OFFSET_SCRYPT_P = 48,      /* u32 */
	KEY_EXPORT_OFFSET_SEALED_LENGTH = 52, /* u32: count * record size */
	KEY_EXPORT_OFFSET_SALT = 56,
	KEY_EXPORT_OFFSET_CHECK = 88,
	KEY_EXPORT_OFFSET_NONCE = 120,
	KEY_EXPORT_OFFSET_RESERVED_3 = 132, /* 12 bytes, zero */
	KEY_EXPORT_HEADER_SIZE = 144,
};

/*
 * One sealed key record. Version 2 gives the first reserved byte to the creator's length and
 * appends the 64-byte creator field after the key check value.
 */
enum key_export_record_offset {
	KEX_RECORD_OFFSET_KEY_ID = 0,
	KEX_RECORD_OFFSET_MEK = 16,
	KEX_RECORD_OFFSET_CREATION_TIME = 48,
	KEX_RECORD_OFFSET_ACTIVATION_TIME = 56,
	KEX_RECORD_OFFSET_STATE = 64,
	KEX_RECORD_OFFSET_ORIGIN = 65,
	KEX_RECORD_OFFSET_TAG_LENGTH = 66,
	KEX_RECORD_OFFSET_CONTAINER_LENGTH = 67,
	KEX_RECORD_OFFSET_CREATOR_LENGTH = 68, /* version 2; zero in version 1 */
	KEX_RECORD_OFFSET_RESERVED = 69,	/* 3 bytes, zero */
	KEX_RECORD_OFFSET_TAG = 72,
	KEX_RECORD_OFFSET_CONTAINER = 136,
	KEX_RECORD_OFFSET_KCV = 200,
	KEY_EXPORT_RECORD_V1_SIZE = 216,
	KEX_RECORD_OFFSET_CREATOR = 216, /* version 2 */
	KEY_EXPORT_RECORD_SIZE = 280,	 /* version 2 */
};

#define KEY_EXPORT_TRAILER_SIZE (GCM_TAG_SIZE + SHA256_SIZE)
#define KEY_EXPORT_MAX_FILE_SIZE                                                                   \
	(KEY_EXPORT_HEADER_SIZE + (size_t)WALLET_MAX_KEYS * KEY_EXPORT_RECORD_SIZE +               \
	 KEY_EXPORT_TRAILER_SIZE)

/* The decoded contents of an export file; records are in secure memory. */
struct key_export {
	uint8_t wallet_id[KEY_ID_SIZE];
	int64_t export_time;
	struct scrypt_cost cost;
	size_t count;
	struct mek_record *records;
};
void key_export_free(struct key_export *export);

/* What the clear header says, checked (checksum, magic, version, sizes) but not unsealed. */
struct key_export_view {
	const uint8_t *header; /* KEY_EXPORT_HEADER_SIZE bytes */
	uint16_t version;
	uint32_t count;
	uint8_t wallet_id[KEY_ID_SIZE];
	int64_t export_time;
	struct scrypt_cost cost;
	const uint8_t *salt, *check, *nonce;
	const uint8_t *sealed;
	size_t sealed_len;
	const uint8_t *tag;
};
/* why gets a short reason ("bad checksum") for KEYSTORE_ERR_EXPORT_DAMAGED / _NEWER_FORMAT. */
int key_export_parse(const uint8_t *data, size_t len, struct key_export_view *view,
		     char why[KEYSTORE_ERROR_SIZE]);

/* The sealing key and the check value from scrypt(secret, salt, cost). */
int key_export_derive(const struct secret *secret, const uint8_t salt[KEY_EXPORT_SALT_SIZE],
		      const struct scrypt_cost *cost, uint8_t seal_key[AES256_KEY_SIZE],
		      uint8_t check[KEY_EXPORT_CHECK_SIZE]);

/*
 * Decode count sealed records of an export file of that version after unsealing (pure: the
 * fuzz target drives it directly).
 */
int key_export_decode_records(const uint8_t *plaintext, size_t len, unsigned version, size_t count,
			      struct mek_record **out, char why[KEYSTORE_ERROR_SIZE]);

/*
 * Encode records as an export file sealed under secret. salt and nonce may be NULL (random);
 * the known-answer test fixes them. *out is secure memory: free with secure_free().
 */
int key_export_encode(const uint8_t wallet_id[KEY_ID_SIZE], const struct mek_record *records,
		      size_t count, const struct secret *secret, const struct scrypt_cost *cost,
		      int64_t now, const uint8_t *salt, const uint8_t *nonce, uint8_t **out,
		      size_t *out_len, char error[KEYSTORE_ERROR_SIZE]);

/* Decode an export file's bytes (path names it in messages). */
int key_export_decode(const uint8_t *data, size_t len, const char *path,
		      const struct secret *secret, struct key_export **out,
		      char error[KEYSTORE_ERROR_SIZE]);

/* Write an export file: refuses an existing path (-EEXIST); mode 0600, crash-safe. */
int key_export_write(const char *path, const uint8_t wallet_id[KEY_ID_SIZE],
		     const struct mek_record *records, size_t count, const struct secret *secret,
		     const struct scrypt_cost *cost, char error[KEYSTORE_ERROR_SIZE]);
/* Read and decode an export file. */
int key_export_read(const char *path, const struct secret *secret, struct key_export **out,
		    char error[KEYSTORE_ERROR_SIZE]);

/*
 * Read a transport secret or another wallet's password (option names the option in messages:
 * "--secret-file"). A file, and a descriptor that is a regular file, must pass strict modes:
 * owned by root or this user and writable by no one else (KEYSTORE_ERR_UNSAFE_MODES), because a
 * secret another user could have written is one an attacker chose. With min_len a shorter
 * secret is refused (-EINVAL); a prompt with confirm asks twice.
 */
int transport_secret_read(const struct password_source *source, const char *option,
			  const char *prompt, bool confirm, size_t min_len, struct secret **out,
			  char error[KEYSTORE_ERROR_SIZE]);
/*
 * Open a password file for a wallet session after the same check: *fd is then a descriptor to
 * hand over as PASSWORD_SOURCE_FD (close it after).
 */
int transport_secret_open_file(const char *path, const char *option, int *fd,
			       char error[KEYSTORE_ERROR_SIZE]);
/* The same check of an inherited descriptor (a pipe or terminal passes). */
int transport_secret_check_fd(int fd, const char *option, char error[KEYSTORE_ERROR_SIZE]);

/*
 * Add records to ring, all or nothing: a key whose ID and bytes the ring holds is skipped; the
 * same ID with other bytes refuses the whole set (KEYSTORE_ERR_KEY_CONFLICT, naming the key);
 * more keys than a wallet holds refuse it too (KEYSTORE_ERR_WALLET_FULL). Added keys have origin
 * IMPORTED and are never ACTIVE: an ACTIVE source key becomes RETIRED (it unwraps, wraps
 * nothing), other states are kept. The ring is unchanged on failure.
 */
struct key_import_summary {
	size_t added;
	size_t skipped;
};
int keyring_import(struct keyring *ring, const struct mek_record *records, size_t count,
		   struct key_import_summary *summary, char error[KEYSTORE_ERROR_SIZE]);

#endif
