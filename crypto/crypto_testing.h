/*
 * crypto_testing: what only the tests and benchmarks call in crypto/, kept out of crypto.h so
 * that no daemon or tool file can reach it by accident and crypto.h stays the seam the
 * production code goes through. Nothing outside tests/ and bench/ includes this header; its
 * functions are defined with the rest of the backend (crypto/crypto_openssl.c), because they
 * need the backend's own OpenSSL state.
 */
#ifndef TDEFS_CRYPTO_TESTING_H
#define TDEFS_CRYPTO_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

/*
 * The bare-OpenSSL ceiling tdefs-bench measures the block path against: one EVP context over
 * len bytes of buf in place, unit_size bytes a data unit. steady_state keeps the first tweak for
 * every unit (what `openssl speed -evp aes-256-xts` runs); otherwise the tweak is re-set per
 * unit as xts_encrypt_units() does. -ENOTSUP when the backend has no AES-256-XTS.
 */
int crypto_reference_xts_loop(const uint8_t key[XTS_KEY_SIZE], size_t unit_size,
			      uint8_t *buf, size_t len, bool encrypt, bool steady_state);

#endif
