/*
 * crypto: the one seam between tdefs and its crypto library. Nothing else in the tree includes
 * an OpenSSL header; everything goes through these functions, so a second backend (or an HSM for
 * master keys) means one new file here and no change elsewhere.
 *
 * Key material lives in memory from secure_alloc(): locked (never swapped), excluded from core
 * dumps, and wiped by secure_free(). Functions return 0 or a negative errno; an AEAD that fails
 * to authenticate returns -EBADMSG.
 */
#ifndef TDEFS_CRYPTO_H
#define TDEFS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AES256_KEY_SIZE 32
#define XTS_KEY_SIZE 64 /* two AES-256 keys: data and tweak */
#define XTS_MIN_UNIT 16 /* XTS with ciphertext stealing needs at least one AES block */
#define GCM_NONCE_SIZE 12
#define GCM_TAG_SIZE 16
#define SHA256_SIZE 32

/* --- secure memory --------------------------------------------------------------------- */

/* Zeroed, page-locked, MADV_DONTDUMP memory; NULL when out of memory. */
void *secure_alloc(size_t size);
/* Wipes and releases; NULL is allowed. */
void secure_free(void *ptr);
/* Wipes in a way the compiler cannot optimise away. */
void secure_wipe(void *ptr, size_t len);
/* Constant-time comparison, true when equal. */
bool secure_equal(const void *a, const void *b, size_t len);

/*
 * Process-wide hardening for programs that hold keys: no core dumps, not ptrace-attachable by
 * other users, and (daemon) every page locked as it is touched so that cipher contexts allocated
 * inside the crypto library never reach swap either.
 */
int secure_process_setup(bool lock_all_memory);

/* --- primitives ------------------------------------------------------------------------ */

int crypto_random_bytes(void *buf, size_t len);

/* HKDF-SHA256 (RFC 5869). info separates the purposes one key serves. */
int crypto_hkdf_sha256(const uint8_t *key, size_t key_len, const uint8_t *salt, size_t salt_len,
		       const char *info, uint8_t *out, size_t out_len);

int crypto_sha256(const void *data, size_t len, uint8_t out[SHA256_SIZE]);

/* scrypt (RFC 7914). log2_n is the cost exponent (N = 2^log2_n). */
int crypto_scrypt(const void *password, size_t password_len, const uint8_t *salt,
		  size_t salt_len, unsigned log2_n, uint32_t r, uint32_t p, uint8_t *out,
		  size_t out_len);

/* AES-256-GCM with a 12-byte nonce and a 16-byte tag; ciphertext length = plaintext length. */
int crypto_gcm_seal(const uint8_t key[AES256_KEY_SIZE], const uint8_t nonce[GCM_NONCE_SIZE],
		    const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
		    uint8_t *ciphertext, uint8_t tag[GCM_TAG_SIZE]);
int crypto_gcm_open(const uint8_t key[AES256_KEY_SIZE], const uint8_t nonce[GCM_NONCE_SIZE],
		    const uint8_t *aad, size_t aad_len, const uint8_t *ciphertext, size_t len,
		    const uint8_t tag[GCM_TAG_SIZE], uint8_t *plaintext);

/* --- AES-256-XTS data units ------------------------------------------------------------ */

/*
 * An expanded XTS key, safe to use from many threads at once: each call borrows a cipher
 * context from a small per-key pool, so no allocation happens on the I/O path once the pool has
 * grown to the number of threads that use the key concurrently.
 */
struct xts_key;

int xts_key_new(const uint8_t key[XTS_KEY_SIZE], struct xts_key **out);
void xts_key_free(struct xts_key *key);

/*
 * Encrypt or decrypt one data unit of len bytes (len >= XTS_MIN_UNIT; a length that is not a
 * multiple of 16 uses ciphertext stealing). The tweak is unit_number as a 128-bit little-endian
 * integer, as IEEE 1619 numbers data units. in and out may be the same buffer.
 */
int xts_encrypt(struct xts_key *key, uint64_t unit_number, const uint8_t *in, uint8_t *out,
		size_t len);
int xts_decrypt(struct xts_key *key, uint64_t unit_number, const uint8_t *in, uint8_t *out,
		size_t len);

/*
 * Several consecutive data units of unit_size bytes each in one call (the hot path for large
 * requests): units first_unit, first_unit+1, ... over len bytes; len is a multiple of unit_size.
 */
int xts_encrypt_units(struct xts_key *key, uint64_t first_unit, size_t unit_size,
		      const uint8_t *in, uint8_t *out, size_t len);
int xts_decrypt_units(struct xts_key *key, uint64_t first_unit, size_t unit_size,
		      const uint8_t *in, uint8_t *out, size_t len);

/* Human-readable name of the backend, for --version and bench output. */
const char *crypto_backend_version(void);

#endif
