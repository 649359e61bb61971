/*
 * format: the on-disk layout of a tdefs backing directory, shared by the daemon, the tools and
 * the tests: the file header, the data-block cipher and the backing directory's config record,
 * and nothing else (the key census is fs/backing_scan.h, the control channel
 * fs/control_protocol.h). docs/FORMAT.md specifies every byte; this header and fs/header.c,
 * fs/config.c and fs/block_cipher.c are its only implementation.
 *
 * A backing file is a 4096-byte header followed by data blocks: plaintext block i lives at
 * backing offset 4096 * (i + 1), so plaintext size = backing size - 4096. The header holds two
 * 2048-byte copies; an update rewrites the older one, so a torn write leaves the other valid.
 */
#ifndef TDEFS_FORMAT_H
#define TDEFS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define TDEFS_BLOCK_SIZE 4096u
#define TDEFS_BLOCK_SHIFT 12

/*
 * What the decoders say about a header or a config record that is not right, apart from errno
 * (keystore/keystore.h keeps wallet meanings the same way): they return 0, a negative errno for
 * a system error (ENOMEM), or FORMAT_ERROR(enum format_error). The values lie past MAX_ERRNO and
 * past the keystore's range, so no system error is mistaken for one of them (a real EBADMSG
 * from a backing filesystem stays a system error). The FUSE layer answers them with EIO
 * (fs/operations.c) after the one log line that names the file and the reason.
 */
enum format_error {
	FORMAT_ERR_DAMAGED = 1,        /* bad magic, checksum, length or field: no usable copy */
	FORMAT_ERR_NEWER_FORMAT,       /* a version this release does not know */
	FORMAT_ERR_AUTHENTICATION,     /* the DEK seal fails: altered, spliced, or another key */
	FORMAT_ERR_COPIES_DISAGREE,    /* two valid copies no crash leaves side by side */
	FORMAT_ERR_COUNT
};
#define FORMAT_ERROR_BASE 8192
#define FORMAT_ERROR(n) (-(FORMAT_ERROR_BASE + (int)(n)))
/* The format_error a return value carries, or 0 for success and system errors. */
enum format_error format_error_of(int ret);
/* A message for any return value of the format functions: the meaning, or strerror. */
const char *format_error_message(int ret);

/*
 * The largest plaintext size (bytes). It keeps every backing offset, header included, inside
 * off_t, and every block index far below the short-tail tweak bit (bit 63, fs/block_cipher.c).
 * Writes past it fail with EFBIG, truncates with EFBIG, fallocate with EINVAL.
 */
#define TDEFS_MAX_FILE_SIZE (UINT64_C(1) << 52)
#define TDEFS_HEADER_SIZE 4096u
#define HEADER_COPY_SIZE 2048u
#define HEADER_COPY_COUNT 2
#define HEADER_MAGIC "TDEFSHDR"
#define HEADER_FORMAT_VERSION 1
#define FILE_ID_SIZE 16
#define MASTER_KEY_ID_SIZE 16
#define MASTER_KEY_SIZE 32
#define DEK_SIZE XTS_KEY_SIZE /* 512 bits: two AES-256 keys for XTS */
#define HEADER_MAX_DEKS 2     /* the second slot is for online data rekey */

/* Cipher suites, indexed by the header's suite field. */
enum cipher_suite {
	CIPHER_SUITE_INVALID = 0,
	/* data: AES-256-XTS per 4096-byte block; DEK wrap: AES-256-GCM under HKDF-SHA256(MEK) */
	CIPHER_SUITE_AES256_XTS = 1,
	/*
	 * data: as suite 1; DEK wrap: AES-256-GCM done by an HSM token under the master key
	 * itself, which never leaves the token (an HSM wallet, keystore/kind_hsm.c)
	 */
	CIPHER_SUITE_AES256_XTS_TOKEN_GCM = 2,
	CIPHER_SUITE_COUNT
};

/* Header flags; unknown bits make a copy invalid (a newer writer made it). */
#define HEADER_FLAG_REKEY_IN_PROGRESS 0x1u
#define HEADER_KNOWN_FLAGS HEADER_FLAG_REKEY_IN_PROGRESS

/* Byte offsets inside one header copy (docs/FORMAT.md, "Header copy"). */
enum header_field_offset {
	HEADER_OFFSET_MAGIC = 0,
	HEADER_OFFSET_VERSION = 8,
	HEADER_OFFSET_SUITE = 10,
	HEADER_OFFSET_FLAGS = 12,
	HEADER_OFFSET_SEQUENCE = 16,
	HEADER_OFFSET_FILE_ID = 24,
	HEADER_OFFSET_KEY_ID = 40,
	HEADER_OFFSET_UNIT_SIZE = 56,
	HEADER_OFFSET_WRAPPED_LENGTH = 60,
	HEADER_OFFSET_NONCE = 64,
	HEADER_OFFSET_RESERVED = 76,
	HEADER_OFFSET_WRAPPED_KEYS = 80,
	HEADER_OFFSET_TAG = 208,
	HEADER_OFFSET_REKEY_AREA = 224,
	HEADER_OFFSET_WATERMARK = 224,
	HEADER_OFFSET_HOT_FIRST = 232,
	HEADER_OFFSET_HOT_COUNT = 240,
	HEADER_OFFSET_HOT_RESERVED = 244,
	HEADER_OFFSET_HOT_CHECKSUMS = 248,
	HEADER_OFFSET_REKEY_RESERVED = 2008,
	HEADER_OFFSET_CHECKSUM = 2040,
};

/*
 * Online data rekey (docs/REKEY.md): blocks below the watermark are under the new DEK (slot 1),
 * blocks from it on under the old one (slot 0). The hot zone is the chunk being rewritten; for
 * each of its blocks the header keeps the XXH3-64 of the block's old ciphertext, which is how
 * recovery tells, block by block, which key a block is under after a crash.
 */
#define REKEY_HOT_ZONE_MAX 220
#define HEADER_WRAPPED_KEYS_SIZE (DEK_SIZE * HEADER_MAX_DEKS)
#define HEADER_REKEY_AREA_SIZE (HEADER_OFFSET_CHECKSUM - HEADER_OFFSET_REKEY_AREA)
_Static_assert(HEADER_OFFSET_HOT_CHECKSUMS + 8 * REKEY_HOT_ZONE_MAX == HEADER_OFFSET_REKEY_RESERVED,
	       "hot zone checksums end where the reserved bytes start");

_Static_assert(HEADER_OFFSET_WRAPPED_KEYS + HEADER_WRAPPED_KEYS_SIZE == HEADER_OFFSET_TAG,
	       "wrapped keys end where the tag starts");
_Static_assert(HEADER_OFFSET_TAG + GCM_TAG_SIZE == HEADER_OFFSET_REKEY_AREA, "tag size");
_Static_assert(HEADER_OFFSET_CHECKSUM + 8 == HEADER_COPY_SIZE, "checksum closes the copy");
_Static_assert(HEADER_COPY_SIZE * HEADER_COPY_COUNT == TDEFS_HEADER_SIZE, "two copies");
_Static_assert(TDEFS_HEADER_SIZE == TDEFS_BLOCK_SIZE, "data blocks stay page aligned");

/* One decoded header copy. Only the wrapped (sealed) form of the DEKs is kept here. */
struct file_header {
	uint16_t version;
	uint16_t cipher_suite;
	uint32_t flags;
	uint64_t sequence;
	uint8_t file_id[FILE_ID_SIZE];
	uint8_t key_id[MASTER_KEY_ID_SIZE];
	uint32_t unit_size;
	uint32_t wrapped_length; /* DEK_SIZE, or 2 * DEK_SIZE while a data rekey runs */
	uint8_t nonce[GCM_NONCE_SIZE];
	uint8_t wrapped_keys[HEADER_WRAPPED_KEYS_SIZE];
	uint8_t tag[GCM_TAG_SIZE];
	/* Meaningful only with HEADER_FLAG_REKEY_IN_PROGRESS; zero otherwise. */
	uint64_t watermark;
	uint64_t hot_first;
	uint32_t hot_count;
	uint64_t hot_old_checksums[REKEY_HOT_ZONE_MAX];
};

/*
 * Serialise a copy and close it with its XXH3-64 checksum. Does not seal: call header_seal()
 * first. -EINVAL for fields out of range.
 */
int header_copy_encode(const struct file_header *header, uint8_t out[HEADER_COPY_SIZE]);

/*
 * Parse one copy without trusting any field: FORMAT_ERR_DAMAGED for a bad magic, checksum or
 * field (length, suite, unit size, reserved bytes), FORMAT_ERR_NEWER_FORMAT for a newer version.
 */
int header_copy_decode(const uint8_t in[HEADER_COPY_SIZE], struct file_header *header);

/*
 * Pick the copy to use from a whole 4096-byte header (or fewer bytes when the file is short):
 * the valid copy with the highest sequence. A copy that fails its checksum (a torn write) is
 * skipped; the other is used. *slot gets the chosen copy's index. FORMAT_ERR_DAMAGED when
 * neither is valid, FORMAT_ERR_NEWER_FORMAT when the best candidate is from a newer format.
 */
int header_select(const uint8_t *data, size_t len, struct file_header *header, unsigned *slot);

/*
 * Two valid copies of one file's header side by side: newer (the one header_select() chose) and
 * older. 0 when they are the same state, or two consecutive steps of a data rekey, which is all
 * a crash can leave, since every rekey step writes both copies in turn (docs/REKEY.md, "Damaged
 * header copies"). FORMAT_ERR_COPIES_DISAGREE, with *reason set to a one-line explanation, when no crash leaves
 * them so: which key a block is under then cannot be told, and the file must be refused rather
 * than read under a guess. newer_deks and older_deks are the copies' unsealed DEKs, or NULL when
 * a copy's master key is not at hand (the keys are then not compared). Copies of which neither
 * is in a data rekey always pass: they raise no question of which key a block is under.
 */
int header_copies_check(const struct file_header *newer, const uint8_t *newer_deks,
			const struct file_header *older, const uint8_t *older_deks,
			const char **reason);

/*
 * Seal deks (count DEKs) under the MEK: a fresh random nonce, AES-256-GCM with a key from
 * HKDF-SHA256(MEK, "tdefs v1 dek wrap"), and every other field of the copy as associated data.
 * Sets key_id, nonce, wrapped_length, wrapped_keys and tag. Seal after every other field is
 * final: changing any of them (the sequence too) invalidates the seal.
 */
int header_seal(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks, unsigned count);

/* Unseal into deks (room for wrapped_length bytes); FORMAT_ERR_AUTHENTICATION if altered. */
int header_unseal(const struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		  uint8_t *deks);

/*
 * The associated data of a seal: the encoded copy with the sealed fields, the tag and the
 * checksum zeroed (docs/FORMAT.md). For a seal made elsewhere (an HSM token).
 */
void header_associated_data(const struct file_header *header, uint8_t aad[HEADER_COPY_SIZE]);

/*
 * Seal and open with the master key of a keyring (fs/header_keyring.c): a key held in memory
 * seals as header_seal() does (cipher suite 1), a key on an HSM token is asked to seal
 * (cipher suite 2); the suite is part of the associated data. Unsealing follows the copy's
 * suite: -ENOKEY when the ring lacks the key, FORMAT_ERR_AUTHENTICATION when the seal fails or
 * the suite does not match where the key is.
 */
struct keyring;
int header_seal_keyring(struct file_header *header, const struct keyring *ring,
			const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			unsigned count);
int header_unseal_keyring(const struct file_header *header, const struct keyring *ring,
			  uint8_t *deks);

/* A fresh header for a new file: random file ID, sequence 1, one DEK sealed under the key. */
int header_create_keyring(struct file_header *header, const struct keyring *ring,
			  const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t dek[DEK_SIZE]);
/*
 * The full 4096-byte image for a new file: both copies, with sequences n and n + 1 so the
 * newest is unambiguous. Each copy is sealed separately because the sequence is authenticated.
 */
int header_build_image_keyring(struct file_header *header, const struct keyring *ring,
			       const uint8_t dek[DEK_SIZE], uint8_t image[TDEFS_HEADER_SIZE]);

/* --- data blocks ---------------------------------------------------------------------- */

/*
 * Encrypt or decrypt plaintext block block_index of len bytes (1..4096; only a file's last block
 * is shorter than 4096). Lengths >= 16 are one XTS data unit with ciphertext stealing; shorter
 * tails are XORed with a keystream block (see docs/FORMAT.md, "Short tails").
 * Decryption maps an all-zero ciphertext block to zeros: a hole.
 */
int block_encrypt(struct xts_key *key, uint64_t block_index, const uint8_t *plaintext,
		  uint8_t *ciphertext, size_t len);
int block_decrypt(struct xts_key *key, uint64_t block_index, const uint8_t *ciphertext,
		  uint8_t *plaintext, size_t len);

/* Many whole blocks at once (len a multiple of 4096), the path large requests take. */
int blocks_encrypt(struct xts_key *key, uint64_t first_block, const uint8_t *plaintext,
		   uint8_t *ciphertext, size_t len);
int blocks_decrypt(struct xts_key *key, uint64_t first_block, const uint8_t *ciphertext,
		   uint8_t *plaintext, size_t len);

bool buffer_is_zero(const uint8_t *data, size_t len);

/* --- backing directory config --------------------------------------------------------- */

#define CONFIG_FILE_NAME ".tdefs.conf"
#define CONFIG_MAGIC "TDEFSCFG"
/*
 * Version 1 holds a container name of up to 32 bytes, version 2 (same 128 bytes, the reserved
 * bytes given to the name) up to 64, the wallet's limit. --init writes the lowest version that
 * holds the name, so a directory an older tdefs can mount stays mountable by it; both are read.
 */
#define CONFIG_FORMAT_VERSION 2
#define CONFIG_FORMAT_VERSION_SHORT_NAME 1
/*
 * Version 3: the version 1 layout (a name of up to 32 bytes) with a flags word after the
 * creation time. Written only when a flag is set, so that a tdefs that cannot serve an adopted
 * directory's plaintext files refuses to mount it instead of answering EIO for each of them.
 */
#define CONFIG_FORMAT_VERSION_FLAGS 3
/* --init --adopt: the directory held files before it was a backing directory (see below). */
#define CONFIG_FLAG_ADOPTED 0x1u
#define CONFIG_KNOWN_FLAGS CONFIG_FLAG_ADOPTED
#define CONFIG_FILE_SIZE 128u
#define CONFIG_CONTAINER_SIZE 64
#define CONFIG_V1_CONTAINER_SIZE 32

struct backing_config {
	uint16_t version;
	uint16_t cipher_suite;
	uint32_t block_size;
	uint8_t wallet_id[16];
	uint8_t directory_id[16];
	char container[CONFIG_CONTAINER_SIZE + 1];
	uint64_t created_time;
	uint32_t flags; /* CONFIG_FLAG_*: non-zero only in version 3 */
};

/*
 * config->version is ignored: the lowest version that holds the container (and the flags) is
 * written; -EINVAL for flags with a name longer than 32 bytes, or unknown flags.
 */
int config_encode(const struct backing_config *config, uint8_t out[CONFIG_FILE_SIZE]);
int config_decode(const uint8_t *data, size_t len, struct backing_config *config);

/*
 * The backing root's own names, never a user's: the config record and the temporary files of
 * its crash-safe replacement (CONFIG_FILE_NAME ".tmp-XXXXXX", which a crash in --init,
 * --rebind or a version upgrade leaves behind). name is relative to the backing root. The
 * mount hides them and every walk skips them.
 */
bool config_reserved_name(const char *name);
/*
 * The backing root's names of the plaintext conversion (fs/encrypt.c), also reserved by
 * config_reserved_name(): the encrypted copy being built (ENCRYPT_COPY_PREFIX and 16 random hex
 * digits; a crash leaves it behind and the next mount removes it) and the job record that
 * makes an interrupted conversion go on at the next mount.
 */
#define ENCRYPT_COPY_PREFIX ".tdefs.encrypt-"
#define ENCRYPT_JOB_RECORD ".tdefs.encrypt.job"
/*
 * Remove the temporary files an interrupted replacement of the config record left in the
 * backing root open in root_fd. Only for a process that holds the directory's lock (no write
 * is in flight then). Returns how many were removed, or a negative errno.
 */
int config_remove_leftovers(int root_fd);

/*
 * Plaintext files of an adopted directory (docs/FORMAT.md, "Adopted directories"). A file is
 * served as plaintext when, and only when, it carries the extended attribute
 * PLAINTEXT_MARKER_NAME with a value that names this backing directory; --init --adopt sets it
 * on every regular file that exists then, and the conversion removes it together with the
 * plaintext (the encrypted copy that replaces the file never had it). Its content is never
 * looked at: a plaintext file that begins like a header stays plaintext, and a file without
 * the marker is encrypted or refused. Only root can set trusted.* names, and the mount refuses
 * trusted.tdefs.* to everyone (fs/operations.c).
 */
#define PLAINTEXT_MARKER_NAME "trusted.tdefs.plaintext"
#define PLAINTEXT_MARKER_MAGIC "TDEFSPT1"
#define PLAINTEXT_MARKER_SIZE 24u /* magic (8), directory ID (16) */
void plaintext_marker_encode(const uint8_t directory_id[16], uint8_t out[PLAINTEXT_MARKER_SIZE]);
/* A marker's value of len bytes: 0 and its directory ID, or FORMAT_ERROR(FORMAT_ERR_DAMAGED). */
int plaintext_marker_decode(const uint8_t *value, size_t len, uint8_t directory_id[16]);
/*
 * Read the marker of the open file fd: 1 and the directory ID it names in directory_id (may be
 * NULL), 0 when there is none, FORMAT_ERROR(FORMAT_ERR_DAMAGED) for a value of that name that
 * is not a marker, or a negative errno (-EOPNOTSUPP: the filesystem has no such xattrs).
 */
int plaintext_marker_read(int fd, uint8_t directory_id[16]);

/*
 * The conversion's job record (ENCRYPT_JOB_RECORD, docs/FORMAT.md): text naming the path below
 * the backing root and the rate of a running conversion. encode returns the length written
 * (-ENAMETOOLONG when it does not fit out_size, -EINVAL for a path with a newline); decode
 * takes len bytes and gives FORMAT_ERROR(FORMAT_ERR_DAMAGED) for anything else than what
 * encode writes.
 */
#define ENCRYPT_RECORD_MAX 4200
int encrypt_record_encode(double rate, const char *path, char *out, size_t out_size);
int encrypt_record_decode(const char *text, size_t len, double *rate, char *path,
			  size_t path_size);

/*
 * The data rekey's job record (REKEY_JOB_RECORD in the backing root, docs/FORMAT.md): the path
 * and rate of a data rekey that has not finished, the job's random ID, and whether it was
 * stopped on request (0: it was running when the daemon ended, and the next mount goes on with
 * it). Each file the job has finished carries REKEY_DONE_XATTR with the job's ID, so that the
 * job, taken up again, skips it. The same text rules as the conversion's record: encode returns
 * the length, decode refuses (FORMAT_ERROR(FORMAT_ERR_DAMAGED)) anything encode does not write.
 */
#define REKEY_JOB_RECORD ".tdefs.rekey.job"
#define REKEY_DONE_XATTR "trusted.tdefs.rekeyed"
#define REKEY_JOB_ID_SIZE 16u
int rekey_record_encode(double rate, const uint8_t id[REKEY_JOB_ID_SIZE], bool stopped,
			const char *path, char *out, size_t out_size);
int rekey_record_decode(const char *text, size_t len, double *rate,
			uint8_t id[REKEY_JOB_ID_SIZE], bool *stopped, char *path, size_t path_size);

#endif
